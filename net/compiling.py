"""Say when Numba compiles, so that a first run's pause of several seconds is not silent."""
from __future__ import annotations

import threading
from contextlib import contextmanager

MESSAGE = "compiling kernels (first run only)..."


@contextmanager
def announce_compiles(log, message: str = MESSAGE):
    """Call ``log(message)`` once, when Numba first starts compiling inside the block.

    Kernels loaded from Numba's on-disk cache are not compiled and say nothing
    (Numba fires its ``numba:compile`` event only on a cache miss).
    """
    from numba.core import event

    lock, said = threading.Lock(), []

    class _Announce(event.Listener):
        def on_start(self, ev):
            with lock:
                if not said:
                    said.append(True)
                    log(message)

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", _Announce()):
        yield
