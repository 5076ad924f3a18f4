"""One entry per kernel operation: how to make its inputs and how close the backends must agree.

Read by ``tests/`` (equivalence over hypothesis-drawn sizes) and ``bench/``
(timing at fixed sizes): adding an operation means adding one :class:`Operation`.

Input generators take ``(rng, dtype, sizes, scale)``: ``sizes`` maps the names in
``Operation.dims`` to ints, ``scale`` is one of :data:`SCALES` --
``"unit"`` (standard normal), ``"large"`` (x 1e4, e.g. logits of +-1e4) or
``"zeros"`` (all-zero float inputs; labels stay valid).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import get_backend
from .reference import sigmoid_forward, softmax

SCALES = ("unit", "large", "zeros")
DTYPES = (np.float32, np.float64)

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
    return rng.integers(0, K, size=B).astype(np.int64)


def _one_hot(rng, B, K, dtype):
    t = np.zeros((B, K), dtype=dtype)
    t[np.arange(B), _labels(rng, B, K)] = 1
    return t


def _probs(rng, B, K, dtype, scale):
    return softmax(_normal(rng, (B, K), np.float64, scale)).astype(dtype)


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
    """

    name: str
    dims: tuple[str, ...]
    make_inputs: Callable
    reduction: Callable[[dict], int] = lambda s: 1
    magnitude: Callable[[tuple], float] = lambda args: 1.0
    variant: str = ""
    bench_sizes: tuple[dict, ...] = field(default=())

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


def _ce_inputs(onehot, logits):
    def make(rng, dtype, s, scale):
        B, K = s["B"], s["K"]
        first = _normal(rng, (B, K), dtype, scale) if logits else _probs(rng, B, K, dtype, scale)
        target = _one_hot(rng, B, K, dtype) if onehot else _labels(rng, B, K)
        return first, target

    return make


_BK_BENCH = ({"B": 1, "K": 10}, {"B": 60000, "K": 10})
_BI_BENCH = ({"B": 1, "I": 784}, {"B": 64, "I": 512}, {"B": 60000, "I": 784})
_LIN_BENCH = ({"B": 1, "I": 784, "O": 512}, {"B": 64, "I": 784, "O": 512}, {"B": 1024, "I": 784, "O": 512})
_MM_BENCH = tuple({"N": n, "M": n, "P": n} for n in (64, 128, 256, 512, 1024))

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
    Operation("cross_entropy", ("B", "K"), _ce_inputs(onehot=False, logits=False),
              bench_sizes=_BK_BENCH),
    Operation("cross_entropy", ("B", "K"), _ce_inputs(onehot=True, logits=False), variant="onehot",
              reduction=lambda s: s["K"], magnitude=lambda a: 28.0),
    Operation("cross_entropy_backward", ("B", "K"), _ce_inputs(onehot=False, logits=False),
              bench_sizes=_BK_BENCH),
    Operation("cross_entropy_backward", ("B", "K"), _ce_inputs(onehot=True, logits=False),
              variant="onehot"),
    Operation("cross_entropy_logits", ("B", "K"), _ce_inputs(onehot=False, logits=True),
              reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[0]), bench_sizes=_BK_BENCH),
    Operation("cross_entropy_logits", ("B", "K"), _ce_inputs(onehot=True, logits=True),
              variant="onehot", reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[0])),
    Operation("softmax_cross_entropy_backward", ("B", "K"), _ce_inputs(onehot=False, logits=False),
              bench_sizes=_BK_BENCH),
    Operation("softmax_cross_entropy_backward", ("B", "K"), _ce_inputs(onehot=True, logits=False),
              variant="onehot"),
    Operation("mse", ("B", "K"),
              lambda rng, dt, s, sc: (_normal(rng, (s["B"], s["K"]), dt, sc),
                                      _normal(rng, (s["B"], s["K"]), dt, sc)),
              reduction=lambda s: s["K"], magnitude=lambda a: _absmax(a[0] - a[1]) ** 2,
              bench_sizes=_BK_BENCH),
    Operation("mse_backward", ("B", "K"),
              lambda rng, dt, s, sc: (_normal(rng, (s["B"], s["K"]), dt, sc),
                                      _normal(rng, (s["B"], s["K"]), dt, sc)),
              magnitude=lambda a: _absmax(a[0] - a[1]), bench_sizes=_BK_BENCH),
)


def operation(op_id: str) -> Operation:
    """Look up an :class:`Operation` by its ``id`` (e.g. ``"cross_entropy[onehot]"``)."""
    for op in OPERATIONS:
        if op.id == op_id:
            return op
    raise KeyError(f"unknown operation {op_id!r}; known: {', '.join(o.id for o in OPERATIONS)}")
