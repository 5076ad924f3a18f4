"""Bridge from a ``Sequential`` model to the fused per-sample SGD kernel (:mod:`kernels.fused`).

:func:`plan` inspects a model and loss; when the fused kernel can train them
exactly (Linear layers (with or without bias), ReLU/Sigmoid/identity between them, ending in
``CrossEntropyLoss(from_logits=True)`` or ``MSELoss``, numba backend,
per-sample plain SGD) it returns a :class:`FusedPlan`, otherwise the reason why
not, and ``fit`` falls back to the layer-by-layer loop.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from kernels import fused as fk

from .layers import Linear, ReLU, Sigmoid
from .losses import CrossEntropyLoss, MSELoss
from .model import Sequential
from .optim import SGD

_ACT = {ReLU: fk.RELU, Sigmoid: fk.SIGMOID}


@dataclass
class FusedPlan:
    """What the fused kernel needs: weight/bias tuples (the model's own arrays), codes, dtype."""

    weights: tuple
    biases: tuple
    bias_on: np.ndarray
    activations: np.ndarray
    loss_kind: int
    dtype: np.dtype

    @property
    def out_features(self) -> int:
        return self.weights[-1].shape[1]

    def targets(self, y: np.ndarray):
        """``(labels int64 (N,), targets (N, K) or (0, K))`` in the kernel's form."""
        K = self.out_features
        if self.loss_kind == fk.SOFTMAX_CE:
            if y.ndim == 2:
                labels = y.argmax(axis=1)
                if not np.array_equal(y, np.eye(K, dtype=y.dtype)[labels]):
                    raise Unsupported("soft (non one-hot) cross-entropy targets")
                y = labels
            return np.ascontiguousarray(y, dtype=np.int64), np.zeros((0, K), dtype=self.dtype)
        if y.ndim == 1:
            y = np.eye(K, dtype=self.dtype)[y]
        return np.zeros(0, dtype=np.int64), np.ascontiguousarray(y, dtype=self.dtype)

    def run(self, X, labels, targets, order, lr, threads: int = 1):
        """Train on ``X[order]``; return ``(losses, done)`` as :func:`kernels.fused.sgd_epoch`.

        The arguments are checked here (the compiled kernel trusts them and would read and
        write out of bounds): ``ValueError`` names what does not fit.
        """
        lr = self.dtype.type(lr)
        order = np.ascontiguousarray(order, dtype=np.int64)
        self._check(X, labels, targets, order)
        if threads == 1:
            return fk.sgd_epoch(self.weights, self.biases, self.bias_on, self.activations, self.loss_kind, X, labels,
                                targets, order, lr)
        return _run_threaded(self, X, labels, targets, order, lr, threads)


    def _check(self, X, labels, targets, order) -> None:
        widths = [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.shape != (widths[l], widths[l + 1]) or b.shape != (widths[l + 1],):
                raise ValueError(f"fused plan: layer {l} has W {w.shape} and b {b.shape}, expected "
                                 f"({widths[l]}, {widths[l + 1]}) and ({widths[l + 1]},)")
        if X.ndim != 2 or X.shape[1] != widths[0] or X.dtype != self.dtype or not X.flags.c_contiguous:
            raise ValueError(f"fused plan: X must be C-contiguous {self.dtype} of shape (N, {widths[0]}), "
                             f"got {X.dtype} {X.shape}")
        N, K = X.shape[0], widths[-1]
        if order.size and (order.min() < 0 or order.max() >= N):
            raise ValueError(f"fused plan: sample indices must lie in [0, {N}), got {order.min()}..{order.max()}")
        if self.loss_kind == fk.SOFTMAX_CE:
            if labels.shape != (N,) or (N and (labels.min() < 0 or labels.max() >= K)):
                raise ValueError(f"fused plan: expected {N} labels in [0, {K}), got shape {labels.shape}")
        elif targets.shape != (N, K) or targets.dtype != self.dtype:
            raise ValueError(f"fused plan: expected {self.dtype} targets of shape ({N}, {K}), got "
                             f"{targets.dtype} {targets.shape}")


class Unsupported(Exception):
    """The fused kernel cannot train this model/loss/target combination (the message says why)."""


def plan(model, loss, *, batch_size, momentum: float = 0.0, optimizer=None) -> FusedPlan | str:
    """A :class:`FusedPlan` for ``model``/``loss``, or a string saying why the fused path does not apply."""
    try:
        return _plan(model, loss, batch_size, momentum, optimizer)
    except Unsupported as exc:
        return str(exc)


def _plan(model, loss, batch_size, momentum, optimizer) -> FusedPlan:
    if batch_size != 1:
        raise Unsupported("the fused kernel does per-sample SGD only (batch_size=1)")
    if momentum or (optimizer is not None and (type(optimizer) is not SGD or optimizer.momentum != 0.0)):
        raise Unsupported("the fused kernel does plain SGD (no momentum, no custom optimizer)")
    if not isinstance(model, Sequential) or len(model) == 0:
        raise Unsupported("the fused kernel trains a non-empty Sequential")
    if optimizer is not None:
        owned, own = set(optimizer.params), model.parameters()
        frozen = [f"{p.layer!r}.{p.name}" for p in own if p not in owned]
        if frozen or len(owned) != len(own):
            raise Unsupported(f"the optimizer trains only some of the model's parameters (not {', '.join(frozen)}); "
                              "the fused kernel trains all of them")
    if isinstance(loss, CrossEntropyLoss) and loss.from_logits:
        loss_kind = fk.SOFTMAX_CE
    elif isinstance(loss, MSELoss):
        loss_kind = fk.MSE
    else:
        raise Unsupported(f"the fused kernel supports CrossEntropyLoss(from_logits=True) and MSELoss, not {loss!r}")
    weights, biases, bias_on, acts = [], [], [], []
    for layer in model:
        if getattr(layer, "backend", None) != "numba":
            raise Unsupported(f"{layer!r} runs on backend {getattr(layer, 'backend', None)!r}, not 'numba'")
        if type(layer) is Linear:
            if len(acts) < len(weights):        # Linear right after Linear: identity between them
                acts.append(fk.IDENTITY)
            weights.append(layer.params["W"])
            biases.append(layer.params["b"] if layer.has_bias else np.zeros(layer.out_features, layer.dtype))
            bias_on.append(1 if layer.has_bias else 0)
        elif type(layer) in _ACT:
            if len(acts) != len(weights) - 1:   # first layer, or activation after activation
                raise Unsupported(f"{layer!r} must follow a Linear layer directly")
            acts.append(_ACT[type(layer)])
        else:
            raise Unsupported(f"the fused kernel does not know layer {layer!r}")
    if len(acts) == len(weights):
        raise Unsupported("the model must end with a Linear layer (the loss takes its output)")
    acts.append(fk.IDENTITY)
    dtypes = {w.dtype for w in weights}
    if len(dtypes) != 1:
        raise Unsupported(f"the Linear layers mix dtypes {sorted(map(str, dtypes))}")
    for w, b in zip(weights, biases):
        if not (w.flags.c_contiguous and b.flags.c_contiguous):
            raise Unsupported("parameters must be C-contiguous arrays")
    dtype = dtypes.pop()
    return FusedPlan(tuple(weights), tuple(biases), np.array(bias_on, dtype=dtype), np.array(acts, dtype=np.int64),
                     loss_kind, dtype)


def _run_threaded(p: FusedPlan, X, labels, targets, order, lr, threads: int):
    sync = np.zeros(fk.SYNC_SLOTS, dtype=np.int64)
    width = max([X.shape[1]] + [w.shape[1] for w in p.weights])
    P = np.zeros((2, threads, width), dtype=p.dtype)   # partial layer outputs, per thread
    S = np.zeros((2, width), dtype=p.dtype)            # input gradients, assembled by all threads
    results = [None] * threads
    errors = []

    def work(tid):
        try:
            results[tid] = fk.sgd_epoch_threaded(p.weights, p.biases, p.bias_on, p.activations, p.loss_kind, X, labels,
                                                 targets, order, lr, tid, threads, sync, P, S)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return results[0]
