"""Atomic file writes: a temp file next to the target, fsynced, then renamed over it.

A crash or kill at any moment leaves either the old file or the complete new one,
never a partial file under the target's name.  Temp files are hidden and end in
``.tmp`` (see :func:`remove_stale_temp_files`).  The file gets the permissions
``open(path, "w")`` would give it: an existing file keeps its mode, a new one
gets ``0o666`` minus the umask (``tempfile.mkstemp`` alone would leave 0600).
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path, mode: str = "wb"):
    """``with atomic_write(path) as f: ...`` -- ``f`` is a temp file; on a clean exit it replaces ``path``.

    If the block raises, the temp file is removed and ``path`` is untouched.
    The temp file's name is yielded as ``f.temp_path`` for checks before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            os.chmod(tmp, _mode_for(path))
            f.temp_path = Path(tmp)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _mode_for(path: Path) -> int:
    """Permission bits a plain ``open(path, "w")`` would leave: the existing file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(folder) -> list[Path]:
    """Delete temp files left by writes that were killed mid-way (``.<name>.*.tmp``)."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
