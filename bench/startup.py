"""Start-up cost, every figure from a fresh interpreter.

    python -m bench.startup [--repeats 5]

* ``import net``;
* the first step after it: build 784-512-10 (ReLU, numba backend, float32) and run one
  forward + backward of a 64-sample batch with softmax cross-entropy -- with a warm
  Numba cache (filled by an earlier, untimed process) and with a cold one (a fresh
  empty ``NUMBA_CACHE_DIR`` per process, so Numba compiles every kernel it runs);
* the floor under the warm step: import Numba and call one cached ``@njit`` kernel
  doing ``np.dot`` (which loads SciPy's BLAS), before any scratchnet code runs.

Prints the minimum and median over the repeats (seconds, measured inside the child,
interpreter start-up excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = """
import json, time
t0 = time.perf_counter()
import net
t1 = time.perf_counter()
out = {"import": t1 - t0}
if STEP:
    import numpy as np
    from net import CrossEntropyLoss, Linear, ReLU, Sequential
    model = Sequential(Linear(784, 512, backend="numba", rng=0), ReLU(backend="numba"),
                       Linear(512, 10, backend="numba", rng=1))
    loss = CrossEntropyLoss(backend="numba")
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    loss(model(x), y)
    model.backward(loss.backward())
    out["step"] = time.perf_counter() - t1
print(json.dumps(out))
"""

_FLOOR_MODULE = """
import numpy as np
from numba import njit

@njit(cache=True)
def dot(x, w):
    out = np.empty((x.shape[0], w.shape[1]), dtype=x.dtype)
    np.dot(x, w, out)
    return out
"""

_FLOOR = """
import json, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import floor_kernel
floor_kernel.dot(np.ones((64, 784), np.float32), np.ones((784, 512), np.float32))
print(json.dumps({"floor": time.perf_counter() - t1}))
"""


def _child(code: str, env: dict | None = None, cwd: str | None = None) -> dict:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, **(env or {})}, timeout=600)
    if res.returncode:
        raise RuntimeError(f"bench.startup: child process failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(repeats: int = 5) -> dict[str, list[float]]:
    """``{"import", "warm", "cold", "floor": [seconds per fresh process]}``."""
    step = _CHILD.replace("if STEP:", "if True:")
    times: dict[str, list[float]] = {"import": [], "warm": [], "cold": [], "floor": []}
    _child(step)                                  # fill the on-disk cache (untimed)
    for _ in range(repeats):
        times["import"].append(_child(_CHILD.replace("if STEP:", "if False:"))["import"])
        times["warm"].append(_child(step)["step"])
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
            times["cold"].append(_child(step, {"NUMBA_CACHE_DIR": cache})["step"])
    with tempfile.TemporaryDirectory(prefix="startup-floor-") as folder:
        with open(os.path.join(folder, "floor_kernel.py"), "w") as f:
            f.write(_FLOOR_MODULE)
        _child(_FLOOR, cwd=folder)                # compile and cache (untimed)
        times["floor"] = [_child(_FLOOR, cwd=folder)["floor"] for _ in range(repeats)]
    return times


ROWS = (
    ("import", "import net", "goal <= 0.3 s"),
    ("warm", "first forward+backward after import, warm cache", "goal <= 0.5 s"),
    ("cold", "first forward+backward after import, cold cache", ""),
    ("floor", "floor: import numba + one cached np.dot kernel", ""),
)


def table(times: dict[str, list[float]]) -> str:
    n = len(times["import"])
    lines = [f"{'start-up, fresh process each (' + str(n) + ' repeats)':<52} {'min':>8} {'median':>8}"]
    for key, label, goal in ROWS:
        t = times[key]
        lines.append(f"{label:<52} {min(t):7.3f}s {statistics.median(t):7.3f}s  {goal}".rstrip())
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes per figure (default 5)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    print(table(measure(args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
