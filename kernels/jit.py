"""Numba kernels: the same names and signatures as :mod:`kernels.reference`.

Shapes, dtypes and the math are documented once, in :mod:`kernels.reference`.
Habits kept here:

* ``@njit(cache=True)``, explicit loops (``np.dot``/``@`` inside ``njit`` would
  need SciPy), innermost loop over the contiguous last axis;
* constants typed from the input (``one = x.dtype.type(1)``) so float32 stays
  float32 -- a bare ``1.0`` would promote the arithmetic to float64;
* no ``fastmath`` and no ``parallel``: the equivalence tests compare these
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
from .contract import kernel
from .reference import EPS


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


#: Bytes of B one column panel of ``matmul`` may span (M rows x panel width): half the L2.
_PANEL_BYTES = 512 * 1024


@njit(cache=True, fastmath={"contract"})
def _matmul(A, B):
    # The i-k-j order (innermost loop walks rows of B and C contiguously), with two changes
    # that keep the loads and stores per FMA down (measured: ~35% -> 50-75% of 1-thread BLAS):
    #   * register blocking: two rows of C and four values of k per sweep of the j loop, so
    #     each C element is loaded and stored once per 8 multiply-adds instead of once per one;
    #   * column panels: j runs over panels of B narrow enough (M x width <= _PANEL_BYTES)
    #     to stay in L2 while all rows i sweep over them.
    # "contract" lets LLVM fuse a*b + c into FMA; the sum order is that of the loop.
    N, M = A.shape
    P = B.shape[1]
    C = np.zeros((N, P), dtype=A.dtype)
    width = _PANEL_BYTES // max(1, M * A.itemsize)
    width = max(16, min(P, width - width % 16))
    M4 = M - M % 4
    N2 = N - N % 2
    for j0 in range(0, P, width):
        j1 = min(P, j0 + width)
        w = j1 - j0
        for i in range(0, N2, 2):
            c0 = C[i, j0:j1]
            c1 = C[i + 1, j0:j1]
            for k in range(0, M4, 4):
                b0 = B[k, j0:j1]
                b1 = B[k + 1, j0:j1]
                b2 = B[k + 2, j0:j1]
                b3 = B[k + 3, j0:j1]
                a00, a01, a02, a03 = A[i, k], A[i, k + 1], A[i, k + 2], A[i, k + 3]
                a10, a11, a12, a13 = A[i + 1, k], A[i + 1, k + 1], A[i + 1, k + 2], A[i + 1, k + 3]
                for j in range(w):
                    x0, x1, x2, x3 = b0[j], b1[j], b2[j], b3[j]
                    c0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
                    c1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            for k in range(M4, M):
                b = B[k, j0:j1]
                a0, a1 = A[i, k], A[i + 1, k]
                for j in range(w):
                    c0[j] += a0 * b[j]
                    c1[j] += a1 * b[j]
        for i in range(N2, N):
            c = C[i, j0:j1]
            for k in range(M):
                a = A[i, k]
                b = B[k, j0:j1]
                for j in range(w):
                    c[j] += a * b[j]
    return C


@kernel
def matmul(A, B):
    return _matmul(A, B)


@njit(cache=True)
def _linear_forward(x, W, b):
    # The blocked matmul, then the bias row by row.
    y = _matmul(x, W)
    for i in range(y.shape[0]):
        row = y[i]
        for j in range(row.shape[0]):
            row[j] += b[j]
    return y


@kernel
def linear_forward(x, W, b):
    return _linear_forward(x, W, b)


#: From this many rows on, ``linear_backward`` forms ``dx`` as a blocked matmul with a
#: transposed copy of W; below it, as row-by-row dot products (no 784x512 copy per sample).
_DX_MATMUL_ROWS = 32


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dx_by_rows(dy, W):
    """``dy @ W.T`` as dot products of contiguous rows (reassociation lets them vectorise)."""
    Bn, O = dy.shape
    I = W.shape[0]
    dx = np.empty((Bn, I), dtype=dy.dtype)
    for i in range(Bn):
        g = dy[i]
        for k in range(I):
            w = W[k]
            acc = dy.dtype.type(0)
            for j in range(O):
                acc += g[j] * w[j]
            dx[i, k] = acc
    return dx


@njit(cache=True)
def _linear_backward(x, W, dy):
    # dx = dy @ W.T and dW = x.T @ dy through the blocked matmul (with transposed copies,
    # so its inner loop still walks rows); small batches take the row-dot path for dx.
    Bn, O = dy.shape
    if Bn >= _DX_MATMUL_ROWS:
        dx = _matmul(dy, np.ascontiguousarray(W.T))
    else:
        dx = _dx_by_rows(dy, W)
    dW = _matmul(np.ascontiguousarray(x.T), dy)
    db = np.zeros(O, dtype=dy.dtype)
    for i in range(Bn):
        for j in range(O):
            db[j] += dy[i, j]
    return dx, dW, db


@kernel
def linear_backward(x, W, dy):
    return _linear_backward(x, W, dy)


# Elementwise kernels walk flat views: the output is allocated C-ordered (np.empty, not
# empty_like, which would keep an F layout whose ravel() is a copy) and inputs are raveled
# (a view for the C-contiguous arrays the contract passes in).

@njit(cache=True)
def _relu_forward(x):
    out = np.empty(x.shape, dtype=x.dtype)
    xf = x.ravel()
    of = out.ravel()
    zero = x.dtype.type(0)
    for i in range(xf.size):
        v = xf[i]
        of[i] = zero if v <= zero else v          # NaN > 0 and NaN <= 0 are both False: NaN stays
    return out


@kernel
def relu_forward(x):
    return _relu_forward(x)


@njit(cache=True)
def _relu_backward(x, dy):
    out = np.empty(dy.shape, dtype=dy.dtype)
    xf = x.ravel()
    gf = dy.ravel()
    of = out.ravel()
    zero = dy.dtype.type(0)
    for i in range(xf.size):
        of[i] = gf[i] if xf[i] > zero else zero   # as np.where(x > 0, dy, 0): NaN x gives 0
    return out


@kernel
def relu_backward(x, dy):
    return _relu_backward(x, dy)


@njit(cache=True)
def _sigmoid_forward(x):
    out = np.empty(x.shape, dtype=x.dtype)
    xf = x.ravel()
    of = out.ravel()
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for i in range(xf.size):
        v = xf[i]
        if v >= zero:
            of[i] = one / (one + np.exp(-v))
        else:                                     # also NaN: exp(NaN) / (1 + NaN) is NaN
            e = np.exp(v)
            of[i] = e / (one + e)
    return out


@kernel
def sigmoid_forward(x):
    return _sigmoid_forward(x)


@njit(cache=True)
def _sigmoid_backward(y, dy):
    out = np.empty(dy.shape, dtype=dy.dtype)
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
    return _sigmoid_backward(y, dy)


@njit(cache=True)
def _softmax(z):
    Bn, K = z.shape
    s = np.empty_like(z)
    for i in range(Bn):
        m = z[i, 0]                               # a NaN anywhere in the row makes it all NaN,
        for k in range(1, K):                     # here through m or through the sum below
            if z[i, k] > m:
                m = z[i, k]
        total = z.dtype.type(0)
        for k in range(K):
            e = np.exp(z[i, k] - m)
            s[i, k] = e
            total += e
        for k in range(K):
            s[i, k] /= total
    return s


@kernel
def softmax(z):
    return _softmax(z)


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


@njit(cache=True)
def _softmax_backward(s, ds):
    Bn, K = s.shape
    dz = np.empty_like(s)
    for i in range(Bn):
        dot = s.dtype.type(0)
        for k in range(K):
            dot += s[i, k] * ds[i, k]
        for k in range(K):
            dz[i, k] = s[i, k] * (ds[i, k] - dot)
    return dz


@kernel
def softmax_backward(s, ds):
    return _softmax_backward(s, ds)


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
            acc += t[i, k] * np.log(v)
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


@njit(cache=True)
def _row_logsumexp(z, i):
    K = z.shape[1]
    m = z[i, 0]
    for k in range(1, K):
        if z[i, k] > m:
            m = z[i, k]
    total = z.dtype.type(0)
    for k in range(K):
        total += np.exp(z[i, k] - m)
    return m + np.log(total)


@njit(cache=True)
def _ce_logits_labels(z, y):
    Bn = z.shape[0]
    loss = np.empty(Bn, dtype=z.dtype)
    for i in range(Bn):
        loss[i] = _row_logsumexp(z, i) - z[i, y[i]]
    return loss


@njit(cache=True)
def _ce_logits_dense(z, t):
    Bn, K = z.shape
    loss = np.empty(Bn, dtype=z.dtype)
    for i in range(Bn):
        lse = _row_logsumexp(z, i)
        mass = z.dtype.type(0)
        dot = z.dtype.type(0)
        for k in range(K):
            mass += t[i, k]
            dot += t[i, k] * z[i, k]
        loss[i] = lse * mass - dot
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


@njit(cache=True)
def _mse(pred, target):
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


@njit(cache=True)
def _mse_backward(pred, target):
    Bn, K = pred.shape
    g = np.empty_like(pred)
    scale = pred.dtype.type(2) / pred.dtype.type(max(Bn * K, 1))
    for i in range(Bn):
        for k in range(K):
            g[i, k] = (pred[i, k] - target[i, k]) * scale
    return g


@kernel
def mse_backward(pred, target):
    return _mse_backward(pred, target)


# The fused per-sample SGD epoch (kernels/fused.py) behind the same contract as its NumPy twin.
@kernel
def sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr):
    return fused.sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr)
