"""A change to any kernel source invalidates every cached kernel of the package."""
import shutil

from kernels.numba_cache import invalidate_if_sources_changed, sources_hash


def _package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "b.py").write_text("y = 2\n")
    return pkg


def _cached(pkg):
    for name in ("a.f-1.py311.nbi", "a.f-1.py311.1.nbc"):
        (pkg / "__pycache__" / name).write_text("cached")


def test_unchanged_sources_keep_the_cache(tmp_path):
    pkg = _package(tmp_path)
    invalidate_if_sources_changed(pkg)
    _cached(pkg)
    assert invalidate_if_sources_changed(pkg) is False
    assert len(list((pkg / "__pycache__").glob("*.nb*"))) == 2


def test_a_change_to_another_module_clears_every_cached_kernel(tmp_path):
    pkg = _package(tmp_path)
    invalidate_if_sources_changed(pkg)
    _cached(pkg)
    before = sources_hash(pkg)
    (pkg / "b.py").write_text("y = 3\n")            # only the *other* module changed
    assert sources_hash(pkg) != before
    assert invalidate_if_sources_changed(pkg) is True
    assert not list((pkg / "__pycache__").glob("*.nb*"))
    assert (pkg / "__pycache__" / "a.py").exists() is False


def test_a_read_only_or_missing_cache_folder_is_not_an_error(tmp_path):
    pkg = _package(tmp_path)
    shutil.rmtree(pkg / "__pycache__")
    assert invalidate_if_sources_changed(pkg) is False
    assert (pkg / "__pycache__").is_dir()


def test_a_change_of_blas_library_clears_every_cached_kernel(tmp_path):
    """The compiled code has the BLAS's integer width built in (kernels.blas_lib): a cache made
    against one library must not be loaded with another."""
    (tmp_path / "a.py").write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    assert invalidate_if_sources_changed(tmp_path, salt="numpy-openblas-ilp64:lib.so") is False
    (cache / "a.f-1.py311.nbi").write_text("index")
    assert invalidate_if_sources_changed(tmp_path, salt="numpy-openblas-ilp64:lib.so") is False
    assert (cache / "a.f-1.py311.nbi").exists()
    assert invalidate_if_sources_changed(tmp_path, salt="scipy-cython-blas-lp64") is True
    assert not (cache / "a.f-1.py311.nbi").exists()


def test_a_numba_cache_dir_is_stamped_before_numba_fills_it(tmp_path, monkeypatch):
    """With NUMBA_CACHE_DIR set, the first process must stamp the folder Numba is about to fill;
    otherwise the next process finds entries without a stamp, clears them and recompiles
    everything (a warm run once recompiled 31 kernels)."""
    from kernels.numba_cache import cache_folders

    pkg = _package(tmp_path)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    assert invalidate_if_sources_changed(pkg) is False            # first process: nothing cached yet
    target = next(f for f in cache_folders(pkg)[1:] if f.is_dir())
    assert target.parent == tmp_path / "numba-cache"
    (target / "a.f-1.py311.nbi").write_text("index")             # Numba fills it
    assert invalidate_if_sources_changed(pkg) is False            # second process: kept
    assert (target / "a.f-1.py311.nbi").exists()
    assert not (tmp_path / "home-cache").exists()                 # the user-wide folder left alone
