"""Per-sample SGD on the tutorial network, measured side by side in one run.

    python -m bench.persample [--samples 20000] [--quick]

Trains 784-512-512-10 sigmoid + softmax-cross-entropy one sample at a time on
Fashion-MNIST (file order, lr 0.02, Xavier-normal init) with:

* the tutorial-style NumPy loop (float64, fresh arrays every step),
* a tidy in-place NumPy loop (float32, preallocated buffers, zero rows skipped),
* scratchnet's layer-by-layer path with the numpy backend (float32),
* the fused Numba kernel (float64 and float32, one thread) and on 2 threads,

and a streaming kernel that only moves the same weight bytes a fused step
moves (forward reads, backward reads and writes, zero pixels skipped): its
rate is the memory-traffic ceiling the fused kernel is compared with.
NumPy's BLAS is limited to one thread.  Every variant is warmed up (compiled)
before it is timed; compile times are reported separately.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from numba import njit

from bench import output
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


# ---- (a) tutorial style -------------------------------------------------------------------

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def tutorial_numpy(X, y, n):
    """What the tutorials write: float64, new arrays for every intermediate, np.outer updates."""
    (W1, W2, W3), (b1, b2, b3) = init_weights(np.float64)
    X = X.astype(np.float64)
    eye = np.eye(10)
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
        W3 -= LR * np.outer(a2, d3)
        b3 -= LR * d3
        W2 -= LR * np.outer(a1, d2)
        b2 -= LR * d2
        W1 -= LR * np.outer(x, d1)
        b1 -= LR * d1


# ---- (b) tidy in-place NumPy ---------------------------------------------------------------

def tidy_numpy(X, y, n):
    """Float32, preallocated buffers, in-place ufuncs, only nonzero input rows of W1 updated."""
    (W1, W2, W3), (b1, b2, b3) = init_weights(np.float32)
    X = np.ascontiguousarray(X, dtype=np.float32)
    a1, a2, z3 = np.empty(512, np.float32), np.empty(512, np.float32), np.empty(10, np.float32)
    d1, d2 = np.empty(512, np.float32), np.empty(512, np.float32)
    o2, o3 = np.empty((512, 512), np.float32), np.empty((512, 10), np.float32)
    lr = np.float32(LR)

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

def scratchnet_model(backend, dtype):
    (W1, W2, W3), _ = init_weights(dtype)
    layers = [Linear(784, 512, backend=backend, dtype=dtype), Sigmoid(backend=backend),
              Linear(512, 512, backend=backend, dtype=dtype), Sigmoid(backend=backend),
              Linear(512, 10, backend=backend, dtype=dtype)]
    for layer, W in zip(layers[::2], (W1, W2, W3)):
        layer.params["W"][...] = W
    return Sequential(layers)


def scratchnet_run(backend, dtype, threads=1):
    def run(X, y, n):
        model = scratchnet_model(backend, dtype)
        hist = fit(model, CrossEntropyLoss(backend=backend), X[:n], y[:n], batch_size=1, epochs=1, lr=LR,
                   shuffle=False, threads=threads)
        expected = "fused" if backend == "numba" else "layers"
        assert hist.path == expected, hist.path
    return run


# ---- the bandwidth ceiling --------------------------------------------------------------------

@njit(cache=True, fastmath={"reassoc", "contract", "nsz"}, nogil=True)
def stream_like_fused_step(X, order, W1, W2, W3, scale):
    """Move exactly the weight bytes of a fused step, no math: forward reads (W1 rows of nonzero
    pixels, W2, W3) and backward read-modify-writes of the same rows."""
    acc = W1[0, 0] * 0
    for s in range(order.shape[0]):
        x = X[order[s]]
        for k in range(W1.shape[0]):
            if x[k] != 0:
                for j in range(W1.shape[1]):
                    acc += W1[k, j]
        for W in (W2, W3):
            for k in range(W.shape[0]):
                for j in range(W.shape[1]):
                    acc += W[k, j]
        for W in (W3, W2):
            for k in range(W.shape[0]):
                for j in range(W.shape[1]):
                    W[k, j] = W[k, j] * scale
        for k in range(W1.shape[0]):
            if x[k] != 0:
                for j in range(W1.shape[1]):
                    W1[k, j] = W1[k, j] * scale
    return acc


def stream_run(X, y, n):
    (W1, W2, W3), _ = init_weights(np.float32)
    stream_like_fused_step(np.ascontiguousarray(X, np.float32), np.arange(n), W1, W2, W3, np.float32(1))


# ---- driver -----------------------------------------------------------------------------------

def _time(fn, X, y, n, warm):
    t0 = time.perf_counter()
    fn(X, y, warm)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn(X, y, warm)
    warm_again = time.perf_counter() - t0
    compile_s = max(0.0, first - warm_again)
    t0 = time.perf_counter()
    fn(X, y, n)
    elapsed = time.perf_counter() - t0
    return n / elapsed, compile_s


def measure(n_fast=20000, n_slow=2000, quick=False) -> list[dict]:
    """Run every variant; return rows ``{name, dtype, threads, samples, samples_per_s, compile_s}``."""
    from threadpoolctl import threadpool_limits

    X, y, _, _ = fashion_mnist()
    if quick:
        n_fast, n_slow = min(n_fast, 3000), min(n_slow, 300)
    variants = [
        ("tutorial-style NumPy loop", "float64", 1, tutorial_numpy, n_slow),
        ("tidy in-place NumPy loop", "float32", 1, tidy_numpy, n_slow),
        ("scratchnet, numpy backend", "float32", 1, scratchnet_run("numpy", np.float32), n_slow),
        ("scratchnet fused (numba)", "float64", 1, scratchnet_run("numba", np.float64), n_fast),
        ("scratchnet fused (numba)", "float32", 1, scratchnet_run("numba", np.float32), n_fast),
        ("scratchnet fused (numba)", "float32", 2, scratchnet_run("numba", np.float32, threads=2), n_fast),
        ("streaming ceiling (same bytes)", "float32", 1, stream_run, n_fast),
    ]
    rows = []
    with threadpool_limits(limits=1):
        for name, dtype, threads, fn, n in variants:
            rate, compile_s = _time(fn, X, y, n, warm=50)
            rows.append({"name": name, "dtype": dtype, "threads": threads, "samples": n,
                         "samples_per_s": rate, "compile_s": compile_s})
    return rows


def report(rows: list[dict]) -> str:
    """Markdown table plus the ratios the targets are stated in."""
    by = {(r["name"], r["dtype"], r["threads"]): r["samples_per_s"] for r in rows}
    tut = by[("tutorial-style NumPy loop", "float64", 1)]
    tidy = by[("tidy in-place NumPy loop", "float32", 1)]
    f32 = by[("scratchnet fused (numba)", "float32", 1)]
    f64 = by[("scratchnet fused (numba)", "float64", 1)]
    t2 = by[("scratchnet fused (numba)", "float32", 2)]
    ceiling = by[("streaming ceiling (same bytes)", "float32", 1)]
    lines = ["| variant | dtype | threads | samples | samples/s | vs tutorial | compile (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['dtype']} | {r['threads']} | {r['samples']} | "
                     f"{r['samples_per_s']:,.0f} | {r['samples_per_s'] / tut:.1f}x | {r['compile_s']:.2f} |")
    lines += [
        "",
        f"- fused float32 / tutorial NumPy: **{f32 / tut:.1f}x** (target >= 25x)",
        f"- fused float32 / tidy NumPy: **{f32 / tidy:.1f}x** (target >= 6x)",
        f"- fused float64 / fused float32: **{f64 / f32:.2f}** (target >= 0.5)",
        f"- 2 threads / 1 thread (float32): **{t2 / f32:.2f}x** (target >= 1.7x)",
        f"- fused float32 / streaming ceiling: **{f32 / ceiling:.0%}** of the memory-traffic ceiling",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Numba {__import__('numba').__version__}; NumPy BLAS limited to 1 thread.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20000, help="samples timed for the fast variants")
    parser.add_argument("--slow-samples", type=int, default=2000, help="samples timed for the NumPy loops")
    parser.add_argument("--quick", action="store_true", help="few samples (smoke test)")
    output.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        folder = output.chosen_dir(args)
    except output.OutputError as exc:
        parser.error(str(exc))
    text = report(measure(args.samples, args.slow_samples, args.quick))
    print(text)
    print(f"wrote {output.write_text(folder, 'persample.md', text + chr(10))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
