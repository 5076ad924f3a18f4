"""kernels.blas: C = beta C + alpha op(A) op(B) through BLAS ?gemm (NumPy's OpenBLAS, else SciPy's), from inside @njit."""
import numpy as np
import pytest
from numba import njit

from kernels.blas import gemm_ab, gemm_abt, gemm_at_b


@njit  # not cached: gemm_at_b is inlined, and a cache under tests/ would not see kernels/blas.py change
def _call(C, A, D, alpha, beta):
    gemm_at_b(C, A, D, alpha, beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nb,I,O", [(1, 1, 1), (3, 7, 5), (32, 784, 512), (5, 512, 10), (0, 3, 4), (4, 1, 9)])
@pytest.mark.parametrize("alpha,beta", [(-0.01, 1.0), (1.0, 0.9), (2.5, 0.0)])
def test_gemm_at_b_matches_numpy(dtype, nb, I, O, alpha, beta):
    rng = np.random.default_rng(nb * 100 + I + O)
    A, D, C = (rng.standard_normal(s).astype(dtype) for s in ((nb, I), (nb, O), (I, O)))
    expected = beta * C.astype(np.float64) + alpha * (A.astype(np.float64).T @ D.astype(np.float64))
    _call(C, A, D, dtype(alpha), dtype(beta))
    assert C.dtype == dtype
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype] * max(1, nb)
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)


def test_gemm_at_b_leaves_other_memory_alone():
    big = np.zeros((10, 6), np.float32)
    C = big[2:5]                                   # rows 2..4 of a C-contiguous array: still C-contiguous
    A = np.ones((2, 3), np.float32)
    D = np.ones((2, 6), np.float32)
    _call(C, A, D, np.float32(1), np.float32(1))
    assert (big[2:5] == 2).all() and (big[:2] == 0).all() and (big[5:] == 0).all()


def test_gemm_at_b_refuses_layouts_dtypes_and_shapes_it_cannot_take():
    import pytest as _pytest
    C = np.zeros((3, 4), np.float32)
    A = np.ones((2, 3), np.float32)
    D = np.ones((2, 4), np.float32)
    with _pytest.raises(ValueError, match="C-contiguous"):
        _call(C, np.asfortranarray(A), D, np.float32(1), np.float32(1))
    with _pytest.raises(ValueError, match="C-contiguous"):
        _call(C, A[::-1], D, np.float32(1), np.float32(1))
    with _pytest.raises(TypeError, match="one float dtype"):
        _call(C, A.astype(np.float64), D, np.float32(1), np.float32(1))
    with _pytest.raises(ValueError, match="shapes"):
        _call(C, A, D[:1], np.float32(1), np.float32(1))
    assert (C == 0).all()


@njit  # not cached, as _call
def _call_ab(C, A, B, alpha, beta):
    gemm_ab(C, A, B, alpha, beta)


@njit
def _call_abt(C, A, B, alpha, beta):
    gemm_abt(C, A, B, alpha, beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 784, 512), (3, 7, 5), (64, 784, 512), (5, 512, 10), (4, 0, 3),
                                   (7, 1, 1)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.01, 1.0), (2.5, 0.5)])
def test_gemm_ab_and_abt_match_numpy(dtype, m, k, n, alpha, beta):
    rng = np.random.default_rng(m * 1000 + k + n)
    A, B, C = (rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n), (m, n)))
    expected = beta * C.astype(np.float64) + alpha * (A.astype(np.float64) @ B.astype(np.float64))
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype] * max(1, k)
    got = C.copy()
    _call_ab(got, A, B, dtype(alpha), dtype(beta))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    got = C.copy()
    _call_abt(got, A, np.ascontiguousarray(B.T), dtype(alpha), dtype(beta))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_beta_zero_overwrites_nan_in_the_output():
    C = np.full((2, 3), np.nan)
    _call_ab(C, np.ones((2, 4)), np.ones((4, 3)), 1.0, 0.0)
    assert (C == 4).all()
    C = np.full((2, 3), np.nan)
    _call_ab(C, np.ones((2, 0)), np.ones((0, 3)), 1.0, 0.0)        # empty inner dimension: C = 0
    assert (C == 0).all()
    C = np.full((2, 3), np.nan)
    _call(C, np.ones((0, 2)), np.ones((0, 3)), 1.0, 0.0)           # gemm_at_b with no rows: C = 0 too
    assert (C == 0).all()


def test_gemm_ab_and_abt_refuse_layouts_dtypes_and_shapes():
    C, A, B = np.zeros((3, 4)), np.ones((3, 2)), np.ones((2, 4))
    with pytest.raises(ValueError, match="C-contiguous"):
        _call_ab(C, np.asfortranarray(A), B, 1.0, 0.0)
    with pytest.raises(TypeError, match="one float dtype"):
        _call_ab(C, A.astype(np.float32), B, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"C \(m, n\), A \(m, k\), B \(k, n\)"):
        _call_ab(C, A, B[:1], 1.0, 0.0)
    with pytest.raises(ValueError, match=r"B \(n, k\)"):
        _call_abt(C, A, B, 1.0, 0.0)
    assert (C == 0).all()


def test_the_library_is_named_and_its_integer_width_matches():
    from kernels import blas, blas_lib

    name = blas_lib.choice()
    assert name.startswith(("numpy-openblas-ilp64:", "scipy-cython-blas-lp64"))
    assert blas.INT_BITS == (64 if name.startswith("numpy-openblas-ilp64") else 32)
