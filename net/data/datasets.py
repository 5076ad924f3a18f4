"""MNIST and Fashion-MNIST: found offline where installed, downloaded and verified otherwise.

A ``root`` folder, when given, is the only place looked at: it must exist and hold
the four IDX files (gz or raw), else :class:`DatasetNotFoundError` names it.
Without ``root``, the search order is:

1. ``$SCRATCHNET_DATA/<name>/``;
2. ``/usr/share/datasets/<name>/`` (``apt-get install dataset-fashion-mnist``);
3. the user cache, ``$XDG_CACHE_HOME/scratchnet/<name>/`` (default ``~/.cache``);
4. a download from the data set's mirrors into the cache, verified against
   pinned SHA-256 sums and written atomically.

Files are verified by SHA-256, either of the file as the mirrors serve it or of
its decompressed IDX content (so a re-compressed copy, like Debian's, passes).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import as_dtype
from .download import download as _download, sha256_of
from .errors import DatasetChecksumError, DatasetError, DatasetFormatError, DatasetNotFoundError
from .idx import open_maybe_gzip, read_idx
from .transforms import normalize as _standardize

PARTS = ("train_images", "train_labels", "test_images", "test_labels")
#: System-wide folders searched after ``$SCRATCHNET_DATA`` (Debian's dataset packages).
SYSTEM_DIRS = (Path("/usr/share/datasets"),)
NORMALIZE_CHOICES = ("scale", "standardize", "none")


@dataclass(frozen=True)
class IdxFile:
    """One file of a data set: its name as served, and the pinned sums."""

    name: str
    sha256: str | None = None          # of the file as served by the mirrors
    content_sha256: str | None = None  # of the decompressed IDX bytes


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, fetch and check one MNIST-family data set."""

    name: str
    files: dict  # part (see PARTS) -> IdxFile
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    files={
        "train_images": IdxFile("train-images-idx3-ubyte.gz",
                                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
                                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train_labels": IdxFile("train-labels-idx1-ubyte.gz",
                                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
                                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "test_images": IdxFile("t10k-images-idx3-ubyte.gz",
                               "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
                               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "test_labels": IdxFile("t10k-labels-idx1-ubyte.gz",
                               "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
                               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
             "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    class_names=FASHION_MNIST_CLASSES,
)

MNIST = DatasetSpec(
    name="mnist",
    files={
        "train_images": IdxFile("train-images-idx3-ubyte.gz",
                                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train_labels": IdxFile("train-labels-idx1-ubyte.gz",
                                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "test_images": IdxFile("t10k-images-idx3-ubyte.gz",
                               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "test_labels": IdxFile("t10k-labels-idx1-ubyte.gz",
                               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    class_names=MNIST_CLASSES,
)

DATASETS = {spec.name: spec for spec in (FASHION_MNIST, MNIST)}


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; ``ValueError`` lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def cache_dir(name: str) -> Path:
    """The user cache folder for data set ``name``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scratchnet" / name


def search_dirs(spec: DatasetSpec) -> list[tuple[str, Path]]:
    """``(label, folder)`` pairs in search order when no root is given (see the module docstring)."""
    dirs = []
    env = os.environ.get("SCRATCHNET_DATA")
    if env:
        dirs.append(("$SCRATCHNET_DATA", Path(env).expanduser() / spec.name))
    dirs += [("system data folder", d / spec.name) for d in SYSTEM_DIRS]
    dirs.append(("user cache", cache_dir(spec.name)))
    return dirs


def _find_file(folder: Path, f: IdxFile) -> Path | None:
    for candidate in (folder / f.name, folder / f.name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _content_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open_maybe_gzip(path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except (OSError, EOFError) as exc:
        raise DatasetFormatError(f"{path}: damaged gzip stream ({exc})") from None
    return h.hexdigest()


def file_matches(path: Path, f: IdxFile) -> bool:
    """True if ``path`` has the served SHA-256 or the content SHA-256 pinned for ``f`` (or none is pinned)."""
    if f.sha256 is None and f.content_sha256 is None:
        return True
    if f.sha256 is not None and sha256_of(path) == f.sha256:
        return True
    return f.content_sha256 is not None and _content_sha256(path) == f.content_sha256


def _locate_in_root(spec: DatasetSpec, root, root_arg: str) -> dict[str, Path]:
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{root_arg}{root}: no such folder; name the folder that holds the {spec.name} "
                                   f"files ({', '.join(spec.files[p].name for p in PARTS)})")
    found = {part: _find_file(folder, spec.files[part]) for part in PARTS}
    missing = [spec.files[part].name for part in PARTS if found[part] is None]
    if missing:
        raise DatasetNotFoundError(f"{root_arg}{root}: {len(PARTS) - len(missing)} of the {len(PARTS)} {spec.name} "
                                   f"files are there; missing {', '.join(missing)} (gz or raw)")
    return found


def locate(spec: DatasetSpec, root=None, *, download: bool = True, progress: bool = True,
           root_arg: str = "root=") -> dict[str, Path]:
    """Paths of the four files: in ``root`` only, when given; else searching and, if allowed,
    downloading (see the module docstring).  ``root_arg`` is how messages name the root
    (``"root="``; the command line passes ``"--data-root="``)."""
    if root is not None:
        return _locate_in_root(spec, root, root_arg)
    tried = []
    for label, folder in search_dirs(spec):
        found = {part: _find_file(folder, spec.files[part]) for part in PARTS}
        n = sum(p is not None for p in found.values())
        if n == len(PARTS):
            return found
        tried.append(f"  {label}: {folder}" + (f" (only {n} of {len(PARTS)} files)" if n else " (no files)"))
    problems = []
    if download:
        target = cache_dir(spec.name)
        try:
            return {part: _fetch(spec, spec.files[part], target, progress) for part in PARTS}
        except DatasetChecksumError:
            raise
        except (OSError, DatasetError) as exc:
            problems.append(f"  download: {exc}")
    else:
        problems.append("  download: not attempted (download=False)")
    names = ", ".join(spec.files[p].name for p in PARTS)
    how = [f"  - put {names} in a folder and pass {root_arg}FOLDER, or set SCRATCHNET_DATA to its parent"
           f" (files in $SCRATCHNET_DATA/{spec.name}/)",
           f"  - or let scratchnet download them from {spec.mirrors[0]}"]
    if spec.name == "fashion-mnist":
        how.insert(0, "  - Debian/Ubuntu: apt-get install dataset-fashion-mnist")
    raise DatasetNotFoundError(
        f"{spec.name}: data files not found. Looked in:\n" + "\n".join(tried + problems)
        + "\nTo get the data:\n" + "\n".join(how)
    )


def _fetch(spec: DatasetSpec, f: IdxFile, target: Path, progress: bool) -> Path:
    dest = target / f.name
    if dest.is_file() and file_matches(dest, f):
        return dest
    errors, checksum_errors = [], []
    for mirror in spec.mirrors:
        url = mirror.rstrip("/") + "/" + f.name
        try:
            return _download(url, dest, f.sha256, progress=progress,
                             accept=(lambda p: file_matches(p, f)) if f.content_sha256 else None)
        except DatasetChecksumError as exc:
            checksum_errors.append(str(exc))
        except (OSError, ValueError) as exc:  # URLError is an OSError
            errors.append(f"{url}: {exc}")
    if checksum_errors:
        raise DatasetChecksumError("; ".join(checksum_errors + errors))
    raise DatasetNotFoundError("; ".join(errors))


def _read_split(paths: dict, images: str, labels: str, n_classes: int):
    X, y = read_idx(paths[images]), read_idx(paths[labels])
    if X.ndim != 3 or X.dtype != np.uint8:
        raise DatasetFormatError(f"{paths[images]}: expected uint8 images of shape (N, rows, cols), got "
                                 f"{X.dtype} {X.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DatasetFormatError(f"{paths[labels]}: expected uint8 labels of shape (N,), got {y.dtype} {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DatasetFormatError(f"{paths[images]} holds {X.shape[0]} images but {paths[labels]} holds "
                                 f"{y.shape[0]} labels")
    if y.size and y.max() >= n_classes:
        raise DatasetFormatError(f"{paths[labels]}: label {int(y.max())} outside 0..{n_classes - 1}")
    return X, y.astype(np.int64)


def load(spec: DatasetSpec, root=None, *, normalize: str = "scale", flatten: bool = True, dtype=np.float32,
         download: bool = True, verify: bool = True, progress: bool = True, root_arg: str = "root="):
    """Load ``(X_train, y_train, X_test, y_test)`` for ``spec``.

    root : the folder holding the four files (it must exist and hold them); None
        searches the usual places and downloads (see the module docstring)

    normalize : ``"scale"`` (pixels / 255 in [0, 1]), ``"standardize"`` (scaled,
        then zero mean / unit std with the *training* statistics), or ``"none"``
        (raw uint8 pixels; ``dtype`` is ignored)
    flatten : images as (N, rows*cols) rows instead of (N, rows, cols)
    dtype : float32 or float64 for the pixels; labels are always int64
    download : fetch missing files into the user cache
    verify : check every file against the pinned SHA-256 sums
    root_arg : how error messages name ``root`` (the command line: ``"--data-root="``)
    """
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_CHOICES)}, got {normalize!r}")
    paths = locate(spec, root, download=download, progress=progress, root_arg=root_arg)
    if verify:
        for part in PARTS:
            if not file_matches(paths[part], spec.files[part]):
                f = spec.files[part]
                raise DatasetChecksumError(
                    f"{paths[part]}: checksum mismatch: SHA-256 {sha256_of(paths[part])} matches neither the "
                    f"pinned file sum {f.sha256} nor the content sum {f.content_sha256}; replace the file or "
                    "pass verify=False"
                )
    k = len(spec.class_names)
    X_train, y_train = _read_split(paths, "train_images", "train_labels", k)
    X_test, y_test = _read_split(paths, "test_images", "test_labels", k)
    if X_train.shape[1:] != X_test.shape[1:]:
        raise DatasetFormatError(f"{paths['train_images']} has images of shape {X_train.shape[1:]} but "
                                 f"{paths['test_images']} has {X_test.shape[1:]}")
    if flatten:
        X_train = X_train.reshape(X_train.shape[0], -1)
        X_test = X_test.reshape(X_test.shape[0], -1)
    if normalize != "none":
        dt = as_dtype(dtype)
        X_train = X_train.astype(dt) / dt.type(255)
        X_test = X_test.astype(dt) / dt.type(255)
        if normalize == "standardize":
            X_train, mean, std = _standardize(X_train)
            X_test, _, _ = _standardize(X_test, mean, std)
    return X_train, y_train, X_test, y_test


def fashion_mnist(root=None, **kwargs):
    """Fashion-MNIST ``(X_train, y_train, X_test, y_test)``; options as :func:`load`."""
    return load(FASHION_MNIST, root, **kwargs)


def mnist(root=None, **kwargs):
    """MNIST ``(X_train, y_train, X_test, y_test)``; options as :func:`load`."""
    return load(MNIST, root, **kwargs)


def load_by_name(name: str, root=None, **kwargs):
    """:func:`load` for a data set named in :data:`DATASETS` (``ValueError`` lists the names)."""
    return load(get_spec(name), root, **kwargs)
