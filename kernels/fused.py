"""Fused per-sample SGD: a whole epoch of ``w -= lr * grad`` for an MLP inside one compiled call.

The network is ``L`` Linear layers with ``W[l] : (n_l, n_{l+1})`` (row-major,
``y = x @ W + b``), an activation after every layer but the last, and a loss on
the last layer's output:

* activations: :data:`IDENTITY`, :data:`RELU`, :data:`SIGMOID`, :data:`TANH` (one code per layer;
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
  is exactly sequential SGD);
* the first layer's update for one sample is fused with the next sample's
  first-layer forward pass (each row read once for both).

Where the rest lives: the shared per-sample math in :mod:`kernels.fused_math`, the
exact multi-threaded variant (threads split every layer's weight *rows*, meeting at
a spin barrier) in :mod:`kernels.fused_threads`, mini-batch and full-batch SGD in
:mod:`kernels.fused_minibatch`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .codes import ACTIVATION_CODES, IDENTITY, LOSS_CODES, MSE, RELU, SIGMOID, SOFTMAX_CE, TANH  # noqa: F401
from .fused_math import _FASTMATH, _activate, _backward_rows, _forward_hidden, _output_loss_and_delta


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_hidden(W, b, inp, delta, prev, code, lr, blr):
    """Fused sweep for layer l >= 1: ``prev = (W @ delta) * act'(inp)``, then ``W -= lr inp delta^T``."""
    for j in range(W.shape[1]):
        b[j] -= blr * delta[j]
    _backward_rows(W, inp, delta, 0, W.shape[0], lr, code, code == RELU, prev, True)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_update(W, b, x, delta, lr, blr):
    """``W -= lr x delta^T``, ``b -= blr delta``, touching only rows where ``x`` is nonzero."""
    for j in range(W.shape[1]):
        b[j] -= blr * delta[j]
    _backward_rows(W, x, delta, 0, W.shape[0], lr, IDENTITY, True, delta, False)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_update_then_forward(W, b, x_old, delta, lr, blr, x_new, out, code):
    """Sample s's first-layer update fused with sample s+1's first-layer forward.

    Both stream the same rows, so each row is read once: updated with
    ``x_old``/``delta`` and, while in registers, accumulated into ``out`` with
    ``x_new``.  Rows where both inputs are zero are never touched.
    """
    n_in, n_out = W.shape
    for j in range(n_out):
        b[j] -= blr * delta[j]
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
    _activate(out, code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr):
    """Per-sample SGD over ``X[order]``, updating ``weights``/``biases`` in place.

    weights : tuple of L arrays (n_l, n_{l+1}); biases : tuple of L arrays (n_{l+1},)
    bias_on : (L,) of X's dtype, 1 where the layer's bias is trained, 0 for a layer
    without bias (pass zeros as its bias; they stay zero)
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
    _forward_hidden(W0, biases[0], X[order[0]], A[1], code0, True)
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
            _backward_hidden(weights[l], biases[l], A[l], D[cur], D[1 - cur], activations[l - 1], lr,
                             lr * bias_on[l])
            cur = 1 - cur
        if s + 1 < M:
            _first_layer_update_then_forward(W0, biases[0], X[i], D[cur], lr, lr * bias_on[0], X[order[s + 1]],
                                             A[1], code0)
        else:
            _first_layer_update(W0, biases[0], X[i], D[cur], lr, lr * bias_on[0])
    return losses, M



from .fused_threads import SYNC_SLOTS, sgd_epoch_threaded  # noqa: E402,F401  (re-exported)
