"""Exact multi-threaded per-sample SGD: the work of every sample split by weight rows between threads.

Same arguments and result as :func:`kernels.fused.sgd_epoch`, plus the team's
shared state; only the order of summation in the layer outputs differs.  Also
here: the spin barrier and the LLVM atomics it is built on.
"""
from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .codes import IDENTITY, MSE, RELU, SOFTMAX_CE
from .fused_math import _FASTMATH, _act, _backward_rows, _output_loss_and_delta

# Exact multi-threaded per-sample SGD.  Thread t owns a contiguous block of *rows* of every
# layer's weights (rows = input units): it writes only those rows, and it streams only its
# own memory, which the hardware prefetchers like (a column split interleaves the threads'
# halves of every row, and each core's prefetcher then drags in the other's half: measured
# no faster than one thread).  Per layer and sample:
#   forward   each thread sums its rows' share  a[k] * W[k, :]  into a partial vector; after a
#             barrier each thread adds up the partials for the outputs it owns (the rows it
#             owns in the next layer) -- the last layer's outputs are summed by every thread;
#   backward  the fused sweep over own rows gives complete input gradients for those rows;
#             they go to a shared vector, and after a barrier every thread has the whole delta
#             for the layer below.
# Shared scratch is double-buffered by a running step count, so one barrier per step is
# enough.  Threads meet at a spin barrier built on LLVM atomics; the kernel is nogil and
# runs in plain Python threads.

def run_team(member, nthreads: int) -> list:
    """Run ``member(tid)`` for ``tid = 0 .. nthreads - 1`` in plain Python threads at once (the
    members are nogil kernels that meet at :func:`_barrier`); return their results in ``tid``
    order, or raise the first member's exception."""
    results = [None] * nthreads
    errors = []

    def work(tid):
        try:
            results[tid] = member(tid)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(nthreads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return results


#: Length of the int64 ``sync`` array: arrival count in slot 0, generation in slot 8
#: (a separate cache line).
SYNC_SLOTS = 16


def _item_pointer(context, builder, sig, args):
    arr_t = sig.args[0]
    ary = context.make_array(arr_t)(context, builder, args[0])
    idx = context.cast(builder, args[1], sig.args[1], types.intp)
    return cgutils.get_item_pointer(context, builder, arr_t, ary, [idx])


@intrinsic
def _atomic_add(typingctx, arr, idx, val):
    """``old = arr[idx]; arr[idx] += val`` atomically (sequentially consistent); int64 arrays."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, idx, val)

    def codegen(context, builder, sig, args):
        ptr = _item_pointer(context, builder, sig, args)
        v = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, v, "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, arr, idx):
    """Atomic (acquire) read of ``arr[idx]``; int64 arrays."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, idx)

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_item_pointer(context, builder, sig, args), "acquire", 8)

    return sig, codegen


@intrinsic
def _sched_yield(typingctx):
    """``sched_yield()`` from the C library: give the core to another runnable thread."""
    sig = types.int32()

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty, "sched_yield"), [])

    return sig, codegen


#: Spins before a waiting thread starts yielding its core (matters only when there are
#: more threads than free cores; a barrier normally completes within a few hundred spins).
_SPINS_BEFORE_YIELD = 4096


@njit(cache=True)
def _barrier(sync, nthreads, gen):
    """Counting spin barrier; ``gen`` is the caller's number of barriers passed, returned + 1."""
    if _atomic_add(sync, 0, 1) == nthreads - 1:
        _atomic_add(sync, 0, -nthreads)
        _atomic_add(sync, 8, 1)
    else:
        spins = 0
        while _atomic_load(sync, 8) == gen:
            spins += 1
            if spins > _SPINS_BEFORE_YIELD:
                _sched_yield()
    return gen + 1


@njit(cache=True, inline="always")
def _share(n, tid, nthreads):
    """Thread ``tid``'s contiguous share ``[lo, hi)`` of ``n`` items."""
    return n * tid // nthreads, n * (tid + 1) // nthreads


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _partial_forward_rows(W, inp, lo, hi, part, skip_zero):
    """``part = sum_{k in [lo, hi)} inp[k] * W[k, :]`` (zero inputs skipped when allowed)."""
    n_out = W.shape[1]
    for j in range(n_out):
        part[j] = 0
    for k in range(lo, hi):
        a = inp[k]
        if a != 0 or not skip_zero:
            for j in range(n_out):
                part[j] += a * W[k, j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sgd_epoch_threaded(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                       tid, nthreads, sync, P, S):
    """One thread's share of :func:`sgd_epoch` (same arguments and result, plus the team's state).

    tid, nthreads : this thread's index and the team size (every member calls this at once)
    sync : int64 (SYNC_SLOTS,) zeros; P : (2, nthreads, width) and S : (2, width) of X's
    dtype -- shared scratch for partial outputs and input gradients; width >= every layer width.
    The result is exactly sequential per-sample SGD; only the order of summation in the
    outputs differs from :func:`sgd_epoch`.
    """
    L = len(weights)
    M = order.shape[0]
    width = S.shape[1]
    A = np.zeros((L + 1, width), dtype=X.dtype)      # private: only own entries are ever used
    D = np.zeros(width, dtype=X.dtype)               # output-layer delta (every thread, all of it)
    losses = np.zeros(M, dtype=X.dtype)
    gen = 0
    fsteps = 0
    bsteps = 0
    for s in range(M):
        i = order[s]
        x = X[i]
        for l in range(L):
            W = weights[l]
            b = biases[l]
            n_in, n_out = W.shape
            lo, hi = _share(n_in, tid, nthreads)
            par = fsteps % 2
            fsteps += 1
            inp = x if l == 0 else A[l]
            skip = l == 0 or activations[l - 1] == RELU
            _partial_forward_rows(W, inp, lo, hi, P[par, tid], skip)
            gen = _barrier(sync, nthreads, gen)
            last = l == L - 1
            olo, ohi = (0, n_out) if last else _share(n_out, tid, nthreads)
            code = IDENTITY if last else activations[l]
            out = A[l + 1]
            for j in range(olo, ohi):
                v = b[j]
                for t in range(nthreads):
                    v += P[par, t, j]
                out[j] = _act(v, code)
        K = weights[L - 1].shape[1]
        lab = labels[i] if loss_kind == SOFTMAX_CE else 0
        tgt = targets[i] if loss_kind == MSE else D
        loss = _output_loss_and_delta(A[L], K, loss_kind, lab, tgt, D)
        if not np.isfinite(loss):
            return losses, s
        losses[s] = loss
        # every thread has read the last layer's bias for these logits before its owner updates it
        gen = _barrier(sync, nthreads, gen)
        delta = D
        for l in range(L - 1, -1, -1):
            W = weights[l]
            b = biases[l]
            n_in, n_out = W.shape
            blo, bhi = _share(n_out, tid, nthreads)
            blr = lr * bias_on[l]
            for j in range(blo, bhi):
                b[j] -= blr * delta[j]
            lo, hi = _share(n_in, tid, nthreads)
            if l == 0:
                _backward_rows(W, x, delta, lo, hi, lr, IDENTITY, True, D, False)
                break
            par = bsteps % 2
            bsteps += 1
            code = activations[l - 1]
            _backward_rows(W, A[l], delta, lo, hi, lr, code, code == RELU, S[par], True)
            gen = _barrier(sync, nthreads, gen)
            delta = S[par]
    return losses, M
