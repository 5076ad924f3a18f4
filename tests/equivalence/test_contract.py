"""The argument contract (kernels.contract): the fast path takes exactly the arguments that need
no conversion, the full check gives the messages, and both backends share them."""
import copy
import re

import numpy as np
import pytest

from kernels import contract, get_backend
from kernels.registry import OPERATIONS
from kernels.testing import array_paths, cast, fortran, get, replace, strided

#: The kernels checked through SPECS (not by a dedicated function: the epoch kernels).
GENERIC = [op for op in OPERATIONS if contract.CUSTOM not in contract.SPECS[op.name].values()]
SIZES = ({"B": 4, "I": 5, "O": 3, "K": 3, "N": 4, "M": 5, "P": 3},
         {"B": 1, "I": 1, "O": 1, "K": 1, "N": 1, "M": 1, "P": 1},
         {"B": 0, "I": 0, "O": 0, "K": 1, "N": 0, "M": 0, "P": 0})


def _variants(op, dtype, sizes):
    """The registry's inputs, and every way of getting them wrong or in another layout."""
    args = op.make_inputs(np.random.default_rng(0), dtype, sizes, "unit")
    yield "as generated", args
    fresh = args                    # equal but distinct dtype objects, as on arrays Numba returns
    for path in array_paths(args, "fiu"):
        fresh = replace(fresh, path, get(args, path).view(copy.deepcopy(get(args, path).dtype)))
    yield "with equal dtype objects", fresh
    yield "F order", fortran(args)
    yield "sliced", strided(args)
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    for path in array_paths(args, "fiu"):
        a = get(args, path)
        for dt in (np.int64, np.int32, np.uint8, np.bool_, np.float16, other, np.dtype(a.dtype).newbyteorder()):
            yield f"{path} as {np.dtype(dt)}", cast(args, path, dt)
        for axis in range(a.ndim):
            grown = np.concatenate([a, np.zeros_like(a.take([0], axis=axis) if a.shape[axis] else a)], axis=axis)
            yield f"{path} axis {axis} grown", replace(args, path, grown)
        yield f"{path} read-only", replace(args, path, _read_only(a))
        yield f"{path} as a list", replace(args, path, a.tolist())
        yield f"{path} 0-d", replace(args, path, np.asarray(a.reshape(-1)[0] if a.size else 0, dtype=a.dtype))
        yield f"{path} as an ndarray subclass", replace(args, path, a.view(np.memmap) if a.ndim else a)
        if a.dtype.kind in "iu" and a.size:
            for value in (-1, 10**6):
                bad = a.copy()
                bad[0] = value
                yield f"{path} holding {value}", replace(args, path, bad)
    if "K" in op.dims:
        yield "K = 0", op.make_inputs(np.random.default_rng(0), dtype, {**sizes, "K": 0}, "unit")


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("op", GENERIC, ids=lambda op: op.id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_the_fast_path_takes_only_what_the_full_check_would_pass_unchanged(op, dtype):
    kernel = getattr(get_backend("numpy"), op.name)
    for sizes in SIZES:
        sizes = {d: sizes[d] for d in op.dims}
        for what, args in _variants(op, dtype, sizes):
            fast = kernel.fast_check(args)
            if what in ("as generated", "with equal dtype objects") or what.endswith("read-only"):
                assert fast is args, f"{op.id} {sizes} {what}: valid C-contiguous input missed the fast path"
            if fast is None:
                continue
            assert fast is args
            checked = kernel.full_check(args)           # must not raise, and must change nothing
            assert all(c is a for c, a in zip(checked, args)), f"{op.id} {sizes} {what}: the full check converts"


@pytest.mark.parametrize("name", sorted(contract.SPECS))
def test_both_backends_share_one_check(name):
    ref, jit = getattr(get_backend("numpy"), name), getattr(get_backend("numba"), name)
    assert ref.fast_check is jit.fast_check
    assert ref.full_check.__qualname__ == jit.full_check.__qualname__


def test_non_arrays_and_subclasses():
    ops = get_backend("numba")
    with pytest.raises(TypeError, match=r"^relu_forward: x must be a NumPy array, got list; wrap it in np.asarray$"):
        ops.relu_forward([[1.0, -1.0]])
    m = np.matrix([[1.0, -2.0]])
    out = ops.relu_forward(m)
    assert type(out) is np.ndarray and type(get_backend("numpy").relu_forward(m)) is np.ndarray
    np.testing.assert_array_equal(out, [[1, 0]])


def test_sgd_epoch_arguments_are_checked_before_the_kernel_runs():
    """Shapes that the compiled kernel would read or write out of bounds, and bad codes."""
    rng = np.random.default_rng(0)
    W0, W1 = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))

    def args(**change):
        a = dict(weights=(W0.copy(), W1.copy()), biases=(np.zeros(5), np.zeros(3)), bias_on=np.ones(2),
                 activations=np.array([1, 0]), loss_kind=0, X=rng.random((6, 4)), labels=np.arange(6) % 3,
                 targets=np.zeros((0, 3)), order=np.arange(6), lr=0.1)
        a.update(change)
        return tuple(a.values())

    cases = {
        "weights[1] must have shape (5, n), got (6, 3)":
            args(weights=(W0.copy(), np.zeros((6, 3))), biases=(np.zeros(5), np.zeros(3))),
        "weights[0] must have shape (7, n), got (4, 5)": args(X=rng.random((6, 7))),
        "biases[1] must have shape (3,), got (4,)": args(biases=(np.zeros(5), np.zeros(4))),
        "labels must lie in [0, 3), got min 0 and max 5": args(labels=np.arange(6)),
        "labels must have shape (6,), got (5,)": args(labels=np.zeros(5, np.int64)),
        "order must lie in [0, 6), got min 0 and max 6": args(order=np.arange(7)),
        "activations must lie in [0, 4), got min 1 and max 7": args(activations=np.array([7, 1])),
        "targets must have shape (6, 3), got (6, 2)": args(loss_kind=1, targets=np.zeros((6, 2))),
        "loss_kind must be one of": args(loss_kind=2),
        "need one bias per weight matrix": args(biases=(np.zeros(5),)),
        "weights[0] is updated in place, so it must be a C-contiguous, writeable array (got a read-only one)":
            args(weights=(_read_only(W0), W1.copy())),
    }
    for backend in ("numpy", "numba"):
        for message, a in cases.items():
            with pytest.raises(ValueError, match="^sgd_epoch: " + re.escape(message)):
                get_backend(backend).sgd_epoch(*a)
    for backend in ("numpy", "numba"):
        with pytest.raises(TypeError, match=r"^sgd_epoch: lr must be a real scalar, got ndarray$"):
            get_backend(backend).sgd_epoch(*args(lr=np.ones(1)))


def test_sgd_minibatch_epoch_arguments_are_checked_before_the_kernel_runs():
    """The network checks of sgd_epoch, and the batch size, momentum and velocities; the
    velocities need the parameters' shapes (and C order) only when momentum is used."""
    rng = np.random.default_rng(0)
    W0, W1 = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))

    def args(**change):
        a = dict(weights=(W0.copy(), W1.copy()), biases=(np.zeros(5), np.zeros(3)), bias_on=np.ones(2),
                 activations=np.array([1, 0]), loss_kind=0, X=rng.random((6, 4)), labels=np.arange(6) % 3,
                 targets=np.zeros((0, 3)), order=np.arange(6), lr=0.1, batch_size=4, momentum=0.9,
                 vel_w=(np.zeros((4, 5)), np.zeros((5, 3))), vel_b=(np.zeros(5), np.zeros(3)))
        a.update(change)
        return tuple(a.values())

    dummies = dict(vel_w=(np.zeros((0, 0)), np.zeros((0, 0))), vel_b=(np.zeros(0), np.zeros(0)))
    value_errors = {
        "weights[1] must have shape (5, n), got (6, 3)": args(weights=(W0.copy(), np.zeros((6, 3)))),
        "labels must lie in [0, 3), got min 0 and max 5": args(labels=np.arange(6)),
        "order must lie in [0, 6), got min 0 and max 6": args(order=np.arange(7)),
        "targets must have shape (6, 3), got (6, 2)": args(loss_kind=1, targets=np.zeros((6, 2))),
        "batch_size must be at least 1, got 0": args(batch_size=0),
        "vel_w[1] must have shape (5, 3), got (5, 4)": args(vel_w=(np.zeros((4, 5)), np.zeros((5, 4)))),
        "vel_b[0] must have shape (5,), got (0,)": args(vel_b=(np.zeros(0), np.zeros(3))),
        "vel_w needs one array per layer (2), got 1": args(vel_w=(np.zeros((4, 5)),)),
        "vel_b[1] is updated in place, so it must be a C-contiguous, writeable array (got a non-contiguous one)":
            args(vel_b=(np.zeros(5), np.zeros(6)[::2])),
        "vel_w[0] must have shape (n, n), got (0,)": args(momentum=0, **{**dummies, "vel_w": (np.zeros(0),) * 2}),
    }
    type_errors = {
        "batch_size must be an integer, got float": args(batch_size=4.0),
        "batch_size must be an integer, got bool": args(batch_size=True),
        "momentum must be a real scalar, got ndarray": args(momentum=np.ones(1)),
        "vel_b must be a tuple of arrays, got ndarray": args(vel_b=np.zeros(5)),
        "vel_w[0] has dtype float32 but X has float64": args(vel_w=(np.zeros((4, 5), np.float32), np.zeros((5, 3)))),
        "vel_b[0] has dtype int64, expected float32 or float64": args(momentum=0, vel_b=(np.zeros(0, np.int64),) * 2),
    }
    for backend in ("numpy", "numba"):
        ops = get_backend(backend)
        for message, a in value_errors.items():
            with pytest.raises(ValueError, match="^sgd_minibatch_epoch: " + re.escape(message)):
                ops.sgd_minibatch_epoch(*a)
        for message, a in type_errors.items():
            with pytest.raises(TypeError, match="^sgd_minibatch_epoch: " + re.escape(message)):
                ops.sgd_minibatch_epoch(*a)
        # without momentum the velocities are not read: dummies, or any sizes, will do
        for vel in (dummies, dict(vel_w=(np.zeros((1, 2)), np.zeros((3, 3))), vel_b=(np.zeros(7), np.zeros(0)))):
            losses, done, bad = ops.sgd_minibatch_epoch(*args(momentum=0.0, batch_size=np.int32(4), **vel))
            assert losses.shape == (2,) and (done, bad) == (2, -1)
