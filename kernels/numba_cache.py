"""Keep Numba's on-disk cache of these kernels in step with *all* of their sources (and the BLAS).

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
import os
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


def cache_folders(folder: Path = _HERE) -> list[Path]:
    """Every folder Numba may keep this package's cache in: ``folder/__pycache__``, and, as
    Numba names them (``<name>_<sha1 of the folder path>``), the one under ``NUMBA_CACHE_DIR``
    and the user-wide one (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``) that Numba falls
    back to when the package folder is read-only."""
    folders = [folder / "__pycache__"]
    roots = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    roots.append(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba")
    for path in {os.path.abspath(folder), os.path.realpath(folder)}:
        sub = f"{os.path.basename(path)}_{hashlib.sha1(path.encode()).hexdigest()}"
        folders += [root / sub for root in roots]
    return folders


def invalidate_if_sources_changed(folder: Path = _HERE, salt: str = "") -> bool:
    """Delete this package's cached kernels (``*.nbi|*.nbc`` in every folder of
    :func:`cache_folders`) if the sources (or ``salt``) changed since they were written.

    ``salt`` names anything else the compiled code depends on: the kernels pass the BLAS
    library they call (:func:`kernels.blas_lib.choice`; its integer width is compiled in,
    and code compiled against one library crashes when it calls the other).

    Returns True when stale entries were removed.  Never raises: a read-only
    checkout simply keeps Numba's own behaviour.
    """
    try:
        digest = sources_hash(folder, salt)
    except OSError:
        return False
    removed = False
    in_tree_ok = True
    for i, cache in enumerate(cache_folders(folder)):
        # A folder Numba may fill must carry the stamp before Numba writes into it: a folder
        # found without one holds entries of unknown sources and is cleared.  So the in-tree
        # and the NUMBA_CACHE_DIR folders are created (Numba would create them anyway), the
        # user-wide one when the in-tree folder cannot be written (Numba's fallback) or when
        # it exists already.
        user_wide = i > 0 and not (os.environ.get("NUMBA_CACHE_DIR") and cache.parent == Path(
            os.environ["NUMBA_CACHE_DIR"]))
        if user_wide and in_tree_ok and not cache.is_dir():
            continue
        try:
            stamp = cache / _STAMP
            if stamp.is_file() and stamp.read_text().strip() == digest:
                continue
            for entry in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
                entry.unlink(missing_ok=True)
                removed = True
            cache.mkdir(parents=i > 0, exist_ok=True)
            stamp.write_text(digest + "\n")
        except OSError:
            if i == 0:
                in_tree_ok = False
            continue
    return removed
