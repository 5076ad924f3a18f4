"""A data root the user names must exist and hold the data: no silent fallback to other places."""
import numpy as np
import pytest

from net.data import MNIST, DatasetNotFoundError, mnist, write_idx
from net.data import datasets as ds


@pytest.fixture
def data_in_cache(monkeypatch, tmp_path, rng):
    """An MNIST-shaped set in the user cache (where the search would find it); nothing elsewhere."""
    monkeypatch.setattr(ds, "SYSTEM_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNET_DATA", raising=False)
    folder = tmp_path / "cache" / "scratchnet" / "mnist"
    folder.mkdir(parents=True)
    for part, shape in (("train_images", (3, 28, 28)), ("train_labels", (3,)), ("test_images", (2, 28, 28)),
                        ("test_labels", (2,))):
        write_idx(folder / MNIST.files[part].name, rng.integers(0, 10, shape).astype(np.uint8))
    assert mnist(verify=False, download=False)[0].shape == (3, 784)
    return tmp_path


def test_a_root_that_does_not_exist_is_an_error_naming_it(data_in_cache):
    root = data_in_cache / "typo"
    with pytest.raises(DatasetNotFoundError, match=rf"^root={root}: no such folder; name the folder that holds "
                                                   r"the mnist files \(train-images-idx3-ubyte.gz"):
        mnist(root, verify=False)


def test_a_root_without_every_file_is_an_error_listing_the_missing_ones(data_in_cache):
    root = data_in_cache / "mine"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte", np.zeros((1, 28, 28), np.uint8))     # raw, not .gz: accepted
    with pytest.raises(DatasetNotFoundError) as info:
        mnist(root, verify=False)
    assert str(info.value) == (f"root={root}: 1 of the 4 mnist files are there; missing train-labels-idx1-ubyte.gz, "
                               "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (gz or raw)")


def test_the_command_line_names_its_option_not_the_keyword(data_in_cache, monkeypatch):
    from net.runs import RunConfig, load_data

    with pytest.raises(DatasetNotFoundError, match=r"^--data-root=/no/such/dir: no such folder"):
        load_data(RunConfig(dataset="mnist", data_root="/no/such/dir"), progress=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(data_in_cache / "empty-cache"))
    monkeypatch.setattr(ds, "_fetch", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DatasetNotFoundError) as info:
        load_data(RunConfig(dataset="mnist"), progress=False)
    assert "pass --data-root=FOLDER" in str(info.value) and "pass root=" not in str(info.value)
