"""Fused per-sample SGD: a whole epoch of ``w -= lr * grad`` for an MLP inside one compiled call.

The network is ``L`` Linear layers with ``W[l] : (n_l, n_{l+1})`` (row-major,
``y = x @ W + b``), an activation after every layer but the last, and a loss on
the last layer's output:

* activations: :data:`IDENTITY`, :data:`RELU`, :data:`SIGMOID` (one code per layer;
  the last layer's code is ignored);
* losses: :data:`SOFTMAX_CE` (softmax + cross-entropy on logits, integer labels)
  or :data:`MSE` (mean over the K outputs, dense targets).

What makes it fast (per sample, no allocation at all):

* forward and backward walk the weight rows contiguously (``W[k, :]``);
* input rows that are exactly zero are skipped -- pixels in the first layer, and
  ReLU-dead units in hidden layers (their row gets no update and passes no
  gradient);
* the update is fused into the backward sweep: each row of ``W[l]`` is read once
  to form the input gradient ``dx[k] = W[k, :] . delta`` *and* written once with
  ``W[k, :] -= lr * a[k] * delta`` (using the old values for ``dx``, so the result
  is exactly sequential SGD).

The threaded variant splits every layer's output columns between threads, so
each thread owns the weights it writes; threads meet at a spin barrier after
each layer (forward) and after each partial input gradient (backward).  That
is still exact sequential SGD, only the summation order of ``dx`` differs.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .codes import ACTIVATION_CODES, IDENTITY, LOSS_CODES, MSE, RELU, SIGMOID, SOFTMAX_CE  # noqa: F401

# Reassociation lets LLVM vectorise the dot products (x . delta); no "nnan"/"ninf",
# so the non-finite loss check still works.
_FASTMATH = {"reassoc", "contract", "nsz"}


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _act(v, code):
    # typed constants, not v * 0: that is NaN for v = +-inf (relu(-inf) is 0, sigmoid(+-inf) is 1 or 0)
    if code == RELU:
        return v if v > 0 or v != v else type(v)(0)
    if code == SIGMOID:
        one = type(v)(1)
        if v >= 0:
            return one / (one + np.exp(-v))
        e = np.exp(v)
        return e / (one + e)
    return v


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _act_grad_from_output(a, code):
    """d act / d z expressed through the output a = act(z)."""
    one = type(a)(1)
    if code == RELU:
        return one if a > 0 else type(a)(0)
    if code == SIGMOID:
        return a * (one - a)
    return one


@njit(cache=True, fastmath=_FASTMATH)
def _output_loss_and_delta(z, K, loss_kind, label, target, delta):
    """Loss of one sample and d loss / d z into ``delta[:K]`` (batch of one)."""
    if loss_kind == SOFTMAX_CE:
        m = z[0]
        for j in range(1, K):
            if z[j] > m:
                m = z[j]
        total = type(m)(0)                  # not z[0] * 0: NaN for z[0] = -inf
        for j in range(K):
            e = np.exp(z[j] - m)
            delta[j] = e
            total += e
        for j in range(K):
            delta[j] /= total
        delta[label] -= 1
        return m + np.log(total) - z[label]
    acc = z[0] * 0
    scale = (z[0] * 0 + 2) / K
    for j in range(K):
        d = z[j] - target[j]
        acc += d * d
        delta[j] = scale * d
    return acc / K


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _forward_hidden(W, b, inp, out, code, skip_zero):
    """``out = act(inp @ W + b)``; with ``skip_zero`` the rows of zero inputs are not read."""
    n_in, n_out = W.shape
    for j in range(n_out):
        out[j] = b[j]
    for k in range(n_in):
        a = inp[k]
        if a != 0 or not skip_zero:
            for j in range(n_out):
                out[j] += a * W[k, j]
    if code != IDENTITY:
        for j in range(n_out):
            out[j] = _act(out[j], code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_rows(W, inp, delta, lo, hi, lr, code, skip_zero, dx, want_dx):
    """Fused sweep over rows ``[lo, hi)``: ``dx[k] = (W[k] . delta) act'(inp[k])``, ``W[k] -= lr inp[k] delta``."""
    n_out = W.shape[1]
    for k in range(lo, hi):
        a = inp[k]
        if a == 0 and skip_zero:
            if want_dx:
                dx[k] = a
            continue
        c = lr * a
        acc = a * 0
        for j in range(n_out):
            w = W[k, j]
            acc += w * delta[j]
            W[k, j] = w - c * delta[j]
        if want_dx:
            dx[k] = acc * _act_grad_from_output(a, code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_hidden(W, b, inp, delta, prev, code, lr, blr):
    """Fused sweep for layer l >= 1: ``prev = (W @ delta) * act'(inp)``, then ``W -= lr inp delta^T``."""
    for j in range(W.shape[1]):
        b[j] -= blr * delta[j]
    _backward_rows(W, inp, delta, 0, W.shape[0], lr, code, code == RELU, prev, True)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_update(W, b, x, delta, lr, blr):
    """``W -= lr x delta^T``, ``b -= blr delta``, touching only rows where ``x`` is nonzero."""
    for j in range(W.shape[1]):
        b[j] -= blr * delta[j]
    _backward_rows(W, x, delta, 0, W.shape[0], lr, IDENTITY, True, delta, False)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _first_layer_update_then_forward(W, b, x_old, delta, lr, blr, x_new, out, code):
    """Sample s's first-layer update fused with sample s+1's first-layer forward.

    Both stream the same rows, so each row is read once: updated with
    ``x_old``/``delta`` and, while in registers, accumulated into ``out`` with
    ``x_new``.  Rows where both inputs are zero are never touched.
    """
    n_in, n_out = W.shape
    for j in range(n_out):
        b[j] -= blr * delta[j]
        out[j] = b[j]
    for k in range(n_in):
        a_old = x_old[k]
        a_new = x_new[k]
        if a_old != 0:
            c = lr * a_old
            if a_new != 0:
                for j in range(n_out):
                    w = W[k, j] - c * delta[j]
                    W[k, j] = w
                    out[j] += a_new * w
            else:
                for j in range(n_out):
                    W[k, j] -= c * delta[j]
        elif a_new != 0:
            for j in range(n_out):
                out[j] += a_new * W[k, j]
    if code != IDENTITY:
        for j in range(n_out):
            out[j] = _act(out[j], code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sgd_epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr):
    """Per-sample SGD over ``X[order]``, updating ``weights``/``biases`` in place.

    weights : tuple of L arrays (n_l, n_{l+1}); biases : tuple of L arrays (n_{l+1},)
    bias_on : (L,) of X's dtype, 1 where the layer's bias is trained, 0 for a layer
    without bias (pass zeros as its bias; they stay zero)
    activations : int64 (L,) codes; loss_kind : SOFTMAX_CE or MSE
    X : (N, n_0) C-contiguous; labels : int64 (N,) (SOFTMAX_CE); targets : (N, K)
    (MSE; else any (0, K) array); order : int64 (M,) sample indices; lr : scalar of X's dtype
    Returns ``(losses : (M,), done)``: ``done < M`` means sample ``order[done]``
    gave a non-finite loss and training stopped before updating with it.
    """
    L = len(weights)
    M = order.shape[0]
    width = X.shape[1]
    for l in range(L):
        width = max(width, weights[l].shape[1])
    A = np.zeros((L + 1, width), dtype=X.dtype)      # activations of the current sample
    D = np.zeros((2, width), dtype=X.dtype)          # delta ping-pong
    losses = np.zeros(M, dtype=X.dtype)
    if M == 0:
        return losses, 0
    W0 = weights[0]
    relu_skip = np.empty(L, dtype=np.bool_)          # layer l's input may skip zeros
    for l in range(1, L):
        relu_skip[l] = activations[l - 1] == RELU
    code0 = activations[0] if L > 1 else IDENTITY
    _forward_hidden(W0, biases[0], X[order[0]], A[1], code0, True)
    for s in range(M):
        i = order[s]
        for l in range(1, L):
            code = activations[l] if l < L - 1 else IDENTITY
            _forward_hidden(weights[l], biases[l], A[l], A[l + 1], code, relu_skip[l])
        K = weights[L - 1].shape[1]
        lab = labels[i] if loss_kind == SOFTMAX_CE else 0
        tgt = targets[i] if loss_kind == MSE else D[1]
        cur = 0
        loss = _output_loss_and_delta(A[L], K, loss_kind, lab, tgt, D[cur])
        if not np.isfinite(loss):
            return losses, s
        losses[s] = loss
        for l in range(L - 1, 0, -1):
            _backward_hidden(weights[l], biases[l], A[l], D[cur], D[1 - cur], activations[l - 1], lr,
                             lr * bias_on[l])
            cur = 1 - cur
        if s + 1 < M:
            _first_layer_update_then_forward(W0, biases[0], X[i], D[cur], lr, lr * bias_on[0], X[order[s + 1]],
                                             A[1], code0)
        else:
            _first_layer_update(W0, biases[0], X[i], D[cur], lr, lr * bias_on[0])
    return losses, M


# ---- threads -------------------------------------------------------------------------------
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
