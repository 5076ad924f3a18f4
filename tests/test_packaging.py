"""What ``pip install`` puts into site-packages, and ``import net`` next to another ``kernels`` package."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DIST = "scratchnet-numba"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")


def _python(code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=300)


def test_distribution_name_is_not_the_taken_one():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == DIST     # "scratchnet" on PyPI is an unrelated project
    assert {"dev", "reference", "plot"} <= set(meta["project"]["optional-dependencies"])  # .ci/run installs these


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory):
    """File list of a wheel built from a copy of the checkout (the checkout itself stays untouched)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("kernels", "net", "bench", "tests"):
        shutil.copytree(ROOT / name, src / name, ignore=_IGNORE)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                          "--no-index", "-q", "-w", str(out)], cwd=src, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("*.whl")
    with zipfile.ZipFile(whl) as z:
        files = z.namelist()
        info = next(f.split("/")[0] for f in files if f.endswith(".dist-info/METADATA"))
        return whl.name, files, z.read(f"{info}/METADATA").decode(), z.read(f"{info}/entry_points.txt").decode()


def test_wheel_has_the_new_name_and_only_net_and_kernels(wheel_files):
    name, files, metadata, _ = wheel_files
    assert name.startswith("scratchnet_numba-") and f"\nName: {DIST}\n" in metadata
    tops = {f.split("/")[0] for f in files if ".dist-info/" not in f}
    assert tops == {"net", "kernels"}, tops
    assert "kernels/__init__.py" in files and "net/__main__.py" in files and "net/data/__init__.py" in files
    assert not [f for f in files if f.startswith(("bench/", "tests/")) or f.endswith("conftest.py")]


def test_wheel_keeps_the_console_script(wheel_files):
    *_, entry_points = wheel_files
    assert "scratchnet = net.cli:main" in entry_points


def _fake_kernels(folder: Path) -> None:
    (folder / "kernels").mkdir()
    (folder / "kernels" / "__init__.py").write_text("raise RuntimeError('the foreign kernels package ran')\n")


def test_an_installed_foreign_kernels_first_on_sys_path_is_refused_before_it_runs(tmp_path):
    site = tmp_path / "site-packages"
    site.mkdir()
    _fake_kernels(site)
    res = _python("import net", cwd=tmp_path, PYTHONPATH=f"{site}:{ROOT}")
    assert res.returncode == 1
    last = (res.stderr.strip().splitlines() or ["<no error>"])[-1]
    assert last.startswith("ImportError: 'import kernels' finds ") and str(site / "kernels") in last, last
    assert "not scratchnet-numba's kernels" in last and "pip uninstall" in last and "venv" in last, last
    assert "foreign kernels package ran" not in res.stderr


def test_a_kernels_folder_in_the_current_directory_is_named(tmp_path):
    _fake_kernels(tmp_path)    # the current folder comes first on sys.path
    res = _python("import net", cwd=tmp_path)
    last = (res.stderr.strip().splitlines() or ["<no error>"])[-1]
    assert res.returncode == 1 and str(tmp_path / "kernels") in last and "a folder named 'kernels'" in last, last
    assert "run from another folder" in last and "foreign kernels package ran" not in res.stderr


def test_a_kernels_module_of_ones_own_is_named(tmp_path):
    (tmp_path / "kernels.py").write_text("raise RuntimeError('the foreign kernels module ran')\n")
    res = _python("import net", cwd=tmp_path)
    last = (res.stderr.strip().splitlines() or ["<no error>"])[-1]
    assert res.returncode == 1 and str(tmp_path / "kernels.py") in last and "rename that file" in last, last
    assert "foreign kernels module ran" not in res.stderr


def test_a_leftover_kernels_folder_shadowing_an_editable_install_is_named(tmp_path):
    # pip uninstall leaves kernels/__pycache__ behind when it holds files pip did not write (Numba's cache);
    # that folder is then a namespace package, found before an editable install's finder is asked
    site = tmp_path / "site-packages"
    (site / "kernels" / "__pycache__").mkdir(parents=True)
    (site / "kernels" / "__pycache__" / "scratchnet-sources.sha256").write_text("0\n")
    editable = ("import sys, importlib.machinery as m\n"
                "class Editable:\n"
                "    @staticmethod\n"
                "    def find_spec(name, path=None, target=None):\n"
                f"        return m.PathFinder.find_spec(name, [{str(ROOT)!r}]) if name in ('net', 'kernels') else None\n"
                "sys.meta_path.insert(sys.meta_path.index(m.PathFinder) + 1, Editable)\n"
                "import net\n")
    res = _python(editable, cwd=tmp_path, PYTHONPATH=str(site))
    last = (res.stderr.strip().splitlines() or ["<no error>"])[-1]
    assert res.returncode == 1 and str(site / "kernels") in last and "without __init__.py" in last, last
    assert "delete that folder" in last, last


def test_a_foreign_kernels_in_our_place_is_refused(tmp_path):
    # files of another 'kernels' written over ours, next to net/ (as pip does in one site-packages)
    shutil.copytree(ROOT / "net", tmp_path / "net", ignore=_IGNORE)
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "__init__.py").write_text("def get_kernel(name): ...\n")
    res = _python("import net", cwd=tmp_path)
    last = (res.stderr.strip().splitlines() or ["<no error>"])[-1]
    assert res.returncode == 1 and last.startswith("ImportError: 'kernels' (") and "is not scratchnet-numba's" in last
    assert "pip uninstall" in last, last


def test_kernels_refuses_a_folder_shared_with_another_kernels_distribution(tmp_path):
    shutil.copytree(ROOT / "kernels", tmp_path / "kernels", ignore=_IGNORE)
    (tmp_path / "kernels-0.4.4.dist-info").mkdir()      # e.g. Hugging Face's, installed into the same folder
    res = _python("import kernels", cwd=tmp_path)
    last = (res.stderr.strip().splitlines() or ["<no error>"])[-1]
    assert res.returncode == 1 and "kernels-0.4.4.dist-info" in last and "overwrites" in last, last
    assert "pip uninstall kernels scratchnet-numba" in last, last


def test_our_kernels_carry_the_marker():
    import kernels

    assert kernels.__scratchnet__ == DIST

