"""Per-sample SGD in JAX: ``jit`` over a ``lax.scan`` of the whole epoch, the peer of the fused kernels.

The best per-sample SGD on CPU we know of outside scratchnet (issue 15): one compiled
XLA program for the epoch, one step per sample, the parameters donated so XLA updates
them in place.  :mod:`bench.persample` times it beside the fused and compact kernels
when JAX is installed (``pip install jax jaxlib``; not a dependency of scratchnet).

XLA's CPU backend is held to one thread (``--xla_cpu_multi_thread_eigen=false``,
``intra_op_parallelism_threads=1``), set before JAX is first imported; if JAX was
imported earlier in the process with other flags, :func:`epoch_runner` says so.
"""
from __future__ import annotations

import os
import sys

_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def available() -> bool:
    """Whether JAX can be imported here."""
    import importlib.util

    return importlib.util.find_spec("jax") is not None


def _import_jax_one_thread():
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if _ONE_THREAD not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_ONE_THREAD}".strip()
    elif _ONE_THREAD not in os.environ.get("XLA_FLAGS", ""):
        raise RuntimeError("JAX was imported before bench.jax_persample could hold XLA to one thread; "
                           f"set XLA_FLAGS='{_ONE_THREAD}' before importing it")
    import jax

    return jax


def compiled_epoch(Ws, bs, X, y, lr: float):
    """A zero-argument callable that runs one epoch of per-sample SGD, in order, on the sigmoid MLP
    with softmax cross-entropy (``Ws[l] : (n_l, n_{l+1})``, ``X`` float32 ``(n, n_0)``, ``y`` int
    labels) and returns ``(params, losses)``.  The data and weights are copied to JAX arrays and
    the epoch is compiled for these shapes here, so calling it times training only."""
    jax = _import_jax_one_thread()
    jnp = jax.numpy

    def loss_fn(params, x, t):
        *hidden, (W, b) = params
        a = x
        for Wh, bh in hidden:
            a = jax.nn.sigmoid(a @ Wh + bh)
        return -jax.nn.log_softmax(a @ W + b)[t]

    grad = jax.value_and_grad(loss_fn)

    def step(params, xy):
        value, g = grad(params, *xy)
        return jax.tree_util.tree_map(lambda p, gp: p - lr * gp, params, g), value

    def epoch(params, X, y):
        return jax.lax.scan(step, params, (X, y))

    params = tuple((jnp.asarray(W), jnp.asarray(b)) for W, b in zip(Ws, bs))
    Xj, yj = jnp.asarray(X), jnp.asarray(y, dtype=jnp.int32)
    compiled = jax.jit(epoch, donate_argnums=0).lower(params, Xj, yj).compile()

    def run():
        out = compiled(params, Xj, yj)
        jax.block_until_ready(out)
        return out

    return run
