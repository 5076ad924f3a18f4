"""What machine the numbers come from, and its measured single-core peaks."""
from __future__ import annotations

import os
import platform
import re

import numpy as np
from numba import njit

from net.timing import best_time


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def info() -> dict:
    """CPU, cores, Python/NumPy/Numba versions and NumPy's BLAS with its thread count."""
    import numba
    from threadpoolctl import threadpool_info

    blas = [{"library": p.get("internal_api"), "version": p.get("version"), "threads": p.get("num_threads"),
             "architecture": p.get("architecture")} for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "blas": blas, "blas_threads_in_benchmarks": 1}


def slug(meta: dict) -> str:
    """Folder name for a machine's results, e.g. ``amd-epyc-2c``."""
    name = re.sub(r"[^a-z0-9]+", "-", meta["cpu"].lower()).strip("-") or "unknown-cpu"
    return f"{name}-{meta['cores']}c"


@njit(cache=True, fastmath={"reassoc", "contract", "nsz"})
def _read_stream(a):
    acc = a[0] * 0
    for i in range(a.shape[0]):
        acc += a[i]
    return acc


def peaks(small: bool = False) -> dict:
    """Measured single-core peaks: GFLOP/s of float32 BLAS GEMM, GB/s of a streaming read from memory."""
    from net.threads import blas_threads

    n = 256 if small else 1024
    A = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    with blas_threads(1):
        A @ A
        t = best_time(lambda: A @ A, 3 if small else 5)
    gflops = 2.0 * n ** 3 / t / 1e9
    m = (4 if small else 64) * 2 ** 20                       # float32 elements: 16 MiB / 256 MiB
    a = np.ones(m, dtype=np.float32)
    _read_stream(a[:16])
    t = best_time(lambda: _read_stream(a), 3 if small else 5)
    gbs = a.nbytes / t / 1e9
    return {"peak_gflops": gflops, "peak_gflops_how": f"float32 BLAS GEMM n={n}, 1 thread",
            "bandwidth_gbs": gbs, "bandwidth_how": f"Numba streaming read of {a.nbytes // 2**20} MiB, 1 thread"}


def cache_lines() -> list[str]:
    """This machine's cache sizes per instance (read from it), e.g. ``["L1d 48 KiB", "L2 2 MiB", ...]``."""
    from kernels.cachesize import cache_lines as lines

    return lines()
