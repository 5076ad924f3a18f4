"""NumPy reference kernels of the issue-13 layers: Tanh, LeakyReLU, GELU, Dropout, BatchNorm1d, LayerNorm.

Twins with the same names and signatures live in :mod:`kernels.jit_layers`; both are
re-exported by :mod:`kernels.reference` and :mod:`kernels.jit`.  The contract is the one of
every kernel (:mod:`kernels.contract`): float32 or float64 arrays of one dtype, which is the
output dtype; scalars (``negative_slope``, ``scale``, ``eps``) are cast to that dtype.  The
math follows PyTorch's CPU kernels (``torch.nn.functional`` names in the docstrings).

Shapes: ``B`` batch rows, ``I`` features (the normalised axis of LayerNorm, the
per-feature statistics of BatchNorm1d).
"""
from __future__ import annotations

import numpy as np

from .contract import kernel

#: ``approximate`` of :func:`gelu_forward`/:func:`gelu_backward`: torch.nn.GELU's strings.
GELU_APPROXIMATIONS = ("none", "tanh")

#: GELU constants as in PyTorch's kernels (ATen/native/cpu/Activation.cpp).
SQRT1_2 = 0.7071067811865476            # 1/sqrt(2): erf(x/sqrt(2))
INV_SQRT_2PI = 0.3989422804014327       # 1/sqrt(2 pi): the normal density
SQRT_2_OVER_PI = 0.7978845608028654     # sqrt(2/pi): the tanh approximation
GELU_KAPPA = 0.044715


def gelu_mode(kernel_name: str, approximate) -> bool:
    """True for ``"tanh"``, False for ``"none"``; ``ValueError`` otherwise (both backends)."""
    if isinstance(approximate, str) and approximate in GELU_APPROXIMATIONS:
        return approximate == "tanh"
    raise ValueError(f"{kernel_name}: approximate must be 'none' or 'tanh' (as torch.nn.GELU), got {approximate!r}")


# ---- Tanh -------------------------------------------------------------------------------------

@kernel
def tanh_forward(x):
    """``tanh(x)`` elementwise.  x : any shape -> same shape."""
    return np.tanh(x)


@kernel
def tanh_backward(y, dy):
    """Tanh gradient from the saved output ``y = tanh(x)``: ``dy * (1 - y**2)``.

    y, dy : same shape -> dx : same shape.
    """
    return dy * (y.dtype.type(1) - y * y)


# ---- LeakyReLU --------------------------------------------------------------------------------

@kernel
def leaky_relu_forward(x, negative_slope):
    """``x`` where ``x > 0``, else ``negative_slope * x`` (``F.leaky_relu``).  x : any shape -> same shape."""
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


@kernel
def leaky_relu_backward(x, dy, negative_slope):
    """LeakyReLU gradient: ``dy`` where ``x > 0``, else ``negative_slope * dy`` (also at ``x == 0``, as torch).

    x, dy : same shape -> dx : same shape.
    """
    return np.where(x > 0, dy, dy * x.dtype.type(negative_slope))


# ---- GELU -------------------------------------------------------------------------------------

@kernel
def gelu_forward(x, approximate):
    """``F.gelu(x, approximate=...)``: ``x * Phi(x)`` with the normal CDF ``Phi``.

    ``approximate="none"``: ``x/2 * (1 + erf(x / sqrt 2))``;
    ``"tanh"``: ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``.
    x : any shape -> same shape.
    """
    t = x.dtype.type
    if gelu_mode("gelu_forward", approximate):
        inner = t(SQRT_2_OVER_PI) * (x + t(GELU_KAPPA) * (x * x * x))
        return t(0.5) * x * (t(1) + np.tanh(inner))
    from scipy.special import erf     # NumPy has no erf; SciPy is a dependency (kernels.blas)

    return x * t(0.5) * (t(1) + erf(x * t(SQRT1_2)))


@kernel
def gelu_backward(x, dy, approximate):
    """GELU gradient w.r.t. ``x`` (the input saved by forward), as torch's ``gelu_backward``.

    ``"none"``: ``dy * (Phi(x) + x * phi(x))``, ``phi(x) = exp(-x**2/2) / sqrt(2 pi)``;
    ``"tanh"``: ``dy * (0.5 (1 + tanh u) + 0.5 x (1 - tanh(u)**2) sqrt(2/pi) (1 + 3 * 0.044715 x**2))``.
    x, dy : same shape -> dx : same shape.
    """
    t = x.dtype.type
    half, one = t(0.5), t(1)
    if gelu_mode("gelu_backward", approximate):
        x_sq = x * x
        inner = t(SQRT_2_OVER_PI) * (x + t(GELU_KAPPA) * (x_sq * x))
        th = np.tanh(inner)
        left_derivative = half * (one + th)
        right_derivative = (half * x) * (one - th * th) * (t(SQRT_2_OVER_PI) * (one + t(3 * GELU_KAPPA) * x_sq))
        return dy * (left_derivative + right_derivative)
    from scipy.special import erf

    cdf = half * (one + erf(x * t(SQRT1_2)))
    pdf = np.exp(-half * (x * x)) * t(INV_SQRT_2PI)
    return dy * (cdf + x * pdf)


# ---- Dropout ----------------------------------------------------------------------------------

@kernel
def dropout_forward(x, mask, scale):
    """Inverted dropout with a mask drawn by the caller: ``x * (mask * scale)``.

    ``mask`` holds 1 (keep) or 0 (drop), ``scale = 1 / (1 - p)`` (PyTorch's ``input * noise``
    with ``noise = bernoulli(1 - p) / (1 - p)``).  x, mask : same shape -> y : same shape.
    """
    return x * (mask * x.dtype.type(scale))


@kernel
def dropout_backward(dy, mask, scale):
    """Dropout gradient: ``dy * (mask * scale)``, the mask and scale of the forward pass.

    dy, mask : same shape -> dx : same shape.
    """
    return dy * (mask * dy.dtype.type(scale))


# ---- BatchNorm1d ------------------------------------------------------------------------------

@kernel
def batchnorm_forward(x, gamma, beta, eps):
    """Training-mode batch normalisation over the batch axis (``F.batch_norm(training=True)``).

    ``mean = x.mean(0)``, ``var = ((x - mean)**2).mean(0)`` (biased, two passes),
    ``y = (x - mean) / sqrt(var + eps) * gamma + beta``.
    x : (B, I), gamma, beta : (I,) -> (y : (B, I), mean : (I,), var : (I,)).  B = 0 gives NaN
    statistics.
    """
    t = x.dtype.type
    n = t(x.shape[0])
    mean = x.sum(axis=0) / n
    d = x - mean
    var = (d * d).sum(axis=0) / n
    rstd = t(1) / np.sqrt(var + t(eps))
    return d * rstd * gamma + beta, mean, var


@kernel
def batchnorm_eval(x, running_mean, running_var, gamma, beta, eps):
    """Evaluation-mode batch normalisation with running statistics.

    ``y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta``.
    x : (B, I), running_mean, running_var, gamma, beta : (I,) -> y : (B, I).
    """
    t = x.dtype.type
    rstd = t(1) / np.sqrt(running_var + t(eps))
    return (x - running_mean) * rstd * gamma + beta


@kernel
def batchnorm_backward(x, dy, gamma, mean, var, eps):
    """Gradients of training-mode :func:`batchnorm_forward` (batch statistics depend on ``x``).

    With ``xhat = (x - mean) / sqrt(var + eps)``: ``dbeta = dy.sum(0)``,
    ``dgamma = (dy * xhat).sum(0)``,
    ``dx = gamma / sqrt(var + eps) / B * (B dy - dbeta - xhat dgamma)``.
    x, dy : (B, I), gamma, mean, var : (I,) -> (dx : (B, I), dgamma : (I,), dbeta : (I,)).
    """
    t = x.dtype.type
    n = t(x.shape[0])
    rstd = t(1) / np.sqrt(var + t(eps))
    xhat = (x - mean) * rstd
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = (gamma * rstd / n) * (n * dy - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


# ---- LayerNorm --------------------------------------------------------------------------------

@kernel
def layernorm_forward(x, gamma, beta, eps):
    """Layer normalisation over the last axis with elementwise affine (``F.layer_norm``).

    Per row: ``mean``, biased ``var`` (two passes), ``y = (x - mean) / sqrt(var + eps) * gamma + beta``.
    x : (B, I), gamma, beta : (I,) -> (y : (B, I), mean : (B,), var : (B,)).  I = 0 gives NaN
    statistics.
    """
    t = x.dtype.type
    n = t(x.shape[1])
    mean = x.sum(axis=1) / n
    d = x - mean[:, None]
    var = (d * d).sum(axis=1) / n
    rstd = t(1) / np.sqrt(var + t(eps))
    return d * rstd[:, None] * gamma + beta, mean, var


@kernel
def layernorm_backward(x, dy, gamma, mean, var, eps):
    """Gradients of :func:`layernorm_forward`.

    With ``xhat = (x - mean) / sqrt(var + eps)`` and ``g = dy * gamma`` per row:
    ``dx = rstd / I * (I g - g.sum() - xhat (g * xhat).sum())``; ``dgamma = (dy * xhat).sum(0)``,
    ``dbeta = dy.sum(0)``.
    x, dy : (B, I), gamma : (I,), mean, var : (B,) -> (dx : (B, I), dgamma : (I,), dbeta : (I,)).
    """
    t = x.dtype.type
    n = t(x.shape[1])
    rstd = (t(1) / np.sqrt(var + t(eps)))[:, None]
    xhat = (x - mean[:, None]) * rstd
    g = dy * gamma
    sum_g = g.sum(axis=1)[:, None]
    sum_gx = (g * xhat).sum(axis=1)[:, None]
    dx = (rstd / n) * (n * g - sum_g - xhat * sum_gx)
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)
