"""Comparison helper shared by the equivalence tests and the benchmark validators."""
from __future__ import annotations

import numpy as np


def assert_outputs_match(mine, theirs, *, rtol: float, atol: float, label: str = "") -> None:
    """Assert two kernel results agree in structure, shape, dtype and value.

    ``mine``/``theirs`` are arrays or tuples of arrays.  On failure the message
    names the output, the worst element, and both values at it.
    """
    if isinstance(theirs, tuple):
        assert isinstance(mine, tuple) and len(mine) == len(theirs), (
            f"{label}: expected a tuple of {len(theirs)} arrays, got {type(mine).__name__}"
        )
        for i, (m, t) in enumerate(zip(mine, theirs)):
            assert_outputs_match(m, t, rtol=rtol, atol=atol, label=f"{label} output {i}")
        return
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert mine.shape == theirs.shape, f"{label}: shape mine {mine.shape} != theirs {theirs.shape}"
    assert mine.dtype == theirs.dtype, f"{label}: dtype mine {mine.dtype} != theirs {theirs.dtype}"
    detail = ""
    if mine.size:
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(mine.astype(np.float64) - theirs.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        worst = np.unravel_index(int(np.argmax(err)), mine.shape)
        detail = (
            f"worst at index {tuple(int(i) for i in worst)}: mine={mine[worst]!r} theirs={theirs[worst]!r}"
            f" (|diff|={err[worst]:.3g}, rtol={rtol:.3g}, atol={atol:.3g})"
        )
    np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=atol, err_msg=f"{label}: {detail}")
