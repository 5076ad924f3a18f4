"""Losses: ``forward(pred, target) -> float`` (batch mean, as PyTorch) and ``backward() -> dpred``.

Targets are integer class labels ``(B,)`` or dense one-hot/soft targets ``(B, K)``.
"""
from __future__ import annotations

import numpy as np

from .backend import BackendUser
from .checks import as_float_array, as_targets, require_2d
from kernels.reference import EPS


class Loss(BackendUser):
    """Base class: backend handling, ``__call__`` and the forward-before-backward check."""

    def __init__(self, backend: str | None = None):
        self._cache = None
        self.backend = backend

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def _prepare(self, pred, target):
        pred = as_float_array(pred, repr(self))
        require_2d(pred, repr(self))
        B, K = pred.shape
        return pred, as_targets(target, B, K, pred.dtype, repr(self))


class MSELoss(Loss):
    """Mean squared error over all entries: ``mean((pred - target)^2)`` (PyTorch's ``MSELoss()``).

    pred : (B, K); target : (B, K), or labels (B,) taken as one-hot rows.
    """

    def __repr__(self) -> str:
        return "MSELoss()"

    def forward(self, pred, target) -> float:
        pred, t = self._prepare(pred, target)
        if t.ndim == 1:
            t = np.eye(pred.shape[1], dtype=pred.dtype)[t]
        self._cache = (pred, t)
        return float(np.mean(self.ops.mse(pred, t)))

    def backward(self):
        """-> dpred : (B, K), dtype of pred."""
        return self.ops.mse_backward(*self._saved())


class CrossEntropyLoss(Loss):
    """Cross-entropy, mean over the batch.

    ``from_logits=True`` (default, as PyTorch): ``pred`` are logits; the loss is
    computed by log-sum-exp and the gradient is the fused ``(softmax(z) - t) / B``.

    ``from_logits=False``: ``pred`` are probabilities from a :class:`~net.Softmax`
    layer; the loss is ``-log(clip(p_y, eps, 1))`` and the gradient ``-t / (B p)``
    flows back through the Softmax layer's Jacobian product (the tutorials' path).
    Both paths give the same gradient w.r.t. the logits.
    """

    def __init__(self, from_logits: bool = True, eps: float = EPS, backend: str | None = None):
        super().__init__(backend)
        self.from_logits = bool(from_logits)
        if not 0 < eps < 1:
            raise ValueError(f"CrossEntropyLoss: eps must lie in (0, 1), got {eps}")
        self.eps = float(eps)

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(from_logits={self.from_logits})"

    def forward(self, pred, target) -> float:
        pred, t = self._prepare(pred, target)
        self._cache = (pred, t)
        if self.from_logits:
            return float(np.mean(self.ops.cross_entropy_logits(pred, t)))
        return float(np.mean(self.ops.cross_entropy(pred, t, self.eps)))

    def backward(self):
        """-> dpred : (B, K): d(loss)/d(logits) or d(loss)/d(probabilities)."""
        pred, t = self._saved()
        if self.from_logits:
            return self.ops.softmax_cross_entropy_backward(self.ops.softmax(pred), t)
        return self.ops.cross_entropy_backward(pred, t, self.eps)
