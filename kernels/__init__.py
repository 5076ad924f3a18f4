"""scratchnet kernels: every hot operation twice, with one signature.

``get_backend("numpy")`` returns :mod:`kernels.reference` (pure NumPy),
``get_backend("numba")`` returns :mod:`kernels.jit` (Numba ``@njit``).  Both
namespaces expose exactly the names in :data:`OPERATIONS`, each checked on every call
by the same argument contract (:mod:`kernels.contract`).  Importing this package does
not import Numba: :mod:`kernels.jit` (and with it Numba and the compiled kernels) loads
on the first ``get_backend("numba")``.
"""
from __future__ import annotations

import os
from types import ModuleType

#: Marks this package as scratchnet-numba's ``kernels``: other distributions (Hugging
#: Face's ``kernels``) use the same import name, and ``import net`` checks for this.
__scratchnet__ = "scratchnet-numba"


def _refuse_shared_folder() -> None:
    """Raise ImportError when another distribution also installed ``kernels/`` into our folder."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        others = sorted(e for e in os.listdir(folder) if e.startswith("kernels-") and e.endswith(".dist-info"))
    except OSError:
        return
    if others:
        raise ImportError(
            f"{folder} holds {others[0]}: another distribution installs an import package named 'kernels' "
            "(Hugging Face's?) into the same folder as scratchnet-numba, and each overwrites the other's files; "
            "fix: pip uninstall kernels scratchnet-numba, then install each in its own venv")


_refuse_shared_folder()

from .blas_lib import choice as _blas_choice  # noqa: E402
from .numba_cache import invalidate_if_sources_changed  # noqa: E402

invalidate_if_sources_changed(salt=_blas_choice())

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
    "sgd_epoch_compact",
    "sgd_minibatch_epoch",
    # -- layers (issue 13): activations, dropout, normalisation --
    "tanh_forward",
    "tanh_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "gelu_forward",
    "gelu_backward",
    "dropout_forward",
    "dropout_backward",
    "batchnorm_forward",
    "batchnorm_eval",
    "batchnorm_backward",
    "layernorm_forward",
    "layernorm_backward",
    # -- end layers --

    # -- losses (issue 13) --
    "bce",
    "bce_backward",
    "bce_with_logits",
    "bce_with_logits_backward",
    "l1",
    "l1_backward",
    "huber",
    "huber_backward",
    "nll",
    "nll_backward",
    # -- end losses --

    # -- optimiser steps (issue 13) --
    "sgd_step",
    "adam_step",
    "rmsprop_step",
    "adagrad_step",
    # -- end optimiser steps --
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
