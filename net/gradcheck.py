"""Finite-difference gradient checker for layers and models (float64).

>>> errors = gradcheck(model, CrossEntropyLoss(), x, y)
>>> max(errors.values()) < 1e-6  # wrong backward: order 1
True

ReLU has a kink at 0, where no finite difference matches the gradient: a check
whose step moves a ReLU input across 0 (e.g. an input row x = 0 with b = 0, so
the pre-activation is exactly 0) measures the kink, not the backward.  Such
checks are detected (the ReLU's on/off pattern changes between w - eps v,
w and w + eps v), left out of the error, and counted in one :class:`KinkWarning`.
"""
from __future__ import annotations

import warnings

import numpy as np

from .layers import ReLU
from .model import Sequential


class KinkWarning(UserWarning):
    """Some finite differences crossed a ReLU kink and were left out of the errors."""


#: Denominator floor: a zero gradient measured by differences carries ~1e-10 of
#: round-off, which must not read as a large relative error.
FLOOR = 1e-4


def _rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), FLOOR)


def gradcheck(model, loss, x, y, *, eps: float = 1e-6, max_entries: int = 64, directions: int = 8,
              rng=None) -> dict[str, float]:
    """Compare analytic gradients with central differences; return max relative error per array.

    Parameters
    ----------
    model : a layer or :class:`~net.Sequential` with float64 parameters
    loss : a loss object (``forward(pred, target) -> float``, ``backward()``)
    x : (B, in) float64 input; y : targets for ``loss``
    eps : finite-difference step
    max_entries : arrays up to this size are checked entry by entry; larger ones
        along ``directions`` random unit directions ``v`` (``<grad, v>`` against
        ``(L(w + eps v) - L(w - eps v)) / (2 eps)``), cheap even for 784x512.
    rng : seed or Generator for the entries/directions drawn

    Returns ``{"input": err, "0.Linear.W": err, ...}``: a correct backward gives
    errors around 1e-7 or less; a wrong one gives errors of order 1.  Checks whose
    step crosses a ReLU kink are left out (replaced by single entries for arrays
    checked along directions) and reported in one :class:`KinkWarning`; an array
    with no other check keeps them in its error.
    """
    layers = model.layers if isinstance(model, Sequential) else [model]
    for layer in layers:
        for name, p in getattr(layer, "params", {}).items():
            if p.dtype != np.float64:
                raise ValueError(
                    f"gradcheck needs float64 parameters ({layer!r}.{name} is {p.dtype}); "
                    "build the layers with dtype=np.float64"
                )
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = np.array(x, dtype=np.float64)

    def objective() -> tuple[float, list]:
        """Loss at the current point, and the on/off pattern of every ReLU input."""
        h, pattern = x, []
        for layer in layers:
            if isinstance(layer, ReLU):
                pattern.append(np.asarray(h) > 0)
            h = layer.forward(h)
        return loss.forward(h, y), pattern

    _, base = objective()
    dx = model.backward(loss.backward())
    arrays = [("input", x, np.array(dx, dtype=np.float64))]
    for i, layer in enumerate(layers):
        for name, p in getattr(layer, "params", {}).items():
            arrays.append((f"{i}.{type(layer).__name__}.{name}", p, layer.grads[name].copy()))

    def probe(arr, grad, v) -> tuple[float, bool]:
        """Relative error along ``v``, and whether the step moved any ReLU input across 0."""
        saved = arr.copy()
        arr += eps * v
        up, up_pattern = objective()
        arr[...] = saved - eps * v
        down, down_pattern = objective()
        arr[...] = saved
        crossed = any(not (np.array_equal(a, b) and np.array_equal(a, c))
                      for a, b, c in zip(base, up_pattern, down_pattern))
        return _rel_err(float(np.sum(grad * v)), (up - down) / (2 * eps)), crossed

    def one_hot(shape, k):
        return np.eye(1, int(np.prod(shape)), k).reshape(shape)

    errors, kinks = {}, {}
    for label, arr, grad in arrays:
        if arr.size <= max_entries:
            probes = [one_hot(arr.shape, k) for k in range(arr.size)]
        else:
            probes = [v / np.linalg.norm(v) for v in (rng.standard_normal(arr.shape) for _ in range(directions))]
        smooth, at_kink = [], []
        for v in probes:
            err, crossed = probe(arr, grad, v)
            (at_kink if crossed else smooth).append(err)
        if at_kink and arr.size > max_entries:  # a direction touches every entry: try single entries instead
            for k in rng.choice(arr.size, size=min(arr.size, 4 * directions), replace=False):
                err, crossed = probe(arr, grad, one_hot(arr.shape, k))
                (at_kink if crossed else smooth).append(err)
        errors[label] = max(smooth) if smooth else max(at_kink)
        if at_kink:
            kinks[label] = (len(at_kink), len(smooth) + len(at_kink), max(at_kink), not smooth)
    if kinks:
        warnings.warn(_kink_message(kinks), KinkWarning, stacklevel=2)
    return errors


def _kink_message(kinks: dict) -> str:
    parts = []
    for label, (n, total, worst, alone) in kinks.items():
        parts.append(f"{label}: {n} of {total}" + (" (all: its error includes them)" if alone else "")
                     + f", error there up to {worst:.2g}")
    return ("gradcheck: some finite differences crossed a ReLU kink (a ReLU input within the step of 0, e.g. "
            "x = 0 with b = 0) and measure the kink, not your backward; they are left out of the errors -- "
            + "; ".join(parts) + ". To check those entries too, move the point off the kink (e.g. add small "
            "noise to x or b).")
