"""The benchmark code itself, on tiny sizes: it runs, the JSON has its fields, charts are written,
--compare flags a slow-down.  No timing thresholds here."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("matplotlib")

from bench import report  # noqa: E402
from bench.cases import all_cases  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert report.main(["--sizes", "tiny", "--out", str(out)]) == 0
    return out


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
