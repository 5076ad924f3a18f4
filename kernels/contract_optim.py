"""The argument checks of the optimiser step kernels (issue 13), registered in :mod:`kernels.contract`.

Every step kernel takes ``(w, g, *buffers, *hyper-parameters)``:

* ``w`` a float32/float64 array with at least one axis, updated in place (so C-contiguous and
  writeable); ``g`` an array of w's dtype and shape (copied to C order if it is not);
* each state buffer the options read (e.g. ``buf`` when ``momentum != 0``) has w's dtype and
  shape and is updated in place (C-contiguous, writeable); a buffer the options do not read
  is not touched and may be any array of w's dtype (a ``(0,)`` dummy will do);
* hyper-parameters are real scalars (not booleans), passed on as Python floats -- each kernel
  derives its scalars (``1 - beta1``, bias corrections, ...) in double precision, as PyTorch
  does, then rounds them once to w's dtype; flags are booleans (or 0/1); ``step`` an integer >= 1.

Imported by :mod:`kernels.contract` only (it uses that module's helpers and messages).
"""
from __future__ import annotations

import numpy as np

from . import contract as _c


def _real(kernel, name, v) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{kernel}: {name} must be a real scalar, got {type(v).__name__}")
    return float(v)


def _flag(kernel, name, v) -> bool:
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)):
        return bool(v)
    raise TypeError(f"{kernel}: {name} must be a boolean flag (True/False or 0/1), got {v!r}")


def _step(kernel, name, v) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{kernel}: {name} must be an integer step count, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{kernel}: {name} counts the steps taken including this one, so it is >= 1; got {v}")
    return int(v)


def _param(kernel, w):
    w = _c._array(kernel, "w", w)
    if w.dtype not in _c.FLOATS:
        raise _c._dtype_error(kernel, "w", w.dtype)
    if w.ndim == 0:
        raise ValueError(f"{kernel}: w must have at least one axis, got a 0-d array; pass w.reshape(1)")
    return _c._in_place(kernel, "w", w)


def _like(kernel, name, a, w, used: bool):
    """An array of w's dtype; with ``used`` also of w's shape (and ``in_place`` unless it is g)."""
    a = _c._array(kernel, name, a)
    if a.dtype != w.dtype:
        if a.dtype not in _c.FLOATS:
            raise _c._dtype_error(kernel, name, a.dtype)
        raise TypeError(f"{kernel}: {name} has dtype {a.dtype} but w has {w.dtype}; the float arguments must "
                        f"share one dtype, e.g. {name}.astype(np.{w.dtype})")
    if not used:
        return a
    if a.shape != w.shape:
        what = "the gradient" if name == "g" else "read and updated with these options"
        raise ValueError(f"{kernel}: {name} must have w's shape {w.shape} ({what}), got {a.shape}")
    if name == "g":
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)
    return _c._in_place(kernel, name, a)


def _check(kernel, buffers, reals, flags, steps, uses):
    """A check for ``(w, g, *buffers, *scalars)``: ``reals``/``flags``/``steps`` name the scalar
    arguments (in signature order, ``kinds`` below); ``uses(values) -> tuple of bools`` says which
    buffers the options read, from the checked scalars by name."""
    names = tuple(_NAMES[kernel])
    scalar_names = names[2 + len(buffers):]
    convert = {**{n: _real for n in reals}, **{n: _flag for n in flags}, **{n: _step for n in steps}}
    assert set(convert) == set(scalar_names), kernel

    def check(args):
        w = _param(kernel, args[0])
        g = _like(kernel, "g", args[1], w, True)
        raw = args[2 + len(buffers):]
        values = {n: convert[n](kernel, n, v) for n, v in zip(scalar_names, raw)}
        used = uses(values)
        bufs = tuple(_like(kernel, n, b, w, u) for n, b, u in zip(buffers, args[2:2 + len(buffers)], used))
        return (w, g, *bufs, *(values[n] for n in scalar_names))

    return check


#: Argument names of each kernel (the same as in kernels.contract.SPECS).
_NAMES = {
    "sgd_step": ("w", "g", "buf", "lr", "momentum", "dampening", "weight_decay", "nesterov", "first", "l1"),
    "adam_step": ("w", "g", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step", "lr", "beta1", "beta2", "eps",
                  "weight_decay", "amsgrad", "decoupled", "l1"),
    "rmsprop_step": ("w", "g", "square_avg", "grad_avg", "buf", "lr", "alpha", "eps", "weight_decay", "momentum",
                     "centered", "l1"),
    "adagrad_step": ("w", "g", "state_sum", "step", "lr", "lr_decay", "weight_decay", "eps", "l1"),
}

CHECKS = {
    "sgd_step": _check("sgd_step", ("buf",), ("lr", "momentum", "dampening", "weight_decay", "l1"),
                       ("nesterov", "first"), (), lambda v: (v["momentum"] != 0,)),
    "adam_step": _check("adam_step", ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                        ("lr", "beta1", "beta2", "eps", "weight_decay", "l1"), ("amsgrad", "decoupled"), ("step",),
                        lambda v: (True, True, v["amsgrad"])),
    "rmsprop_step": _check("rmsprop_step", ("square_avg", "grad_avg", "buf"),
                           ("lr", "alpha", "eps", "weight_decay", "momentum", "l1"), ("centered",), (),
                           lambda v: (True, v["centered"], v["momentum"] > 0)),
    "adagrad_step": _check("adagrad_step", ("state_sum",), ("lr", "lr_decay", "weight_decay", "eps", "l1"), (),
                           ("step",), lambda v: (True,)),
}
