"""Training: backends agree after many steps, and a small network actually learns."""
import numpy as np
import pytest

from net import (CrossEntropyLoss, Linear, MSELoss, ReLU, SGD, Sequential, Sigmoid, TrainingDivergedError, fit, metrics,
                 predict)
from net.data import spiral


def _mlp(backend, dtype, act=ReLU, seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(2, 32, rng=rng, dtype=dtype, init="kaiming_normal"), act(),
                       Linear(32, 16, rng=rng, dtype=dtype), act(), Linear(16, 3, rng=rng, dtype=dtype))
    model.backend = backend
    return model


@pytest.mark.parametrize("dtype,rtol,atol", [(np.float32, 2e-4, 2e-5), (np.float64, 1e-10, 1e-12)])
@pytest.mark.parametrize("act", [ReLU, Sigmoid])
def test_numpy_and_numba_models_end_with_the_same_weights(dtype, rtol, atol, act):
    X, y = spiral(40, 3, rng=1, dtype=dtype)  # 120 samples, batches of 12: 5 epochs = 50 steps
    models = {}
    for backend in ("numpy", "numba"):
        model = _mlp(backend, dtype, act)
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        hist = fit(model, CrossEntropyLoss(backend=backend), X, y, batch_size=12, epochs=5, optimizer=opt,
                   rng=3)
        models[backend] = (model, hist)
    (a, ha), (b, hb) = models["numpy"], models["numba"]
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.value.dtype == dtype
        np.testing.assert_allclose(pb.value, pa.value, rtol=rtol, atol=atol, err_msg=f"{pa.layer!r}.{pa.name}")
    np.testing.assert_allclose(hb, ha, rtol=rtol)


def test_spiral_is_learned_by_a_two_layer_relu_network():
    X, y = spiral(100, 3, rng=0)
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 100, init="kaiming_normal", rng=rng), ReLU(), Linear(100, 3, rng=rng))
    history = fit(model, CrossEntropyLoss(), X, y, batch_size=None, epochs=1000, lr=1.0)
    assert history[-1] < history[0] / 5
    assert metrics.accuracy(predict(model, X), y) >= 0.90


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_fit_covers_every_sample_and_reports_epoch_loss(batch_size):
    X, y = spiral(10, 2, rng=0)
    seen = []
    model = Sequential(Linear(2, 2, rng=0))
    hist = fit(model, MSELoss(), X, y, batch_size=batch_size, epochs=2, lr=0.01,
               on_batch=lambda rows, loss: seen.append(rows))
    assert sum(seen) == 2 * len(X) and len(hist) == 2 and all(np.isfinite(hist))


def test_fit_rejects_bad_arguments():
    X, y = spiral(5, 2, rng=0)
    model = Sequential(Linear(2, 2))
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
        fit(model, MSELoss(), X, y, batch_size=0)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(model, MSELoss(), X, y, epochs=0)
    with pytest.raises(ValueError, match="X has 10 samples but y has shape"):
        fit(model, MSELoss(), X, y[:3])
    with pytest.raises(ValueError, match="lr must be > 0"):
        fit(model, MSELoss(), X, y, lr=0)


# ---- empty and non-finite data --------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("batch_size", [1, 8, None])
def test_fit_on_no_samples_is_a_clear_error(backend, batch_size):
    model = _mlp(backend, np.float32)
    with pytest.raises(ValueError, match=r"fit: X has no samples \(shape \(0, 2\)\)"):
        fit(model, CrossEntropyLoss(backend=backend), np.zeros((0, 2), np.float32), np.zeros(0, np.int64),
            batch_size=batch_size)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_predict_on_no_rows_gives_an_empty_result(backend):
    model = _mlp(backend, np.float32)
    out = predict(model, np.zeros((0, 2), np.float32))
    assert out.shape == (0, 3) and out.dtype == np.float32


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("backend,batch_size", [("numpy", 4), ("numba", 1), ("numba", 4)])
def test_fit_names_the_first_non_finite_row_of_X_before_training(bad, backend, batch_size):
    X, y = spiral(10, 3, rng=0)
    X[5, 1] = bad
    X[9, 0] = bad
    model = _mlp(backend, np.float32)
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"fit: X has NaN or infinite values in 2 rows, the first is row 5"):
        fit(model, CrossEntropyLoss(backend=backend), X, y, batch_size=batch_size)
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(p.value, b)


def test_fit_rejects_non_finite_dense_targets():
    X, y = spiral(10, 3, rng=0)
    T = np.eye(3, dtype=np.float32)[y]
    T[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"fit: y has NaN or infinite values in 1 row, the first is row 7"):
        fit(_mlp("numpy", np.float32), MSELoss(), X, T, batch_size=4)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("batch_size", [8, None])
def test_divergence_in_a_mini_batch_names_the_sample_that_overflowed(backend, batch_size):
    X, y = spiral(20, 2, rng=0)              # 40 samples
    X = X.astype(np.float64)
    X[13] = 1e200                            # finite, but its squared error overflows
    model = _mlp(backend, np.float64)
    with pytest.raises(TrainingDivergedError, match=r"in epoch 1 at sample 13 \(position 13 of the epoch\)"):
        fit(model, MSELoss(backend=backend), X, y, batch_size=batch_size, lr=0.01, shuffle=False)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_at_the_first_step_does_not_blame_the_learning_rate():
    X, y = spiral(20, 2, rng=0)
    X = X.astype(np.float64)
    X[3] = 1e200
    with pytest.raises(TrainingDivergedError, match=r"before this fit made any update") as info:
        fit(_mlp("numpy", np.float64), MSELoss(), X, y, batch_size=8, lr=0.01, shuffle=False)
    assert "learning rate" not in str(info.value)
