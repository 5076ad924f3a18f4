"""Training loops: full-batch, mini-batch and per-sample SGD behind one ``fit`` call.

On the numba backend, a model the fused kernels understand (see :mod:`net.fused`)
trains each epoch in compiled calls of ~0.15 s each (the same weights as one call;
progress and Ctrl-C are handled between calls): per-sample plain SGD in the per-sample
kernel (optionally on several threads), mini-batches, the full batch and momentum
in the mini-batch kernel.  Anything else runs the layer-by-layer loop.  Both paths
are the same SGD and end with the same weights within floating-point tolerance.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable

import numpy as np

from . import fused as fused_path
from . import interrupt
from .threads import blas_threads
from .layers import Linear
from .optim import SGD


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and the sample.

    Attributes: ``value`` (the loss, or ``"non-finite"``), ``epoch`` (of this ``fit`` call,
    from 1), ``sample`` (row of X), ``position`` (in the epoch's order), ``updated`` (whether
    this ``fit`` had updated the weights before).
    """

    def __init__(self, value, epoch: int, sample: int, position: int, updated: bool):
        self.value, self.epoch, self.sample, self.position, self.updated = value, epoch, sample, position, updated
        super().__init__(_divergence_message(value, epoch, sample, position, updated))

    def __reduce__(self):
        return type(self), (self.value, self.epoch, self.sample, self.position, self.updated)


class History(list):
    """Per-epoch mean training loss; ``path`` says which loop ran (``"fused"`` or ``"layers"``),
    ``per_sample`` which per-sample kernel (``"fused"``/``"compact"``, None when none ran)."""

    path: str = "layers"
    threads: int | None = None
    per_sample: str | None = None


def batch_order(n: int, shuffle: bool, rng: np.random.Generator) -> np.ndarray:
    """Sample order for one epoch: a permutation drawn from ``rng``, or ``0..n-1``."""
    return rng.permutation(n) if shuffle else np.arange(n)


def _first_bad_rows(a: np.ndarray) -> tuple[int, int]:
    """``(count, first)`` of the rows of ``a`` holding NaN or inf; ``(0, -1)`` if none."""
    if a.dtype.kind not in "fc":
        return 0, -1
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    count = int(np.count_nonzero(bad))
    return count, (int(np.argmax(bad)) if count else -1)


def _first_linear(model):
    """The model's first Linear layer and whether it is the model's first layer, or ``(None, False)``."""
    layers = getattr(model, "layers", [model])
    first = next((layer for layer in layers if isinstance(layer, Linear)), None)
    return first, first is not None and first is layers[0]


def _model_dtype(model):
    """The dtype of the model's first Linear layer (the dtype X is cast to), or None."""
    first, _ = _first_linear(model)
    return None if first is None else first.dtype


def _check_fit_args(X, y, batch_size, epochs, threads, dtype=None):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"fit expects X of shape (samples, features), got {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"fit: X has no samples (shape {X.shape}); there is nothing to train on")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"fit: X has {X.shape[0]} samples but y has shape {y.shape}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"fit: batch_size must be a positive integer or None (full batch), got {batch_size!r}")
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
    if threads is not None and (int(threads) != threads or threads < 1):
        raise ValueError(f"fit: threads must be a positive integer or None, got {threads!r}")
    for name, arr in (("X", X), ("y", y)):
        count, first = _first_bad_rows(arr)
        if count:
            raise ValueError(f"fit: {name} has NaN or infinite values in {count} row{'s' if count > 1 else ''}, "
                             f"the first is row {first}; remove or impute them before training")
    if dtype is not None and X.dtype.kind == "f" and X.dtype.itemsize > np.dtype(dtype).itemsize:
        limit = np.finfo(dtype).max
        big = (X.max(axis=1) > limit) | (X.min(axis=1) < -limit)      # no |X| temporary of X's size
        if big.any():
            raise ValueError(f"fit: X row {int(np.argmax(big))} has values beyond the {np.dtype(dtype)} range "
                             f"(|x| > {limit:.3g}) of the model, where they would become infinite; rescale X")
    return X, y


def _check_model_and_optimizer(model, opt) -> None:
    """``ValueError`` when a layer object sits twice in ``model`` (its one cache would give wrong
    gradients), or ``opt`` steps a parameter twice or a parameter ``model`` does not own."""
    layers = getattr(model, "layers", None)
    if layers is not None:
        seen = set()
        for layer in layers:
            if id(layer) in seen:
                raise ValueError(f"fit: {layer!r} appears twice in the model; a layer object keeps the input of "
                                 f"one forward pass for its backward, so use two layers (tie weights outside fit)")
            seen.add(id(layer))
    params = getattr(opt, "params", None)
    if params is None or not hasattr(model, "parameters"):
        return
    own = set(model.parameters())
    foreign = [p for p in params if p not in own]
    if foreign:
        first = foreign[0]
        raise ValueError(f"fit: the optimizer holds {len(foreign)} parameters that are not in the model "
                         f"(the first: {first.layer!r}.{first.name}); build it from model.parameters()")
    if len(set(params)) != len(params):
        twice = next(p for i, p in enumerate(params) if p in params[:i])
        raise ValueError(f"fit: the optimizer lists {twice.layer!r}.{twice.name} more than once; each step would "
                         f"update it several times")


def _check_model_takes(model, loss, X, y) -> None:
    """Run ``model`` and ``loss`` on the first sample (two for batch statistics), so that every
    shape error the layer path would raise is raised, with the same message, before any step on
    any path; then check the labels against the number of model outputs."""
    # one row, or two where a BatchNorm1d without running statistics needs a batch even in eval mode
    batch_stats = any(getattr(layer, "track_running_stats", True) is False for layer in getattr(model, "layers", ()))
    k = min(2 if batch_stats else 1, X.shape[0])
    try:
        with _eval_mode(model):     # no running-statistics update, no dropout draw
            pred = np.asarray(model.forward(X[:k]))
        loss.forward(pred, y[:k])
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"fit: the model or loss cannot take the data (checked on the first "
                        f"{'sample' if k == 1 else f'{k} samples'}): {exc}") \
            from None
    K = pred.shape[1] if pred.ndim == 2 else 1
    if y.ndim == 1 and y.dtype.kind in "iu":
        ignore = getattr(loss, "ignore_index", None)             # NLLLoss: rows with this label are skipped
        used = y if ignore is None else y[y != ignore]
        if used.size and (used.min() < 0 or used.max() >= K):
            also = "" if ignore is None else f" (or equal the loss's ignore_index={ignore})"
            raise ValueError(f"fit: labels must lie in [0, {K}){also} for a model with {K} outputs, got min "
                             f"{used.min()} and max {used.max()}")


def fit(model, loss, X, y, *, batch_size: int | None = 32, epochs: int = 1, lr: float = 0.01,
        momentum: float = 0.0, optimizer=None, shuffle: bool = True, rng=None, threads: int | None = None,
        fused: bool | None = None, on_batch: Callable[[int, float], None] | None = None,
        per_sample: str = "auto", scheduler=None) -> History:
    """Train ``model`` with SGD; return the mean training loss of each epoch.

    Parameters
    ----------
    model : :class:`~net.Sequential` (or any object with forward/backward/parameters)
    loss : a loss object, e.g. ``CrossEntropyLoss()``, with ``reduction`` ``"mean"`` or
        ``"sum"`` (each epoch's entry is then the epoch's summed loss divided by N);
        ``"none"`` raises ``ValueError`` (training needs a scalar loss)
    X : (N, features); y : (N,) integer labels or (N, K) targets.  Checked against
        the model (input width, label range) before any training step.
    batch_size : rows per step; ``1`` is per-sample SGD, ``None`` the full batch
    epochs, lr, momentum : SGD settings (ignored when ``optimizer`` is given)
    optimizer : an optimiser over ``model.parameters()`` to use instead of a new ``SGD``
    shuffle : draw a new sample order each epoch from ``rng`` (else file order)
    rng : numpy Generator or seed for the shuffling
    threads : None (default): the per-sample kernel runs on one thread, BLAS on as many
        as it likes.  N: at most N threads -- the per-sample kernel splits every sample's
        work by weight rows between N threads (still exact sequential SGD); everything
        else limits BLAS to N threads.  Results are deterministic for a given N.
    fused : None (use a fused kernel when one applies), True (require it: error
        saying why not), False (always the layer-by-layer loop)
    on_batch : called as ``on_batch(rows, mean_loss)`` as training advances
        (every step; every chunk of samples on the fused path)
    per_sample : the per-sample kernel for ``batch_size=1`` plain SGD: ``"fused"``
        (:func:`kernels.fused.sgd_epoch`), ``"compact"`` (deferred updates in blocks of 32
        samples, :func:`kernels.fused_compact.sgd_epoch_compact`; the same SGD to rounding) or
        ``"auto"`` (default: :func:`net.fused.choose_per_sample`, compact where a hidden layer's
        weights exceed the L2 cache).  ``"compact"`` with ``threads=N`` runs a team of N threads
        (:func:`kernels.fused_compact.sgd_epoch_compact_threads`: the block GEMMs, the pass over
        the second layer and the block updates split between them).
    scheduler : a :mod:`net.schedule` scheduler of ``optimizer``, stepped once after every epoch
        (each epoch trains with ``optimizer.lr`` as the schedule has set it); or None

    Raises :class:`TrainingDivergedError` naming the epoch and sample when the
    loss becomes NaN or infinite.
    """
    X, y = _check_fit_args(X, y, batch_size, epochs, threads, _model_dtype(model))
    if getattr(loss, "reduction", "mean") not in ("mean", "sum"):
        raise ValueError(f"fit: the loss must be a scalar to train on, but {loss!r} has reduction="
                         f"{loss.reduction!r}; use reduction='mean' (or 'sum')")
    if per_sample not in fused_path.PER_SAMPLE_STRATEGIES:
        raise ValueError(f"fit: per_sample must be one of {', '.join(map(repr, fused_path.PER_SAMPLE_STRATEGIES))}, "
                         f"got {per_sample!r}")
    if batch_size is not None:
        batch_size = min(int(batch_size), X.shape[0])         # 2.0 -> 2; a batch larger than X is the full X
    _check_first_linear_takes(model, X)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    opt = optimizer if optimizer is not None else SGD(model.parameters(), lr=lr, momentum=momentum)
    _check_model_and_optimizer(model, opt)
    if scheduler is not None and getattr(scheduler, "optimizer", None) is not opt:
        raise ValueError("fit: the scheduler adjusts another optimizer's lr, not the one training this model")
    _check_model_takes(model, loss, X, y)
    plan = None
    if fused is not False:
        plan = fused_path.plan(model, loss, batch_size=batch_size, optimizer=opt, per_sample=per_sample,
                               threads=threads)
        if isinstance(plan, str):
            if fused or (threads or 1) > 1 and batch_size == 1 or per_sample == "compact":
                what = ("fused=True" if fused else f"threads={threads}" if (threads or 1) > 1 and batch_size == 1
                        else "per_sample='compact'")
                raise ValueError(f"fit: {what} needs a fused kernel, but {plan}")
            plan = None
    elif (threads or 1) > 1 and batch_size == 1:
        raise ValueError(f"fit: threads={threads} with batch_size=1 needs the fused per-sample kernel, "
                         f"but fused=False")
    elif per_sample == "compact":
        raise ValueError("fit: per_sample='compact' is a fused kernel, but fused=False")
    if per_sample == "compact" and plan is not None and not plan.per_sample:
        raise ValueError(f"fit: per_sample='compact' is per-sample plain SGD (batch_size=1, no momentum), got "
                         f"batch_size={batch_size}, momentum={plan.momentum}")
    if plan is not None:
        try:
            labels, targets = plan.targets(y)
        except fused_path.Unsupported as exc:
            if fused or ((threads or 1) > 1 and plan.per_sample) or per_sample == "compact":
                raise ValueError(f"fit: the fused kernels cannot take these targets: {exc}") from None
            plan = None
    if hasattr(model, "train"):
        model.train()               # training mode, as a torch loop's model.train()
    history = History()
    history.path = "fused" if plan is not None else "layers"
    history.threads = threads
    history.per_sample = plan.strategy if plan is not None and plan.per_sample else None
    with blas_threads(None if plan is not None and plan.per_sample else threads), interrupt.deferred():
        if plan is not None:
            Xc = np.ascontiguousarray(X, dtype=plan.dtype)
            for epoch in range(1, int(epochs) + 1):
                order = batch_order(X.shape[0], shuffle, rng)
                history.append(_fused_epoch(plan, Xc, labels, targets, order, opt.lr, threads or 1, epoch,
                                            on_batch))
                if scheduler is not None:
                    scheduler.step()
            return history
        _layer_epochs(model, loss, opt, X, y, batch_size, epochs, shuffle, rng, on_batch, history, scheduler)
    return history


def _layer_epochs(model, loss, opt, X, y, batch_size, epochs, shuffle, rng, on_batch, history,
                  scheduler=None) -> None:
    """The layer-by-layer loop: forward, loss, backward, optimiser step per batch."""
    n = X.shape[0]
    bs = n if batch_size is None else int(batch_size)
    for epoch in range(1, int(epochs) + 1):
        order = batch_order(n, shuffle, rng)
        total = 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            pred = model.forward(X[idx])
            batch_loss = loss.forward(pred, y[idx])
            if not np.isfinite(batch_loss):
                row = _first_diverging_row(loss, pred, y[idx])
                raise TrainingDivergedError(batch_loss, epoch, int(idx[row]), start + row,
                                            updated=epoch > 1 or start > 0)
            model.backward(loss.backward())
            opt.step()
            total += batch_loss if getattr(loss, "reduction", "mean") == "sum" else batch_loss * len(idx)
            if on_batch is not None:
                on_batch(len(idx), batch_loss)
            interrupt.check()
        history.append(total / n)
        if scheduler is not None:
            scheduler.step()


def _check_first_linear_takes(model, X) -> None:
    """The first Linear layer's width against X's, with a message that names X's whole shape."""
    first, leads = _first_linear(model)
    if leads and X.shape[1] != first.in_features:
        raise ValueError(f"fit: {first!r} expected input of shape (batch, {first.in_features}), "
                         f"got X of shape {X.shape}")


def _first_diverging_row(loss, pred, target) -> int:
    """Row of the batch whose output or own loss is not finite (0 if only the batch mean is)."""
    pred = np.asarray(pred)
    bad = ~np.isfinite(pred.reshape(pred.shape[0], -1)).all(axis=1)
    if bad.any():
        return int(np.argmax(bad))
    with np.errstate(over="ignore", invalid="ignore"):
        for r in range(pred.shape[0]):
            if not np.isfinite(loss.forward(pred[r:r + 1], target[r:r + 1])):
                return r
    return 0


def _divergence_message(value, epoch, sample, position, updated) -> str:
    where = f"loss became {value} in epoch {epoch} at sample {sample} (position {position} of the epoch)"
    if not updated:
        return (f"{where}, before this fit made any update: the inputs are finite, so check their scale and the "
                f"weights training started from")
    return f"{where}; lower the learning rate"


#: Seconds of work per fused-kernel call, about: progress moves and Ctrl-C is answered between
#: calls.  Chunking does not change the result (the kernels carry nothing from one call to the
#: next but the weights and the momentum buffers), so the chunk size may follow the clock.
FUSED_CALL_SECONDS = 0.15
#: Samples in an epoch's first fused-kernel call (then sized by FUSED_CALL_SECONDS).
FUSED_FIRST_CHUNK = 1024


def _fused_epoch(plan, X, labels, targets, order, lr, threads, epoch, on_batch) -> float:
    n = order.shape[0]
    rows = FUSED_FIRST_CHUNK
    total = 0.0
    start = 0
    while start < n:
        chunk = order[start:start + plan.chunk(n, rows)]
        t0 = time.perf_counter()
        loss_sum, failed_at = plan.run(X, labels, targets, chunk, lr, threads, n_total=n)
        seconds = time.perf_counter() - t0
        if failed_at is not None:
            raise TrainingDivergedError("non-finite", epoch, int(chunk[failed_at]), start + failed_at,
                                        updated=epoch > 1 or start + failed_at >= (plan.batch_size or n))
        total += loss_sum
        start += chunk.shape[0]
        if on_batch is not None:
            on_batch(chunk.shape[0], loss_sum / chunk.shape[0])
        interrupt.check()
        rows = max(1, min(4 * chunk.shape[0], int(chunk.shape[0] * FUSED_CALL_SECONDS / max(seconds, 1e-6))))
    return total / n


def predict(model, X, batch_size: int = 4096) -> np.ndarray:
    """Model outputs for ``X`` in chunks of ``batch_size`` rows (bounded memory), in eval mode
    (Dropout off, BatchNorm1d on its running statistics); every layer's mode is restored after."""
    X = np.asarray(X)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    with _eval_mode(model):
        if X.shape[0] == 0:
            return model.forward(X)
        out = []
        for i in range(0, X.shape[0], batch_size):
            out.append(model.forward(X[i:i + batch_size]))
            interrupt.check()
    return np.concatenate(out)


@contextmanager
def _eval_mode(model):
    """``model`` and its layers in eval mode inside the block; each one's previous mode restored after."""
    modules = [m for m in (model, *getattr(model, "layers", ())) if hasattr(m, "training")]
    saved = [(m, m.training) for m in modules]
    for m in modules:
        m.training = False
    try:
        yield model
    finally:
        for m, mode in saved:
            m.training = mode
