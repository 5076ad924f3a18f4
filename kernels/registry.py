"""One entry per kernel operation: how to make its inputs and how close the backends must agree.

Read by ``tests/`` (equivalence over hypothesis-drawn sizes, plus every input form in
:mod:`kernels.testing`: F order, slices, NaN/inf, wrong dtypes, empty batches) and
``bench/`` (timing at fixed sizes): adding an operation means adding one :class:`Operation`.

Input generators take ``(rng, dtype, sizes, scale)``: ``sizes`` maps the names in
``Operation.dims`` to ints, ``scale`` is one of :data:`SCALES` --
``"unit"`` (standard normal), ``"large"`` (x 1e4, e.g. logits of +-1e4) or
``"zeros"`` (all-zero float inputs; labels stay valid).  Every size may be 0 except
those in :data:`NONEMPTY`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import get_backend
from .codes import ACTIVATION_CODES, MSE, SOFTMAX_CE
from .contract import NONEMPTY as _CONTRACT_NONEMPTY
from .reference import sigmoid_forward, softmax

SCALES = ("unit", "large", "zeros")
DTYPES = (np.float32, np.float64)
#: Sizes that must be at least 1: the class axis (kernel contract), the depth of the epoch
#: kernels (``L``) and the batch size of ``sgd_minibatch_epoch`` (``S``).
NONEMPTY = _CONTRACT_NONEMPTY | {"L", "S"}

#: Base tolerances per dtype (see :func:`tolerance`).
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 5e-7},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-15},
}


def _normal(rng, shape, dtype, scale):
    if scale == "zeros":
        return np.zeros(shape, dtype=dtype)
    x = rng.standard_normal(shape)
    if scale == "large":
        x *= 1e4
    return x.astype(dtype)


def _with_exact_zeros(rng, shape, dtype, scale):
    x = _normal(rng, shape, dtype, scale)
    x[rng.random(shape) < 0.2] = 0
    return x


def _labels(rng, B, K):
    return rng.integers(0, max(K, 1), size=B).astype(np.int64)      # K = 0: invalid on purpose


def _one_hot(rng, B, K, dtype):
    t = np.zeros((B, K), dtype=dtype)
    if K:
        t[np.arange(B), _labels(rng, B, K)] = 1
    return t


def _probs(rng, B, K, dtype, scale):
    z = _normal(rng, (B, K), np.float64, scale)
    return (softmax(z) if K else z).astype(dtype)


def _soft(rng, B, K, dtype):
    """Non-negative targets whose rows do not sum to 1 (some zeros, sums in ~[0, 2K])."""
    t = rng.random((B, K)) * 2
    t[rng.random((B, K)) < 0.2] = 0
    return t.astype(dtype)


def _absmax(*arrays):
    return max(float(np.max(np.abs(a))) if a.size else 0.0 for a in arrays)


@dataclass(frozen=True)
class Operation:
    """One kernel operation as the tests and benchmarks see it.

    name        kernel function name, the same in every backend
    variant     label for a second input form (e.g. ``"onehot"`` targets)
    dims        names of the sizes ``make_inputs`` takes
    make_inputs ``(rng, dtype, sizes, scale) -> args``
    reduction   ``sizes -> int``: longest sum behind one output entry
    magnitude   ``args -> float``: size of the terms summed, scales ``atol``
    bench_sizes sizes at which ``bench/`` times the operation
    mutates     indices of the arguments the kernel updates in place: every backend gets
                its own copy of the inputs, and these arguments are compared after the call
    nonfinite   indices of the arguments that NaN/inf entries go into (None: every float
                array argument), and ``nonfinite_values`` the values that go in
    float64_outputs indices of the results that are float64 whatever the input dtype (every
                other float output has the input dtype)
    """

    name: str
    dims: tuple[str, ...]
    make_inputs: Callable
    reduction: Callable[[dict], int] = lambda s: 1
    magnitude: Callable[[tuple], float] = lambda args: 1.0
    variant: str = ""
    bench_sizes: tuple[dict, ...] = field(default=())
    mutates: tuple[int, ...] = ()
    nonfinite: tuple[int, ...] | None = None
    nonfinite_values: tuple[float, ...] = (np.nan, np.inf, -np.inf)
    float64_outputs: tuple[int, ...] = ()

    def __post_init__(self):
        if self.mutates and self.bench_sizes:
            raise ValueError(f"{self.id}: bench/ times every backend on one shared set of arguments, so an "
                             "operation that updates its arguments in place cannot have bench_sizes")

    @property
    def id(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name

    def impl(self, backend: str) -> Callable:
        return getattr(get_backend(backend), self.name)


def tolerance(op: Operation, dtype, sizes: dict, args: tuple) -> dict:
    """``rtol``/``atol`` for comparing two backends on ``op``.

    ``atol`` grows with the reduction length and the magnitude of the summed
    terms: a 784-long float32 dot product legitimately differs from BLAS by
    ~1e-4 of its terms' size.
    """
    base = TOLERANCES[np.dtype(dtype)]
    n = max(1, op.reduction(sizes))
    return {"rtol": base["rtol"] * np.sqrt(n), "atol": base["atol"] * n * max(1.0, op.magnitude(args))}


def _matmul_inputs(rng, dtype, s, scale):
    return _normal(rng, (s["N"], s["M"]), dtype, scale), _normal(rng, (s["M"], s["P"]), dtype, scale)


def _linear_fwd_inputs(rng, dtype, s, scale):
    return (
        _with_exact_zeros(rng, (s["B"], s["I"]), dtype, scale),
        _normal(rng, (s["I"], s["O"]), dtype, scale),
        _normal(rng, (s["O"],), dtype, scale),
    )


def _linear_bwd_inputs(rng, dtype, s, scale):
    return (
        _with_exact_zeros(rng, (s["B"], s["I"]), dtype, scale),
        _normal(rng, (s["I"], s["O"]), dtype, scale),
        _normal(rng, (s["B"], s["O"]), dtype, scale),
    )


def _ce_inputs(targets, logits):
    """``targets``: "labels" (int64 (B,)), "onehot" or "soft" (non-negative rows not summing to 1)."""
    def make(rng, dtype, s, scale):
        B, K = s["B"], s["K"]
        first = _normal(rng, (B, K), dtype, scale) if logits else _probs(rng, B, K, dtype, scale)
        target = {"labels": lambda: _labels(rng, B, K), "onehot": lambda: _one_hot(rng, B, K, dtype),
                  "soft": lambda: _soft(rng, B, K, dtype)}[targets]()
        return first, target

    return make


def _target_mass(a) -> float:
    """Largest row sum of dense targets (1 for labels)."""
    t = a[1]
    return float(np.max(t.sum(axis=1))) if t.ndim == 2 and t.size else 1.0


def _sgd_inputs(loss_kind):
    """A random MLP for ``sgd_epoch``: depth ``1 + (L - 1) % 4`` (1-4), hidden widths 1-8,
    activation codes drawn per layer (mixed), each layer's bias trained or not, B samples of
    width I, K outputs, a shuffled order with repeats, a learning rate small enough not to
    diverge (divergence would amplify rounding differences).  ``"large"`` scales the inputs
    by 1e4 (logits of ~1e4) and the learning rate by 1e-8, so the steps stay small."""
    def make(rng, dtype, s, scale):
        N, n0, K, L = s["B"], s["I"], s["K"], 1 + (s["L"] - 1) % 4
        widths = [n0, *(int(w) for w in rng.integers(1, 9, L - 1)), K]
        weights = tuple(_normal(rng, (a, b), dtype, scale if scale == "zeros" else "unit")
                        / np.dtype(dtype).type(np.sqrt(max(a, 1))) for a, b in zip(widths, widths[1:]))
        bias_on = rng.integers(0, 2, L).astype(dtype)
        biases = tuple(_normal(rng, (b,), dtype, scale if scale == "zeros" else "unit") * on
                       for b, on in zip(widths[1:], bias_on))
        activations = rng.integers(0, len(ACTIVATION_CODES), L).astype(np.int64)
        X = _with_exact_zeros(rng, (N, n0), dtype, scale)
        if loss_kind == SOFTMAX_CE:
            labels, targets = _labels(rng, N, K), np.zeros((0, K), dtype)
        else:
            labels, targets = np.zeros(0, np.int64), _normal(rng, (N, K), dtype, "unit")
        order = rng.integers(0, N, size=N + N // 2) if N else np.zeros(0, np.int64)
        lr = np.dtype(dtype).type(0.1 / (n0 + 8) * (1e-8 if scale == "large" else 1))   # stable for MSE too
        return weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr

    return make


def _sgd_reduction(s: dict) -> int:
    """The longest dot product of a forward or backward step (input, hidden <= 8, output widths)."""
    return s["I"] + 8 + s["K"]


def _sgd_magnitude(a) -> float:
    """Size of the first layer's terms (x_k W_kj), which bounds the logits' and losses' error.
    In the "large" case this also loosens the comparison of the weights (changed there by
    steps of ~1e-8); the other scales compare them at the weights' own size."""
    return max(1.0, _absmax(a[5])) * max(1.0, *(_absmax(w) for w in a[0])) + _absmax(a[7])


def _minibatch_inputs(loss_kind):
    """``sgd_epoch``'s random MLP and data (:func:`_sgd_inputs`; N = B samples, an order of
    M = B + B // 2 indices) for ``sgd_minibatch_epoch``, plus: batch size S (hypothesis draws
    1-40, so it may divide M or not, or exceed it), momentum 0 or 0.9 (half the draws each)
    with velocities of small random values (a later epoch's; the step must use them) or
    ``(0, 0)``/``(0,)`` dummies when it is 0, and biases that are not trained set to random
    values rather than 0 (the forward pass must still add them)."""
    sgd = _sgd_inputs(loss_kind)

    def make(rng, dtype, s, scale):
        args = sgd(rng, dtype, s, scale)
        weights, biases, bias_on = args[:3]
        fill = "zeros" if scale == "zeros" else "unit"
        biases = tuple(b if on else _normal(rng, b.shape, dtype, fill) for b, on in zip(biases, bias_on))
        momentum = np.dtype(dtype).type(rng.choice((0.0, 0.9)))
        if momentum:
            vel_w = tuple(_normal(rng, w.shape, dtype, fill) * np.dtype(dtype).type(0.1) for w in weights)
            vel_b = tuple(_normal(rng, b.shape, dtype, fill) * np.dtype(dtype).type(0.1) for b in biases)
        else:
            vel_w = tuple(np.zeros((0, 0), dtype) for _ in weights)
            vel_b = tuple(np.zeros(0, dtype) for _ in biases)
        return (weights, biases, *args[2:], s["S"], momentum, vel_w, vel_b)

    return make


def _compact_inputs(loss_kind):
    """``sgd_epoch``'s random MLP and data (:func:`_sgd_inputs`) for ``sgd_epoch_compact``, plus a
    block of S samples (hypothesis draws 1-40: it may divide the M = B + B // 2 samples or not,
    or exceed them) and a random compact/direct flag per layer (mixed in one network)."""
    sgd = _sgd_inputs(loss_kind)

    def make(rng, dtype, s, scale):
        args = sgd(rng, dtype, s, scale)
        return (*args, s["S"], rng.integers(0, 2, len(args[0])).astype(np.int64))

    return make


def _compact_reduction(s: dict) -> int:
    """:func:`_sgd_reduction` plus the corrections: a pre-activation sums up to S - 1 deferred
    terms, each a dot product over the layer's inputs."""
    return _sgd_reduction(s) + (s["S"] - 1) * (s["I"] + 8)


def _minibatch_reduction(s: dict) -> int:
    """:func:`_sgd_reduction` plus the batch: each weight gradient sums ``min(S, M)`` rows."""
    return _sgd_reduction(s) + min(s["S"], s["B"] + s["B"] // 2)


def _minibatch_magnitude(a) -> float:
    """:func:`_sgd_magnitude`, and with momentum also the size of the gradient terms, as the
    velocities (sums of gradients ``sum_i a_i delta_i``) are compared too.  For softmax
    cross-entropy ``|B delta| <= 1`` at the output, so those terms are no larger than the first
    layer's; for MSE ``B delta = 2 (pred - t) / K`` grows with the predictions, and the terms
    with them: ``|x|`` times the first layer's (~1e8 for inputs of +-1e4)."""
    magnitude = _sgd_magnitude(a)
    if a[11] != 0 and a[4] == MSE:
        magnitude *= max(1.0, _absmax(a[5]))
    return magnitude


# ---- input generators of the issue-13 groups (each group keeps to its own section) ----------------
# -- layers (issue 13): generators --
def _bi(rng, dt, s, sc):
    return _normal(rng, (s["B"], s["I"]), dt, sc)


def _elementwise_inputs(backward=False, extra=(), from_output=None, zeros=False):
    """x (B, I) [, dy (B, I)] [, scalars]; ``from_output`` maps x to the saved output (tanh's y);
    ``zeros``: x with exact zeros (the kink of LeakyReLU)."""
    def make(rng, dt, s, sc):
        x = (_with_exact_zeros if zeros else _normal)(rng, (s["B"], s["I"]), dt, sc)
        if from_output is not None:
            x = from_output(x)
        args = (x, _bi(rng, dt, s, sc)) if backward else (x,)
        return (*args, *extra)

    return make


def _dropout_inputs(p):
    """x (or dy), a 0/1 mask of x's dtype (keep rate 1 - p), scale 1 / (1 - p) (0 for p = 1)."""
    def make(rng, dt, s, sc):
        mask = (rng.random((s["B"], s["I"])) >= p).astype(dt)
        return _bi(rng, dt, s, sc), mask, 0.0 if p == 1 else 1 / (1 - p)

    return make


def _affine(rng, dt, s, sc):
    """gamma around 1, beta around 0 (both scaled like x for ``"large"``; zeros for ``"zeros"``)."""
    return _normal(rng, (s["I"],), dt, sc) + dt(0 if sc == "zeros" else 1), _normal(rng, (s["I"],), dt, sc)


def _norm_fwd_inputs(rng, dt, s, sc):
    gamma, beta = _affine(rng, dt, s, sc)
    return _bi(rng, dt, s, sc), gamma, beta, 1e-5


def _batchnorm_eval_inputs(rng, dt, s, sc):
    x = _bi(rng, dt, s, sc)
    running_mean = _normal(rng, (s["I"],), dt, sc)
    running_var = np.abs(_normal(rng, (s["I"],), dt, sc)) ** 2
    return (x, running_mean, running_var, *_affine(rng, dt, s, sc), 1e-5)


def _norm_bwd_inputs(axis):
    """x, dy, gamma, and the mean and biased variance of x over ``axis`` (0: BatchNorm1d, per
    feature; 1: LayerNorm, per row; computed in float64, zeros/ones where the axis is empty)."""
    def make(rng, dt, s, sc):
        x, dy = _bi(rng, dt, s, sc), _bi(rng, dt, s, sc)
        gamma = _affine(rng, dt, s, sc)[0]
        x64 = x.astype(np.float64)
        if x.shape[axis]:
            mean, var = x64.mean(axis=axis), x64.var(axis=axis)
        else:
            mean, var = np.zeros(x.shape[1 - axis]), np.ones(x.shape[1 - axis])
        return x, dy, gamma, mean.astype(dt), var.astype(dt), 1e-5

    return make


def _rstd_max(var, eps) -> float:
    with np.errstate(all="ignore"):
        r = 1 / np.sqrt(var.astype(np.float64) + eps)
    r = r[np.isfinite(r)]
    return float(r.max()) if r.size else 1.0


def _norm_fwd_magnitude(a) -> float:
    """|y| <= |gamma| |xhat| + |beta| with |xhat| <= sqrt(n); the statistics as large as x (x**2
    for the variance, a sum of positive terms: covered by rtol)."""
    n = max(a[0].shape) if a[0].size else 1
    return max(1.0, _absmax(a[1])) * np.sqrt(n) + _absmax(a[2]) + _absmax(a[0])


def _norm_bwd_magnitude(a) -> float:
    """dx: |gamma| rstd |dy| (1 + 1 + xhat**2), xhat = (x - mean) rstd; dgamma: |dy| |xhat|."""
    x, dy, gamma, mean, var, eps = a
    r = _rstd_max(var, eps)
    xhat = r * (_absmax(x) + _absmax(mean))
    return max(1.0, _absmax(dy)) * max(1.0, _absmax(gamma)) * max(1.0, r) * max(1.0, xhat) ** 2
# -- end layers: generators --


# -- losses (issue 13): generators --
def _unit_targets(rng, shape, dtype, scale):
    """Targets in [0, 1], a third of them exactly 0 or 1 (all 0 for ``"zeros"``)."""
    if scale == "zeros":
        return np.zeros(shape, dtype=dtype)
    t = rng.random(shape)
    hard = rng.random(shape) < 1 / 3
    t[hard] = rng.integers(0, 2, size=int(hard.sum()))
    return t.astype(dtype)


def _bce_inputs(rng, dtype, s, scale):
    """Probabilities ``sigmoid(z)`` (``"large"``: z of +-1e4, so mostly exactly 0 and 1), a tenth
    of them set to exactly 0 or 1 in any case, and targets in [0, 1]."""
    shape = (s["B"], s["I"])
    p = sigmoid_forward(_normal(rng, shape, np.float64, scale))
    if scale != "zeros":
        ends = rng.random(shape) < 0.1
        p[ends] = rng.integers(0, 2, size=int(ends.sum()))
    else:
        p[:] = 0
    return p.astype(dtype), _unit_targets(rng, shape, dtype, scale)


def _bce_logits_inputs(rng, dtype, s, scale):
    shape = (s["B"], s["I"])
    return _with_exact_zeros(rng, shape, dtype, scale), _unit_targets(rng, shape, dtype, scale)


def _regression_inputs(huber):
    """Predictions and targets with a fifth of the differences exactly 0; for ``huber`` also
    ``delta`` (1, or 0.5 / 2.5 on a third of the draws each) and some differences exactly
    ``+-delta`` (target 0, prediction ``+-delta``)."""
    def make(rng, dtype, s, scale):
        shape = (s["B"], s["I"])
        pred, target = _normal(rng, shape, dtype, scale), _normal(rng, shape, dtype, scale)
        same = rng.random(shape) < 0.2
        target[same] = pred[same]
        if not huber:
            return pred, target
        delta = float(rng.choice((0.5, 1.0, 2.5)))
        if scale != "zeros":
            at = rng.random(shape) < 0.2
            target[at] = 0
            pred[at] = np.where(rng.random(int(at.sum())) < 0.5, -delta, delta)
        return pred, target, delta

    return make


def _nll_inputs(targets):
    """Log-probabilities (log-softmax of the scale's logits: down to ~-1e5 for ``"large"``)
    and ``"labels"`` or ``"soft"`` targets (as for the cross-entropy kernels)."""
    def make(rng, dtype, s, scale):
        B, K = s["B"], s["K"]
        z = _normal(rng, (B, K), np.float64, scale)
        logp = z - (z.max(axis=1, keepdims=True) + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(
            axis=1, keepdims=True))) if K and B else z
        target = _labels(rng, B, K) if targets == "labels" else _soft(rng, B, K, dtype)
        return logp.astype(dtype), target

    return make


_LOSS_BENCH = ({"B": 1, "I": 10}, {"B": 60000, "I": 10}, {"B": 1024, "I": 512})
# -- end losses: generators --


# -- optimiser steps (issue 13): generators --
def _step_arrays(rng, dtype, s, scale):
    """A weight matrix w (I, O) and its gradient g, and ``like(kind)`` for state buffers of w's
    shape: ``"moment"`` (~0.1 of g's size, any sign), ``"square"`` (non-negative, ~g^2) or
    ``"dummy"`` ((0,): a buffer the options do not read)."""
    shape = (s["I"], s["O"])
    w, g = _normal(rng, shape, dtype, scale), _normal(rng, shape, dtype, scale)

    def like(kind):
        if kind == "dummy":
            return np.zeros(0, dtype)
        x = _normal(rng, shape, dtype, scale)
        return x * np.dtype(dtype).type(0.1) if kind == "moment" else x * x

    return w, g, like


def _sgd_step_inputs(momentum):
    """``sgd_step``: plain SGD (``momentum`` False: buf is a dummy) or momentum 0.9 with a random
    dampening, Nesterov (without dampening) and first step; weight decay and l1 on or off."""
    def make(rng, dtype, s, scale):
        w, g, like = _step_arrays(rng, dtype, s, scale)
        dampening = float(rng.choice((0.0, 0.1))) if momentum else 0.0
        nesterov = bool(momentum and dampening == 0 and rng.integers(2))
        return (w, g, like("moment" if momentum else "dummy"), 0.1, 0.9 if momentum else 0.0, dampening,
                float(rng.choice((0.0, 0.01))), nesterov, bool(rng.integers(2)), float(rng.choice((0.0, 1e-3))))

    return make


def _adam_step_inputs(amsgrad, decoupled):
    """``adam_step``: Adam or AdamW (``decoupled``), with or without amsgrad (else max_exp_avg_sq is
    a dummy), a step count in [1, 50), beta1 0.9 or 0.3 (PyTorch's lerp takes its other form when
    1 - beta1 >= 0.5), weight decay and l1 on or off; the second moments are non-negative."""
    def make(rng, dtype, s, scale):
        w, g, like = _step_arrays(rng, dtype, s, scale)
        return (w, g, like("moment"), like("square"), like("square" if amsgrad else "dummy"),
                int(rng.integers(1, 50)), 1e-3, float(rng.choice((0.9, 0.3))), 0.999, 1e-8,
                float(rng.choice((0.0, 0.01))), amsgrad, decoupled, float(rng.choice((0.0, 1e-3))))

    return make


def _rmsprop_step_inputs(centered, momentum):
    """``rmsprop_step``: centered or not (else grad_avg is a dummy), momentum 0.9 or 0 (else buf is
    a dummy), alpha 0.99 or 0.3 (the lerp's two forms), weight decay and l1 on or off.  Centered,
    ``square_avg >= grad_avg^2 + 0.5 x (g's size)^2``, so that ``square_avg - grad_avg^2`` stays
    clear of 0 after the step (rounding cannot turn its square root into NaN in one backend only)."""
    def make(rng, dtype, s, scale):
        w, g, like = _step_arrays(rng, dtype, s, scale)
        grad_avg = like("moment" if centered else "dummy")
        square_avg = like("square")
        if centered:
            size = {"unit": 1.0, "large": 1e4, "zeros": 0.0}[scale]
            square_avg = (square_avg + grad_avg * grad_avg + np.dtype(dtype).type(0.5 * size * size)).astype(dtype)
        return (w, g, square_avg, grad_avg, like("moment" if momentum else "dummy"), 1e-2,
                float(rng.choice((0.99, 0.3))), 1e-8, float(rng.choice((0.0, 0.01))), 0.9 if momentum else 0.0,
                centered, float(rng.choice((0.0, 1e-3))))

    return make


def _adagrad_step_inputs(rng, dtype, s, scale):
    """``adagrad_step``: a non-negative sum, a step count in [1, 50), lr_decay, weight decay and l1
    each on or off."""
    w, g, like = _step_arrays(rng, dtype, s, scale)
    return (w, g, like("square"), int(rng.integers(1, 50)), 1e-2, float(rng.choice((0.0, 0.01))),
            float(rng.choice((0.0, 0.01))), 1e-10, float(rng.choice((0.0, 1e-3))))


def _step_magnitude(a) -> float:
    """The weights' size: the update is computed in the same operations in both backends."""
    return max(1.0, _absmax(a[0]))
# -- end optimiser steps: generators --


_BK_BENCH = ({"B": 1, "K": 10}, {"B": 60000, "K": 10}, {"B": 1024, "K": 512})
_BI_BENCH = ({"B": 1, "I": 784}, {"B": 64, "I": 512}, {"B": 60000, "I": 10}, {"B": 1024, "I": 512},
             {"B": 60000, "I": 784})
_LIN_BENCH = ({"B": 1, "I": 784, "O": 512}, {"B": 64, "I": 784, "O": 512}, {"B": 1024, "I": 784, "O": 512})
_MM_BENCH = tuple({"N": n, "M": n, "P": n} for n in (64, 128, 256, 512, 1024, 2048))

OPERATIONS: tuple[Operation, ...] = (
    Operation("matmul_naive", ("N", "M", "P"), _matmul_inputs,
              reduction=lambda s: s["M"], magnitude=lambda a: _absmax(a[0]) * _absmax(a[1]),
              bench_sizes=_MM_BENCH[:3]),
    Operation("matmul", ("N", "M", "P"), _matmul_inputs,
              reduction=lambda s: s["M"], magnitude=lambda a: _absmax(a[0]) * _absmax(a[1]),
              bench_sizes=_MM_BENCH),
    Operation("linear_forward", ("B", "I", "O"), _linear_fwd_inputs,
              reduction=lambda s: s["I"] + 1,
              magnitude=lambda a: _absmax(a[0]) * _absmax(a[1]) + _absmax(a[2]),
              bench_sizes=_LIN_BENCH),
    Operation("linear_backward", ("B", "I", "O"), _linear_bwd_inputs,
              reduction=lambda s: max(s["B"], s["O"]),
              magnitude=lambda a: _absmax(a[2]) * max(_absmax(a[0]), _absmax(a[1]), 1.0),
              bench_sizes=_LIN_BENCH),
    Operation("relu_forward", ("B", "I"),
              lambda rng, dt, s, sc: (_with_exact_zeros(rng, (s["B"], s["I"]), dt, sc),),
              bench_sizes=_BI_BENCH),
    Operation("relu_backward", ("B", "I"),
              lambda rng, dt, s, sc: (_with_exact_zeros(rng, (s["B"], s["I"]), dt, sc),
                                      _normal(rng, (s["B"], s["I"]), dt, sc)),
              bench_sizes=_BI_BENCH),
    Operation("sigmoid_forward", ("B", "I"),
              lambda rng, dt, s, sc: (_normal(rng, (s["B"], s["I"]), dt, sc),),
              bench_sizes=_BI_BENCH),
    Operation("sigmoid_backward", ("B", "I"),
              lambda rng, dt, s, sc: (sigmoid_forward(_normal(rng, (s["B"], s["I"]), dt, sc)),
                                      _normal(rng, (s["B"], s["I"]), dt, sc)),
              bench_sizes=_BI_BENCH),
    Operation("softmax", ("B", "K"),
              lambda rng, dt, s, sc: (_normal(rng, (s["B"], s["K"]), dt, sc),),
              reduction=lambda s: s["K"], bench_sizes=_BK_BENCH),
    Operation("softmax_jacobian", ("B", "K"),
              lambda rng, dt, s, sc: (_probs(rng, s["B"], s["K"], dt, sc),),
              bench_sizes=({"B": 1, "K": 10}, {"B": 6000, "K": 10})),
    Operation("softmax_backward", ("B", "K"),
              lambda rng, dt, s, sc: (_probs(rng, s["B"], s["K"], dt, sc),
                                      _normal(rng, (s["B"], s["K"]), dt, sc)),
              reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[1]), bench_sizes=_BK_BENCH),
    Operation("cross_entropy", ("B", "K"), _ce_inputs("labels", logits=False),
              bench_sizes=_BK_BENCH),
    Operation("cross_entropy", ("B", "K"), _ce_inputs("onehot", logits=False), variant="onehot",
              reduction=lambda s: s["K"], magnitude=lambda a: 28.0),
    Operation("cross_entropy", ("B", "K"), _ce_inputs("soft", logits=False), variant="soft",
              reduction=lambda s: s["K"], magnitude=lambda a: 28.0 * _target_mass(a)),
    Operation("cross_entropy_backward", ("B", "K"), _ce_inputs("labels", logits=False),
              bench_sizes=_BK_BENCH),
    Operation("cross_entropy_backward", ("B", "K"), _ce_inputs("onehot", logits=False),
              variant="onehot"),
    Operation("cross_entropy_backward", ("B", "K"), _ce_inputs("soft", logits=False),
              variant="soft"),
    Operation("cross_entropy_logits", ("B", "K"), _ce_inputs("labels", logits=True),
              reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[0]), bench_sizes=_BK_BENCH),
    Operation("cross_entropy_logits", ("B", "K"), _ce_inputs("onehot", logits=True),
              variant="onehot", reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[0])),
    Operation("cross_entropy_logits", ("B", "K"), _ce_inputs("soft", logits=True), variant="soft",
              reduction=lambda s: s["K"], magnitude=lambda a: max(1.0, _absmax(a[0])) * _target_mass(a)),
    Operation("softmax_cross_entropy_backward", ("B", "K"), _ce_inputs("labels", logits=False),
              bench_sizes=_BK_BENCH),
    Operation("softmax_cross_entropy_backward", ("B", "K"), _ce_inputs("onehot", logits=False),
              variant="onehot"),
    Operation("softmax_cross_entropy_backward", ("B", "K"), _ce_inputs("soft", logits=False),
              variant="soft", reduction=lambda s: s["K"], magnitude=lambda a: _target_mass(a)),
    Operation("mse", ("B", "K"),
              lambda rng, dt, s, sc: (_normal(rng, (s["B"], s["K"]), dt, sc),
                                      _normal(rng, (s["B"], s["K"]), dt, sc)),
              reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[0] - a[1]) ** 2,
              bench_sizes=_BK_BENCH),
    Operation("mse_backward", ("B", "K"),
              lambda rng, dt, s, sc: (_normal(rng, (s["B"], s["K"]), dt, sc),
                                      _normal(rng, (s["B"], s["K"]), dt, sc)),
              magnitude=lambda a: _absmax(a[0] - a[1]), bench_sizes=_BK_BENCH),
    # The fused per-sample SGD epoch against its NumPy loop.  It updates weights and biases
    # (arguments 0 and 1) in place.  Non-finite values go into the data (X, targets) only, and
    # only NaN: the compiled kernel skips input rows that are exactly zero, so a non-finite
    # *weight* in such a row does not reach its outputs there, and an inf input can make one
    # (a saturated sigmoid gives a finite loss, the update inf * delta an infinite weight).
    # A NaN input gives a NaN loss at once, and both stop there.  See kernels.reference.sgd_epoch.
    # Benchmarked by bench/cases.py's fused group, not here (see Operation.__post_init__).
    Operation("sgd_epoch", ("B", "I", "K", "L"), _sgd_inputs(SOFTMAX_CE), mutates=(0, 1), nonfinite=(5,),
              nonfinite_values=(np.nan,), reduction=_sgd_reduction, magnitude=_sgd_magnitude),
    Operation("sgd_epoch", ("B", "I", "K", "L"), _sgd_inputs(MSE), variant="mse", mutates=(0, 1),
              nonfinite=(5, 7), nonfinite_values=(np.nan,), reduction=_sgd_reduction, magnitude=_sgd_magnitude),
    # Compact (deferred) per-sample updates against the plain per-sample loop: the same SGD,
    # summed in another order; non-finite values as for sgd_epoch.
    Operation("sgd_epoch_compact", ("B", "I", "K", "L", "S"), _compact_inputs(SOFTMAX_CE), mutates=(0, 1),
              nonfinite=(5,), nonfinite_values=(np.nan,), reduction=_compact_reduction, magnitude=_sgd_magnitude),
    Operation("sgd_epoch_compact", ("B", "I", "K", "L", "S"), _compact_inputs(MSE), variant="mse",
              mutates=(0, 1), nonfinite=(5, 7), nonfinite_values=(np.nan,), reduction=_compact_reduction,
              magnitude=_sgd_magnitude),
    # The fused mini-batch epoch (BLAS GEMMs) against its NumPy loop.  It updates weights,
    # biases and, with momentum, the velocities (arguments 0, 1, 12, 13) in place; its batch
    # losses (result 0) are float64.  NaN and +-inf go into the data: unlike the per-sample
    # kernel it skips no zero input, so both compute 0 * inf = NaN alike.  Tolerances: the
    # registry's table scaled as for sgd_epoch, the reduction also counting the batch rows
    # summed into each weight gradient, the magnitude also the gradient terms that make up
    # the velocities (see tolerance(), _minibatch_reduction, _minibatch_magnitude).
    Operation("sgd_minibatch_epoch", ("B", "I", "K", "L", "S"), _minibatch_inputs(SOFTMAX_CE),
              mutates=(0, 1, 12, 13), float64_outputs=(0,), nonfinite=(5,),
              reduction=_minibatch_reduction, magnitude=_minibatch_magnitude),
    Operation("sgd_minibatch_epoch", ("B", "I", "K", "L", "S"), _minibatch_inputs(MSE), variant="mse",
              mutates=(0, 1, 12, 13), float64_outputs=(0,), nonfinite=(5, 7),
              reduction=_minibatch_reduction, magnitude=_minibatch_magnitude),
    # -- layers (issue 13): activations, dropout, normalisation --
    Operation("tanh_forward", ("B", "I"), _elementwise_inputs(), bench_sizes=_BI_BENCH),
    Operation("tanh_backward", ("B", "I"), _elementwise_inputs(True, from_output=np.tanh), bench_sizes=_BI_BENCH),
    Operation("leaky_relu_forward", ("B", "I"), _elementwise_inputs(extra=(0.01,), zeros=True),
              bench_sizes=_BI_BENCH),
    Operation("leaky_relu_forward", ("B", "I"), _elementwise_inputs(extra=(-1.5,), zeros=True), variant="slope"),
    Operation("leaky_relu_backward", ("B", "I"), _elementwise_inputs(True, extra=(0.01,), zeros=True),
              bench_sizes=_BI_BENCH),
    Operation("leaky_relu_backward", ("B", "I"), _elementwise_inputs(True, extra=(0.3,), zeros=True),
              variant="slope"),
    Operation("gelu_forward", ("B", "I"), _elementwise_inputs(extra=("none",)), magnitude=lambda a: _absmax(a[0]),
              bench_sizes=_BI_BENCH),
    Operation("gelu_forward", ("B", "I"), _elementwise_inputs(extra=("tanh",)), variant="tanh",
              magnitude=lambda a: _absmax(a[0]), bench_sizes=_BI_BENCH),
    Operation("gelu_backward", ("B", "I"), _elementwise_inputs(True, extra=("none",)),
              magnitude=lambda a: _absmax(a[1]) * max(1.0, _absmax(a[0])), bench_sizes=_BI_BENCH),
    Operation("gelu_backward", ("B", "I"), _elementwise_inputs(True, extra=("tanh",)), variant="tanh",
              magnitude=lambda a: _absmax(a[1]) * max(1.0, _absmax(a[0])), bench_sizes=_BI_BENCH),
    Operation("dropout_forward", ("B", "I"), _dropout_inputs(0.5), bench_sizes=_BI_BENCH),
    Operation("dropout_forward", ("B", "I"), _dropout_inputs(1.0), variant="p1"),
    Operation("dropout_backward", ("B", "I"), _dropout_inputs(0.2), bench_sizes=_BI_BENCH),
    Operation("batchnorm_forward", ("B", "I"), _norm_fwd_inputs, reduction=lambda s: s["B"],
              magnitude=_norm_fwd_magnitude, bench_sizes=_BI_BENCH[2:4]),
    Operation("batchnorm_eval", ("B", "I"), _batchnorm_eval_inputs, bench_sizes=_BI_BENCH[2:4],
              magnitude=lambda a: (_absmax(a[0]) + _absmax(a[1])) * _rstd_max(a[2], a[5]) * _absmax(a[3])
              + _absmax(a[4])),
    Operation("batchnorm_backward", ("B", "I"), _norm_bwd_inputs(0), reduction=lambda s: s["B"],
              magnitude=_norm_bwd_magnitude, bench_sizes=_BI_BENCH[2:4]),
    Operation("layernorm_forward", ("B", "I"), _norm_fwd_inputs, reduction=lambda s: s["I"],
              magnitude=_norm_fwd_magnitude, bench_sizes=_BI_BENCH[2:4]),
    Operation("layernorm_backward", ("B", "I"), _norm_bwd_inputs(1), reduction=lambda s: max(s["B"], s["I"]),
              magnitude=_norm_bwd_magnitude, bench_sizes=_BI_BENCH[2:4]),
    # -- end layers --

    # -- losses (issue 13) --
    # Elementwise losses of any shape (here (B, I)) and their elementwise gradients; nll on
    # (B, K) log-probabilities with labels (PyTorch's NLLLoss) or dense targets.
    Operation("bce", ("B", "I"), _bce_inputs, bench_sizes=_LOSS_BENCH),
    Operation("bce_backward", ("B", "I"), _bce_inputs, bench_sizes=_LOSS_BENCH),
    Operation("bce_with_logits", ("B", "I"), _bce_logits_inputs, magnitude=lambda a: _absmax(a[0]),
              bench_sizes=_LOSS_BENCH),
    Operation("bce_with_logits_backward", ("B", "I"), _bce_logits_inputs, bench_sizes=_LOSS_BENCH),
    Operation("l1", ("B", "I"), _regression_inputs(huber=False), bench_sizes=_LOSS_BENCH),
    Operation("l1_backward", ("B", "I"), _regression_inputs(huber=False), bench_sizes=_LOSS_BENCH),
    Operation("huber", ("B", "I"), _regression_inputs(huber=True), bench_sizes=_LOSS_BENCH),
    Operation("huber_backward", ("B", "I"), _regression_inputs(huber=True), bench_sizes=_LOSS_BENCH),
    Operation("nll", ("B", "K"), _nll_inputs("labels"), bench_sizes=_BK_BENCH),
    Operation("nll", ("B", "K"), _nll_inputs("soft"), variant="soft", reduction=lambda s: s["K"],
              magnitude=lambda a: max(1.0, _absmax(a[0])) * _target_mass(a)),
    Operation("nll_backward", ("B", "K"), _nll_inputs("labels"), bench_sizes=_BK_BENCH),
    Operation("nll_backward", ("B", "K"), _nll_inputs("soft"), variant="soft"),
    # -- end losses --

    # -- optimiser steps (issue 13) --
    # One PyTorch optimiser step on a weight matrix, updating it and its state buffers in place
    # (w and the buffers: arguments 0 and 2..).  Buffers the options do not read are (0,) dummies.
    Operation("sgd_step", ("I", "O"), _sgd_step_inputs(momentum=False), mutates=(0, 2),
              magnitude=_step_magnitude),
    Operation("sgd_step", ("I", "O"), _sgd_step_inputs(momentum=True), variant="momentum", mutates=(0, 2),
              magnitude=_step_magnitude),
    Operation("adam_step", ("I", "O"), _adam_step_inputs(amsgrad=False, decoupled=False), mutates=(0, 2, 3, 4),
              magnitude=_step_magnitude),
    Operation("adam_step", ("I", "O"), _adam_step_inputs(amsgrad=True, decoupled=False), variant="amsgrad",
              mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("adam_step", ("I", "O"), _adam_step_inputs(amsgrad=False, decoupled=True), variant="adamw",
              mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("adam_step", ("I", "O"), _adam_step_inputs(amsgrad=True, decoupled=True), variant="adamw_amsgrad",
              mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("rmsprop_step", ("I", "O"), _rmsprop_step_inputs(centered=False, momentum=False),
              mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("rmsprop_step", ("I", "O"), _rmsprop_step_inputs(centered=False, momentum=True), variant="momentum",
              mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("rmsprop_step", ("I", "O"), _rmsprop_step_inputs(centered=True, momentum=False), variant="centered",
              mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("rmsprop_step", ("I", "O"), _rmsprop_step_inputs(centered=True, momentum=True),
              variant="centered_momentum", mutates=(0, 2, 3, 4), magnitude=_step_magnitude),
    Operation("adagrad_step", ("I", "O"), _adagrad_step_inputs, mutates=(0, 2), magnitude=_step_magnitude),
    # -- end optimiser steps --
)


def operation(op_id: str) -> Operation:
    """Look up an :class:`Operation` by its ``id`` (e.g. ``"cross_entropy[onehot]"``)."""
    for op in OPERATIONS:
        if op.id == op_id:
            return op
    raise KeyError(f"unknown operation {op_id!r}; known: {', '.join(o.id for o in OPERATIONS)}")
