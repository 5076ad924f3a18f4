"""Verified, atomic downloads: temp file in the target folder, SHA-256 checked, then renamed."""
from __future__ import annotations

import hashlib
import http.client
import urllib.request
from pathlib import Path

from ..atomic import atomic_write
from .errors import DatasetChecksumError

_CHUNK = 1 << 16


def sha256_of(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest, sha256: str | None = None, *, accept=None, progress: bool = True,
             timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically.

    The bytes go to a hidden temp file next to ``dest``; only when they are
    complete and verified is the file renamed into place, so an interrupted or
    corrupt download never leaves a file at ``dest`` (nor a stray temp file).
    Verification: the SHA-256 must equal ``sha256``, or ``accept(temp_path)``
    must return True (e.g. a check of the decompressed content).
    Raises :class:`DatasetChecksumError` on a mismatch and lets network errors
    (``urllib.error.URLError``, ``OSError``) propagate.
    """
    dest = Path(dest)
    try:
        with atomic_write(dest) as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            h = hashlib.sha256()
            bar = _progress(total, dest.name) if progress else None
            try:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            if total is not None and out.tell() != total:
                raise OSError(f"{url}: connection closed after {out.tell()} of {total} bytes")
            out.flush()
            digest = h.hexdigest()
            if not ((sha256 is not None and digest == sha256) or (accept is not None and accept(out.temp_path))):
                raise DatasetChecksumError(
                    f"{url}: checksum mismatch for {dest.name}: expected SHA-256 {sha256}, got {digest}; "
                    "the file was discarded"
                )
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: not an OSError
        raise OSError(f"{url}: download interrupted ({exc!r})") from None
    return dest


def _progress(total, name):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}", leave=False)
