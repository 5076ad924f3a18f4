"""Ctrl-C inside net.interrupt.deferred() is held until a safe point between kernel calls."""
import os
import signal

import numpy as np
import pytest

from net import CrossEntropyLoss, Linear, ReLU, Sequential, fit, interrupt


def test_sigint_is_recorded_then_raised_at_the_next_check():
    with pytest.raises(KeyboardInterrupt), interrupt.deferred():
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        os.kill(os.getpid(), signal.SIGINT)          # delivered to the (recording) Python handler
        reached = True                               # nothing raised here
        interrupt.check()
        reached = False
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    interrupt.check()                                # nothing pending any more


def test_a_sigint_after_the_last_check_is_raised_on_leaving():
    with pytest.raises(KeyboardInterrupt), interrupt.deferred():
        os.kill(os.getpid(), signal.SIGINT)
    interrupt.check()


def test_a_handler_of_the_callers_own_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *a: seen.append(1))
    try:
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGINT)
        assert seen == [1]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_fit_stops_at_the_end_of_the_kernel_call_during_which_ctrl_c_came():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3000, 20)).astype(np.float32), rng.integers(0, 3, 3000)
    model = Sequential(Linear(20, 8, rng=rng), ReLU(), Linear(8, 3, rng=rng))
    model.backend = "numba"
    calls = []

    def on_batch(rows, loss):                        # runs between two kernel calls
        calls.append(rows)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit(model, CrossEntropyLoss(), X, y, batch_size=1, epochs=1, on_batch=on_batch)
    assert len(calls) == 1 and calls[0] < 3000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
