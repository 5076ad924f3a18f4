"""A fused epoch run as several kernel calls ends with exactly the weights of one call."""
import numpy as np
import pytest

from net import (
    SGD,
    CrossEntropyLoss,
    Linear,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    fit,
    fused,
    train,
)

N = 300


def _model(dtype, seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(40, 24, rng=rng, dtype=dtype), ReLU(), Linear(24, 16, rng=rng, dtype=dtype), Sigmoid(),
                       Linear(16, 5, rng=rng, dtype=dtype))
    model.backend = "numba"
    return model


def _data(dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N, 40)).astype(dtype)
    X[X < 0.3] = 0                                   # zero inputs: the kernels' row-skipping paths
    return X, rng.integers(0, 5, N)


def _weights(model):
    return [p.value.copy() for p in model.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size,momentum,threads,loss", [
    (1, 0.0, 1, CrossEntropyLoss()),                 # per-sample kernel
    (1, 0.0, 2, CrossEntropyLoss()),                 # per-sample kernel, two threads
    (1, 0.0, 1, MSELoss()),
    (7, 0.0, 1, CrossEntropyLoss()),                 # mini-batch kernel, N % 7 = 6: a partial last batch
    (7, 0.9, 1, CrossEntropyLoss()),                 # momentum: velocities carried between calls
    (None, 0.5, 1, MSELoss()),                       # full batch: one call whatever the chunk
], ids=["per-sample", "per-sample-2-threads", "per-sample-mse", "batch-7", "batch-7-momentum", "full-momentum"])
def test_chunked_kernel_calls_give_the_weights_of_one_call(dtype, batch_size, momentum, threads, loss):
    X, y = _data(dtype)
    order = np.random.default_rng(2).permutation(N)
    results = []
    for rows in (N, 64, 1):                          # one call; calls of ~64 rows; of one batch each
        model = _model(dtype)
        opt = SGD(model.parameters(), lr=0.05, momentum=momentum)
        plan = fused.plan(model, loss, batch_size=batch_size, optimizer=opt)
        assert not isinstance(plan, str), plan
        labels, targets = plan.targets(y)
        step = plan.chunk(N, rows)
        total = 0.0
        for _ in range(2):                           # two epochs
            for start in range(0, N, step):
                loss_sum, failed = plan.run(X, labels, targets, order[start:start + step], 0.05, threads,
                                            n_total=N)
                assert failed is None
                total += loss_sum
        results.append((_weights(model), total))
    (one, loss_one), *others = results
    for weights, total in others:
        for a, b in zip(one, weights):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(total, loss_one, rtol=1e-12)     # float64 sums in another order


@pytest.mark.parametrize("batch_size,momentum", [(1, 0.0), (7, 0.9)])
def test_fit_calls_the_kernel_in_chunks_without_changing_the_result(monkeypatch, batch_size, momentum):
    X, y = _data(np.float32)
    runs = {}
    for seconds in (1e9, 0.0):                       # chunks growing to the whole epoch; chunks of one batch
        monkeypatch.setattr(train, "FUSED_CALL_SECONDS", seconds)
        monkeypatch.setattr(train, "FUSED_FIRST_CHUNK", 16)
        model = _model(np.float32)
        calls = []
        hist = fit(model, CrossEntropyLoss(), X, y, batch_size=batch_size, momentum=momentum, epochs=2, rng=3,
                   lr=0.05, on_batch=lambda rows, loss, calls=calls: calls.append(rows))
        assert hist.path == "fused" and sum(calls) == 2 * N
        runs[seconds] = (_weights(model), list(hist), calls)
    (w_big, h_big, c_big), (w_small, h_small, c_small) = runs[1e9], runs[0.0]
    assert len(c_small) > len(c_big) > 2             # the progress callback sees the epoch move
    for a, b in zip(w_big, w_small):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(h_small, h_big, rtol=1e-12)


def test_a_fused_epoch_without_a_progress_callback_is_still_chunked(monkeypatch):
    X, y = _data(np.float32)
    sizes = []
    real_run = fused.FusedPlan.run

    def spy(self, X, labels, targets, order, *args, **kwargs):
        sizes.append(order.shape[0])
        return real_run(self, X, labels, targets, order, *args, **kwargs)

    monkeypatch.setattr(fused.FusedPlan, "run", spy)
    monkeypatch.setattr(train, "FUSED_FIRST_CHUNK", 16)
    monkeypatch.setattr(train, "FUSED_CALL_SECONDS", 0.0)
    fit(_model(np.float32), CrossEntropyLoss(), X, y, batch_size=1, epochs=1, rng=0)
    assert sum(sizes) == N and max(sizes) == 16        # Ctrl-C is answered between these calls
