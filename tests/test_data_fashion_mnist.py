"""The real Fashion-MNIST, as installed by ``apt-get install dataset-fashion-mnist`` (.ci/run does)."""
from pathlib import Path

import numpy as np
import pytest

from net.data import FASHION_MNIST, FASHION_MNIST_CLASSES, fashion_mnist, locate
from net.data.datasets import _content_sha256

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="needs the Debian package dataset-fashion-mnist (installed by .ci/run)"
)

# SHA-256 of the decompressed IDX files of the original Fashion-MNIST release.
PINNED_CONTENT = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


@pytest.fixture(scope="module")
def raw():
    return fashion_mnist(DEBIAN, normalize="none", flatten=False, download=False)


def test_pinned_sha256_of_the_four_files():
    for name, digest in PINNED_CONTENT.items():
        assert _content_sha256(DEBIAN / name) == digest, name
    assert {f.name: f.content_sha256 for f in FASHION_MNIST.files.values()} == PINNED_CONTENT


def test_found_offline_in_the_system_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRATCHNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    paths = locate(FASHION_MNIST, download=False)
    assert all(p.parent == DEBIAN for p in paths.values())


def test_shapes_labels_and_class_balance(raw):
    X_train, y_train, X_test, y_test = raw
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)
    assert set(np.unique(y_train)) == set(range(10))
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaled_to_unit_interval_and_flattened(raw, dtype):
    X_train, y_train, X_test, y_test = fashion_mnist(DEBIAN, dtype=dtype, download=False)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == dtype and X_test.dtype == dtype
    assert X_train.min() == 0 and X_train.max() == 1
    np.testing.assert_allclose(X_train[123], raw[0][123].reshape(-1) / 255, rtol=1e-7)


def test_standardized_with_training_statistics():
    X_train, _, X_test, _ = fashion_mnist(DEBIAN, normalize="standardize", download=False)
    assert X_train.dtype == np.float32
    assert abs(float(X_train.mean(dtype=np.float64))) < 1e-4
    assert abs(float(X_train.std(dtype=np.float64)) - 1) < 1e-4
    assert abs(float(X_test.mean(dtype=np.float64))) < 0.05  # test set: train statistics, so only close
