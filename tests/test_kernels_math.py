"""The kernels against their mathematical definitions (both backends)."""
import warnings

import numpy as np
import pytest

import kernels
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
