"""The compiled kernels' BLAS: NumPy's bundled ILP64 OpenBLAS or SciPy's LP64 one (``SCRATCHNET_BLAS``).

Code compiled against one library calls the other's symbol with the wrong integer width
(or an unregistered symbol: a segfault), so switching must clear Numba's cache wherever
it lives -- here under ``NUMBA_CACHE_DIR``, which the in-tree invalidation once missed
(the second run below crashed with exit 139).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json
import numpy as np
from kernels import blas, get_backend, registry

jit, ref = get_backend("numba"), get_backend("numpy")
rng = np.random.default_rng(0)
worst = {}
for op in registry.OPERATIONS:
    if op.name not in ("linear_forward", "linear_backward", "sgd_minibatch_epoch", "sgd_epoch_compact"):
        continue
    for dtype in (np.float32, np.float64):
        sizes = {d: 5 for d in op.dims}
        args = op.make_inputs(rng, dtype, sizes, "unit")
        copy = lambda a: tuple(tuple(x.copy() for x in v) if isinstance(v, tuple) else
                               (v.copy() if isinstance(v, np.ndarray) else v) for v in a)
        a1, a2 = copy(args), copy(args)
        r1, r2 = jit.__dict__[op.name](*a1), ref.__dict__[op.name](*a2)
        flat = lambda r: [np.asarray(x, dtype=np.float64).ravel() for x in (r if isinstance(r, tuple) else (r,))
                          if not isinstance(x, (int, np.integer))]
        diffs = [float(np.max(np.abs(x - y), initial=0)) for x, y in zip(flat(r1), flat(r2))]
        for m in op.mutates:
            for x, y in zip(a1[m], a2[m]):
                diffs.append(float(np.max(np.abs(np.asarray(x, np.float64) - y), initial=0)))
        worst[f"{op.id}[{np.dtype(dtype).name}]"] = max(diffs)
print(json.dumps({"int_bits": blas.INT_BITS, "worst": worst}))
"""


def _run(cache, blas=None):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("SCRATCHNET_BLAS", None)
    if blas is not None:
        env["SCRATCHNET_BLAS"] = blas
    return subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


def test_switching_the_blas_library_under_one_numba_cache_dir(tmp_path):
    cache = tmp_path / "numba-cache"
    for blas, bits in ((None, None), ("scipy", 32), (None, None)):
        res = _run(cache, blas)
        assert res.returncode == 0, f"SCRATCHNET_BLAS={blas}: exit {res.returncode}\n{res.stderr[-2000:]}"
        out = json.loads(res.stdout.strip().splitlines()[-1])
        if bits is not None:
            assert out["int_bits"] == bits
        # both libraries give the NumPy reference's values (float32: a few ulps of 5-term sums)
        assert out["worst"] and all(v < 1e-4 for v in out["worst"].values()), out["worst"]


def test_an_unknown_choice_is_an_error_naming_the_choices():
    env = dict(os.environ, SCRATCHNET_BLAS="mkl")
    res = subprocess.run([sys.executable, "-c", "import kernels"], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode != 0
    assert "SCRATCHNET_BLAS='mkl': choose one of auto, numpy, scipy" in res.stderr


@pytest.mark.parametrize("value", ["", "auto", "AUTO"])
def test_auto_is_the_default(monkeypatch, value):
    from kernels import blas_lib

    monkeypatch.setenv("SCRATCHNET_BLAS", value)
    assert blas_lib.requested() == "auto"
