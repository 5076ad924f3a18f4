"""Per-sample SGD with compact (deferred) weight updates: exact sequential SGD, another summation order.

The fused per-sample kernel (:func:`kernels.fused.sgd_epoch`) reads *and writes* every
weight row once per sample; that traffic bounds it.  Here, within a block of ``k``
consecutive samples, a *compact* layer keeps its block-start weights ``W0``/``b0`` fixed
and represents the current ones as

    W_s = W0 - lr * sum_{t<s} a_t^T d_t,     b_s = b0 - lr * sum_{t<s} d_t

(``a_t`` the layer's input for sample t, ``d_t`` the gradient at its pre-activation), so
for sample s

* forward:  ``a_s W_s + b_s = a_s W0 + b0 - lr * sum_{t<s} (a_s . a_t + 1) d_t``;
* input gradient: ``d_s W_s^T = d_s W0^T - lr * sum_{t<s} (d_s . d_t) a_t``;
* at the block end ``W0 -= lr A^T D`` is one rank-k BLAS GEMM
  (:func:`kernels.blas.gemm_at_b`), ``b0 -= lr * sum_t d_t``.

For the first layer the inputs are known in advance, so ``X_block W0`` and the Gram
matrix ``X_block X_block^T`` are two GEMMs at the start of the block.  Hidden layers are
read-only passes over ``W0`` (no per-sample writes).  A layer whose weights are small
next to the corrections' cost (``n_in * n_out <= k * (n_in + n_out)``, e.g. the
512x10 output layer) is updated directly per sample, as in the fused kernel;
:func:`net.fused.compact_layers` gives that rule, and callers may pass any other choice.

Every sample sees exactly the weights sequential SGD gives it, up to rounding: the
results match :func:`kernels.fused.sgd_epoch` to floating-point tolerance, for finite
inputs.  (An infinite input after zero rows in a block makes a Gram-matrix correction
``inf * 0 = NaN``, so the kernel stops one sample before sequential SGD would; ``fit``
refuses non-finite data before any kernel runs.)

Threads (:func:`sgd_epoch_compact_threads`): every member of a team runs :func:`_epoch` on
shared buffers and the members meet at spin barriers.  They split the block-start GEMMs
(``X_block W1`` by columns, the Gram matrix by rows), the pipelined pass over the second
layer (by rows: with two threads each core reads half of ``W[1]``, 0.5 MiB for the
tutorial network, which then stays in its L2) and the block-end updates (by weight rows);
thread 0 alone does the rest of each sample while the others wait at the barrier.  One
thread is the same code with a team of one (its second-layer pass runs inside
:func:`_serial_sample`, at the point where the single-thread kernel always ran it).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .blas import _gemm_call, gemm_abt
from .codes import IDENTITY, MSE, RELU, SOFTMAX_CE
from .fused_math import _FASTMATH, _act, _act_grad_from_output, _activate, _backward_rows, _output_loss_and_delta
from .fused_threads import SYNC_SLOTS, _barrier, _share, run_team

#: Samples per block when the caller does not choose (the issue's prototype: 32-64 best).
DEFAULT_BLOCK = 32


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _dot(a, b):
    acc = type(a[0])(0)
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _row_pass_forward(W, inp, out, skip_zero):
    """``out += inp @ W`` (rows of zero inputs skipped with ``skip_zero``); read-only over W."""
    n_in, n_out = W.shape
    for i in range(n_in):
        a = inp[i]
        if a != 0 or not skip_zero:
            for j in range(n_out):
                out[j] += a * W[i, j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _row_pass_backward(W, delta, inp, code, g):
    """``g = (W @ delta) * act'(inp)`` (inp = the layer's input, the previous activation's output); read-only."""
    n_in, n_out = W.shape
    zero = type(delta[0])(0)
    for i in range(n_in):
        a = inp[i]
        if code == RELU and not a > zero:
            g[i] = zero
            continue
        acc = zero
        for j in range(n_out):
            acc += W[i, j] * delta[j]
        g[i] = acc


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _corrections(out, own, others, other_vals, n, coef_lr, bias, known, row):
    """``out -= coef_lr * sum_{t<n} (own . others[t] + bias) * other_vals[t]``.

    When ``known.shape[0] > 0`` the dot products are read from ``known[row, t]`` (the first
    layer's Gram matrix) instead of being computed.
    """
    _corrections_rows(out, own, others, other_vals, n, coef_lr, bias, known, row, 0, out.shape[0])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _corrections_rows(out, own, others, other_vals, n, coef_lr, bias, known, row, lo, hi):
    """:func:`_corrections` for the entries ``[lo, hi)`` of ``out`` (a thread's share); the dot
    products are over the whole vectors."""
    for t in range(n):
        c = known[row, t] if known.shape[0] > 0 else _dot(own, others[t])
        c = coef_lr * (c + bias)
        if c != 0:
            v = other_vals[t]
            for i in range(lo, hi):
                out[i] -= c * v[i]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _backward_then_next_forward(W, delta, a_in, code, corr, pre, gain, d_out, a_next, z_next, lo, hi):
    """One read-only pass over the second layer's rows: this sample's backward, the next one's forward.

    W (n_in, n_out) : the second layer's block-start weights; delta (n_out,) its output
    gradient for this sample; a_in (n_in,) this sample's input to it (the first layer's
    output, ``code`` its activation); corr (n_in,) the compact correction of ``W @ delta``.
    Row i gives ``d_out[i]``, the first layer's output gradient, which is all the next
    sample's first-layer pre-activation ``pre[i] - gain * d_out[i]`` still needs; its
    activation ``a_next[i]`` is then added into ``z_next += a_next[i] * W[i]`` while the row
    is in cache.  Rows go 8 at a time (register blocking): the 8 dot products share each
    load of ``delta`` and ``z_next`` is loaded and stored once per 8 rows (one row at a time
    measured ~1.5x slower).  Dead ReLU rows are not skipped here: their dot product is
    given ``act' = 0`` without reading their (unused) dot product.  Only rows ``[lo, hi)``
    (a thread's share): ``z_next`` gets their part of the sum.
    """
    n_out = W.shape[1]
    zero = type(delta[0])(0)
    i0 = lo
    while i0 + 8 <= hi:                   # 8 rows at a time: 8 dot products share each load of delta,
        a0 = zero                           # and each z_next[q] is loaded and stored once per 8 rows
        a1 = zero
        a2 = zero
        a3 = zero
        a4 = zero
        a5 = zero
        a6 = zero
        a7 = zero
        for q in range(n_out):
            dq = delta[q]
            a0 += W[i0, q] * dq
            a1 += W[i0 + 1, q] * dq
            a2 += W[i0 + 2, q] * dq
            a3 += W[i0 + 3, q] * dq
            a4 += W[i0 + 4, q] * dq
            a5 += W[i0 + 5, q] * dq
            a6 += W[i0 + 6, q] * dq
            a7 += W[i0 + 7, q] * dq
        h0 = _pipelined_unit(a0, i0, a_in, code, corr, pre, gain, d_out, a_next)
        h1 = _pipelined_unit(a1, i0 + 1, a_in, code, corr, pre, gain, d_out, a_next)
        h2 = _pipelined_unit(a2, i0 + 2, a_in, code, corr, pre, gain, d_out, a_next)
        h3 = _pipelined_unit(a3, i0 + 3, a_in, code, corr, pre, gain, d_out, a_next)
        h4 = _pipelined_unit(a4, i0 + 4, a_in, code, corr, pre, gain, d_out, a_next)
        h5 = _pipelined_unit(a5, i0 + 5, a_in, code, corr, pre, gain, d_out, a_next)
        h6 = _pipelined_unit(a6, i0 + 6, a_in, code, corr, pre, gain, d_out, a_next)
        h7 = _pipelined_unit(a7, i0 + 7, a_in, code, corr, pre, gain, d_out, a_next)
        for q in range(n_out):
            z_next[q] += (h0 * W[i0, q] + h1 * W[i0 + 1, q] + h2 * W[i0 + 2, q] + h3 * W[i0 + 3, q]
                          + h4 * W[i0 + 4, q] + h5 * W[i0 + 5, q] + h6 * W[i0 + 6, q] + h7 * W[i0 + 7, q])
        i0 += 8
    for i in range(i0, hi):
        acc = zero
        for q in range(n_out):
            acc += W[i, q] * delta[q]
        h = _pipelined_unit(acc, i, a_in, code, corr, pre, gain, d_out, a_next)
        if h != 0:
            for q in range(n_out):
                z_next[q] += h * W[i, q]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _pipelined_unit(acc, i, a_in, code, corr, pre, gain, d_out, a_next):
    """Unit i of :func:`_backward_then_next_forward`: ``d_out[i]`` from the dot product ``acc``, then
    the next sample's activation ``a_next[i]`` (returned)."""
    a = a_in[i]
    g = type(acc)(0) if code == RELU and not a > 0 else (acc + corr[i]) * _act_grad_from_output(a, code)
    d_out[i] = g
    h = _act(pre[i] - gain * g, code)
    a_next[i] = h
    return h


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _scale_by_activation_grad(g, inp, code):
    for i in range(g.shape[0]):
        g[i] *= _act_grad_from_output(inp[i], code)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _direct_first_layer_update(W, b, x, delta, lr, blr):
    n_in, n_out = W.shape
    for i in range(n_in):
        a = x[i]
        if a != 0:
            c = lr * a
            for j in range(n_out):
                W[i, j] -= c * delta[j]
    for j in range(n_out):
        b[j] -= blr * delta[j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _pipelined_pass(weights, biases, bias_on, activations, acts, deltas, offs_a, offs_d, widths, Z1, G, corr, pre,
                    part, out_last, j, nb, lr, lo, hi):
    """Sample j's backward through the second layer (its output gradient already in ``deltas``) and
    sample j + 1's forward through the first layer and into the second, both compact, in one pass
    over rows ``[lo, hi)`` of ``W[1]`` (a thread's share).  Writes those entries of the first
    layer's output gradient for j and of its output for j + 1, and the rows' share of sample
    j + 1's second-layer pre-activation: into ``part`` (a team member's, without the bias;
    :func:`_finish_second_layer` adds the parts up), or, when ``part`` is empty (one thread),
    straight into that sample's output from its bias."""
    n1, n2 = widths[1], widths[2]
    A1 = acts[offs_a[1]:offs_a[1] + nb * n1].reshape(nb, n1)       # first layer's outputs
    D0 = deltas[offs_d[0]:offs_d[0] + nb * n1].reshape(nb, n1)     # first layer's output gradients
    D1 = deltas[offs_d[1]:offs_d[1] + nb * n2].reshape(nb, n2)     # second layer's output gradients
    code = activations[0]
    zero = type(lr)(0)
    # W1_j^T correction for sample j's input gradient: -lr sum_{t<j} (d_j . d_t) a_t
    for i in range(lo, hi):
        corr[i] = zero
    _corrections_rows(corr, D1[j], D1, A1, j, lr, zero, G[:0, :0], 0, lo, hi)
    # sample j+1's first-layer pre-activation, but for the term of sample j's gradient
    b0 = biases[0]
    for i in range(lo, hi):
        pre[i] = Z1[j + 1, i] + b0[i]
    _corrections_rows(pre, A1[j + 1], A1, D0, j, lr, bias_on[0], G, j + 1, lo, hi)
    gain = lr * (G[j + 1, j] + bias_on[0])
    if part.shape[0] == 0:           # one thread: straight into sample j + 1's output, from its bias
        part = out_last if len(weights) == 2 else acts[offs_a[2] + (j + 1) * n2:offs_a[2] + (j + 2) * n2]
        b1 = biases[1]
        for q in range(n2):
            part[q] = b1[q]
    else:
        for q in range(n2):
            part[q] = zero
    _backward_then_next_forward(weights[1], D1[j], A1[j], code, corr, pre, gain, D0[j], A1[j + 1], part, lo, hi)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _finish_second_layer(weights, biases, bias_on, activations, acts, deltas, offs_a, offs_d, widths, P, out_last,
                         j, nb, lr):
    """Sample j's second-layer output from the threads' parts of the pipelined pass (sample j - 1's):
    bias + parts, the compact corrections, the activation."""
    n1, n2 = widths[1], widths[2]
    A1 = acts[offs_a[1]:offs_a[1] + nb * n1].reshape(nb, n1)
    D1 = deltas[offs_d[1]:offs_d[1] + nb * n2].reshape(nb, n2)
    z = out_last if len(weights) == 2 else acts[offs_a[2] + j * n2:offs_a[2] + (j + 1) * n2]
    if P.shape[1] > 0:                # a team: bias + the members' parts (one thread summed into z)
        b1 = biases[1]
        for q in range(n2):
            z[q] = b1[q]
        for t in range(P.shape[0]):
            part = P[t]
            for q in range(n2):
                z[q] += part[q]
    _corrections(z, A1[j], A1, D1, j, lr, bias_on[1], D1[:0, :0], 0)
    if len(weights) > 2:
        _activate(z, activations[1])


@njit(cache=True, inline="always")
def _cols_ab(C, A, B, lo, hi):
    """``C[:, lo:hi] = A @ B[:, lo:hi]`` for C-contiguous C (m, n), A (m, k), B (k, n) (a thread's
    columns; BLAS's column-major view: rows ``[lo, hi)`` of ``C.T = B.T A.T``)."""
    m, k = A.shape
    n = B.shape[1]
    if m == 0 or hi <= lo:
        return
    dt = C.dtype.type
    if k == 0:
        for r in range(m):
            for c in range(lo, hi):
                C[r, c] = dt(0)
        return
    isz = C.itemsize
    _gemm_call(ord("N"), ord("N"), hi - lo, m, k, dt(1), B.ctypes.data + lo * isz, n, A.ctypes.data, k, dt(0),
               C.ctypes.data + lo * isz, n)


@njit(cache=True, inline="always")
def _rows_at_b(C, A, D, lo, hi, alpha):
    """``C[lo:hi] += alpha * A[:, lo:hi].T @ D`` for C-contiguous C (I, O), A (nb, I), D (nb, O)
    (a thread's rows; :func:`kernels.blas.gemm_at_b` with ``beta = 1`` on a row range)."""
    nb, I = A.shape
    O = D.shape[1]
    if hi <= lo or O == 0 or nb == 0:
        return
    dt = C.dtype.type
    isz = C.itemsize
    _gemm_call(ord("N"), ord("T"), O, hi - lo, nb, dt(alpha), D.ctypes.data, O, A.ctypes.data + lo * isz, I, dt(1),
               C.ctypes.data + lo * O * isz, O)


@njit(cache=True, error_model="numpy")
def _flush(weights, biases, bias_on, compact, acts, deltas, offs_a, offs_d, widths, n, lr, tid, nthreads):
    """Apply the block's deferred updates of the first ``n`` samples to every compact layer: this
    thread's share of each layer's weight rows and bias entries."""
    if n == 0:
        return
    for l in range(len(weights)):
        if compact[l] == 0:
            continue
        n_in, n_out = widths[l], widths[l + 1]
        A = acts[offs_a[l]:offs_a[l] + n * n_in].reshape(n, n_in)
        D = deltas[offs_d[l]:offs_d[l] + n * n_out].reshape(n, n_out)
        lo, hi = _share(n_in, tid, nthreads)
        _rows_at_b(weights[l], A, D, lo, hi, -lr)
        if bias_on[l] != 0:
            b = biases[l]
            blr = lr * bias_on[l]
            qlo, qhi = _share(n_out, tid, nthreads)
            for t in range(n):
                for q in range(qlo, qhi):
                    b[q] -= blr * D[t, q]


@njit(cache=True, inline="always")
def _rows8(n, tid, nthreads):
    """Thread ``tid``'s share ``[lo, hi)`` of ``n`` rows, cut at multiples of 8 (the pass's row blocks)."""
    lo = (n * tid // nthreads) // 8 * 8
    hi = n if tid == nthreads - 1 else (n * (tid + 1) // nthreads) // 8 * 8
    return lo, hi


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _serial_sample(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, compact,
                   widths, offs_a, offs_d, acts, deltas, out_last, d_cur, d_nxt, Z1, G, P, losses, s0, j, nb, corr,
                   pre):
    """Sample ``s0 + j`` on one thread, except what the pipelined pass does: its forward (from the
    third layer when the pass gave the first two), loss and backward (down to the second layer's
    output gradient when the pass takes over).  Returns the sample's position when its loss is
    not finite (nothing of it applied), else -1."""
    L = len(weights)
    # written out here, not passed in: with L = len(weights) known when compiling, Numba drops the
    # pipelined branches (they index the second layer) for one-layer networks
    pipelined = L >= 2 and compact[0] != 0 and compact[1] != 0
    K = widths[L]
    no_known = G[:0, :0]
    zero = X.dtype.type(0)
    if pipelined and j > 0:
        _finish_second_layer(weights, biases, bias_on, activations, acts, deltas, offs_a, offs_d, widths, P,
                             out_last, j, nb, lr)
    for l in range(2 if pipelined and j > 0 else 0, L):
        n_in, n_out = widths[l], widths[l + 1]
        a_in = acts[offs_a[l] + j * n_in:offs_a[l] + (j + 1) * n_in]
        out = out_last if l == L - 1 else acts[offs_a[l + 1] + j * n_out:offs_a[l + 1] + (j + 1) * n_out]
        b = biases[l]
        skip = l == 0 or activations[l - 1] == RELU
        if compact[l] != 0:
            if l == 0:
                for q in range(n_out):
                    out[q] = Z1[j, q] + b[q]
            else:
                for q in range(n_out):
                    out[q] = b[q]
                _row_pass_forward(weights[l], a_in, out, skip)
            Ab = acts[offs_a[l]:offs_a[l] + nb * n_in].reshape(nb, n_in)
            Db = deltas[offs_d[l]:offs_d[l] + nb * n_out].reshape(nb, n_out)
            _corrections(out, a_in, Ab, Db, j, lr, bias_on[l], G if l == 0 else no_known, j)
        else:
            for q in range(n_out):
                out[q] = b[q]
            _row_pass_forward(weights[l], a_in, out, skip)
        if l < L - 1:
            _activate(out, activations[l])
    i = order[s0 + j]
    lab = labels[i] if loss_kind == SOFTMAX_CE else 0
    tgt = targets[i] if loss_kind == MSE else d_cur
    d = d_cur[:K]
    loss = _output_loss_and_delta(out_last, K, loss_kind, lab, tgt, d)
    if not np.isfinite(loss):
        return s0 + j
    losses[s0 + j] = loss
    # backward, layer by layer; every input gradient uses the weights before this sample's update
    cur = d_cur
    nxt = d_nxt
    for l in range(L - 1, -1, -1):
        n_in, n_out = widths[l], widths[l + 1]
        d = cur[:n_out]
        a_in = acts[offs_a[l] + j * n_in:offs_a[l] + (j + 1) * n_in]
        code_in = activations[l - 1] if l > 0 else IDENTITY
        g = nxt[:n_in]
        if compact[l] != 0:
            Db = deltas[offs_d[l]:offs_d[l] + nb * n_out].reshape(nb, n_out)
            Db[j] = d
            if l == 1 and pipelined and j + 1 < nb:
                # one thread: the pass runs here.  Called from _epoch instead (as a team's is), the same
                # pass made the tutorial network's epoch 1.2x slower (measured, cause not found)
                if P.shape[1] == 0:
                    _pipelined_pass(weights, biases, bias_on, activations, acts, deltas, offs_a, offs_d, widths, Z1, G,
                                    corr, pre, P[0], out_last, j, nb, lr, 0, widths[1])
                break                                   # the pipelined pass goes on from here
            if l > 0:
                _row_pass_backward(weights[l], d, a_in, code_in, g)
                Ab = acts[offs_a[l]:offs_a[l] + nb * n_in].reshape(nb, n_in)
                _corrections(g, d, Db, Ab, j, lr, zero, no_known, j)
                _scale_by_activation_grad(g, a_in, code_in)
        else:
            blr = lr * bias_on[l]
            if l > 0:
                _backward_rows(weights[l], a_in, d, 0, n_in, lr, code_in, code_in == RELU, g, True)
                b = biases[l]
                for q in range(n_out):
                    b[q] -= blr * d[q]
            else:
                _direct_first_layer_update(weights[0], biases[0], a_in, d, lr, blr)
        cur, nxt = nxt, cur
    return -1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def _epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, block, compact,
           tid, nthreads, sync, widths, offs_a, offs_d, acts, deltas, out_last, d_cur, d_nxt, Z1, G1, corr, pre, P,
           losses, status):
    """Thread ``tid``'s share of the compact epoch (all of it when ``nthreads`` is 1).

    Every member of the team runs this at once on the buffers of :func:`_buffers`; they meet
    at spin barriers (:func:`kernels.fused_threads._barrier`).  Split between the threads: the
    block-start GEMMs (``X_block W1`` by columns, the Gram matrix by rows), the pipelined pass
    over the second layer's rows (8-row-aligned shares) and the block-end updates (by weight
    rows).  Thread 0 alone does the rest of every sample (the third layer on, the loss, the
    direct layers' updates, the corrections of the second layer's output) while the others
    wait; a team of one runs the pipelined pass inside :func:`_serial_sample`.  ``status[0]`` ends as the epoch's ``done`` (``order``'s length: all trained).
    """
    L = len(weights)
    M = order.shape[0]
    k = max(1, min(block, M))
    first_compact = compact[0] != 0
    pipelined = L >= 2 and compact[0] != 0 and compact[1] != 0
    one = X.dtype.type(1)
    zero = X.dtype.type(0)
    n0, n1 = widths[0], widths[1]
    plo, phi = _rows8(n1, tid, nthreads)
    clo, chi = _share(n1, tid, nthreads)
    gen = 0
    for s0 in range(0, M, k):
        nb = min(k, M - s0)
        A0 = acts[0:nb * n0].reshape(nb, n0)
        slo, shi = _share(nb, tid, nthreads)
        for j in range(slo, shi):
            A0[j] = X[order[s0 + j]]
        G = G1[:nb * nb].reshape(nb, nb) if first_compact else G1[:0].reshape(0, 0)
        gen = _barrier(sync, nthreads, gen)                 # the block's inputs are in place
        if first_compact:
            _cols_ab(Z1[:nb], A0, weights[0], clo, chi)
            gemm_abt(G[slo:shi], A0[slo:shi], A0, one, zero)
        gen = _barrier(sync, nthreads, gen)                 # X_block W1 and the Gram matrix are complete
        for j in range(nb):
            if tid == 0:
                stop = _serial_sample(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order,
                                      lr, compact, widths, offs_a, offs_d, acts, deltas, out_last, d_cur, d_nxt,
                                      Z1, G, P, losses, s0, j, nb, corr, pre)
                if stop >= 0:
                    status[0] = stop
            gen = _barrier(sync, nthreads, gen)
            # a non-finite loss at this sample: apply the block so far, stop.  Compared with this
            # sample's position, not M: without a pipelined pass no barrier keeps thread 0 from
            # writing the next sample's stop before a slow thread has read this one's.
            if status[0] <= s0 + j:
                _flush(weights, biases, bias_on, compact, acts, deltas, offs_a, offs_d, widths, j, lr, tid,
                       nthreads)
                gen = _barrier(sync, nthreads, gen)
                return
            if pipelined and j + 1 < nb and P.shape[1] > 0:     # a team's pass (one thread's: in _serial_sample)
                _pipelined_pass(weights, biases, bias_on, activations, acts, deltas, offs_a, offs_d, widths, Z1, G,
                                corr, pre, P[tid], out_last, j, nb, lr, plo, phi)
                gen = _barrier(sync, nthreads, gen)
        _flush(weights, biases, bias_on, compact, acts, deltas, offs_a, offs_d, widths, nb, lr, tid, nthreads)
        gen = _barrier(sync, nthreads, gen)                 # every update applied before the next block reads


@njit(cache=True)
def _buffers(weights, X, M, block, compact, nthreads):
    """The team's shared scratch for :func:`_epoch`: ``(widths, offs_a, offs_d, acts, deltas,
    out_last, d_cur, d_nxt, Z1, G1, corr, pre, P, losses, status)``."""
    L = len(weights)
    k = max(1, min(block, M))
    widths = np.empty(L + 1, dtype=np.int64)
    widths[0] = X.shape[1]
    for l in range(L):
        widths[l + 1] = weights[l].shape[1]
    offs_a = np.zeros(L + 1, dtype=np.int64)          # block inputs of every layer: (k, n_l)
    offs_d = np.zeros(L + 1, dtype=np.int64)          # block deltas of every layer's output: (k, n_{l+1})
    for l in range(L):
        offs_a[l + 1] = offs_a[l] + k * widths[l]
        offs_d[l + 1] = offs_d[l] + k * widths[l + 1]
    maxw = 0
    for l in range(L + 1):
        maxw = max(maxw, widths[l])
    first_compact = compact[0] != 0
    n2 = widths[2] if L >= 2 else 0
    status = np.empty(1, dtype=np.int64)
    status[0] = M
    return (widths, offs_a, offs_d, np.empty(offs_a[L], dtype=X.dtype), np.empty(offs_d[L], dtype=X.dtype),
            np.empty(widths[L], dtype=X.dtype), np.empty(maxw, dtype=X.dtype), np.empty(maxw, dtype=X.dtype),
            np.empty((k, widths[1]) if first_compact else (0, widths[1]), dtype=X.dtype),
            np.empty(k * k if first_compact else 0, dtype=X.dtype),
            np.empty(widths[1], dtype=X.dtype), np.empty(widths[1], dtype=X.dtype),
            np.zeros((nthreads, n2 if nthreads > 1 else 0), dtype=X.dtype), np.zeros(M, dtype=X.dtype), status)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
def sgd_epoch_compact(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, block,
                      compact):
    """Per-sample SGD over ``X[order]`` with compact updates in blocks of ``block`` samples.

    Arguments and result as :func:`kernels.fused.sgd_epoch`, plus
    block : samples per block (>= 1); compact : uint8 (L,), 1 for the layers updated
    compactly (see :func:`compact_layers`), 0 for those updated directly per sample.
    Returns ``(losses : (M,) X's dtype, done)``; ``done < M``: sample ``order[done]``
    gave a non-finite loss and training stopped before updating with it (every
    update before it applied).
    """
    M = order.shape[0]
    if M == 0:
        return np.zeros(0, dtype=X.dtype), 0
    widths, offs_a, offs_d, acts, deltas, out_last, d_cur, d_nxt, Z1, G1, corr, pre, P, losses, status = \
        _buffers(weights, X, M, block, compact, 1)
    sync = np.zeros(SYNC_SLOTS, dtype=np.int64)
    _epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, block, compact,
           0, 1, sync, widths, offs_a, offs_d, acts, deltas, out_last, d_cur, d_nxt, Z1, G1, corr, pre, P, losses,
           status)
    return losses, status[0]


def sgd_epoch_compact_threads(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr, block,
                              compact, nthreads: int):
    """:func:`sgd_epoch_compact` on ``nthreads`` threads (plain Python threads running the nogil
    :func:`_epoch`); the same result up to the order of summation.  The caller limits BLAS to
    one thread (each team member calls it on its own share)."""
    M = order.shape[0]
    if M == 0 or nthreads == 1:
        return sgd_epoch_compact(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                                 block, compact)
    bufs = _buffers(weights, X, M, block, compact, nthreads)
    sync = np.zeros(SYNC_SLOTS, dtype=np.int64)
    run_team(lambda tid: _epoch(weights, biases, bias_on, activations, loss_kind, X, labels, targets, order, lr,
                                block, compact, tid, nthreads, sync, *bufs), nthreads)
    return bufs[-2], int(bufs[-1][0])
