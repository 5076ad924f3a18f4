"""The default kernel backend for layers and losses created without ``backend=``."""
from __future__ import annotations

from types import ModuleType

from .kernels_import import import_kernels

kernels = import_kernels()  # ImportError when 'kernels' is not scratchnet-numba's

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
