"""Optimiser update steps (issue 13) in Numba: the twins of :mod:`kernels.reference_optim`.

One compiled pass over the elements per step, no temporaries: each element's gradient, state
and weight are read once and written once, in the same operations and order as the NumPy
reference (so the two agree bit for bit: no ``fastmath``, no contraction into FMAs).  The
wrapper checks the arguments (:mod:`kernels.contract_optim`), derives the scalars in double and
rounds them to w's dtype (:func:`kernels.reference_optim.step_scalars`), and passes flat views;
the options arrive as booleans, so the float32 loop compares and computes in float32 only.

Buffers the options do not read are passed as the caller gave them (a (0,) dummy, its own
allocation), never as an empty view of ``w``: LLVM's runtime alias check assumes every array
the loop may touch spans n elements, and a view at w's address made it fall back to the scalar
loop (plain Adam at 784x512 float32: 1.1 ms instead of 0.1 ms).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .contract import kernel
from .reference_optim import step_scalars


@njit(cache=True, inline="always")
def _sign(x, zero, one):
    """``np.sign`` up to the sign of zero: 1, -1, or x itself (0, -0, NaN); constants typed by the caller."""
    if x > zero:
        return one
    if x < zero:
        return -one
    return x


@njit(cache=True, error_model="numpy")
def _sgd_step(w, g, buf, lr, momentum, one_minus_dampening, weight_decay, l1, use_decay, use_l1, use_momentum,
              nesterov, first):
    zero, one = w.dtype.type(0), w.dtype.type(1)
    for i in range(w.shape[0]):
        wi = w[i]
        gi = g[i]
        if use_decay:
            gi = gi + weight_decay * wi
        if use_l1:
            gi = gi + l1 * _sign(wi, zero, one)
        if use_momentum:
            if first:
                b = gi
            else:
                b = buf[i] * momentum
                b = b + one_minus_dampening * gi
            buf[i] = b
            if nesterov:
                gi = gi + momentum * b
            else:
                gi = b
        w[i] = wi - lr * gi


@kernel
def sgd_step(w, g, buf, lr, momentum, dampening, weight_decay, nesterov, first, l1):
    lr_, momentum_, omd, decay, l1_ = step_scalars("sgd_step", w.dtype, lr=lr, momentum=momentum,
                                                   dampening=dampening, weight_decay=weight_decay, l1=l1)
    use_momentum = momentum_ != 0
    _sgd_step(w.reshape(-1), g.reshape(-1), buf.reshape(-1), lr_,
              momentum_, omd, decay, l1_, decay != 0, l1_ != 0, use_momentum, nesterov, first)
    return w


@njit(cache=True, error_model="numpy")
def _adam_step(w, g, m, v, vmax, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps,
               weight_decay, decay, l1, use_decay, decoupled, use_l1, amsgrad):
    zero, one = w.dtype.type(0), w.dtype.type(1)
    half = w.dtype.type(0.5)
    small = abs(one_minus_beta1) < half                  # torch's lerp: which of its two forms
    one_minus_weight = one - one_minus_beta1
    neg_step_size = -step_size
    for i in range(w.shape[0]):
        wi = w[i]
        gi = g[i]
        if use_decay:
            if decoupled:
                wi = wi * decay
            else:
                gi = gi + weight_decay * wi
        if use_l1:
            gi = gi + l1 * _sign(wi, zero, one)
        mi = m[i]
        if small:
            mi = mi + one_minus_beta1 * (gi - mi)
        else:
            mi = gi - (gi - mi) * one_minus_weight
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + one_minus_beta2 * gi * gi
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi > vm or vi != vi:                      # np.maximum: NaN from either side
                vm = vi
            vmax[i] = vm
            vi = vm
        denom = np.sqrt(vi) / bias_correction2_sqrt + eps
        w[i] = wi + neg_step_size * mi / denom


@kernel
def adam_step(w, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
              decoupled, l1):
    (_, omb1, b2, omb2, step_size, bc2s, eps_, decay_, factor, l1_) = step_scalars(
        "adam_step", w.dtype, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, l1=l1)
    flat = w.reshape(-1)
    _adam_step(flat, g.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
               max_exp_avg_sq.reshape(-1), omb1, b2, omb2, step_size, bc2s, eps_, decay_,
               factor, l1_, decay_ != 0, decoupled, l1_ != 0, amsgrad)
    return w


@njit(cache=True, error_model="numpy")
def _rmsprop_step(w, g, sq, ga, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, l1, use_decay,
                  use_l1, centered, use_momentum):
    zero, one = w.dtype.type(0), w.dtype.type(1)
    half = w.dtype.type(0.5)
    small = abs(one_minus_alpha) < half
    one_minus_weight = one - one_minus_alpha
    neg_lr = -lr
    for i in range(w.shape[0]):
        wi = w[i]
        gi = g[i]
        if use_decay:
            gi = gi + weight_decay * wi
        if use_l1:
            gi = gi + l1 * _sign(wi, zero, one)
        si = sq[i] * alpha
        si = si + one_minus_alpha * gi * gi
        sq[i] = si
        if centered:
            ai = ga[i]
            if small:
                ai = ai + one_minus_alpha * (gi - ai)
            else:
                ai = gi - (gi - ai) * one_minus_weight
            ga[i] = ai
            avg = np.sqrt(si - ai * ai) + eps
        else:
            avg = np.sqrt(si) + eps
        if use_momentum:
            b = buf[i] * momentum
            b = b + gi / avg
            buf[i] = b
            w[i] = wi - lr * b
        else:
            w[i] = wi + neg_lr * gi / avg


@kernel
def rmsprop_step(w, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay, momentum, centered, l1):
    lr_, alpha_, oma, eps_, decay, momentum_, l1_ = step_scalars(
        "rmsprop_step", w.dtype, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, l1=l1)
    flat = w.reshape(-1)
    use_momentum = momentum_ > 0
    _rmsprop_step(flat, g.reshape(-1), square_avg.reshape(-1), grad_avg.reshape(-1),
                  buf.reshape(-1), lr_, alpha_, oma, eps_, decay, momentum_, l1_,
                  decay != 0, l1_ != 0, centered, use_momentum)
    return w


@njit(cache=True, error_model="numpy")
def _adagrad_step(w, g, state_sum, clr, eps, weight_decay, l1, use_decay, use_l1):
    zero, one = w.dtype.type(0), w.dtype.type(1)
    neg_clr = -clr
    for i in range(w.shape[0]):
        wi = w[i]
        gi = g[i]
        if use_decay:
            gi = gi + weight_decay * wi
        if use_l1:
            gi = gi + l1 * _sign(wi, zero, one)
        s = state_sum[i] + gi * gi
        state_sum[i] = s
        w[i] = wi + neg_clr * gi / (np.sqrt(s) + eps)


@kernel
def adagrad_step(w, g, state_sum, step, lr, lr_decay, weight_decay, eps, l1):
    clr, eps_, decay, l1_ = step_scalars("adagrad_step", w.dtype, step=step, lr=lr, lr_decay=lr_decay,
                                         weight_decay=weight_decay, eps=eps, l1=l1)
    _adagrad_step(w.reshape(-1), g.reshape(-1), state_sum.reshape(-1), clr, eps_, decay, l1_, decay != 0, l1_ != 0)
    return w
