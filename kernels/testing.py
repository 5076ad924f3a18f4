"""Helpers shared by the equivalence tests and the benchmark validators.

:func:`assert_outputs_match` compares two kernel results; :func:`run` calls one backend
on its own fresh arguments and records what came back (or what was raised);
:func:`assert_same_outcome` compares two such records.  The input transforms
(:func:`fortran`, :func:`strided`, :func:`with_nonfinite`, :func:`cast`) turn the
registry's C-contiguous, finite float inputs into the other forms a caller may pass.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from . import get_backend


def assert_outputs_match(mine, theirs, *, rtol: float, atol: float, label: str = "") -> None:
    """Assert two kernel results agree in structure, shape, dtype and value.

    ``mine``/``theirs`` are arrays, Python scalars or tuples of them.  NaN must sit at
    the same positions in both, and inf at the same positions with the same sign
    (``assert_allclose``'s ``equal_nan=True``, intended: a NaN that one backend makes
    and the other does not is a difference).  On failure the message names the
    output, the worst element, and both values at it.
    """
    if isinstance(theirs, tuple):
        assert isinstance(mine, tuple) and len(mine) == len(theirs), (
            f"{label}: expected a tuple of {len(theirs)} values, got {type(mine).__name__}"
        )
        for i, (m, t) in enumerate(zip(mine, theirs)):
            assert_outputs_match(m, t, rtol=rtol, atol=atol, label=f"{label} output {i}")
        return
    if not isinstance(theirs, np.ndarray):      # a Python scalar, e.g. sgd_epoch's ``done``
        assert type(mine) is type(theirs) and mine == theirs, f"{label}: mine {mine!r} != theirs {theirs!r}"
        return
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert mine.shape == theirs.shape, f"{label}: shape mine {mine.shape} != theirs {theirs.shape}"
    assert mine.dtype == theirs.dtype, f"{label}: dtype mine {mine.dtype} != theirs {theirs.dtype}"
    detail = ""
    if mine.size:
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(mine.astype(np.float64) - theirs.astype(np.float64))
        err = np.where(np.isnan(err) & (np.isnan(mine) != np.isnan(theirs)), np.inf, np.nan_to_num(err))
        worst = np.unravel_index(int(np.argmax(err)), mine.shape)
        detail = (
            f"worst at index {tuple(int(i) for i in worst)}: mine={mine[worst]!r} theirs={theirs[worst]!r}"
            f" (|diff|={err[worst]:.3g}, rtol={rtol:.3g}, atol={atol:.3g})"
        )
    np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{label}: {detail}")


# ---- one backend call, recorded -------------------------------------------------------------

@dataclass
class Outcome:
    """What one backend did with one set of arguments: a result or an exception."""

    result: object = None
    mutated: tuple = ()             # the arguments named by Operation.mutates, after the call
    error: tuple | None = None      # (exception type, message)

    def describe(self) -> str:
        return f"raised {self.error[0].__name__}: {self.error[1]}" if self.error else "returned"


def run(op, backend: str, make_args) -> Outcome:
    """Call ``op`` on ``backend`` with fresh arguments from ``make_args()``.

    Each backend gets its own arguments, because kernels may update them in place
    (``Operation.mutates``); a callable rather than a copy keeps their layout (a deep
    copy of a strided view would be contiguous).
    """
    args = make_args()
    try:
        with np.errstate(all="ignore"):
            result = op.impl(backend)(*args)
    except (TypeError, ValueError) as exc:
        return Outcome(error=(type(exc), str(exc)))
    return Outcome(result, tuple(args[i] for i in op.mutates))


def assert_same_outcome(mine: Outcome, theirs: Outcome, *, rtol: float, atol: float, label: str = "") -> None:
    """Both raised the same exception with the same message, or both returned matching results
    (and left matching values in the arguments they update in place)."""
    if mine.error or theirs.error:
        assert mine.error == theirs.error, f"{label}: mine {mine.describe()}, theirs {theirs.describe()}"
        return
    assert_outputs_match(mine.result, theirs.result, rtol=rtol, atol=atol, label=label)
    assert_outputs_match(mine.mutated, theirs.mutated, rtol=rtol, atol=atol, label=f"{label} (updated in place)")


# ---- argument names and input transforms ----------------------------------------------------

def parameter_names(name: str) -> tuple[str, ...]:
    """The kernel's parameter names, from its (NumPy) signature."""
    return tuple(inspect.signature(getattr(get_backend("numpy"), name)).parameters)


def array_paths(args: tuple, kinds: str = "f") -> list[tuple]:
    """Positions of the arrays whose dtype kind is in ``kinds``: ``(i,)`` for ``args[i]``,
    ``(i, j)`` for ``args[i][j]`` (arrays inside a tuple argument)."""
    paths = []
    for i, a in enumerate(args):
        if isinstance(a, tuple):
            paths += [(i, j) for j, x in enumerate(a) if isinstance(x, np.ndarray) and x.dtype.kind in kinds]
        elif isinstance(a, np.ndarray) and a.dtype.kind in kinds:
            paths.append((i,))
    return paths


def path_name(op_name: str, path: tuple) -> str:
    """``"W"`` for ``(1,)`` of linear_forward, ``"weights[2]"`` for ``(0, 2)`` of sgd_epoch."""
    name = parameter_names(op_name)[path[0]]
    return name if len(path) == 1 else f"{name}[{path[1]}]"


def get(args: tuple, path: tuple):
    return args[path[0]] if len(path) == 1 else args[path[0]][path[1]]


def replace(args: tuple, path: tuple, value) -> tuple:
    """A copy of the argument tuple with the array at ``path`` replaced by ``value``."""
    args = list(args)
    if len(path) == 1:
        args[path[0]] = value
    else:
        inner = list(args[path[0]])
        inner[path[1]] = value
        args[path[0]] = tuple(inner)
    return tuple(args)


def _transform(args: tuple, fn, skip=()) -> tuple:
    for path in array_paths(args, "fiub"):
        if path[0] not in skip:
            args = replace(args, path, fn(get(args, path)))
    return args


def fortran(args: tuple, skip=()) -> tuple:
    """Every array of two or more axes in Fortran (column-major) order; same values."""
    return _transform(args, lambda a: np.asfortranarray(a) if a.ndim >= 2 else a, skip)


def strided(args: tuple, skip=()) -> tuple:
    """Every array as a view taking every second element of a larger buffer along each axis
    (non-contiguous; same values).  The skipped elements are NaN (floats) or -1 (integers),
    so a kernel that reads them gives visibly wrong results."""
    def view(a):
        fill = np.nan if a.dtype.kind == "f" else -1
        big = np.full(tuple(2 * n + 1 for n in a.shape), fill, dtype=a.dtype)
        sl = tuple(slice(1, None, 2) for _ in a.shape)
        big[sl] = a
        return big[sl]

    return _transform(args, view, skip)


def with_nonfinite(rng: np.random.Generator, args: tuple, which=None, fraction: float = 0.3,
                   values=(np.nan, np.inf, -np.inf)) -> tuple:
    """``values`` (NaN, +inf, -inf) at random positions (``fraction`` of the entries, and at least
    one NaN) of the float arrays at ``which`` (argument indices; None: every float array argument)."""
    for path in array_paths(args, "f"):
        if which is not None and path[0] not in which:
            continue
        a = get(args, path).copy()
        if a.size:
            flat = a.reshape(-1)
            hit = rng.random(a.size) < fraction
            hit[rng.integers(a.size)] = True
            drawn = rng.choice(np.array(values, dtype=a.dtype), size=a.size)
            flat[hit] = drawn[hit]
            flat[rng.integers(a.size)] = np.nan
        args = replace(args, path, a)
    return args


def cast(args: tuple, path: tuple, dtype) -> tuple:
    """The array at ``path`` converted to ``dtype`` (values rounded towards zero for integers)."""
    return replace(args, path, get(args, path).astype(dtype))
