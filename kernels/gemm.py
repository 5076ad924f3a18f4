"""Packed, cache-blocked matrix product in Numba (BLIS-style): ``matmul_packed(A, B) = A @ B``.

``A : (N, M)``, ``B : (M, P)``, one float dtype (float32 or float64), ``C : (N, P)`` of that dtype.

The work is split so that every operand is read from the cache level that can hold it::

    for ic in range(0, N, mc):            # A block, mc x kc: packed once, stays in L3
      for pc in range(0, M, kc):
        pack A[ic:ic+mc, pc:pc+kc]        #   -> MR-row micro-panels, each kc x MR, k-major
        for jc in range(0, P, nc):        # B panel, kc x nc: packed once per A block, stays in L2
          pack B[pc:pc+kc, jc:jc+nc]      #   -> NR-column micro-panels, each kc x NR, k-major
          for ir in range(0, mc, MR):     # one A micro-panel (MR x kc) stays in L1 ...
            for jr in range(0, nc, NR):   # ... while the B micro-panels stream past it from L2
              C[ic+ir:ic+ir+MR, jc+jr:jc+jr+NR] += A micro-panel @ B micro-panel   # micro-kernel

These are BLIS's five loops for the transposed product ``C.T = B.T @ A.T``.  In BLIS's
own order (B micro-panel in L1, A block in L2, ``ir`` innermost) consecutive micro-kernel
calls move down the rows of the row-major C, MR new rows each time, instead of along
them; at n = 2048 that measured 8-18 points of BLAS slower than this order.

The micro-kernel keeps the ``MR x NR`` tile of C in vector registers for the whole ``kc``
loop: per step of k it loads ``NR`` values of B (``NR / W`` vectors of W lanes) and
broadcasts ``MR`` values of A, ``MR * NR / W`` fused multiply-adds.  Numba has no vector
types, and a tile held in a NumPy array is never promoted to registers, so the kernel is
an ``@intrinsic`` that emits the LLVM vector IR directly (see :func:`_micro_kernel`).
(The same kernel in plain Numba loops over a tile in an L1 scratch array measured 11-26%
of BLAS: LLVM fully unrolls the fixed-width j loop, and Numba runs no SLP vectorizer to
pack the unrolled scalars back into vectors.)
Edge tiles: the packed buffers are padded with zeros to whole tiles, the kernel always
runs a full tile, and partial tiles go through a scratch tile of which only the valid
part is added to C.

Tile and block sizes are derived, never hard-coded per machine: the tile from the vector
width and register count of the CPU that Numba compiles for (:func:`tile_shape`), the
blocks from the cache sizes read by :func:`kernels.cachesize.cache_sizes`
(:func:`block_sizes`).  They are passed to the compiled driver as arguments, so one
compiled (and cached) kernel serves every cache size.

The packed buffers come from a scratch array that :func:`matmul_packed` keeps per thread
and dtype: allocating them afresh made every call fault in new pages whenever the
allocator returned fresh memory (a quarter of the time of a float64 n = 256 product).

Rounding: each element of C is a sum over k in increasing order, in ``kc``-long partial
sums accumulated with fused multiply-adds (what ``fastmath={"contract"}`` would allow);
no reassociation, so NaN and Inf propagate as in the plain loop.
"""
from __future__ import annotations

import functools
import threading
from typing import NamedTuple

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload

from .cachesize import cache_sizes

#: Rows of C per micro-kernel tile (values of A broadcast per step of k).
MR = 6

#: Cache sizes assumed for levels the machine does not report: small for a current core.
DEFAULT_CACHES = {1: 32 * 1024, 2: 256 * 1024, 3: 2 * 1024 * 1024}

#: Most of a shared L3 that one core's A block may claim (a 480 MiB L3 serves many cores).
L3_CAP = 8 * 1024 * 1024

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _target_features() -> set[str]:
    """CPU features Numba compiles for (``NUMBA_CPU_FEATURES`` if set, else the host's)."""
    text = config.CPU_FEATURES if config.CPU_FEATURES is not None else llvm.get_host_cpu_features().flatten()
    return {f[1:] for f in text.split(",") if f.startswith("+")}


def _vector_unit(features: set[str]) -> tuple[int, int]:
    """``(bytes per vector register, number of vector registers)`` of the x86 level in ``features``."""
    if "avx512f" in features:
        return 64, 32
    if "avx" in features:
        return 32, 16
    return 16, 16


@functools.lru_cache(maxsize=None)
def tile_shape(dtype) -> tuple[int, int]:
    """``(MR, NR)`` of the micro-kernel for ``dtype`` on the CPU Numba compiles for.

    NR is ``NV`` vectors of ``W = vector bytes / itemsize`` lanes, with ``NV`` the largest
    count for which the ``MR x NV`` accumulators, the ``NV`` loaded B vectors and one
    broadcast A value fit in the register file: 6 x 4 vectors with 32 AVX-512 registers
    (6 x 64 float32, 6 x 32 float64), 6 x 2 with 16 AVX2 or SSE registers.
    """
    dtype = np.dtype(dtype)
    vector_bytes, registers = _vector_unit(_target_features())
    nv = (registers - 1) // (MR + 1)
    return MR, nv * vector_bytes // dtype.itemsize


class Blocks(NamedTuple):
    """Block sizes of one call: ``kc`` (depth), ``mc`` (rows of A), ``nc`` (columns of B), and the tile."""
    kc: int
    mc: int
    nc: int
    mr: int
    nr: int


def block_sizes(dtype, caches: dict[int, int] | None = None) -> Blocks:
    """Block sizes for ``dtype`` derived from ``caches`` (``{level: bytes}``; default: this machine's).

    * ``kc``: the ``MR x kc`` A micro-panel, reused by every B micro-panel, takes a quarter
      of L1 (the rest is for the B micro-panel streaming through and the C tile);
      a multiple of 8, at least 16.
    * ``nc``: the ``kc x nc`` packed B panel, reused by every A micro-panel, takes half of
      L2; a multiple of NR.
    * ``mc``: the ``mc x kc`` packed A block, reused by every B panel, takes half of
      ``min(L3, L3_CAP)``; a multiple of MR.

    Levels missing from ``caches`` take :data:`DEFAULT_CACHES`.
    """
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"block_sizes: expected float32 or float64, got {dtype}")
    sizes = {**DEFAULT_CACHES, **{k: v for k, v in (cache_sizes() if caches is None else caches).items() if v}}
    mr, nr = tile_shape(dtype)
    size = dtype.itemsize
    kc = max(16, sizes[1] // 4 // (mr * size) // 8 * 8)
    nc = max(nr, sizes[2] // 2 // (kc * size) // nr * nr)
    mc = max(mr, min(sizes[3], L3_CAP) // 2 // (kc * size) // mr * mr)
    return Blocks(kc, mc, nc, mr, nr)


def _tile_of(x):
    """``(MR, NR)`` for the dtype of array ``x``, as compile-time constants inside ``@njit``."""
    return tile_shape(x.dtype)


@overload(_tile_of)
def _tile_of_impl(x):
    mr, nr = tile_shape(np.dtype(x.dtype.name))
    return lambda x: (mr, nr)


@intrinsic
def _micro_kernel(typingctx, kc, a, a0, b, b0, c, c0, ldc):
    """``C[c0 + i*ldc + j] += sum(a[a0 + k*MR + i] * b[b0 + k*NR + j] for k < kc)``, ``i < MR, j < NR``.

    ``a``, ``b``: packed micro-panels (flat, contiguous); ``c``: any contiguous array of the
    same dtype, addressed flat with row stride ``ldc``.  The ``MR x NR`` accumulators are
    ``MR * NV`` LLVM vectors of ``W`` lanes (``NR = NV * W``) that live in registers through
    the k loop; each step loads NV vectors of b, broadcasts MR values of a and issues
    ``llvm.fmuladd`` on each accumulator (an FMA where the CPU has one).  After the loop
    the tile is added to C with unaligned vector loads and stores.  No bounds checks:
    the caller guarantees that the whole tile is inside every array.
    """
    dtype = np.dtype(a.dtype.name)
    mr, nr = tile_shape(dtype)
    vector_bytes, _ = _vector_unit(_target_features())
    lanes = vector_bytes // dtype.itemsize
    nv = nr // lanes
    sig = types.void(kc, a, a0, b, b0, c, c0, ldc)

    def codegen(context, builder, signature, args):
        kc, a, a0, b, b0, c, c0, ldc = args
        scalar = context.get_value_type(signature.args[1].dtype)
        vec = ir.VectorType(scalar, lanes)
        intp = context.get_value_type(types.intp)
        align = dtype.itemsize

        def data(position, value):
            return context.make_array(signature.args[position])(context, builder, value).data

        def index(v):
            return ir.Constant(intp, v)

        a_ptr = builder.gep(data(1, a), [a0])
        b_ptr = builder.gep(data(3, b), [b0])
        c_ptr = builder.gep(data(5, c), [c0])
        fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]),
            f"llvm.fmuladd.v{lanes}f{8 * dtype.itemsize}")
        i32 = ir.IntType(32)
        splat_mask = ir.Constant(ir.VectorType(i32, lanes), [ir.Constant(i32, 0)] * lanes)
        undef = ir.Constant(vec, ir.Undefined)
        # Accumulators as entry-block allocas: mem2reg turns them into registers (phi nodes).
        zero = ir.Constant(vec, [ir.Constant(scalar, 0)] * lanes)
        acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(nv)] for _ in range(mr)]
        with cgutils.for_range(builder, kc) as loop:
            b_k = builder.gep(b_ptr, [builder.mul(loop.index, index(nr))])
            b_vec = [builder.load(builder.bitcast(builder.gep(b_k, [index(v * lanes)]), vec.as_pointer()),
                                  align=align) for v in range(nv)]
            a_k = builder.gep(a_ptr, [builder.mul(loop.index, index(mr))])
            for i in range(mr):
                a_i = builder.insert_element(undef, builder.load(builder.gep(a_k, [index(i)])), ir.Constant(i32, 0))
                a_i = builder.shuffle_vector(a_i, undef, splat_mask)
                for v in range(nv):
                    builder.store(builder.call(fmuladd, [a_i, b_vec[v], builder.load(acc[i][v])]), acc[i][v])
        for i in range(mr):
            c_i = builder.gep(c_ptr, [builder.mul(ldc, index(i))])
            for v in range(nv):
                p = builder.bitcast(builder.gep(c_i, [index(v * lanes)]), vec.as_pointer())
                builder.store(builder.fadd(builder.load(p, align=align), builder.load(acc[i][v])), p, align=align)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _scratch_items(kc, mc, nc, mr, nr, itemsize):
    """Packed A block, packed B panel and edge tile, each with room to start on a 64-byte boundary."""
    return mc * kc + kc * nc + mr * nr + 3 * (64 // itemsize)


def workspace_items(blocks: Blocks, dtype) -> int:
    """Items of scratch that any :func:`gemm` call with ``blocks`` needs at most."""
    return int(_scratch_items(*blocks, np.dtype(dtype).itemsize))


@njit(cache=True)
def _carve(work, start, n):
    """``n`` items of ``work`` from the first 64-byte (cache line) boundary at or after ``start``; and the end."""
    start += (-(work.ctypes.data + start * work.itemsize)) % 64 // work.itemsize
    return work[start:start + n], start + n


@njit(cache=True)
def _pack_a(A, i0, rows, k0, depth, mr, Ap):
    """Copy ``A[i0:i0+rows, k0:k0+depth]`` to ``Ap``: ``mr``-row micro-panels, each ``depth x mr`` k-major.

    ``Ap[p*depth*mr + k*mr + i] = A[i0 + p*mr + i, k0 + k]``, zero for rows past ``rows``.
    """
    zero = Ap.dtype.type(0)
    for p0 in range(0, rows, mr):
        panel = Ap[p0 * depth:(p0 + mr) * depth]
        valid = min(mr, rows - p0)
        for i in range(valid):
            row = A[i0 + p0 + i, k0:k0 + depth]
            for k in range(depth):
                panel[k * mr + i] = row[k]
        for i in range(valid, mr):
            for k in range(depth):
                panel[k * mr + i] = zero


@njit(cache=True)
def _pack_b(B, k0, depth, j0, cols, nr, Bp):
    """Copy ``B[k0:k0+depth, j0:j0+cols]`` to ``Bp``: ``nr``-column micro-panels, each ``depth x nr`` k-major.

    ``Bp[q*depth*nr + k*nr + j] = B[k0 + k, j0 + q*nr + j]``, zero for columns past ``cols``.
    """
    zero = Bp.dtype.type(0)
    for q0 in range(0, cols, nr):
        panel = Bp[q0 * depth:(q0 + nr) * depth]
        valid = min(nr, cols - q0)
        for k in range(depth):
            row = B[k0 + k, j0 + q0:j0 + q0 + valid]
            out = panel[k * nr:(k + 1) * nr]
            for j in range(valid):
                out[j] = row[j]
            for j in range(valid, nr):
                out[j] = zero


@njit(cache=True)
def gemm(A, B, kc, mc, nc, work=None):
    """``A @ B`` for ``A : (N, M)``, ``B : (M, P)`` of one float dtype, any layout; blocks ``kc, mc, nc``.

    The compiled entry point (callable from other ``@njit`` code); :func:`block_sizes`
    gives the blocks for this machine.  ``mc`` and ``nc`` are rounded down to multiples of
    the tile (at least one tile).  ``work``: optional 1-D scratch of the dtype, at least
    :func:`workspace_items` long (a shorter one is ignored); without it the packed buffers
    are allocated here, which costs the first touch of every page of them whenever the
    allocator hands out fresh memory (measured: 25-30% of the time at n = 256).
    """
    N, M = A.shape
    P = B.shape[1]
    mr, nr = _tile_of(A)
    C = np.zeros((N, P), dtype=A.dtype)
    if N == 0 or M == 0 or P == 0:
        return C
    kc = max(1, min(kc, M))
    mc = min(max(mr, mc - mc % mr), (N + mr - 1) // mr * mr)
    nc = min(max(nr, nc - nc % nr), (P + nr - 1) // nr * nr)
    need = _scratch_items(kc, mc, nc, mr, nr, A.itemsize)
    if work is None or work.size < need:
        work = np.empty(need, dtype=A.dtype)
    Ap, end = _carve(work, 0, mc * kc)
    Bp, end = _carve(work, end, nc * kc)
    edge, end = _carve(work, end, mr * nr)
    Cf = C.reshape(N * P)
    for ic in range(0, N, mc):
        rows = min(mc, N - ic)
        for pc in range(0, M, kc):
            depth = min(kc, M - pc)
            _pack_a(A, ic, rows, pc, depth, mr, Ap)
            for jc in range(0, P, nc):
                cols = min(nc, P - jc)
                _pack_b(B, pc, depth, jc, cols, nr, Bp)
                for i_r in range(0, rows, mr):
                    tile_rows = min(mr, rows - i_r)
                    for jr in range(0, cols, nr):
                        tile_cols = min(nr, cols - jr)
                        if tile_rows == mr and tile_cols == nr:
                            _micro_kernel(depth, Ap, i_r * depth, Bp, jr * depth, Cf, (ic + i_r) * P + jc + jr, P)
                        else:
                            edge[:] = 0
                            _micro_kernel(depth, Ap, i_r * depth, Bp, jr * depth, edge, 0, nr)
                            for i in range(tile_rows):
                                c_row = C[ic + i_r + i, jc + jr:jc + jr + tile_cols]
                                for j in range(tile_cols):
                                    c_row[j] += edge[i * nr + j]
    return C


@functools.lru_cache(maxsize=None)
def _blocks_here(dtype: np.dtype) -> Blocks:
    return block_sizes(dtype)


_workspaces = threading.local()


def _workspace(dtype: np.dtype, blocks: Blocks) -> np.ndarray:
    """This thread's scratch for ``dtype``, made on first use and kept (about 5 MiB per dtype here)."""
    work = getattr(_workspaces, dtype.name, None)
    if work is None:
        work = np.empty(workspace_items(blocks, dtype), dtype)
        setattr(_workspaces, dtype.name, work)
    return work


def matmul_packed(A, B):
    """``C = A @ B``: ``A : (N, M)``, ``B : (M, P)``, both float32 or both float64, any strides; ``C : (N, P)``.

    Packs into a scratch buffer kept per thread and dtype (:func:`_workspace`), so that
    repeated calls do not touch fresh pages.
    """
    A = np.asarray(A)
    B = np.asarray(B)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"matmul_packed expects 2-D A (N, M) and B (M, P), got shapes {A.shape} and {B.shape}")
    if A.dtype != B.dtype or A.dtype not in _FLOATS:
        raise TypeError(f"matmul_packed expects A and B both float32 or both float64, got {A.dtype} and {B.dtype}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul_packed: A {A.shape} @ B {B.shape}: A has {A.shape[1]} columns, "
                         f"B has {B.shape[0]} rows")
    blocks = _blocks_here(A.dtype)
    return gemm(A, B, blocks.kc, blocks.mc, blocks.nc, _workspace(A.dtype, blocks))
