"""Pure NumPy reference kernels: the readable math, one function per operation.

Every function here has a twin with the same name and signature in
:mod:`kernels.jit` (Numba).  The contract, shared by both and checked before
every call by :func:`kernels.contract.kernel` (the same check in both backends):

* float arrays are ``float32`` or ``float64``, all of one dtype, which is the
  output dtype; other dtypes raise ``TypeError`` (convert first);
* labels are 1-D integer arrays with values in ``[0, K)``;
* shapes must agree with the signature (``ValueError`` otherwise); a batch may be
  empty (B = 0), the class axis may not (K >= 1);
* transposed or sliced arrays are copied to C order before the kernel runs.

NaN and inf propagate as NumPy's arithmetic has them; both backends agree on
where a NaN comes out.

Shapes below use ``B`` (batch rows), ``I`` (input features), ``O`` (output
features) and ``K`` (classes).
"""
from __future__ import annotations

import numpy as np

from .codes import IDENTITY, RELU, SIGMOID, SOFTMAX_CE, TANH
from .contract import kernel

#: Probability floor used by :func:`cross_entropy` on probabilities.
EPS = 1e-12


@kernel
def matmul_naive(A, B):
    """Matrix product ``C = A @ B`` -- the textbook i-j-k triple loop (NumPy: BLAS).

    A : (N, M), B : (M, P) -> C : (N, P), dtype of A.
    """
    return A @ B


@kernel
def matmul(A, B):
    """Matrix product ``C = A @ B`` in the cache-friendly i-k-j loop order (NumPy: BLAS).

    The Numba version walks rows of B and C contiguously, register-blocked (two
    rows of C, four values of k) over L2-sized column panels of B.
    A : (N, M), B : (M, P) -> C : (N, P), dtype of A.
    """
    return A @ B


@kernel
def linear_forward(x, W, b):
    """Affine map ``y = x @ W + b``.

    x : (B, I), W : (I, O), b : (O,) -> y : (B, O).
    """
    return x @ W + b


@kernel
def linear_backward(x, W, dy):
    """Gradients of ``y = x @ W + b``.

    x : (B, I), W : (I, O), dy : (B, O) -> (dx : (B, I), dW : (I, O), db : (O,)),
    with ``dx = dy @ W.T``, ``dW = x.T @ dy``, ``db = dy.sum(0)``.
    """
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


@kernel
def relu_forward(x):
    """``max(x, 0)`` elementwise.  x : any shape -> same shape."""
    return np.maximum(x, 0)


@kernel
def relu_backward(x, dy):
    """ReLU gradient: ``dy`` where ``x > 0``, zero elsewhere (also at ``x == 0``).

    x, dy : same shape -> dx : same shape.
    """
    return np.where(x > 0, dy, 0)


@kernel
def sigmoid_forward(x):
    """Logistic ``1 / (1 + exp(-x))`` without overflow for large ``|x|``.

    Uses ``exp(-|x|)``, which never overflows: ``x = -1e4`` gives 0, no warning.
    x : any shape -> same shape.
    """
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


@kernel
def sigmoid_backward(y, dy):
    """Sigmoid gradient from its *output*: ``dy * y * (1 - y)``.  y, dy : same shape."""
    return dy * y * (1 - y)


@kernel
def softmax(z):
    """Row-wise softmax, max-subtracted per row (finite for logits of +-1e4).

    z : (B, K) -> s : (B, K), every row sums to 1.
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@kernel
def softmax_jacobian(s):
    """Explicit per-sample softmax Jacobian ``diag(s) - s s^T`` (for teaching and tests).

    s : (B, K) softmax outputs -> J : (B, K, K) with ``J[b, i, j] = ds_i / dz_j``.
    Memory is O(B K^2): use :func:`softmax_backward` in training.
    """
    B, K = s.shape
    J = -s[:, :, None] * s[:, None, :]
    J[:, np.arange(K), np.arange(K)] += s
    return J


@kernel
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


@kernel
def cross_entropy(p, y, eps=EPS):
    """Per-sample cross-entropy on *probabilities*: ``-sum_k t_k log(clip(p_k, eps, 1))``.

    p : (B, K) probabilities; y : (B,) int64 labels or (B, K) one-hot/soft targets
    of p's dtype -> loss : (B,).  The clip keeps ``log(0)`` finite, as the tutorials do.
    """
    logp = np.log(np.clip(p, eps, 1))
    if y.ndim == 1:
        return -logp[np.arange(p.shape[0]), y]
    return -np.sum(y * logp, axis=1)


@kernel
def cross_entropy_backward(p, y, eps=EPS):
    """Gradient of ``mean(cross_entropy(p, y))`` w.r.t. ``p``: ``-t / (B p)``.

    Zero where the clip to ``[eps, 1]`` is active (p < eps or p > 1), as its derivative
    is zero there; a NaN in ``p`` gives NaN.  With labels only the labelled entry of
    each row has a gradient (the loss reads no other entry).
    p : (B, K), y : (B,) or (B, K) -> dp : (B, K).
    """
    B = p.shape[0]
    if y.ndim == 1:
        rows = np.arange(B)
        dp = np.zeros_like(p)
        dp[rows, y] = _clipped_log_grad(p[rows, y], 1, B, eps)
        return dp
    return _clipped_log_grad(p, y, B, eps)


def _clipped_log_grad(p, t, B, eps):
    """``d/dp -t log(clip(p, eps, 1)) / B``; NaN where p is NaN."""
    clipped = (p < eps) | (p > 1)
    return np.where(clipped, 0, -t / (B * np.where(clipped, 1, p))).astype(p.dtype)


@kernel
def cross_entropy_logits(z, y):
    """Per-sample cross-entropy on *logits* via log-sum-exp: ``logsumexp(z) sum_k t_k - <t, z>``.

    z : (B, K) logits; y : (B,) int64 labels or (B, K) targets -> loss : (B,).
    Computed as ``sum_k t_k (m - z_k) + sum_k t_k log(sum_j exp(z_j - m))`` with ``m`` the
    row max (``m - z_k`` is exact), so logits of +-1e4 keep every digit of the loss.
    """
    m = z.max(axis=1, keepdims=True)
    log_total = np.log(np.sum(np.exp(z - m), axis=1))
    if y.ndim == 1:
        return (m[:, 0] - z[np.arange(z.shape[0]), y]) + log_total
    return np.sum(y * (m - z), axis=1) + np.sum(y, axis=1) * log_total


@kernel
def softmax_cross_entropy_backward(p, y):
    """Fused gradient of ``mean(cross_entropy_logits(z, y))`` w.r.t. ``z``: ``(p sum_k t_k - t) / B``.

    The loss per row is ``logsumexp(z) sum_k t_k - <t, z>``, so a row of targets that
    does not sum to 1 scales the ``p`` term (PyTorch's semantics for probability
    targets); for labels and one-hot rows this is ``(p - t) / B``.
    p : (B, K) = softmax(z); y : (B,) labels or (B, K) non-negative targets -> dz : (B, K).
    """
    if y.ndim == 1:
        return (p - _target_rows(y, p.shape[1], p.dtype)) / p.shape[0]
    return (p * np.sum(y, axis=1, keepdims=True) - y) / p.shape[0]


@kernel
def mse(pred, target):
    """Per-sample mean squared error ``mean_k (pred - target)^2``.

    pred, target : (B, K) -> loss : (B,); ``loss.mean()`` is PyTorch's ``MSELoss()``.
    """
    d = pred - target
    return np.mean(d * d, axis=1)


@kernel
def mse_backward(pred, target):
    """Gradient of ``mean(mse(pred, target))``: ``2 (pred - target) / (B K)``.  -> (B, K)."""
    return (pred - target) * (2 / max(pred.size, 1))


# ---- per-sample SGD: the readable twin of kernels.fused.sgd_epoch ---------------------------

_ACTIVATE = {IDENTITY: lambda z: z, RELU: relu_forward, SIGMOID: sigmoid_forward,
             TANH: lambda z: tanh_forward(z)}                   # defined below (kernels/reference_layers.py)
#: gradient through an activation, from its *output* a (for ReLU, a > 0 exactly where z > 0)
_ACTIVATION_GRAD = {IDENTITY: lambda a, da: da, RELU: relu_backward, SIGMOID: sigmoid_backward,
                    TANH: lambda a, da: tanh_backward(a, da)}


@kernel
def sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr):
    """Per-sample SGD over ``X[order]`` for an MLP, updating ``weights``/``biases`` in place.

    The network: ``a_0 = x``, ``a_{l+1} = act_l(a_l @ W_l + b_l)``, the last layer without
    activation, then the loss on its output; after each sample ``W -= lr dW``, ``b -= lr db``.

    weights : tuple of L C-contiguous arrays (n_l, n_{l+1}); biases : tuple of L arrays (n_{l+1},)
    bias_on : (L,) of X's dtype, 1 where the layer's bias is trained, 0 where it stays as it is
    activations : (L,) integer codes (:mod:`kernels.codes`: IDENTITY, RELU, SIGMOID; the last is ignored)
    loss_kind : SOFTMAX_CE (softmax + cross-entropy on logits, ``labels``) or MSE (``targets``)
    X : (N, n_0); labels : (N,) integers in [0, K) for SOFTMAX_CE (else any 1-D integer array);
    targets : (N, K) for MSE (else any (n, K) array of X's dtype); order : (M,) integer sample
    indices in [0, N); lr : real scalar (used in X's dtype).
    Returns ``(losses : (M,) of X's dtype, done : int)``: ``done < M`` means sample
    ``order[done]`` gave a non-finite loss and training stopped before updating with it
    (``losses[done:]`` stay 0).

    This is a plain loop over samples with the batch kernels above, one sample at a time.
    The compiled kernel (:func:`kernels.fused.sgd_epoch`) skips input rows that are exactly
    zero, so a NaN or inf *weight* in such a row leaves its outputs finite there, while here
    ``0 * inf`` gives NaN.  For finite weights the two agree to rounding; a NaN input gives a
    NaN loss in both, and both stop there.  (An inf input can give a finite loss, through a
    saturated sigmoid, and an infinite weight: from then on they may stop at different samples.)
    """
    L = len(weights)
    M = order.shape[0]
    losses = np.zeros(M, dtype=X.dtype)
    for s in range(M):
        i = order[s]
        a = [X[i:i + 1]]                              # every layer's output, (1, n_l)
        for l in range(L):
            z = linear_forward(a[l], weights[l], biases[l])
            a.append(_ACTIVATE[activations[l] if l < L - 1 else IDENTITY](z))
        if loss_kind == SOFTMAX_CE:
            y = labels[i:i + 1]
            loss = cross_entropy_logits(a[L], y)[0]
            delta = softmax_cross_entropy_backward(softmax(a[L]), y)
        else:
            t = targets[i:i + 1]
            loss = mse(a[L], t)[0]
            delta = mse_backward(a[L], t)
        if not np.isfinite(loss):
            return losses, s
        losses[s] = loss
        for l in range(L - 1, -1, -1):
            W, b = weights[l], biases[l]
            dx, dW, db = linear_backward(a[l], W, delta)    # dx from the weights before the step
            W -= lr * dW                                    # in place: the caller's arrays
            b -= lr * bias_on[l] * db
            if l > 0:
                delta = _ACTIVATION_GRAD[activations[l - 1]](a[l], dx)
    return losses, M


@kernel
def sgd_epoch_compact(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, block,
                      compact):
    """Per-sample SGD exactly as :func:`sgd_epoch`; ``block`` (int >= 1) and ``compact`` (one 0/1
    flag per layer) only matter to the compiled twin.

    :func:`kernels.fused_compact.sgd_epoch_compact` defers the updates of the flagged layers
    within blocks of ``block`` samples (``W_s = W0 - lr sum_{t<s} a_t^T d_t``, applied as one
    GEMM at the block end) -- the same sequence of weights, summed in another order, so the
    two agree to rounding.  Returns ``(losses : (M,) X's dtype, done)`` as :func:`sgd_epoch`.
    """
    return sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr)


# ---- mini-batch SGD: the readable twin of kernels.fused_minibatch.sgd_minibatch_epoch -------

@kernel
def sgd_minibatch_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                        batch_size, momentum, vel_w, vel_b):
    """Mini-batch SGD (with optional momentum) over ``X[order]``, updating the parameters in place.

    The network and the first ten arguments are those of :func:`sgd_epoch`.  ``X[order]`` is
    taken in consecutive batches of ``batch_size`` rows (the last one may be shorter; one
    batch when ``batch_size >= M``); each batch's loss is the mean over its rows, and after
    each batch, with the gradients ``g`` of that mean, every parameter takes one step:
    ``w -= lr g`` when ``momentum == 0``, else PyTorch's momentum (no dampening, no Nesterov)
    ``v = momentum v + g; w -= lr v``.  Layers with ``bias_on[l] == 0`` add their bias in the
    forward pass but do not train it (nor its velocity).

    batch_size : int >= 1; lr, momentum : real scalars (used in X's dtype)
    vel_w, vel_b : tuples of L arrays shaped like weights/biases, updated in place when
    ``momentum != 0``; not read otherwise (``(0, 0)``/``(0,)`` dummies will do).
    Returns ``(losses : float64 (n_batches,), done : int, bad : int)``, with
    ``n_batches = ceil(M / batch_size)``: the mean loss of every batch (row losses in X's
    dtype, their mean in float64).  ``done < n_batches`` means batch ``done`` had a
    non-finite mean loss and training stopped before its update (``losses[done:]`` stay 0);
    ``bad`` is then the epoch position (index into ``order``) of its first non-finite row,
    or -1 if every row was finite and only the mean overflowed; ``bad`` is -1 when
    ``done == n_batches``.

    A plain loop over batches with the batch kernels above.  The compiled kernel computes the
    three products of every layer with BLAS (``np.dot``) and the rest in single passes; the
    two agree to rounding, and both turn a NaN or inf in the data into a non-finite loss (or
    a finite one, through a saturated sigmoid) in the same places.
    """
    L = len(weights)
    M = order.shape[0]
    n_batches = -(-M // batch_size)
    losses = np.zeros(n_batches, dtype=np.float64)
    for k in range(n_batches):
        start = k * batch_size
        rows = order[start:start + batch_size]
        a = [X[rows]]                                 # every layer's output, (nb, n_l)
        for l in range(L):
            z = linear_forward(a[l], weights[l], biases[l])
            a.append(_ACTIVATE[activations[l] if l < L - 1 else IDENTITY](z))
        if loss_kind == SOFTMAX_CE:
            y = labels[rows]
            row_losses = cross_entropy_logits(a[L], y)
            delta = softmax_cross_entropy_backward(softmax(a[L]), y)
        else:
            t = targets[rows]
            row_losses = mse(a[L], t)
            delta = mse_backward(a[L], t)
        loss = np.mean(row_losses, dtype=np.float64)
        if not np.isfinite(loss):
            nonfinite = np.flatnonzero(~np.isfinite(row_losses))
            return losses, k, int(start + nonfinite[0]) if nonfinite.size else -1
        losses[k] = loss
        for l in range(L - 1, -1, -1):
            dx, dW, db = linear_backward(a[l], weights[l], delta)    # dx from the weights before the step
            _sgd_step(weights[l], dW, lr, momentum, vel_w[l])
            if bias_on[l] != 0:
                _sgd_step(biases[l], db, lr, momentum, vel_b[l])
            if l > 0:
                delta = _ACTIVATION_GRAD[activations[l - 1]](a[l], dx)
    return losses, n_batches, -1


def _sgd_step(w, g, lr, momentum, v):
    """One SGD step on ``w`` in place: ``w -= lr g``, or with momentum ``v = momentum v + g; w -= lr v``."""
    if momentum != 0:
        v *= momentum
        v += g
        g = v
    w -= lr * g


# ---- issue-13 groups: each kept in its own module, re-exported here -------------------------------
# -- layers (issue 13): activations, dropout, normalisation (kernels/reference_layers.py) --
from .reference_layers import (  # noqa: E402,F401
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

# -- losses (issue 13) (kernels/reference_losses.py) --
from .reference_losses import (  # noqa: E402,F401
    bce, bce_backward, bce_with_logits, bce_with_logits_backward, l1,
    l1_backward, huber, huber_backward, nll, nll_backward,
)
# -- end losses --

# -- optimiser steps (issue 13) (kernels/reference_optim.py) --
from .reference_optim import adagrad_step, adam_step, rmsprop_step, sgd_step  # noqa: E402,F401
# -- end optimiser steps --
