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
    # bench/ is importable from the checkout only (it is not installed): put the checkout on the path,
    # or whether this passes depends on how the editable install exposes the source tree
    res = subprocess.run([sys.executable, "-m", "net", "bench", "--quick", "--out", str(tmp_path),
                          "--update-baseline"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and "--out and --update-baseline exclude each other" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_without_the_dev_extra_one_line_names_it(tmp_path):
    code = ("import sys; sys.modules['pytest_benchmark'] = None\n"
            "from bench.report import main\n"
            f"sys.exit(main(['--sizes', 'tiny', '--out', {str(tmp_path / 'out')!r}]))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})       # bench/ from the checkout
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


# ---- per-sample benchmark: the same-bytes ceiling and the tutorial baseline (issue 12) -------------

import numpy as np

class _Counted(np.ndarray):
    """An array that logs every scalar element read and write (views share the parent's log and name)."""

    def __new__(cls, arr, name, log):
        obj = np.array(arr).view(cls)
        obj._name, obj._log = name, log
        return obj

    def __array_finalize__(self, obj):
        self._name, self._log = getattr(obj, "_name", None), getattr(obj, "_log", None)

    def __getitem__(self, idx):
        out = super().__getitem__(idx)
        if not isinstance(out, np.ndarray) and self._log is not None:
            self._log[(self._name, idx, "r")] += 1
        return out

    def __setitem__(self, idx, value):
        if self._log is not None:
            self._log[(self._name, idx, "w")] += 1
        super().__setitem__(idx, value)


def _tiny_problem(widths=(12, 6, 5, 3), samples=7, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.random((samples + 2, widths[0]))
    X[rng.random(X.shape) < 0.5] = 0
    X[1] = 0                                   # a blank sample: no first-layer rows of its own
    order = np.array([2, 0, 1, 4, 3, 8, 6])[:samples]
    Ws = [rng.standard_normal((a, b)) * 0.3 for a, b in zip(widths, widths[1:])]
    bs = [rng.standard_normal(b) * 0.1 for b in widths[1:]]
    y = rng.integers(0, widths[-1], X.shape[0])
    return X, y, order, Ws, bs


def _counted_args(X, Ws, bs):
    from collections import Counter
    log = Counter()
    weights = tuple(_Counted(W, f"W{i}", log) for i, W in enumerate(Ws))
    biases = tuple(_Counted(b, f"b{i}", log) for i, b in enumerate(bs))
    return log, weights, biases, _Counted(X, "X", log)


def _fused_accesses(monkeypatch, X, y, order, Ws, bs):
    """Run the real kernels.fused.sgd_epoch as Python (its compiled helpers swapped for their
    Python bodies) on counting arrays; return the access log."""
    from kernels import fused as fk
    for name in ("_forward_hidden", "_backward_hidden", "_backward_rows", "_first_layer_update",
                 "_first_layer_update_then_forward"):
        fn = getattr(fk, name)
        monkeypatch.setattr(fk, name, getattr(fn, "py_func", fn))
    log, weights, biases, Xc = _counted_args(X, Ws, bs)
    acts = np.array([fk.SIGMOID] * (len(Ws) - 1) + [fk.IDENTITY])
    _, done = fk.sgd_epoch.py_func(weights, biases, np.ones(len(Ws)), acts, fk.SOFTMAX_CE, Xc, y,
                                        np.zeros((0, Ws[-1].shape[1])), order, 0.05)
    assert done == len(order)
    return log


def test_same_bytes_ceiling_touches_exactly_what_the_fused_kernel_touches(monkeypatch):
    from bench.fused_traffic import stream_same_bytes
    X, y, order, Ws, bs = _tiny_problem()
    fused = _fused_accesses(monkeypatch, X, y, order, Ws, bs)
    log, weights, biases, Xc = _counted_args(X, Ws, bs)
    stream_same_bytes.py_func(weights, biases, Xc, order, 1.0)
    assert log == fused                        # every element: same arrays, same rows, same reads and writes
    rows_written = {k[1][0] for k in fused if k[0] == "W0" and k[2] == "w"}
    assert rows_written == set(map(int, (X[order] != 0).any(axis=0).nonzero()[0]))   # zero-pixel rows untouched
    assert sum(v for k, v in fused.items() if k[0] == "W0" and k[2] == "r") < 3 * sum(   # not 3 passes per row
        v for k, v in fused.items() if k[0] == "W0" and k[2] == "w")


def test_fused_traffic_counts_what_the_fused_kernel_moves(monkeypatch):
    from bench.fused_traffic import fused_traffic, traffic_bytes
    widths = (12, 6, 5, 3)
    for samples in (1, 2, 7):
        X, y, order, Ws, bs = _tiny_problem(widths, samples)
        log = _fused_accesses(monkeypatch, X, y, order, Ws, bs)
        got = fused_traffic(X, order, widths)

        def total(prefix, kind, log=log):
            return sum(v for k, v in log.items() if k[0].startswith(prefix) and k[2] == kind)
        assert got == {"weight_reads": total("W", "r"), "weight_writes": total("W", "w"),
                       "bias_reads": total("b", "r"), "bias_writes": total("b", "w"), "x_reads": total("X", "r"),
                       "samples": samples}
        assert traffic_bytes(got, 4) == 4 * sum(log.values())


def test_kernel_suite_fused_case_uses_the_counted_bytes():
    from bench.fused_traffic import fused_traffic, traffic_bytes
    for case in (c for c in all_cases("tiny") if c.group.startswith("fused_sgd_epoch")):
        X, order = case.args[5], case.args[8]
        widths = (case.args[0][0].shape[0],) + tuple(W.shape[1] for W in case.args[0])
        assert case.bytes == traffic_bytes(fused_traffic(X, order, widths), np.dtype(case.dtype).itemsize)


def test_tutorial_baseline_gets_float64_data_converted_outside_the_timed_call():
    from bench import persample
    rng = np.random.default_rng(0)
    X = rng.random((6, 784)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    variant = persample.variant("tutorial-style NumPy loop", "float64")
    state = variant.setup(X, y, 4)                 # untimed: conversion and initial weights
    assert state["X"].dtype == np.float64 and state["X"].flags.c_contiguous
    assert all(W.dtype == np.float64 for W in state["Ws"])

    class NoConversion(np.ndarray):
        def astype(self, *a, **k):
            raise AssertionError("astype inside the timed call")

        def copy(self, *a, **k):
            raise AssertionError("copy inside the timed call")
    state["X"] = state["X"].view(NoConversion)
    variant.run(state, 4)                          # the timed call: training only
    with pytest.raises(TypeError, match="float64"):
        variant.run(dict(state, X=X), 4)           # float32 data is refused, not converted
    assert {(v.name, v.dtype) for v in persample.variants()} >= {
        ("tutorial-style NumPy loop", "float64"), ("tutorial-style NumPy loop", "float32"),
        ("scratchnet fused (numba)", "float64"), ("scratchnet fused (numba)", "float32")}
