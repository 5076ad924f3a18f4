"""``C = beta * C + alpha * A.T @ D`` inside ``@njit`` through SciPy's BLAS ``?gemm``.

Numba's ``np.dot(a, b, out)`` always overwrites ``out`` (BLAS ``beta = 0``), so an SGD
step built on it computes the weight gradient into a buffer and then makes another
pass over the weights.  :func:`gemm_at_b` lets BLAS accumulate the scaled product
straight into the weights (``beta = 1, alpha = -lr``) or into the momentum buffer
(``beta = momentum, alpha = 1``): one pass fewer over every weight matrix per batch.

How it is called: the addresses of ``sgemm``/``dgemm`` from
``scipy.linalg.cython_blas`` are registered with LLVM under fixed symbol names when
this module is imported, and the compiled code calls those names (an ``@intrinsic``
declaring an external function), so kernels that use it can be cached on disk: the
cached machine code refers to the names, which are bound again at every import.
"""
from __future__ import annotations

from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

_SYMBOLS = {types.float32: "scratchnet_sgemm", types.float64: "scratchnet_dgemm"}
for _dtype, _name in (("sgemm", "scratchnet_sgemm"), ("dgemm", "scratchnet_dgemm")):
    llvm.add_symbol(_name, get_cython_function_address("scipy.linalg.cython_blas", _dtype))


@intrinsic
def _gemm_call(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Fortran ``?gemm`` with every argument passed by pointer (pointers as int64 addresses)."""
    if not isinstance(alpha, types.Float) or alpha not in _SYMBOLS:
        return None
    sig = types.void(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    fname = _SYMBOLS[alpha]

    def codegen(context, builder, sig, args):
        i8, i32 = ir.IntType(8), ir.IntType(32)
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
            elif pos not in (5, 10):               # m, n, k, lda, ldb, ldc: Fortran INTEGER (32 bit)
                val = builder.trunc(val, i32)
            slot = cgutils.alloca_once_value(builder, val)
            ptrs.append(builder.bitcast(slot, i8p))
        builder.call(fn, ptrs)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def gemm_at_b(C, A, D, alpha, beta):
    """``C = beta * C + alpha * A.T @ D`` for C-contiguous C (I, O), A (nb, I), D (nb, O), one float dtype.

    In BLAS's column-major view the row-major C is ``C.T`` (O x I), so this is
    ``C.T = beta C.T + alpha D.T @ A``: ``?gemm('N', 'T', O, I, nb, alpha, D, O, A, I, beta, C, O)``.
    """
    nb, I = A.shape
    O = D.shape[1]
    if not (C.flags.c_contiguous and A.flags.c_contiguous and D.flags.c_contiguous):
        raise ValueError("gemm_at_b: C, A and D must be C-contiguous")
    if A.itemsize != C.itemsize or D.itemsize != C.itemsize:
        raise TypeError("gemm_at_b: C, A and D must have one float dtype")
    if C.shape[0] != I or C.shape[1] != O or D.shape[0] != nb:
        raise ValueError("gemm_at_b: shapes must be C (I, O), A (nb, I), D (nb, O)")
    if I == 0 or O == 0:
        return
    dt = C.dtype.type
    if nb == 0:                                    # BLAS needs k >= 1; alpha * (empty sum) = 0
        Cf = C.reshape(C.size)
        for k in range(Cf.shape[0]):
            Cf[k] *= dt(beta)
        return
    _gemm_call(ord("N"), ord("T"), O, I, nb, dt(alpha), D.ctypes.data, O, A.ctypes.data, I, dt(beta),
               C.ctypes.data, O)
