"""PNG figures (matplotlib, the ``plot`` extra): sample grids, training curves, confusion matrices."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_write


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'scratchnet[plot]'") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    """Write the figure as PNG atomically and close it."""
    path = Path(path)
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return path


def _as_images(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"cannot show rows of {X.shape[1]} pixels as square images; pass (N, H, W)")
        X = X.reshape(-1, side, side)
    if X.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W) or (N, H*W), got {X.shape}")
    return X


def sample_grid(X, y, class_names, path, per_class: int = 8, rng=None) -> Path:
    """Save a grid of ``per_class`` random images for each class, one row per class, labelled."""
    plt = _pyplot()
    X, y = _as_images(X), np.asarray(y)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9, k * 0.95), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(y == c)
        pick = rng.choice(idx, size=min(per_class, idx.size), replace=False) if idx.size else []
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(pick):
                ax.imshow(X[pick[j]], cmap="gray_r")
            else:
                ax.axis("off")
        axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
    return _save(fig, path)


def curves(history: list[dict], path) -> Path:
    """Loss and accuracy per epoch (train and validation) from a list of per-epoch dicts."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, style in (("train_loss", "-o"), ("val_loss", "--s"), ("test_loss", ":^")):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            ax_loss.plot(epochs, vals, style, label=key.replace("_", " "))
    for key, style in (("train_acc", "-o"), ("val_acc", "--s"), ("test_acc", ":^")):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            ax_acc.plot(epochs, [None if v is None else 100 * v for v in vals], style, label=key.replace("_", " "))
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion(cm: np.ndarray, class_names, path, title: str = "confusion matrix") -> Path:
    """Heat map of a (K, K) confusion matrix (rows true, columns predicted) with counts."""
    plt = _pyplot()
    cm = np.asarray(cm)
    k = cm.shape[0]
    fig, ax = plt.subplots(figsize=(0.6 * k + 3, 0.6 * k + 2))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    thresh = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > thresh else "black")
    return _save(fig, path)
