"""The benchmark code itself, on tiny sizes: it runs, the JSON has its fields, charts are written,
--compare flags a slow-down.  No timing thresholds here."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("matplotlib")

from bench import machine, output, report  # noqa: E402
from bench.cases import all_cases  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [ROOT / name for name in ("bench", "net", "kernels")]


def _result_files():
    """Results-like files (JSON, Markdown, PNG) under the package folders, with their mtimes."""
    return {p: p.stat().st_mtime_ns for d in PACKAGES for p in d.rglob("*")
            if p.suffix in (".json", ".md", ".png") and "__pycache__" not in p.parts}


_PACKAGE_FILES = {}


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    """A tiny-size run with no --out, from a scratch working directory: results land in ./bench-results."""
    cwd = tmp_path_factory.mktemp("cwd")
    before, here = _result_files(), os.getcwd()
    os.chdir(cwd)
    try:
        assert report.main(["--sizes", "tiny"]) == 0
    finally:
        os.chdir(here)
    _PACKAGE_FILES.update(before=before, after=_result_files())
    return cwd / "bench-results" / machine.slug(machine.info())


def test_by_default_results_go_to_the_working_directory_not_the_package(tiny_results):
    assert sorted(p.name for p in tiny_results.iterdir()) == [
        "matmul_gflops.png", "results-tiny.json", "results-tiny.md", "roofline.png"]
    assert _PACKAGE_FILES["after"] == _PACKAGE_FILES["before"]   # nothing new or rewritten under bench/net/kernels


def test_update_baseline_is_explicit_and_only_in_a_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "BASELINE", tmp_path / "checkout" / "bench" / "results")
    assert output.results_dir("cpu-2c", update_baseline=True) == tmp_path / "checkout" / "bench" / "results" / "cpu-2c"
    assert output.results_dir("cpu-2c", tmp_path / "mine") == tmp_path / "mine"
    with pytest.raises(output.OutputError, match="--out and --update-baseline exclude each other"):
        output.results_dir("cpu-2c", tmp_path / "mine", update_baseline=True)
    monkeypatch.setattr(output, "PACKAGE", tmp_path / "site-packages" / "bench")
    with pytest.raises(output.OutputError, match="bench is installed at .*site-packages.*use --out DIR"):
        output.results_dir("cpu-2c", update_baseline=True)


def test_cli_bench_forwards_out_and_update_baseline(tmp_path):
    res = subprocess.run([sys.executable, "-m", "net", "bench", "--quick", "--out", str(tmp_path),
                          "--update-baseline"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 2 and "--out and --update-baseline exclude each other" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_without_the_dev_extra_one_line_names_it(tmp_path):
    code = ("import sys; sys.modules['pytest_benchmark'] = None\n"
            "from bench.report import main\n"
            f"sys.exit(main(['--sizes', 'tiny', '--out', {str(tmp_path / 'out')!r}]))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "pytest_benchmark is not installed" in lines[0]
    assert 'pip install -e ".[dev]"' in lines[0] and not (tmp_path / "out").exists()


def test_every_group_has_its_implementations():
    cases = all_cases("tiny")
    groups = {c.group.split("[")[0] for c in cases}
    assert {"matmul", "linear_forward", "linear_backward", "relu_forward", "relu_backward", "sigmoid_forward",
            "softmax", "softmax_backward", "cross_entropy_logits", "fused_sgd_epoch"} <= groups
    impls = {c.impl for c in cases if c.group.startswith("matmul")}
    assert impls == {"numpy-blas-1thread", "numba-packed", "numba-ijk-naive", "pure-python"}
    assert any(c.impl == "explicit-jacobian" for c in cases)
    assert {c.dtype for c in cases} == {"float32", "float64"}
    full = all_cases("full")
    assert max(c.sizes.get("B", 0) for c in full) == 60000 and max(c.sizes.get("N", 0) for c in full) == 2048


def test_results_json_fields(tiny_results):
    result = json.loads((tiny_results / "results-tiny.json").read_text())
    assert set(result) >= {"machine", "peaks", "rows", "size_set", "created"}
    assert set(result["machine"]) >= {"cpu", "cores", "numpy", "numba", "blas"}
    assert result["peaks"]["peak_gflops"] > 0 and result["peaks"]["bandwidth_gbs"] > 0
    row = result["rows"][0]
    assert set(row) >= {"group", "impl", "dtype", "min_s", "median_s", "gflops", "gbs", "speedup_vs_baseline"}
    assert all(r["min_s"] > 0 for r in result["rows"])
    assert len(result["rows"]) == len(all_cases("tiny"))


def test_markdown_and_charts(tiny_results):
    md = (tiny_results / "results-tiny.md").read_text()
    assert "## Goals" in md and "| group | impl | time | GFLOP/s | GB/s | speed-up |" in md
    for name in ("matmul_gflops.png", "roofline.png"):
        assert (tiny_results / name).read_bytes()[:8] == PNG


def test_compare_flags_regressions(tiny_results, tmp_path):
    old = json.loads((tiny_results / "results-tiny.json").read_text())
    for row in old["rows"]:                 # pin the noise: tiny timings can be noisier than 3x
        row["stddev_s"] = 0.01 * row["median_s"]
    new = json.loads(json.dumps(old))
    new["rows"][0]["min_s"] *= 3
    for path, data in ((tmp_path / "old.json", old), (tmp_path / "new.json", new)):
        path.write_text(json.dumps(data))
    text, regressions = report.compare(tmp_path / "old.json", tmp_path / "new.json")
    assert regressions == 1 and "slower (regression)" in text
    assert report.compare(tmp_path / "old.json", tmp_path / "old.json")[1] == 0
    res = subprocess.run([sys.executable, "-m", "net", "bench", "kernels", "--compare", str(tmp_path / "old.json"),
                          str(tmp_path / "new.json")], capture_output=True, text=True)
    assert res.returncode == 1 and "1 regression(s) beyond noise" in res.stdout
