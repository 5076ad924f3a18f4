"""Where the compact per-sample kernel's time goes, part by part, on the tutorial network.

    python -m bench.compact_parts [--samples 20000] [--repeats 5] [--block 32] [--dtype float32]

Trains 784-512-512-10 sigmoid + softmax-cross-entropy on Fashion-MNIST (file order, lr
0.02, the weights of :func:`bench.persample.init_weights`) with
:func:`kernels.fused_compact.sgd_epoch_compact`, then times each of its parts alone,
on the same sizes and the same number of samples, by calling the kernel's own compiled
pieces from small drivers:

* **first-layer GEMMs**: per block, ``X_block W1`` and the Gram matrix ``X_block X_blockᵀ``;
* **hidden-layer pass**: per sample, the read-only pass over ``W2`` that does this
  sample's backward and the next one's forward (:func:`_backward_then_next_forward`);
* **block updates**: per block, ``W1 -= lr AᵀD`` and ``W2 -= lr AᵀD`` (rank-k GEMMs);
* **the rest** (the corrections, the 512x10 output layer with its direct updates, the
  loss, activations, copies): the whole epoch minus the parts above.

Each repeat times the whole epoch, then every part, in turn; figures are min-max over
the repeats, in µs per sample.  One thread (BLAS limited to one), numbers comparable to
``python -m bench.persample``'s compact rows.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from numba import njit

from kernels.blas import gemm_ab, gemm_abt, gemm_at_b
from kernels.cachesize import cache_lines
from kernels.codes import SIGMOID, SOFTMAX_CE
from kernels.fused_compact import _backward_then_next_forward, sgd_epoch_compact

SIZES = (784, 512, 512, 10)
LR = 0.02


@njit(cache=True)
def _first_layer_gemms(X, order, W1, k, A0, Z1, G):
    one, zero = X.dtype.type(1), X.dtype.type(0)
    M = order.shape[0]
    for s0 in range(0, M, k):
        nb = min(k, M - s0)
        for j in range(nb):
            A0[j] = X[order[s0 + j]]
        gemm_ab(Z1[:nb], A0[:nb], W1, one, zero)
        gemm_abt(G[:nb * nb].reshape(nb, nb), A0[:nb], A0[:nb], one, zero)


@njit(cache=True)
def _hidden_passes(W2, D1, A1, M, corr, pre, D0, z_next):
    gain = W2.dtype.type(1e-3)
    k = D1.shape[0]
    for s in range(M):
        j = s % (k - 1) if k > 1 else 0
        _backward_then_next_forward(W2, D1[j], A1[j], SIGMOID, corr, pre, gain, D0[j], A1[j + 1 if k > 1 else 0],
                                    z_next)


@njit(cache=True)
def _block_updates(W1, W2, A0, D0, A1, D1, M, k, lr):
    one = W1.dtype.type(1)
    for s0 in range(0, M, k):
        nb = min(k, M - s0)
        gemm_at_b(W1, A0[:nb], D0[:nb], -lr, one)
        gemm_at_b(W2, A1[:nb], D1[:nb], -lr, one)


def _weights(dtype):
    from bench.persample import init_weights
    Ws, bs = init_weights(dtype)
    return tuple(np.ascontiguousarray(w) for w in Ws), tuple(bs)


def measure(X, y, n: int, repeats: int, block: int, dtype) -> dict:
    """``{part: [µs per sample per repeat]}`` plus ``"whole"``; every part on ``n`` samples."""
    from threadpoolctl import threadpool_limits

    dt = np.dtype(dtype)
    X = np.ascontiguousarray(X[:n], dtype=dt)
    y = np.ascontiguousarray(y[:n]).astype(np.int64)
    order = np.arange(n, dtype=np.int64)
    L = len(SIZES) - 1
    acts = np.array([SIGMOID, SIGMOID, 0], dtype=np.int64)
    bias_on = np.ones(L, dt)
    compact = np.array([1, 1, 0], dtype=np.int64)
    lr = dt.type(LR)
    rng = np.random.default_rng(0)
    k = block
    A0 = np.zeros((k, SIZES[0]), dt)
    Z1 = np.zeros((k, SIZES[1]), dt)
    G = np.zeros(k * k, dt)                                       # flat, as in the kernel
    A1 = rng.random((k, SIZES[1])).astype(dt)
    D0 = (rng.standard_normal((k, SIZES[1])) * 1e-3).astype(dt)
    D1 = (rng.standard_normal((k, SIZES[2])) * 1e-3).astype(dt)
    corr, pre, z_next = np.zeros(SIZES[1], dt), np.zeros(SIZES[1], dt), np.zeros(SIZES[2], dt)
    for i in range(k):
        A0[i] = X[i]

    def whole():
        Ws, bs = _weights(dt)
        t = time.perf_counter()
        sgd_epoch_compact(Ws, bs, bias_on, acts, SOFTMAX_CE, X, y, np.zeros((0, SIZES[-1]), dt), order, lr, block,
                          compact)
        return time.perf_counter() - t

    def first():
        Ws, _ = _weights(dt)
        t = time.perf_counter()
        _first_layer_gemms(X, order, Ws[0], k, A0, Z1, G)
        return time.perf_counter() - t

    def hidden():
        Ws, _ = _weights(dt)
        t = time.perf_counter()
        _hidden_passes(Ws[1], D1, A1, n, corr, pre, D0, z_next)
        return time.perf_counter() - t

    def updates():
        Ws, _ = _weights(dt)
        t = time.perf_counter()
        _block_updates(Ws[0], Ws[1], A0, D0, A1, D1, n, k, lr)
        return time.perf_counter() - t

    parts = {"whole epoch": whole, "first-layer GEMMs (X W1, Gram)": first,
             "hidden-layer pass (W2, both directions)": hidden, "block updates (W1, W2)": updates}
    out = {name: [] for name in parts}
    with threadpool_limits(limits=1):
        for fn in parts.values():          # compile / load from the cache
            fn()
        for _ in range(repeats):
            for name, fn in parts.items():
                out[name].append(fn() / n * 1e6)
    whole_t = np.array(out["whole epoch"])
    rest = whole_t - sum(np.array(v) for name, v in out.items() if name != "whole epoch")
    out["the rest (corrections, output layer, loss, activations)"] = list(rest)
    return out


def report(out: dict, n: int, repeats: int, block: int, dtype) -> str:
    whole = np.array(out["whole epoch"])
    lines = [f"Compact per-sample kernel, tutorial network {'-'.join(map(str, SIZES))}, {np.dtype(dtype).name}, "
             f"block {block}, {n:,} samples, {repeats} repeats (min-max), one thread.", "",
             "| part | µs per sample | share of the epoch |", "|---|---|---|"]
    for name, values in out.items():
        v = np.array(values)
        share = v / whole
        lines.append(f"| {name} | {v.min():.1f}-{v.max():.1f} | {share.min():.0%}-{share.max():.0%} |")
    lines += ["", f"Whole epoch: {1e6 / whole.max():,.0f}-{1e6 / whole.min():,.0f} samples/s.",
              f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"{', '.join(cache_lines())}; NumPy {np.__version__}, Numba {__import__('numba').__version__}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    if args.samples < 2 or args.repeats < 1 or args.block < 2:
        parser.error("--samples and --block must be >= 2, --repeats >= 1")
    from net.data import fashion_mnist

    X, y, _, _ = fashion_mnist()
    n = min(args.samples, X.shape[0])
    print(report(measure(X, y, n, args.repeats, args.block, args.dtype), n, args.repeats, args.block, args.dtype))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
