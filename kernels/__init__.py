"""scratchnet kernels: every hot operation twice, with one signature.

``get_backend("numpy")`` returns :mod:`kernels.reference` (pure NumPy),
``get_backend("numba")`` returns :mod:`kernels.jit` (Numba ``@njit``).  Both
namespaces expose exactly the names in :data:`OPERATIONS`, each checked on every call
by the same argument contract (:mod:`kernels.contract`).
"""
from __future__ import annotations

from types import ModuleType

from .numba_cache import invalidate_if_sources_changed

invalidate_if_sources_changed()

#: The operations every backend provides, under these names.
OPERATIONS = (
    "matmul_naive",
    "matmul",
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "softmax",
    "softmax_jacobian",
    "softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_logits",
    "softmax_cross_entropy_backward",
    "mse",
    "mse_backward",
    "sgd_epoch",
    "sgd_minibatch_epoch",
)

#: Valid backend names.
BACKENDS = ("numpy", "numba")


def get_backend(name: str) -> ModuleType:
    """Return the kernel namespace for ``name`` (one of :data:`BACKENDS`)."""
    if name == "numpy":
        from . import reference

        return reference
    if name == "numba":
        from . import jit

        return jit
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(map(repr, BACKENDS))}")
