"""More activations with PyTorch's names and defaults: ``Tanh``, ``LeakyReLU``, ``GELU``.

Elementwise on any shape, as ``torch.nn.Tanh``/``LeakyReLU``/``GELU``; no parameters.  The
float dtype of the input is kept, unless the layer was made with ``dtype=`` (then inputs are
cast to it, as Linear casts to its own).
"""
from __future__ import annotations

import numbers

from .checks import as_dtype, as_float_array
from .layers import _Elementwise


class _Activation(_Elementwise):
    """An elementwise layer with ``backend=`` and ``dtype=`` (None: keep the input's float dtype)."""

    def __init__(self, *, backend: str | None = None, dtype=None):
        super().__init__(backend)
        self.dtype = None if dtype is None else as_dtype(dtype)

    def forward(self, x):
        """x : any shape -> same shape."""
        x = as_float_array(x, repr(self), self.dtype)
        out = self._forward(x)
        self._cache = self._to_cache(x, out)
        return out


class Tanh(_Activation):
    """``tanh(x)`` (``torch.nn.Tanh``); backward from the saved output, ``dy * (1 - y**2)``."""

    def _forward(self, x):
        return self.ops.tanh_forward(x)

    def _to_cache(self, x, out):
        return out

    def _backward(self, y, dy):
        return self.ops.tanh_backward(y, dy)


class LeakyReLU(_Activation):
    """``x`` where ``x > 0``, else ``negative_slope * x`` (``torch.nn.LeakyReLU``).

    The gradient at ``x == 0`` is ``negative_slope``, as torch's.  ``inplace`` is accepted
    so that torch code ports unchanged; the output is always a new array.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, backend: str | None = None,
                 dtype=None):
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"LeakyReLU: negative_slope must be a real number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self.inplace = bool(inplace)
        super().__init__(backend=backend, dtype=dtype)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def _forward(self, x):
        return self.ops.leaky_relu_forward(x, self.negative_slope)

    def _to_cache(self, x, out):
        return x

    def _backward(self, x, dy):
        return self.ops.leaky_relu_backward(x, dy, self.negative_slope)


class GELU(_Activation):
    """``x * Phi(x)`` (``torch.nn.GELU``): ``approximate='none'`` uses erf, ``'tanh'`` the tanh formula."""

    def __init__(self, approximate: str = "none", *, backend: str | None = None, dtype=None):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh' (as torch.nn.GELU), got {approximate!r}")
        self.approximate = approximate
        super().__init__(backend=backend, dtype=dtype)

    def __repr__(self) -> str:
        return "GELU()" if self.approximate == "none" else f"GELU(approximate={self.approximate!r})"

    def _forward(self, x):
        return self.ops.gelu_forward(x, self.approximate)

    def _to_cache(self, x, out):
        return x

    def _backward(self, x, dy):
        return self.ops.gelu_backward(x, dy, self.approximate)
