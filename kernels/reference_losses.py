"""Pure NumPy reference kernels of the losses added in issue 13 (PyTorch's semantics).

Each loss is a pair: the *unreduced* loss (per element, or per row for ``nll``) and its
*elementwise* gradient ``d loss_i / d x_i`` (not scaled by a batch size: the reduction,
and with it the ``1/n`` of a mean, is applied by the loss classes in :mod:`net.losses`).
Twins with the same names and signatures live in :mod:`kernels.jit_losses`; both are
re-exported by :mod:`kernels.reference` and :mod:`kernels.jit` and checked by the shared
contract (:mod:`kernels.contract`): one float dtype, which is the output dtype.

The elementwise losses take arrays of any shape (at least one axis) and a target of the
same shape; ``nll`` takes ``(B, K)`` log-probabilities and ``(B,)`` integer labels (or
dense ``(B, K)`` targets: ``-sum_k t_k logp_k``).  The kernels check no values: the loss
classes reject probabilities outside ``[0, 1]``, as PyTorch does.
"""
from __future__ import annotations

import numpy as np

from .contract import kernel

#: PyTorch clamps each log of ``BCELoss`` at this value, so ``p = 0`` or ``1`` gives a finite loss.
BCE_LOG_FLOOR = -100.0
#: PyTorch's floor of ``p (1 - p)`` in the ``BCELoss`` gradient: the C++ ``float`` 1e-12, also in float64.
BCE_GRAD_EPS = float(np.float32(1e-12))


@kernel
def bce(p, t):
    """Binary cross-entropy on probabilities, PyTorch's ``BCELoss(reduction="none")``.

    ``(t - 1) max(log(1 - p), -100) - t max(log p, -100)`` (``log(1 - p)`` as ``log1p(-p)``).
    p : any shape, probabilities; t : p's shape, targets -> loss : p's shape.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.maximum(np.log(p), p.dtype.type(BCE_LOG_FLOOR))
        log_q = np.maximum(np.log1p(-p), p.dtype.type(BCE_LOG_FLOOR))
    return (t - 1) * log_q - t * log_p


@kernel
def bce_backward(p, t):
    """Gradient of :func:`bce` w.r.t. ``p``, as PyTorch: ``(p - t) / max(p (1 - p), 1e-12)``.

    p, t : same shape -> dp : same shape.  The floor keeps ``p = 0`` or ``1`` finite
    (``+-1e12`` where the target disagrees, 0 where it agrees).
    """
    return (p - t) / np.maximum((1 - p) * p, p.dtype.type(BCE_GRAD_EPS))


@kernel
def bce_with_logits(z, t):
    """Binary cross-entropy on logits, PyTorch's ``BCEWithLogitsLoss(reduction="none")``.

    ``max(z, 0) - z t + log1p(exp(-|z|))``: no overflow, exact at ``z = +-1e4``.
    z : any shape, logits; t : z's shape, targets -> loss : z's shape.
    """
    return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))


@kernel
def bce_with_logits_backward(z, t):
    """Gradient of :func:`bce_with_logits` w.r.t. ``z``: ``sigmoid(z) - t``.  z, t : same shape."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)) - t


@kernel
def l1(pred, target):
    """Absolute error ``|pred - target|``, PyTorch's ``L1Loss(reduction="none")``.  Same shapes."""
    return np.abs(pred - target)


@kernel
def l1_backward(pred, target):
    """Gradient of :func:`l1`: ``sign(pred - target)``, 0 where they are equal (as PyTorch)."""
    return np.sign(pred - target)


@kernel
def huber(pred, target, delta=1.0):
    """Huber loss, PyTorch's ``HuberLoss(reduction="none", delta=delta)``.

    With ``d = pred - target``: ``d^2 / 2`` where ``|d| < delta``, else
    ``delta (|d| - delta / 2)``.  pred, target : same shape -> loss : same shape;
    ``delta`` (> 0, checked by the loss class) is used in pred's dtype.
    """
    delta = pred.dtype.type(delta)
    d = pred - target
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


@kernel
def huber_backward(pred, target, delta=1.0):
    """Gradient of :func:`huber`: ``d`` clipped to ``[-delta, delta]`` (PyTorch's branches).  Same shapes."""
    delta = pred.dtype.type(delta)
    d = pred - target
    return np.where(d <= -delta, -delta, np.where(d >= delta, delta, d))


@kernel
def nll(logp, y):
    """Negative log-likelihood per row, PyTorch's ``NLLLoss(reduction="none")``: ``-logp[i, y_i]``.

    logp : (B, K) log-probabilities; y : (B,) int64 labels, or (B, K) dense targets of
    logp's dtype (``-sum_k t_k logp_k``; PyTorch's NLLLoss takes labels only) -> loss : (B,).
    """
    if y.ndim == 1:
        return -logp[np.arange(logp.shape[0]), y]
    return -np.sum(y * logp, axis=1)


@kernel
def nll_backward(logp, y):
    """Gradient of :func:`nll` w.r.t. ``logp``: ``-1`` at ``(i, y_i)`` and 0 elsewhere (dense: ``-t``).

    logp : (B, K); y : (B,) labels or (B, K) targets -> dlogp : (B, K).  Where the loss
    reads a NaN log-probability the gradient is NaN (PyTorch gives ``-t`` there), so a
    NaN that went in comes out, as for every other kernel.
    """
    if y.ndim == 1:
        rows = np.arange(logp.shape[0])
        g = np.zeros_like(logp)
        v = logp[rows, y]
        g[rows, y] = np.where(np.isnan(v), v, -1)
        return g
    return np.where(np.isnan(logp), logp, -y)
