"""Per-sample math shared by the fused SGD kernels (:mod:`kernels.fused`, :mod:`kernels.fused_threads`).

Activations, the output loss and its gradient for one sample, the forward pass of
one layer and the fused backward-and-update sweep over a range of weight rows.
Constants are typed from the values (``type(v)(0)``), so float32 stays float32.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .codes import RELU, SIGMOID, SOFTMAX_CE, TANH
from .jit_layers import _tanh
from .vmath import vexp

# Reassociation lets LLVM vectorise the dot products (x . delta); no "nnan"/"ninf",
# so the non-finite loss check still works.
_FASTMATH = {"reassoc", "contract", "nsz"}


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _act(v, code):
    # typed constants, not v * 0: that is NaN for v = +-inf (relu(-inf) is 0, sigmoid(+-inf) is 1 or 0)
    if code == RELU:
        return v if v > 0 or v != v else type(v)(0)
    if code == SIGMOID:
        one = type(v)(1)
        e = vexp(-abs(v))                   # <= 1: never overflows; SIMD exp, branch-free
        return (one if v >= 0 else e) / (one + e)
    if code == TANH:
        return _tanh(v, type(v))            # the Tanh layer's own (kernels.jit_layers), vectorisable
    return v


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _act_grad_from_output(a, code):
    """d act / d z expressed through the output a = act(z)."""
    one = type(a)(1)
    if code == RELU:
        return one if a > 0 else type(a)(0)
    if code == SIGMOID:
        return a * (one - a)
    if code == TANH:
        return one - a * a
    return one


@njit(cache=True, fastmath=_FASTMATH)
def _output_loss_and_delta(z, K, loss_kind, label, target, delta):
    """Loss of one sample and d loss / d z into ``delta[:K]`` (batch of one)."""
    if loss_kind == SOFTMAX_CE:
        m = z[0]
        for j in range(1, K):
            if z[j] > m:
                m = z[j]
        total = type(m)(0)                  # not z[0] * 0: NaN for z[0] = -inf
        for j in range(K):
            e = vexp(z[j] - m)
            delta[j] = e
            total += e
        for j in range(K):
            delta[j] /= total
        delta[label] -= 1
        return m + np.log(total) - z[label]
    dt = type(z[0])                         # typed constants: an int or 0 * z would promote or give NaN
    acc = dt(0)
    scale = dt(2) / dt(K)
    for j in range(K):
        d = z[j] - target[j]
        acc += d * d
        delta[j] = scale * d
    return acc / dt(K)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _activate(out, code):
    """``out = act(out)`` in place, one loop per activation (so the sigmoid's vectorises)."""
    if code == SIGMOID:
        for j in range(out.shape[0]):
            out[j] = _act(out[j], SIGMOID)
    elif code == RELU:
        for j in range(out.shape[0]):
            out[j] = _act(out[j], RELU)
    elif code == TANH:
        for j in range(out.shape[0]):
            out[j] = _act(out[j], TANH)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _forward_hidden(W, b, inp, out, code, skip_zero):
    """``out = act(inp @ W + b)``; with ``skip_zero`` the rows of zero inputs are not read."""
    n_in, n_out = W.shape
    for j in range(n_out):
        out[j] = b[j]
    for k in range(n_in):
        a = inp[k]
        if a != 0 or not skip_zero:
            for j in range(n_out):
                out[j] += a * W[k, j]
    _activate(out, code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_rows(W, inp, delta, lo, hi, lr, code, skip_zero, dx, want_dx):
    """Fused sweep over rows ``[lo, hi)``: ``dx[k] = (W[k] . delta) act'(inp[k])``, ``W[k] -= lr inp[k] delta``."""
    n_out = W.shape[1]
    for k in range(lo, hi):
        a = inp[k]
        if a == 0 and skip_zero:
            if want_dx:
                dx[k] = a
            continue
        c = lr * a
        acc = type(a)(0)
        for j in range(n_out):
            w = W[k, j]
            acc += w * delta[j]
            W[k, j] = w - c * delta[j]
        if want_dx:
            dx[k] = acc * _act_grad_from_output(a, code)

