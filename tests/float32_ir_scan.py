"""Scan the LLVM IR of every float32 specialisation of the compiled kernels for float64 arithmetic.

Run as a script in a fresh process with an empty ``NUMBA_CACHE_DIR`` (Numba cannot show
the IR of code it loaded from its cache):

    NUMBA_CACHE_DIR=$(mktemp -d) python tests/float32_ir_scan.py

It runs every kernel of :mod:`kernels.registry` and the fused epochs (per-sample on 1 and
2 threads, mini-batch with and without momentum, every activation, both losses) on float32
inputs, then prints one JSON object: ``{"<module>.<function>": [IR lines, ...]}`` for every
float32 specialisation whose optimised IR still does double arithmetic (``fadd``/``fmul``/...
on ``double``, ``fpext float``, a double libm or ``llvm.*.f64`` call).  Only the kernels'
own functions are scanned, not the wrappers Numba adds to box a result into a Python float.

``--control`` adds a deliberately bad kernel (a float32 sum accumulated in a Python float),
so a test can check that the scan finds what it is looking for.
"""
from __future__ import annotations

import json
import re
import sys

import numpy as np

#: Double arithmetic in an IR line; integer compares that LLVM routes through double
#: (``uitofp``/``sitofp`` + ``fcmp``) are not float32 data turned into float64.
DOUBLE_ARITHMETIC = re.compile(
    r"\b(fadd|fsub|fmul|fdiv|frem|fneg)\b[^=\n]*\bdouble\b"
    r"|\bfpext float\b"
    r"|call [^\n]*\bdouble @(exp|log|expm1|log1p|pow|tanh|sqrt)\b"
    r"|@llvm\.[\w.]*\.f64\b"
)


#: Numba's wrappers around a compiled function: ``_ZN7cpython...`` boxes the result into a
#: Python object (a float32 result becomes a Python float there), ``cfunc.`` is the C ABI.
_WRAPPER = re.compile(r"@\"?(_ZN7cpython|cpython\.|cfunc\.)")


#: Only functions of these packages are scanned (Numba's own helpers, e.g. the formatting of
#: an error message, may use double where it does not touch float32 data).
OWN_CODE = ("kernels.", "__main__.", "float32_ir_scan.")


def _readable(mangled: str) -> str:
    """``_ZN7kernels15fused_minibatch3fooB4v1...`` -> ``kernels.fused_minibatch.foo``."""
    if not mangled.startswith("_ZN"):
        return mangled
    parts, i = [], 3
    while i < len(mangled) and mangled[i].isdigit():
        j = i
        while mangled[j].isdigit():
            j += 1
        n = int(mangled[i:j])
        parts.append(mangled[j:j + n])
        i = j + n
    return ".".join(parts)


def _native_bodies(ir: str) -> dict[str, list[str]]:
    """``{module.function: body lines}`` of the kernels' compiled functions (not Numba's wrappers).

    A dispatcher's IR holds its callees' bodies too, so each line is attributed to the
    function it belongs to.
    """
    bodies: dict[str, list[str]] = {}
    current = None
    for line in ir.splitlines():
        if line.startswith("define "):
            match = re.search(r'@"?([\w.$]+)', line)
            name = _readable(match.group(1)) if match and not _WRAPPER.search(line) else ""
            current = bodies.setdefault(name, []) if name.startswith(OWN_CODE) else None
        elif line.startswith("}"):
            current = None
        elif current is not None:
            current.append(line.strip())
    return bodies


def double_lines(ir: str) -> dict[str, list[str]]:
    """``{function: IR lines that do double arithmetic}`` over the compiled functions in ``ir``."""
    found = {}
    for name, body in _native_bodies(ir).items():
        lines = [line for line in body if DOUBLE_ARITHMETIC.search(line)]
        if lines:
            found[name] = lines
    return found


def _run_float32_workload(rng) -> None:
    import net
    from kernels import registry
    from net import SGD, CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential, Sigmoid

    for op in registry.OPERATIONS:
        for depth in (1, 2, 3, 4):
            sizes = {d: 3 for d in op.dims}
            if "L" in sizes:
                sizes["L"] = depth
            op.impl("numba")(*op.make_inputs(rng, np.float32, sizes, "unit"))
            if "L" not in op.dims:
                break
    for loss_name in ("ce", "mse"):
        model = Sequential(Linear(5, 4, backend="numba", dtype=np.float32), Sigmoid(backend="numba"),
                           Linear(4, 4, backend="numba", dtype=np.float32), ReLU(backend="numba"),
                           Linear(4, 4, backend="numba", dtype=np.float32),     # identity between these
                           Linear(4, 3, backend="numba", dtype=np.float32, bias=False))
        loss = CrossEntropyLoss(backend="numba") if loss_name == "ce" else MSELoss(backend="numba")
        X = rng.standard_normal((24, 5)).astype(np.float32)
        y = rng.integers(0, 3, 24) if loss_name == "ce" else rng.standard_normal((24, 3)).astype(np.float32)
        for batch_size, momentum, threads in ((1, 0.0, 1), (1, 0.0, 2), (5, 0.0, 1), (5, 0.9, 1)):
            opt = SGD(model.parameters(), lr=0.01, momentum=momentum)
            net.fit(model, loss, X, y, epochs=1, batch_size=batch_size, optimizer=opt, threads=threads,
                    fused=True)


def _control_kernel():
    from numba import njit

    @njit
    def float32_sum_in_a_python_float(x):
        s = 0.0                      # a Python float literal: the sum runs in double
        for v in x:
            s += v
        return np.float32(s)

    float32_sum_in_a_python_float(np.ones(4, dtype=np.float32))
    return {"control.float32_sum_in_a_python_float": float32_sum_in_a_python_float}


def scan(control: bool = False) -> dict[str, list[str]]:
    """Run the workload; return ``{module.function: double IR lines}`` over every float32 specialisation."""
    from numba.core.registry import CPUDispatcher

    from kernels import blas, fused, fused_compact, fused_math, fused_minibatch, fused_threads, gemm, jit, vmath
    from kernels import jit_layers

    _run_float32_workload(np.random.default_rng(0))
    dispatchers = {}
    for module in (jit, fused, fused_compact, fused_minibatch, fused_threads, fused_math, vmath, gemm, blas,
                   jit_layers):
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__:
                dispatchers[f"{module.__name__}.{name}"] = obj
    for module_name, module in sorted(sys.modules.items()):     # also the modules of later groups (jit_optim, ...)
        if module_name.startswith("kernels.") and module is not None:
            for name, obj in vars(module).items():
                if isinstance(obj, CPUDispatcher) and obj.__module__ == module_name:
                    dispatchers[f"{module_name}.{name}"] = obj
    if control:
        dispatchers.update(_control_kernel())
    found: dict[str, list[str]] = {}
    scanned = 0
    for name, disp in sorted(dispatchers.items()):
        for sig in disp.signatures:
            if not any("float32" in str(t) for t in sig):
                continue
            scanned += 1
            for function, lines in double_lines(disp.inspect_llvm(sig)).items():
                found[function] = lines
    found["__scanned__"] = [str(scanned)]
    return found


if __name__ == "__main__":
    json.dump(scan(control="--control" in sys.argv), sys.stdout)
