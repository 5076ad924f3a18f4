"""Pure NumPy reference kernels: the readable math, one function per operation.

Every function here has a twin with the same name and signature in
:mod:`kernels.jit` (Numba).  The contract, shared by both:

* array inputs are C-contiguous ``float32`` or ``float64`` (labels ``int64``);
* the floating output dtype equals the floating input dtype;
* shapes are checked by the caller (``net``), not here: kernels are the hot
  path and trust their arguments.

Shapes below use ``B`` (batch rows), ``I`` (input features), ``O`` (output
features) and ``K`` (classes).
"""
from __future__ import annotations

import numpy as np

#: Probability floor used by :func:`cross_entropy` on probabilities.
EPS = 1e-12


def matmul_naive(A, B):
    """Matrix product ``C = A @ B`` -- the textbook i-j-k triple loop (NumPy: BLAS).

    A : (N, M), B : (M, P) -> C : (N, P), dtype of A.
    """
    return A @ B


def matmul(A, B):
    """Matrix product ``C = A @ B`` in the cache-friendly i-k-j loop order (NumPy: BLAS).

    The Numba version walks rows of B and C contiguously, register-blocked (two
    rows of C, four values of k) over L2-sized column panels of B.
    A : (N, M), B : (M, P) -> C : (N, P), dtype of A.
    """
    return A @ B


def linear_forward(x, W, b):
    """Affine map ``y = x @ W + b``.

    x : (B, I), W : (I, O), b : (O,) -> y : (B, O).
    """
    return x @ W + b


def linear_backward(x, W, dy):
    """Gradients of ``y = x @ W + b``.

    x : (B, I), W : (I, O), dy : (B, O) -> (dx : (B, I), dW : (I, O), db : (O,)),
    with ``dx = dy @ W.T``, ``dW = x.T @ dy``, ``db = dy.sum(0)``.
    """
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


def relu_forward(x):
    """``max(x, 0)`` elementwise.  x : any shape -> same shape."""
    return np.maximum(x, 0)


def relu_backward(x, dy):
    """ReLU gradient: ``dy`` where ``x > 0``, zero elsewhere (also at ``x == 0``).

    x, dy : same shape -> dx : same shape.
    """
    return np.where(x > 0, dy, 0)


def sigmoid_forward(x):
    """Logistic ``1 / (1 + exp(-x))`` without overflow for large ``|x|``.

    Uses ``exp(-|x|)``, which never overflows: ``x = -1e4`` gives 0, no warning.
    x : any shape -> same shape.
    """
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def sigmoid_backward(y, dy):
    """Sigmoid gradient from its *output*: ``dy * y * (1 - y)``.  y, dy : same shape."""
    return dy * y * (1 - y)


def softmax(z):
    """Row-wise softmax, max-subtracted per row (finite for logits of +-1e4).

    z : (B, K) -> s : (B, K), every row sums to 1.
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_jacobian(s):
    """Explicit per-sample softmax Jacobian ``diag(s) - s s^T`` (for teaching and tests).

    s : (B, K) softmax outputs -> J : (B, K, K) with ``J[b, i, j] = ds_i / dz_j``.
    Memory is O(B K^2): use :func:`softmax_backward` in training.
    """
    B, K = s.shape
    J = -s[:, :, None] * s[:, None, :]
    J[:, np.arange(K), np.arange(K)] += s
    return J


def softmax_backward(s, ds):
    """Jacobian-vector product through softmax: ``s * (ds - <s, ds>)`` per row.

    Equals ``einsum("bk,bkj->bj", ds, softmax_jacobian(s))`` in O(B K) memory.
    s, ds : (B, K) -> dz : (B, K).
    """
    return s * (ds - np.sum(s * ds, axis=1, keepdims=True))


def _target_rows(y, K, dtype):
    """Integer labels (B,) -> one-hot (B, K); dense targets pass through."""
    if y.ndim == 1:
        t = np.zeros((y.shape[0], K), dtype=dtype)
        t[np.arange(y.shape[0]), y] = 1
        return t
    return y


def cross_entropy(p, y, eps=EPS):
    """Per-sample cross-entropy on *probabilities*: ``-sum_k t_k log(clip(p_k, eps, 1))``.

    p : (B, K) probabilities; y : (B,) int64 labels or (B, K) one-hot/soft targets
    of p's dtype -> loss : (B,).  The clip keeps ``log(0)`` finite, as the tutorials do.
    """
    logp = np.log(np.clip(p, eps, 1))
    if y.ndim == 1:
        return -logp[np.arange(p.shape[0]), y]
    return -np.sum(y * logp, axis=1)


def cross_entropy_backward(p, y, eps=EPS):
    """Gradient of ``mean(cross_entropy(p, y))`` w.r.t. ``p``: ``-t / (B p)``.

    Zero where ``p`` was clipped (p < eps), as the derivative of the clip is zero.
    p : (B, K), y : (B,) or (B, K) -> dp : (B, K).
    """
    t = _target_rows(y, p.shape[1], p.dtype)
    inside = p >= eps
    return np.where(inside, -t / (p.shape[0] * np.where(inside, p, 1)), 0).astype(p.dtype)


def cross_entropy_logits(z, y):
    """Per-sample cross-entropy on *logits* via log-sum-exp: ``logsumexp(z) - <t, z>``.

    z : (B, K) logits; y : (B,) int64 labels or (B, K) targets -> loss : (B,).
    Finite for logits of +-1e4.
    """
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)))[:, 0]
    if y.ndim == 1:
        return lse - z[np.arange(z.shape[0]), y]
    return lse * np.sum(y, axis=1) - np.sum(y * z, axis=1)


def softmax_cross_entropy_backward(p, y):
    """Fused gradient of ``mean(cross_entropy_logits(z, y))`` w.r.t. ``z``: ``(p - t) / B``.

    p : (B, K) = softmax(z); y : (B,) labels or (B, K) targets summing to 1 -> dz : (B, K).
    """
    return (p - _target_rows(y, p.shape[1], p.dtype)) / p.shape[0]


def mse(pred, target):
    """Per-sample mean squared error ``mean_k (pred - target)^2``.

    pred, target : (B, K) -> loss : (B,); ``loss.mean()`` is PyTorch's ``MSELoss()``.
    """
    d = pred - target
    return np.mean(d * d, axis=1)


def mse_backward(pred, target):
    """Gradient of ``mean(mse(pred, target))``: ``2 (pred - target) / (B K)``.  -> (B, K)."""
    return (pred - target) * (2 / pred.size)
