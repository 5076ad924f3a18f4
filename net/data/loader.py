"""Mini-batch iteration over arrays."""
from __future__ import annotations

import numpy as np


class DataLoader:
    """Iterate ``(X_batch, y_batch)`` over ``(X, y)``, a new order each epoch.

    Each ``iter()`` is one epoch.  Every row appears exactly once per epoch
    (``drop_last=True`` leaves out the final short batch).  With ``shuffle=True``
    the order is drawn from ``rng`` (Generator or seed), reproducible for a seed
    and different from epoch to epoch; batches are gathered per batch, never by
    copying the whole set.  Without shuffling the batches are views.
    """

    def __init__(self, X, y, batch_size: int = 32, shuffle: bool = True, drop_last: bool = False, rng=None):
        self.X, self.y = np.asarray(X), np.asarray(y)
        if self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"DataLoader: X has {self.X.shape[0]} rows but y has {self.y.shape[0]}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __len__(self) -> int:
        n, b = self.X.shape[0], self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n, b = self.X.shape[0], self.batch_size
        stop = (n // b) * b if self.drop_last else n
        if self.shuffle:
            order = self.rng.permutation(n)
            for start in range(0, stop, b):
                idx = order[start:start + b]
                yield self.X[idx], self.y[idx]
        else:
            for start in range(0, stop, b):
                yield self.X[start:start + b], self.y[start:start + b]
