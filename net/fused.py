"""Bridge from a ``Sequential`` model to the fused SGD kernels.

:func:`plan` inspects a model, loss and optimiser; when a fused kernel can train them
exactly (Linear layers (with or without bias), ReLU/Sigmoid/Tanh/identity between them, ending in
``CrossEntropyLoss(from_logits=True)`` or ``MSELoss``, numba backend, our ``SGD``
owning every parameter) it returns a :class:`FusedPlan`, otherwise the reason why
not, and ``fit`` falls back to the layer-by-layer loop.  Per-sample plain SGD runs
in :func:`kernels.fused.sgd_epoch` (optionally threaded); mini-batches, the full
batch and momentum run in :func:`kernels.fused_minibatch.sgd_minibatch_epoch`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the codes only: Numba and the compiled kernels load when a plan first runs
from kernels import codes as fk

from .activations import Tanh
from .layers import Linear, ReLU, Sigmoid
from .losses import CrossEntropyLoss, MSELoss
from .model import Parameter, Sequential
from .optim import SGD

_ACT = {ReLU: fk.RELU, Sigmoid: fk.SIGMOID, Tanh: fk.TANH}


@dataclass
class FusedPlan:
    """What the fused kernels need: weight/bias tuples (the model's own arrays), codes, dtype,
    and the SGD settings: ``batch_size`` (None: the full batch), ``momentum`` with the
    optimiser's own velocity arrays (``vel_w``/``vel_b``, updated in place).  Per-sample
    plain SGD runs with ``strategy`` ``"fused"`` (:func:`kernels.fused.sgd_epoch`) or
    ``"compact"`` (:func:`kernels.fused_compact.sgd_epoch_compact`: blocks of ``block``
    samples, ``compact`` the uint8 flags of the layers updated compactly)."""

    weights: tuple
    biases: tuple
    bias_on: np.ndarray
    activations: np.ndarray
    loss_kind: int
    dtype: np.dtype
    batch_size: int | None = 1
    momentum: float = 0.0
    vel_w: tuple = ()
    vel_b: tuple = ()
    strategy: str = "fused"
    block: int = 32
    compact: np.ndarray | None = None

    @property
    def per_sample(self) -> bool:
        """True when the per-sample kernel (plain SGD, one sample per step) runs."""
        return self.batch_size == 1 and not self.momentum

    def chunk(self, n: int, rows: int) -> int:
        """Samples per kernel call: about ``rows``, a whole number of batches (of compact blocks:
        so the blocks start at the same epoch positions however the epoch is cut into calls)."""
        bs = n if self.batch_size is None else self.batch_size
        if self.per_sample and self.strategy == "compact":
            bs = self.block
        return max(1, rows // bs) * bs

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

    def run(self, X, labels, targets, order, lr, threads: int = 1, n_total: int | None = None):
        """Train on ``X[order]``; return ``(loss_sum, failed_at)``.

        ``loss_sum`` is the sum over the samples trained of their loss (mini-batches:
        batch mean x rows); ``failed_at`` is None, or the position in ``order`` of the
        first sample whose loss was not finite (training stopped before updating with
        it).  ``n_total`` is the epoch's sample count (the full batch's size).  ``threads``
        splits the per-sample kernel; the mini-batch kernel's BLAS threads are set by the
        caller (:func:`net.threads.blas_threads`).  The
        arguments are checked here (the compiled kernels trust them and would read and
        write out of bounds): ``ValueError`` names what does not fit.
        """
        lr = self.dtype.type(lr)
        order = np.ascontiguousarray(order, dtype=np.int64)
        self._check(X, labels, targets, order)
        M = order.shape[0]
        if self.per_sample and self.strategy == "compact":
            from kernels.fused_compact import sgd_epoch_compact_threads

            from .threads import blas_threads

            with blas_threads(1):              # every team member calls BLAS on its own share
                losses, done = sgd_epoch_compact_threads(self.weights, self.biases, self.bias_on, self.activations,
                                                         self.loss_kind, X, labels, targets, order, lr, self.block,
                                                         self.compact, threads)
            return float(np.sum(losses[:done], dtype=np.float64)), (done if done < M else None)
        if self.per_sample:
            # imports Numba, which `import net` should not
            from kernels import fused as fk

            if threads == 1:
                losses, done = fk.sgd_epoch(self.weights, self.biases, self.bias_on, self.activations,
                                            self.loss_kind, X, labels, targets, order, lr)
            else:
                losses, done = _run_threaded(self, X, labels, targets, order, lr, threads)
            return float(np.sum(losses[:done], dtype=np.float64)), (done if done < M else None)
        # imported here: it loads SciPy's BLAS (~0.1 s), which `import net` should not pay for
        from kernels.fused_minibatch import sgd_minibatch_epoch

        bs = (n_total or M) if self.batch_size is None else self.batch_size
        losses, done, bad = sgd_minibatch_epoch(self.weights, self.biases, self.bias_on, self.activations,
                                                self.loss_kind, X, labels, targets, order, lr, bs,
                                                self.dtype.type(self.momentum), self.vel_w, self.vel_b)
        rows = np.minimum(bs, M - bs * np.arange(losses.shape[0]))
        loss_sum = float(np.sum(losses[:done] * rows[:done]))
        if done == losses.shape[0]:
            return loss_sum, None
        return loss_sum, (bad if bad >= 0 else done * bs)

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


#: Per-sample strategies ``fit(..., per_sample=...)`` accepts.
PER_SAMPLE_STRATEGIES = ("auto", "fused", "compact")
#: Samples per block of the compact strategy (the issue's prototype: 32-64 best; 32 here).
COMPACT_BLOCK = 32


def plan(model, loss, *, batch_size, momentum: float = 0.0, optimizer=None, per_sample: str = "auto",
         threads: int | None = None) -> FusedPlan | str:
    """A :class:`FusedPlan` for ``model``/``loss``, or a string saying why no fused kernel applies.

    ``optimizer`` is the ``SGD`` that would train the model (its ``momentum`` and velocity
    buffers are used); without one, plain SGD with ``momentum`` is assumed.  ``per_sample``
    picks the per-sample strategy (:func:`choose_per_sample` for ``"auto"``).
    """
    try:
        p = _plan(model, loss, batch_size, momentum, optimizer)
    except Unsupported as exc:
        return str(exc)
    if p.per_sample:
        widths = [p.weights[0].shape[0]] + [w.shape[1] for w in p.weights]
        p.block = COMPACT_BLOCK
        p.compact = compact_layers(widths, p.block)
        p.strategy = per_sample if per_sample != "auto" else choose_per_sample(p, threads)
    return p


def compact_layers(widths, block: int) -> np.ndarray:
    """The default choice of compact layers: ``uint8 (L,)``, 1 where ``n_in * n_out > block * (n_in + n_out)``.

    widths : the L+1 layer widths ``(n_0, ..., n_L)``.  Per sample, a compact layer pays
    about ``block * (n_in + n_out)`` for its corrections (half a block on average, forward
    and backward) and saves a write pass over its ``n_in * n_out`` weights; the tutorial
    network's 512x10 output layer stays direct.
    """
    w = [int(v) for v in widths]
    return np.array([w[l] * w[l + 1] > block * (w[l] + w[l + 1]) for l in range(len(w) - 1)], dtype=np.uint8)


def choose_per_sample(p: FusedPlan, threads: int | None = None) -> str:
    """``"compact"`` when a hidden layer the compact rule picks has weights larger than this
    machine's L2 cache per core (read from the machine), on one thread; ``"fused"`` otherwise.

    The fused kernel reads and writes every weight row once per sample; the compact one
    replaces that with a read-only pass plus block GEMMs.  That pays where the weights
    stream from beyond L2 (the issue's Zen 3 host, 512 KiB L2: 1.48-1.68x), and not where
    they stay near the core (measured 0.85-1.05x on a Zen 4 with 1 MiB of L2 for the
    1 MiB second layer of the tutorial network).  The fused kernel's own threads split
    every layer; the compact kernel's team splits its GEMMs, the pass over the second layer
    and the block updates, but does the rest of every sample on one thread.  With
    ``threads > 1``, ``"auto"`` keeps fused (see README's per-sample table for the measured
    ratio on the machine at hand); ``per_sample="compact"`` asks for the team.
    """
    from kernels.cachesize import cache_sizes

    if (threads or 1) > 1:
        return "fused"
    l2 = cache_sizes().get(2)
    if not l2:
        return "fused"
    big = [w.nbytes for w, c in zip(p.weights[1:], p.compact[1:]) if c and w.nbytes > l2]
    return "compact" if big else "fused"


def _plan(model, loss, batch_size, momentum, optimizer) -> FusedPlan:
    if optimizer is not None:
        if type(optimizer) is not SGD:
            raise Unsupported(f"the fused kernels run our SGD, not {type(optimizer).__name__}")
        momentum = optimizer.momentum
        if optimizer.unfused_options():
            raise Unsupported(f"the fused kernels run SGD with plain momentum only, not {optimizer.unfused_options()}")
    if not isinstance(model, Sequential) or len(model) == 0:
        raise Unsupported("the fused kernels train a non-empty Sequential")
    if optimizer is not None:
        owned, own = set(optimizer.params), model.parameters()
        frozen = [f"{p.layer!r}.{p.name}" for p in own if p not in owned]
        if frozen:
            raise Unsupported(f"the optimizer trains only some of the model's parameters (not {', '.join(frozen)}); "
                              "the fused kernels train all of them")
        if len(optimizer.params) != len(own) or len(owned) != len(own):
            raise Unsupported("the optimizer's parameters are not exactly the model's, each once")
    arrays = [p.value for p in model.parameters()]
    for i, a in enumerate(arrays):
        if any(np.shares_memory(a, b) for b in arrays[:i]):
            raise Unsupported("two parameters share memory (tied weights); the fused kernels update each "
                              "layer's weights before the layer below reads them")
    # only what the kernels compute exactly: the batch mean, no label smoothing
    exact = getattr(loss, "reduction", "mean") == "mean" and not getattr(loss, "label_smoothing", 0)
    if isinstance(loss, CrossEntropyLoss) and loss.from_logits and exact:
        loss_kind = fk.SOFTMAX_CE
    elif isinstance(loss, MSELoss) and exact:
        loss_kind = fk.MSE
    else:
        raise Unsupported("the fused kernels support CrossEntropyLoss(from_logits=True) (label_smoothing=0, "
                          f"reduction='mean') and MSELoss(reduction='mean'), not {loss!r}")
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
            raise Unsupported(f"the fused kernels do not know layer {layer!r}")
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
    vel_w, vel_b = _velocities(model, optimizer, weights, biases, momentum)
    return FusedPlan(tuple(weights), tuple(biases), np.array(bias_on, dtype=dtype), np.array(acts, dtype=np.int64),
                     loss_kind, dtype, batch_size=batch_size, momentum=float(momentum), vel_w=vel_w, vel_b=vel_b)


def _velocities(model, optimizer, weights, biases, momentum):
    """The optimiser's momentum buffers as weight/bias tuples (the same arrays), or zeros."""
    if not momentum:
        return tuple(np.zeros((0, 0), w.dtype) for w in weights), tuple(np.zeros(0, b.dtype) for b in biases)
    if optimizer is None:
        raise Unsupported("momentum needs the optimizer that holds the velocity buffers")
    vel = dict(zip(optimizer.params, optimizer.ensure_velocity()))
    linears = [layer for layer in model if type(layer) is Linear]
    vel_w = [vel[Parameter(layer, "W")] for layer in linears]
    vel_b = [vel[Parameter(layer, "b")] if layer.has_bias else np.zeros(layer.out_features, layer.dtype)
             for layer in linears]
    for v, w in zip(vel_w + vel_b, list(weights) + list(biases)):
        if v.shape != w.shape or v.dtype != w.dtype or not v.flags.c_contiguous:
            raise Unsupported("the optimizer's velocity buffers do not match the parameters")
    return tuple(vel_w), tuple(vel_b)


def _run_threaded(p: FusedPlan, X, labels, targets, order, lr, threads: int):
    # imports Numba, which `import net` should not
    from kernels import fused as fk

    sync = np.zeros(fk.SYNC_SLOTS, dtype=np.int64)
    width = max([X.shape[1]] + [w.shape[1] for w in p.weights])
    P = np.zeros((2, threads, width), dtype=p.dtype)   # partial layer outputs, per thread
    S = np.zeros((2, width), dtype=p.dtype)            # input gradients, assembled by all threads
    from kernels.fused_threads import run_team

    return run_team(lambda tid: fk.sgd_epoch_threaded(p.weights, p.biases, p.bias_on, p.activations, p.loss_kind,
                                                      X, labels, targets, order, lr, tid, threads, sync, P, S),
                    threads)[0]
