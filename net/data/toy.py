"""Generated toy data sets (no files)."""
from __future__ import annotations

import numpy as np

from ..checks import as_dtype


def spiral(points_per_class: int = 100, classes: int = 3, noise: float = 0.2, rng=None,
           dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The classic CS231n spiral: ``classes`` interleaved arms in the plane.

    Returns ``X : (points_per_class * classes, 2)`` of ``dtype`` and ``y`` int64
    labels, class by class.  ``noise`` is the std of the angular jitter.
    """
    if points_per_class < 1 or classes < 1:
        raise ValueError(f"spiral: points_per_class and classes must be >= 1, got {points_per_class}, {classes}")
    if noise < 0:
        raise ValueError(f"spiral: noise must be >= 0, got {noise}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = points_per_class
    X = np.empty((n * classes, 2), dtype=np.float64)
    y = np.repeat(np.arange(classes, dtype=np.int64), n)
    r = np.linspace(0.0, 1.0, n)
    for k in range(classes):
        t = np.linspace(k * 4.0, (k + 1) * 4.0, n) + rng.standard_normal(n) * noise
        X[k * n:(k + 1) * n] = np.c_[r * np.sin(t), r * np.cos(t)]
    return X.astype(as_dtype(dtype)), y
