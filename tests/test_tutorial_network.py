"""The tutorials' headline run: 784-512-512-10 sigmoid, per-sample SGD, one epoch of the real
Fashion-MNIST in file order, Xavier-normal init, zero biases, lr 0.02 -> about 83% test accuracy.

Marked ``slow`` (select with ``-m slow``, skip with ``-m "not slow"``); it runs in CI.
"""
from pathlib import Path

import numpy as np
import pytest

from net import CrossEntropyLoss, Linear, Sequential, Sigmoid, fit, metrics, predict
from net.data import fashion_mnist

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs dataset-fashion-mnist (installed by .ci/run)"),
]


@pytest.fixture(scope="module")
def data():
    return fashion_mnist(DEBIAN, download=False)


def _tutorial_network(seed):
    rng = np.random.default_rng(seed)
    return Sequential(
        Linear(784, 512, init="xavier_normal", rng=rng, backend="numba"), Sigmoid(backend="numba"),
        Linear(512, 512, init="xavier_normal", rng=rng, backend="numba"), Sigmoid(backend="numba"),
        Linear(512, 10, init="xavier_normal", rng=rng, backend="numba"),
    )


def test_tutorial_sigmoid_network_one_epoch_reaches_82_percent(data):
    X_train, y_train, X_test, y_test = data
    accuracy = {}
    for threads in (1, 2):
        model = _tutorial_network(seed=0)
        history = fit(model, CrossEntropyLoss(), X_train, y_train, batch_size=1, epochs=1, lr=0.02,
                      shuffle=False, threads=threads)
        assert history.path == "fused"
        accuracy[threads] = metrics.accuracy(predict(model, X_test), y_test)
    assert accuracy[1] >= 0.82, accuracy
    assert abs(accuracy[2] - accuracy[1]) <= 0.005, accuracy
