"""Where benchmark results go -- the one place that decides it, so no benchmark edits the checkout by accident.

By default a run writes to ``./bench-results/<machine>/`` in the current directory
(or the folder given with ``--out``).  The committed baseline under
``bench/results/<machine>/`` (the tables and charts the README shows) is written
only with ``--update-baseline``, and only in a source checkout, never in an
installed copy (site-packages).
"""
from __future__ import annotations

from pathlib import Path

from net.atomic import atomic_write

PACKAGE = Path(__file__).resolve().parent
BASELINE = PACKAGE / "results"
DEFAULT = Path("bench-results")


class OutputError(ValueError):
    """A results folder that cannot be used (one line: what and what to do)."""


def is_checkout() -> bool:
    """True when ``bench/`` sits in a source tree (pyproject.toml next to it), not in site-packages."""
    return (PACKAGE.parent / "pyproject.toml").is_file()


def results_dir(machine_slug: str, out=None, *, update_baseline: bool = False) -> Path:
    """The folder a benchmark run writes into (created): ``out``, else ``./bench-results/<machine>``.

    ``update_baseline`` selects the checkout's committed ``bench/results/<machine>`` instead.
    """
    if update_baseline:
        if out is not None:
            raise OutputError("--out and --update-baseline exclude each other: the baseline folder is "
                              f"{BASELINE}/{machine_slug}")
        if not is_checkout():
            raise OutputError(f"--update-baseline writes the committed results of a source checkout, but bench is "
                              f"installed at {PACKAGE}; run it from a clone, or use --out DIR")
        folder = BASELINE / machine_slug
    else:
        folder = Path(out) if out is not None else Path.cwd() / DEFAULT / machine_slug
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_text(folder: Path, name: str, text: str) -> Path:
    """Write one results file atomically into ``folder``; return its path."""
    path = Path(folder) / name
    with atomic_write(path, "w") as f:
        f.write(text)
    return path


def add_arguments(parser) -> None:
    """``--out DIR`` and ``--update-baseline`` for a benchmark's command line."""
    parser.add_argument("--out", default=None, help="results folder (default: ./bench-results/<machine>)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write the committed baseline bench/results/<machine> of this checkout instead")


def chosen_dir(args) -> Path:
    """The folder ``--out`` / ``--update-baseline`` in ``args`` select (checked before anything is measured)."""
    from bench import machine

    return results_dir(machine.slug(machine.info()), args.out, update_baseline=args.update_baseline)
