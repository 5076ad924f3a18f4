"""Mutation check for the fused kernels: each deliberate bug below must make the fused tests fail.

A mutant is a copy of ``kernels/`` with one edit to a fused-kernel module; the fused tests
(``tests/test_fused.py``) run against it in a subprocess, from a scratch folder that holds
the mutated ``kernels`` and this checkout's ``net``.  A mutant that survives means the tests
cannot see that bug.  Each edit is an exact text replacement, so a refactor of the kernel
that removes the text makes this test fail loudly instead of passing vacuously.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: name -> (module in kernels/, [(text, replacement), ...])
MUTANTS = {
    # every hidden layer uses layer 0's activation, forward and backward (single-thread kernel)
    "layer-0-activation-everywhere": ("fused.py", [
        ("            code = activations[l] if l < L - 1 else IDENTITY\n",
         "            code = activations[0] if l < L - 1 else IDENTITY\n"),
        ("D[1 - cur], activations[l - 1], lr,", "D[1 - cur], activations[0], lr,")]),
    # threads may update the last layer's bias before every thread has read it for the logits
    "loss-barrier-removed": ("fused_threads.py", [
        ("        losses[s] = loss\n        # every thread has read the last layer's bias for these logits before its "
         "owner updates it\n        gen = _barrier(sync, nthreads, gen)\n",
         "        losses[s] = loss\n")]),
    # one buffer for the per-thread partial outputs: a fast thread overwrites a partial still being summed
    "partials-not-double-buffered": ("fused_threads.py", [
        ("            par = fsteps % 2\n", "            par = 0\n")]),
    # sample s+1's first-layer forward reads each weight row before sample s's update of it
    "first-layer-read-before-update": ("fused.py", [
        ("                    out[j] += a_new * w\n", "                    out[j] += a_new * (w + c * delta[j])\n")]),
}


def _mutated_checkout(tmp: Path, module: str, edits) -> Path:
    shutil.copytree(ROOT / "kernels", tmp / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "net", tmp / "net", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "tests").mkdir()
    for name in ("conftest.py", "test_fused.py"):
        shutil.copy(ROOT / "tests" / name, tmp / "tests" / name)
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    source = (tmp / "kernels" / module).read_text()
    for old, new in edits:
        assert source.count(old) == 1, f"mutation text not found once in kernels/{module}: {old!r}"
        source = source.replace(old, new)
    (tmp / "kernels" / module).write_text(source)
    return tmp


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_caught_by_the_fused_tests(name, tmp_path):
    checkout = _mutated_checkout(tmp_path, *MUTANTS[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=checkout, env=env, capture_output=True, text=True,
                              timeout=900)

    where = run("-c", "import kernels.fused, net; print(kernels.fused.__file__); print(net.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(checkout)) for line in where.stdout.split()), (
        f"the subprocess did not import the mutated copy: {where.stdout}")
    proc = run("-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_fused.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and " failed" in out, (
        f"mutant {name!r} survived the fused tests (pytest exit {proc.returncode}):\n{out[-3000:]}")


def test_an_unmutated_copy_passes_the_fused_tests(tmp_path):
    """The control: the copy itself is sound, so a failing mutant fails because of its edit."""
    checkout = _mutated_checkout(tmp_path, "fused.py", [])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fused.py"],
                          cwd=checkout, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
