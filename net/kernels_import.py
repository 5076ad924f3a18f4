"""Import ``kernels`` -- scratchnet-numba's, not another package that shares the name.

Hugging Face's ``kernels`` (and any folder named ``kernels`` on ``sys.path``) uses the
same import name.  :func:`import_kernels` looks where ``kernels`` would come from
*before* running it, then checks the marker ``kernels.__scratchnet__``, and raises an
ImportError that says what was found and how to fix it.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

_VENV = "python3 -m venv .venv && . .venv/bin/activate"


def _ours() -> str:
    """Where our ``kernels`` lives: next to ``net`` (checkout, editable or regular install)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")


def _problem(spec, ours: str) -> str | None:
    """Why ``spec`` (``find_spec("kernels")``) is not our package, or None when it is."""
    if spec is None:
        return f"no package 'kernels' found (scratchnet-numba's should be at {ours}); reinstall scratchnet-numba"
    namespace = spec.origin is None or spec.origin == "namespace"
    package = not namespace and os.path.basename(spec.origin).startswith("__init__.")
    where = ((list(spec.submodule_search_locations or ()) or ["?"])[0] if namespace else
             os.path.dirname(spec.origin) if package else spec.origin)
    if os.path.normcase(os.path.abspath(where)) == os.path.normcase(ours):
        return None
    head = f"'import kernels' finds {where}, not scratchnet-numba's kernels ({ours}): "
    if namespace:
        return (head + "a folder without __init__.py (left over when a package was uninstalled: Numba's cache "
                "files in its __pycache__) comes first on sys.path; delete that folder")
    if not package:
        return head + "a module named 'kernels' comes first on sys.path; rename that file"
    if os.path.basename(os.path.dirname(os.path.abspath(where))) in ("site-packages", "dist-packages"):
        return (head + "another installed package named 'kernels' (Hugging Face's?) comes first on sys.path; "
                f"pip uninstall it, or install scratchnet-numba in its own venv ({_VENV})")
    return head + "a folder named 'kernels' comes first on sys.path; run from another folder or rename that one"


def import_kernels() -> ModuleType:
    """Import and return scratchnet-numba's ``kernels``, or raise ImportError saying what is wrong."""
    if "kernels" not in sys.modules:
        # look before importing: a foreign package's own imports could fail less clearly
        problem = _problem(importlib.util.find_spec("kernels"), _ours())
        if problem:
            raise ImportError(problem)
    import kernels

    if getattr(kernels, "__scratchnet__", None) is None:
        raise ImportError(f"'kernels' ({getattr(kernels, '__file__', '?')}) is not scratchnet-numba's: another "
                          "package named 'kernels' (Hugging Face's?) was installed over it; pip uninstall kernels "
                          f"scratchnet-numba, then install each in its own venv ({_VENV})")
    return kernels
