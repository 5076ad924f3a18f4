"""float32 in, float32 arithmetic: no compiled kernel's float32 specialisation computes in double.

In Numba a float32 times an integer or a Python float literal is float64 (``a * (1 - a)``
evaluates the sigmoid derivative in double), which the equivalence tests cannot see: the
results only get *more* accurate.  So the optimised LLVM IR of every float32 specialisation
that the float32 workload compiles is scanned for double arithmetic
(:mod:`tests.float32_ir_scan`), in a fresh process with an empty Numba cache (Numba keeps no
IR for code it loads from its cache).

Checked to fail: with ``_act_grad_from_output`` returning ``a * (1 - a)`` the scan reports
``kernels.fused_math._backward_rows`` (33 double lines).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCAN = Path(__file__).with_name("float32_ir_scan.py")

#: Functions that compute in float64 on float32 data on purpose, and why.
ALLOWED = {
    "kernels.fused_minibatch._batch_mean_loss": "the reported batch loss is a float64 mean, as in the reference",
}


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path_factory.mktemp("numba-cache")))
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run([sys.executable, str(SCAN), "--control"], env=env, cwd=root, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_scan_finds_double_arithmetic_in_a_float32_kernel(scan):
    control = [name for name in scan if name.endswith("float32_sum_in_a_python_float")]
    assert control, "the scan missed the control kernel's double accumulation: it would miss a real one too"
    assert any("fadd" in line and "double" in line for line in scan[control[0]])


def test_the_scan_covered_the_kernels(scan):
    # every registry kernel, the epochs and their helpers: dozens of float32 specialisations
    assert int(scan["__scanned__"][0]) >= 40


def test_no_float32_kernel_computes_in_double(scan):
    offenders = {name: lines[:3] for name, lines in scan.items()
                 if name != "__scanned__" and name.startswith("kernels.") and name not in ALLOWED}
    assert not offenders, "float32 specialisations with double arithmetic (first IR lines):\n" + "\n".join(
        f"  {name}: {lines}" for name, lines in offenders.items())
