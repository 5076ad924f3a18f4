"""Evaluation metrics."""
from __future__ import annotations

import numpy as np


def accuracy(scores, y) -> float:
    """Fraction of rows whose arg-max matches the label.

    scores : (B, K) logits or probabilities; y : (B,) integer labels or (B, K) one-hot.
    """
    scores = np.asarray(scores)
    y = np.asarray(y)
    if scores.ndim != 2:
        raise ValueError(f"accuracy expects scores of shape (batch, classes), got {scores.shape}")
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"accuracy: {scores.shape[0]} score rows but labels of shape {y.shape}")
    return float(np.mean(scores.argmax(axis=1) == labels))


def confusion_matrix(pred_labels, y, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: rows are true classes, columns predicted."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y), np.asarray(pred_labels)), 1)
    return cm
