"""Training loops: full-batch, mini-batch and per-sample SGD behind one ``fit`` call."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .optim import SGD


def batch_order(n: int, shuffle: bool, rng: np.random.Generator) -> np.ndarray:
    """Sample order for one epoch: a permutation drawn from ``rng``, or ``0..n-1``."""
    return rng.permutation(n) if shuffle else np.arange(n)


def _check_fit_args(X, y, batch_size, epochs):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"fit expects X of shape (samples, features), got {X.shape}")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"fit: X has {X.shape[0]} samples but y has shape {y.shape}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"fit: batch_size must be a positive integer or None (full batch), got {batch_size!r}")
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
    return X, y


def fit(model, loss, X, y, *, batch_size: int | None = 32, epochs: int = 1, lr: float = 0.01,
        momentum: float = 0.0, optimizer=None, shuffle: bool = True, rng=None,
        on_batch: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` with SGD; return the mean training loss of each epoch.

    Parameters
    ----------
    model : :class:`~net.Sequential` (or any object with forward/backward/parameters)
    loss : a loss object, e.g. ``CrossEntropyLoss()``
    X : (N, features); y : (N,) integer labels or (N, K) targets
    batch_size : rows per step; ``1`` is per-sample SGD, ``None`` the full batch
    epochs, lr, momentum : SGD settings (ignored when ``optimizer`` is given)
    optimizer : an optimiser over ``model.parameters()`` to use instead of a new ``SGD``
    shuffle : draw a new sample order each epoch from ``rng`` (else file order)
    rng : numpy Generator or seed for the shuffling
    on_batch : called as ``on_batch(rows, batch_loss)`` after every step (progress bars)
    """
    X, y = _check_fit_args(X, y, batch_size, epochs)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    opt = optimizer if optimizer is not None else SGD(model.parameters(), lr=lr, momentum=momentum)
    n = X.shape[0]
    bs = n if batch_size is None else int(batch_size)
    history = []
    for _ in range(int(epochs)):
        order = batch_order(n, shuffle, rng)
        total = 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            xb, yb = X[idx], y[idx]
            batch_loss = loss.forward(model.forward(xb), yb)
            model.backward(loss.backward())
            opt.step()
            total += batch_loss * len(idx)
            if on_batch is not None:
                on_batch(len(idx), batch_loss)
        history.append(total / n)
    return history


def predict(model, X, batch_size: int = 4096) -> np.ndarray:
    """Model outputs for ``X`` in chunks of ``batch_size`` rows (bounded memory)."""
    X = np.asarray(X)
    return np.concatenate([model.forward(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)])
