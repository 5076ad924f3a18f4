"""Central finite differences in float64 for every layer and loss, and through Sequential."""
import numpy as np
import pytest

from net import CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential, Sigmoid, Softmax, gradcheck

BACKENDS = ["numpy", "numba"]
F64 = np.float64
TOL = 1e-5  # a wrong backward gives errors of order 1


def _x(rng, shape=(4, 5)):
    # keep inputs away from ReLU's kink so the differences do not straddle it
    x = rng.standard_normal(shape)
    return x + np.sign(x) * 0.05


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", [CrossEntropyLoss(), CrossEntropyLoss(from_logits=False), MSELoss()], ids=repr)
def test_losses(backend, loss, rng):
    loss.backend = backend
    pred = rng.random((4, 3)) + 0.1
    if getattr(loss, "from_logits", True) is False:
        pred = pred / pred.sum(1, keepdims=True)
    y = np.array([0, 2, 1, 1])
    errors = gradcheck(Sequential(), loss, pred, y)
    assert errors["input"] < TOL, errors


#: Soft targets whose rows do not all sum to 1 (a row of .5s sums to 1.5).
SOFT = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.1], [2.0, 0.0, 0.5]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
def test_cross_entropy_with_soft_targets_not_summing_to_one(backend, from_logits, rng):
    """The loss is lse(z) sum(t) - <t, z> per row, so d/dz is (p sum(t) - t) / B; the fused
    backward once returned (p - t) / B, off by p (sum(t) - 1) / B."""
    loss = CrossEntropyLoss(from_logits=from_logits, backend=backend)
    pred = rng.standard_normal((4, 3))
    if not from_logits:
        pred = np.exp(pred) / np.exp(pred).sum(1, keepdims=True)
    errors = gradcheck(Sequential(), loss, pred, SOFT)
    assert errors["input"] < TOL, errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_sequential_with_soft_targets(backend, rng):
    model = Sequential(Linear(5, 6, dtype=F64, rng=1), Sigmoid(), Linear(6, 3, dtype=F64, rng=2))
    model.backend = backend
    errors = gradcheck(model, CrossEntropyLoss(backend=backend), _x(rng), SOFT)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer_cls", [ReLU, Sigmoid, Softmax])
def test_activations(backend, layer_cls, rng):
    errors = gradcheck(layer_cls(backend=backend), MSELoss(), _x(rng), rng.standard_normal((4, 5)))
    assert errors["input"] < TOL, errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear(backend, rng):
    layer = Linear(5, 3, backend=backend, dtype=F64, rng=0)
    layer.params["b"][:] = rng.standard_normal(3)
    errors = gradcheck(layer, MSELoss(), _x(rng), rng.standard_normal((4, 3)))
    assert set(errors) == {"input", "0.Linear.W", "0.Linear.b"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", [ReLU, Sigmoid])
@pytest.mark.parametrize("probs", [False, True], ids=["logits", "softmax-layer"])
def test_sequential(backend, act, probs, rng):
    layers = [Linear(5, 8, dtype=F64, rng=1), act(), Linear(8, 8, dtype=F64, rng=2), act(),
              Linear(8, 3, dtype=F64, rng=3)]
    if probs:
        layers.append(Softmax())
    model = Sequential(layers)
    model.backend = backend
    errors = gradcheck(model, CrossEntropyLoss(from_logits=not probs, backend=backend), _x(rng), [0, 2, 1, 1])
    assert max(errors.values()) < TOL, errors


def test_large_layer_uses_random_directions(rng):
    layer = Linear(784, 64, dtype=F64, rng=0)
    errors = gradcheck(layer, CrossEntropyLoss(), rng.random((2, 784)), [3, 5], directions=4)
    assert max(errors.values()) < TOL, errors


class _SignFlippedSigmoid(Sigmoid):
    def _backward(self, y, dy):
        return -super()._backward(y, dy)


def test_gradcheck_catches_a_wrong_backward(rng):
    model = Sequential(Linear(5, 4, dtype=F64, rng=0), _SignFlippedSigmoid(), Linear(4, 3, dtype=F64, rng=1))
    errors = gradcheck(model, CrossEntropyLoss(), _x(rng), [0, 1, 2, 0])
    assert errors["2.Linear.W"] < TOL  # after the bad layer: still right
    assert errors["0.Linear.W"] > 0.5 and errors["input"] > 0.5


def test_gradcheck_refuses_float32():
    with pytest.raises(ValueError, match="needs float64 parameters"):
        gradcheck(Linear(2, 2), MSELoss(), np.ones((1, 2)), np.ones((1, 2)))
