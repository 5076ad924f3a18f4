"""Normalisation layers with PyTorch's names, arguments and defaults: ``BatchNorm1d``, ``LayerNorm``.

Both take 2-D input ``(B, F)``.  Parameters are ``"weight"`` (ones) and ``"bias"`` (zeros), as
torch's; BatchNorm1d's running statistics live in ``layer.buffers`` (saved with the model).
"""
from __future__ import annotations

import numbers

import numpy as np

from .checks import as_dtype, as_float_array
from .layers import Layer


def _positive_int(who: str, name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {v!r}")
    return int(v)


def _positive_eps(who: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
        raise ValueError(f"{who}: eps must be a positive number, got {eps!r}")
    return float(eps)


def _input(layer, x, width: int) -> np.ndarray:
    x = as_float_array(x, repr(layer), layer.dtype)
    if x.ndim != 2 or x.shape[1] != width:
        hint = "; only 2-D input (batch, features) is supported" if x.ndim == 3 else ""
        raise ValueError(f"{layer!r} expected input of shape (batch, {width}), got {x.shape}{hint}")
    return x


class BatchNorm1d(Layer):
    """Batch normalisation over the batch axis of ``(B, num_features)`` input (``torch.nn.BatchNorm1d``).

    Training mode: normalise with the batch mean and biased variance, and update
    ``buffers["running_mean"]``/``["running_var"]`` (from the *unbiased* batch variance) as
    ``running = (1 - momentum) * running + momentum * batch``; ``momentum=None`` gives the
    cumulative average over ``num_batches_tracked`` batches.  A batch of one row raises, as in
    torch.  Eval mode: normalise with the running statistics (with ``track_running_stats=False``
    there are none, and batch statistics are used in both modes).

    Parameters
    ----------
    num_features : int
    eps : float added to the variance, default 1e-5
    momentum : float in [0, 1] or None, default 0.1
    affine : learnable ``weight`` (ones) and ``bias`` (zeros), default True
    track_running_stats : default True
    backend : ``"numpy"``, ``"numba"`` or None (the default backend)
    dtype : float32 (default) or float64 -- parameters, buffers and outputs
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, backend: str | None = None, dtype=np.float32):
        super().__init__(backend)
        self.num_features = _positive_int("BatchNorm1d", "num_features", num_features)
        self.eps = _positive_eps("BatchNorm1d", eps)
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, numbers.Real)
                                     or not 0 <= momentum <= 1):
            raise ValueError(f"BatchNorm1d: momentum must lie in [0, 1] or be None (cumulative average), "
                             f"got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = as_dtype(dtype)
        F = self.num_features
        self._ones, self._zeros = np.ones(F, self.dtype), np.zeros(F, self.dtype)
        if self.affine:
            self.params["weight"] = np.ones(F, self.dtype)
            self.params["bias"] = np.zeros(F, self.dtype)
        if self.track_running_stats:
            self.buffers["running_mean"] = np.zeros(F, self.dtype)
            self.buffers["running_var"] = np.ones(F, self.dtype)
            self.buffers["num_batches_tracked"] = np.zeros((), np.int64)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v, d in (("eps", self.eps, 1e-5), ("momentum", self.momentum, 0.1),
                                                     ("affine", self.affine, True),
                                                     ("track_running_stats", self.track_running_stats, True))
                        if v != d)
        return f"BatchNorm1d({self.num_features}{extra})"

    @property
    def running_mean(self) -> np.ndarray | None:
        return self.buffers.get("running_mean")

    @property
    def running_var(self) -> np.ndarray | None:
        return self.buffers.get("running_var")

    @property
    def num_batches_tracked(self) -> int | None:
        n = self.buffers.get("num_batches_tracked")
        return None if n is None else int(n)

    def _affine(self):
        if self.affine:
            return self.params["weight"], self.params["bias"]
        return self._ones, self._zeros

    def forward(self, x):
        """x : (B, num_features) -> (B, num_features), dtype of the layer."""
        x = _input(self, x, self.num_features)
        gamma, beta = self._affine()
        if not self.training and self.track_running_stats:
            self._cache = ("eval", x)
            return self.ops.batchnorm_eval(x, self.buffers["running_mean"], self.buffers["running_var"], gamma, beta,
                                           self.eps)
        B = x.shape[0]
        if B < 2:                          # batch statistics (training, or no running statistics)
            raise ValueError(f"{self!r}: expected more than 1 value per channel when training, got input of shape "
                             f"{x.shape} (as torch; use batches of 2 or more rows, or eval mode with "
                             "track_running_stats=True)")
        y, mean, var = self.ops.batchnorm_forward(x, gamma, beta, self.eps)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, B)
        self._cache = ("batch", x, mean, var)
        return y

    def _update_running_stats(self, mean, var, B: int) -> None:
        n = self.buffers["num_batches_tracked"]
        n += 1
        t = self.dtype.type
        f = t(1 / int(n)) if self.momentum is None else t(self.momentum)
        unbiased = var * t(B / (B - 1))
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm[...] = f * mean + (t(1) - f) * rm
        rv[...] = f * unbiased + (t(1) - f) * rv

    def backward(self, dy):
        """dy : (B, num_features) -> dx; fills ``grads["weight"]``/``["bias"]`` when affine."""
        cache = self._saved()
        x = cache[1]
        dy = self._check_dy(dy, x.shape, self.dtype)
        gamma, _ = self._affine()
        if cache[0] == "eval":            # the running statistics are constants here
            t = self.dtype.type
            rstd = t(1) / np.sqrt(self.buffers["running_var"] + t(self.eps))
            xhat = (x - self.buffers["running_mean"]) * rstd
            dx, dgamma, dbeta = dy * (gamma * rstd), (dy * xhat).sum(axis=0), dy.sum(axis=0)
        else:
            dx, dgamma, dbeta = self.ops.batchnorm_backward(x, dy, gamma, cache[2], cache[3], self.eps)
        if self.affine:
            self.grads["weight"], self.grads["bias"] = dgamma, dbeta
        return dx


class LayerNorm(Layer):
    """Normalise each row of ``(B, F)`` input over its ``F`` features (``torch.nn.LayerNorm(F)``).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the row's mean and biased variance;
    the same in training and eval mode.

    Parameters
    ----------
    normalized_shape : int or a 1-tuple ``(F,)`` (only the last axis is normalised)
    eps : float, default 1e-5
    elementwise_affine : learnable ``weight`` (ones) and ``bias`` (zeros), default True
    bias : with ``elementwise_affine``, whether there is a ``bias`` (default True), as torch >= 2.1
    backend : ``"numpy"``, ``"numba"`` or None (the default backend)
    dtype : float32 (default) or float64 -- parameters and outputs
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, *,
                 backend: str | None = None, dtype=np.float32):
        super().__init__(backend)
        shape = normalized_shape
        if isinstance(shape, (tuple, list)):
            if len(shape) != 1:
                raise ValueError(f"LayerNorm: only the last axis can be normalised, so normalized_shape must be an "
                                 f"int or a 1-tuple (F,), got {normalized_shape!r}")
            shape = shape[0]
        self.normalized_shape = (_positive_int("LayerNorm", "normalized_shape", shape),)
        self.eps = _positive_eps("LayerNorm", eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.has_bias = self.elementwise_affine and bool(bias)
        self.dtype = as_dtype(dtype)
        F = self.normalized_shape[0]
        self._ones, self._zeros = np.ones(F, self.dtype), np.zeros(F, self.dtype)
        if self.elementwise_affine:
            self.params["weight"] = np.ones(F, self.dtype)
            if self.has_bias:
                self.params["bias"] = np.zeros(F, self.dtype)

    def __repr__(self) -> str:
        extra = "" if self.eps == 1e-5 else f", eps={self.eps}"
        if not self.elementwise_affine:
            extra += ", elementwise_affine=False"
        elif not self.has_bias:
            extra += ", bias=False"
        return f"LayerNorm(({self.normalized_shape[0]},){extra})"

    def forward(self, x):
        """x : (B, F) -> (B, F), dtype of the layer."""
        x = _input(self, x, self.normalized_shape[0])
        gamma = self.params.get("weight", self._ones)
        beta = self.params.get("bias", self._zeros)
        y, mean, var = self.ops.layernorm_forward(x, gamma, beta, self.eps)
        self._cache = (x, mean, var)
        return y

    def backward(self, dy):
        """dy : (B, F) -> dx; fills ``grads["weight"]``/``["bias"]``."""
        x, mean, var = self._saved()
        dy = self._check_dy(dy, x.shape, self.dtype)
        dx, dgamma, dbeta = self.ops.layernorm_backward(x, dy, self.params.get("weight", self._ones), mean, var,
                                                        self.eps)
        if self.elementwise_affine:
            self.grads["weight"] = dgamma
            if self.has_bias:
                self.grads["bias"] = dbeta
        return dx
