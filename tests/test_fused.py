"""The fused per-sample SGD kernel against the layer-by-layer path, threads, fallbacks, bad input."""
import numpy as np
import pytest

from net import (CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential, Sigmoid, Softmax, TrainingDivergedError, fit)
from net.fused import plan

ACTS = {"relu": ReLU, "sigmoid": Sigmoid, "identity": None}
TOL = {np.float32: dict(rtol=2e-3, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def _data(n=300, d=30, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    X[rng.random((n, d)) < 0.4] = 0          # exact zeros, like background pixels
    y = rng.integers(0, k, n)
    return X.astype(dtype), y


def _model(backend, act, dtype, sizes=(30, 16, 12, 4), bias=True, seed=1):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Linear(a, b, rng=rng, dtype=dtype, backend=backend, bias=bias))
        if i < len(sizes) - 2 and ACTS[act] is not None:
            layers.append(ACTS[act](backend=backend))
    return Sequential(layers)


def _loss(name, backend):
    return CrossEntropyLoss(backend=backend) if name == "ce" else MSELoss(backend=backend)


def _assert_same_weights(a, b, dtype):
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pb.value, pa.value, **TOL[dtype], err_msg=f"{pa.layer!r}.{pa.name}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
@pytest.mark.parametrize("act", list(ACTS))
def test_fused_equals_layer_by_layer_numpy_after_300_samples(act, loss_name, dtype):
    X, y = _data(dtype=dtype)
    ref = _model("numpy", act, dtype)
    hist_ref = fit(ref, _loss(loss_name, "numpy"), X, y, batch_size=1, epochs=1, lr=0.05, rng=7)
    fast = _model("numba", act, dtype)
    hist_fast = fit(fast, _loss(loss_name, "numba"), X, y, batch_size=1, epochs=1, lr=0.05, rng=7)
    assert hist_ref.path == "layers" and hist_fast.path == "fused"
    _assert_same_weights(ref, fast, dtype)
    np.testing.assert_allclose(hist_fast, hist_ref, rtol=TOL[dtype]["rtol"])
    assert fast[0].params["W"].dtype == dtype


@pytest.mark.parametrize("sizes", [(30, 4), (30, 16, 4), (30, 40, 24, 12, 4)], ids=["L1", "L2", "L4"])
@pytest.mark.parametrize("act", ["relu", "sigmoid"])
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_sequential_sgd(sizes, act, threads):
    X, y = _data(n=200)
    one = _model("numba", act, np.float64, sizes)
    h1 = fit(one, CrossEntropyLoss(), X, y, batch_size=1, epochs=2, lr=0.05, rng=3)
    many = _model("numba", act, np.float64, sizes)
    hn = fit(many, CrossEntropyLoss(), X, y, batch_size=1, epochs=2, lr=0.05, rng=3, threads=threads)
    assert hn.path == "fused" and hn.threads == threads
    _assert_same_weights(one, many, np.float64)
    np.testing.assert_allclose(hn, h1, rtol=1e-9)


def test_threads_with_mse_and_float32():
    X, y = _data(n=200, dtype=np.float32)
    one = _model("numba", "relu", np.float32)
    fit(one, MSELoss(), X, y, batch_size=1, lr=0.05, rng=3)
    two = _model("numba", "relu", np.float32)
    fit(two, MSELoss(), X, y, batch_size=1, lr=0.05, rng=3, threads=2)
    _assert_same_weights(one, two, np.float32)


def test_layers_without_bias_stay_without_bias():
    X, y = _data()
    ref = _model("numpy", "identity", np.float64, bias=False)
    fit(ref, CrossEntropyLoss(), X, y, batch_size=1, lr=0.05, rng=0)
    fast = _model("numba", "identity", np.float64, bias=False)
    assert fit(fast, CrossEntropyLoss(), X, y, batch_size=1, lr=0.05, rng=0).path == "fused"
    _assert_same_weights(ref, fast, np.float64)
    assert all(set(layer.params) == {"W"} for layer in fast if isinstance(layer, Linear))


def test_one_hot_targets_take_the_fused_path():
    X, y = _data()
    a, b = _model("numba", "relu", np.float64), _model("numba", "relu", np.float64)
    fit(a, CrossEntropyLoss(), X, y, batch_size=1, rng=0)
    assert fit(b, CrossEntropyLoss(), X, np.eye(4)[y], batch_size=1, rng=0).path == "fused"
    _assert_same_weights(a, b, np.float64)


class _Scale:
    """A user's own layer: not something the fused kernel knows."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 2 * dy


@pytest.mark.parametrize("make", [
    lambda: (Sequential(Linear(30, 8, rng=0, backend="numba"), Sigmoid(backend="numba"),
                        Linear(8, 4, rng=1, backend="numba"), Softmax(backend="numba")),
             CrossEntropyLoss(from_logits=False, backend="numba")),
    lambda: (Sequential(Linear(30, 8, rng=0, backend="numba"), _Scale(), Linear(8, 4, rng=1, backend="numba")),
             CrossEntropyLoss(backend="numba")),
    lambda: (Sequential(Linear(30, 8, rng=0, backend="numpy"), ReLU(), Linear(8, 4, rng=1)), CrossEntropyLoss()),
], ids=["softmax-layer", "custom-layer", "numpy-backend"])
def test_unsupported_stacks_fall_back_and_still_train(make):
    X, y = _data()
    model, loss = make()
    assert isinstance(plan(model, loss, batch_size=1), str)
    hist = fit(model, loss, X, y, batch_size=1, epochs=3, lr=0.05, rng=0)
    assert hist.path == "layers" and hist[-1] < hist[0]
    model, loss = make()
    with pytest.raises(ValueError, match=r"threads=2 needs the fused per-sample kernel, but"):
        fit(model, loss, X, y, batch_size=1, threads=2)


def test_fused_true_says_why_not():
    X, y = _data()
    model = _model("numba", "relu", np.float64)
    with pytest.raises(ValueError, match=r"fused=True needs .* per-sample SGD only \(batch_size=1\)"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=8, fused=True)
    with pytest.raises(ValueError, match="no momentum"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=1, momentum=0.9, fused=True)


@pytest.mark.parametrize("threads", [1, 2])
def test_bad_input_is_rejected_before_training(threads):
    X, y = _data()
    model = _model("numba", "relu", np.float64)
    before = [p.value.copy() for p in model.parameters()]
    bad_y = y.copy()
    bad_y[150] = 4
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) .* got min 0 and max 4"):
        fit(model, CrossEntropyLoss(), X, bad_y, batch_size=1, threads=threads)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 30\), got X of shape \(300, 29\)"):
        fit(model, CrossEntropyLoss(), X[:, :29], y, batch_size=1, threads=threads)
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(p.value, b)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("backend,threads", [("numba", 1), ("numba", 2), ("numpy", 1)])
def test_non_finite_loss_stops_with_epoch_and_sample(backend, threads):
    X, y = _data(n=50)
    X[17] = 1e200                                  # sample 17's squared error overflows to inf
    model = _model(backend, "identity", np.float64)
    with pytest.raises(TrainingDivergedError, match=r"in epoch 1 at sample 17 \(position 17 of the epoch\)"):
        fit(model, MSELoss(backend=backend), X, y, batch_size=1, lr=0.01, shuffle=False, threads=threads)


def test_progress_callback_on_the_fused_path():
    X, y = _data(n=5000)
    rows = []
    fit(_model("numba", "relu", np.float32), CrossEntropyLoss(), X, y, batch_size=1,
        on_batch=lambda n, loss: rows.append(n))
    assert sum(rows) == 5000 and len(rows) == 3
