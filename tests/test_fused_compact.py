"""Per-sample SGD with compact (deferred) updates against the layer loop and the fused kernel.

The kernel itself is also in the registry (``sgd_epoch_compact``: hypothesis over shapes,
blocks and random compact/direct flags, against the plain per-sample NumPy loop); these
tests cover what the registry's tiny networks cannot: the default rule's layers at real
widths (the first two layers compact, so the pipelined pass over the second layer runs),
every depth, ``fit``'s chunking, the ``auto`` rule and the command line.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from kernels.codes import SIGMOID, SOFTMAX_CE
from net import CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential, Sigmoid, fit
from net import fused as fused_path
from net.fused import compact_layers, plan

ACTS = {"relu": ReLU, "sigmoid": Sigmoid, "identity": None}
CYCLE = ("sigmoid", "relu", "identity")
CYCLE_FROM_IDENTITY = ("identity", "sigmoid", "relu")
#: Compact and fused SGD differ only in summation order (the corrections, the block GEMMs).
#: Worst relative differences measured below: ~2e-15 (float64) and ~3e-6 (float32) after 300
#: samples; the issue asks for 1e-12 in float64 after 2,000 samples (test below).
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-13)}


def _data(n, d, k, seed=0, dtype=np.float64, zeros=0.4):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    X[rng.random((n, d)) < zeros] = 0
    return X.astype(dtype), rng.integers(0, k, n)


def _model(sizes, acts, dtype, backend="numba", bias=True, seed=1):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Linear(a, b, rng=rng, dtype=dtype, backend=backend, bias=bias))
        if i < len(sizes) - 2 and ACTS[acts[i % len(acts)]] is not None:
            layers.append(ACTS[acts[i % len(acts)]](backend=backend))
    return Sequential(layers)


def _loss(name, backend="numba"):
    return CrossEntropyLoss(backend=backend) if name == "ce" else MSELoss(backend=backend)


def _fit(model, loss_name, X, y, **kw):
    kw = {"batch_size": 1, "epochs": 1, "lr": 0.02, "shuffle": False, **kw}
    return fit(model, _loss(loss_name, model[0].backend), X, y, **kw)


def _max_rel(a, b):
    return max(float(np.max(np.abs(pa.value - pb.value)) / max(np.max(np.abs(pa.value)), 1e-30))
               for pa, pb in zip(a.parameters(), b.parameters()))


def _assert_close(ref, got, dtype):
    for pa, pb in zip(ref.parameters(), got.parameters()):
        np.testing.assert_allclose(pb.value, pa.value, **TOL[dtype], err_msg=f"{pa.layer!r}.{pa.name}")


def test_the_default_rule_compacts_big_layers_and_keeps_the_small_output_layer_direct():
    assert compact_layers([784, 512, 512, 10], 32).tolist() == [1, 1, 0]
    assert compact_layers([2, 64, 3], 32).tolist() == [0, 0]
    # 64 x 64 costs exactly 32 * (64 + 64): not more, so direct
    assert compact_layers([64, 64, 65, 65], 32).tolist() == [0, 1, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_compact_equals_the_layer_loop_at_every_depth(depth, loss_name, dtype):
    # widths of 80-100 make every hidden layer compact under the default rule (block 32); the
    # first two being compact switches on the pipelined pass; 300 samples: blocks of 32 do not
    # divide the epoch
    sizes = (90,) + (100, 83, 96, 84)[:depth - 1] + (5,)
    X, y = _data(300, 90, 5, dtype=dtype)
    ref = _model(sizes, CYCLE, dtype, backend="numpy")
    got = _model(sizes, CYCLE, dtype)
    h_ref = _fit(ref, loss_name, X, y)
    h_got = _fit(got, loss_name, X, y, per_sample="compact")
    assert h_ref.path == "layers" and h_got.path == "fused" and h_got.per_sample == "compact"
    _assert_close(ref, got, dtype)
    np.testing.assert_allclose(h_got, h_ref, rtol=TOL[dtype]["rtol"])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("acts", [("relu",), ("sigmoid",), ("identity",), ("relu", "sigmoid"), ("identity", "relu")])
def test_compact_equals_fused_for_each_activation_with_and_without_bias(acts, bias):
    # 123 units in the first hidden layer: the pipelined pass's 8-row blocks leave 3 rows over
    # (a bug there once dropped negative identity outputs of those rows and passed every test)
    X, y = _data(260, 70, 6, seed=3)
    sizes = (70, 123, 100, 6)
    a = _model(sizes, acts, np.float64, bias=bias)
    b = _model(sizes, acts, np.float64, bias=bias)
    _fit(a, "ce", X, y, per_sample="fused")
    _fit(b, "ce", X, y, per_sample="compact")
    _assert_close(a, b, np.float64)
    if not bias:
        assert all(not layer.has_bias for layer in b if isinstance(layer, Linear))


def test_float64_weights_match_the_per_sample_reference_after_2000_samples():
    """The issue's criterion: within 1e-12 relative of per-sample SGD after 2,000 samples."""
    X, y = _data(2000, 196, 10, seed=5, zeros=0.5)
    sizes = (196, 128, 128, 10)
    ref = _model(sizes, ("sigmoid",), np.float64, backend="numpy")
    got = _model(sizes, ("sigmoid",), np.float64)
    _fit(ref, "ce", X, y)
    _fit(got, "ce", X, y, per_sample="compact")
    assert _max_rel(ref, got) < 1e-12


def test_chunked_epochs_are_bit_identical_to_one_kernel_call(monkeypatch):
    """fit cuts an epoch into calls sized by the clock; compact blocks must start at the same
    epoch positions however it is cut, or the rounding would depend on the machine's speed."""
    from kernels.fused_compact import sgd_epoch_compact

    import net.train as train

    X, y = _data(1000, 60, 4, seed=2)
    sizes = (60, 100, 100, 4)
    whole = _model(sizes, ("sigmoid",), np.float64)
    p = plan(whole, _loss("ce"), batch_size=1, per_sample="compact")
    labels, targets = p.targets(y)
    order = np.arange(1000, dtype=np.int64)
    sgd_epoch_compact(p.weights, p.biases, p.bias_on, p.activations, p.loss_kind, X, labels, targets, order,
                      np.float64(0.02), p.block, p.compact)
    for first in (45, 100, 333):          # chunks that are not multiples of the block
        monkeypatch.setattr(train, "FUSED_FIRST_CHUNK", first)
        monkeypatch.setattr(train, "FUSED_CALL_SECONDS", 1e-9)       # then the smallest chunks there are
        chunked = _model(sizes, ("sigmoid",), np.float64)
        calls = []
        _fit(chunked, "ce", X, y, per_sample="compact", on_batch=lambda rows, loss: calls.append(rows))
        assert len(calls) > 3 and all(rows % p.block == 0 for rows in calls[:-1])
        for pa, pb in zip(whole.parameters(), chunked.parameters()):
            np.testing.assert_array_equal(pb.value, pa.value)


def test_a_non_finite_loss_stops_before_its_update_with_every_earlier_update_applied():
    from kernels.fused_compact import sgd_epoch_compact

    X, y = _data(100, 60, 4, seed=4)
    X[70, 3] = np.nan                       # sample 70, in the third block of 32
    sizes = (60, 100, 100, 4)
    ref = _model(sizes, ("sigmoid",), np.float64, backend="numpy")
    _fit(ref, "ce", X[:70], y[:70])
    got = _model(sizes, ("sigmoid",), np.float64)
    p = plan(got, _loss("ce"), batch_size=1, per_sample="compact")
    assert p.compact.tolist() == [1, 1, 0]
    labels, targets = p.targets(y)
    losses, done = sgd_epoch_compact(p.weights, p.biases, p.bias_on, p.activations, p.loss_kind, X, labels, targets,
                                     np.arange(100, dtype=np.int64), np.float64(0.02), p.block, p.compact)
    assert done == 70 and np.all(losses[70:] == 0) and np.all(np.isfinite(losses[:70]))
    _assert_close(ref, got, np.float64)


def test_auto_picks_compact_only_where_a_hidden_layer_outgrows_l2(monkeypatch):
    import kernels.cachesize as cachesize

    model = _model((784, 512, 512, 10), ("sigmoid",), np.float32)    # second layer: 1 MiB
    loss = _loss("ce")
    for l2, threads, want in ((512 << 10, None, "compact"), (1 << 20, None, "fused"), (2 << 20, None, "fused"),
                              (512 << 10, 2, "fused")):
        monkeypatch.setattr(cachesize, "cache_sizes", lambda l2=l2: {1: 32 << 10, 2: l2})
        p = plan(model, loss, batch_size=1, threads=threads)
        assert p.strategy == want, (l2, threads)
    monkeypatch.setattr(cachesize, "cache_sizes", lambda: {})
    assert plan(model, loss, batch_size=1).strategy == "fused"          # unknown L2: the proven kernel


def test_bad_per_sample_choices_are_errors_naming_the_choices():
    X, y = _data(20, 60, 4)
    model = _model((60, 100, 4), ("sigmoid",), np.float64)
    with pytest.raises(ValueError, match="'auto', 'fused', 'compact'.*got 'fast'"):
        _fit(model, "ce", X, y, per_sample="fast")
    with pytest.raises(ValueError, match="batch_size=1, no momentum.*batch_size=4"):
        _fit(model, "ce", X, y, per_sample="compact", batch_size=4)
    with pytest.raises(ValueError, match="fused=False"):
        _fit(model, "ce", X, y, per_sample="compact", fused=False)
    numpy_model = _model((60, 100, 4), ("sigmoid",), np.float64, backend="numpy")
    with pytest.raises(ValueError, match="per_sample='compact'.*backend"):
        _fit(numpy_model, "ce", X, y, per_sample="compact")


def test_the_kernel_contract_checks_block_and_flags():
    from kernels import get_backend

    jit = get_backend("numba")
    X, y = _data(10, 6, 3)
    W = (np.zeros((6, 3)),)
    b = (np.zeros(3),)
    args = (W, b, np.ones(1), np.array([SIGMOID]), SOFTMAX_CE, X, y, np.zeros((0, 3)), np.arange(10), 0.1)
    with pytest.raises(ValueError, match=r"block must lie in \[1, 2\*\*31\], got 0"):
        jit.sgd_epoch_compact(*args, 0, np.array([1]))
    with pytest.raises(ValueError, match=r"one 0/1 flag per layer, shape \(1,\), got \(2,\)"):
        jit.sgd_epoch_compact(*args, 4, np.array([1, 0]))
    with pytest.raises(ValueError, match=r"0/1 flag.*\[2\]"):
        jit.sgd_epoch_compact(*args, 4, np.array([2]))
    with pytest.raises(TypeError, match="integer array"):
        jit.sgd_epoch_compact(*args, 4, np.array([1.0]))


def test_the_command_line_saves_and_resumes_the_choice(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "net", "train", "--dataset", "spiral", "--layers", "2-100-100-3", "--epochs", "1",
           "--batch-size", "1", "--per-sample", "compact", "--no-progress", "--out", str(run)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "config.json").read_text())["config"]["per_sample"] == "compact"
    assert "compact per-sample" in res.stdout
    res = subprocess.run([sys.executable, "-m", "net", "train", "--resume", str(run), "--epochs", "2", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    epochs = json.loads((run / "history.json").read_text())["epochs"]
    assert [e["per_sample"] for e in epochs] == ["compact", "compact"]
    res = subprocess.run(cmd[:-2] + ["--batch-size", "8", "--out", str(tmp_path / "bad")], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 2 and "--per-sample compact is a per-sample kernel" in res.stderr


def test_fused_path_names_its_strategies():
    assert fused_path.PER_SAMPLE_STRATEGIES == ("auto", "fused", "compact")


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_compact_equals_the_layer_loop_starting_with_identity(depth):
    """An identity first activation gives negative first-layer outputs, which the pipelined pass
    must carry like any other value; 83 and 101 units leave rows over its 8-row blocks."""
    sizes = (90,) + (101, 83, 96)[:depth - 1] + (5,)
    X, y = _data(200, 90, 5, seed=9)
    ref = _model(sizes, CYCLE_FROM_IDENTITY, np.float64, backend="numpy")
    got = _model(sizes, CYCLE_FROM_IDENTITY, np.float64)
    _fit(ref, "mse", X, y)
    _fit(got, "mse", X, y, per_sample="compact")
    _assert_close(ref, got, np.float64)


def test_resuming_with_per_sample_compact_checks_the_run(tmp_path):
    run = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "net", "train", "--dataset", "spiral", "--layers", "2-16-3",
                          "--epochs", "1", "--batch-size", "8", "--no-progress", "--out", str(run)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-m", "net", "train", "--resume", str(run), "--epochs", "2",
                          "--per-sample", "compact", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "--per-sample compact is a per-sample kernel" in res.stderr and "--batch-size 8" in res.stderr


# ---- threads: the team kernel (kernels.fused_compact.sgd_epoch_compact_threads) ----------------------

@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_compact_on_several_threads_equals_the_layer_loop(depth, loss_name, dtype, threads):
    # 123 units in the first hidden layer: the threads' shares of the pipelined pass are cut at
    # multiples of 8, so one share has rows left over; 300 samples: the last block is partial
    sizes = (90,) + (123, 83, 96)[:depth - 1] + (5,)
    X, y = _data(300, 90, 5, dtype=dtype)
    ref = _model(sizes, CYCLE, dtype, backend="numpy")
    got = _model(sizes, CYCLE, dtype)
    h_ref = _fit(ref, loss_name, X, y)
    h_got = _fit(got, loss_name, X, y, per_sample="compact", threads=threads)
    assert h_got.path == "fused" and h_got.per_sample == "compact"
    _assert_close(ref, got, dtype)
    np.testing.assert_allclose(h_got, h_ref, rtol=TOL[dtype]["rtol"])


def _random_problem(seed):
    """A random MLP for the kernels: depth 1-4, widths 1-69 (some below 8 per thread), random
    activations, bias flags, compact flags (all compact every fifth seed), block, loss and dtype,
    an order with repeats."""
    from kernels.codes import MSE

    rng = np.random.default_rng(seed)
    dt = (np.float32, np.float64)[seed % 2]
    L = 1 + seed % 4
    widths = [int(rng.integers(1, 40))] + [int(rng.integers(1, 70)) for _ in range(L - 1)] + [int(rng.integers(1, 6))]
    W = tuple((rng.standard_normal((a, b)) / np.sqrt(a)).astype(dt) for a, b in zip(widths, widths[1:]))
    b = tuple((rng.standard_normal(n) * 0.1).astype(dt) for n in widths[1:])
    acts = rng.integers(0, 3, L).astype(np.int64)
    N = int(rng.integers(1, 90))
    X = rng.standard_normal((N, widths[0])).astype(dt)
    loss = SOFTMAX_CE if seed % 3 else MSE
    labels = rng.integers(0, widths[-1], N).astype(np.int64) if loss == SOFTMAX_CE else np.zeros(0, np.int64)
    targets = (np.zeros((0, widths[-1]), dt) if loss == SOFTMAX_CE
               else rng.standard_normal((N, widths[-1])).astype(dt))
    compact = rng.integers(0, 2, L).astype(np.int64)
    if seed % 5 == 0:
        compact[:] = 1
    args = (W, b, rng.integers(0, 2, L).astype(dt), acts, loss, X, labels, targets,
            rng.integers(0, N, N + 7).astype(np.int64), dt(0.01))
    return args, int(rng.integers(1, 20)), compact


@pytest.mark.parametrize("seed", range(16))
def test_the_team_kernel_equals_the_per_sample_reference_on_random_networks(seed):
    from threadpoolctl import threadpool_limits

    from kernels import reference
    from kernels.fused_compact import sgd_epoch_compact_threads

    args, block, compact = _random_problem(seed)
    W, b = args[:2]
    dt = args[5].dtype.type
    tol = TOL[dt]
    ref_W, ref_b = tuple(w.copy() for w in W), tuple(v.copy() for v in b)
    ref_losses, ref_done = reference.sgd_epoch(ref_W, ref_b, *args[2:])
    for threads in (2, 3):
        got_W, got_b = tuple(w.copy() for w in W), tuple(v.copy() for v in b)
        with threadpool_limits(limits=1):
            losses, done = sgd_epoch_compact_threads(got_W, got_b, *args[2:], block, compact, threads)
        assert done == ref_done
        np.testing.assert_allclose(losses, ref_losses, **tol)
        for got, ref in zip(got_W + got_b, ref_W + ref_b):
            np.testing.assert_allclose(got, ref, **tol, err_msg=f"{threads} threads, block {block}, "
                                                                 f"compact {compact.tolist()}")


@pytest.mark.parametrize("threads", [2, 3])
def test_a_non_finite_loss_stops_every_thread_with_every_earlier_update_applied(threads):
    from threadpoolctl import threadpool_limits

    from kernels.fused_compact import sgd_epoch_compact_threads

    X, y = _data(100, 60, 4, seed=4)
    X[70, 3] = np.nan                       # sample 70, in the third block of 32
    sizes = (60, 100, 100, 4)
    ref = _model(sizes, ("sigmoid",), np.float64, backend="numpy")
    _fit(ref, "ce", X[:70], y[:70])
    got = _model(sizes, ("sigmoid",), np.float64)
    p = plan(got, _loss("ce"), batch_size=1, per_sample="compact")
    labels, targets = p.targets(y)
    with threadpool_limits(limits=1):
        losses, done = sgd_epoch_compact_threads(p.weights, p.biases, p.bias_on, p.activations, p.loss_kind, X,
                                                 labels, targets, np.arange(100, dtype=np.int64), np.float64(0.02),
                                                 p.block, p.compact, threads)
    assert done == 70 and np.all(losses[70:] == 0) and np.all(np.isfinite(losses[:70]))
    _assert_close(ref, got, np.float64)


_NONFINITE_RACE = """
import numpy as np
from threadpoolctl import threadpool_limits
from kernels.codes import MSE, SIGMOID
from kernels.fused_compact import sgd_epoch_compact_threads
rng = np.random.default_rng(0)
X = rng.standard_normal((22, 2))
X[5, 0] = np.nan
order = np.arange(20, dtype=np.int64)
with threadpool_limits(1):
    for rep in range(40):
        for nthreads in (2, 3):
            W, b = (rng.standard_normal((2, 17)),), (np.zeros(17),)
            losses, done = sgd_epoch_compact_threads(W, b, np.ones(1), np.array([SIGMOID]), MSE, X,
                                                     np.zeros(22, np.int64), rng.standard_normal((22, 17)), order,
                                                     0.01, 2, np.array([1], np.uint8), nthreads)
            assert done == 5, (rep, nthreads, done)
"""


def test_a_non_finite_loss_without_the_pipelined_pass_does_not_deadlock_the_team():
    # One compact layer (no pipelined pass, so no barrier between a thread's read of status[0]
    # for sample j and thread 0's write of it for sample j + 1): a thread that reads it late
    # sees sample j + 1's stop while at sample j, flushes and returns one barrier early, and
    # the others spin forever.  Run in a subprocess so that a hang fails instead of hanging.
    try:
        done = subprocess.run([sys.executable, "-c", _NONFINITE_RACE], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the compact team deadlocked on a non-finite loss (no answer in 120 s)")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.xfail(strict=True, reason="known limitation (found in review): with an infinite input after zero rows "
                   "in a block, the Gram-matrix corrections compute inf * 0 = NaN and compact stops one sample "
                   "before sequential SGD; fit refuses non-finite X before any kernel runs, so only direct "
                   "kernel calls reach it (strict: this test fails loudly once it is fixed)")
def test_an_infinite_input_stops_where_sequential_sgd_stops():
    # Samples 0 and 1 are zero rows; sample 2 is -inf.  Sequential SGD (reference and fused):
    # sample 2's pre-activation is -inf * W + b, its sigmoid saturates, its loss is finite, and
    # its update makes W1 infinite, so sample 3's loss is the first non-finite one (done = 3).
    # The compact kernel's Gram-matrix corrections compute x2 . x0 = -inf * 0 = NaN and stop at 2.
    from kernels import reference
    from kernels.fused_compact import sgd_epoch_compact
    from kernels.codes import IDENTITY, MSE

    rng = np.random.default_rng(0)
    W = (rng.standard_normal((1, 8)), rng.standard_normal((8, 7)), rng.standard_normal((7, 3)))
    b = tuple(np.zeros(w.shape[1]) for w in W)
    X = np.array([[0.0], [0.0], [-np.inf], [1.0]])
    args = (np.ones(3), np.array([SIGMOID, IDENTITY, IDENTITY]), MSE, X, np.zeros(4, np.int64),
            rng.standard_normal((4, 3)), np.arange(4, dtype=np.int64), 0.01)
    _, want = reference.sgd_epoch(tuple(w.copy() for w in W), tuple(v.copy() for v in b), *args)
    losses, done = sgd_epoch_compact(tuple(w.copy() for w in W), tuple(v.copy() for v in b), *args, 8,
                                     np.array([1, 1, 0], np.uint8))
    assert want == 3
    assert done == want, f"compact stopped at sample {done}, sequential SGD at {want} (losses {losses})"
