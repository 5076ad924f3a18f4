"""The memory traffic of the fused per-sample kernel, and a kernel that moves exactly those bytes.

:func:`kernels.fused.sgd_epoch` (one thread, sigmoid or identity hidden layers, so
only the first layer skips rows) touches, for ``M`` samples in ``order``:

* first layer ``W0`` (``n0 x n1``): sample 0's forward reads the rows of its non-zero
  pixels; then for every sample ``s < M-1`` one pass reads the rows where sample ``s``
  *or* sample ``s+1`` has a non-zero pixel (the union) and writes the rows of sample
  ``s``'s non-zero pixels (update of ``s`` fused with the forward of ``s+1``); the
  last sample's update reads and writes its own non-zero rows;
* every later layer ``W_l``: read whole in the forward pass, read and written whole
  in the backward pass (the input gradient and the update share one sweep);
* biases: forward read, backward read + write (the first layer's bias is also read
  again to start the next sample's forward);
* the input rows: the first-layer pass reads ``x_s[k]`` and ``x_{s+1}[k]`` for every
  pixel ``k``.

:func:`fused_traffic` counts those element accesses from ``X`` and ``order``;
:func:`stream_same_bytes` performs exactly the same accesses (same arrays, same rows,
same passes, reads where the kernel reads, read+write where it writes) with no
arithmetic beyond one add per read element, so its rate is what moving the fused
kernel's bytes costs on this machine, wherever in the memory hierarchy they live.
``tests/test_bench.py`` checks both against an instrumented run of the real kernel.
Scratch vectors (activations, deltas; a few KiB, in L1) and labels are not counted.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels.cachesize import cache_sizes

_FASTMATH = {"reassoc", "contract", "nsz"}


def fused_traffic(X, order, widths) -> dict:
    """Element accesses of ``sgd_epoch`` over ``X[order]`` for layer ``widths`` (n0, n1, ..., nL).

    Returns ``{weight_reads, weight_writes, bias_reads, bias_writes, x_reads, samples}``
    (element counts; multiply by the item size for bytes).  Valid for hidden layers
    that do not skip rows (sigmoid / identity), which is what the benchmarks train.
    """
    order = np.asarray(order)
    M = int(order.shape[0])
    out = {"weight_reads": 0, "weight_writes": 0, "bias_reads": 0, "bias_writes": 0, "x_reads": 0, "samples": M}
    if M == 0:
        return out
    n0, n1 = widths[0], widths[1]
    nz = np.asarray(X)[order] != 0                       # (M, n0)
    own = nz.sum(axis=1).astype(np.int64)                # non-zero pixels of each sample
    union = (nz[:-1] | nz[1:]).sum(axis=1).astype(np.int64)
    out["weight_reads"] = n1 * int(own[0] + union.sum() + own[-1])
    out["weight_writes"] = n1 * int(own.sum())
    dense = sum(a * b for a, b in zip(widths[1:], widths[2:]))
    out["weight_reads"] += 2 * M * dense
    out["weight_writes"] += M * dense
    later_bias = sum(widths[2:])
    out["bias_reads"] = n1 + (M - 1) * 2 * n1 + n1 + M * 2 * later_bias
    out["bias_writes"] = M * n1 + M * later_bias
    out["x_reads"] = n0 + (M - 1) * 2 * n0 + n0
    return out


def traffic_bytes(traffic: dict, itemsize: int) -> float:
    """Bytes of all counted accesses (weights, biases, input rows)."""
    return float(itemsize) * sum(traffic[k] for k in ("weight_reads", "weight_writes", "bias_reads",
                                                       "bias_writes", "x_reads"))


@njit(cache=True, fastmath=_FASTMATH, nogil=True)
def stream_same_bytes(weights, biases, X, order, scale):
    """Touch exactly what ``sgd_epoch`` touches (see the module docstring), without its math.

    Reads are summed into the returned value; writes store ``w * scale`` (pass 1 to keep the
    weights).  Hidden layers are treated as non-skipping (sigmoid / identity).
    """
    L = len(weights)
    M = order.shape[0]
    acc = scale * 0
    if M == 0:
        return acc
    W0 = weights[0]
    b0 = biases[0]
    n0, n1 = W0.shape
    x = X[order[0]]
    for j in range(n1):                                  # sample 0's first-layer forward
        acc += b0[j]
    for k in range(n0):
        if x[k] != 0:
            for j in range(n1):
                acc += W0[k, j]
    for s in range(M):
        for l in range(1, L):                            # forward: read b_l and all of W_l
            W = weights[l]
            b = biases[l]
            for j in range(W.shape[1]):
                acc += b[j]
            for k in range(W.shape[0]):
                for j in range(W.shape[1]):
                    acc += W[k, j]
        for l in range(L - 1, 0, -1):                    # backward: read + write b_l and all of W_l
            W = weights[l]
            b = biases[l]
            for j in range(W.shape[1]):
                b[j] = b[j] * scale
            for k in range(W.shape[0]):
                for j in range(W.shape[1]):
                    W[k, j] = W[k, j] * scale
        x_old = X[order[s]]
        if s + 1 < M:                                    # update of s fused with forward of s+1
            x_new = X[order[s + 1]]
            for j in range(n1):
                b0[j] = b0[j] * scale
                acc += b0[j]
            for k in range(n0):
                a_old = x_old[k]
                a_new = x_new[k]
                if a_old != 0:
                    for j in range(n1):
                        W0[k, j] = W0[k, j] * scale
                elif a_new != 0:
                    for j in range(n1):
                        acc += W0[k, j]
        else:                                            # the last sample's update
            for j in range(n1):
                b0[j] = b0[j] * scale
            for k in range(n0):
                a = x_old[k]
                if a != 0:
                    for j in range(n1):
                        W0[k, j] = W0[k, j] * scale
    return acc


def memory_level(nbytes: int, sizes: dict | None = None) -> str:
    """The smallest cache level (per instance, read from the machine) that holds ``nbytes``, else DRAM."""
    sizes = cache_sizes() if sizes is None else sizes
    for level in sorted(sizes):
        if nbytes <= sizes[level]:
            return "L1d" if level == 1 else f"L{level}"
    return "DRAM"
