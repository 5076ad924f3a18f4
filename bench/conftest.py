"""Benchmarks run with every BLAS on one thread, so every implementation gets one core.

``net.threads.blas_threads`` loads SciPy's BLAS (the one Numba's ``np.dot`` calls) before
limiting: a BLAS loaded after the limit was set would run on every core.
"""
import pytest

from net.threads import blas_threads


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    with blas_threads(1):
        yield
