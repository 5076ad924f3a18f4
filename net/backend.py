"""The default kernel backend for layers and losses created without ``backend=``.

Also where ``net`` first imports ``kernels``: :func:`_import_kernels` makes sure that
name is scratchnet-numba's package, not another one that shares it.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

_FIX = ("pip uninstall the other package (or install scratchnet-numba in its own venv: "
        "python3 -m venv .venv && . .venv/bin/activate)")


def _import_kernels() -> ModuleType:
    """Import ``kernels``, raising ImportError (what, where, how to fix) if it is someone else's."""
    if "kernels" not in sys.modules:
        # Look before importing: a foreign package's own imports may fail less clearly.
        spec = importlib.util.find_spec("kernels")
        if spec is None:
            raise ImportError("scratchnet-numba: its 'kernels' package is missing; reinstall scratchnet-numba")
        ours = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")
        where = os.path.dirname(spec.origin) if spec.origin else (list(spec.submodule_search_locations or ()) or ["?"])[0]
        if os.path.normcase(os.path.abspath(where)) != os.path.normcase(ours):
            installed = os.path.basename(os.path.dirname(os.path.abspath(where))) in ("site-packages", "dist-packages")
            what, fix = (("another installed package named 'kernels' (Hugging Face's?)", _FIX) if installed else
                         ("a folder named 'kernels'", "run from another folder or rename that one"))
            raise ImportError(f"'import kernels' finds {where}, not scratchnet-numba's kernels ({ours}): "
                              f"{what} comes first on sys.path; {fix}")
    import kernels

    if getattr(kernels, "__scratchnet__", None) is None:
        raise ImportError(f"'kernels' ({getattr(kernels, '__file__', '?')}) is not scratchnet-numba's: another "
                          f"package named 'kernels' (Hugging Face's?) replaced it; {_FIX}")
    return kernels


kernels = _import_kernels()

_default = "numpy"


def set_backend(name: str) -> None:
    """Make ``name`` (``"numpy"`` or ``"numba"``) the default for layers created from now on."""
    global _default
    kernels.get_backend(name)  # raises ValueError listing the choices
    _default = name


def get_backend() -> str:
    """Name of the current default backend."""
    return _default


def resolve(name: str | None) -> tuple[str, ModuleType]:
    """``(name, kernel namespace)`` for ``name``, or for the default when ``None``."""
    name = _default if name is None else name
    return name, kernels.get_backend(name)


class BackendUser:
    """Base for objects that run kernels: a ``backend`` attribute (name) resolving ``self.ops``,
    and the forward-before-backward check on ``self._cache``."""

    _cache = None

    @property
    def backend(self) -> str:
        """Name of the kernel backend this object runs on; assign to switch."""
        return self._backend_name

    @backend.setter
    def backend(self, name: str | None) -> None:
        self._backend_name, self.ops = resolve(name)

    def _saved(self):
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return self._cache
