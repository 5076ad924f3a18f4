"""Layer API, dtype discipline and bad-input errors."""
import numpy as np
import pytest

import net
from net import Linear, ReLU, Sequential, Sigmoid, Softmax

BACKENDS = ["numpy", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_shapes_and_dtypes(backend, dtype, rng):
    layer = Linear(4, 3, backend=backend, dtype=dtype, rng=0)
    x = rng.standard_normal((5, 4)).astype(dtype)
    y = layer(x)
    assert y.shape == (5, 3) and y.dtype == dtype
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == (5, 4) and dx.dtype == dtype
    assert layer.grads["W"].shape == (4, 3) and layer.grads["W"].dtype == dtype
    assert layer.grads["b"].shape == (3,) and layer.grads["b"].dtype == dtype


@pytest.mark.parametrize("layer_cls", [ReLU, Sigmoid, Softmax])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
def test_activations_keep_dtype(layer_cls, dtype, backend, rng):
    layer = layer_cls(backend=backend)
    x = rng.standard_normal((3, 5)).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert layer.backward(np.ones_like(y)).dtype == dtype
    assert layer.params == {} and layer.grads == {}


def test_linear_wrong_width_names_expected_and_actual():
    layer = Linear(784, 512)
    with pytest.raises(ValueError, match=r"Linear\(784 -> 512\) expected input of shape \(batch, 784\), "
                                         r"got \(32, 28, 28\); flatten it to \(32, 784\)"):
        layer(np.zeros((32, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"got \(2, 100\)"):
        layer(np.zeros((2, 100)))
    with pytest.raises(ValueError, match=r"reshape\(1, 784\)"):
        layer(np.zeros(784))


def test_wrong_input_fails_before_any_kernel_runs(monkeypatch):
    layer = Linear(3, 2, backend="numba")
    calls = []
    monkeypatch.setattr(layer, "ops", type("Spy", (), {"linear_forward": lambda *a: calls.append(a)}))
    with pytest.raises(ValueError):
        layer(np.zeros((2, 4)))
    assert calls == []


def test_backward_shape_is_checked():
    layer = Linear(3, 2)
    layer(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(4, 2\), got \(4, 3\)"):
        layer.backward(np.zeros((4, 3)))


@pytest.mark.parametrize("layer", [Linear(3, 2), ReLU(), Sigmoid(), Softmax()], ids=repr)
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((1, 2)))


def test_integer_input_is_converted_to_the_layer_dtype():
    """Documented: integer/bool input (e.g. uint8 pixels) is cast to the layer's dtype."""
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    lin = Linear(3, 2, dtype=np.float64, rng=0)
    np.testing.assert_allclose(lin(x), x.astype(np.float64) @ lin.params["W"])
    assert lin(x).dtype == np.float64
    assert ReLU()(x).dtype == np.float32  # parameter-free layers: ints become float32


def test_float64_input_to_float32_layer_gives_float32():
    assert Linear(3, 2)(np.ones((1, 3))).dtype == np.float32


def test_complex_or_object_input_is_rejected():
    with pytest.raises(TypeError, match="real numeric array"):
        ReLU()(np.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="real numeric array"):
        Linear(2, 2)(np.array([["a", "b"]]))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="unknown init 'nope'; choose one of normal, uniform"):
        Linear(2, 3, init="nope")
    with pytest.raises(TypeError, match="float32 or float64"):
        Linear(2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="unknown backend 'gpu'; choose one of 'numpy', 'numba'"):
        Linear(2, 3, backend="gpu")


def test_set_backend_changes_the_default_for_new_layers():
    try:
        net.set_backend("numba")
        assert Linear(2, 2).backend == "numba" and ReLU().backend == "numba"
        with pytest.raises(ValueError, match="choose one of"):
            net.set_backend("torch")
        assert net.get_backend() == "numba"
    finally:
        net.set_backend("numpy")
    assert Linear(2, 2).backend == "numpy"


def test_backend_can_be_switched_on_a_model(rng):
    model = Sequential(Linear(3, 4, rng=0), ReLU(), Linear(4, 2, rng=1))
    x = rng.standard_normal((5, 3))
    before = model(x)
    model.backend = "numba"
    assert model.backend == "numba" and all(layer.backend == "numba" for layer in model)
    np.testing.assert_allclose(model(x), before, rtol=1e-5, atol=1e-6)


def test_linear_without_bias_has_no_b(rng):
    layer = Linear(3, 2, bias=False, rng=0)
    assert set(layer.params) == {"W"}
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(layer(x), x.astype(np.float32) @ layer.params["W"], rtol=1e-6)
    layer.backward(np.ones((4, 2)))
    assert set(layer.grads) == {"W"}


def test_sequential_api(rng):
    model = Sequential([Linear(3, 4, rng=0), ReLU(), Linear(4, 2, rng=1)])
    assert len(model) == 3 and isinstance(model[1], ReLU)
    names = [(p.layer, p.name) for p in model.parameters()]
    assert names == [(model[0], "W"), (model[0], "b"), (model[2], "W"), (model[2], "b")]
    model(rng.standard_normal((2, 3)))
    model.backward(np.ones((2, 2)))
    model.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())
    with pytest.raises(TypeError, match="is not a layer"):
        Sequential(Linear(2, 2), "relu")
    assert "Linear(3 -> 4)" in repr(model)


def test_same_seed_same_weights():
    a, b = Linear(5, 4, rng=7), Linear(5, 4, rng=7)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], Linear(5, 4, rng=8).params["W"])
