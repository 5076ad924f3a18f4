"""Optional dependencies ("extras"): one clear line naming the extra to install when one is missing."""
from __future__ import annotations

import importlib


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra provides it."""


def install_hint(extra: str) -> str:
    return f'pip install -e ".[{extra}]"'


def require(module: str, extra: str, purpose: str):
    """Import and return ``module``, or raise :class:`MissingExtra`: "<module> is not installed (<purpose>) ..."."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name not in (None, module, top):
            raise  # the package is there but one of *its* imports failed: show the real error
        raise MissingExtra(f"{top} is not installed (needed for {purpose}); install the {extra!r} extra: "
                           f"{install_hint(extra)}") from None
