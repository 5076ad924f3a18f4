"""Array transforms: one-hot labels, standardisation, train/validation split."""
from __future__ import annotations

import numpy as np

from ..checks import as_dtype


def one_hot(y, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels (N,) -> (N, num_classes) rows of zeros with a single 1."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot expects 1-D integer labels, got shape {y.shape} dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got min {y.min()} and max {y.max()}")
    out = np.zeros((y.shape[0], num_classes), dtype=as_dtype(dtype))
    out[np.arange(y.shape[0]), y] = 1
    return out


def normalize(X, mean=None, std=None, axis=None, eps: float = 1e-8):
    """Standardise ``X`` to zero mean and unit std; return ``(X_norm, mean, std)``.

    With ``mean``/``std`` None they are computed from ``X`` (over ``axis``: None
    for one scalar each, 0 for per-feature); pass the returned statistics to
    normalise test data the same way.  ``std`` below ``eps`` (constant pixels) is
    treated as 1.  Float input keeps its dtype; integer input becomes float32.
    """
    X = np.asarray(X)
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)
    if mean is None:
        mean = X.mean(axis=axis, dtype=np.float64)
    if std is None:
        std = X.std(axis=axis, dtype=np.float64)
    mean = np.asarray(mean, dtype=dtype)
    std = np.asarray(std, dtype=dtype)
    safe = np.where(std < eps, np.ones_like(std), std)
    return ((X - mean) / safe).astype(dtype, copy=False), mean, std


def train_val_split(X, y, val_fraction: float = 0.2, rng=None):
    """Shuffle and split into ``(X_train, y_train, X_val, y_val)``; no sample lost or repeated.

    ``val_fraction`` of the rows (rounded, at least one each side) go to validation;
    the order comes from ``rng`` (Generator or seed).
    """
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"train_val_split: X has {n} rows but y has {y.shape[0]}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: val_fraction must lie in (0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val > n - 1:
        raise ValueError(f"train_val_split: {n} rows cannot give both sides a sample at val_fraction={val_fraction}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    order = rng.permutation(n)
    tr, va = order[n_val:], order[:n_val]
    return X[tr], y[tr], X[va], y[va]
