"""NumPy vs Numba: every registered kernel agrees in shape, dtype and value, on every input form.

For each operation in :mod:`kernels.registry`:

* hypothesis draws sizes (0 is likely for every size but K, the depth L and the batch size S;
  1 is likely for all), dtypes, seeds, input scales (unit, +-1e4, zeros), memory layouts (C,
  Fortran order, sliced views) and NaN/inf entries, and both backends must agree;
* fixed cases make sure every form is covered for every kernel: F-ordered and sliced arrays
  give the values of C order; NaN and inf come out at the same positions; integer, boolean,
  float16 and mixed-dtype arrays raise the same ``TypeError`` in both, naming the kernel,
  the argument and the dtype; labels of any integer dtype give the int64 result; an empty
  batch gives empty outputs; shapes that do not fit raise the same ``ValueError``.

Kernels that update arguments in place (``sgd_epoch``, ``sgd_minibatch_epoch``) get fresh
arguments per backend, and the updated arguments are compared as well as the results.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from kernels.codes import ACTIVATION_CODES
from kernels.registry import DTYPES, NONEMPTY, OPERATIONS, SCALES, tolerance
from kernels.testing import (Outcome, array_paths, assert_same_outcome, cast, fortran, get, path_name, replace, run,
                             strided, with_nonfinite)

LAYOUTS = {"C": lambda args, skip=(): args, "F": fortran, "strided": strided}
#: Sizes for the fixed cases: >= 2 everywhere, so that F order and slices differ from C order.
SMALL = {"B": 4, "I": 5, "O": 3, "K": 3, "N": 4, "M": 5, "P": 3, "L": 3, "S": 4}
#: The epoch kernels: they return (losses, done, ...) and stop at the first non-finite loss.
EPOCHS = ("sgd_epoch", "sgd_epoch_compact", "sgd_minibatch_epoch")
OTHER_FLOAT = {np.dtype(np.float32): np.float64, np.dtype(np.float64): np.float32}

size = st.one_of(st.just(0), st.just(1), st.integers(0, 40))
nonempty_size = st.one_of(st.just(1), st.integers(1, 40))


def _ids(op):
    return op.id


def _inputs(op, dtype, sizes, scale, seed, layout="C", nonfinite=False):
    """``make_args`` for :func:`kernels.testing.run`: fresh arguments on every call."""
    def make():
        args = op.make_inputs(np.random.default_rng(seed), dtype, sizes, scale)
        if nonfinite:
            args = with_nonfinite(np.random.default_rng(seed + 1), args, op.nonfinite, values=op.nonfinite_values)
        return LAYOUTS[layout](args, op.mutates)

    return make


def _outputs(outcome: Outcome):
    result = outcome.result if isinstance(outcome.result, tuple) else (outcome.result,)
    return [r for r in result if isinstance(r, np.ndarray)]


def _compare(op, dtype, sizes, scale="unit", seed=0, layout="C", nonfinite=False) -> Outcome:
    """Both backends on the same input form; for F order and slices also NumPy on C order.

    Every case here is valid input, so the reference must return (not raise), and its float
    outputs must have the input dtype (float64 for ``op.float64_outputs``).  Returns the
    reference's outcome.
    """
    label = f"{op.id} {np.dtype(dtype).name} sizes={sizes} scale={scale} layout={layout} nonfinite={nonfinite}"
    tol = tolerance(op, dtype, sizes, op.make_inputs(np.random.default_rng(seed), dtype, sizes, scale))
    theirs = run(op, "numpy", _inputs(op, dtype, sizes, scale, seed, layout, nonfinite))
    mine = run(op, "numba", _inputs(op, dtype, sizes, scale, seed, layout, nonfinite))
    assert theirs.error is None, f"{label}: numpy {theirs.describe()}"
    assert_same_outcome(mine, theirs, **tol, label=label)
    if layout != "C":
        in_c = run(op, "numpy", _inputs(op, dtype, sizes, scale, seed, "C", nonfinite))
        assert_same_outcome(mine, in_c, **tol, label=f"{label} vs C order")
        assert_same_outcome(theirs, in_c, **tol, label=f"{label} vs C order (numpy)")
    result = theirs.result if isinstance(theirs.result, tuple) else (theirs.result,)
    for i, out in enumerate(result):
        if isinstance(out, np.ndarray) and out.dtype.kind == "f":
            expected = np.dtype(np.float64 if i in op.float64_outputs else dtype)
            assert out.dtype == expected, f"{label}: NumPy output {i} has dtype {out.dtype}, expected {expected}"
    return theirs


# ---- hypothesis over sizes, dtypes, scales, layouts and NaN/inf ------------------------------

@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), scale=st.sampled_from(SCALES),
       seed=st.integers(0, 2**32 - 2), layout=st.sampled_from(list(LAYOUTS)), nonfinite=st.booleans())
def test_numba_matches_numpy(op, data, dtype, scale, seed, layout, nonfinite):
    sizes = {d: data.draw(nonempty_size if d in NONEMPTY else size, label=d) for d in op.dims}
    _compare(op, dtype, sizes, scale, seed, layout, nonfinite)


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scale", SCALES)
def test_edge_sizes(op, dtype, scale):
    """All sizes 1 (1x1 matrices, K = 1) and a tutorial-sized case, every scale."""
    _compare(op, dtype, dict.fromkeys(op.dims, 1), scale, seed=0)
    big = {"B": 3, "I": 784, "O": 33, "K": 10, "N": 5, "M": 300, "P": 7, "L": 4, "S": 3}
    _compare(op, dtype, {d: big[d] for d in op.dims}, scale, seed=1)


# ---- every input form, for every kernel ------------------------------------------------------

@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ["F", "strided"])
def test_fortran_order_and_sliced_views_give_the_c_order_values(op, dtype, layout):
    sizes = {d: SMALL[d] for d in op.dims}
    args = _inputs(op, dtype, sizes, "unit", 0, layout)()
    transformed = [path for path in array_paths(args, "fiub")
                   if path[0] not in op.mutates and _layout_can_differ(get(args, path), layout)]
    assert transformed, f"{op.id}: no argument in {layout} layout"
    for path in transformed:
        assert not get(args, path).flags.c_contiguous, f"{op.id}: {path_name(op.name, path)} is still C-contiguous"
    _compare(op, dtype, sizes, layout=layout)


def _layout_can_differ(a, layout) -> bool:
    """F order differs from C order with two axes longer than 1; a slice with one."""
    return a.size > 1 and sum(n > 1 for n in a.shape) >= (2 if layout == "F" else 1)


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.mutates], ids=_ids)
@pytest.mark.parametrize("layout", ["F", "strided"])
def test_arguments_updated_in_place_must_be_c_contiguous(op, layout):
    """A copy in C order would take the update, and the caller's array would never see it."""
    sizes = {d: SMALL[d] for d in op.dims}
    args = op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit")
    paths = [p for p in array_paths(args, "f") if p[0] in op.mutates and _layout_can_differ(get(args, p), layout)]
    assert paths
    for path in paths:
        def make():
            args = op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit")
            return replace(args, path, LAYOUTS[layout]((get(args, path),))[0])

        theirs, mine = run(op, "numpy", make), run(op, "numba", make)
        assert theirs.error is not None and theirs.error[0] is ValueError, theirs.describe()
        assert path_name(op.name, path) in theirs.error[1] and "C-contiguous" in theirs.error[1]
        assert mine.error == theirs.error


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_nan_and_inf_come_out_at_the_same_positions(op, dtype):
    """Also: some NaN or inf comes out (over a few seeds; e.g. ReLU's gradient is 0 where x is NaN)."""
    sizes = {d: SMALL[d] for d in op.dims}
    came_out = []
    for seed in range(4):
        args = _inputs(op, dtype, sizes, "unit", seed, nonfinite=True)()
        assert any(np.isnan(get(args, p)).any() for p in array_paths(args, "f")), f"{op.id}: no NaN went in"
        theirs = _compare(op, dtype, sizes, seed=seed, nonfinite=True)
        if op.name in EPOCHS:           # NaN in the data: the epoch stops at the first non-finite loss
            came_out.append(theirs.result[1] < len(theirs.result[0]))
        else:
            came_out.append(any(not np.isfinite(out).all() for out in _outputs(theirs)))
    assert any(came_out), f"{op.id}: NaN/inf went in, none came out"


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_empty_sizes_give_empty_outputs(op, dtype):
    """Every size but K, L and S set to 0 in turn (an empty batch; an empty inner dimension of a
    product, which gives zeros): both backends return the same, correctly shaped outputs."""
    for d in op.dims:
        if d not in NONEMPTY:
            _compare(op, dtype, {**{k: SMALL[k] for k in op.dims}, d: 0})


@pytest.mark.parametrize("op", [op for op in OPERATIONS if "K" in op.dims], ids=_ids)
def test_an_empty_class_axis_raises_the_same_value_error(op):
    make = _inputs(op, np.float64, {**{d: SMALL[d] for d in op.dims}, "K": 0}, "unit", 0)
    theirs, mine = run(op, "numpy", make), run(op, "numba", make)
    assert theirs.error is not None and theirs.error[0] is ValueError, theirs.describe()
    assert mine.error == theirs.error


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_integer_bool_float16_and_mixed_dtypes_raise_the_same_type_error(op, dtype):
    """Each float argument in turn, and all of them at once, in a dtype the kernels do not take."""
    sizes = {d: SMALL[d] for d in op.dims}
    paths = array_paths(op.make_inputs(np.random.default_rng(0), dtype, sizes, "unit"), "f")
    bad_dtypes = [np.int64, np.int32, np.bool_, np.float16]
    if len(paths) > 1:                      # the other float dtype for one argument: mixed dtypes
        bad_dtypes.append(OTHER_FLOAT[np.dtype(dtype)])
    cases = [([p], bad) for p in paths for bad in bad_dtypes]
    cases.append((paths, np.int64))
    for cast_paths, bad in cases:
        def make():
            args = op.make_inputs(np.random.default_rng(0), dtype, sizes, "unit")
            for p in cast_paths:
                args = cast(args, p, bad)
            return args

        theirs, mine = run(op, "numpy", make), run(op, "numba", make)
        what = f"{op.id} with {[path_name(op.name, p) for p in cast_paths]} as {np.dtype(bad).name}"
        assert theirs.error is not None and theirs.error[0] is TypeError, f"{what}: numpy {theirs.describe()}"
        assert mine.error == theirs.error, f"{what}: numba {mine.describe()}, numpy {theirs.describe()}"
        message = theirs.error[1]
        assert message.startswith(f"{op.name}:"), message
        assert np.dtype(bad).name in message, message
        assert any(path_name(op.name, p) in message for p in cast_paths), message


_WITH_INTEGER_ARRAYS = [op for op in OPERATIONS
                        if array_paths(op.make_inputs(np.random.default_rng(0), np.float64,
                                                      {d: SMALL[d] for d in op.dims}, "unit"), "iu")]


@pytest.mark.parametrize("op", _WITH_INTEGER_ARRAYS, ids=_ids)
def test_labels_and_indices_of_any_integer_dtype_give_the_int64_result(op):
    sizes = {d: SMALL[d] for d in op.dims}
    tol = tolerance(op, np.float64, sizes, op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit"))
    as_int64 = run(op, "numpy", _inputs(op, np.float64, sizes, "unit", 0))
    assert as_int64.error is None, as_int64.describe()
    for path in array_paths(op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit"), "iu"):
        for dt in (np.int32, np.int16, np.uint8, np.uint64, np.float64, np.bool_):
            def make():
                return cast(op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit"), path, dt)

            theirs, mine = run(op, "numpy", make), run(op, "numba", make)
            what = f"{op.id} with {path_name(op.name, path)} as {np.dtype(dt).name}"
            assert_same_outcome(mine, theirs, **tol, label=what)
            if np.dtype(dt).kind in "iu":
                assert_same_outcome(theirs, as_int64, **tol, label=f"{what} vs int64")
            else:
                assert theirs.error is not None and theirs.error[0] is TypeError, f"{what}: {theirs.describe()}"
                assert path_name(op.name, path) in theirs.error[1]


def _grow(a, axis):
    """``a`` with one more entry along ``axis`` (a copy of the last one)."""
    return np.concatenate([a, a.take([-1], axis=axis)], axis=axis)


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
def test_shapes_that_do_not_fit_raise_the_same_value_error(op):
    """One axis of one array one longer: both backends give the same outcome; for kernels of
    several arrays, at least one such change is an error (and none reads out of bounds)."""
    sizes = {d: SMALL[d] for d in op.dims}
    tol = tolerance(op, np.float64, sizes, op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit"))
    paths = array_paths(op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit"), "fiu")
    errors = 0
    for path in paths:
        a = get(op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit"), path)
        for axis in range(a.ndim if a.size else 0):
            def make():
                args = op.make_inputs(np.random.default_rng(0), np.float64, sizes, "unit")
                return replace(args, path, _grow(get(args, path), axis))

            theirs, mine = run(op, "numpy", make), run(op, "numba", make)
            assert_same_outcome(mine, theirs, **tol, label=f"{op.id}: {path_name(op.name, path)} axis {axis} + 1")
            errors += theirs.error is not None
            if theirs.error:
                assert theirs.error[0] is ValueError, theirs.describe()
    if len(paths) > 1:
        assert errors, f"{op.id}: no shape change was rejected"


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.name == "sgd_epoch"], ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_sgd_epoch_at_every_depth_with_mixed_activations_and_biases(op, dtype, depth):
    """The fused epoch against its NumPy loop: a few seeds per depth, which between them train
    every activation code, mixed within one network, and layers with and without bias."""
    sizes = {"B": 12, "I": 7, "K": 4, "L": depth}
    codes, mixed, bias_on = set(), False, set()
    for seed in range(6):
        args = op.make_inputs(np.random.default_rng(seed), dtype, sizes, "unit")
        hidden = set(args[3][:-1].tolist())
        codes |= hidden
        mixed |= len(hidden) > 1
        bias_on |= set(args[2].tolist())
        theirs = _compare(op, dtype, sizes, seed=seed)
        assert theirs.result[1] == len(args[8]), "the epoch stopped early"
    assert bias_on == {0, 1}
    if depth >= 3:
        assert codes == set(range(len(ACTIVATION_CODES))) and mixed


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.name == "sgd_minibatch_epoch"], ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_sgd_minibatch_epoch_at_every_depth_and_batch_size_with_and_without_momentum(op, dtype, depth):
    """The fused mini-batch epoch against its NumPy loop: 12 samples in an order of M = 18, in
    batches of 1, 5 (a shorter last batch), 6 (dividing M), 18 (the full batch) and 25 (more
    than M: one batch of 18); a few seeds each, which between them train with momentum 0 and
    0.9, every activation code mixed within one network, and layers with and without bias."""
    momenta, codes, mixed, bias_on = set(), set(), False, set()
    for j, batch_size in enumerate((1, 5, 6, 18, 25)):
        sizes = {"B": 12, "I": 7, "K": 4, "L": depth, "S": batch_size}
        for seed in range(3 * j, 3 * j + 3):
            args = op.make_inputs(np.random.default_rng(seed), dtype, sizes, "unit")
            momenta.add(float(args[11]) != 0)
            hidden = set(args[3][:-1].tolist())
            codes |= hidden
            mixed |= len(hidden) > 1
            bias_on |= set(args[2].tolist())
            losses, done, bad = _compare(op, dtype, sizes, seed=seed).result
            assert len(losses) == -(-18 // batch_size) and (done, bad) == (len(losses), -1), "the epoch stopped early"
    assert momenta == {False, True} and bias_on == {0, 1}
    if depth >= 3:
        assert codes == set(range(len(ACTIVATION_CODES))) and mixed
