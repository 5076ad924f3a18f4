"""The kernel contract, checked before every kernel call -- one check for both backends.

Both :mod:`kernels.reference` and :mod:`kernels.jit` wrap each operation in :func:`kernel`,
so the two accept the same arguments and reject the rest with the same message, before
any compiled code runs:

* floating arrays are float32 or float64, all of one dtype, which is also the output
  dtype; integer, boolean, float16 or mixed-dtype arrays raise ``TypeError`` (convert first);
* class labels are 1-D arrays of any integer dtype with values in ``[0, K)``; they are
  passed on as int64;
* shapes agree with :data:`SPECS`: sizes with the same name are equal (``ValueError``
  otherwise); every size may be 0 (an empty batch gives empty outputs) except the class
  axis ``K``, which needs at least one entry;
* arrays that are not C-contiguous (transposed, sliced) are copied to C order; arrays a
  kernel updates in place (the weights and biases of ``sgd_epoch`` and
  ``sgd_minibatch_epoch``, and the latter's velocities when it uses momentum) must
  already be C-contiguous and writeable.

Per call this costs a few hundred nanoseconds (type, dtype, shape and flag lookups; the
label range costs one ``min`` and one ``max``).  Only NumPy is imported here.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .codes import ACTIVATION_CODES, LOSS_CODES, SOFTMAX_CE

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F32, F64)
_I64 = np.dtype(np.int64)
_ndarray = np.ndarray


class _Kind:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


class SameAs:
    """A float array of the same shape as the argument ``name``."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"SameAs({self.name!r})"


#: A float array of any shape with at least one axis.
ANY = _Kind("ANY")
#: Integer class labels (B,) in [0, K), or dense float targets (B, K).
TARGETS = _Kind("TARGETS")
#: Not an array (e.g. ``eps``): passed on unchanged.
SCALAR = _Kind("SCALAR")
#: Checked by a dedicated function (``sgd_epoch``, ``sgd_minibatch_epoch``).
CUSTOM = _Kind("CUSTOM")

#: Sizes that must be at least 1.
NONEMPTY = frozenset({"K"})

#: kernel name -> {argument name: tuple of size names | ANY | SameAs(arg) | TARGETS | SCALAR}.
SPECS: dict[str, dict] = {
    "matmul_naive": {"A": ("N", "M"), "B": ("M", "P")},
    "matmul": {"A": ("N", "M"), "B": ("M", "P")},
    "linear_forward": {"x": ("B", "I"), "W": ("I", "O"), "b": ("O",)},
    "linear_backward": {"x": ("B", "I"), "W": ("I", "O"), "dy": ("B", "O")},
    "relu_forward": {"x": ANY},
    "relu_backward": {"x": ANY, "dy": SameAs("x")},
    "sigmoid_forward": {"x": ANY},
    "sigmoid_backward": {"y": ANY, "dy": SameAs("y")},
    "softmax": {"z": ("B", "K")},
    "softmax_jacobian": {"s": ("B", "K")},
    "softmax_backward": {"s": ("B", "K"), "ds": ("B", "K")},
    "cross_entropy": {"p": ("B", "K"), "y": TARGETS, "eps": SCALAR},
    "cross_entropy_backward": {"p": ("B", "K"), "y": TARGETS, "eps": SCALAR},
    "cross_entropy_logits": {"z": ("B", "K"), "y": TARGETS},
    "softmax_cross_entropy_backward": {"p": ("B", "K"), "y": TARGETS},
    "mse": {"pred": ("B", "K"), "target": ("B", "K")},
    "mse_backward": {"pred": ("B", "K"), "target": ("B", "K")},
    "sgd_epoch": dict.fromkeys(("weights", "biases", "bias_on", "activations", "loss_kind", "X", "labels",
                                "targets", "order", "lr"), CUSTOM),
    "sgd_epoch_compact": dict.fromkeys(("weights", "biases", "bias_on", "activations", "loss_kind", "X", "labels",
                                        "targets", "order", "lr", "block", "compact"), CUSTOM),
    "sgd_minibatch_epoch": dict.fromkeys(("weights", "biases", "bias_on", "activations", "loss_kind", "X", "labels",
                                          "targets", "order", "lr", "batch_size", "momentum", "vel_w", "vel_b"),
                                         CUSTOM),
    # -- layers (issue 13): activations, dropout, normalisation --
    "tanh_forward": {"x": ANY},
    "tanh_backward": {"y": ANY, "dy": SameAs("y")},
    "leaky_relu_forward": {"x": ANY, "negative_slope": SCALAR},
    "leaky_relu_backward": {"x": ANY, "dy": SameAs("x"), "negative_slope": SCALAR},
    "gelu_forward": {"x": ANY, "approximate": SCALAR},
    "gelu_backward": {"x": ANY, "dy": SameAs("x"), "approximate": SCALAR},
    "dropout_forward": {"x": ANY, "mask": SameAs("x"), "scale": SCALAR},
    "dropout_backward": {"dy": ANY, "mask": SameAs("dy"), "scale": SCALAR},
    "batchnorm_forward": {"x": ("B", "I"), "gamma": ("I",), "beta": ("I",), "eps": SCALAR},
    "batchnorm_eval": {"x": ("B", "I"), "running_mean": ("I",), "running_var": ("I",), "gamma": ("I",),
                       "beta": ("I",), "eps": SCALAR},
    "batchnorm_backward": {"x": ("B", "I"), "dy": ("B", "I"), "gamma": ("I",), "mean": ("I",), "var": ("I",),
                           "eps": SCALAR},
    "layernorm_forward": {"x": ("B", "I"), "gamma": ("I",), "beta": ("I",), "eps": SCALAR},
    "layernorm_backward": {"x": ("B", "I"), "dy": ("B", "I"), "gamma": ("I",), "mean": ("B",), "var": ("B",),
                           "eps": SCALAR},
    # -- end layers --

    # -- losses (issue 13) --
    "bce": {"p": ANY, "t": SameAs("p")},
    "bce_backward": {"p": ANY, "t": SameAs("p")},
    "bce_with_logits": {"z": ANY, "t": SameAs("z")},
    "bce_with_logits_backward": {"z": ANY, "t": SameAs("z")},
    "l1": {"pred": ANY, "target": SameAs("pred")},
    "l1_backward": {"pred": ANY, "target": SameAs("pred")},
    "huber": {"pred": ANY, "target": SameAs("pred"), "delta": SCALAR},
    "huber_backward": {"pred": ANY, "target": SameAs("pred"), "delta": SCALAR},
    "nll": {"logp": ("B", "K"), "y": TARGETS},
    "nll_backward": {"logp": ("B", "K"), "y": TARGETS},
    # -- end losses --

    # -- optimiser steps (issue 13) --
    # checked by kernels/contract_optim.py (updated in place; buffers the options do not read may be dummies)
    "sgd_step": dict.fromkeys(("w", "g", "buf", "lr", "momentum", "dampening", "weight_decay", "nesterov", "first",
                               "l1"), CUSTOM),
    "adam_step": dict.fromkeys(("w", "g", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step", "lr", "beta1", "beta2",
                                "eps", "weight_decay", "amsgrad", "decoupled", "l1"), CUSTOM),
    "rmsprop_step": dict.fromkeys(("w", "g", "square_avg", "grad_avg", "buf", "lr", "alpha", "eps", "weight_decay",
                                   "momentum", "centered", "l1"), CUSTOM),
    "adagrad_step": dict.fromkeys(("w", "g", "state_sum", "step", "lr", "lr_decay", "weight_decay", "eps", "l1"),
                                  CUSTOM),
    # -- end optimiser steps --
}


# ---- error messages (the slow path) ----------------------------------------------------------

def _fmt_dims(kind) -> str:
    if isinstance(kind, tuple):
        return "(" + ", ".join(kind) + ("," if len(kind) == 1 else "") + ")"
    if isinstance(kind, SameAs):
        return f"(shape of {kind.name})"
    return {"ANY": "(any shape)", "TARGETS": "(B,) int labels or (B, K)"}.get(kind.name, "")


def _expected(kernel: str) -> str:
    return ", ".join(f"{n} {_fmt_dims(k)}" for n, k in SPECS[kernel].items() if k is not SCALAR)


def _got(names, args) -> str:
    return ", ".join(f"{n} {a.shape}" for n, a in zip(names, args) if isinstance(a, _ndarray))


def _dtype_error(kernel: str, name: str, dtype) -> TypeError:
    return TypeError(
        f"{kernel}: {name} has dtype {dtype}, expected float32 or float64 (both backends compute in "
        f"those only); convert it first, e.g. {name}.astype(np.float32)"
    )


def _mixed_error(kernel: str, names, args, name: str, dtype) -> TypeError:
    found = ", ".join(f"{n} {a.dtype}" for n, a in zip(names, args)
                      if isinstance(a, _ndarray) and a.dtype.kind == "f")
    return TypeError(
        f"{kernel}: float arguments must share one dtype (it is the output dtype), got {found}; "
        f"cast them to one, e.g. {name}.astype(np.{dtype})"
    )


def _as_ndarray(kernel: str, name: str, a) -> np.ndarray:
    if isinstance(a, _ndarray):          # subclasses (memmap, matrix) as plain arrays
        return a.view(_ndarray)
    raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(a).__name__}; wrap it in np.asarray")


# ---- the fast path: arguments that already satisfy the contract -------------------------------
# One straight-line check per family of signatures (a generic loop over SPECS costs ~1.6x as
# much).  Each returns ``args`` when they pass as they are, else None and the full check runs
# (which raises, or copies to C order / int64).  They must never accept what the full check
# would reject or change: tests/equivalence/test_contract.py holds them to that.  Dtypes are
# compared with ==, not ``is``: arrays made by Numba carry their own (equal) dtype objects.

def _fast_elementwise(args):
    """x (any shape, >= 1 axis) [, dy of x's shape]."""
    x = args[0]
    if type(x) is not _ndarray or not x.flags.c_contiguous or not x.ndim:
        return None
    dt = x.dtype
    if not (dt == F32 or dt == F64):
        return None
    if len(args) > 1:
        g = args[1]
        if type(g) is not _ndarray or g.dtype != dt or not g.flags.c_contiguous or g.shape != x.shape:
            return None
    return args


def _fast_rows(args):
    """(B, K) float arrays of one dtype, K >= 1 [, labels (B,) int64 in [0, K) or (B, K) targets] [, eps]."""
    a = args[0]
    if type(a) is not _ndarray or not a.flags.c_contiguous:
        return None
    dt, shape = a.dtype, a.shape
    if not (dt == F32 or dt == F64) or len(shape) != 2 or not shape[1]:
        return None
    if len(args) > 1:
        b = args[1]
        if type(b) is not _ndarray or not b.flags.c_contiguous:
            return None
        if b.dtype == dt:
            if b.shape != shape:
                return None
        elif b.dtype != _I64 or b.shape != shape[:1] or not _labels_in_range(b, shape[1]):
            return None                         # full check: int64 labels are the other option
    return args


def _fast_matmul(args):
    """A (N, M), B (M, P)."""
    A, B = args
    if type(A) is not _ndarray or type(B) is not _ndarray or not (A.flags.c_contiguous and B.flags.c_contiguous):
        return None
    dt = A.dtype
    if not (dt == F32 or dt == F64) or B.dtype != dt:
        return None
    sa, sb = A.shape, B.shape
    if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0]:
        return None
    return args


def _fast_linear(args):
    """x (B, I), W (I, O), and b (O,) (forward) or dy (B, O) (backward)."""
    x, W, c = args
    if type(x) is not _ndarray or type(W) is not _ndarray or type(c) is not _ndarray:
        return None
    dt = x.dtype
    if not (dt == F32 or dt == F64) or W.dtype != dt or c.dtype != dt:
        return None
    if not (x.flags.c_contiguous and W.flags.c_contiguous and c.flags.c_contiguous):
        return None
    sx, sw, sc = x.shape, W.shape, c.shape
    if len(sx) != 2 or len(sw) != 2 or sx[1] != sw[0]:
        return None
    if sc != ((sw[1],) if len(sc) == 1 else (sx[0], sw[1])):
        return None
    return args


_GENERIC_CHECKS: dict[int, object] = {}


def _fast_generic(spec: dict):
    """The fast check for any other spec of float arrays (sizes, ANY, SameAs) and scalars: one
    loop over the spec, ~1.6x the cost of a dedicated family.  One function per spec (both
    backends share it)."""
    if id(spec) not in _GENERIC_CHECKS:
        _GENERIC_CHECKS[id(spec)] = _make_fast_generic(spec)
    return _GENERIC_CHECKS[id(spec)]


def _make_fast_generic(spec: dict):
    entries = tuple(spec.items())
    if any(kind is TARGETS or kind is CUSTOM for _, kind in entries):      # pragma: no cover - no such spec
        return _no_fast_path

    def fast(args):
        dt = None
        sizes, shapes = {}, {}
        for (name, kind), a in zip(entries, args):
            if kind is SCALAR:
                continue
            if type(a) is not _ndarray or not a.flags.c_contiguous:
                return None
            if dt is None:
                dt = a.dtype
                if not (dt == F32 or dt == F64):
                    return None
            elif a.dtype != dt:
                return None
            shape = a.shape
            if kind is ANY:
                if not shape:
                    return None
            elif isinstance(kind, SameAs):
                if shape != shapes.get(kind.name):
                    return None
            else:
                if len(shape) != len(kind):
                    return None
                for d, n in zip(kind, shape):
                    if sizes.setdefault(d, n) != n or (not n and d in NONEMPTY):
                        return None
            shapes[name] = shape
        return args

    return fast


def _fast_path(spec: dict):
    """The fast check for a generic spec: one of these families, else :func:`_fast_generic`."""
    kinds = tuple(k for k in spec.values() if k is not SCALAR)
    trailing = tuple(spec.values())[:len(kinds)] == kinds         # the scalars, if any, come last
    if kinds[0] is ANY and trailing and (len(kinds) == 2 or len(spec) == 1):
        return _fast_elementwise
    if kinds[0] == ("B", "K"):
        return _fast_rows
    if kinds == (("N", "M"), ("M", "P")):
        return _fast_matmul
    if kinds[:2] == (("B", "I"), ("I", "O")):
        return _fast_linear
    return _fast_generic(spec)


def _labels_in_range(y: np.ndarray, K: int) -> bool:
    """All of ``y`` in ``[0, K)`` (small arrays as Python ints: cheaper than two NumPy reductions)."""
    if y.size <= 16:
        values = y.tolist()
        return not values or (min(values) >= 0 and max(values) < K)
    return bool(y.min() >= 0 and y.max() < K)


def _full_check(kernel: str, names: tuple, kinds: tuple):
    """The complete check: raises with a message naming the argument, or returns the
    arguments with labels as int64 and every array C-contiguous."""

    def shape_error(args, msg) -> ValueError:
        return ValueError(f"{kernel} expects {_expected(kernel)}; got {_got(names, args)}: {msg}")

    def defined_by(d) -> str:
        return next(n for n, k in zip(names, kinds) if isinstance(k, tuple) and d in k)

    def check(args):
        out = list(args)
        sizes = {}
        dtype = None
        for i, a in enumerate(args):
            kind = kinds[i]
            if kind is SCALAR:
                continue
            name = names[i]
            if type(a) is not _ndarray:
                a = out[i] = _as_ndarray(kernel, name, a)
            if kind is TARGETS and a.ndim == 1:
                out[i] = _labels(kernel, name, a, sizes)
                continue
            dt = a.dtype
            if dt not in FLOATS:
                raise _dtype_error(kernel, name, dt)
            if dtype is None:
                dtype = dt
            elif dt != dtype:
                raise _mixed_error(kernel, names, out, names[0], dt)
            if kind is ANY:
                if a.ndim == 0:
                    raise shape_error(out, f"{name} must have at least one axis")
            elif isinstance(kind, SameAs):
                if a.shape != out[names.index(kind.name)].shape:
                    raise shape_error(out, f"{name} must have the shape of {kind.name}")
            else:
                dims = ("B", "K") if kind is TARGETS else kind
                if a.ndim != len(dims):
                    raise shape_error(out, f"{name} must have {len(dims)} axes, it has {a.ndim}")
                for d, n in zip(dims, a.shape):
                    m = sizes.setdefault(d, n)
                    if m != n:
                        raise shape_error(out, f"{d} is {m} in {defined_by(d)} but {n} in {name}")
                    if n == 0 and d in NONEMPTY:
                        raise shape_error(out, f"{name} has no {d} entries; it needs at least one")
            if not a.flags.c_contiguous:
                out[i] = np.ascontiguousarray(a)
        return tuple(out)

    return check


def _labels(kernel: str, name: str, y: np.ndarray, sizes: dict) -> np.ndarray:
    """1-D integer labels: (B,) with values in [0, K) -> C-contiguous int64."""
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"{kernel}: 1-D {name} must hold integer class labels, got dtype {y.dtype}; pass labels as "
            f"int64, or targets as a (B, K) float array of the predictions' dtype"
        )
    B, K = sizes.get("B"), sizes.get("K")
    if y.shape[0] != B:
        raise ValueError(f"{kernel}: expected {B} labels (one per row), got {name} of shape {y.shape}")
    if not _labels_in_range(y, K):
        raise ValueError(f"{kernel}: labels must lie in [0, {K}), got min {y.min()} and max {y.max()}")
    if y.dtype != _I64 or not y.flags.c_contiguous:
        y = np.ascontiguousarray(y, dtype=_I64)
    return y


# ---- the epoch kernels: sgd_epoch, sgd_minibatch_epoch ----------------------------------------

def _check_sgd_epoch(args):
    """The fused SGD epoch's arguments; see :func:`kernels.reference.sgd_epoch`."""
    return _check_network("sgd_epoch", args)[0]


def _check_sgd_epoch_compact(args):
    """The compact per-sample epoch's arguments; see :func:`kernels.reference.sgd_epoch_compact`.

    The ten network and data arguments as for ``sgd_epoch``; then ``block`` an integer >= 1
    and ``compact`` one flag per layer (0/1, any integer dtype; passed on as uint8).
    """
    kernel = "sgd_epoch_compact"
    checked, _ = _check_network(kernel, args[:10])
    block, compact = args[10:]
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)):
        raise TypeError(f"{kernel}: block must be an integer, got {type(block).__name__}")
    if not 1 <= block <= 2**31:
        raise ValueError(f"{kernel}: block must lie in [1, 2**31], got {block}")
    flags = np.asarray(compact)
    L = len(checked[0])
    if flags.dtype.kind not in "iu":
        raise TypeError(f"{kernel}: compact must be an integer array (0/1 per layer), got {flags.dtype}")
    if flags.shape != (L,) or (flags.size and not np.isin(flags, (0, 1)).all()):
        raise ValueError(f"{kernel}: compact must hold one 0/1 flag per layer, shape ({L},), got {flags.shape} "
                         f"{flags.tolist() if flags.size <= 8 else ''}".rstrip())
    return (*checked, int(block), np.ascontiguousarray(flags, dtype=np.uint8))


def _check_sgd_minibatch_epoch(args):
    """The fused mini-batch epoch's arguments; see :func:`kernels.reference.sgd_minibatch_epoch`.

    The ten network and data arguments as for ``sgd_epoch``; then ``batch_size`` an integer
    >= 1, ``momentum`` a real scalar, and ``vel_w``/``vel_b`` tuples of L arrays of X's dtype
    (2-D and 1-D): with ``momentum != 0`` shaped like the weights/biases, C-contiguous and
    writeable (they are updated in place), otherwise not read (``(0, 0)``/``(0,)`` dummies do).
    """
    kernel = "sgd_minibatch_epoch"
    checked, dtype = _check_network(kernel, args[:10])
    batch_size, momentum, vel_w, vel_b = args[10:]
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"{kernel}: batch_size must be an integer, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"{kernel}: batch_size must be at least 1, got {batch_size}")
    momentum = _real_scalar(kernel, "momentum", momentum, dtype)
    weights, biases = checked[0], checked[1]
    velocities = []
    for name, vel, params in (("vel_w", vel_w, weights), ("vel_b", vel_b, biases)):
        if not isinstance(vel, (tuple, list)):
            raise TypeError(f"{kernel}: {name} must be a tuple of arrays, got {type(vel).__name__}")
        if len(vel) != len(params):
            raise ValueError(f"{kernel}: {name} needs one array per layer ({len(params)}), got {len(vel)}")
        checked_vel = []
        for l, (v, p) in enumerate(zip(vel, params)):
            vname = f"{name}[{l}]"
            if momentum != 0:
                checked_vel.append(_in_place(kernel, vname, _float_array(kernel, vname, v, p.shape, dtype)))
            else:                                       # not read: any size, e.g. (0, 0) / (0,)
                v = _float_array(kernel, vname, v, (None,) * p.ndim, dtype)
                checked_vel.append(np.ascontiguousarray(v))
        velocities.append(tuple(checked_vel))
    return (*checked, int(batch_size), momentum, *velocities)


def _check_network(kernel: str, args):
    """The ten arguments both epoch kernels share (network, data, order, lr): returns them
    checked and converted, and X's dtype."""
    weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr = args
    X = _array(kernel, "X", X)
    dtype = X.dtype
    if dtype not in FLOATS:
        raise _dtype_error(kernel, "X", dtype)
    if X.ndim != 2:
        raise ValueError(f"{kernel}: X must be (N, n_0), got shape {X.shape}")
    N = X.shape[0]
    if not isinstance(weights, (tuple, list)) or not isinstance(biases, (tuple, list)):
        raise TypeError(f"{kernel}: weights and biases must be tuples of arrays, got {type(weights).__name__} "
                        f"and {type(biases).__name__}")
    L = len(weights)
    if L == 0 or len(biases) != L:
        raise ValueError(f"{kernel}: need one bias per weight matrix and at least one layer, got {L} weights "
                         f"and {len(biases)} biases")
    checked_weights, checked_biases = [], []
    width = X.shape[1]                                  # n_l, the input width of layer l
    for l in range(L):
        W = _in_place(kernel, f"weights[{l}]", _float_array(kernel, f"weights[{l}]", weights[l], (width, None), dtype))
        width = W.shape[1]
        checked_weights.append(W)
        checked_biases.append(_in_place(kernel, f"biases[{l}]",
                                        _float_array(kernel, f"biases[{l}]", biases[l], (width,), dtype)))
    K = width
    if K == 0:
        raise ValueError(f"{kernel}: the last layer has no outputs; it needs at least one")
    bias_on = _float_array(kernel, "bias_on", bias_on, (L,), dtype)
    activations = _integers(kernel, "activations", activations, L, len(ACTIVATION_CODES))
    if isinstance(loss_kind, (bool, np.bool_)) or not isinstance(loss_kind, (int, np.integer)) or \
            loss_kind not in LOSS_CODES.values():
        raise ValueError(f"{kernel}: loss_kind must be one of {LOSS_CODES}, got {loss_kind!r}")
    if loss_kind == SOFTMAX_CE:
        labels = _integers(kernel, "labels", labels, N, K)
        targets = _float_array(kernel, "targets", targets, (None, K), dtype)       # not read
    else:
        labels = _integers(kernel, "labels", labels, None, None)                   # not read
        targets = _float_array(kernel, "targets", targets, (N, K), dtype)
    order = _integers(kernel, "order", order, None, N)
    lr = _real_scalar(kernel, "lr", lr, dtype)
    return (tuple(checked_weights), tuple(checked_biases), np.ascontiguousarray(bias_on), activations,
            int(loss_kind), np.ascontiguousarray(X), labels, np.ascontiguousarray(targets), order, lr), dtype


def _array(kernel, name, a):
    return a if type(a) is _ndarray else _as_ndarray(kernel, name, a)


def _float_array(kernel, name, a, shape, dtype):
    """An array of ``dtype`` and ``shape`` (None: any length on that axis)."""
    a = _array(kernel, name, a)
    if a.dtype != dtype:
        if a.dtype not in FLOATS:
            raise _dtype_error(kernel, name, a.dtype)
        raise TypeError(f"{kernel}: {name} has dtype {a.dtype} but X has {dtype}; the float arguments must "
                        f"share one dtype, e.g. {name}.astype(np.{dtype})")
    if a.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        expected = "(" + ", ".join("n" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "")
        raise ValueError(f"{kernel}: {name} must have shape {expected}), got {a.shape}")
    return a


def _in_place(kernel, name, a):
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError(f"{kernel}: {name} is updated in place, so it must be a C-contiguous, writeable "
                         f"array (got a {'read-only' if not a.flags.writeable else 'non-contiguous'} one); "
                         "pass np.ascontiguousarray(...) and read the result back from it")
    return a


def _integers(kernel, name, a, length, hi):
    """1-D integers (``length`` of them unless None) in [0, hi) (unless hi is None) -> int64."""
    a = _array(kernel, name, a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{kernel}: {name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        raise ValueError(f"{kernel}: {name} must have shape ({'n' if length is None else length},), "
                         f"got {a.shape}")
    if hi is not None and a.size and (a.min() < 0 or a.max() >= hi):
        raise ValueError(f"{kernel}: {name} must lie in [0, {hi}), got min {a.min()} and max {a.max()}")
    return np.ascontiguousarray(a, dtype=_I64)


def _real_scalar(kernel, name, v, dtype):
    """A real (not boolean) scalar -> ``dtype``'s scalar type."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{kernel}: {name} must be a real scalar, got {type(v).__name__}")
    return dtype.type(v)


_CUSTOM = {"sgd_epoch": _check_sgd_epoch, "sgd_epoch_compact": _check_sgd_epoch_compact,
           "sgd_minibatch_epoch": _check_sgd_minibatch_epoch}
from .contract_optim import CHECKS as _OPTIM_CHECKS  # noqa: E402  (issue 13: the optimiser steps' checks)
_CUSTOM.update(_OPTIM_CHECKS)


# ---- the decorator ---------------------------------------------------------------------------

def kernel(fn):
    """Check ``fn``'s arguments against ``SPECS[fn.__name__]`` before every call.

    The wrapper keeps ``fn``'s name, docstring and signature (``inspect.signature``
    follows ``__wrapped__``).  Its ``fast_check(args)`` returns positional ``args`` that
    pass as they are (else None); ``full_check(args)`` returns them checked and
    converted, or raises.
    """
    name = fn.__name__
    spec = SPECS[name]
    sig = inspect.signature(fn)
    if list(sig.parameters) != list(spec):
        raise TypeError(f"{fn.__module__}.{name}{sig} does not match its contract {list(spec)}")
    if name in _CUSTOM:
        fast, full = _no_fast_path, _CUSTOM[name]
    else:
        fast, full = _fast_path(spec), _full_check(name, tuple(spec), tuple(spec.values()))
    n_max = len(spec)
    n_min = sum(p.default is p.empty for p in sig.parameters.values())

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        if kwargs or not n_min <= len(args) <= n_max:
            args = sig.bind(*args, **kwargs).args      # raises the usual TypeError for bad calls
        return fn(*(fast(args) or full(args)))

    checked.fast_check, checked.full_check = fast, full
    return checked


def _no_fast_path(args):
    return None


