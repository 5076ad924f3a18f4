"""Thread limits for BLAS (NumPy's and the one Numba calls through SciPy), via threadpoolctl."""
from __future__ import annotations

import contextlib
import functools


@functools.lru_cache(maxsize=1)
def _controller():
    import scipy.linalg.cython_blas  # noqa: F401  -- load the BLAS that Numba's np.dot calls, so it is limited too
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit every loaded BLAS to ``n`` threads inside the block; ``None`` leaves them alone."""
    if n is None:
        yield
        return
    with _controller().limit(limits=int(n), user_api="blas"):
        yield
