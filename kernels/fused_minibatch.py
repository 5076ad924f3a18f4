"""Fused mini-batch SGD: a whole epoch of forward, backward and update for an MLP in one compiled call.

The network is the one :mod:`kernels.fused` trains (``L`` Linear layers, ``W[l] : (n_l, n_{l+1})``,
an activation code after every layer but the last, softmax cross-entropy on
integer labels or MSE on dense targets), trained in batches of ``batch_size``
rows of ``X[order]`` (the last batch may be shorter) with SGD, optionally with
PyTorch-style momentum (``v = momentum v + g; w -= lr v``), exactly as
``net.fit`` does it layer by layer -- only without a Python call, a temporary
array or a dtype check per layer and batch:

* the three GEMMs of every layer go to BLAS (:mod:`kernels.blas`: NumPy's own OpenBLAS,
  else SciPy's): the forward ``A @ W`` and the input gradient ``delta @ W^T`` into
  preallocated outputs, the weight gradient ``A^T @ delta`` accumulated straight into the
  weights (or the momentum buffer); transposes are BLAS flags, not copies;
* bias, activation, loss and its gradient, the activation derivative and the
  update are single passes over preallocated buffers, in the input's dtype.

Nothing is allocated per batch; all scratch is allocated once per call.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .blas import gemm_ab, gemm_abt, gemm_at_b
from .codes import IDENTITY, MSE, RELU, SOFTMAX_CE, TANH
from .fused_math import _activate, _output_loss_and_delta


@njit(cache=True)
def _bias_and_activation(Z, b, code):
    """``Z = act(Z + b)`` in place; Z : (B, n), b : (n,).  The activation is the per-sample
    kernels' own (:func:`kernels.fused_math._activate`: one vectorised loop per code)."""
    nb, n = Z.shape
    for i in range(nb):
        row = Z[i]
        for j in range(n):
            row[j] += b[j]
        _activate(row, code)


@njit(cache=True)
def _times_activation_grad(G, A, code):
    """``G *= act'(z)`` in place, the derivative written through the output ``A = act(z)``."""
    if code == IDENTITY:
        return
    nb, n = G.shape
    zero = G.dtype.type(0)
    one = G.dtype.type(1)
    for i in range(nb):
        g = G[i]
        a = A[i]
        for j in range(n):
            if code == RELU:
                if not a[j] > zero:
                    g[j] = zero
            elif code == TANH:
                g[j] = g[j] * (one - a[j] * a[j])
            else:
                g[j] = g[j] * a[j] * (one - a[j])


@njit(cache=True, error_model="numpy")
def _loss_and_delta(Z, loss_kind, labels, targets, idx, delta, row_loss):
    """Per-row loss into ``row_loss`` and d(mean loss)/dZ into ``delta``; Z, delta : (B, K).

    Every row is the per-sample kernels' loss (:func:`kernels.fused_math._output_loss_and_delta`),
    its gradient scaled by 1/B for the batch mean.
    """
    nb, K = Z.shape
    inv_b = Z.dtype.type(1) / Z.dtype.type(nb)
    for i in range(nb):
        d = delta[i]
        label = labels[idx[i]] if loss_kind == SOFTMAX_CE else 0
        target = targets[idx[i]] if loss_kind == MSE else d
        row_loss[i] = _output_loss_and_delta(Z[i], K, loss_kind, label, target, d)
        for k in range(K):
            d[k] *= inv_b


@njit(cache=True)
def _batch_mean_loss(row_loss, nb, start):
    """``(mean of row_loss[:nb] in float64, epoch position of its first non-finite row or -1,
    whether the mean is finite)``.

    The one place of the epoch that computes in float64 on float32 data, on purpose: the
    reported batch loss is float64 (as :func:`kernels.reference.sgd_minibatch_epoch`'s).
    """
    total = 0.0
    bad = -1
    for i in range(nb):
        total += row_loss[i]
        if bad < 0 and not np.isfinite(row_loss[i]):
            bad = start + i
    total /= nb
    return total, bad, np.isfinite(total)


@njit(cache=True)
def _update(W, G, lr):
    """``W -= lr G``; W, G flat of one length."""
    for k in range(W.shape[0]):
        W[k] -= lr * G[k]


@njit(cache=True)
def _momentum_update(W, G, V, lr, momentum):
    """``V = momentum V + G; W -= lr V`` (PyTorch's SGD momentum, no dampening); all flat."""
    for k in range(W.shape[0]):
        v = momentum * V[k] + G[k]
        V[k] = v
        W[k] -= lr * v


@njit(cache=True, nogil=True)
def sgd_minibatch_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                        batch_size, momentum, vel_w, vel_b):
    """Mini-batch SGD over ``X[order]`` in batches of ``batch_size``, updating parameters in place.

    weights, biases, bias_on, activations, loss_kind, X, labels, targets, order : as
    :func:`kernels.fused.sgd_epoch`; lr, momentum : scalars of X's dtype
    vel_w, vel_b : momentum buffers shaped like weights/biases (updated in place; ignored
    when ``momentum == 0``)
    Returns ``(losses : float64 (n_batches,), done, bad)``: the mean loss of every batch;
    ``done < n_batches`` means batch ``done`` gave a non-finite loss and training stopped
    before updating with it, and ``bad`` is the epoch position of its first non-finite
    sample (-1 if only the batch mean overflowed).
    """
    L = len(weights)
    M = order.shape[0]
    bs = min(batch_size, M)
    n_batches = (M + batch_size - 1) // batch_size
    losses = np.zeros(n_batches, dtype=np.float64)
    widths = np.empty(L + 1, dtype=np.int64)
    widths[0] = X.shape[1]
    for l in range(L):
        widths[l + 1] = weights[l].shape[1]
    offsets = np.zeros(L + 2, dtype=np.int64)
    for l in range(L + 1):
        offsets[l + 1] = offsets[l] + bs * widths[l]
    maxw = 0
    for l in range(L):
        maxw = max(maxw, widths[l + 1])
    acts = np.empty(offsets[L + 1], dtype=X.dtype)      # inputs, then every layer's output
    d0 = np.empty(bs * maxw, dtype=X.dtype)            # delta ping-pong
    d1 = np.empty(bs * maxw, dtype=X.dtype)
    gb = np.empty(maxw, dtype=X.dtype)
    row_loss = np.empty(bs, dtype=X.dtype)
    use_momentum = momentum != 0
    one = X.dtype.type(1)
    zero = X.dtype.type(0)
    K = widths[L]
    for bi in range(n_batches):
        start = bi * batch_size
        nb = min(batch_size, M - start)
        idx = order[start:start + nb]
        A0 = acts[0:nb * widths[0]].reshape(nb, widths[0])
        for i in range(nb):
            A0[i] = X[idx[i]]
        for l in range(L):
            Ain = acts[offsets[l]:offsets[l] + nb * widths[l]].reshape(nb, widths[l])
            Aout = acts[offsets[l + 1]:offsets[l + 1] + nb * widths[l + 1]].reshape(nb, widths[l + 1])
            gemm_ab(Aout, Ain, weights[l], one, zero)
            _bias_and_activation(Aout, biases[l], activations[l] if l < L - 1 else IDENTITY)
        Z = acts[offsets[L]:offsets[L] + nb * K].reshape(nb, K)
        delta = d0[:nb * K].reshape(nb, K)
        _loss_and_delta(Z, loss_kind, labels, targets, idx, delta, row_loss)
        total, bad, finite = _batch_mean_loss(row_loss, nb, start)
        if not finite:
            return losses, bi, bad
        losses[bi] = total
        cur = 0
        for l in range(L - 1, -1, -1):
            n_in, n_out = widths[l], widths[l + 1]
            Ain = acts[offsets[l]:offsets[l] + nb * n_in].reshape(nb, n_in)
            if bias_on[l] != 0:
                db = gb[:n_out]
                db[:] = 0
                for i in range(nb):
                    for j in range(n_out):
                        db[j] += delta[i, j]
            if l > 0:                                    # input gradient with the weights before the update
                nxt = (d1 if cur == 0 else d0)[:nb * n_in].reshape(nb, n_in)
                gemm_abt(nxt, delta, weights[l], one, zero)
                _times_activation_grad(nxt, Ain, activations[l - 1])
            # the weight gradient Ain.T @ delta goes straight into the weights (plain SGD:
            # W = W - lr * grad) or the velocity (v = momentum * v + grad) as one BLAS call
            if use_momentum:
                gemm_at_b(vel_w[l], Ain, delta, one, momentum)
                _update(weights[l].reshape(n_in * n_out), vel_w[l].reshape(n_in * n_out), lr)
                if bias_on[l] != 0:
                    _momentum_update(biases[l], gb[:n_out], vel_b[l], lr, momentum)
            else:
                gemm_at_b(weights[l], Ain, delta, -lr, one)
                if bias_on[l] != 0:
                    _update(biases[l], gb[:n_out], lr)
            if l > 0:
                delta = nxt
                cur = 1 - cur
    return losses, n_batches, -1
