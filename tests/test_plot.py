"""Figures, inspected as matplotlib objects (not pixels): the curves of a run, whatever its length."""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from net import plot  # noqa: E402


def _history(n, start=1):
    return [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.8 + e / 1000, "test_loss": 1.2 / e,
             "test_acc": 0.78 + e / 1000} for e in range(start, start + n)]


@pytest.fixture
def figure_of(monkeypatch, tmp_path):
    """``figure_of(history)`` -> the figure ``plot.curves`` would save."""
    monkeypatch.setattr(plot, "_save", lambda fig, path: fig)
    return lambda history: plot.curves(history, tmp_path / "curves.png")


def _visible_ticks(ax):
    lo, hi = ax.get_xlim()
    return [t for t in ax.get_xticks() if lo <= t <= hi]


@pytest.mark.parametrize("n, start", [(1, 1), (2, 1), (3, 4), (7, 1), (60, 1)])
def test_epoch_ticks_are_whole_epochs(figure_of, n, start):
    fig = figure_of(_history(n, start))
    for ax in fig.axes:
        ticks = _visible_ticks(ax)
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        lo, hi = ax.get_xlim()
        assert lo < start and hi > start + n - 1   # no point sits on the frame


def test_one_epoch_is_visible_markers_and_sane_limits(figure_of):
    fig = figure_of(_history(1))
    loss_ax, acc_ax = fig.axes
    for ax in fig.axes:
        assert _visible_ticks(ax) == [1]
        for line in ax.lines:
            assert line.get_marker() not in (None, "None", "", " ") and line.get_markersize() >= 4
    assert loss_ax.get_ylim()[0] == 0
    lo, hi = acc_ax.get_ylim()
    assert 0 <= lo < 80.1 and 81 < hi <= 100 and hi - lo >= 5


def test_run_figures_return_what_they_wrote(tmp_path):
    written = plot.run_figures(tmp_path, _history(2), np.eye(3, dtype=int) * 5, ["a", "b", "c"])
    assert written == [tmp_path / "curves.png", tmp_path / "confusion.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)


def test_without_matplotlib_one_line_names_the_extra_and_nothing_is_written(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import numpy as np, net.plot as p\n"
            f"w = p.run_figures({str(tmp_path)!r}, [{{'epoch': 1, 'train_loss': 1.0}}], np.eye(2, dtype=int), 'ab')\n"
            "print('returned', w)\n")
    res = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "returned []"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "matplotlib is not installed" in lines[0] and 'pip install -e ".[plot]"' in lines[0]
    assert list(tmp_path.iterdir()) == []
