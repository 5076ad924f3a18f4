"""Keep Numba's on-disk cache of these kernels in step with *all* of their sources.

Numba keys a cached kernel on its own file only.  A kernel that inlines or calls
code from another module (``vexp`` from ``vmath.py``, ``gemm_at_b`` from ``blas.py``,
the helpers of ``fused_math.py``) keeps its old machine code when only that other
module changes -- wrong results, or a crash when a called symbol was renamed.  So at
import the sources of ``kernels/`` are hashed together, and when the hash differs
from the one stored next to the cache, every cached kernel of this package is
deleted (Numba then compiles afresh and stores new entries).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_STAMP = "scratchnet-sources.sha256"


def sources_hash(folder: Path = _HERE, salt: str = "") -> str:
    """SHA-256 over ``salt`` and the names and contents of every ``*.py`` file in ``folder``."""
    h = hashlib.sha256(salt.encode())
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def invalidate_if_sources_changed(folder: Path = _HERE, salt: str = "") -> bool:
    """Delete ``folder/__pycache__/*.nbi|*.nbc`` if the sources (or ``salt``) changed since the last call.

    ``salt`` names anything else the compiled code depends on: the kernels pass the BLAS
    library they call (:func:`kernels.blas_lib.choice`; its integer width is compiled in).

    Returns True when stale entries were removed.  Never raises: a read-only
    checkout simply keeps Numba's own behaviour.
    """
    cache = folder / "__pycache__"
    stamp = cache / _STAMP
    try:
        digest = sources_hash(folder, salt)
        if stamp.is_file() and stamp.read_text().strip() == digest:
            return False
        removed = False
        for entry in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            entry.unlink(missing_ok=True)
            removed = True
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest + "\n")
        return removed
    except OSError:
        return False
