"""net.threads.blas_threads limits every BLAS, including the one Numba's np.dot calls (SciPy's)."""
import subprocess
import sys

PROBE = """
import sys
from threadpoolctl import threadpool_info
from net.threads import blas_threads
assert "scipy.linalg" not in sys.modules          # nothing has loaded SciPy's BLAS yet
with blas_threads(1):
    limited = {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
import scipy.linalg.cython_blas                   # noqa: E402,F401  -- the BLAS Numba's np.dot calls
every = {p["filepath"] for p in threadpool_info() if p["user_api"] == "blas"}
assert every <= set(limited), (every, limited)    # SciPy's BLAS was loaded, and limited, inside the block
assert all(n == 1 for n in limited.values()), limited
"""


def test_blas_threads_limits_scipys_blas_even_when_it_was_not_loaded_yet():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
