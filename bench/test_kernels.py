"""pytest-benchmark suite over :func:`bench.cases.all_cases`: one group per kernel, size and dtype.

    SCRATCHNET_BENCH_SIZES=quick pytest bench/test_kernels.py --benchmark-enable --benchmark-only

``python -m net bench kernels`` (``bench/report.py``) runs this and turns the JSON into
tables and charts.  Each case is checked against its baseline's result once before timing.
"""
import numpy as np
import pytest

from bench.cases import all_cases

CASES = all_cases()
_BASELINES = {}


def _assert_close(mine, ref, dtype):
    """Loose agreement with the group's baseline (the equivalence tests do the exact checks)."""
    if isinstance(ref, tuple):
        for m, r in zip(mine, ref, strict=True):
            _assert_close(m, r, dtype)
        return
    tol = 1e-3 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(np.asarray(mine, dtype=np.float64), np.asarray(ref, dtype=np.float64),
                               rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel(benchmark, case):
    out = case.fn(*case.args)               # also the warm-up: Numba compiles here, not while timed
    if case.impl == case.baseline:
        _BASELINES[case.group] = out
    elif case.group in _BASELINES and case.extra.get("op") != "fused_sgd_epoch":
        _assert_close(out, _BASELINES[case.group], case.dtype)
    benchmark.group = case.group
    benchmark.extra_info.update(impl=case.impl, dtype=case.dtype, sizes=case.sizes, flops=case.flops,
                                bytes=case.bytes, baseline=case.baseline, **case.extra)
    benchmark(case.fn, *case.args)
