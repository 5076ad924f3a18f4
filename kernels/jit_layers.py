"""Numba twins of :mod:`kernels.reference_layers` (same names, signatures and dtype behaviour).

The math and shapes are documented once, in :mod:`kernels.reference_layers`.  Habits as in
:mod:`kernels.jit`: constants typed from the input (``t = x.dtype.type``; ``t(0.5)``), so float32
stays float32; ``exp`` through :func:`kernels.vmath.vexp` (SIMD); ``error_model="numpy"`` where a
loop divides; the same operation order as the NumPy reference, and no ``fastmath`` except the
``reassoc`` of LayerNorm's row sums (NumPy sums rows pairwise, so neither order is "the" one).

``tanh`` is computed here in vectorisable code (Numba's ``np.tanh`` is a scalar libm call, which
stops vectorisation): in float32 by Eigen's rational approximation (<= 3.3 ulp), in float64 from
:func:`vexp` (``tanh|x| = (1 - e) / (1 + e)``, ``e = exp(-2|x|)``, for ``|x| >= 1/8``, the Taylor
polynomial below it); NaN, +-inf and -0 come out as from ``np.tanh``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .contract import kernel
from .reference_layers import GELU_KAPPA, INV_SQRT_2PI, SQRT1_2, SQRT_2_OVER_PI, gelu_mode
from .vmath import prefer_wide_vectors, vexp

#: float64: Taylor coefficients of tanh, tanh x = x (1 + z (T3 + z (T5 + ...))) with z = x**2, the
#: exact rationals rounded (8 terms: relative error < 3e-18 below 1/8).
_T64 = tuple(np.float64(c) for c in (-1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075,
                                     -929569 / 638512875, 6404582 / 10854718875))
#: float64: below this |x| the polynomial, above it the exp formula.
_TANH_SMALL = 0.125
#: float32: Eigen's rational minimax approximation (``generic_fast_tanh_float``): x P(x^2) / Q(x^2)
#: on x clamped to +-7.905 (where tanh rounds to +-1), x itself below 4e-4; <= 3.3 ulp from the
#: correctly rounded tanh on a dense sweep of [-10, 10].
_A32 = tuple(np.float32(c) for c in (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
                                     5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
                                     -2.76076847742355e-16))
_B32 = tuple(np.float32(c) for c in (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
                                     1.19825839466702e-06))
_CLAMP32, _TINY32 = np.float32(7.90531110763549805), np.float32(4e-4)
#: float32: above this |x| tanh rounds to +-1 (1 - tanh x = 2 exp(-2x) < 2**-25), given exactly.
_ONE32, _SATURATED32 = np.float32(1), np.float32(9.02)


# _tanh64/_tanh32 are plain @njit functions (LLVM inlines them into the loops, which still
# vectorise): inlined by Numba through _tanh into the fused kernels' _act as well, their selects
# raised NumbaIRAssumptionWarning at compile time.
@njit(cache=True)
def _tanh64(v):
    """float64 tanh: ``(1 - e) / (1 + e)``, ``e = exp(-2|x|)``, for |x| >= 1/8 (``1 - e`` loses at most
    ~2 bits there), the Taylor polynomial below; branch-free."""
    c3, c5, c7, c9, c11, c13, c15, c17 = _T64
    one = np.float64(1)
    a = abs(v)
    e = vexp(np.float64(-2) * a)
    big = (one - e) / (one + e)
    z = v * v
    small = v * (one + z * (c3 + z * (c5 + z * (c7 + z * (c9 + z * (c11 + z * (c13 + z * (c15 + z * c17))))))))
    r = big if v >= np.float64(0) else -big              # v * (...) above keeps the sign of -0
    return small if a < np.float64(_TANH_SMALL) else r


@njit(cache=True)
def _tanh32(v):
    """float32 tanh: one division and eleven multiply-adds (no exp); NaN passes the clamp and the
    selects, +-inf gives +-1."""
    a1, a3, a5, a7, a9, a11, a13 = _A32
    b0, b2, b4, b6 = _B32
    xc = _CLAMP32 if v > _CLAMP32 else v
    xc = -_CLAMP32 if xc < -_CLAMP32 else xc
    z = xc * xc
    p = xc * (a1 + z * (a3 + z * (a5 + z * (a7 + z * (a9 + z * (a11 + z * a13))))))
    q = b0 + z * (b2 + z * (b4 + z * b6))
    r = p / q
    r = math.copysign(_ONE32, v) if abs(v) > _SATURATED32 else r
    return v if abs(v) < _TINY32 else r


def _tanh(v, t):
    """tanh of one float32 or float64 (``t`` its type), vectorisable: :func:`_tanh32`/:func:`_tanh64`."""
    raise NotImplementedError     # pragma: no cover - only called from @njit code


@overload(_tanh, inline="always")
def _tanh_overload(v, t):
    if v == types.float32:
        return lambda v, t: _tanh32(v)
    if v == types.float64:
        return lambda v, t: _tanh64(v)
    return None


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
