"""MNIST-style loading from IDX files the tests write, the search order, and verified downloads
against a local HTTP server on 127.0.0.1."""
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from net.data import (MNIST, DatasetChecksumError, DatasetNotFoundError, DatasetSpec, IdxFile, load, mnist,
                      sha256_of, write_idx)
from net.data import datasets as ds

N_TRAIN, N_TEST = 30, 12


def _write_set(folder: Path, rng, gz: bool = True, n_train=N_TRAIN) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (N_TEST, 28, 28)).astype(np.uint8),
        "test_labels": rng.integers(0, 10, N_TEST).astype(np.uint8),
    }
    for part, arr in arrays.items():
        name = MNIST.files[part].name
        write_idx(folder / (name if gz else name.removesuffix(".gz")), arr)
    return arrays


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No system folders, an empty cache, no $SCRATCHNET_DATA."""
    monkeypatch.setattr(ds, "SYSTEM_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNET_DATA", raising=False)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_mnist_from_root(isolated, rng, gz):
    arrays = _write_set(isolated / "mine", rng, gz=gz)
    X_train, y_train, X_test, y_test = mnist(isolated / "mine", verify=False, download=False)
    assert X_train.shape == (N_TRAIN, 784) and X_test.shape == (N_TEST, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(X_train, arrays["train_images"].reshape(N_TRAIN, -1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_pinned_checksums_reject_files_that_are_not_mnist(isolated, rng):
    _write_set(isolated / "mine", rng)
    with pytest.raises(DatasetChecksumError, match=r"train-images-idx3-ubyte.gz: checksum mismatch"):
        mnist(isolated / "mine", download=False)


def test_search_order_env_then_system_then_cache(isolated, rng, monkeypatch):
    _write_set(isolated / "cache" / "scratchnet" / "mnist", rng)
    assert ds.locate(MNIST, download=False)["train_images"].parent == isolated / "cache" / "scratchnet" / "mnist"
    _write_set(isolated / "system" / "mnist", rng)
    assert ds.locate(MNIST, download=False)["train_images"].parent == isolated / "system" / "mnist"
    _write_set(isolated / "env" / "mnist", rng)
    monkeypatch.setenv("SCRATCHNET_DATA", str(isolated / "env"))
    assert ds.locate(MNIST, download=False)["train_images"].parent == isolated / "env" / "mnist"
    _write_set(isolated / "root", rng)
    assert ds.locate(MNIST, isolated / "root", download=False)["train_images"].parent == isolated / "root"


def test_not_found_says_where_it_looked_and_how_to_get_the_data(isolated, rng):
    partial = isolated / "cache" / "scratchnet" / "mnist"       # (a root is the only place looked at)
    partial.mkdir(parents=True)
    write_idx(partial / "train-images-idx3-ubyte.gz", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(DatasetNotFoundError) as info:
        mnist(download=False)
    msg = str(info.value)
    assert "system data folder" in msg and "(only 1 of 4 files)" in msg and "user cache" in msg
    assert "SCRATCHNET_DATA" in msg and MNIST.mirrors[0] in msg
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load(ds.FASHION_MNIST, download=False)


def test_images_and_labels_must_fit_together(isolated, rng):
    arrays = _write_set(isolated / "mine", rng)
    write_idx(isolated / "mine" / "train-labels-idx1-ubyte.gz", arrays["train_labels"][:-1])
    with pytest.raises(Exception, match=rf"holds {N_TRAIN} images but .* holds {N_TRAIN - 1} labels"):
        mnist(isolated / "mine", verify=False, download=False)


def test_unknown_normalize_lists_choices(isolated, rng):
    with pytest.raises(ValueError, match="normalize must be one of scale, standardize, none"):
        mnist(isolated, normalize="minmax")


# ---- downloads from a local server -------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = set()  # file names sent with a lying Content-Length and cut short

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in self.truncate:
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = type("H", (_Handler,), {"truncate": set()})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(served), **k))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    httpd.shutdown()
    httpd.server_close()


def _spec_for(folder: Path, url: str, corrupt: str | None = None) -> DatasetSpec:
    files = {}
    for part, f in MNIST.files.items():
        digest = sha256_of(folder / f.name)
        files[part] = IdxFile(f.name, "0" * 64 if f.name == corrupt else digest)
    return DatasetSpec("tiny-mnist", files, (url,), MNIST.class_names)


def _cache_files(isolated):
    folder = isolated / "cache" / "scratchnet" / "tiny-mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_loads(isolated, server, rng):
    served, url, _ = server
    arrays = _write_set(served, rng)
    X_train, y_train, _, _ = load(_spec_for(served, url), progress=False)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    assert _cache_files(isolated) == sorted(f.name for f in MNIST.files.values())
    load(_spec_for(served, url), progress=False, download=False)  # now found in the cache


def test_checksum_mismatch_leaves_no_file_behind(isolated, server, rng):
    served, url, _ = server
    _write_set(served, rng)
    spec = _spec_for(served, url, corrupt="t10k-images-idx3-ubyte.gz")
    with pytest.raises(DatasetChecksumError, match="t10k-images-idx3-ubyte.gz: expected SHA-256 0000"):
        load(spec, progress=False)
    assert "t10k-images-idx3-ubyte.gz" not in _cache_files(isolated)
    assert not [n for n in _cache_files(isolated) if n.startswith(".")]  # no temp files either


def test_interrupted_download_leaves_no_partial_file(isolated, server, rng):
    served, url, handler = server
    _write_set(served, rng, n_train=2000)
    handler.truncate.add("train-images-idx3-ubyte.gz")
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        load(_spec_for(served, url), progress=False)
    assert _cache_files(isolated) == []


def test_unreachable_mirror_is_reported(isolated, rng):
    spec = DatasetSpec("tiny-mnist", MNIST.files, ("http://127.0.0.1:9/",), MNIST.class_names)
    with pytest.raises(DatasetNotFoundError, match=r"download: .*127.0.0.1:9"):
        load(spec, progress=False)
