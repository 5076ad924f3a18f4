"""BLAS ``?gemm`` inside ``@njit``: ``C = beta C + alpha op(A) op(B)`` on row-major arrays.

Numba's ``np.dot(a, b, out)`` always overwrites ``out`` (BLAS ``beta = 0``), so an SGD
step built on it computes the weight gradient into a buffer and then makes another
pass over the weights.  :func:`gemm_at_b` lets BLAS accumulate the scaled product
straight into the weights (``beta = 1, alpha = -lr``) or into the momentum buffer
(``beta = momentum, alpha = 1``): one pass fewer over every weight matrix per batch.

The linear kernels and the epoch kernels call :func:`gemm_ab` / :func:`gemm_abt` /
:func:`gemm_at_b` rather than ``np.dot`` for a second reason: the library.  ``np.dot``
inside ``@njit`` calls SciPy's ``cython_blas``; these call NumPy's bundled OpenBLAS when
it is there (:mod:`kernels.blas_lib`: the same library as NumPy's ``@``, a newer build,
1.2-1.3x faster on float32 GEMMs with few rows), SciPy's otherwise.

How it is called: the addresses of ``sgemm``/``dgemm`` are registered with LLVM under
symbol names that say which integer width they take when this module is imported, and
the compiled code calls those names (an ``@intrinsic`` declaring an external function),
so kernels that use it can be cached on disk: the cached machine code refers to the
names, which are bound again at every import (and :mod:`kernels.numba_cache` drops the
cache when the library changes).
"""
from __future__ import annotations

from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from .blas_lib import numpy_openblas

_NUMPY_OPENBLAS = numpy_openblas()
#: Bits of a Fortran INTEGER in the library's interface: 64 (NumPy's ILP64 OpenBLAS) or 32.
INT_BITS = 64 if _NUMPY_OPENBLAS else 32
_SYMBOLS = {types.float32: f"scratchnet_sgemm_i{INT_BITS}", types.float64: f"scratchnet_dgemm_i{INT_BITS}"}
if _NUMPY_OPENBLAS:
    llvm.add_symbol(_SYMBOLS[types.float32], _NUMPY_OPENBLAS[1])
    llvm.add_symbol(_SYMBOLS[types.float64], _NUMPY_OPENBLAS[2])
else:
    for _dtype, _name in (("sgemm", _SYMBOLS[types.float32]), ("dgemm", _SYMBOLS[types.float64])):
        llvm.add_symbol(_name, get_cython_function_address("scipy.linalg.cython_blas", _dtype))


@intrinsic
def _gemm_call(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Fortran ``?gemm`` with every argument passed by pointer (pointers as int64 addresses)."""
    if not isinstance(alpha, types.Float) or alpha not in _SYMBOLS:
        return None
    sig = types.void(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    fname = _SYMBOLS[alpha]

    def codegen(context, builder, sig, args):
        i8, fint = ir.IntType(8), ir.IntType(INT_BITS)
        i8p = i8.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p] * 13)
        fn = cgutils.get_or_insert_function(builder.module, fnty, fname)
        ptrs = []
        for pos, val in enumerate(args):
            if pos in (6, 8, 11):                  # a, b, c: addresses of the matrices
                ptrs.append(builder.inttoptr(val, i8p))
                continue
            if pos in (0, 1):                      # transa, transb: Fortran CHARACTER
                val = builder.trunc(val, i8)
            elif pos not in (5, 10):               # m, n, k, lda, ldb, ldc: Fortran INTEGER
                if INT_BITS < 64:
                    val = builder.trunc(val, fint)
            slot = cgutils.alloca_once_value(builder, val)
            ptrs.append(builder.bitcast(slot, i8p))
        builder.call(fn, ptrs)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _check3(C, A, B, name):
    if not (C.flags.c_contiguous and A.flags.c_contiguous and B.flags.c_contiguous):
        raise ValueError(name)
    if A.itemsize != C.itemsize or B.itemsize != C.itemsize:
        raise TypeError(name)


@njit(cache=True, inline="always")
def _scale(C, beta):
    """``C *= beta`` (``beta == 0``: C = 0, NaN or not, as BLAS does); for an empty inner dimension."""
    Cf = C.reshape(C.size)
    dt = C.dtype.type
    for q in range(Cf.shape[0]):
        Cf[q] = dt(0) if beta == 0 else Cf[q] * dt(beta)


@njit(cache=True, inline="always")
def _gemm_colmajor(transa, transb, m, n, k, alpha, P, ldp, Q, ldq, beta, C, ldc):
    """``?gemm`` on the column-major views of row-major arrays, plus the empty cases BLAS
    does not take: nothing to do when ``m`` or ``n`` is 0, ``C = beta C`` when ``k`` is 0."""
    if m == 0 or n == 0:
        return
    if k == 0:
        _scale(C, beta)
        return
    dt = C.dtype.type
    _gemm_call(transa, transb, m, n, k, dt(alpha), P.ctypes.data, ldp, Q.ctypes.data, ldq, dt(beta),
               C.ctypes.data, ldc)


@njit(cache=True, inline="always")
def gemm_at_b(C, A, D, alpha, beta):
    """``C = beta * C + alpha * A.T @ D`` for C-contiguous C (I, O), A (nb, I), D (nb, O), one float dtype.

    In BLAS's column-major view the row-major C is ``C.T`` (O x I), so this is
    ``C.T = beta C.T + alpha D.T @ A``: ``?gemm('N', 'T', O, I, nb, alpha, D, O, A, I, beta, C, O)``.
    """
    nb, I = A.shape
    O = D.shape[1]
    _check3(C, A, D, "gemm_at_b: C, A and D must be C-contiguous arrays of one float dtype")
    if C.shape[0] != I or C.shape[1] != O or D.shape[0] != nb:
        raise ValueError("gemm_at_b: shapes must be C (I, O), A (nb, I), D (nb, O)")
    _gemm_colmajor(ord("N"), ord("T"), O, I, nb, alpha, D, O, A, I, beta, C, O)


@njit(cache=True, inline="always")
def gemm_ab(C, A, B, alpha, beta):
    """``C = beta * C + alpha * A @ B`` for C-contiguous C (m, n), A (m, k), B (k, n), one float dtype.

    Column-major, that is ``C.T = beta C.T + alpha B.T A.T``:
    ``?gemm('N', 'N', n, m, k, alpha, B, n, A, k, beta, C, n)``.
    """
    _check3(C, A, B, "gemm_ab: C, A and B must be C-contiguous arrays of one float dtype")
    m, k = A.shape
    n = B.shape[1]
    if C.shape[0] != m or C.shape[1] != n or B.shape[0] != k:
        raise ValueError("gemm_ab: shapes must be C (m, n), A (m, k), B (k, n)")
    _gemm_colmajor(ord("N"), ord("N"), n, m, k, alpha, B, n, A, k, beta, C, n)


@njit(cache=True, inline="always")
def gemm_abt(C, A, B, alpha, beta):
    """``C = beta * C + alpha * A @ B.T`` for C-contiguous C (m, n), A (m, k), B (n, k), one float dtype.

    Column-major: ``C.T = beta C.T + alpha B A.T`` with B's memory a (k, n) column-major
    matrix: ``?gemm('T', 'N', n, m, k, alpha, B, k, A, k, beta, C, n)``.
    """
    _check3(C, A, B, "gemm_abt: C, A and B must be C-contiguous arrays of one float dtype")
    m, k = A.shape
    n = B.shape[0]
    if C.shape[0] != m or C.shape[1] != n or B.shape[1] != k:
        raise ValueError("gemm_abt: shapes must be C (m, n), A (m, k), B (n, k)")
    _gemm_colmajor(ord("T"), ord("N"), n, m, k, alpha, B, k, A, k, beta, C, n)
