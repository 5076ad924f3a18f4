"""Finite-difference gradient checker for layers and models (float64).

>>> errors = gradcheck(model, CrossEntropyLoss(), x, y)
>>> max(errors.values()) < 1e-6  # wrong backward: order 1
True
"""
from __future__ import annotations

import numpy as np

from .model import Sequential


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
    errors around 1e-7 or less; a wrong one gives errors of order 1.
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

    def objective() -> float:
        return loss.forward(model.forward(x), y)

    objective()
    dx = model.backward(loss.backward())
    arrays = [("input", x, np.array(dx, dtype=np.float64))]
    for i, layer in enumerate(layers):
        for name, p in getattr(layer, "params", {}).items():
            arrays.append((f"{i}.{type(layer).__name__}.{name}", p, layer.grads[name].copy()))

    errors = {}
    for label, arr, grad in arrays:
        if arr.size <= max_entries:
            probes = [np.eye(1, arr.size, k).reshape(arr.shape) for k in range(arr.size)]
        else:
            probes = [v / np.linalg.norm(v) for v in (rng.standard_normal(arr.shape) for _ in range(directions))]
        worst = 0.0
        for v in probes:
            saved = arr.copy()
            arr += eps * v
            up = objective()
            arr[...] = saved - eps * v
            down = objective()
            arr[...] = saved
            worst = max(worst, _rel_err(float(np.sum(grad * v)), (up - down) / (2 * eps)))
        errors[label] = worst
    return errors
