"""DataLoader, train/validation split, one-hot, standardisation, spiral, sample grid."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from net.data import DataLoader, normalize, one_hot, spiral, train_val_split


@given(n=st.integers(1, 60), batch=st.integers(1, 17), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**31))
def test_dataloader_covers_every_sample_once_per_epoch(n, batch, shuffle, drop_last, seed):
    X = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    loader = DataLoader(X, y, batch_size=batch, shuffle=shuffle, drop_last=drop_last, rng=seed)
    seen = []
    for xb, yb in loader:
        np.testing.assert_array_equal(xb[:, 0] // 2, yb)  # rows stay paired with their labels
        assert len(yb) <= batch and (not drop_last or len(yb) == batch)
        seen.extend(yb.tolist())
    assert len(seen) == len(set(seen))
    expected = (n // batch) * batch if drop_last else n
    assert len(seen) == expected and len(list(loader)) == len(loader)
    if not drop_last:
        assert sorted(seen) == list(range(n))


def test_dataloader_is_reproducible_and_reshuffles_each_epoch():
    X, y = np.zeros((100, 1)), np.arange(100)
    a = DataLoader(X, y, batch_size=100, rng=3)
    b = DataLoader(X, y, batch_size=100, rng=3)
    e1a, e2a = [yb for _, yb in a][0], [yb for _, yb in a][0]
    e1b = [yb for _, yb in b][0]
    np.testing.assert_array_equal(e1a, e1b)
    assert not np.array_equal(e1a, e2a)


def test_dataloader_without_shuffle_yields_views():
    X = np.arange(10.0).reshape(5, 2)
    xb, _ = next(iter(DataLoader(X, np.arange(5), batch_size=2, shuffle=False)))
    assert np.shares_memory(xb, X)


def test_dataloader_bad_arguments():
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        DataLoader(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(np.zeros((3, 1)), np.zeros(3), batch_size=0)


@given(n=st.integers(2, 200), frac=st.floats(0.01, 0.99), seed=st.integers(0, 1000))
def test_train_val_split_loses_and_duplicates_nothing(n, frac, seed):
    X, y = np.arange(n)[:, None], np.arange(n)
    if not 1 <= round(n * frac) <= n - 1:
        with pytest.raises(ValueError):
            train_val_split(X, y, frac, rng=seed)
        return
    Xt, yt, Xv, yv = train_val_split(X, y, frac, rng=seed)
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(n))
    np.testing.assert_array_equal(Xt[:, 0], yt)
    assert len(yv) == round(n * frac)
    again = train_val_split(X, y, frac, rng=seed)
    np.testing.assert_array_equal(again[3], yv)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1]), 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        one_hot(np.array([3]), 3)


def test_normalize_returns_statistics_for_reuse(rng):
    X = (rng.random((50, 4)) * 10).astype(np.float32)
    Xn, mean, std = normalize(X)
    assert Xn.dtype == np.float32
    assert abs(Xn.mean()) < 1e-5 and abs(Xn.std() - 1) < 1e-4
    X2 = X[:5] + 1
    np.testing.assert_allclose(normalize(X2, mean, std)[0], (X2 - mean) / std, rtol=1e-5)
    Xc, _, std_c = normalize(np.ones((3, 2)), axis=0)  # constant columns: no division by zero
    assert np.all(np.isfinite(Xc))


def test_spiral():
    X, y = spiral(50, 4, rng=0)
    assert X.shape == (200, 2) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50] * 4)
    np.testing.assert_array_equal(spiral(50, 4, rng=0)[0], X)
    assert np.abs(X).max() <= 1.0 + 1e-6
    with pytest.raises(ValueError):
        spiral(0, 3)


def test_sample_grid_writes_a_png(tmp_path, rng):
    pytest.importorskip("matplotlib")
    from net.plot import sample_grid

    X = rng.random((40, 784)).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    path = sample_grid(X, y, ["a", "b", "c", "d"], tmp_path / "grid.png", per_class=3, rng=0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
