"""Fused per-sample SGD: a whole epoch of ``w -= lr * grad`` for an MLP inside one compiled call.

The network is ``L`` Linear layers with ``W[l] : (n_l, n_{l+1})`` (row-major,
``y = x @ W + b``), an activation after every layer but the last, and a loss on
the last layer's output:

* activations: :data:`IDENTITY`, :data:`RELU`, :data:`SIGMOID` (one code per layer;
  the last layer's code is ignored);
* losses: :data:`SOFTMAX_CE` (softmax + cross-entropy on logits, integer labels)
  or :data:`MSE` (mean over the K outputs, dense targets).

What makes it fast (per sample, no allocation at all):

* forward and backward walk the weight rows contiguously (``W[k, :]``);
* input rows that are exactly zero are skipped -- pixels in the first layer, and
  ReLU-dead units in hidden layers (their row gets no update and passes no
  gradient);
* the update is fused into the backward sweep: each row of ``W[l]`` is read once
  to form the input gradient ``dx[k] = W[k, :] . delta`` *and* written once with
  ``W[k, :] -= lr * a[k] * delta`` (using the old values for ``dx``, so the result
  is exactly sequential SGD).

The threaded variant splits every layer's output columns between threads, so
each thread owns the weights it writes; threads meet at a spin barrier after
each layer (forward) and after each partial input gradient (backward).  That
is still exact sequential SGD, only the summation order of ``dx`` differs.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

IDENTITY, RELU, SIGMOID = 0, 1, 2
SOFTMAX_CE, MSE = 0, 1
ACTIVATION_CODES = {"identity": IDENTITY, "relu": RELU, "sigmoid": SIGMOID}
LOSS_CODES = {"softmax_ce": SOFTMAX_CE, "mse": MSE}

# Reassociation lets LLVM vectorise the dot products (x . delta); no "nnan"/"ninf",
# so the non-finite loss check still works.
_FASTMATH = {"reassoc", "contract", "nsz"}


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _act(v, code):
    if code == RELU:
        return v if v > 0 else v * 0
    if code == SIGMOID:
        one = v * 0 + 1
        if v >= 0:
            return one / (one + np.exp(-v))
        e = np.exp(v)
        return e / (one + e)
    return v


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _act_grad_from_output(a, code):
    """d act / d z expressed through the output a = act(z)."""
    one = a * 0 + 1
    if code == RELU:
        return one if a > 0 else a * 0
    if code == SIGMOID:
        return a * (one - a)
    return one


@njit(cache=True, fastmath=_FASTMATH)
def _output_loss_and_delta(z, K, loss_kind, label, target, delta):
    """Loss of one sample and d loss / d z into ``delta[:K]`` (batch of one)."""
    if loss_kind == SOFTMAX_CE:
        m = z[0]
        for j in range(1, K):
            if z[j] > m:
                m = z[j]
        total = z[0] * 0
        for j in range(K):
            e = np.exp(z[j] - m)
            delta[j] = e
            total += e
        for j in range(K):
            delta[j] /= total
        delta[label] -= 1
        return m + np.log(total) - z[label]
    acc = z[0] * 0
    scale = (z[0] * 0 + 2) / K
    for j in range(K):
        d = z[j] - target[j]
        acc += d * d
        delta[j] = scale * d
    return acc / K


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _forward_hidden(W, b, inp, out, code, skip_zero):
    """``out = act(inp @ W + b)`` for layers after the first; zero inputs skipped when allowed."""
    n_in, n_out = W.shape
    for j in range(n_out):
        out[j] = b[j]
    for k in range(n_in):
        a = inp[k]
        if a != 0 or not skip_zero:
            for j in range(n_out):
                out[j] += a * W[k, j]
    if code != IDENTITY:
        for j in range(n_out):
            out[j] = _act(out[j], code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_hidden(W, b, inp, delta, prev, code, lr):
    """Fused sweep for layer l >= 1: ``prev = (W @ delta) * act'(inp)``, then ``W -= lr inp delta^T``."""
    n_in, n_out = W.shape
    for j in range(n_out):
        b[j] -= lr * delta[j]
    for k in range(n_in):
        a = inp[k]
        if a == 0 and code == RELU:
            prev[k] = a      # dead unit: no gradient through it, no update of its row
            continue
        c = lr * a
        acc = a * 0
        for j in range(n_out):
            w = W[k, j]
            acc += w * delta[j]
            W[k, j] = w - c * delta[j]
        prev[k] = acc * _act_grad_from_output(a, code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_forward(W, b, x, out, code):
    """``out = act(x @ W + b)`` reading only the rows where ``x`` is nonzero."""
    n_in, n_out = W.shape
    for j in range(n_out):
        out[j] = b[j]
    for k in range(n_in):
        a = x[k]
        if a != 0:
            for j in range(n_out):
                out[j] += a * W[k, j]
    if code != IDENTITY:
        for j in range(n_out):
            out[j] = _act(out[j], code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_update(W, b, x, delta, lr):
    """``W -= lr x delta^T``, ``b -= lr delta``, touching only rows where ``x`` is nonzero."""
    n_in, n_out = W.shape
    for j in range(n_out):
        b[j] -= lr * delta[j]
    for k in range(n_in):
        a = x[k]
        if a != 0:
            c = lr * a
            for j in range(n_out):
                W[k, j] -= c * delta[j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_update_then_forward(W, b, x_old, delta, lr, x_new, out, code):
    """Sample s's first-layer update fused with sample s+1's first-layer forward.

    Both stream the same rows, so each row is read once: updated with
    ``x_old``/``delta`` and, while in registers, accumulated into ``out`` with
    ``x_new``.  Rows where both inputs are zero are never touched.
    """
    n_in, n_out = W.shape
    for j in range(n_out):
        b[j] -= lr * delta[j]
        out[j] = b[j]
    for k in range(n_in):
        a_old = x_old[k]
        a_new = x_new[k]
        if a_old != 0:
            c = lr * a_old
            if a_new != 0:
                for j in range(n_out):
                    w = W[k, j] - c * delta[j]
                    W[k, j] = w
                    out[j] += a_new * w
            else:
                for j in range(n_out):
                    W[k, j] -= c * delta[j]
        elif a_new != 0:
            for j in range(n_out):
                out[j] += a_new * W[k, j]
    if code != IDENTITY:
        for j in range(n_out):
            out[j] = _act(out[j], code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sgd_epoch(weights, biases, activations, loss_kind, X, labels, targets, order, lr):
    """Per-sample SGD over ``X[order]``, updating ``weights``/``biases`` in place.

    weights : tuple of L arrays (n_l, n_{l+1}); biases : tuple of L arrays (n_{l+1},)
    activations : int64 (L,) codes; loss_kind : SOFTMAX_CE or MSE
    X : (N, n_0) C-contiguous; labels : int64 (N,) (SOFTMAX_CE); targets : (N, K)
    (MSE; else any (0, K) array); order : int64 (M,) sample indices; lr : scalar of X's dtype
    Returns ``(losses : (M,), done)``: ``done < M`` means sample ``order[done]``
    gave a non-finite loss and training stopped before updating with it.
    """
    L = len(weights)
    M = order.shape[0]
    width = X.shape[1]
    for l in range(L):
        width = max(width, weights[l].shape[1])
    A = np.zeros((L + 1, width), dtype=X.dtype)      # activations of the current sample
    D = np.zeros((2, width), dtype=X.dtype)          # delta ping-pong
    losses = np.zeros(M, dtype=X.dtype)
    if M == 0:
        return losses, 0
    W0 = weights[0]
    relu_skip = np.empty(L, dtype=np.bool_)          # layer l's input may skip zeros
    for l in range(1, L):
        relu_skip[l] = activations[l - 1] == RELU
    code0 = activations[0] if L > 1 else IDENTITY
    _first_layer_forward(W0, biases[0], X[order[0]], A[1], code0)
    for s in range(M):
        i = order[s]
        for l in range(1, L):
            code = activations[l] if l < L - 1 else IDENTITY
            _forward_hidden(weights[l], biases[l], A[l], A[l + 1], code, relu_skip[l])
        K = weights[L - 1].shape[1]
        lab = labels[i] if loss_kind == SOFTMAX_CE else 0
        tgt = targets[i] if loss_kind == MSE else D[1]
        cur = 0
        loss = _output_loss_and_delta(A[L], K, loss_kind, lab, tgt, D[cur])
        if not np.isfinite(loss):
            return losses, s
        losses[s] = loss
        for l in range(L - 1, 0, -1):
            _backward_hidden(weights[l], biases[l], A[l], D[cur], D[1 - cur], activations[l - 1], lr)
            cur = 1 - cur
        if s + 1 < M:
            _first_layer_update_then_forward(W0, biases[0], X[i], D[cur], lr, X[order[s + 1]], A[1], code0)
        else:
            _first_layer_update(W0, biases[0], X[i], D[cur], lr)
    return losses, M
