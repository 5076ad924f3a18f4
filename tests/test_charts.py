"""Benchmark and experiment charts, inspected as matplotlib objects: readable labels and limits."""
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from net import plot  # noqa: E402

RESULTS = Path(__file__).parents[1] / "bench" / "results" / "intel-r-xeon-r-processor-2c" / "results.json"


@pytest.fixture
def saved(monkeypatch):
    """Figures that would have been saved, by file name (nothing is written)."""
    figures = {}

    def keep(fig, path):
        figures[Path(path).name] = fig
        return Path(path)

    monkeypatch.setattr(plot, "_save", keep)
    return figures


def _labels(fig):
    """Every non-empty text drawn inside the axes (annotations and legend entries), with its extent."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = []
    for ax in fig.axes:
        legend = ax.get_legend()
        for t in list(ax.texts) + (list(legend.get_texts()) if legend else []):
            if t.get_visible() and t.get_text().strip():
                texts.append((t.get_text(), t.get_window_extent(renderer)))
    return texts


@pytest.mark.skipif(not RESULTS.is_file(), reason="needs the committed benchmark results")
def test_roofline_labels_do_not_overlap(saved, tmp_path):
    from bench import report

    result = json.loads(RESULTS.read_text())
    report.charts(result, tmp_path)
    fig = saved["roofline.png"]
    labels = _labels(fig)
    overlapping = [(a, b) for (a, ea), (b, eb) in itertools.combinations(labels, 2) if ea.overlaps(eb)]
    assert not overlapping, overlapping
    ops = {r["op"] for r in result["rows"] if r["impl"] in ("numba", "numba-packed", "numba-fused")
           and r["dtype"] == "float32" and r["intensity"]}
    named = " ".join(text for text, _ in labels)
    assert all(op in named for op in ops)                   # every kernel is still named
    points = [(c.get_facecolor()[0].round(3).tolist(), c.get_paths()[0].vertices.round(3).tobytes())
              for c in fig.axes[0].collections]
    assert len(points) == len(ops) and len({(tuple(col), m) for col, m in points}) == len(ops)  # told apart


def test_init_depth_chart_clips_diverged_runs_and_tells_lines_apart(saved, tmp_path):
    from net.experiments import init_depth

    init_depth(tmp_path, quick=True)
    ax = saved["init-depth.png"].axes[0]
    assert ax.get_ylim()[1] <= 1e10                            # not 1e153: the stable curves stay readable
    curves = [line for line in ax.lines if len(line.get_xdata()) > 1]
    assert len(curves) == 4
    for line in curves:
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.all(y[np.isfinite(y)] <= 1e10)                # diverged values are not plotted as they are
    assert len({(line.get_linestyle(), line.get_marker()) for line in curves}) == 4
    labels = [line.get_label() for line in curves]
    assert any(label.startswith("N(0,1), linear (explodes") for label in labels), labels
