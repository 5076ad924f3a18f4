"""Numba twins of :mod:`kernels.reference_losses` (same names, signatures and dtypes).

The math and the shapes are documented there.  As in :mod:`kernels.jit`: one flat,
branch-free loop per elementwise kernel over raveled C-contiguous arrays, the output
allocated by NumPy in the Python wrapper; ``log``/``exp`` through the SIMD
:func:`kernels.vmath.vlog`/:func:`kernels.vmath.vexp`; constants typed from the input
(``p.dtype.type(...)``) so float32 stays float32; ``error_model="numpy"`` where a loop
divides; every clamp written ``lo if v < lo else v`` so that NaN stays NaN.

``log1p(x)`` has no vectorised twin; it is written out as ``log(u) - ((u - 1) - x) / u``
with ``u = 1 + x`` (the rounding of ``u`` corrected to first order: accurate to a few ulp also where
``|x|`` is below the rounding of 1, where it gives ``x``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .contract import kernel
from .reference_losses import BCE_GRAD_EPS, BCE_LOG_FLOOR
from .vmath import vexp, vlog


@njit(cache=True, error_model="numpy")
def _log1m(v, zero, one):
    """``log1p(-v)``: ``-inf`` at ``v = 1``.  A function of its own: a second ``vlog`` inlined
    into one loop trips a Numba SSA check (NumbaIRAssumptionWarning); LLVM inlines this one."""
    u = one - v
    r = vlog(u)
    return r if u == zero else r - ((u - one) + v) / u


@njit(cache=True, error_model="numpy")
def _bce(p, t, out):
    pf, tf, of = p.ravel(), t.ravel(), out.ravel()
    one = p.dtype.type(1)
    zero = p.dtype.type(0)
    floor = p.dtype.type(BCE_LOG_FLOOR)
    for i in range(pf.size):
        v = pf[i]
        w = tf[i]
        lp = vlog(v)
        lq = _log1m(v, zero, one)
        lp = floor if lp < floor else lp
        lq = floor if lq < floor else lq
        of[i] = (w - one) * lq - w * lp
    return out


@kernel
def bce(p, t):
    return _bce(p, t, np.empty(p.shape, p.dtype))


@njit(cache=True, error_model="numpy")
def _bce_backward(p, t, out):
    pf, tf, of = p.ravel(), t.ravel(), out.ravel()
    one = p.dtype.type(1)
    eps = p.dtype.type(BCE_GRAD_EPS)
    for i in range(pf.size):
        v = pf[i]
        d = (one - v) * v
        d = eps if d < eps else d
        of[i] = (v - tf[i]) / d
    return out


@kernel
def bce_backward(p, t):
    return _bce_backward(p, t, np.empty(p.shape, p.dtype))


@njit(cache=True, error_model="numpy")
def _bce_with_logits(z, t, out):
    zf, tf, of = z.ravel(), t.ravel(), out.ravel()
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    for i in range(zf.size):
        v = zf[i]
        e = vexp(-abs(v))                      # in [0, 1]: never overflows
        m = v if v > zero else zero            # a NaN v still gives NaN through v * t and e
        u = one + e                            # log1p(e), u in [1, 2]
        of[i] = m - v * tf[i] + (vlog(u) - ((u - one) - e) / u)
    return out


@kernel
def bce_with_logits(z, t):
    return _bce_with_logits(z, t, np.empty(z.shape, z.dtype))


@njit(cache=True, error_model="numpy")
def _bce_with_logits_backward(z, t, out):
    zf, tf, of = z.ravel(), t.ravel(), out.ravel()
    one = z.dtype.type(1)
    zero = z.dtype.type(0)
    for i in range(zf.size):
        v = zf[i]
        e = vexp(-abs(v))
        of[i] = (one if v >= zero else e) / (one + e) - tf[i]
    return out


@kernel
def bce_with_logits_backward(z, t):
    return _bce_with_logits_backward(z, t, np.empty(z.shape, z.dtype))


@njit(cache=True)
def _l1(pred, target, out):
    pf, tf, of = pred.ravel(), target.ravel(), out.ravel()
    for i in range(pf.size):
        of[i] = abs(pf[i] - tf[i])
    return out


@kernel
def l1(pred, target):
    return _l1(pred, target, np.empty(pred.shape, pred.dtype))


@njit(cache=True)
def _l1_backward(pred, target, out):
    pf, tf, of = pred.ravel(), target.ravel(), out.ravel()
    one = pred.dtype.type(1)
    zero = pred.dtype.type(0)
    for i in range(pf.size):
        d = pf[i] - tf[i]
        of[i] = one if d > zero else (-one if d < zero else d)     # d: +-0, or NaN as np.sign
    return out


@kernel
def l1_backward(pred, target):
    return _l1_backward(pred, target, np.empty(pred.shape, pred.dtype))


@njit(cache=True)
def _huber(pred, target, delta, out):
    pf, tf, of = pred.ravel(), target.ravel(), out.ravel()
    half = pred.dtype.type(0.5)
    half_delta = half * delta
    for i in range(pf.size):
        d = pf[i] - tf[i]
        a = abs(d)
        of[i] = half * d * d if a < delta else delta * (a - half_delta)
    return out


@kernel
def huber(pred, target, delta=1.0):
    return _huber(pred, target, pred.dtype.type(delta), np.empty(pred.shape, pred.dtype))


@njit(cache=True)
def _huber_backward(pred, target, delta, out):
    pf, tf, of = pred.ravel(), target.ravel(), out.ravel()
    for i in range(pf.size):
        d = pf[i] - tf[i]
        of[i] = -delta if d <= -delta else (delta if d >= delta else d)
    return out


@kernel
def huber_backward(pred, target, delta=1.0):
    return _huber_backward(pred, target, pred.dtype.type(delta), np.empty(pred.shape, pred.dtype))


@njit(cache=True)
def _nll_labels(logp, y, out):
    for i in range(logp.shape[0]):
        out[i] = -logp[i, y[i]]
    return out


@njit(cache=True, fastmath={"reassoc", "contract"})
def _nll_dense(logp, t, out):
    # the row sum reassociated so it vectorises; no nnan/ninf, so NaN/inf still come out
    Bn, K = logp.shape
    for i in range(Bn):
        acc = logp.dtype.type(0)
        for k in range(K):
            acc += t[i, k] * logp[i, k]
        out[i] = -acc
    return out


@kernel
def nll(logp, y):
    out = np.empty(logp.shape[0], logp.dtype)
    if y.ndim == 1:
        return _nll_labels(logp, y, out)
    return _nll_dense(logp, y, out)


@njit(cache=True)
def _nll_backward_labels(logp, y, g):
    Bn, K = logp.shape
    zero = logp.dtype.type(0)
    minus_one = -logp.dtype.type(1)
    for i in range(Bn):
        row = g[i]
        for k in range(K):
            row[k] = zero
        v = logp[i, y[i]]
        row[y[i]] = v if v != v else minus_one          # NaN read: NaN out
    return g


@njit(cache=True)
def _nll_backward_dense(logp, t, g):
    lf, tf, gf = logp.ravel(), t.ravel(), g.ravel()
    for i in range(lf.size):
        v = lf[i]
        gf[i] = v if v != v else -tf[i]
    return g


@kernel
def nll_backward(logp, y):
    g = np.empty(logp.shape, logp.dtype)
    if y.ndim == 1:
        return _nll_backward_labels(logp, y, g)
    return _nll_backward_dense(logp, y, g)
