"""The optimiser step kernels (issue 13): NumPy twin vs Numba twin, one step on one parameter.

    python -m bench.optim_steps [784x512]

The registry cannot time them (they update their arguments in place, see
``kernels.registry.Operation``), so this script does: for float32 and float64 and each
option set (plain and momentum SGD, Adam, AdamW + amsgrad, RMSprop plain and centered with
momentum, Adagrad), the best of 15 runs of 20 consecutive steps on the same arrays, after one
call to compile.  Ratios are NumPy time / Numba time: above 1 the Numba pass is faster.
"""
from __future__ import annotations

import sys
import timeit

import numpy as np

from kernels import get_backend

CASES = ("sgd_step[plain]", "sgd_step[momentum,nesterov,wd]", "adam_step", "adam_step[adamw,amsgrad]",
         "rmsprop_step", "rmsprop_step[centered,momentum]", "adagrad_step")


def arguments(case: str, shape, dtype, rng) -> tuple:
    w, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))

    def state():
        return np.abs(rng.standard_normal(shape)).astype(dtype)

    none = np.zeros(0, dtype)
    return {
        "sgd_step[plain]": lambda: (w, g, none, 0.01, 0.0, 0.0, 0.0, False, False, 0.0),
        "sgd_step[momentum,nesterov,wd]": lambda: (w, g, state(), 0.01, 0.9, 0.0, 1e-4, True, False, 0.0),
        "adam_step": lambda: (w, g, state(), state(), none, 10, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, 0.0),
        "adam_step[adamw,amsgrad]": lambda: (w, g, state(), state(), state(), 10, 1e-3, 0.9, 0.999, 1e-8, 1e-2,
                                             True, True, 0.0),
        "rmsprop_step": lambda: (w, g, state(), none, none, 1e-2, 0.99, 1e-8, 0.0, 0.0, False, 0.0),
        "rmsprop_step[centered,momentum]": lambda: (w, g, state() + 1, state() * 0.1, state(), 1e-2, 0.99, 1e-8, 0.0,
                                                    0.9, True, 0.0),
        "adagrad_step": lambda: (w, g, state(), 10, 1e-2, 0.0, 0.0, 1e-10, 0.0),
    }[case]()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    shape = tuple(int(n) for n in argv[0].split("x")) if argv else (784, 512)
    print(f"optimiser steps on a {'x'.join(map(str, shape))} parameter (best of 15 x 20 steps)")
    for dtype in (np.float32, np.float64):
        for case in CASES:
            times = {}
            for backend in ("numpy", "numba"):
                step = getattr(get_backend(backend), case.split("[")[0])
                args = arguments(case, shape, dtype, np.random.default_rng(0))
                step(*args)
                times[backend] = min(timeit.repeat(lambda: step(*args), number=20, repeat=15)) / 20
            print(f"{np.dtype(dtype).name:8s} {case:34s} numpy {times['numpy'] * 1e6:8.1f} us  "
                  f"numba {times['numba'] * 1e6:8.1f} us  {times['numpy'] / times['numba']:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
