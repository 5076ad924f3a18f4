"""Input checks run before any kernel: clear messages naming expected and actual."""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_dtype(dtype) -> np.dtype:
    """``np.dtype`` for float32/float64, ``TypeError`` for anything else."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def as_float_array(x, who: str, dtype=None) -> np.ndarray:
    """C-contiguous float array from ``x``.

    Float32/float64 input keeps its dtype unless ``dtype`` is given, in which case
    it is cast (layers with parameters cast to their own dtype).  Integer and
    boolean input (e.g. uint8 pixels) is converted to ``dtype`` or float32.
    Anything else (complex, object, strings) raises ``TypeError``.
    """
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind not in "fiub":
        raise TypeError(f"{who} expects a real numeric array, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.float32
    return np.ascontiguousarray(arr, dtype=dtype)


def require_2d(x: np.ndarray, who: str, width: int | None = None, *, allow_empty: bool = False) -> None:
    """``ValueError`` unless ``x`` is (B, width); B = 0 only with ``allow_empty``."""
    expected = f"(batch, {width})" if width is not None else "(batch, features)"
    if x.ndim != 2 or (width is not None and x.shape[1] != width):
        msg = f"{who} expected input of shape {expected}, got {x.shape}"
        if x.ndim > 2 and width is not None and int(np.prod(x.shape[1:])) == width:
            msg += f"; flatten it to ({x.shape[0]}, {width})"
        elif x.ndim == 1 and width is not None and x.shape[0] == width:
            msg += f"; a single sample needs a batch axis: x.reshape(1, {width})"
        raise ValueError(msg)
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{who} expected at least one row, got an empty batch of shape {x.shape}")


def as_targets(target, n_rows: int, n_classes: int, dtype, who: str) -> np.ndarray:
    """Integer labels (B,) -> int64, or dense targets (B, K) -> ``dtype``; checked."""
    t = np.asarray(target)
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise TypeError(f"{who}: 1-D targets must be integer class labels, got dtype {t.dtype}")
        if t.shape[0] != n_rows:
            raise ValueError(f"{who}: expected {n_rows} labels to match predictions, got {t.shape[0]}")
        if t.size and (t.min() < 0 or t.max() >= n_classes):
            raise ValueError(
                f"{who}: labels must lie in [0, {n_classes}), got min {t.min()} and max {t.max()}"
            )
        return np.ascontiguousarray(t, dtype=np.int64)
    if t.shape != (n_rows, n_classes):
        raise ValueError(
            f"{who}: expected targets of shape ({n_rows},) (labels) or ({n_rows}, {n_classes}) "
            f"(one-hot), got {t.shape}"
        )
    return as_float_array(t, who, dtype)
