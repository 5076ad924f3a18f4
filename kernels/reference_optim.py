"""Optimiser update steps (issue 13) in NumPy: PyTorch's single-tensor formulas, in place.

Each kernel applies one step of ``torch.optim.<Name>`` (the ``_single_tensor_*`` function of
torch 2.x, ``maximize=False``, default ``foreach``/``fused`` off) to one parameter: it updates
``w`` and its state buffers in place from the gradient ``g`` and returns ``w``.  Scalars derived
from the hyper-parameters (``1 - dampening``, bias corrections, ``lr / (1 + (step - 1) lr_decay)``)
are computed in double precision, as PyTorch computes them in Python, and rounded once to w's
dtype (:func:`step_scalars`, shared with the Numba twins in :mod:`kernels.jit_optim`); then every
array operation is PyTorch's, in its order, in w's dtype.  Where PyTorch's CPU kernels fuse a
multiply-add (``lerp``, ``addcmul``) float32 results may differ from torch's by an ulp per step.

``l1`` (scratchnet's extra, not in PyTorch) adds ``l1 * sign(w)`` to the gradient, after the
coupled L2 term ``weight_decay * w``; ``l1 = 0`` leaves PyTorch's step unchanged.

w : any shape (>= 1 axis), float32 or float64, C-contiguous, writeable; g : w's shape and dtype.
The argument checks are :mod:`kernels.contract_optim`'s.
"""
from __future__ import annotations

import numpy as np

from .contract import kernel


def step_scalars(kernel_name: str, dtype, **hp) -> tuple:
    """The scalars a step kernel computes with, derived in double and rounded once to ``dtype``.

    sgd_step: ``(lr, momentum, 1 - dampening, weight_decay, l1)``
    adam_step: ``(lr, 1 - beta1, beta2, 1 - beta2, step_size, sqrt(1 - beta2**step), eps,
    weight_decay, 1 - lr * weight_decay, l1)`` with ``step_size = lr / (1 - beta1**step)``
    rmsprop_step: ``(lr, alpha, 1 - alpha, eps, weight_decay, momentum, l1)``
    adagrad_step: ``(clr, eps, weight_decay, l1)`` with ``clr = lr / (1 + (step - 1) lr_decay)``
    """
    d = np.dtype(dtype).type
    if kernel_name == "sgd_step":
        values = (hp["lr"], hp["momentum"], 1 - hp["dampening"], hp["weight_decay"], hp["l1"])
    elif kernel_name == "adam_step":
        step, beta1, beta2 = float(hp["step"]), hp["beta1"], hp["beta2"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        values = (hp["lr"], 1 - beta1, beta2, 1 - beta2, hp["lr"] / bias_correction1, bias_correction2 ** 0.5,
                  hp["eps"], hp["weight_decay"], 1 - hp["lr"] * hp["weight_decay"], hp["l1"])
    elif kernel_name == "rmsprop_step":
        values = (hp["lr"], hp["alpha"], 1 - hp["alpha"], hp["eps"], hp["weight_decay"], hp["momentum"], hp["l1"])
    elif kernel_name == "adagrad_step":
        clr = hp["lr"] / (1 + (float(hp["step"]) - 1) * hp["lr_decay"])
        values = (clr, hp["eps"], hp["weight_decay"], hp["l1"])
    else:                                               # pragma: no cover - a new kernel
        raise KeyError(kernel_name)
    return tuple(d(v) for v in values)


def _regularised(w, g, weight_decay, l1):
    """``g + weight_decay * w`` (coupled L2, PyTorch's ``grad.add(param, alpha=weight_decay)``),
    then ``+ l1 * sign(w)``; each term only when its factor is not 0."""
    if weight_decay != 0:
        g = g + weight_decay * w
    if l1 != 0:
        g = g + l1 * np.sign(w)
    return g


def _lerp_(a, b, weight):
    """``a.lerp_(b, weight)`` as PyTorch computes it (in place on ``a``)."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (weight.dtype.type(1) - weight)


@kernel
def sgd_step(w, g, buf, lr, momentum, dampening, weight_decay, nesterov, first, l1):
    """One step of ``torch.optim.SGD``; returns ``w`` (updated in place).

    ``g' = g + weight_decay w (+ l1 sign(w))``; with ``momentum != 0``: ``buf = g'`` on the
    first step (``first``: PyTorch's buffer is created as a copy of the gradient), else
    ``buf = momentum buf + (1 - dampening) g'``, and ``g' = g' + momentum buf`` (``nesterov``)
    or ``g' = buf``; then ``w -= lr g'``.
    w, g, buf : same shape (buf not read when ``momentum == 0``: a (0,) dummy will do).
    """
    lr, momentum, one_minus_dampening, weight_decay, l1 = step_scalars(
        "sgd_step", w.dtype, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, l1=l1)
    g = _regularised(w, g, weight_decay, l1)
    if momentum != 0:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += one_minus_dampening * g
        g = g + momentum * buf if nesterov else buf
    w -= lr * g
    return w


@kernel
def adam_step(w, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
              decoupled, l1):
    """One step of ``torch.optim.Adam`` (``decoupled=False``) or ``AdamW`` (``decoupled=True``); returns ``w``.

    ``step`` is the step count including this one (1 on the first step).  Weight decay:
    Adam adds ``weight_decay w`` to the gradient (coupled L2, then scaled by the adaptive
    step), AdamW multiplies ``w`` by ``1 - lr weight_decay`` first (decoupled).  Then
    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``, with ``amsgrad``
    ``vmax = max(vmax, v)`` in place of v below, and
    ``w -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)``.
    w, g, exp_avg, exp_avg_sq, max_exp_avg_sq : same shape (max_exp_avg_sq not read without amsgrad).
    """
    (lr, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps, weight_decay, decay,
     l1) = step_scalars("adam_step", w.dtype, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                        weight_decay=weight_decay, l1=l1)
    if weight_decay != 0 and decoupled:
        w *= decay
    g = _regularised(w, g, 0 if decoupled else weight_decay, l1)
    _lerp_(exp_avg, g, one_minus_beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += one_minus_beta2 * g * g
    v = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = np.sqrt(v) / bias_correction2_sqrt + eps
    w += -step_size * exp_avg / denom
    return w


@kernel
def rmsprop_step(w, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, centered, l1):
    """One step of ``torch.optim.RMSprop``; returns ``w``.

    ``g' = g + weight_decay w (+ l1 sign(w))``; ``s = alpha s + (1 - alpha) g'^2``; centered:
    ``a = lerp(a, g', 1 - alpha)`` and ``avg = sqrt(s - a^2) + eps``, else ``sqrt(s) + eps``;
    with ``momentum > 0``: ``buf = momentum buf + g' / avg``, ``w -= lr buf``; else ``w -= lr g' / avg``.
    w, g, square_avg, grad_avg, buf : same shape (grad_avg read only when centered, buf only
    with momentum > 0).
    """
    lr, alpha, one_minus_alpha, eps, weight_decay, momentum, l1 = step_scalars(
        "rmsprop_step", w.dtype, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, l1=l1)
    g = _regularised(w, g, weight_decay, l1)
    square_avg *= alpha
    square_avg += one_minus_alpha * g * g
    if centered:
        _lerp_(grad_avg, g, one_minus_alpha)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        buf *= momentum
        buf += g / avg
        w -= lr * buf
    else:
        w += -lr * g / avg
    return w


@kernel
def adagrad_step(w, g, state_sum, step, lr, lr_decay, weight_decay, eps, l1):
    """One step of ``torch.optim.Adagrad`` (dense gradients); returns ``w``.

    ``g' = g + weight_decay w (+ l1 sign(w))``; ``sum += g'^2``;
    ``w -= lr / (1 + (step - 1) lr_decay) * g' / (sqrt(sum) + eps)``, ``step`` counting this one.
    w, g, state_sum : same shape (PyTorch starts the sum at ``initial_accumulator_value``).
    """
    clr, eps, weight_decay, l1 = step_scalars("adagrad_step", w.dtype, step=step, lr=lr, lr_decay=lr_decay,
                                              weight_decay=weight_decay, eps=eps, l1=l1)
    g = _regularised(w, g, weight_decay, l1)
    state_sum += g * g
    w += -clr * g / (np.sqrt(state_sum) + eps)
    return w

