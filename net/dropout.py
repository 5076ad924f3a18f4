"""``Dropout(p=0.5)``: inverted dropout as ``torch.nn.Dropout``, with an explicit random generator."""
from __future__ import annotations

import numbers

import numpy as np

from .checks import as_dtype, as_float_array
from .layers import Layer


class Dropout(Layer):
    """Zero each entry with probability ``p`` and scale the kept ones by ``1 / (1 - p)`` (training mode).

    In eval mode, and for ``p = 0``, the identity; ``p = 1`` gives zeros, as torch.  The mask
    is drawn in NumPy from ``rng`` (a Generator or seed, as Linear's; the kernels draw
    nothing): entry kept where ``rng.random(x.shape) >= p``, so a seed gives the same masks on
    either backend.  Any input shape; the float dtype is kept unless ``dtype=`` is given.
    ``inplace`` is accepted so that torch code ports unchanged; the output is always a new array.

    Parameters
    ----------
    p : float in [0, 1]
    rng : numpy.random.Generator, int seed or None
    backend : ``"numpy"``, ``"numba"`` or None (the default backend)
    dtype : None (keep the input's float dtype), float32 or float64
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng=None, backend: str | None = None, dtype=None):
        super().__init__(backend)
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.inplace = bool(inplace)
        self.dtype = None if dtype is None else as_dtype(dtype)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def forward(self, x):
        """x : any shape -> same shape; in training mode with ``0 < p`` a new mask per call."""
        x = as_float_array(x, repr(self), self.dtype)
        if not self.training or self.p == 0:
            self._cache = (x.shape, x.dtype, None, 0.0)
            return x
        mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
        scale = 0.0 if self.p == 1 else float(x.dtype.type(1) / x.dtype.type(1 - self.p))
        self._cache = (x.shape, x.dtype, mask, scale)
        return self.ops.dropout_forward(x, mask, scale)

    @property
    def mask(self) -> np.ndarray | None:
        """The 0/1 mask of the last training-mode forward pass (None after an identity pass)."""
        return None if self._cache is None else self._cache[2]

    def backward(self, dy):
        """dy : shape of the last input -> dx; the last forward pass's mask and scale."""
        shape, dtype, mask, scale = self._saved()
        dy = self._check_dy(dy, shape, dtype)
        if mask is None:
            return dy
        return self.ops.dropout_backward(dy, mask, scale)
