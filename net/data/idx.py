"""Reading IDX files (the MNIST family's format), gzipped or raw.

Layout: two zero bytes, a type code (0x08 = uint8, ...), the number of
dimensions, then one big-endian uint32 per dimension, then the payload in
C order.  Labels are ``0x00000801`` (uint8, 1-D), images ``0x00000803``
(uint8, 3-D).
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetFormatError

#: IDX type code -> big-endian dtype.
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CHUNK = 1 << 20


def open_maybe_gzip(path):
    """Binary file object for ``path``, decompressing when its content starts like gzip."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_exactly(f, n: int, path: Path, what: str) -> bytes:
    """Read ``n`` bytes in chunks (memory bounded by what the file really holds)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            raise DatasetFormatError(f"{path}: truncated {what}: expected {n} bytes, found {len(buf)}")
        buf += chunk
    return bytes(buf)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gz or raw, told apart by content) into an array of its declared shape.

    Returns uint8 for the MNIST files (other IDX types in native byte order).
    Raises :class:`DatasetFormatError` naming the file for a bad magic number,
    an unknown type code, a truncated or over-long payload, or a damaged gzip
    stream; the header's sizes are never trusted for allocation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open_maybe_gzip(path) as f:
            head = _read_exactly(f, 4, path, "header")
            if head[0] != 0 or head[1] != 0:
                raise DatasetFormatError(
                    f"{path}: bad magic number 0x{head.hex()}: an IDX file starts with two zero bytes "
                    "(labels 0x00000801, images 0x00000803)"
                )
            code, ndim = head[2], head[3]
            if code not in IDX_TYPES:
                raise DatasetFormatError(f"{path}: bad magic number 0x{head.hex()}: unknown IDX type code 0x{code:02x}")
            if ndim == 0:
                raise DatasetFormatError(f"{path}: bad magic number 0x{head.hex()}: zero dimensions")
            dims = tuple(int(d) for d in np.frombuffer(_read_exactly(f, 4 * ndim, path, "header"), dtype=">u4"))
            dtype = IDX_TYPES[code]
            nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if not isinstance(f, gzip.GzipFile):
                available = os.path.getsize(path) - 4 - 4 * ndim
                if available != nbytes:
                    raise DatasetFormatError(
                        f"{path}: header declares shape {dims} ({nbytes} bytes of payload) "
                        f"but the file holds {available} bytes" + (" (truncated)" if available < nbytes else "")
                    )
            payload = _read_exactly(f, nbytes, path, f"payload for shape {dims}")
            if f.read(1):
                raise DatasetFormatError(f"{path}: trailing bytes after the payload for shape {dims}")
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetFormatError(f"{path}: damaged gzip stream ({exc})") from None
    try:
        arr = np.frombuffer(payload, dtype=dtype).reshape(dims)
    except ValueError as exc:  # e.g. (0, 2**31, 2**31, 2**31): no bytes, but no such array either
        raise DatasetFormatError(f"{path}: header declares an impossible shape {dims} ({exc})") from None
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    arr = np.asarray(array)
    codes = {v.newbyteorder("="): k for k, v in IDX_TYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: unsupported dtype {arr.dtype}; use one of {sorted(map(str, codes))}")
    data = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    data += arr.astype(IDX_TYPES[code], copy=False).tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
