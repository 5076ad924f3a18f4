"""NumPy vs Numba: every registered kernel agrees in shape, dtype and value.

Sizes, dtypes, seeds and input scales (unit, +-1e4, all zeros) are drawn by
hypothesis; 1 is always a likely size, so 1x1 and K = 1 are covered.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from kernels.registry import DTYPES, OPERATIONS, SCALES, tolerance
from kernels.testing import assert_outputs_match

size = st.one_of(st.just(1), st.integers(1, 40))


def _run(op, dtype, dims, scale, seed):
    sizes = dict(zip(op.dims, dims))
    args = op.make_inputs(np.random.default_rng(seed), dtype, sizes, scale)
    theirs = op.impl("numpy")(*args)
    mine = op.impl("numba")(*args)
    assert_outputs_match(mine, theirs, **tolerance(op, dtype, sizes, args),
                         label=f"{op.id} {np.dtype(dtype).name} sizes={sizes} scale={scale}")
    for out in (theirs if isinstance(theirs, tuple) else (theirs,)):
        assert out.dtype == np.dtype(dtype), f"{op.id}: NumPy output dtype {out.dtype} != input {dtype}"


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.id)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), scale=st.sampled_from(SCALES),
       seed=st.integers(0, 2**32 - 1))
def test_numba_matches_numpy(op, data, dtype, scale, seed):
    dims = tuple(data.draw(size, label=d) for d in op.dims)
    _run(op, dtype, dims, scale, seed)


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scale", SCALES)
def test_edge_sizes(op, dtype, scale):
    """All sizes 1 (1x1 matrices, K = 1) and a tutorial-sized case, every scale."""
    _run(op, dtype, (1,) * len(op.dims), scale, seed=0)
    big = {"B": 3, "I": 784, "O": 33, "K": 10, "N": 5, "M": 300, "P": 7}
    _run(op, dtype, tuple(big[d] for d in op.dims), scale, seed=1)
