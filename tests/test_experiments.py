"""The tutorials' experiments: qualitative results asserted, files written."""
import subprocess
import sys
from pathlib import Path

import pytest

from net.experiments import EXPERIMENTS, init_depth_stds, run

PNG = b"\x89PNG\r\n\x1a\n"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def test_init_depth_explodes_vanishes_or_stays():
    stds = init_depth_stds(depth=152, batch=64)
    assert stds["N(0,1), linear"][-1] > 1e10                   # explodes (overflows to inf by 152)
    assert 0.1 <= stds["N(0,1)/sqrt(n), linear"][-1] <= 10      # stays ~1 without ReLU
    assert stds["N(0,1)/sqrt(n), ReLU"][-1] < 1e-10             # ReLU halves the variance per layer
    assert 0.1 <= stds["Kaiming sqrt(2/n), ReLU"][-1] <= 10     # Kaiming keeps it


@pytest.mark.parametrize("name", ["init-depth", "softmax-jacobian"])
def test_experiment_writes_png_and_table(tmp_path, name):
    out, table = run(name, tmp_path, quick=True)
    assert (out / f"{name}.png").read_bytes()[:8] == PNG
    assert (out / f"{name}.md").read_text().startswith("| ")
    assert table.count("\n") >= 3


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs dataset-fashion-mnist (installed by .ci/run)")
def test_persample_linear_only_about_73_sigmoid_about_83(tmp_path):
    _, table = run("persample", tmp_path)          # one full epoch each, fused kernel (~10 s)
    linear, sigmoid = [float(line.split("|")[2].strip().rstrip("%")) for line in table.splitlines()[2:]]
    assert 70 <= linear <= 76, table
    assert sigmoid >= 82, table


def test_cli_experiment(tmp_path):
    res = subprocess.run([sys.executable, "-m", "net", "experiment", "init-depth", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Kaiming" in res.stdout and (tmp_path / "init-depth.png").is_file()
    res = subprocess.run([sys.executable, "-m", "net", "experiment", "nope"], capture_output=True, text=True)
    assert res.returncode == 2 and "invalid choice: 'nope'" in res.stderr


def test_unknown_experiment_lists_choices():
    with pytest.raises(ValueError, match="choose one of " + ", ".join(EXPERIMENTS)):
        run("nope")


def test_experiment_timings_leave_compiling_out(tmp_path):
    """Every Numba compilation is made to look 1000 s long (the clock the experiment reads jumps);
    the 'seconds' column must not contain them: the kernels are compiled in a warm-up."""
    import os
    import subprocess
    import sys

    child = (
        "import sys, time\n"
        "from numba.core import event\n"
        "real, jumps = time.perf_counter, []\n"
        "class Slow(event.Listener):\n"
        "    def on_start(self, ev): jumps.append(1000.0)\n"
        "    def on_end(self, ev): pass\n"
        "event.register('numba:compile', Slow())\n"
        "time.perf_counter = lambda: real() + sum(jumps)\n"
        "from net.experiments import run\n"
        "_, table = run('persample', sys.argv[1], quick=True)\n"
        "print(table)\n"
        "print('compilations', len(jumps))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-c", child, str(tmp_path / "out")], capture_output=True, text=True,
                         env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.split("compilations")[-1]) > 0          # a cold cache: it did compile
    rows = [line for line in res.stdout.splitlines() if line.startswith("|") and "%" in line]
    assert len(rows) == 2
    for row in rows:
        seconds = float(row.split("|")[4])
        assert seconds < 1000, row
