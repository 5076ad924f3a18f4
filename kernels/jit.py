"""Numba kernels: the same names and signatures as :mod:`kernels.reference`.

Shapes, dtypes and the math are documented once, in :mod:`kernels.reference`.
Habits kept here:

* ``@njit(cache=True)``, explicit loops, innermost loop over the contiguous last axis;
  the Linear layers' GEMMs go to BLAS into preallocated outputs through
  :mod:`kernels.blas` (NumPy's own OpenBLAS where it is bundled, else SciPy's -- what
  ``np.dot`` inside ``@njit`` would call); ``matmul_naive``/``matmul`` stay hand-written:
  they are the teaching kernels the benchmark compares with BLAS;
* ``exp`` through :func:`kernels.vmath.vexp` (SIMD; Numba's ``np.exp`` is scalar libm),
  ``error_model="numpy"`` where a loop divides (else a zero-division branch stops
  vectorisation);
* constants typed from the input (``one = x.dtype.type(1)``) so float32 stays
  float32 -- a bare ``1.0`` would promote the arithmetic to float64;
* ``fastmath`` only as a subset that keeps NaN/inf checks (``contract`` for FMAs,
  ``reassoc`` for row sums), no ``parallel``: the equivalence tests compare these
  kernels against NumPy to within a few ulps per reduction step.

Every public name is a Python function wrapped in :func:`kernels.contract.kernel`
(the argument check shared with the NumPy backend: dtypes, shapes, labels, C order)
that calls a compiled ``_name`` kernel.  Functions that accept both integer labels
and dense targets dispatch to two compiled kernels (Numba types branches per
signature).  The compiled kernels may assume what the check guarantees: one float
dtype, C-contiguous arrays, labels in range, K >= 1.

NaN: every clip, max and select is written so that a NaN input gives the NaN NumPy
gives (``lo if v < lo else v`` keeps NaN; ``v if v > lo else lo`` would not).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import fused
from .blas import gemm_ab, gemm_abt, gemm_at_b
from .contract import kernel
from .gemm import matmul_packed
from .reference import EPS
from .vmath import vexp, vlog, vmax


@njit(cache=True)
def _matmul_naive(A, B):
    N, M = A.shape
    P = B.shape[1]
    C = np.zeros((N, P), dtype=A.dtype)
    for i in range(N):
        for j in range(P):
            acc = C[i, j]
            for k in range(M):
                acc += A[i, k] * B[k, j]
            C[i, j] = acc
    return C


@kernel
def matmul_naive(A, B):
    return _matmul_naive(A, B)


@kernel
def matmul(A, B):
    # The packed, cache-blocked kernel of kernels/gemm.py (BLIS-style, block sizes from the
    # machine's caches, an LLVM-vector micro-kernel); the teaching counterpart of BLAS.
    return matmul_packed(A, B)


@njit(cache=True)
def _linear_forward(x, W, b, y):
    # One BLAS GEMM into the output y (allocated by NumPy in the wrapper; kernels.blas calls
    # NumPy's own OpenBLAS, else SciPy's), then the bias in one pass over the output rows.
    Bn, I = x.shape
    O = W.shape[1]
    if I == 0:                                     # BLAS is not called with an empty inner dimension
        y[:] = 0
    elif Bn == 1:                                  # one row: GEMV (np.dot -> SciPy's ?gemv); OpenBLAS's
        np.dot(x[0], W, y[0])                      # dgemm with one row ran at 0.4x NumPy's here
    else:
        gemm_ab(y, x, W, x.dtype.type(1), x.dtype.type(0))
    for r in range(Bn):
        row = y[r]
        for j in range(O):
            row[j] += b[j]
    return y


@kernel
def linear_forward(x, W, b):
    return _linear_forward(x, W, b, np.empty((x.shape[0], W.shape[1]), x.dtype))


#: Up to this many rows, ``linear_backward`` forms ``dW`` as a sum of outer products written
#: row by row (one pass over dW); BLAS's GEMM with an inner dimension this small spends
#: more time packing than computing.
_OUTER_ROWS = 4


@njit(cache=True, fastmath={"contract"})
def _outer_sum(x, dy, dW):
    """``dW = x.T @ dy`` for few rows: each row of dW written once, the j loop vectorised."""
    Bn, I = x.shape
    O = dy.shape[1]
    zero = dW.dtype.type(0)
    for k in range(I):
        row = dW[k]
        for j in range(O):
            row[j] = zero
        for b in range(Bn):
            a = x[b, k]
            g = dy[b]
            for j in range(O):
                row[j] += a * g[j]


@njit(cache=True)
def _linear_backward(x, W, dy, dx, dW):
    # dx = dy @ W.T and dW = x.T @ dy as BLAS GEMMs into the outputs (allocated by NumPy in
    # the wrapper); the transposes are BLAS flags (W.T and x.T are F-ordered views), not copies.
    Bn, O = dy.shape
    if O == 0 or Bn == 0:                          # BLAS is not called with an empty inner dimension
        dx[:] = 0
        dW[:] = 0
    else:
        one, zero = dy.dtype.type(1), dy.dtype.type(0)
        gemm_abt(dx, dy, W, one, zero)
        if Bn <= _OUTER_ROWS:
            _outer_sum(x, dy, dW)
        else:
            gemm_at_b(dW, x, dy, one, zero)
    db = np.zeros(O, dtype=dy.dtype)
    for i in range(Bn):
        for j in range(O):
            db[j] += dy[i, j]
    return dx, dW, db


@kernel
def linear_backward(x, W, dy):
    return _linear_backward(x, W, dy, np.empty((dy.shape[0], W.shape[0]), dy.dtype), np.empty(W.shape, dy.dtype))


# Elementwise kernels walk flat views: the output is allocated C-ordered (np.empty, not
# empty_like, which would keep an F layout whose ravel() is a copy) and inputs are raveled
# (a view for the C-contiguous arrays the contract passes in).  The output is allocated by
# NumPy in the Python wrapper, not inside the compiled kernel: NumPy asks for huge pages on
# large arrays, Numba's allocator does not, and at 60000 x 784 the page faults alone made
# relu 1.8x slower than np.maximum (75 vs 42 ms, float32).

@njit(cache=True)
def _relu_forward(x, out):
    xf = x.ravel()
    of = out.ravel()
    zero = x.dtype.type(0)
    for i in range(xf.size):
        v = xf[i]
        of[i] = zero if v <= zero else v          # NaN > 0 and NaN <= 0 are both False: NaN stays
    return out


@kernel
def relu_forward(x):
    return _relu_forward(x, np.empty(x.shape, x.dtype))


@njit(cache=True)
def _relu_backward(x, dy, out):
    xf = x.ravel()
    gf = dy.ravel()
    of = out.ravel()
    zero = dy.dtype.type(0)
    for i in range(xf.size):
        of[i] = gf[i] if xf[i] > zero else zero   # as np.where(x > 0, dy, 0): NaN x gives 0
    return out


@kernel
def relu_backward(x, dy):
    return _relu_backward(x, dy, np.empty(dy.shape, dy.dtype))


@njit(cache=True, error_model="numpy")
def _sigmoid_forward(x, out):
    # 1 / (1 + e) or e / (1 + e) with e = exp(-|x|) <= 1 (never overflows), through the
    # SIMD vexp; branch-free, so the loop vectorises.  NaN: |NaN| and vexp(NaN) are NaN.
    xf = x.ravel()
    of = out.ravel()
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for i in range(xf.size):
        v = xf[i]
        e = vexp(-abs(v))
        of[i] = (one if v >= zero else e) / (one + e)
    return out


@kernel
def sigmoid_forward(x):
    return _sigmoid_forward(x, np.empty(x.shape, x.dtype))


@njit(cache=True)
def _sigmoid_backward(y, dy, out):
    yf = y.ravel()
    gf = dy.ravel()
    of = out.ravel()
    one = y.dtype.type(1)
    for i in range(yf.size):
        v = yf[i]
        of[i] = gf[i] * v * (one - v)
    return out


@kernel
def sigmoid_backward(y, dy):
    return _sigmoid_backward(y, dy, np.empty(dy.shape, dy.dtype))


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _softmax(z, s):
    # Per row: the max through vmax (NaN-propagating, vectorises), exp(z - max) through the
    # SIMD vexp, the sum reassociated (so it vectorises), one multiply by 1/sum.  The output
    # s is allocated by NumPy in the wrapper (huge pages for large arrays, as the others).
    Bn, K = z.shape
    for i in range(Bn):
        row = z[i]
        out = s[i]
        m = row[0]
        for k in range(1, K):
            m = vmax(m, row[k])
        total = z.dtype.type(0)
        for k in range(K):
            e = vexp(row[k] - m)
            out[k] = e
            total += e
        for k in range(K):
            out[k] /= total
    return s


@kernel
def softmax(z):
    return _softmax(z, np.empty(z.shape, z.dtype))


@njit(cache=True)
def _softmax_jacobian(s):
    Bn, K = s.shape
    J = np.empty((Bn, K, K), dtype=s.dtype)
    for b in range(Bn):
        for i in range(K):
            si = s[b, i]
            for j in range(K):
                J[b, i, j] = -si * s[b, j]
            J[b, i, i] += si
    return J


@kernel
def softmax_jacobian(s):
    return _softmax_jacobian(s)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _softmax_backward(s, ds, dz):
    # the row's dot product reassociated so it vectorises (strict order: a scalar loop)
    Bn, K = s.shape
    for i in range(Bn):
        dot = s.dtype.type(0)
        for k in range(K):
            dot += s[i, k] * ds[i, k]
        for k in range(K):
            dz[i, k] = s[i, k] * (ds[i, k] - dot)
    return dz


@kernel
def softmax_backward(s, ds):
    return _softmax_backward(s, ds, np.empty(s.shape, s.dtype))


@njit(cache=True)
def _ce_prob_labels(p, y, eps):
    Bn = p.shape[0]
    loss = np.empty(Bn, dtype=p.dtype)
    lo = p.dtype.type(eps)
    one = p.dtype.type(1)
    for i in range(Bn):
        v = p[i, y[i]]
        v = lo if v < lo else (one if v > one else v)     # np.clip(v, eps, 1): NaN stays NaN
        loss[i] = -np.log(v)
    return loss


@njit(cache=True)
def _ce_prob_dense(p, t, eps):
    Bn, K = p.shape
    loss = np.empty(Bn, dtype=p.dtype)
    lo = p.dtype.type(eps)
    one = p.dtype.type(1)
    for i in range(Bn):
        acc = p.dtype.type(0)
        for k in range(K):
            v = p[i, k]
            v = lo if v < lo else (one if v > one else v)     # np.clip(v, eps, 1): NaN stays NaN
            acc += t[i, k] * vlog(v)
        loss[i] = -acc
    return loss


@kernel
def cross_entropy(p, y, eps=EPS):
    if y.ndim == 1:
        return _ce_prob_labels(p, y, eps)
    return _ce_prob_dense(p, y, eps)


# The clip's derivative is zero where it is active (v < eps or v > 1); a NaN is in
# neither range and gives -t / (B NaN) = NaN, as in NumPy.

@njit(cache=True)
def _ce_prob_backward_labels(p, y, eps):
    Bn, K = p.shape
    dp = np.zeros_like(p)
    lo = p.dtype.type(eps)
    one = p.dtype.type(1)
    nb = p.dtype.type(Bn)
    for i in range(Bn):
        v = p[i, y[i]]
        if not (v < lo or v > one):
            dp[i, y[i]] = -one / (nb * v)
    return dp


@njit(cache=True)
def _ce_prob_backward_dense(p, t, eps):
    Bn, K = p.shape
    dp = np.zeros_like(p)
    lo = p.dtype.type(eps)
    one = p.dtype.type(1)
    nb = p.dtype.type(Bn)
    for i in range(Bn):
        for k in range(K):
            v = p[i, k]
            if not (v < lo or v > one):
                dp[i, k] = -t[i, k] / (nb * v)
    return dp


@kernel
def cross_entropy_backward(p, y, eps=EPS):
    if y.ndim == 1:
        return _ce_prob_backward_labels(p, y, eps)
    return _ce_prob_backward_dense(p, y, eps)


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _row_max_logsum(z, i):
    """``(m, log(sum_k exp(z_k - m)))`` of row ``i``, ``m`` its max: the log-sum-exp is their sum.
    The losses add ``m - z_y`` first, which is exact, so logits of +-1e4 lose no digits."""
    row = z[i]
    K = row.shape[0]
    m = row[0]
    for k in range(1, K):
        m = vmax(m, row[k])
    total = z.dtype.type(0)
    for k in range(K):
        total += vexp(row[k] - m)
    return m, np.log(total)


@njit(cache=True)
def _ce_logits_labels(z, y):
    Bn = z.shape[0]
    loss = np.empty(Bn, dtype=z.dtype)
    for i in range(Bn):
        m, log_total = _row_max_logsum(z, i)
        loss[i] = (m - z[i, y[i]]) + log_total
    return loss


@njit(cache=True)
def _ce_logits_dense(z, t):
    Bn, K = z.shape
    loss = np.empty(Bn, dtype=z.dtype)
    for i in range(Bn):
        m, log_total = _row_max_logsum(z, i)
        mass = z.dtype.type(0)
        dot = z.dtype.type(0)
        for k in range(K):
            mass += t[i, k]
            dot += t[i, k] * (m - z[i, k])
        loss[i] = dot + mass * log_total
    return loss


@kernel
def cross_entropy_logits(z, y):
    if y.ndim == 1:
        return _ce_logits_labels(z, y)
    return _ce_logits_dense(z, y)


@njit(cache=True)
def _sce_backward_labels(p, y):
    Bn, K = p.shape
    dz = np.empty_like(p)
    nb = p.dtype.type(Bn)
    one = p.dtype.type(1)
    for i in range(Bn):
        for k in range(K):
            dz[i, k] = p[i, k] / nb
        dz[i, y[i]] = (p[i, y[i]] - one) / nb
    return dz


@njit(cache=True)
def _sce_backward_dense(p, t):
    # d/dz (logsumexp(z) sum_k t_k - <t, z>) = p sum_k t_k - t  (= p - t for rows summing to 1)
    Bn, K = p.shape
    dz = np.empty_like(p)
    nb = p.dtype.type(Bn)
    for i in range(Bn):
        mass = p.dtype.type(0)
        for k in range(K):
            mass += t[i, k]
        for k in range(K):
            dz[i, k] = (p[i, k] * mass - t[i, k]) / nb
    return dz


@kernel
def softmax_cross_entropy_backward(p, y):
    if y.ndim == 1:
        return _sce_backward_labels(p, y)
    return _sce_backward_dense(p, y)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _mse(pred, target):
    # the sum reassociated so it vectorises (strict order made it a scalar loop: 0.67x NumPy's
    # pairwise SIMD mean at 1024x512 float32); no nnan/ninf, so NaN/inf still come out
    Bn, K = pred.shape
    loss = np.empty(Bn, dtype=pred.dtype)
    nk = pred.dtype.type(K)
    for i in range(Bn):
        acc = pred.dtype.type(0)
        for k in range(K):
            d = pred[i, k] - target[i, k]
            acc += d * d
        loss[i] = acc / nk
    return loss


@kernel
def mse(pred, target):
    return _mse(pred, target)


@njit(cache=True, error_model="numpy")
def _mse_backward(pred, target, g):
    # one flat loop over the contiguous rows (a loop over K = 10 per row did not vectorise)
    n = pred.size
    scale = pred.dtype.type(2) / pred.dtype.type(max(n, 1))
    p = pred.reshape(n)
    t = target.reshape(n)
    out = g.reshape(n)
    for i in range(n):
        out[i] = (p[i] - t[i]) * scale
    return g


@kernel
def mse_backward(pred, target):
    # output allocated by NumPy, as for the other elementwise kernels (its allocator hands
    # large arrays huge pages; np.empty inside @njit faulted in 4 KiB pages: 0.80x at 60000x10)
    return _mse_backward(pred, target, np.empty(pred.shape, pred.dtype))


# The fused per-sample SGD epoch (kernels/fused.py) behind the same contract as its NumPy twin.
@kernel
def sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr):
    return fused.sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr)


# Per-sample SGD with compact (deferred) updates (kernels/fused_compact.py), the same contract.
from .fused_compact import sgd_epoch_compact as _sgd_epoch_compact  # noqa: E402


@kernel
def sgd_epoch_compact(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, block,
                      compact):
    return _sgd_epoch_compact(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                              block, compact)


# The fused mini-batch SGD epoch (kernels/fused_minibatch.py) behind the same contract as its NumPy twin.
from .fused_minibatch import sgd_minibatch_epoch as _sgd_minibatch_epoch  # noqa: E402


@kernel
def sgd_minibatch_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                        batch_size, momentum, vel_w, vel_b):
    return _sgd_minibatch_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                                batch_size, momentum, vel_w, vel_b)


# ---- issue-13 groups: each kept in its own module, re-exported here -------------------------------
# -- layers (issue 13): activations, dropout, normalisation (kernels/jit_layers.py) --
from .jit_layers import (  # noqa: E402,F401
    tanh_forward,
    tanh_backward,
    leaky_relu_forward,
    leaky_relu_backward,
    gelu_forward,
    gelu_backward,
    dropout_forward,
    dropout_backward,
    batchnorm_forward,
    batchnorm_eval,
    batchnorm_backward,
    layernorm_forward,
    layernorm_backward,
)
# -- end layers --

# -- losses (issue 13) (kernels/jit_losses.py) --
from .jit_losses import (  # noqa: E402,F401
    bce, bce_backward, bce_with_logits, bce_with_logits_backward, l1,
    l1_backward, huber, huber_backward, nll, nll_backward,
)
# -- end losses --

# -- optimiser steps (issue 13) (kernels/jit_optim.py) --
from .jit_optim import adagrad_step, adam_step, rmsprop_step, sgd_step  # noqa: E402,F401
# -- end optimiser steps --
