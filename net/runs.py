"""Training runs on disk: a run folder with config, history, curves, confusion matrix, checkpoints.

Used by ``python -m net train/evaluate/predict``; usable from Python too.

Run folder layout::

    config.json      everything needed to rerun (and the versions that ran it)
    history.json     {"status": "running" | "finished" | "failed" | "interrupted", "message": why it
                     failed or stopped (else null), "epochs": one dict per finished epoch: losses,
                     accuracies, seconds and samples/s (Numba's compile time not included)}
    checkpoint.npz   last finished epoch: weights, optimizer state, epoch, RNG state
    model.npz        final weights (``net.io.load`` reads either file)
    curves.png       loss and accuracy per epoch
    confusion.png    test-set confusion matrix
"""
from __future__ import annotations

import json
import platform
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import interrupt, io, metrics
from .atomic import atomic_write
from .activations import GELU, LeakyReLU, Tanh
from .dropout import Dropout
from .layers import Linear, ReLU, Sigmoid
from .losses import CrossEntropyLoss, MSELoss
from .model import Sequential
from .norm import BatchNorm1d
from .optim import OPTIMIZERS
from .schedule import SCHEDULES
from .train import TrainingDivergedError, fit, predict

ACTIVATIONS = {"sigmoid": Sigmoid, "relu": ReLU, "identity": None,
               "tanh": Tanh, "leaky_relu": LeakyReLU, "gelu": GELU}
LOSSES = {"softmax-ce": lambda backend: CrossEntropyLoss(backend=backend),
          "mse": lambda backend: MSELoss(backend=backend)}
DATASETS = ("fashion-mnist", "mnist", "spiral")
DEFAULT_LAYERS = {"fashion-mnist": "784-512-512-10", "mnist": "784-512-512-10", "spiral": "2-100-3"}


@dataclass
class RunConfig:
    """Everything a run depends on (written to ``config.json``)."""

    dataset: str = "fashion-mnist"
    data_root: str | None = None
    layers: list[int] = field(default_factory=lambda: [784, 512, 512, 10])
    activation: str = "sigmoid"
    loss: str = "softmax-ce"
    init: str = "xavier_normal"
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "none"
    schedule_epochs: int = 10
    lr: float = 0.02
    batch_size: int | None = 1
    epochs: int = 1
    val_fraction: float = 0.0
    shuffle: bool = False
    limit: int | None = None
    backend: str = "numba"
    threads: int | None = None
    per_sample: str = "auto"
    dtype: str = "float32"
    seed: int = 0
    dropout: float = 0.0                # a Dropout(p) after each hidden activation (0: none)
    batchnorm: bool = False             # a BatchNorm1d after each hidden Linear, before the activation


def make_optimizer(cfg: RunConfig, params):
    """``cfg.optimizer`` over ``params`` with ``cfg.lr``, ``cfg.weight_decay`` and (sgd, rmsprop) ``cfg.momentum``."""
    kwargs = {"momentum": cfg.momentum} if cfg.optimizer in ("sgd", "rmsprop") else {}
    return OPTIMIZERS[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kwargs)


def make_scheduler(cfg: RunConfig, optimizer):
    """``cfg.schedule`` over ``cfg.schedule_epochs`` epochs (see :data:`net.schedule.SCHEDULES`), or None."""
    factory = SCHEDULES[cfg.schedule]
    return None if factory is None else factory(optimizer, cfg.schedule_epochs)


def build_model(cfg: RunConfig, rng: np.random.Generator) -> Sequential:
    """``Linear`` layers of widths ``cfg.layers`` with ``cfg.activation`` between them (each hidden
    Linear followed by ``BatchNorm1d`` with ``cfg.batchnorm``, each hidden activation by ``Dropout``
    with ``cfg.dropout > 0``; the dropout masks are drawn from ``rng`` too)."""
    act = ACTIVATIONS[cfg.activation]
    layers = []
    for i, (a, b) in enumerate(zip(cfg.layers, cfg.layers[1:])):
        layers.append(Linear(a, b, init=cfg.init, rng=rng, dtype=cfg.dtype, backend=cfg.backend))
        hidden = i < len(cfg.layers) - 2
        if hidden and cfg.batchnorm:
            layers.append(BatchNorm1d(b, dtype=cfg.dtype, backend=cfg.backend))
        if act is not None and hidden:
            layers.append(act(backend=cfg.backend))
        if hidden and cfg.dropout:
            layers.append(Dropout(cfg.dropout, rng=rng, backend=cfg.backend))
    return Sequential(layers)


@dataclass
class Data:
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple


def load_data(cfg: RunConfig, progress: bool = True) -> Data:
    """The run's train/validation/test arrays (validation split seeded by ``cfg.seed``)."""
    from .data import FASHION_MNIST_CLASSES, MNIST_CLASSES, load_by_name, spiral, train_val_split

    if cfg.dataset == "spiral":
        k = cfg.layers[-1]
        X, y = spiral(100, k, rng=cfg.seed, dtype=cfg.dtype)
        X_test, y_test = spiral(100, k, rng=cfg.seed + 1, dtype=cfg.dtype)
        names = tuple(str(i) for i in range(k))
    else:
        X, y, X_test, y_test = load_by_name(cfg.dataset, cfg.data_root, dtype=cfg.dtype, progress=progress,
                                            root_arg="--data-root=")
        names = FASHION_MNIST_CLASSES if cfg.dataset == "fashion-mnist" else MNIST_CLASSES
    if cfg.limit is not None:
        X, y = X[:cfg.limit], y[:cfg.limit]
    X_val = y_val = None
    if cfg.val_fraction > 0:
        X, y, X_val, y_val = train_val_split(X, y, cfg.val_fraction, rng=cfg.seed)
    return Data(X, y, X_val, y_val, X_test, y_test, names)


def evaluate(model, loss, X, y) -> tuple[float, float, np.ndarray]:
    """``(mean loss, accuracy, predicted labels)`` on a whole set."""
    out = predict(model, X)
    return loss.forward(out, y), metrics.accuracy(out, y), out.argmax(axis=1)


def score_test_set(model, loss, data: Data) -> tuple[float, float, np.ndarray]:
    """``(test loss, test accuracy, (K, K) confusion matrix)`` -- rows true, columns predicted."""
    value, acc, pred = evaluate(model, loss, data.X_test, data.y_test)
    return value, acc, metrics.confusion_matrix(pred, data.y_test, len(data.class_names))


def _write_json(path: Path, obj) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2)


def versions() -> dict:
    import numba

    from . import __version__

    return {"scratchnet": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "platform": platform.platform()}


def _plots(run_dir: Path, history: list, cm: np.ndarray, names) -> list[Path]:
    """The figures actually written (none without matplotlib: one line names the extra instead)."""
    from .plot import run_figures

    return run_figures(run_dir, history, cm, names)


def train(cfg: RunConfig, run_dir, *, resume: bool = False, progress: bool = True, log=print) -> list[dict]:
    """Train (or continue) the run in ``run_dir``; return its history.

    With ``resume`` the weights, optimizer state, epoch counter and shuffling RNG
    come from ``run_dir/checkpoint.npz``, so an interrupted and resumed run ends
    with the same weights as an uninterrupted one.  ``history.json`` records how the
    run ended: a divergence (:class:`TrainingDivergedError`, re-raised with the run's
    epoch number) or a Ctrl-C (``KeyboardInterrupt``, re-raised) leaves the last
    finished epoch's checkpoint in place and no ``model.npz``.
    """
    from .compiling import announce_compiles

    run_dir = Path(run_dir)
    data = load_data(cfg, progress=progress)   # first: a data error leaves no run folder behind
    run_dir.mkdir(parents=True, exist_ok=True)
    io.remove_stale_temp_files(run_dir)
    loss = LOSSES[cfg.loss](cfg.backend)
    if resume:
        state = io.load_checkpoint(run_dir / "checkpoint.npz", backend=cfg.backend)
        model, start, rng, history = state["model"], state["epoch"], state["rng"], state["history"]
        opt = make_optimizer(cfg, model.parameters())
        sched = make_scheduler(cfg, opt)          # first, as in torch: it sets the lr the state then restores
        opt.load_state_dict(state["optimizer_state"])
        if sched is not None:
            if state["scheduler_state"] is None:
                raise io.CheckpointError(f"{run_dir / 'checkpoint.npz'}: no schedule state for --schedule "
                                         f"{cfg.schedule}")
            sched.load_state_dict(state["scheduler_state"])
    else:
        init_rng = np.random.default_rng(cfg.seed)
        model = build_model(cfg, init_rng)
        rng = np.random.default_rng([cfg.seed, 1])
        opt = make_optimizer(cfg, model.parameters())
        sched = make_scheduler(cfg, opt)
        start, history = 0, []
    _write_json(run_dir / "config.json", {"config": asdict(cfg), "versions": versions()})
    try:
        with announce_compiles(log) if cfg.backend == "numba" else nullcontext():
            if start < cfg.epochs:
                warm_up(cfg, loss, data.X_train, data.y_train)
            with interrupt.deferred():        # Ctrl-C between kernel calls, never inside one
                cm = _epochs(cfg, run_dir, data, model, loss, opt, rng, history, start, progress, log, sched)
    except TrainingDivergedError as exc:
        epoch = len(history) + 1
        exc = TrainingDivergedError(exc.value, epoch, exc.sample, exc.position, exc.updated or epoch > 1)
        _write_history(run_dir, history, "failed", f"training diverged: {exc}")
        raise exc from None
    except KeyboardInterrupt:
        _write_history(run_dir, history, "interrupted", f"interrupted in epoch {len(history) + 1}")
        raise
    _write_history(run_dir, history, "finished")
    io.save(model, run_dir / "model.npz", extra={"config": asdict(cfg)})
    figures = _plots(run_dir, history, cm, data.class_names)
    if figures:
        log("figures: " + ", ".join(str(p) for p in figures))
    return history


def _epochs(cfg, run_dir, data, model, loss, opt, rng, history, start, progress, log, sched=None) -> np.ndarray:
    """Train epochs ``start + 1 .. cfg.epochs``, each timed, scored and checkpointed (appended to
    ``history``); return the last test confusion matrix."""
    n = data.X_train.shape[0]
    cm = None
    for epoch in range(start + 1, cfg.epochs + 1):
        bar = _progress_bar(n, f"epoch {epoch}/{cfg.epochs}") if progress else None
        t0 = time.perf_counter()       # after the warm-up: no compile time in the epoch's time
        lr = opt.lr                    # this epoch's (a schedule sets the next one at its end)
        try:
            hist = fit(model, loss, data.X_train, data.y_train, batch_size=cfg.batch_size, epochs=1,
                       optimizer=opt, shuffle=cfg.shuffle, rng=rng, threads=cfg.threads,
                       per_sample=cfg.per_sample, on_batch=bar.advance if bar is not None else None,
                       scheduler=sched)
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": hist[0], "seconds": elapsed, "samples_per_s": n / elapsed,
               "path": hist.path, "per_sample": hist.per_sample}
        row["lr"] = lr
        row["train_acc"] = evaluate(model, loss, data.X_train, data.y_train)[1]
        if data.X_val is not None:
            row["val_loss"], row["val_acc"], _ = evaluate(model, loss, data.X_val, data.y_val)
        row["test_loss"], row["test_acc"], cm = score_test_set(model, loss, data)
        interrupt.check()
        history.append(row)
        io.save_checkpoint(run_dir / "checkpoint.npz", model, opt, epoch=epoch, rng=rng, history=history,
                           config=asdict(cfg), scheduler=sched)
        _write_history(run_dir, history, "running")
        log(_epoch_line(row, cfg.epochs))
    if cm is None:  # nothing left to train: still refresh the pictures from the checkpoint's model
        cm = score_test_set(model, loss, data)[2]
    return cm


def _write_history(run_dir: Path, epochs: list, status: str, message: str | None = None) -> None:
    _write_json(run_dir / "history.json", {"status": status, "message": message, "epochs": epochs})


def warm_up(cfg: RunConfig, loss, X, y) -> None:
    """Train a throwaway network of the run's shape on two samples, so that every kernel the
    epochs use is compiled (or loaded from Numba's cache) before the first epoch is timed."""
    if cfg.backend != "numba":
        return
    twin = build_model(cfg, np.random.default_rng(0))
    k = min(2, X.shape[0])
    try:
        fit(twin, loss, X[:k], y[:k], batch_size=cfg.batch_size, shuffle=False, threads=cfg.threads,
            per_sample=cfg.per_sample, optimizer=make_optimizer(cfg, twin.parameters()))
    except TrainingDivergedError:      # compiled all the same; the real run reports its own divergence
        pass
    predict(twin, X[:k])


def _path_name(row: dict) -> str:
    """``"fused path"``, ``"fused path, compact per-sample"`` or ``"layers path"``."""
    extra = ", compact per-sample" if row.get("per_sample") == "compact" else ""
    return f"{row['path']} path{extra}"


def _epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {row['train_loss']:.4f}",
             f"train acc {100 * row['train_acc']:.2f}%"]
    if "val_loss" in row:
        parts += [f"val loss {row['val_loss']:.4f}", f"val acc {100 * row['val_acc']:.2f}%"]
    parts += [f"test loss {row['test_loss']:.4f}", f"test acc {100 * row['test_acc']:.2f}%",
              f"{row['seconds']:.1f}s ({row['samples_per_s']:,.0f} samples/s, {_path_name(row)})"]
    return " | ".join(parts)


def _progress_bar(total: int, desc: str):
    """A tqdm bar with ``advance(rows, loss)`` for ``fit(on_batch=...)``: samples/s and running loss."""
    from tqdm import tqdm

    class _Bar(tqdm):
        def advance(self, rows: int, loss: float) -> None:
            self.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.update(rows)

    return _Bar(total=total, desc=desc, unit="sample", unit_scale=True, leave=False, mininterval=0.5)


def read_config(run_dir) -> RunConfig:
    """The :class:`RunConfig` stored in ``run_dir/config.json``."""
    path = Path(run_dir) / "config.json"
    with open(path) as f:
        raw = json.load(f)["config"]
    return RunConfig(**raw)
