"""Numba twins of :mod:`kernels.reference_layers` (same names, signatures and dtype behaviour).

The math and shapes are documented once, in :mod:`kernels.reference_layers`.  Habits as in
:mod:`kernels.jit`: constants typed from the input (``t = x.dtype.type``; ``t(0.5)``), so float32
stays float32; ``exp`` through :func:`kernels.vmath.vexp` (SIMD); ``error_model="numpy"`` where a
loop divides; the same operation order as the NumPy reference, and no ``fastmath`` except the
``reassoc`` of LayerNorm's row sums (NumPy sums rows pairwise, so neither order is "the" one).

``tanh`` is computed here from :func:`vexp` (Numba's ``np.tanh`` is a scalar libm call, which
stops vectorisation): ``tanh|x| = (1 - e) / (1 + e)`` with ``e = exp(-2|x|)`` for ``|x| >= 1/8``
(where ``1 - e`` loses at most ~2 bits), below it the Taylor polynomial (degree 9 in float32,
17 in float64); NaN, +-inf and -0 come out as from ``np.tanh``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .contract import kernel
from .reference_layers import GELU_KAPPA, INV_SQRT_2PI, SQRT1_2, SQRT_2_OVER_PI, gelu_mode
from .vmath import prefer_wide_vectors, vexp

#: Taylor coefficients of tanh, tanh x = x (1 + z (T3 + z (T5 + ...))) with z = x**2: the exact
#: rationals rounded, as float32 (4 terms: relative error < 2e-9 below 1/8) and float64 (8: < 3e-18).
_TANH_TAYLOR = (-1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075, -929569 / 638512875,
                6404582 / 10854718875)
_T32 = tuple(np.float32(c) for c in _TANH_TAYLOR[:4])
_T64 = tuple(np.float64(c) for c in _TANH_TAYLOR)
#: Below this |x| the polynomial, above it the exp formula.
_TANH_SMALL = 0.125


def _tanh_series(z):
    """``1 + z (T3 + z (T5 + ...))`` in the precision of ``z`` (see the overload)."""
    raise NotImplementedError     # pragma: no cover - only called from @njit code


@overload(_tanh_series, inline="always")
def _tanh_series_overload(z):
    if z == types.float32:
        c3, c5, c7, c9 = _T32
        one32 = np.float32(1)
        return lambda z: one32 + z * (c3 + z * (c5 + z * (c7 + z * c9)))
    if z == types.float64:
        c3, c5, c7, c9, c11, c13, c15, c17 = _T64
        one64 = np.float64(1)
        return lambda z: one64 + z * (c3 + z * (c5 + z * (c7 + z * (c9 + z * (c11 + z * (c13 + z * (c15 + z * c17)))))))
    return None


@njit(cache=True, inline="always")
def _tanh(v, t):
    """tanh of one float of type ``t`` (float32 or float64), vectorisable (no branches, no calls)."""
    a = abs(v)
    e = vexp(t(-2) * a)
    big = (t(1) - e) / (t(1) + e)
    small = v * _tanh_series(v * v)         # v * (...), not v + v * (...): keeps the sign of -0
    r = big if v >= t(0) else -big
    return small if a < t(_TANH_SMALL) else r


# ---- Tanh -------------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _tanh_forward(x, out):
    prefer_wide_vectors()           # compute-bound: zmm where the CPU has AVX-512 (see kernels.vmath)
    xf, of = x.ravel(), out.ravel()
    t = x.dtype.type
    for i in range(xf.size):
        of[i] = _tanh(xf[i], t)
    return out


@kernel
def tanh_forward(x):
    return _tanh_forward(x, np.empty(x.shape, x.dtype))


@njit(cache=True)
def _tanh_backward(y, dy, out):
    yf, gf, of = y.ravel(), dy.ravel(), out.ravel()
    one = y.dtype.type(1)
    for i in range(yf.size):
        v = yf[i]
        of[i] = gf[i] * (one - v * v)
    return out


@kernel
def tanh_backward(y, dy):
    return _tanh_backward(y, dy, np.empty(dy.shape, dy.dtype))


# ---- LeakyReLU --------------------------------------------------------------------------------

@njit(cache=True)
def _leaky_relu_forward(x, slope, out):
    xf, of = x.ravel(), out.ravel()
    zero = x.dtype.type(0)
    for i in range(xf.size):
        v = xf[i]
        of[i] = v if v > zero else v * slope
    return out


@kernel
def leaky_relu_forward(x, negative_slope):
    return _leaky_relu_forward(x, x.dtype.type(negative_slope), np.empty(x.shape, x.dtype))


@njit(cache=True)
def _leaky_relu_backward(x, dy, slope, out):
    xf, gf, of = x.ravel(), dy.ravel(), out.ravel()
    zero = x.dtype.type(0)
    for i in range(xf.size):
        g = gf[i]
        of[i] = g if xf[i] > zero else g * slope
    return out


@kernel
def leaky_relu_backward(x, dy, negative_slope):
    return _leaky_relu_backward(x, dy, x.dtype.type(negative_slope), np.empty(dy.shape, dy.dtype))


# ---- GELU -------------------------------------------------------------------------------------

@njit(cache=True)
def _gelu_exact_forward(x, out):
    xf, of = x.ravel(), out.ravel()
    t = x.dtype.type
    for i in range(xf.size):
        v = xf[i]
        of[i] = v * t(0.5) * (t(1) + math.erf(v * t(SQRT1_2)))
    return out


@njit(cache=True, error_model="numpy")
def _gelu_tanh_forward(x, out):
    xf, of = x.ravel(), out.ravel()
    t = x.dtype.type
    for i in range(xf.size):
        v = xf[i]
        inner = t(SQRT_2_OVER_PI) * (v + t(GELU_KAPPA) * (v * v * v))
        of[i] = t(0.5) * v * (t(1) + _tanh(inner, t))
    return out


@kernel
def gelu_forward(x, approximate):
    out = np.empty(x.shape, x.dtype)
    if gelu_mode("gelu_forward", approximate):
        return _gelu_tanh_forward(x, out)
    return _gelu_exact_forward(x, out)


@njit(cache=True)
def _gelu_exact_backward(x, dy, out):
    xf, gf, of = x.ravel(), dy.ravel(), out.ravel()
    t = x.dtype.type
    half, one = t(0.5), t(1)
    for i in range(xf.size):
        v = xf[i]
        cdf = half * (one + math.erf(v * t(SQRT1_2)))
        pdf = vexp(-half * (v * v)) * t(INV_SQRT_2PI)
        of[i] = gf[i] * (cdf + v * pdf)
    return out


@njit(cache=True, error_model="numpy")
def _gelu_tanh_backward(x, dy, out):
    xf, gf, of = x.ravel(), dy.ravel(), out.ravel()
    t = x.dtype.type
    half, one = t(0.5), t(1)
    for i in range(xf.size):
        v = xf[i]
        v_sq = v * v
        inner = t(SQRT_2_OVER_PI) * (v + t(GELU_KAPPA) * (v_sq * v))
        th = _tanh(inner, t)
        left_derivative = half * (one + th)
        right_derivative = (half * v) * (one - th * th) * (t(SQRT_2_OVER_PI) * (one + t(3 * GELU_KAPPA) * v_sq))
        of[i] = gf[i] * (left_derivative + right_derivative)
    return out


@kernel
def gelu_backward(x, dy, approximate):
    out = np.empty(dy.shape, dy.dtype)
    if gelu_mode("gelu_backward", approximate):
        return _gelu_tanh_backward(x, dy, out)
    return _gelu_exact_backward(x, dy, out)


# ---- Dropout ----------------------------------------------------------------------------------

@njit(cache=True)
def _dropout(x, mask, scale, out):
    xf, mf, of = x.ravel(), mask.ravel(), out.ravel()
    for i in range(xf.size):
        of[i] = xf[i] * (mf[i] * scale)
    return out


@kernel
def dropout_forward(x, mask, scale):
    return _dropout(x, mask, x.dtype.type(scale), np.empty(x.shape, x.dtype))


@kernel
def dropout_backward(dy, mask, scale):
    return _dropout(dy, mask, dy.dtype.type(scale), np.empty(dy.shape, dy.dtype))


# ---- BatchNorm1d ------------------------------------------------------------------------------
# Column statistics accumulate row by row into (I,) vectors -- the order of NumPy's x.sum(axis=0),
# and the inner loop runs over the contiguous feature axis (vectorised).

@njit(cache=True, error_model="numpy")
def _batchnorm_forward(x, gamma, beta, eps, y, mean, var):
    Bn, I = x.shape
    t = x.dtype.type
    n = t(Bn)
    mean[:] = t(0)
    var[:] = t(0)
    for i in range(Bn):
        row = x[i]
        for j in range(I):
            mean[j] += row[j]
    for j in range(I):
        mean[j] = mean[j] / n
    for i in range(Bn):
        row = x[i]
        for j in range(I):
            d = row[j] - mean[j]
            var[j] += d * d
    rstd = np.empty(I, x.dtype)
    for j in range(I):
        var[j] = var[j] / n
        rstd[j] = t(1) / np.sqrt(var[j] + eps)
    for i in range(Bn):
        row, out = x[i], y[i]
        for j in range(I):
            out[j] = (row[j] - mean[j]) * rstd[j] * gamma[j] + beta[j]
    return y, mean, var


@kernel
def batchnorm_forward(x, gamma, beta, eps):
    Bn, I = x.shape
    return _batchnorm_forward(x, gamma, beta, x.dtype.type(eps), np.empty((Bn, I), x.dtype),
                              np.empty(I, x.dtype), np.empty(I, x.dtype))


@njit(cache=True, error_model="numpy")
def _batchnorm_eval(x, running_mean, running_var, gamma, beta, eps, y):
    Bn, I = x.shape
    t = x.dtype.type
    rstd = np.empty(I, x.dtype)
    for j in range(I):
        rstd[j] = t(1) / np.sqrt(running_var[j] + eps)
    for i in range(Bn):
        row, out = x[i], y[i]
        for j in range(I):
            out[j] = (row[j] - running_mean[j]) * rstd[j] * gamma[j] + beta[j]
    return y


@kernel
def batchnorm_eval(x, running_mean, running_var, gamma, beta, eps):
    return _batchnorm_eval(x, running_mean, running_var, gamma, beta, x.dtype.type(eps),
                           np.empty(x.shape, x.dtype))


@njit(cache=True, error_model="numpy")
def _batchnorm_backward(x, dy, gamma, mean, var, eps, dx, dgamma, dbeta):
    Bn, I = x.shape
    t = x.dtype.type
    n = t(Bn)
    rstd = np.empty(I, x.dtype)
    for j in range(I):
        rstd[j] = t(1) / np.sqrt(var[j] + eps)
    dgamma[:] = t(0)
    dbeta[:] = t(0)
    for i in range(Bn):
        xr, gr = x[i], dy[i]
        for j in range(I):
            g = gr[j]
            dbeta[j] += g
            dgamma[j] += g * ((xr[j] - mean[j]) * rstd[j])
    k = np.empty(I, x.dtype)
    for j in range(I):
        k[j] = gamma[j] * rstd[j] / n
    for i in range(Bn):
        xr, gr, out = x[i], dy[i], dx[i]
        for j in range(I):
            xhat = (xr[j] - mean[j]) * rstd[j]
            out[j] = k[j] * (n * gr[j] - dbeta[j] - xhat * dgamma[j])
    return dx, dgamma, dbeta


@kernel
def batchnorm_backward(x, dy, gamma, mean, var, eps):
    Bn, I = x.shape
    return _batchnorm_backward(x, dy, gamma, mean, var, x.dtype.type(eps), np.empty((Bn, I), x.dtype),
                               np.empty(I, x.dtype), np.empty(I, x.dtype))


# ---- LayerNorm --------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _row_sum(row):
    s = row.dtype.type(0)
    for j in range(row.size):
        s += row[j]
    return s


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _layernorm_forward(x, gamma, beta, eps, y, mean, var):
    Bn, I = x.shape
    t = x.dtype.type
    n = t(I)
    for i in range(Bn):
        row, out = x[i], y[i]
        m = _row_sum(row) / n
        s = t(0)
        for j in range(I):
            d = row[j] - m
            s += d * d
        v = s / n
        rstd = t(1) / np.sqrt(v + eps)
        for j in range(I):
            out[j] = (row[j] - m) * rstd * gamma[j] + beta[j]
        mean[i] = m
        var[i] = v
    return y, mean, var


@kernel
def layernorm_forward(x, gamma, beta, eps):
    Bn, I = x.shape
    return _layernorm_forward(x, gamma, beta, x.dtype.type(eps), np.empty((Bn, I), x.dtype),
                              np.empty(Bn, x.dtype), np.empty(Bn, x.dtype))


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _layernorm_backward(x, dy, gamma, mean, var, eps, dx, dgamma, dbeta):
    Bn, I = x.shape
    t = x.dtype.type
    n = t(I)
    dgamma[:] = t(0)
    dbeta[:] = t(0)
    for i in range(Bn):
        xr, gr, out = x[i], dy[i], dx[i]
        m = mean[i]
        rstd = t(1) / np.sqrt(var[i] + eps)
        sum_g = t(0)
        sum_gx = t(0)
        for j in range(I):
            xhat = (xr[j] - m) * rstd
            g = gr[j] * gamma[j]
            sum_g += g
            sum_gx += g * xhat
            dgamma[j] += gr[j] * xhat
            dbeta[j] += gr[j]
        k = rstd / n
        for j in range(I):
            xhat = (xr[j] - m) * rstd
            out[j] = k * (n * (gr[j] * gamma[j]) - sum_g - xhat * sum_gx)
    return dx, dgamma, dbeta


@kernel
def layernorm_backward(x, dy, gamma, mean, var, eps):
    Bn, I = x.shape
    return _layernorm_backward(x, dy, gamma, mean, var, x.dtype.type(eps), np.empty((Bn, I), x.dtype),
                               np.empty(I, x.dtype), np.empty(I, x.dtype))
