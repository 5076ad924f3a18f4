"""Start-up: ``import net`` must not pay for Numba (or SciPy); the numba backend loads it on first use.

Each check runs in a fresh interpreter, so what this process imported does not count.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "llvmlite", "scipy")


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_import_net_loads_neither_numba_nor_scipy():
    out = _run(f"import sys, net; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert out == "[]", f"'import net' imported {out}"


def test_the_command_line_module_loads_no_numba_either():
    # `python -m net --help` and usage errors should answer at once
    out = _run(f"import sys, net.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert out == "[]", f"'import net.cli' imported {out}"


def test_numpy_backend_never_loads_numba():
    code = ("import sys, numpy as np, net\n"
            "m = net.Sequential(net.Linear(3, 4, rng=0), net.ReLU(), net.Linear(4, 2, rng=0))\n"
            "loss = net.CrossEntropyLoss()\n"
            "loss(m(np.ones((5, 3), np.float32)), np.zeros(5, np.int64)); m.backward(loss.backward())\n"
            "print('numba' in sys.modules)")
    assert _run(code) == "False"


def test_numba_linear_works_after_a_lazy_import():
    code = ("import sys, numpy as np, net\n"
            "before = 'numba' in sys.modules\n"
            "layer = net.Linear(3, 2, backend='numba', rng=0)\n"
            "x = np.arange(12, dtype=np.float32).reshape(4, 3)\n"
            "y = layer(x)\n"
            "ref = x @ layer.params['W'] + layer.params['b']\n"
            "print(before, 'numba' in sys.modules, y.dtype, bool(np.allclose(y, ref, rtol=1e-6)))")
    assert _run(code) == "False True float32 True"


def test_startup_benchmark_children_report_each_phase():
    from bench import startup

    step = startup._child(startup._CHILD.replace("if STEP:", "if True:"))
    assert set(step) == {"import", "step"} and step["import"] > 0 and step["step"] > 0
    rows = startup.table({key: [3.0, 1.0, 2.0] for key in ("import", "warm", "cold", "floor")}).splitlines()
    assert len(rows) == 5 and rows[1].split()[:4] == ["import", "net", "1.000s", "2.000s"], rows   # min, median
