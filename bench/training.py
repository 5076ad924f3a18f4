"""Training throughput of ``net.fit`` by batch size: numpy backend vs numba backend (vs PyTorch).

    python -m bench.training [--samples 20000] [--repeats 5] [--quick]

The tutorial network (784-512-512-10, sigmoid, softmax cross-entropy on logits,
plain SGD lr 0.02, file order) trains on the first ``--samples`` Fashion-MNIST
images at batch sizes 1, 32, 128, 1024 and the full batch, from the same initial
weights, with:

* scratchnet on the numpy backend and on the numba backend (``net.fit``, one epoch;
  on the numba backend batch 1 is the fused per-sample kernel, larger batches the
  fused mini-batch kernel), and the numba backend with ``threads=2``,
* PyTorch eager, when torch is installed (same weights, same order, ``torch.optim.SGD``).

Everything else runs on one thread: every BLAS in the process is limited to one
thread (threadpoolctl, after Numba's BLAS has been loaded), ``numba.set_num_threads(1)``
and ``torch.set_num_threads(1)``.  Each variant is warmed up (compiled) first; a
*repeat* measures every variant once, side by side, and the ratios are given as
the range over the repeats.  The GEMM limit at batch 1024 is the measured
one-thread float32 BLAS GEMM rate divided by the network's 3.21 MFLOP per sample.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench import output
from bench.machine import cache_lines, info
from net import CrossEntropyLoss, Linear, Sequential, Sigmoid, fit
from net.data import fashion_mnist

SIZES = (784, 512, 512, 10)
LR = 0.02
BATCHES = (1, 32, 128, 1024, None)
#: FLOPs per sample for one SGD step: forward 1.34 M, weight gradients 1.34 M, input
#: gradients of layers 2-3 0.54 M (2 * multiply-adds).
FLOP_PER_SAMPLE = 2 * (784 * 512 + 512 * 512 + 512 * 10) * 2 + 2 * (512 * 512 + 512 * 10)


def init_weights(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    Ws = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b))).astype(dtype) for a, b in zip(SIZES, SIZES[1:])]
    return Ws, [np.zeros(b, dtype=dtype) for b in SIZES[1:]]


def scratchnet_model(backend):
    Ws, bs = init_weights()
    layers = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        lin = Linear(W.shape[0], W.shape[1], backend=backend)
        lin.params["W"][...] = W
        lin.params["b"][...] = b
        layers.append(lin)
        if i < len(Ws) - 1:
            layers.append(Sigmoid(backend=backend))
    return Sequential(layers)


def run_scratchnet(backend, X, y, batch_size, epochs=1, threads=None) -> str:
    model = scratchnet_model(backend)
    hist = fit(model, CrossEntropyLoss(backend=backend), X, y, batch_size=batch_size, epochs=epochs, lr=LR,
               shuffle=False, threads=threads)
    return hist.path


def run_torch(X, y, batch_size, epochs=1) -> str:
    import torch

    Ws, bs = init_weights()
    lins = []
    for W, b in zip(Ws, bs):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        lins.append(lin)
    model = torch.nn.Sequential(lins[0], torch.nn.Sigmoid(), lins[1], torch.nn.Sigmoid(), lins[2])
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    bs = X.shape[0] if batch_size is None else batch_size
    for _ in range(epochs):
        for start in range(0, X.shape[0], bs):
            opt.zero_grad()
            loss = loss_fn(model(Xt[start:start + bs]), yt[start:start + bs])
            loss.backward()
            opt.step()
    return "eager"


def gemm_gflops(n=1024, repeat=5) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _variants(torch_ok):
    out = [("numpy", lambda X, y, b: run_scratchnet("numpy", X, y, b, threads=1)),
           ("numba", lambda X, y, b: run_scratchnet("numba", X, y, b, threads=1)),
           ("numba-2t", lambda X, y, b: run_scratchnet("numba", X, y, b, threads=2))]
    if torch_ok:
        out.append(("torch", run_torch))
    return out


def measure(n_samples=20000, repeats=5, quick=False) -> dict:
    """``{"rows": [...], "gemm_gflops": [...]}``: samples/s per repeat, batch and variant."""
    import numba
    from net.threads import blas_threads

    try:
        import torch

        torch.set_num_threads(1)
        torch_ok = True
    except ImportError:
        torch_ok = False
    X, y, _, _ = fashion_mnist()
    if quick:
        n_samples, repeats = min(n_samples, 4096), min(repeats, 2)
    X, y = np.ascontiguousarray(X[:n_samples]), y[:n_samples]
    numba.set_num_threads(1)
    variants = _variants(torch_ok)
    for _, run in variants:                       # compile / load every kernel before the limits
        for b in (1, 32, None):
            run(X[:64], y[:64], b)
    rows, gemm = [], []
    with blas_threads(1):
        for rep in range(repeats):
            gemm.append(gemm_gflops())
            for batch in BATCHES:
                for name, run in variants:
                    # per-sample SGD outside the fused kernel is slow: time it on fewer samples
                    n = n_samples if batch != 1 or name.startswith("numba") else max(256, n_samples // 10)
                    seconds = _timed(lambda: run(X[:n], y[:n], batch))
                    rows.append({"repeat": rep, "batch": batch or "full", "variant": name, "samples": n,
                                 "samples_per_s": n / seconds})
    return {"rows": rows, "gemm_gflops": gemm, "samples": n_samples, "repeats": repeats}


def _rate(rows, rep, batch, variant):
    return next(r["samples_per_s"] for r in rows if r["repeat"] == rep and r["batch"] == batch
                and r["variant"] == variant)


def _span(values, fmt="{:.2f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def report(result: dict) -> str:
    rows, reps = result["rows"], range(result["repeats"])
    variants = sorted({r["variant"] for r in rows}, key=["numpy", "numba", "numba-2t", "torch"].index)
    head = "| batch | " + " | ".join(f"{v} (samples/s)" for v in variants) + " | numba / numpy |"
    if "torch" in variants:
        head += " numba / torch |"
    head += " 2 threads / 1 |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for batch in [b or "full" for b in BATCHES]:
        cells = [_span([_rate(rows, r, batch, v) for r in reps], "{:,.0f}") for v in variants]
        ratio = _span([_rate(rows, r, batch, "numba") / _rate(rows, r, batch, "numpy") for r in reps]) + "x"
        line = f"| {batch} | " + " | ".join(cells) + f" | {ratio} |"
        if "torch" in variants:
            line += " " + _span([_rate(rows, r, batch, "numba") / _rate(rows, r, batch, "torch") for r in reps]) + "x |"
        line += " " + _span([_rate(rows, r, batch, "numba-2t") / _rate(rows, r, batch, "numba") for r in reps]) + "x |"
        lines.append(line)
    limit = [g * 1e9 / FLOP_PER_SAMPLE for g in result["gemm_gflops"]]
    share = [_rate(rows, r, 1024, "numba") / limit[r] for r in reps]
    meta = info()
    lines += ["", f"- one-thread float32 BLAS GEMM (n=1024): {_span(result['gemm_gflops'], '{:.0f}')} GFLOP/s, so "
              f"the GEMM limit is {_span(limit, '{:,.0f}')} samples/s ({FLOP_PER_SAMPLE / 1e6:.2f} MFLOP per sample)",
              f"- numba backend at batch 1024: **{_span([100 * s for s in share], '{:.0f}')}%** of the GEMM limit",
              f"- {result['samples']} samples per run (numpy/torch at batch 1: a tenth), ranges over "
              f"{result['repeats']} repeats; one thread everywhere",
              f"- machine: {meta['cpu']}, {meta['cores']} cores; {'; '.join(cache_lines())}; Python {meta['python']}, "
              f"NumPy {meta['numpy']}, Numba {meta['numba']}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=20000, help="training samples per run (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="side-by-side repeats (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="4096 samples, 2 repeats")
    output.add_arguments(p)
    args = p.parse_args(argv)
    try:
        folder = output.chosen_dir(args)
    except output.OutputError as exc:
        p.error(str(exc))
    text = report(measure(args.samples, args.repeats, args.quick))
    print(text)
    print(f"wrote {output.write_text(folder, 'training.md', text + chr(10))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
