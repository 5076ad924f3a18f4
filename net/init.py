"""Weight initialisers.  Each takes ``(shape, rng, dtype)`` with ``shape = (fan_in, fan_out)``.

``rng`` is a ``numpy.random.Generator`` (or a seed / ``None``, passed through
``numpy.random.default_rng``); nothing here touches global random state.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .checks import as_dtype


def _gen(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _fans(shape) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"initialisers expect a (fan_in, fan_out) shape, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def normal(shape, rng=None, dtype=np.float32, std: float = 0.01):
    """N(0, std^2) entries."""
    _fans(shape)
    return (_gen(rng).standard_normal(shape) * std).astype(as_dtype(dtype))


def uniform(shape, rng=None, dtype=np.float32, limit: float = 0.05):
    """U(-limit, limit) entries."""
    _fans(shape)
    return _gen(rng).uniform(-limit, limit, size=shape).astype(as_dtype(dtype))


def xavier_normal(shape, rng=None, dtype=np.float32, gain: float = 1.0):
    """Glorot & Bengio (2010): N(0, gain^2 * 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return normal(shape, rng, dtype, std=gain * np.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform(shape, rng=None, dtype=np.float32, gain: float = 1.0):
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return uniform(shape, rng, dtype, limit=gain * np.sqrt(6.0 / (fan_in + fan_out)))


def kaiming_normal(shape, rng=None, dtype=np.float32):
    """He et al. (2015), for ReLU: N(0, 2 / fan_in)."""
    fan_in, _ = _fans(shape)
    return normal(shape, rng, dtype, std=np.sqrt(2.0 / fan_in))


def torch_default(shape, rng=None, dtype=np.float32):
    """PyTorch's default ``nn.Linear`` weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    torch calls it ``kaiming_uniform_(weight, a=sqrt(5))``: gain sqrt(2 / (1 + a^2)) = sqrt(1/3),
    bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in), variance 1 / (3 fan_in).  torch's weight is
    (out, in) and ours (in, out); fan_in is in_features either way.  With ``init="torch_default"``
    a :class:`~net.Linear` also draws its bias from the same range (:func:`torch_default_bias`),
    after the weights, as ``nn.Linear.reset_parameters`` does.
    """
    fan_in, _ = _fans(shape)
    return uniform(shape, rng, dtype, limit=1.0 / np.sqrt(fan_in))


def torch_default_bias(fan_in: int, n: int, rng=None, dtype=np.float32):
    """PyTorch's default ``nn.Linear`` bias: ``n`` entries from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    limit = 1.0 / np.sqrt(fan_in)
    return _gen(rng).uniform(-limit, limit, size=n).astype(as_dtype(dtype))


def zeros(shape, rng=None, dtype=np.float32):
    """All zeros (biases; a weight matrix of zeros never breaks symmetry)."""
    _fans(shape)
    return np.zeros(shape, dtype=as_dtype(dtype))


INITIALIZERS: dict[str, Callable] = {
    "normal": normal,
    "uniform": uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "kaiming_normal": kaiming_normal,
    "he_normal": kaiming_normal,
    "zeros": zeros,
    "torch_default": torch_default,
}

#: Initialisers that also set the bias (``(fan_in, n, rng, dtype)``); every other one leaves it at zero.
BIAS_INITIALIZERS: dict[str, Callable] = {"torch_default": torch_default_bias}


def get(init) -> Callable:
    """Initialiser by name (see :data:`INITIALIZERS`) or a callable ``(shape, rng, dtype)``."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITIALIZERS)}") from None
