"""PNG figures (matplotlib, the ``plot`` extra): sample grids, training curves, confusion matrices.

Every function returns the path it wrote.  Without matplotlib they raise
:class:`~net.extras.MissingExtra` (an ``ImportError``) naming the extra;
:func:`run_figures` instead prints that one line and returns only what it wrote.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .extras import MissingExtra, require

#: Up to this many epochs every point gets a marker (a one-epoch run is a visible dot, not nothing).
MARKERS_UP_TO = 30


def _pyplot():
    matplotlib = require("matplotlib", "plot", "the figures")
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
    return _save(curves_figure(history), path)


def curves_figure(history: list[dict]):
    """The figure :func:`curves` saves: integer epoch ticks, markers, readable at any epoch count."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [int(h["epoch"]) for h in history]
    markers = len(epochs) <= MARKERS_UP_TO
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, kind, scale in ((ax_loss, "loss", 1), (ax_acc, "acc", 100)):
        shown = []
        for split, style, marker in (("train", "-", "o"), ("val", "--", "s"), ("test", ":", "^")):
            vals = [h.get(f"{split}_{kind}") for h in history]
            if all(v is None for v in vals):
                continue
            ys = np.array([np.nan if v is None else scale * float(v) for v in vals])
            ax.plot(epochs, ys, linestyle=style, marker=marker if markers else None, markersize=6,
                    label=f"{split} {kind.replace('acc', 'accuracy')}")
            shown.append(ys)
            if len(epochs) == 1 and np.isfinite(ys[0]):
                ax.annotate(f"{ys[0]:.2f}" if kind == "acc" else f"{ys[0]:.4f}", (epochs[0], ys[0]),
                            xytext=(8, 0), textcoords="offset points", va="center", fontsize=8)
        _y_limits(ax, shown, kind)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        pad = max(0.5, 0.03 * (max(epochs) - min(epochs))) if epochs else 0.5
        if epochs:
            ax.set_xlim(min(epochs) - pad, max(epochs) + pad)
        ax.grid(alpha=0.3)
        if shown:
            ax.legend()
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    return fig


def _y_limits(ax, shown: list, kind: str) -> None:
    """Loss from 0; accuracy inside [0, 100] and at least 5 points tall, so one point is not a tick soup."""
    values = np.concatenate(shown) if shown else np.array([])
    values = values[np.isfinite(values)]
    if not values.size:
        return
    lo, hi = float(values.min()), float(values.max())
    if kind == "loss":
        ax.set_ylim(0, hi * 1.1 if hi > 0 else 1)
        return
    mid, half = (lo + hi) / 2, max(2.5, (hi - lo) / 2 * 1.1)
    lo, hi = max(0.0, mid - half), min(100.0, mid + half)
    ax.set_ylim(lo, max(hi, lo + 5))


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


def run_figures(run_dir, history: list[dict], cm: np.ndarray, class_names, *, out=None) -> list[Path]:
    """``curves.png`` and ``confusion.png`` of a training run; returns the files actually written.

    Without matplotlib: one line on ``out`` (stderr) naming the extra to install, and ``[]``.
    """
    run_dir = Path(run_dir)
    try:
        return [curves(history, run_dir / "curves.png"),
                confusion(cm, class_names, run_dir / "confusion.png", title="test confusion matrix")]
    except MissingExtra as exc:
        print(f"no figures written: {exc}", file=out or sys.stderr)
        return []
