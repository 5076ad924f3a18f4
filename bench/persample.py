"""Per-sample SGD on the tutorial network, measured side by side, several interleaved repeats.

    python -m bench.persample [--repeats 5] [--samples 20000] [--slow-samples 2000] [--quick]

Trains 784-512-512-10 sigmoid + softmax-cross-entropy one sample at a time on
Fashion-MNIST (file order, lr 0.02, Xavier-normal init) with:

* the tutorial-style NumPy loop (fresh arrays every step), in float64 and float32,
* a tidy in-place NumPy loop (preallocated buffers, zero rows skipped), float64 and float32,
* scratchnet's layer-by-layer path with the numpy backend (float32),
* the fused Numba kernel (``fit(..., per_sample="fused")``, float64 and float32) on
  one thread and on 2 threads,
* the compact (deferred-update) Numba kernel (``fit(..., per_sample="compact")``, blocks of
  :data:`net.fused.COMPACT_BLOCK` samples, float64 and float32) on one thread and on 2
  (a team of two threads: :func:`kernels.fused_compact.sgd_epoch_compact_threads`),
* when JAX is installed, the best per-sample peer we know of: JAX ``jit`` over a
  ``lax.scan`` of the epoch, float32, one thread (:mod:`bench.jax_persample`),

and a kernel that moves exactly the fused kernel's bytes (:mod:`bench.fused_traffic`:
the same weight rows, passes, reads and writes, no math): its rate is what that
traffic costs on this machine.  Its bytes per sample are compared with the cache
sizes read from the machine, to say which level of the memory hierarchy it measures.

Only training is timed: data conversion to the variant's dtype, initial weights and
model construction happen before the clock starts.  Ratios are like for like in
dtype.  NumPy's BLAS is limited to one thread.  Every variant is run once on a few
samples first (compiled) and each repeat runs all variants in turn; figures are
min-max over the repeats.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench import machine, output
from bench.fused_traffic import fused_traffic, memory_level, stream_same_bytes, traffic_bytes
from kernels.cachesize import cache_lines, cache_sizes
from net import CrossEntropyLoss, Linear, Sequential, Sigmoid, fit
from net.data import fashion_mnist

SIZES = (784, 512, 512, 10)
LR = 0.02


def init_weights(dtype, seed=0):
    """Xavier-normal weights and zero biases for the tutorial network (a fresh copy per variant)."""
    rng = np.random.default_rng(seed)
    Ws = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b))).astype(dtype) for a, b in zip(SIZES, SIZES[1:])]
    bs = [np.zeros(b, dtype=dtype) for b in SIZES[1:]]
    return Ws, bs


def prepare(X, y, n, dtype) -> dict:
    """Untimed set-up shared by the variants: the first ``n`` samples in ``dtype`` and fresh weights."""
    Ws, bs = init_weights(dtype)
    return {"X": np.ascontiguousarray(X[:n], dtype=dtype), "y": np.ascontiguousarray(y[:n]), "Ws": Ws, "bs": bs}


def _check_dtype(state):
    if state["X"].dtype != state["Ws"][0].dtype:
        raise TypeError(f"data is {state['X'].dtype}, weights are {state['Ws'][0].dtype}: convert before timing")


# ---- (a) tutorial style -------------------------------------------------------------------

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def tutorial_numpy(state, n):
    """What the tutorials write: new arrays for every intermediate, np.outer updates (data already converted)."""
    _check_dtype(state)
    X, y = state["X"], state["y"]
    (W1, W2, W3), (b1, b2, b3) = state["Ws"], state["bs"]
    dtype = W1.dtype.type
    lr = dtype(LR)
    eye = np.eye(10, dtype=W1.dtype)
    for i in range(n):
        x, t = X[i], eye[y[i]]
        a1 = _sigmoid(x @ W1 + b1)
        a2 = _sigmoid(a1 @ W2 + b2)
        z3 = a2 @ W3 + b3
        p = np.exp(z3 - z3.max())
        p = p / p.sum()
        d3 = p - t
        d2 = (d3 @ W3.T) * a2 * (1 - a2)
        d1 = (d2 @ W2.T) * a1 * (1 - a1)
        W3 -= lr * np.outer(a2, d3)
        b3 -= lr * d3
        W2 -= lr * np.outer(a1, d2)
        b2 -= lr * d2
        W1 -= lr * np.outer(x, d1)
        b1 -= lr * d1


# ---- (b) tidy in-place NumPy ---------------------------------------------------------------

def tidy_numpy(state, n):
    """Preallocated buffers, in-place ufuncs, only nonzero input rows of W1 updated (data already converted)."""
    _check_dtype(state)
    X, y = state["X"], state["y"]
    (W1, W2, W3), (b1, b2, b3) = state["Ws"], state["bs"]
    dt = W1.dtype
    a1, a2, z3 = np.empty(512, dt), np.empty(512, dt), np.empty(10, dt)
    d1, d2 = np.empty(512, dt), np.empty(512, dt)
    o2, o3 = np.empty((512, 512), dt), np.empty((512, 10), dt)
    lr = dt.type(LR)

    def sig(z):
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1
        np.reciprocal(z, out=z)

    for i in range(n):
        x = X[i]
        nz = np.flatnonzero(x)
        xs = x[nz]
        np.dot(xs, W1[nz], out=a1)
        a1 += b1
        sig(a1)
        np.dot(a1, W2, out=a2)
        a2 += b2
        sig(a2)
        np.dot(a2, W3, out=z3)
        z3 += b3
        z3 -= z3.max()
        np.exp(z3, out=z3)
        z3 /= z3.sum()
        z3[y[i]] -= 1                            # d3 = p - t
        np.dot(W3, z3, out=d2)
        d2 *= a2 * (1 - a2)
        np.dot(W2, d2, out=d1)
        d1 *= a1 * (1 - a1)
        np.multiply.outer(a2, z3 * lr, out=o3)
        W3 -= o3
        b3 -= lr * z3
        np.multiply.outer(a1, d2 * lr, out=o2)
        W2 -= o2
        b2 -= lr * d2
        W1[nz] -= np.multiply.outer(xs, d1 * lr)
        b1 -= lr * d1


# ---- (c) scratchnet -------------------------------------------------------------------------

def scratchnet_setup(backend, dtype):
    def setup(X, y, n):
        state = prepare(X, y, n, dtype)
        layers = [Linear(784, 512, backend=backend, dtype=dtype), Sigmoid(backend=backend),
                  Linear(512, 512, backend=backend, dtype=dtype), Sigmoid(backend=backend),
                  Linear(512, 10, backend=backend, dtype=dtype)]
        for layer, W in zip(layers[::2], state["Ws"]):
            layer.params["W"][...] = W
        state["model"], state["loss"] = Sequential(layers), CrossEntropyLoss(backend=backend)
        return state
    return setup


def scratchnet_run(backend, threads=1, per_sample=None):
    """Train one epoch with ``fit``; ``per_sample`` is the numba backend's strategy (default "fused")."""
    per_sample = per_sample or ("fused" if backend == "numba" else "auto")

    def run(state, n):
        hist = fit(state["model"], state["loss"], state["X"][:n], state["y"][:n], batch_size=1, epochs=1, lr=LR,
                   shuffle=False, threads=threads, per_sample=per_sample)
        expected = "fused" if backend == "numba" else "layers"
        assert hist.path == expected, hist.path
        if backend == "numba":
            assert hist.per_sample == per_sample, hist.per_sample
    return run


# ---- JAX, when installed ----------------------------------------------------------------------

def jax_setup(X, y, n):
    """Untimed: the weights, the data as JAX arrays and the epoch compiled for ``n`` samples."""
    from bench.jax_persample import compiled_epoch

    state = prepare(X, y, n, np.float32)
    state["jax_epoch"] = compiled_epoch(state["Ws"], state["bs"], state["X"], state["y"], LR)
    return state


def jax_run(state, n):
    state["jax_epoch"]()


# ---- the same-bytes kernel ----------------------------------------------------------------------

def same_bytes_run(state, n):
    _check_dtype(state)
    stream_same_bytes(tuple(state["Ws"]), tuple(state["bs"]), state["X"], np.arange(n),
                      state["X"].dtype.type(1))


# ---- driver -----------------------------------------------------------------------------------

@dataclass
class Variant:
    name: str
    dtype: str
    threads: int
    setup: Callable          # (X, y, n) -> state, untimed
    run: Callable            # (state, n), timed: training only
    slow: bool               # timed on --slow-samples instead of --samples


TUTORIAL, TIDY, LAYERS = "tutorial-style NumPy loop", "tidy in-place NumPy loop", "scratchnet, numpy backend"
FUSED, SAME_BYTES = "scratchnet fused (numba)", "same-bytes kernel (fused's traffic, no math)"
COMPACT = "scratchnet compact (numba)"
JAX = "JAX jit(lax.scan) per-sample"


def variants() -> list[Variant]:
    out = []
    for dtype in ("float64", "float32"):
        dt = np.dtype(dtype).type

        def setup(X, y, n, dt=dt):
            return prepare(X, y, n, dt)
        out += [Variant(TUTORIAL, dtype, 1, setup, tutorial_numpy, True),
                Variant(TIDY, dtype, 1, setup, tidy_numpy, True)]
    out.append(Variant(LAYERS, "float32", 1, scratchnet_setup("numpy", np.float32), scratchnet_run("numpy"), True))
    for dtype in ("float64", "float32"):
        dt = np.dtype(dtype).type
        out.append(Variant(FUSED, dtype, 1, scratchnet_setup("numba", dt), scratchnet_run("numba"), False))
    out.append(Variant(FUSED, "float32", 2, scratchnet_setup("numba", np.float32), scratchnet_run("numba", 2), False))
    for dtype in ("float64", "float32"):
        dt = np.dtype(dtype).type
        out.append(Variant(COMPACT, dtype, 1, scratchnet_setup("numba", dt), scratchnet_run("numba", 1, "compact"),
                           False))
    out.append(Variant(COMPACT, "float32", 2, scratchnet_setup("numba", np.float32),
                       scratchnet_run("numba", 2, "compact"), False))
    from bench.jax_persample import available as jax_available

    if jax_available():
        out.append(Variant(JAX, "float32", 1, jax_setup, jax_run, False))
    for dtype in ("float64", "float32"):
        dt = np.dtype(dtype).type

        def setup(X, y, n, dt=dt):
            return prepare(X, y, n, dt)
        out.append(Variant(SAME_BYTES, dtype, 1, setup, same_bytes_run, False))
    return out


def variant(name: str, dtype: str, threads: int = 1) -> Variant:
    """The variant called ``name`` in ``dtype`` on ``threads`` threads."""
    return next(v for v in variants() if (v.name, v.dtype, v.threads) == (name, dtype, threads))


def _timed(v: Variant, X, y, n) -> float:
    state = v.setup(X, y, n)          # conversion, weights, model: not timed
    t0 = time.perf_counter()
    v.run(state, n)
    return n / (time.perf_counter() - t0)


def measure(n_fast=20000, n_slow=2000, repeats=5, quick=False, log=print) -> dict:
    """Run every variant ``repeats`` times (round-robin); return ``{"rows": [...], "n_fast", "n_slow"}``,
    one row per variant with ``rates`` (samples/s per repeat, in repeat order) and ``compile_s``."""
    from threadpoolctl import threadpool_limits

    X, y, _, _ = fashion_mnist()
    if quick:
        n_fast, n_slow, repeats = min(n_fast, 3000), min(n_slow, 300), min(repeats, 2)
    vs = variants()
    rows = [{"name": v.name, "dtype": v.dtype, "threads": v.threads, "samples": n_slow if v.slow else n_fast,
             "rates": []} for v in vs]
    with threadpool_limits(limits=1):
        for v, row in zip(vs, rows):             # warm-up: compile (or load from the cache) on 50 samples
            t0 = time.perf_counter()
            v.run(v.setup(X, y, 50), 50)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            v.run(v.setup(X, y, 50), 50)
            row["compile_s"] = max(0.0, first - (time.perf_counter() - t0))
        for r in range(repeats):
            for v, row in zip(vs, rows):
                row["rates"].append(_timed(v, X, y, row["samples"]))
            log(f"repeat {r + 1}/{repeats} done")
    return {"rows": rows, "n_fast": n_fast, "n_slow": n_slow, "repeats": repeats,
            "traffic": fused_traffic(X[:n_fast], np.arange(n_fast), SIZES)}


def _range(values, fmt="{:,.0f}", suffix=""):
    lo, hi = min(values), max(values)
    return (fmt.format(lo) + suffix) if fmt.format(lo) == fmt.format(hi) else \
        f"{fmt.format(lo)}-{fmt.format(hi)}{suffix}"


def report(result: dict) -> str:
    """Markdown: samples/s ranges, like-for-like ratios (per repeat, then min-max), the same-bytes traffic."""
    rows = result["rows"]
    by = {(r["name"], r["dtype"], r["threads"]): np.array(r["rates"]) for r in rows}
    lines = [f"{result['repeats']} repeats, every variant in turn in each repeat; samples/s as min-max over the repeats.",
             "",
             "| variant | dtype | threads | samples | samples/s | compile (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['dtype']} | {r['threads']} | {r['samples']} | "
                     f"{_range(r['rates'])} | {r['compile_s']:.2f} |")

    def ratio(a, b):           # per repeat (same round), then the range
        return by[a] / by[b]
    f64, f32 = (FUSED, "float64", 1), (FUSED, "float32", 1)
    lines += ["", "Ratios, like for like in dtype (each repeat's pair, min-max over the repeats):", ""]
    for dt, f in (("float64", f64), ("float32", f32)):
        lines.append(f"- fused {dt} / tutorial NumPy {dt}: **{_range(ratio(f, (TUTORIAL, dt, 1)), '{:.1f}', 'x')}**"
                     + (" (target >= 25x)" if dt == "float32" else ""))
    for dt, f in (("float64", f64), ("float32", f32)):
        lines.append(f"- fused {dt} / tidy NumPy {dt}: **{_range(ratio(f, (TIDY, dt, 1)), '{:.1f}', 'x')}**"
                     + (" (target >= 6x)" if dt == "float32" else ""))
    lines += [f"- fused float64 / fused float32: **{_range(ratio(f64, f32), '{:.2f}')}** (target >= 0.5)",
              f"- 2 threads / 1 thread (fused float32): **{_range(ratio((FUSED, 'float32', 2), f32), '{:.2f}', 'x')}** "
              "(target >= 1.7x)"]
    c32 = (COMPACT, "float32", 1)
    lines += [f"- compact / fused, float32, 1 thread: **{_range(ratio(c32, f32), '{:.2f}', 'x')}** (goal >= 1.45x)",
              f"- compact / fused, float64, 1 thread: **{_range(ratio((COMPACT, 'float64', 1), f64), '{:.2f}', 'x')}**",
              f"- compact 2 threads / fused 2 threads, float32: "
              f"**{_range(ratio((COMPACT, 'float32', 2), (FUSED, 'float32', 2)), '{:.2f}', 'x')}** (goal >= 1.35x)",
              f"- compact 2 threads / compact 1 thread, float32: "
              f"**{_range(ratio((COMPACT, 'float32', 2), c32), '{:.2f}', 'x')}**"]
    if (JAX, "float32", 1) in by:
        best = np.maximum(by[c32], by[f32])
        lines.append(f"- best of compact and fused / JAX jit(lax.scan), float32, 1 thread: "
                     f"**{_range(best / by[(JAX, 'float32', 1)], '{:.2f}', 'x')}** (goal >= 2.4x)")
    else:
        lines.append("- JAX is not installed (`pip install jax jaxlib`): no comparison with JAX jit(lax.scan)")
    traffic = result["traffic"]
    n = traffic["samples"]
    sizes = cache_sizes()
    lines += ["", f"Traffic of the fused kernel (counted by `bench.fused_traffic.fused_traffic` on the {n:,} timed "
              "samples; the same-bytes kernel makes exactly these accesses):", ""]
    for dt, f in (("float64", f64), ("float32", f32)):
        item = np.dtype(dt).itemsize
        per = traffic_bytes(traffic, item) / n
        wbytes = item * sum(a * b for a, b in zip(SIZES, SIZES[1:]))
        dense = sum(a * b for a, b in zip(SIZES[1:], SIZES[2:]))
        w1_read = (traffic["weight_reads"] - 2 * n * dense) / SIZES[1] / n
        w1_written = (traffic["weight_writes"] - n * dense) / SIZES[1] / n
        same = by[(SAME_BYTES, dt, 1)]
        lines.append(
            f"- {dt}: {per / 1e6:.2f} MB per sample (first layer: {w1_read:.0f} of {SIZES[0]} rows read, "
            f"{w1_written:.0f} written); weights {wbytes / 2**20:.2f} MiB, smallest cache "
            f"that holds them: {memory_level(wbytes, sizes)} ({', '.join(cache_lines())}). Same-bytes kernel {_range(same)} samples/s = "
            f"{_range(same * per / 1e9, '{:.0f}')} GB/s; fused {_range(by[f] * per / 1e9, '{:.0f}')} GB/s, "
            f"**{_range(ratio(f, (SAME_BYTES, dt, 1)), '{:.0%}')}** of the same-bytes kernel")
    lines += ["",
              f"Machine: {machine.cpu_model()}, "
              f"{os.cpu_count()} cores, {', '.join(cache_lines())}; "
              f"Python {platform.python_version()}, NumPy {np.__version__}, "
              f"Numba {__import__('numba').__version__}; NumPy BLAS limited to 1 thread."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20000, help="samples timed for the fast variants")
    parser.add_argument("--slow-samples", type=int, default=2000, help="samples timed for the NumPy loops")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of every variant (ranges are min-max)")
    parser.add_argument("--quick", action="store_true", help="few samples, 2 repeats (smoke test)")
    output.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    try:
        folder = output.chosen_dir(args)
    except output.OutputError as exc:
        parser.error(str(exc))
    text = report(measure(args.samples, args.slow_samples, args.repeats, args.quick))
    print(text)
    print(f"wrote {output.write_text(folder, 'persample.md', text + chr(10))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
