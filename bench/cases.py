"""Benchmark cases: every kernel from :mod:`kernels.registry`, plus BLAS, pure Python, the
explicit softmax Jacobian and the fused per-sample SGD step -- each with its work
(FLOPs) and memory traffic (bytes) so the report can place it on a roofline.

Size sets: ``full`` (per-sample rows up to 60,000 rows, square matmuls 64..1024),
``quick`` (the same groups at sizes that run in well under two minutes) and
``tiny`` (for testing the benchmark code itself).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kernels import get_backend
from kernels import reference as R
from kernels.registry import OPERATIONS, operation

SIZE_SETS = ("full", "quick", "tiny")


@dataclass
class Case:
    """One timed call: ``fn(*args)`` in benchmark group ``group`` under the name ``impl``."""

    group: str
    impl: str
    dtype: str
    sizes: dict
    fn: Callable
    args: tuple
    flops: float
    bytes: float
    baseline: str = "numpy"           # the impl this one's speed-up is measured against
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.group}|{self.impl}"


def size_set() -> str:
    """The size set named by ``$SCRATCHNET_BENCH_SIZES`` (default ``full``)."""
    name = os.environ.get("SCRATCHNET_BENCH_SIZES", "full")
    if name not in SIZE_SETS:
        raise ValueError(f"SCRATCHNET_BENCH_SIZES={name!r}; choose one of {', '.join(SIZE_SETS)}")
    return name


def _sizes_label(sizes: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sizes.items())


def python_matmul(A, B):
    """Pure-Python triple loop over nested lists (the baseline of all baselines)."""
    a, b = A.tolist(), B.tolist()
    n, m, p = len(a), len(b), len(b[0])
    C = [[0.0] * p for _ in range(n)]
    for i in range(n):
        for j in range(p):
            s = 0.0
            for k in range(m):
                s += a[i][k] * b[k][j]
            C[i][j] = s
    return C


def softmax_backward_explicit(s, ds):
    """The tutorials' backward: build the (B, K, K) Jacobian, then contract it."""
    return np.einsum("bk,bkj->bj", ds, R.softmax_jacobian(s))


# ---- work and traffic per operation (nominal counts, documented in the report) ----------------

def _work(name: str, s: dict, item: int) -> tuple[float, float]:
    if name in ("matmul", "matmul_naive"):
        N, M, P = s["N"], s["M"], s["P"]
        return 2.0 * N * M * P, item * (N * M + M * P + N * P)
    if name == "linear_forward":
        B, I, O = s["B"], s["I"], s["O"]
        return 2.0 * B * I * O, item * (B * I + I * O + O + B * O)
    if name == "linear_backward":
        B, I, O = s["B"], s["I"], s["O"]
        return 4.0 * B * I * O, item * (2 * B * I + 2 * I * O + B * O + O)
    n = s.get("B", 1) * s.get("I", s.get("K", 1))
    per_elem = {  # flops per element, arrays read + written per element
        "relu_forward": (1, 2), "relu_backward": (1, 3), "sigmoid_forward": (4, 2), "sigmoid_backward": (3, 3),
        "softmax": (4, 2), "softmax_backward": (4, 3), "cross_entropy": (1, 1.1), "cross_entropy_backward": (2, 2),
        "cross_entropy_logits": (4, 1.1), "softmax_cross_entropy_backward": (2, 2), "mse": (3, 2),
        "mse_backward": (3, 3), "softmax_jacobian": (2 * s.get("K", 1), 1 + s.get("K", 1)),
        # losses (issue 13)
        "bce": (8, 3), "bce_backward": (5, 3), "bce_with_logits": (7, 3), "bce_with_logits_backward": (5, 3),
        "l1": (2, 3), "l1_backward": (2, 3), "huber": (5, 3), "huber_backward": (3, 3), "nll": (1, 1.1),
        "nll_backward": (1, 1),
    }
    per_elem.update({  # the issue-13 layers (nominal: exp/erf counted as ~10 flops)
        "tanh_forward": (12, 2), "tanh_backward": (3, 3), "leaky_relu_forward": (1, 2), "leaky_relu_backward": (1, 3),
        "gelu_forward": (16, 2), "gelu_backward": (28, 3), "dropout_forward": (2, 3), "dropout_backward": (2, 3),
        "batchnorm_forward": (8, 2), "batchnorm_eval": (4, 2), "batchnorm_backward": (11, 3),
        "layernorm_forward": (8, 2), "layernorm_backward": (13, 3),
    })
    f, a = per_elem[name]
    return float(f * n), float(a * n * item)


def _registry_cases(sizes_name: str) -> list[Case]:
    cases = []
    for op in OPERATIONS:
        if op.variant:
            continue
        sizes_list = op.bench_sizes
        if op.name in ("matmul", "matmul_naive"):
            continue  # the matmul group is built below with BLAS and pure Python alongside
        if sizes_name == "quick":
            sizes_list = [s for s in sizes_list if s.get("B", 1) <= 1024] or sizes_list[:1]
        elif sizes_name == "tiny":
            sizes_list = [{k: min(v, 8) for k, v in sizes_list[0].items()}] if sizes_list else []
        for sizes in sizes_list:
            for dtype in (np.float32, np.float64):
                args = op.make_inputs(np.random.default_rng(0), dtype, sizes, "unit")
                item = np.dtype(dtype).itemsize
                flops, nbytes = _work(op.name, sizes, item)
                group = f"{op.name}[{_sizes_label(sizes)},{np.dtype(dtype).name}]"
                for backend in ("numpy", "numba"):
                    cases.append(Case(group, backend, np.dtype(dtype).name, sizes, op.impl(backend), args, flops,
                                      nbytes, extra={"op": op.name}))
                if op.name == "softmax_backward":
                    Bk = sizes["B"] * sizes["K"] * sizes["K"]
                    cases.append(Case(group, "explicit-jacobian", np.dtype(dtype).name, sizes,
                                      softmax_backward_explicit, args, 4.0 * Bk, 3.0 * Bk * item,
                                      extra={"op": op.name}))
    return cases


def _matmul_cases(sizes_name: str) -> list[Case]:
    ns = {"full": (64, 128, 256, 512, 1024, 2048), "quick": (64, 128, 256), "tiny": (8, 16)}[sizes_name]
    jit = get_backend("numba")
    op = operation("matmul")
    cases = []
    for dtype in (np.float32, np.float64):
        for n in ns:
            sizes = {"N": n, "M": n, "P": n}
            args = op.make_inputs(np.random.default_rng(0), dtype, sizes, "unit")
            flops, nbytes = _work("matmul", sizes, np.dtype(dtype).itemsize)
            group = f"matmul[n={n},{np.dtype(dtype).name}]"
            impls = [("numpy-blas-1thread", np.matmul), ("numba-packed", jit.matmul)]
            if n <= 256:
                impls.append(("numba-ijk-naive", jit.matmul_naive))
            if n <= 64:
                impls.append(("pure-python", python_matmul))
            for impl, fn in impls:
                cases.append(Case(group, impl, np.dtype(dtype).name, sizes, fn, args, flops, nbytes,
                                  baseline="numpy-blas-1thread", extra={"op": "matmul", "n": n}))
    return cases


def _fused_cases(sizes_name: str) -> list[Case]:
    from bench.fused_traffic import fused_traffic, traffic_bytes
    from kernels import fused as fk

    samples = {"full": 2000, "quick": 500, "tiny": 20}[sizes_name]
    widths = (784, 512, 512, 10) if sizes_name != "tiny" else (16, 8, 8, 4)
    cases = []
    rng = np.random.default_rng(0)
    X = rng.random((samples, widths[0]))
    X[rng.random(X.shape) < 0.5] = 0               # like Fashion-MNIST: half the pixels are zero
    y = rng.integers(0, widths[-1], samples)
    order = np.arange(samples)
    params = sum(a * b for a, b in zip(widths, widths[1:]))
    nz_rows = 0.5 * widths[0] * widths[1]
    for dtype in (np.float32, np.float64):
        item = np.dtype(dtype).itemsize
        Ws = tuple((rng.standard_normal((a, b)) * np.sqrt(2 / (a + b))).astype(dtype)
                   for a, b in zip(widths, widths[1:]))
        bs = tuple(np.zeros(b, dtype) for b in widths[1:])
        Xd = X.astype(dtype)
        args = (Ws, bs, np.ones(3, dtype), np.array([fk.SIGMOID, fk.SIGMOID, fk.IDENTITY]), fk.SOFTMAX_CE, Xd, y,
                np.zeros((0, widths[-1]), dtype), order, dtype(1e-6))
        dense = params - widths[0] * widths[1]
        flops = samples * 6.0 * (nz_rows + dense)
        nbytes = traffic_bytes(fused_traffic(Xd, order, widths), item)  # counted: bench/fused_traffic.py
        group = f"fused_sgd_epoch[samples={samples},{'-'.join(map(str, widths))},{np.dtype(dtype).name}]"
        cases.append(Case(group, "numba-fused", np.dtype(dtype).name, {"samples": samples}, fk.sgd_epoch, args, flops,
                          nbytes, baseline="numba-fused", extra={"op": "fused_sgd_epoch"}))
    return cases


def all_cases(sizes_name: str | None = None) -> list[Case]:
    """Every case for the size set (default: :func:`size_set`)."""
    sizes_name = sizes_name or size_set()
    return _matmul_cases(sizes_name) + _registry_cases(sizes_name) + _fused_cases(sizes_name)
