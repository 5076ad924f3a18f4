"""kernels.gemm: the packed, cache-blocked matmul against NumPy's ``@``, and its block sizes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import gemm
from kernels.gemm import DEFAULT_CACHES, L3_CAP, block_sizes, matmul_packed, tile_shape

DTYPES = [np.float32, np.float64]
#: Relative tolerance per unit sqrt(M) of the reduction length M: rounding errors of
#: a length-M sum of random-sign products grow like sqrt(M) ulp.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
KiB, MiB = 1024, 1024 ** 2


def assert_matches_numpy(C, A, B):
    """``C`` equals NumPy's ``A @ B`` in shape, dtype and value, within the rounding of a length-M sum.

    rtol ``RTOL * sqrt(M)``; atol ``eps * M * max|A| * max|B|``, the worst-case rounding of
    one length-M dot product, for entries that cancel to near zero.
    """
    R = A @ B
    assert C.shape == R.shape and C.dtype == R.dtype == A.dtype, (C.shape, C.dtype, R.shape, R.dtype)
    M = A.shape[1]
    if C.size == 0 or M == 0:
        np.testing.assert_array_equal(C, R)
        return
    dtype = A.dtype.type
    atol = np.finfo(dtype).eps * M * float(np.abs(A).max()) * float(np.abs(B).max())
    np.testing.assert_allclose(C, R, rtol=RTOL[dtype] * np.sqrt(M), atol=atol)


def operands(rng, N, M, P, dtype):
    return (rng.standard_normal((N, M)).astype(dtype), rng.standard_normal((M, P)).astype(dtype))


ODD_SIZES = [(1, 1, 1), (7, 7, 7), (63, 63, 63), (65, 65, 65), (300, 7, 7), (7, 300, 7), (7, 7, 300),
             (300, 7, 65), (1, 65, 300), (65, 1, 63), (129, 257, 131), (13, 600, 70)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,P", ODD_SIZES)
def test_odd_sizes(rng, N, M, P, dtype):
    A, B = operands(rng, N, M, P, dtype)
    assert_matches_numpy(matmul_packed(A, B), A, B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_several_blocks_at_default_sizes(rng, dtype):
    """More than one kc and nc block at this machine's block sizes."""
    kc, mc, nc, _, _ = block_sizes(dtype)
    A, B = operands(rng, 70, kc + 37, nc + 5, dtype)
    assert_matches_numpy(matmul_packed(A, B), A, B)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,P", [(0, 5, 3), (5, 0, 3), (5, 3, 0), (0, 0, 0), (0, 4, 0)])
def test_zero_size_dims(N, M, P, dtype):
    A, B = np.ones((N, M), dtype), np.ones((M, P), dtype)
    C = matmul_packed(A, B)
    assert C.shape == (N, P) and C.dtype == dtype
    np.testing.assert_array_equal(C, np.zeros((N, P), dtype))


LAYOUTS = {
    "F-ordered A": lambda A, B: (np.asfortranarray(A), B),
    "F-ordered B": lambda A, B: (A, np.asfortranarray(B)),
    "both F-ordered": lambda A, B: (np.asfortranarray(A), np.asfortranarray(B)),
    "strided slices": lambda A, B: (A[::2, ::3], B[::3, 1::2]),
    "transposed views": lambda A, B: (B.T[:, :140], A.T[:140, :]),
    "negative strides": lambda A, B: (A[::-1, ::-1], B[::-1]),
    "column block": lambda A, B: (A[:, 5:77], B[5:77, :]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_non_contiguous_and_fortran_inputs(rng, layout, dtype):
    a, b = LAYOUTS[layout](*operands(rng, 150, 140, 170, dtype))
    C = matmul_packed(a, b)
    assert_matches_numpy(C, a, b)
    assert C.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_blocks_exercise_every_edge_path(rng, dtype):
    """Blocks of a few tiles: several kc/mc/nc blocks and partial tiles in every dimension."""
    mr, nr = tile_shape(dtype)
    kc, mc, nc = 8, 2 * mr, 2 * nr
    for N, M, P in [(2 * mc + mr + 1, 3 * kc + 5, 2 * nc + nr + 3),   # partial tile, block and k block
                    (2 * mc, 3 * kc, 2 * nc),                          # blocks divide every size
                    (mr - 1, kc - 1, nr - 1),                          # one partial tile only
                    (1, 1, 1)]:
        A, B = operands(rng, N, M, P, dtype)
        assert_matches_numpy(gemm.gemm(A, B, kc, mc, nc), A, B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_sizes_below_one_tile_are_rounded_up(rng, dtype):
    A, B = operands(rng, 17, 9, 29, dtype)
    assert_matches_numpy(gemm.gemm(A, B, 1, 1, 1), A, B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stale_workspace_contents_do_not_leak(rng, dtype):
    """Every packed item, padding included, is written before it is read: a NaN-filled workspace is harmless."""
    blocks = block_sizes(dtype)
    work = np.full(gemm.workspace_items(blocks, dtype), np.nan, dtype)
    for N, M, P in [(13, 600, 70), (5, 3, 1), (64, 64, 64)]:
        A, B = operands(rng, N, M, P, dtype)
        C = gemm.gemm(A, B, blocks.kc, blocks.mc, blocks.nc, work)
        np.testing.assert_array_equal(C, gemm.gemm(A, B, blocks.kc, blocks.mc, blocks.nc))
        assert_matches_numpy(C, A, B)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(0, 90), M=st.integers(0, 90), P=st.integers(0, 150),
       dtype=st.sampled_from(DTYPES), small_blocks=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_sizes(N, M, P, dtype, small_blocks, seed):
    A, B = operands(np.random.default_rng(seed), N, M, P, dtype)
    if small_blocks:
        mr, nr = tile_shape(dtype)
        C = gemm.gemm(A, B, 8, 2 * mr, 2 * nr)
    else:
        C = matmul_packed(A, B)
    assert_matches_numpy(C, A, B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_spreads_along_its_row_and_column(rng, dtype):
    A, B = operands(rng, 20, 30, 70, dtype)
    A[3, 4] = np.nan
    B[7, 50] = np.nan
    C = matmul_packed(A, B)
    expected = np.zeros(C.shape, bool)
    expected[3, :] = True
    expected[:, 50] = True
    np.testing.assert_array_equal(np.isnan(C), expected)


def test_rejects_mixed_or_integer_dtypes_and_mismatched_shapes():
    f32, f64 = np.ones((3, 4), np.float32), np.ones((4, 2), np.float64)
    with pytest.raises(TypeError, match="float32 and float64"):
        matmul_packed(f32, f64)
    with pytest.raises(TypeError, match="int64 and int64"):
        matmul_packed(np.ones((3, 4), np.int64), np.ones((4, 2), np.int64))
    with pytest.raises(ValueError, match="A has 4 columns, B has 3 rows"):
        matmul_packed(np.ones((3, 4)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        matmul_packed(np.ones(4), np.ones((4, 2)))


# ---- block sizes --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("caches", [
    {1: 48 * KiB, 2: 2 * MiB, 3: 480 * MiB},      # this kind of Xeon
    {1: 32 * KiB, 2: 1 * MiB, 3: 32 * MiB},       # Zen 4
    {1: 32 * KiB, 2: 512 * KiB, 3: 32 * MiB},     # Zen 3
    {1: 32 * KiB, 2: 256 * KiB, 3: 8 * MiB},      # Haswell
])
def test_blocks_fit_the_caches_they_are_derived_from(dtype, caches):
    size = np.dtype(dtype).itemsize
    kc, mc, nc, mr, nr = block_sizes(dtype, caches)
    assert (mr, nr) == tile_shape(dtype)
    assert kc % 8 == 0 and mc % mr == 0 and nc % nr == 0
    assert mr * kc * size <= caches[1] // 4 < mr * (kc + 8) * size         # A micro-panel: a quarter of L1
    assert kc * nc * size <= caches[2] // 2 < kc * (nc + nr) * size         # B panel: half of L2
    assert mc * kc * size <= min(caches[3], L3_CAP) // 2 < (mc + mr) * kc * size   # A block: half of capped L3


@pytest.mark.parametrize("dtype", DTYPES)
def test_blocks_follow_the_machine_cache_sizes(monkeypatch, dtype):
    """The default ``block_sizes(dtype)`` reads ``cache_sizes()``: a bigger L2 gives a wider B panel."""
    sizes = {1: 32 * KiB, 2: 512 * KiB, 3: 32 * MiB}
    monkeypatch.setattr(gemm, "cache_sizes", lambda: dict(sizes))
    zen3 = block_sizes(dtype)
    sizes[2] = 2 * MiB
    big_l2 = block_sizes(dtype)
    sizes[3] = 4 * MiB
    small_l3 = block_sizes(dtype)
    sizes[1] = 48 * KiB
    big_l1 = block_sizes(dtype)
    assert zen3.kc == big_l2.kc and zen3.mc == big_l2.mc and big_l2.nc >= 4 * zen3.nc
    assert small_l3.mc < big_l2.mc and small_l3.nc == big_l2.nc
    assert big_l1.kc > small_l3.kc


@pytest.mark.parametrize("dtype", DTYPES)
def test_missing_cache_levels_take_the_defaults(monkeypatch, dtype):
    monkeypatch.setattr(gemm, "cache_sizes", lambda: {})
    assert block_sizes(dtype) == block_sizes(dtype, DEFAULT_CACHES)
    assert block_sizes(dtype, {2: 1 * MiB}) == block_sizes(dtype, {**DEFAULT_CACHES, 2: 1 * MiB})
    assert block_sizes(dtype, {1: 0, 2: 0}) == block_sizes(dtype, DEFAULT_CACHES)
    kc, mc, nc, mr, nr = block_sizes(dtype, {})
    assert kc >= 16 and mc >= mr and nc >= nr


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_caches_still_give_whole_tiles(dtype):
    kc, mc, nc, mr, nr = block_sizes(dtype, {1: 1 * KiB, 2: 1 * KiB, 3: 1 * KiB})
    assert kc == 16 and mc == mr and nc == nr


@pytest.fixture
def fresh_tile_shapes():
    """Forget the cached tile shapes before and after the test (it fakes the CPU features)."""
    gemm.tile_shape.cache_clear()
    yield
    gemm.tile_shape.cache_clear()


@pytest.mark.parametrize("features,f32,f64", [
    ({"avx512f", "avx2", "avx", "fma"}, 64, 32),    # 32 zmm registers: 6 x 4 vectors
    ({"avx2", "avx", "fma"}, 16, 8),                 # 16 ymm registers: 6 x 2 vectors
    ({"sse2"}, 8, 4),                                # 16 xmm registers: 6 x 2 vectors
])
def test_tile_follows_the_vector_unit(monkeypatch, fresh_tile_shapes, features, f32, f64):
    monkeypatch.setattr(gemm, "_target_features", lambda: features)
    assert tile_shape(np.float32) == (6, f32) and tile_shape(np.float64) == (6, f64)
