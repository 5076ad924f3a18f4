"""Square matmul, one thread: OpenBLAS vs kernels.gemm.matmul_packed vs kernels.jit.matmul, in one run.

    python -m bench.gemm [--sizes 256 512 1024 2048] [--seconds 2] [--clock wall|cpu]

For float32 and float64 at each n: ``A @ B`` under ``threadpool_limits(1)`` (NumPy's
BLAS), :func:`kernels.gemm.matmul_packed` and the register-blocked loop
:func:`kernels.jit.matmul`.  Every function runs once before it is timed (compilation,
first touch of the pages); then the three run in turn, each as many times as fit in
``--seconds`` (2 to 50 calls), and each keeps its best time: on a shared machine the
least disturbed call is the cleanest measurement, and taking turns gives all three the
same disturbances.  ``--clock cpu`` times with the thread's CPU clock instead of the
wall clock (all three run in the calling thread), which leaves out the time the thread
waits for a core.  GFLOP/s counts ``2 n^3`` flops; "% BLAS" is BLAS time / other time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bench.machine import cpu_model
from kernels import gemm
from kernels.cachesize import cache_lines
from kernels.jit import matmul as jit_matmul

DTYPES = (np.float32, np.float64)
MIN_CALLS, MAX_CALLS = 2, 50


def blas_name() -> str:
    blas = [f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')})"
            for p in threadpool_info() if p.get("user_api") == "blas"]
    return ", ".join(blas) or "unknown BLAS"


def best_times(fns: dict, rounds: dict, clock) -> dict:
    """Best time of each of ``fns``, calling them in turn; ``fns[name]`` runs ``rounds[name]`` times."""
    best = {name: float("inf") for name in fns}
    for r in range(max(rounds.values())):
        for name, fn in fns.items():
            if r < rounds[name]:
                t0 = clock()
                fn()
                best[name] = min(best[name], clock() - t0)
    return best


def run(sizes, seconds: float, clock) -> None:
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        blocks = gemm.block_sizes(dtype)
        print(f"\n{name}: tile MR x NR = {blocks.mr} x {blocks.nr}, blocks kc = {blocks.kc}, "
              f"mc = {blocks.mc}, nc = {blocks.nc}")
        print(f"{'n':>6} | {'BLAS':>15} | {'matmul_packed':>22} | {'jit.matmul':>22}")
        print(f"{'':>6} | {'ms':>8} {'GF/s':>6} | {'ms':>8} {'GF/s':>6} {'%BLAS':>6} | "
              f"{'ms':>8} {'GF/s':>6} {'%BLAS':>6}")
        rng = np.random.default_rng(0)
        for n in sizes:
            A = rng.standard_normal((n, n)).astype(dtype)
            B = rng.standard_normal((n, n)).astype(dtype)
            fns = {"blas": lambda: A @ B, "packed": lambda: gemm.matmul_packed(A, B),
                   "jit": lambda: jit_matmul(A, B)}
            with threadpool_limits(limits=1, user_api="blas"):
                R = A @ B
                scale = np.finfo(dtype).eps * n * np.abs(R).max()
                rounds = {}
                for impl, fn in fns.items():
                    err = np.abs(fn() - R).max()
                    if not err <= scale:
                        raise AssertionError(f"{impl} {name} n={n}: max |C - A @ B| = {err:.3g} > {scale:.3g}")
                    t0 = clock()
                    fn()
                    rounds[impl] = int(np.clip(seconds / max(clock() - t0, 1e-9), MIN_CALLS, MAX_CALLS))
                t = best_times(fns, rounds, clock)
            gf = {k: 2.0 * n ** 3 / v / 1e9 for k, v in t.items()}
            print(f"{n:>6} | {t['blas'] * 1e3:8.3g} {gf['blas']:6.1f} | "
                  f"{t['packed'] * 1e3:8.3g} {gf['packed']:6.1f} {t['blas'] / t['packed']:6.0%} | "
                  f"{t['jit'] * 1e3:8.4g} {gf['jit']:6.1f} {t['blas'] / t['jit']:6.0%}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gemm", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048], help="matrix sizes n")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help=f"time per function and size: as many calls as fit, {MIN_CALLS} to {MAX_CALLS}; "
                             "the best is kept")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: time.perf_counter; cpu: time.thread_time (excludes waiting for a core)")
    args = parser.parse_args(argv)
    print(f"{cpu_model()}; caches per instance: {', '.join(cache_lines())}")
    print(f"BLAS: {blas_name()}, 1 thread; clock: {args.clock}; each time is the best of the calls "
          f"that fit in {args.seconds:g} s ({MIN_CALLS} to {MAX_CALLS})")
    run(args.sizes, args.seconds, time.perf_counter if args.clock == "wall" else time.thread_time)


if __name__ == "__main__":
    main()
