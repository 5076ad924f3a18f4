"""What ``sgd_minibatch_epoch`` computes, in both backends: anchors for the NumPy twin itself, so
that a mistake made in both twins alike (which the equivalence tests cannot see) still fails.

Batches of one without momentum are per-sample SGD (``sgd_epoch``); an epoch is the same as
consecutive calls on slices of ``order`` (the last, shorter batch included); momentum is
PyTorch's ``v = m v + g; w -= lr v``; an epoch stops before the update of the first batch with
a non-finite mean loss and reports it.  float64 throughout, with rtol 1e-12: the two sides of
each comparison do the same arithmetic up to the order of a few sums.
"""
import numpy as np
import pytest

from kernels import BACKENDS, get_backend
from kernels.codes import MSE, RELU, SIGMOID, SOFTMAX_CE

RTOL = 1e-12


def _network(rng, loss_kind=SOFTMAX_CE, N=12, momentum=0.0):
    """A 5-6-4-3 MLP (ReLU, sigmoid), the first bias trained, the second frozen (and not 0), the
    last trained; N samples in a shuffled order; velocities from an earlier epoch, or dummies."""
    weights = tuple(rng.standard_normal((a, b)) / np.sqrt(a) for a, b in ((5, 6), (6, 4), (4, 3)))
    biases = tuple(rng.standard_normal(b) for b in (6, 4, 3))
    if momentum:
        vel_w, vel_b = tuple(rng.standard_normal(w.shape) * 0.1 for w in weights), tuple(
            rng.standard_normal(b.shape) * 0.1 for b in biases)
    else:
        vel_w, vel_b = tuple(np.zeros((0, 0)) for _ in weights), tuple(np.zeros(0) for _ in biases)
    return dict(weights=weights, biases=biases, bias_on=np.array([1.0, 0.0, 1.0]),
                activations=np.array([RELU, SIGMOID, 0]), loss_kind=loss_kind, X=rng.standard_normal((N, 5)),
                labels=rng.integers(0, 3, N), targets=rng.standard_normal((N, 3)) if loss_kind == MSE else
                np.zeros((0, 3)), order=rng.permutation(N), lr=0.05, batch_size=5, momentum=momentum,
                vel_w=vel_w, vel_b=vel_b)


def _copy(args: dict) -> dict:
    return {k: tuple(a.copy() for a in v) if isinstance(v, tuple) else v for k, v in args.items()}


def _epoch(backend, args: dict, **change):
    """Run the epoch on a copy; returns (result, the arguments after the call)."""
    args = _copy({**args, **change})
    return get_backend(backend).sgd_minibatch_epoch(*args.values()), args


def _assert_parameters_equal(mine: dict, theirs: dict, names=("weights", "biases", "vel_w", "vel_b")):
    for name in names:
        for l, (m, t) in enumerate(zip(mine[name], theirs[name])):
            np.testing.assert_allclose(m, t, rtol=RTOL, atol=1e-15, err_msg=f"{name}[{l}]")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss_kind", [SOFTMAX_CE, MSE], ids=["ce", "mse"])
def test_batches_of_one_without_momentum_are_per_sample_sgd(backend, loss_kind):
    args = _network(np.random.default_rng(0), loss_kind)
    (losses, done, bad), trained = _epoch(backend, args, batch_size=1)
    per_sample = _copy(args)
    expected, expected_done = get_backend("numpy").sgd_epoch(*list(per_sample.values())[:10])
    assert (done, bad) == (12, -1) and expected_done == 12
    np.testing.assert_allclose(losses, expected, rtol=RTOL)
    _assert_parameters_equal(trained, per_sample, ("weights", "biases"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("batch_size", [5, 12, 40])
def test_an_epoch_is_consecutive_calls_on_slices_of_the_order(backend, momentum, batch_size):
    """Batches of 5 over 12 samples are 5, 5 and 2 (the last one trained on, its loss the mean of
    its own 2 rows); 12 and 40 give one batch of all 12."""
    args = _network(np.random.default_rng(1), MSE, momentum=momentum)
    (losses, done, bad), trained = _epoch(backend, args, batch_size=batch_size)
    n_batches = -(-12 // batch_size)
    assert losses.shape == (n_batches,) and (done, bad) == (n_batches, -1)
    stepwise = _copy(args)
    for k, start in enumerate(range(0, 12, batch_size)):
        one = {**stepwise, "batch_size": batch_size, "order": args["order"][start:start + batch_size]}
        (loss,), one_done, _ = get_backend(backend).sgd_minibatch_epoch(*one.values())
        assert one_done == 1
        np.testing.assert_allclose(losses[k], loss, rtol=RTOL)
    _assert_parameters_equal(trained, stepwise, ("weights", "biases") + (("vel_w", "vel_b") if momentum else ()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_momentum_is_pytorchs_and_frozen_biases_stay(backend):
    """One full batch: ``v = m v0 + g``, ``w = w0 - lr v``, with ``g`` read off a plain SGD step
    (lr = 1: ``g = w0 - w``); the frozen bias and its velocity do not change."""
    m = 0.9
    args = _network(np.random.default_rng(2), momentum=m)
    _, plain = _epoch(backend, args, batch_size=12, momentum=0.0, lr=1.0)
    _, trained = _epoch(backend, args, batch_size=12)
    for name, vel in (("weights", "vel_w"), ("biases", "vel_b")):
        for l, (w0, v0) in enumerate(zip(args[name], args[vel])):
            if name == "biases" and not args["bias_on"][l]:
                np.testing.assert_array_equal(trained[name][l], w0)
                np.testing.assert_array_equal(trained[vel][l], v0)
                continue
            v = m * v0 + (w0 - plain[name][l])
            np.testing.assert_allclose(trained[vel][l], v, rtol=1e-10, atol=1e-14, err_msg=f"{vel}[{l}]")
            np.testing.assert_allclose(trained[name][l], w0 - args["lr"] * v, rtol=1e-10, atol=1e-14,
                                       err_msg=f"{name}[{l}]")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["nan input", "inf target"])
def test_a_non_finite_batch_stops_the_epoch_before_its_update(backend, case):
    """A NaN input or an inf target in the sample at epoch position 8 (batch 1 of 5-row batches,
    its 4th row): done = 1, bad = 8, the parameters as after batch 0 alone.  (An inf *input* may
    give a finite loss, through a saturated sigmoid.)"""
    args = _network(np.random.default_rng(3), SOFTMAX_CE if case == "nan input" else MSE)
    args["X" if case == "nan input" else "targets"][args["order"][8], 2] = np.nan if case == "nan input" else np.inf
    (losses, done, bad), trained = _epoch(backend, args)
    assert (done, bad) == (1, 8) and np.isfinite(losses[0]) and not losses[1:].any()
    _, first = _epoch(backend, args, order=args["order"][:5])
    _assert_parameters_equal(trained, first, ("weights", "biases"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_mean_that_overflows_stops_with_no_bad_sample(backend):
    """Row losses of ~4.9e307 (finite: their 3 squares sum to ~1.5e308) whose sum over a batch of
    5 overflows: done = 0, bad = -1."""
    args = _network(np.random.default_rng(4), MSE)
    args["targets"][:] = 7e153
    with np.errstate(over="ignore"):
        (losses, done, bad), trained = _epoch(backend, args)
    assert (done, bad) == (0, -1) and not losses.any()
    _assert_parameters_equal(trained, args, ("weights", "biases"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_momentum_the_velocities_are_neither_read_nor_written(backend):
    """Momentum 0 with non-zero velocity buffers of the parameters' shapes: the result of
    ``(0, 0)``/``(0,)`` dummies, and the buffers unchanged."""
    args = _network(np.random.default_rng(5), momentum=0.9)
    dummies = dict(vel_w=tuple(np.zeros((0, 0)) for _ in range(3)), vel_b=tuple(np.zeros(0) for _ in range(3)))
    (losses, done, bad), trained = _epoch(backend, args, momentum=0.0)
    (expected, *expected_rest), plain = _epoch(backend, args, momentum=0.0, **dummies)
    assert [done, bad] == expected_rest == [3, -1]
    np.testing.assert_array_equal(losses, expected)
    _assert_parameters_equal(trained, plain, ("weights", "biases"))
    _assert_parameters_equal(trained, args, ("vel_w", "vel_b"))
