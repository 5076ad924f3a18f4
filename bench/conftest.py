"""Benchmarks run with NumPy's BLAS on one thread, so every implementation gets one core."""
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
