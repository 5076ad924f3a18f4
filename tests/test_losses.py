"""Losses: values, both cross-entropy paths, targets as labels or one-hot, bad input."""
import numpy as np
import pytest

from net import CrossEntropyLoss, MSELoss, Softmax

BACKENDS = ["numpy", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_cross_entropy_paths_give_the_same_logits_gradient(backend, dtype, rng):
    z = (rng.standard_normal((8, 5)) * 3).astype(dtype)
    y = rng.integers(0, 5, 8)
    fused = CrossEntropyLoss(from_logits=True, backend=backend)
    l1 = fused(z, y)
    g1 = fused.backward()
    softmax = Softmax(backend=backend)
    probs = CrossEntropyLoss(from_logits=False, backend=backend)
    l2 = probs(softmax(z), y)
    g2 = softmax.backward(probs.backward())
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert g1.dtype == g2.dtype == dtype
    np.testing.assert_allclose(l1, l2, rtol=tol)
    np.testing.assert_allclose(g1, g2, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_value_and_one_hot_targets(backend, rng):
    z = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 1])
    loss = CrossEntropyLoss(backend=backend)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(4), y]))
    assert np.isclose(loss(z, y), expected, rtol=1e-12)
    g_labels = loss.backward()
    assert np.isclose(loss(z, np.eye(3)[y]), expected, rtol=1e-12)
    np.testing.assert_allclose(loss.backward(), g_labels, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mse_value_gradient_and_labels(backend, rng):
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss = MSELoss(backend=backend)
    assert np.isclose(loss(pred, target), np.mean((pred - target) ** 2))
    np.testing.assert_allclose(loss.backward(), 2 * (pred - target) / 12)
    y = np.array([0, 2, 1, 1])
    assert np.isclose(loss(pred, y), np.mean((pred - np.eye(3)[y]) ** 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_on_nan_probabilities_is_nan(backend):
    """Softmax + CrossEntropyLoss(from_logits=False) on the numba backend once turned a NaN
    probability into eps (a finite loss of 27.63), so training never saw the divergence."""
    loss = CrossEntropyLoss(from_logits=False, backend=backend)
    p = np.array([[np.nan, np.nan, np.nan], [0.2, 0.3, 0.5]])
    assert np.isnan(loss(p, [0, 1]))
    assert np.isnan(loss(p, np.eye(3)[[0, 1]]))
    assert np.isnan(loss.backward()[0]).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_targets_value_and_gradient(backend, dtype, rng):
    """Rows of targets need not sum to 1: loss lse(z) sum(t) - <t, z>, gradient (p sum(t) - t) / B."""
    z = rng.standard_normal((4, 3)).astype(dtype)
    t = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.1], [2.0, 0.0, 0.5]], dtype=dtype)
    loss = CrossEntropyLoss(backend=backend)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    lse = np.log(np.exp(z64).sum(1))
    p = np.exp(z64 - lse[:, None])
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert np.isclose(loss(z, t), np.mean(lse * t64.sum(1) - (t64 * z64).sum(1)), rtol=tol)
    g = loss.backward()
    assert g.dtype == dtype
    np.testing.assert_allclose(g, (p * t64.sum(1, keepdims=True) - t64) / 4, rtol=tol * 10, atol=tol)


def test_loss_forward_returns_python_float():
    assert type(CrossEntropyLoss()(np.zeros((2, 3), np.float32), [0, 1])) is float


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), CrossEntropyLoss(from_logits=False), MSELoss()], ids=repr)
def test_bad_targets(loss):
    pred = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got min 0 and max 4"):
        loss(pred, [0, 1, 4])
    with pytest.raises(ValueError, match="expected 3 labels to match predictions, got 2"):
        loss(pred, [0, 1])
    with pytest.raises(ValueError, match=r"expected targets of shape \(3,\) \(labels\) or \(3, 4\)"):
        loss(pred, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="1-D targets must be integer class labels"):
        loss(pred, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, features\), got \(4,\)"):
        loss(np.zeros(4), [0])


def test_loss_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        MSELoss().backward()
