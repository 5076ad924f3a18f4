"""Ctrl-C that never lands inside a compiled call.

A SIGINT that arrives while a Numba kernel runs can be turned into an exception while
the kernel's result is being boxed, and Python then reports ``SystemError: CPUDispatcher
... returned a result with an exception set`` instead of ``KeyboardInterrupt``.  Inside
:func:`deferred` the signal is only recorded; :func:`check` (called between kernel
calls) raises ``KeyboardInterrupt`` at a safe point.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_pending = False


def _record(signum, frame) -> None:
    global _pending
    _pending = True


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since the last check (no-op outside :func:`deferred`)."""
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt


@contextmanager
def deferred():
    """Record SIGINT instead of raising it; raise it at the next :func:`check` or on leaving.

    Only takes over Python's default handler, in the main thread; nested use, another
    thread or a handler of the caller's own leave SIGINT as it is.
    """
    global _pending
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    _pending = False
    signal.signal(signal.SIGINT, _record)
    try:
        yield
    except BaseException:
        _pending = False            # the exception in flight wins over a Ctrl-C not yet raised
        raise
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    check()
