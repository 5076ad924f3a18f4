"""exp, log, sigmoid and softmax: NumPy vs Numba's libm vs kernels.vmath, side by side in one run.

    python -m bench.vmath [--quick]

For float32 and float64 at 65,536 elements, 60000x10 and 1024x512:

* ``exp``: ``np.exp``; an ``@njit`` loop over Numba's ``np.exp`` (a scalar libm
  call per element); :func:`kernels.vmath.exp`, compiled once with LLVM's
  default 256-bit vectors and once with :func:`kernels.vmath.prefer_wide_vectors`
  (512-bit where the CPU has AVX-512; ``kernels.vmath.exp`` itself is this one);
* ``log`` likewise (65,536 and 1024x512; inputs are positive);
* ``sigmoid`` (the overflow-safe ``exp(-|x|)`` form) and row-wise ``softmax``
  (60000x10 and 1024x512): the NumPy formulas of ``kernels/reference.py``
  (copied here), the same loops in Numba with libm ``exp``, and one-pass
  Numba loops with ``vexp`` (256- and 512-bit).

Every function is compiled and run once before it is timed; each time is the
best of many calls (the machine is shared, the least disturbed call is the
cleanest measurement).  Ratios are NumPy time / other time: above 1 is faster
than NumPy.
"""
from __future__ import annotations

import argparse
import platform
import subprocess

import numba
import numpy as np
from numba import njit

from kernels.vmath import exp, log, prefer_wide_vectors, vexp, vlog, vmax
from net.timing import best_time

SHAPES = {"exp": [(65536,), (60000, 10), (1024, 512)],
          "log": [(65536,), (1024, 512)],
          "sigmoid": [(65536,), (60000, 10), (1024, 512)],
          "softmax": [(60000, 10), (1024, 512)]}
DTYPES = (np.float32, np.float64)


# --- NumPy: the formulas of kernels/reference.py -----------------------------

def np_sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- Numba with its built-in exp (a libm call per element) --------------------

@njit(cache=True)
def libm_exp(x):
    out = np.empty_like(x)
    xf = x.ravel()
    of = out.ravel()
    for i in range(xf.size):
        of[i] = np.exp(xf[i])
    return out


@njit(cache=True)
def libm_log(x):
    out = np.empty_like(x)
    xf = x.ravel()
    of = out.ravel()
    for i in range(xf.size):
        of[i] = np.log(xf[i])
    return out


@njit(cache=True)
def libm_sigmoid(x):
    out = np.empty_like(x)
    xf = x.ravel()
    of = out.ravel()
    one = x.dtype.type(1)
    for i in range(xf.size):
        v = xf[i]
        if v >= 0:
            of[i] = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            of[i] = e / (one + e)
    return out


@njit(cache=True)
def libm_softmax(z):
    B, K = z.shape
    s = np.empty_like(z)
    for i in range(B):
        m = z[i, 0]
        for k in range(1, K):
            if z[i, k] > m:
                m = z[i, k]
        total = z.dtype.type(0)
        for k in range(K):
            e = np.exp(z[i, k] - m)
            s[i, k] = e
            total += e
        for k in range(K):
            s[i, k] /= total
    return s


# --- Numba with vexp/vlog: one pass, no branches ------------------------------

@njit(cache=True)
def _default_width():
    """Stands in for prefer_wide_vectors: leave LLVM's vector width alone."""


def _vmath_kernels(width_hint):
    """exp, log, sigmoid and softmax on vexp/vlog; ``width_hint`` is called first in each kernel."""

    @njit(fastmath={"contract"})
    def exp_kernel(x):
        width_hint()
        out = np.empty_like(x)
        xf = x.ravel()
        of = out.ravel()
        for i in range(xf.size):
            of[i] = vexp(xf[i])
        return out

    @njit(fastmath={"contract"})
    def log_kernel(x):
        width_hint()
        out = np.empty_like(x)
        xf = x.ravel()
        of = out.ravel()
        for i in range(xf.size):
            of[i] = vlog(xf[i])
        return out

    # error_model="numpy": a float division by zero gives inf instead of raising,
    # which would put a branch (and an exception path) in the loop.
    @njit(fastmath={"contract"}, error_model="numpy")
    def sigmoid(x):
        width_hint()
        out = np.empty_like(x)
        xf = x.ravel()
        of = out.ravel()
        one = x.dtype.type(1)
        for i in range(xf.size):
            v = xf[i]
            z = vexp(-abs(v))
            d = one / (one + z)
            of[i] = d if v >= 0 else z * d
        return out

    # "reassoc" lets LLVM vectorise the row sum; vmax vectorises the row max.
    @njit(fastmath={"reassoc", "contract"}, error_model="numpy")
    def softmax(z):
        width_hint()
        B, K = z.shape
        s = np.empty_like(z)
        one = z.dtype.type(1)
        for i in range(B):
            m = z[i, 0]
            for k in range(1, K):
                m = vmax(m, z[i, k])
            total = z.dtype.type(0)
            for k in range(K):
                e = vexp(z[i, k] - m)
                s[i, k] = e
                total += e
            inv = one / total
            for k in range(K):
                s[i, k] *= inv
        return s

    return {"exp": exp_kernel, "log": log_kernel, "sigmoid": sigmoid, "softmax": softmax}


VMATH_256 = _vmath_kernels(_default_width)
VMATH_512 = _vmath_kernels(prefer_wide_vectors)

IMPLEMENTATIONS = {  # column -> op -> function
    "NumPy": {"exp": np.exp, "log": np.log, "sigmoid": np_sigmoid, "softmax": np_softmax},
    "Numba libm": {"exp": libm_exp, "log": libm_log, "sigmoid": libm_sigmoid, "softmax": libm_softmax},
    "vmath 256-bit": VMATH_256,
    "vmath 512-bit": {**VMATH_512, "exp": exp, "log": log},
}


def cache_lines() -> list[str]:
    """The cache lines of ``lscpu`` (empty where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [" ".join(line.split()) for line in out.splitlines()
            if "cache" in line.lower() or line.startswith("Model name")]


def best_of(fn, x, budget):
    """Best time of ``fn(x)`` in seconds, calling it for about ``budget`` seconds (5 calls at least)."""
    once = best_time(lambda: fn(x), 3)
    return best_time(lambda: fn(x), int(min(5000, max(5, budget / max(once, 1e-7)))))


def inputs(op, shape, dtype, rng):
    """Logits-like values, normal with sd 4 (sigmoid saturates on both sides, exp stays finite); log gets |x|."""
    x = rng.standard_normal(shape) * 4
    return (np.abs(x) if op == "log" else x).astype(dtype)


def run(budget=0.3):
    rng = np.random.default_rng(0)
    rows = []
    for op, shapes in SHAPES.items():
        for shape in shapes:
            for dtype in DTYPES:
                x = inputs(op, shape, dtype, rng)
                expect = IMPLEMENTATIONS["NumPy"][op](x)
                times = {}
                for name, impl in IMPLEMENTATIONS.items():
                    got = impl[op](x)   # compiles; checks the answer before timing it
                    assert got.dtype == x.dtype and got.shape == x.shape, (name, op)
                    np.testing.assert_allclose(got, expect, rtol=64 * np.finfo(dtype).eps, atol=0,
                                               err_msg=f"{name} {op}")
                    times[name] = best_of(impl[op], x, budget)
                rows.append((op, shape, dtype, times))
    return rows


def table(rows) -> str:
    names = list(IMPLEMENTATIONS)
    head = ("| op | shape | dtype | " + " | ".join(f"{n} (us)" for n in names)
            + " | 256-bit / NumPy | 512-bit / NumPy | 512-bit / libm |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for op, shape, dtype, t in rows:
        shape_s = "x".join(map(str, shape))
        cells = " | ".join(f"{t[n] * 1e6:,.1f}" for n in names)
        ratios = (t["NumPy"] / t["vmath 256-bit"], t["NumPy"] / t["vmath 512-bit"],
                  t["Numba libm"] / t["vmath 512-bit"])
        lines.append(f"| {op} | {shape_s} | {np.dtype(dtype).name} | {cells} | "
                     + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time each case for ~0.05 s instead of ~0.3 s")
    args = parser.parse_args(argv)
    print(f"NumPy {np.__version__}, Numba {numba.__version__}, Python {platform.python_version()}, "
          f"one thread; times are best-of-N in microseconds")
    for line in cache_lines():
        print(f"    {line}")
    print()
    print(table(run(0.05 if args.quick else 0.3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
