"""``python -m net bench`` where ``bench`` is not importable (an installed copy): one line, exit 1."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_net_bench_without_the_bench_package_says_it_runs_from_a_checkout(tmp_path):
    # an installed copy has no bench/ (this checkout's would be found, so hide it)
    code = "import sys; sys.modules['bench'] = None\nfrom net.cli import main; sys.exit(main(['bench', '--quick']))"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=300)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith("python -m net bench: the benchmarks run from a source checkout"), lines[0]
