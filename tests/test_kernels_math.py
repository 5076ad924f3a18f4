"""The kernels against their mathematical definitions (both backends)."""
import warnings

import numpy as np
import pytest

import kernels
from kernels import codes as fused_codes
from kernels import get_backend

BACKENDS = kernels.BACKENDS


@pytest.fixture(params=BACKENDS)
def ops(request):
    return get_backend(request.param)


def test_every_backend_exposes_every_operation():
    for name in BACKENDS:
        ns = get_backend(name)
        missing = [op for op in kernels.OPERATIONS if not callable(getattr(ns, op, None))]
        assert not missing, f"{name} lacks {missing}"


def test_unknown_backend_lists_choices():
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'; choose one of 'numpy', 'numba'"):
        get_backend("cuda")


@pytest.mark.parametrize("name", ["matmul_naive", "matmul"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_matches_blas(ops, name, dtype, rng):
    A = rng.standard_normal((17, 33)).astype(dtype)
    B = rng.standard_normal((33, 9)).astype(dtype)
    C = getattr(ops, name)(A, B)
    assert C.dtype == dtype
    np.testing.assert_allclose(C, A.astype(np.float64) @ B, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_linear_backward_is_the_definition(ops, rng):
    x, W, dy = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    dx, dW, db = ops.linear_backward(x, W, dy)
    np.testing.assert_allclose(dx, dy @ W.T, rtol=1e-12)
    np.testing.assert_allclose(dW, x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(db, dy.sum(0), rtol=1e-12)


def test_relu_gradient_is_zero_at_zero(ops):
    x = np.array([[-1.0, 0.0, 2.0]], dtype=np.float32)
    dy = np.ones_like(x)
    np.testing.assert_array_equal(ops.relu_backward(x, dy), [[0, 0, 1]])
    np.testing.assert_array_equal(ops.relu_forward(x), [[0, 0, 2]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes_without_warnings(ops, dtype):
    x = np.array([[-1e4, -50, 0, 50, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ops.sigmoid_forward(x)
    assert y.dtype == dtype
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[0, [0, 2, 4]], [0, 0.5, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_finite_for_huge_logits_and_uses_per_row_max(ops, dtype):
    z = np.array([[1e4, -1e4, 0], [-1e4, -1e4 + 1, -1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ops.softmax(z)
    assert s.dtype == dtype and np.all(np.isfinite(s))
    np.testing.assert_allclose(s.sum(1), 1, rtol=1e-6)
    # the second row lies 2e4 below the first: a batch-wide max would give 0/0 here
    np.testing.assert_allclose(s[1], np.exp([0, 1, 0]) / np.exp([0, 1, 0]).sum(), rtol=1e-5)


def test_softmax_backward_equals_explicit_jacobian_product(ops, rng):
    s = ops.softmax(rng.standard_normal((6, 5)))
    ds = rng.standard_normal((6, 5))
    J = ops.softmax_jacobian(s)
    assert J.shape == (6, 5, 5)
    np.testing.assert_allclose(J, np.transpose(J, (0, 2, 1)), rtol=1e-14)  # symmetric
    np.testing.assert_allclose(ops.softmax_backward(s, ds), np.einsum("bk,bkj->bj", ds, J), rtol=1e-12, atol=1e-15)


def test_cross_entropy_labels_and_one_hot_agree(ops, rng):
    z = rng.standard_normal((7, 4)) * 3
    y = rng.integers(0, 4, 7)
    t = np.eye(4)[y]
    p = ops.softmax(z)
    np.testing.assert_allclose(ops.cross_entropy(p, y), -np.log(p[np.arange(7), y]), rtol=1e-12)
    np.testing.assert_allclose(ops.cross_entropy(p, t), ops.cross_entropy(p, y), rtol=1e-12)
    np.testing.assert_allclose(ops.cross_entropy_logits(z, y), -np.log(p[np.arange(7), y]), rtol=1e-10)
    np.testing.assert_allclose(ops.cross_entropy_logits(z, t), ops.cross_entropy_logits(z, y), rtol=1e-12)
    np.testing.assert_allclose(ops.softmax_cross_entropy_backward(p, y), (p - t) / 7, rtol=1e-12)
    np.testing.assert_allclose(ops.softmax_cross_entropy_backward(p, t), (p - t) / 7, rtol=1e-12)


def test_cross_entropy_clips_zero_probabilities(ops):
    p = np.array([[1.0, 0.0]], dtype=np.float32)
    y = np.array([1])
    loss = ops.cross_entropy(p, y)
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss, [-np.log(np.float32(1e-12))], rtol=1e-6)
    np.testing.assert_array_equal(ops.cross_entropy_backward(p, y), [[0, 0]])  # clipped: no gradient


def test_cross_entropy_logits_is_finite_for_huge_logits(ops):
    z = np.array([[1e4, -1e4], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(ops.cross_entropy_logits(z, np.array([1, 0])), [2e4, np.log(2)], rtol=1e-6)


def test_mse_matches_pytorch_convention(ops, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert np.isclose(ops.mse(a, b).mean(), np.mean((a - b) ** 2))
    np.testing.assert_allclose(ops.mse_backward(a, b), 2 * (a - b) / a.size, rtol=1e-12)


# ---- NaN and inf: what NumPy gives, in both backends (issue 10, item 3) ----------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_on_probabilities_keeps_nan_and_clips_to_one(ops, dtype):
    """The clip to [eps, 1] keeps NaN (the Numba kernel once turned it into eps: a loss of 27.63),
    and clips p > 1 and inf to 1 (a loss of 0; the Numba labels kernel once had no upper clip)."""
    p = np.array([[np.nan, 0.5], [0.5, 1.5], [0.5, np.inf], [0.0, 1.0]], dtype=dtype)
    y = np.array([0, 1, 1, 0])
    np.testing.assert_allclose(ops.cross_entropy(p, y), [np.nan, 0, 0, -np.log(dtype(1e-12))], rtol=1e-6)
    np.testing.assert_allclose(ops.cross_entropy(p, np.eye(2, dtype=dtype)[y]), [np.nan, 0, 0, -np.log(dtype(1e-12))],
                               rtol=1e-6)


@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_cross_entropy_backward_is_the_derivative_of_the_clip(ops, targets):
    """-t / (B p) inside [eps, 1]; zero where the clip is active (p < eps or p > 1); NaN stays NaN."""
    p = np.array([[np.nan, 0.5], [0.5, 1.5], [0.5, 0.25], [0.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    dp = ops.cross_entropy_backward(p, y if targets == "labels" else np.eye(2)[y])
    expected = np.array([[np.nan, 0], [0, 0], [0, -1 / (4 * 0.25)], [0, 0]])
    if targets == "one-hot":        # a NaN entry gives NaN whatever its target (0 / NaN)
        expected[0, 1] = 0
    np.testing.assert_allclose(dp, expected)


def test_nan_goes_where_numpy_puts_it(ops):
    x = np.array([[np.nan, -np.inf, np.inf, -1.0, 2.0]])
    np.testing.assert_array_equal(ops.relu_forward(x), [[np.nan, 0, np.inf, 0, 2]])
    np.testing.assert_array_equal(ops.relu_backward(x, np.ones_like(x)), [[0, 0, 1, 0, 1]])
    np.testing.assert_allclose(ops.sigmoid_forward(x), [[np.nan, 0, 1, 1 / (1 + np.e), 1 / (1 + np.exp(-2))]])
    z = np.array([[0.0, np.nan, 1.0], [1.0, 2.0, 3.0], [-np.inf, 0.0, 1.0]])
    s = ops.softmax(z)
    assert np.isnan(s[0]).all() and np.isfinite(s[1:]).all() and s[2, 0] == 0
    loss = ops.cross_entropy_logits(z, np.array([0, 0, 2]))
    assert np.isnan(loss[0]) and np.isfinite(loss[1:]).all()


# ---- soft targets (issue 10, item 4) ---------------------------------------------------------

def test_softmax_cross_entropy_backward_for_targets_not_summing_to_one(ops, rng):
    """The loss per row is lse(z) sum(t) - <t, z>, so its gradient is (p sum(t) - t) / B."""
    p = ops.softmax(rng.standard_normal((4, 3)))
    t = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.1], [2.0, 0.0, 0.5]])
    np.testing.assert_allclose(ops.softmax_cross_entropy_backward(p, t), (p * t.sum(1, keepdims=True) - t) / 4,
                               rtol=1e-14)


# ---- layout, dtype and empty input (issue 10, items 5 and 6) ---------------------------------

@pytest.mark.parametrize("layout", ["transposed", "sliced"])
@pytest.mark.parametrize("name", ["relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "softmax",
                                  "mse_backward", "linear_forward"])
def test_transposed_and_sliced_input_give_the_values_of_a_copy(ops, name, layout, rng):
    """F-ordered (transposed) and sliced arrays once came back from the Numba elementwise kernels
    as uninitialised memory: np.empty_like kept the F layout and the writes went into a copy."""
    def view(a):
        return np.ascontiguousarray(a.T).T if layout == "transposed" else np.repeat(a, 2, axis=1)[:, ::2]

    shapes = {"linear_forward": [(6, 5), (5, 4), (4,)]}.get(name, [(6, 5)] * (1 if name in (
        "relu_forward", "sigmoid_forward", "softmax") else 2))
    args = [rng.standard_normal(s) for s in shapes]
    views = [view(a) if a.ndim == 2 else a for a in args]
    assert not any(v.flags.c_contiguous for v in views if v.ndim == 2)
    expected = getattr(get_backend("numpy"), name)(*args)
    np.testing.assert_allclose(getattr(ops, name)(*views), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad", [np.int64, np.int32, np.bool_, np.float16])
def test_integer_bool_and_float16_input_raise_a_type_error_naming_kernel_argument_and_dtype(ops, bad):
    """Integer input once gave integer zeros from the Numba sigmoid (NumPy: floats), float16 a
    NotImplementedError from inside Numba."""
    x = np.arange(-3, 3).reshape(2, 3).astype(bad)
    for name, arg in (("sigmoid_forward", "x"), ("softmax", "z"), ("relu_forward", "x")):
        with pytest.raises(TypeError, match=rf"^{name}: {arg} has dtype {np.dtype(bad).name}, expected float32 or "
                                            rf"float64 .*{arg}\.astype\(np\.float32\)"):
            getattr(ops, name)(x)


def test_mixed_float_dtypes_raise_a_type_error(ops):
    """float32 x with float64 W once gave float32 from Numba and float64 from NumPy."""
    x = np.ones((2, 3), np.float32)
    W, b = np.ones((3, 4)), np.zeros(4)
    with pytest.raises(TypeError, match=r"^linear_forward: float arguments must share one dtype \(it is the output "
                                        r"dtype\), got x float32, W float64, b float64; cast them to one"):
        ops.linear_forward(x, W, b)


def test_shapes_that_do_not_fit_raise_a_value_error_naming_the_size(ops):
    with pytest.raises(ValueError, match=r"^linear_forward expects x \(B, I\), W \(I, O\), b \(O,\); got x \(2, 3\), "
                                         r"W \(4, 5\), b \(5,\): I is 3 in x but 4 in W$"):
        ops.linear_forward(np.ones((2, 3)), np.ones((4, 5)), np.ones(5))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got min 0 and max 3"):
        ops.cross_entropy_logits(np.ones((2, 3)), np.array([0, 3]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batches_give_empty_outputs(ops, dtype):
    """B = 0 rows everywhere (mse_backward once divided by pred.size = 0); a zero inner dimension
    of a product gives zeros."""
    e = np.zeros((0, 4), dtype)
    assert ops.mse_backward(e, e).shape == (0, 4) and ops.mse(e, e).shape == (0,)
    assert ops.softmax(e).shape == (0, 4) and ops.softmax_jacobian(e).shape == (0, 4, 4)
    assert ops.cross_entropy_logits(e, np.zeros(0, np.int64)).shape == (0,)
    dx, dW, db = ops.linear_backward(e, np.ones((4, 3), dtype), np.zeros((0, 3), dtype))
    assert dx.shape == (0, 4) and dW.dtype == dtype
    np.testing.assert_array_equal(dW, np.zeros((4, 3)))
    np.testing.assert_array_equal(db, np.zeros(3))
    for name in ("matmul", "matmul_naive"):
        C = getattr(ops, name)(np.ones((3, 0), dtype), np.ones((0, 2), dtype))
        assert C.dtype == dtype
        np.testing.assert_array_equal(C, np.zeros((3, 2)))
    np.testing.assert_array_equal(ops.linear_forward(np.ones((2, 0), dtype), np.ones((0, 3), dtype),
                                                     np.arange(3, dtype=dtype)), [[0, 1, 2], [0, 1, 2]])


def test_linear_backward_with_no_outputs_reads_nothing(ops):
    """dx of a layer with O = 0 is zero (the Numba row-dot path once read dy[i, 0] of an empty row)."""
    dx, dW, db = ops.linear_backward(np.ones((3, 4)), np.ones((4, 0)), np.ones((3, 0)))
    np.testing.assert_array_equal(dx, np.zeros((3, 4)))
    assert dW.shape == (4, 0) and db.shape == (0,)


# ---- the fused per-sample kernel against its NumPy twin on infinite values ---------------------

@pytest.mark.parametrize("case", ["relu(-inf)", "sigmoid(-inf)", "logit -inf"])
def test_fused_epoch_with_infinite_pre_activations_and_logits_matches_numpy(case):
    """relu(-inf) = 0, sigmoid(-inf) = 0 and a logit of -inf give finite losses; the fused kernel
    once computed them as -inf * 0 = NaN and stopped at the first sample.  (No input is exactly 0,
    and no infinite weight meets a zero activation: there, 0 * inf is NaN in NumPy while the fused
    kernel skips the row, as its docstring says.)"""
    rng = np.random.default_rng(0)
    X = rng.random((6, 4)) + 0.5
    if case == "logit -inf":                        # one layer: z = x W + b with x > 0
        weights = (rng.standard_normal((4, 3)),)
        weights[0][:, 0] = -np.inf
        acts = np.array([fused_codes.IDENTITY])
    else:                                           # hidden unit 2 has pre-activation -inf
        weights = (rng.standard_normal((4, 5)), rng.standard_normal((5, 3)))
        weights[0][:, 2] = -np.inf
        acts = np.array([fused_codes.RELU if case == "relu(-inf)" else fused_codes.SIGMOID, 0])
    biases = tuple(np.zeros(w.shape[1]) for w in weights)
    args = (np.ones(len(weights)), acts, fused_codes.SOFTMAX_CE, X, np.array([1, 2, 1, 2, 1, 2]), np.zeros((0, 3)),
            np.arange(6), 0.1)
    runs = {}
    for backend in ("numpy", "numba"):
        ws, bs = tuple(w.copy() for w in weights), tuple(b.copy() for b in biases)
        with np.errstate(invalid="ignore"):         # NumPy's unused dx of the first layer: -inf * 0
            runs[backend] = get_backend(backend).sgd_epoch(ws, bs, *args), ws
    (losses, done), trained = runs["numpy"]
    assert done == 6 and np.isfinite(losses).all() and np.isneginf(trained[0]).any()
    (mine, mine_done), mine_trained = runs["numba"]
    assert mine_done == done
    np.testing.assert_allclose(mine, losses, rtol=1e-12)
    for w_mine, w in zip(mine_trained, trained):
        np.testing.assert_allclose(w_mine, w, rtol=1e-12)
