"""Which BLAS the compiled kernels call, found without importing Numba.

NumPy's wheels bundle OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` with the ILP64
``scipy_sgemm_64_``/``scipy_dgemm_64_`` (64-bit integers); it is the library NumPy's own
``@``/``np.dot`` use, and a newer build than SciPy's (here 0.3.31 against 0.3.30), 1.2-1.3x
faster on float32 GEMMs with few rows (``(32, 784) @ (784, 512)``, one thread, this AMD EPYC
machine).  When it is not there (NumPy built against a system BLAS, another platform),
SciPy's ``cython_blas`` (LP64, 32-bit integers) is used, as Numba's own ``np.dot`` does.

:func:`choice` names the library; :mod:`kernels.numba_cache` folds it into the hash that
keeps Numba's on-disk cache in step, since compiled code differs per integer width.

``SCRATCHNET_BLAS`` chooses by hand: ``auto`` (default: NumPy's when bundled, else SciPy's),
``numpy`` (NumPy's bundled OpenBLAS or an ImportError) or ``scipy`` (always SciPy's).
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os


#: Values of the ``SCRATCHNET_BLAS`` environment variable.
CHOICES = ("auto", "numpy", "scipy")


def requested() -> str:
    """The ``SCRATCHNET_BLAS`` setting (``auto`` when unset); ValueError naming the choices otherwise."""
    value = os.environ.get("SCRATCHNET_BLAS", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"SCRATCHNET_BLAS={value!r}: choose one of {', '.join(CHOICES)}")
    return value


@functools.lru_cache(maxsize=None)
def numpy_openblas() -> tuple[str, int, int] | None:
    """``(path, sgemm address, dgemm address)`` of NumPy's bundled ILP64 OpenBLAS, or None
    (also when ``SCRATCHNET_BLAS=scipy``)."""
    import numpy

    want = requested()
    if want == "scipy":
        return None

    folder = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*.so"))):
        try:
            lib = ctypes.CDLL(path)            # NumPy has loaded it already: the same handle
            s, d = lib.scipy_sgemm_64_, lib.scipy_dgemm_64_
        except (OSError, AttributeError):
            continue
        return path, ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value
    if want == "numpy":
        raise ImportError(f"SCRATCHNET_BLAS=numpy, but {folder} holds no libscipy_openblas64_*.so with "
                          "scipy_sgemm_64_ (NumPy built against another BLAS?); unset it or use "
                          "SCRATCHNET_BLAS=scipy")
    return None


def choice() -> str:
    """``"numpy-openblas-ilp64:<file name>"`` or ``"scipy-cython-blas-lp64"``."""
    found = numpy_openblas()
    return f"numpy-openblas-ilp64:{os.path.basename(found[0])}" if found else "scipy-cython-blas-lp64"
