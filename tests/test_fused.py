"""The fused per-sample SGD kernel against the layer-by-layer path, threads, fallbacks, bad input."""
import numpy as np
import pytest

from net import (SGD, CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential, Sigmoid, Softmax, TrainingDivergedError,
                 fit)
from net.fused import plan

ACTS = {"relu": ReLU, "sigmoid": Sigmoid, "identity": None}
# Fused and layer-by-layer SGD differ only in summation order.  Worst differences measured over
# the mixed-activation cases below (300 samples, weights of size ~1): 3.3e-7 in float32,
# 6.7e-16 in float64; the tolerances leave a ~10x margin.
TOL = {np.float32: dict(rtol=1e-5, atol=3e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _data(n=300, d=30, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    X[rng.random((n, d)) < 0.4] = 0          # exact zeros, like background pixels
    y = rng.integers(0, k, n)
    return X.astype(dtype), y


def _model(backend, act, dtype, sizes=(30, 16, 12, 4), bias=True, seed=1):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Linear(a, b, rng=rng, dtype=dtype, backend=backend, bias=bias))
        if i < len(sizes) - 2 and ACTS[act] is not None:
            layers.append(ACTS[act](backend=backend))
    return Sequential(layers)


def _loss(name, backend):
    return CrossEntropyLoss(backend=backend) if name == "ce" else MSELoss(backend=backend)


def _assert_same_weights(a, b, dtype):
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pb.value, pa.value, **TOL[dtype], err_msg=f"{pa.layer!r}.{pa.name}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
@pytest.mark.parametrize("act", list(ACTS))
def test_fused_equals_layer_by_layer_numpy_after_300_samples(act, loss_name, dtype):
    X, y = _data(dtype=dtype)
    ref = _model("numpy", act, dtype)
    hist_ref = fit(ref, _loss(loss_name, "numpy"), X, y, batch_size=1, epochs=1, lr=0.05, rng=7)
    fast = _model("numba", act, dtype)
    hist_fast = fit(fast, _loss(loss_name, "numba"), X, y, batch_size=1, epochs=1, lr=0.05, rng=7)
    assert hist_ref.path == "layers" and hist_fast.path == "fused"
    _assert_same_weights(ref, fast, dtype)
    np.testing.assert_allclose(hist_fast, hist_ref, rtol=TOL[dtype]["rtol"])
    assert fast[0].params["W"].dtype == dtype


#: Hidden activations cycle through these, so neighbouring layers always differ.
CYCLE = ("sigmoid", "relu", "identity")


def _mixed_model(backend, depth, dtype, bias, seed=1):
    """``depth`` Linear layers (odd widths) with mixed activations, e.g. sigmoid, relu, identity, sigmoid."""
    sizes = (30, *(17, 13, 11, 9)[:depth - 1], 4)
    acts = [CYCLE[(depth + i) % 3] for i in range(depth - 1)]
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Linear(a, b, rng=rng, dtype=dtype, backend=backend, bias=bias))
        if i < depth - 1 and ACTS[acts[i]] is not None:
            layers.append(ACTS[acts[i]](backend=backend))
    return Sequential(layers)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_fused_equals_layer_loop_for_mixed_activations(depth, loss_name, dtype, bias, threads):
    X, y = _data(dtype=dtype)
    ref = _mixed_model("numpy", depth, dtype, bias)
    hist_ref = fit(ref, _loss(loss_name, "numpy"), X, y, batch_size=1, lr=0.05, rng=7)
    fast = _mixed_model("numba", depth, dtype, bias)
    hist = fit(fast, _loss(loss_name, "numba"), X, y, batch_size=1, lr=0.05, rng=7, threads=threads)
    assert hist_ref.path == "layers" and hist.path == "fused" and hist.threads == threads
    _assert_same_weights(ref, fast, dtype)
    np.testing.assert_allclose(hist, hist_ref, rtol=TOL[dtype]["rtol"])


@pytest.mark.parametrize("sizes", [(30, 4), (30, 16, 4), (30, 40, 24, 12, 4)], ids=["L1", "L2", "L4"])
@pytest.mark.parametrize("act", ["relu", "sigmoid"])
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_sequential_sgd(sizes, act, threads):
    X, y = _data(n=200)
    one = _model("numba", act, np.float64, sizes)
    h1 = fit(one, CrossEntropyLoss(), X, y, batch_size=1, epochs=2, lr=0.05, rng=3)
    many = _model("numba", act, np.float64, sizes)
    hn = fit(many, CrossEntropyLoss(), X, y, batch_size=1, epochs=2, lr=0.05, rng=3, threads=threads)
    assert hn.path == "fused" and hn.threads == threads
    _assert_same_weights(one, many, np.float64)
    np.testing.assert_allclose(hn, h1, rtol=1e-9)


def test_threads_with_mse_and_float32():
    X, y = _data(n=200, dtype=np.float32)
    one = _model("numba", "relu", np.float32)
    fit(one, MSELoss(), X, y, batch_size=1, lr=0.05, rng=3)
    two = _model("numba", "relu", np.float32)
    fit(two, MSELoss(), X, y, batch_size=1, lr=0.05, rng=3, threads=2)
    _assert_same_weights(one, two, np.float32)


def test_layers_without_bias_stay_without_bias():
    X, y = _data()
    ref = _model("numpy", "identity", np.float64, bias=False)
    fit(ref, CrossEntropyLoss(), X, y, batch_size=1, lr=0.05, rng=0)
    fast = _model("numba", "identity", np.float64, bias=False)
    assert fit(fast, CrossEntropyLoss(), X, y, batch_size=1, lr=0.05, rng=0).path == "fused"
    _assert_same_weights(ref, fast, np.float64)
    assert all(set(layer.params) == {"W"} for layer in fast if isinstance(layer, Linear))


def test_one_hot_targets_take_the_fused_path():
    X, y = _data()
    a, b = _model("numba", "relu", np.float64), _model("numba", "relu", np.float64)
    fit(a, CrossEntropyLoss(), X, y, batch_size=1, rng=0)
    assert fit(b, CrossEntropyLoss(), X, np.eye(4)[y], batch_size=1, rng=0).path == "fused"
    _assert_same_weights(a, b, np.float64)


class _Scale:
    """A user's own layer: not something the fused kernel knows."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 2 * dy


@pytest.mark.parametrize("make", [
    lambda: (Sequential(Linear(30, 8, rng=0, backend="numba"), Sigmoid(backend="numba"),
                        Linear(8, 4, rng=1, backend="numba"), Softmax(backend="numba")),
             CrossEntropyLoss(from_logits=False, backend="numba")),
    lambda: (Sequential(Linear(30, 8, rng=0, backend="numba"), _Scale(), Linear(8, 4, rng=1, backend="numba")),
             CrossEntropyLoss(backend="numba")),
    lambda: (Sequential(Linear(30, 8, rng=0, backend="numpy"), ReLU(), Linear(8, 4, rng=1)), CrossEntropyLoss()),
], ids=["softmax-layer", "custom-layer", "numpy-backend"])
def test_unsupported_stacks_fall_back_and_still_train(make):
    X, y = _data()
    model, loss = make()
    assert isinstance(plan(model, loss, batch_size=1), str)
    hist = fit(model, loss, X, y, batch_size=1, epochs=3, lr=0.05, rng=0)
    assert hist.path == "layers" and hist[-1] < hist[0]
    model, loss = make()
    with pytest.raises(ValueError, match=r"threads=2 needs a fused kernel, but"):
        fit(model, loss, X, y, batch_size=1, threads=2)


class _NotOurSGD(SGD):
    """An optimiser the fused kernels do not know (a subclass may change ``step``)."""


def test_fused_true_says_why_not():
    X, y = _data()
    model = _model("numba", "relu", np.float64)
    with pytest.raises(ValueError, match=r"fused=True needs a fused kernel, but the fused kernels run our SGD, "
                                         r"not _NotOurSGD"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=8, optimizer=_NotOurSGD(model.parameters(), lr=0.1),
            fused=True)
    with pytest.raises(ValueError, match=r"threads=2 needs a fused kernel, but the fused kernels run our SGD"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=1, optimizer=_NotOurSGD(model.parameters(), lr=0.1),
            threads=2)


@pytest.mark.parametrize("threads", [1, 2])
def test_bad_input_is_rejected_before_training(threads):
    X, y = _data()
    model = _model("numba", "relu", np.float64)
    before = [p.value.copy() for p in model.parameters()]
    bad_y = y.copy()
    bad_y[150] = 4
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) .* got min 0 and max 4"):
        fit(model, CrossEntropyLoss(), X, bad_y, batch_size=1, threads=threads)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 30\), got X of shape \(300, 29\)"):
        fit(model, CrossEntropyLoss(), X[:, :29], y, batch_size=1, threads=threads)
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(p.value, b)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("backend,threads", [("numba", 1), ("numba", 2), ("numpy", 1)])
def test_non_finite_loss_stops_with_epoch_and_sample(backend, threads):
    X, y = _data(n=50)
    X[17] = 1e200                                  # sample 17's squared error overflows to inf
    model = _model(backend, "identity", np.float64)
    with pytest.raises(TrainingDivergedError, match=r"in epoch 1 at sample 17 \(position 17 of the epoch\)"):
        fit(model, MSELoss(backend=backend), X, y, batch_size=1, lr=0.01, shuffle=False, threads=threads)


def test_progress_callback_on_the_fused_path():
    X, y = _data(n=5000)
    rows = []
    fit(_model("numba", "relu", np.float32), CrossEntropyLoss(), X, y, batch_size=1,
        on_batch=lambda n, loss: rows.append(n))
    assert sum(rows) == 5000 and len(rows) > 1          # chunks sized by time (net.train.FUSED_CALL_SECONDS)


# ---- the fused path trains what the layer path trains, and rejects what it rejects --------------

def _frozen_first_layer_fit(fused, threads=1):
    X, y = _data()
    model = _model("numba", "relu", np.float64)
    opt = SGD(model.parameters()[2:], lr=0.05)           # first Linear (W, b) frozen
    hist = fit(model, CrossEntropyLoss(), X, y, batch_size=1, optimizer=opt, rng=0, fused=fused, threads=threads)
    return model, hist


def test_frozen_parameters_stay_frozen_and_match_the_layer_path():
    ref, hist_ref = _frozen_first_layer_fit(fused=False)
    model, hist = _frozen_first_layer_fit(fused=None)
    untouched = _model("numba", "relu", np.float64)
    np.testing.assert_array_equal(model[0].params["W"], untouched[0].params["W"])
    np.testing.assert_array_equal(model[0].params["b"], untouched[0].params["b"])
    _assert_same_weights(ref, model, np.float64)
    np.testing.assert_allclose(hist, hist_ref, rtol=1e-9)


def test_fused_true_or_threads_say_why_a_partial_optimizer_cannot_be_fused():
    with pytest.raises(ValueError, match=r"fused=True needs .*optimizer trains only some of the model's parameters"):
        _frozen_first_layer_fit(fused=True)
    with pytest.raises(ValueError, match=r"threads=2 needs .*optimizer trains only some"):
        _frozen_first_layer_fit(fused=None, threads=2)


@pytest.mark.parametrize("fused", [None, False])
def test_an_optimizer_over_another_models_parameters_is_rejected(fused):
    X, y = _data()
    model, other = _model("numba", "relu", np.float64), _model("numba", "relu", np.float64, seed=5)
    before = [p.value.copy() for p in model.parameters() + other.parameters()]
    with pytest.raises(ValueError, match=r"optimizer holds 6 parameters that are not in the model"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=1, optimizer=SGD(other.parameters(), lr=0.1), fused=fused)
    for b, p in zip(before, model.parameters() + other.parameters()):
        np.testing.assert_array_equal(p.value, b)


def _raises_same_on_both_paths(model_factory, loss_factory, X, y, match):
    """The fused path and the layer path raise the same message before any step."""
    messages = []
    for fused in (None, False):
        model = model_factory()
        before = [p.value.copy() for p in model.parameters()]
        with pytest.raises(ValueError, match=match) as info:
            fit(model, loss_factory(), X, y, batch_size=1, lr=0.1, fused=fused)
        messages.append(str(info.value))
        for b, p in zip(before, model.parameters()):
            np.testing.assert_array_equal(p.value, b)
    assert messages[0] == messages[1]


@pytest.mark.parametrize("middle_in", [7, 5000])
def test_mismatched_layer_widths_are_rejected_before_the_kernel_runs(middle_in):
    X, y = _data(n=50, d=6, k=3)

    def model():
        return Sequential(Linear(6, 5, rng=0, backend="numba"), ReLU(backend="numba"),
                          Linear(middle_in, 3, rng=1, backend="numba"))

    _raises_same_on_both_paths(model, lambda: CrossEntropyLoss(backend="numba"), X, y,
                               rf"Linear\({middle_in} -> 3\) expected input of shape \(batch, {middle_in}\), got \(1, 5\)")


@pytest.mark.parametrize("width", [2, 3, 6])
def test_mse_targets_of_the_wrong_width_are_rejected(width):
    X, _ = _data(n=40, d=30)
    T = np.random.default_rng(0).random((40, width))
    _raises_same_on_both_paths(lambda: _model("numba", "relu", np.float64), lambda: MSELoss(backend="numba"), X, T,
                               rf"expected targets of shape \(1,\) \(labels\) or \(1, 4\) .*got \(1, {width}\)")


# ---- the fused mini-batch kernel ----------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [7, None], ids=["b7", "full"])
@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["sgd", "momentum"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_fused_minibatch_equals_layer_loop(depth, loss_name, dtype, bias, momentum, batch_size):
    X, y = _data(n=200, dtype=dtype)                          # 200 = 28 batches of 7 + one of 4
    runs = {}
    for fused in (False, None):
        model = _mixed_model("numba", depth, dtype, bias)
        opt = SGD(model.parameters(), lr=0.05, momentum=momentum)
        hist = fit(model, _loss(loss_name, "numba"), X, y, batch_size=batch_size, epochs=2, optimizer=opt, rng=7,
                   fused=fused)
        runs[fused] = (model, hist, opt)
    (ref, hist_ref, opt_ref), (fast, hist, opt) = runs[False], runs[None]
    assert hist_ref.path == "layers" and hist.path == "fused"
    _assert_same_weights(ref, fast, dtype)
    np.testing.assert_allclose(hist, hist_ref, rtol=TOL[dtype]["rtol"])
    if momentum:                                              # the optimiser's own buffers were used
        for va, vb in zip(opt_ref.velocity, opt.velocity):
            np.testing.assert_allclose(vb, va, **TOL[dtype])


def test_per_sample_momentum_runs_in_the_mini_batch_kernel():
    X, y = _data()
    runs = []
    for fused in (False, None):
        model = _mixed_model("numba", 3, np.float64, True)
        runs.append((model, fit(model, CrossEntropyLoss(), X, y, batch_size=1, momentum=0.5, lr=0.02, rng=1,
                                fused=fused)))
    assert runs[1][1].path == "fused"
    _assert_same_weights(runs[0][0], runs[1][0], np.float64)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("batch_size", [8, None])
def test_fused_minibatch_divergence_names_the_sample(batch_size):
    X, y = _data(n=50)
    X[21] = 1e200
    model = _model("numba", "identity", np.float64)
    with pytest.raises(TrainingDivergedError, match=r"in epoch 1 at sample 21 \(position 21 of the epoch\)"):
        fit(model, MSELoss(), X, y, batch_size=batch_size, lr=0.01, shuffle=False, fused=True)


def test_progress_callback_on_the_fused_minibatch_path_counts_whole_batches():
    X, y = _data(n=5000)
    rows = []
    hist = fit(_model("numba", "relu", np.float32), CrossEntropyLoss(), X, y, batch_size=100,
               on_batch=lambda n, loss: rows.append(n))
    assert hist.path == "fused" and sum(rows) == 5000 and all(r % 100 == 0 for r in rows) and len(rows) > 1


@pytest.mark.parametrize("batch_size", [64, None])
def test_minibatch_threads_are_deterministic_for_a_given_count(batch_size):
    X, y = _data(n=2000, d=300)
    weights = []
    for threads in (2, 2, 1):
        model = _mixed_model("numba", 3, np.float32, True)
        model.layers[0] = Linear(300, 17, rng=0, backend="numba")   # wide enough for BLAS to split
        hist = fit(model, CrossEntropyLoss(), X, y, batch_size=batch_size, epochs=2, lr=0.05, rng=3, threads=threads)
        assert hist.path == "fused" and hist.threads == threads
        weights.append([p.value.copy() for p in model.parameters()])
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)                   # same thread count: bitwise the same
    for a, c in zip(weights[0], weights[2]):
        np.testing.assert_allclose(a, c, **TOL[np.float32])   # another count: summation order only


# ---- review findings: each fails on the code before the fix ---------------------------------------

def test_an_optimizer_listing_a_parameter_twice_is_rejected():
    X, y = _data()
    model = _model("numba", "relu", np.float64)
    with pytest.raises(ValueError, match=r"optimizer lists Linear\(30 -> 16\)\.W more than once"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=1, optimizer=SGD(model.parameters() * 2, lr=0.05))


def test_the_same_layer_object_twice_is_rejected():
    X, y = _data(d=8)
    lin = Linear(8, 8, rng=0, backend="numba")
    model = Sequential(lin, ReLU(backend="numba"), lin, Linear(8, 4, rng=1, backend="numba"))
    with pytest.raises(ValueError, match=r"Linear\(8 -> 8\) appears twice in the model"):
        fit(model, CrossEntropyLoss(), X, y, batch_size=4)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_tied_weights_fall_back_to_the_layer_loop(batch_size):
    X, y = _data(d=8)
    results = []
    for fused in (False, None):
        a, b = Linear(8, 8, rng=0, backend="numba", dtype=np.float64), Linear(8, 8, backend="numba", dtype=np.float64)
        b.params["W"] = a.params["W"]                                  # tied
        model = Sequential(a, Sigmoid(backend="numba"), b, Linear(8, 4, rng=1, backend="numba", dtype=np.float64))
        hist = fit(model, CrossEntropyLoss(), X, y, batch_size=batch_size, lr=0.05, rng=0, fused=fused)
        results.append((model, hist))
    assert results[1][1].path == "layers"
    assert "share memory" in plan(results[1][0], CrossEntropyLoss(), batch_size=batch_size)
    _assert_same_weights(results[0][0], results[1][0], np.float64)


@pytest.mark.parametrize("batch_size", [2.0, 10**12, 2**64])
def test_float_and_huge_batch_sizes_train_like_the_layer_loop(batch_size):
    X, y = _data(n=40)
    runs = []
    for fused in (False, None):
        model = _model("numba", "relu", np.float64)
        runs.append((model, fit(model, CrossEntropyLoss(), X, y, batch_size=batch_size, lr=0.05, rng=0,
                                fused=fused)))
    assert runs[1][1].path == "fused"
    _assert_same_weights(runs[0][0], runs[1][0], np.float64)


def test_momentum_set_after_construction_gets_velocity_buffers():
    X, y = _data()
    runs = []
    for fused in (False, None):
        model = _model("numba", "relu", np.float64)
        opt = SGD(model.parameters(), lr=0.05)
        opt.momentum = 0.9                                             # no buffers were made
        runs.append((model, fit(model, CrossEntropyLoss(), X, y, batch_size=8, optimizer=opt, rng=0, fused=fused)))
    assert runs[1][1].path == "fused"
    _assert_same_weights(runs[0][0], runs[1][0], np.float64)


def test_soft_cross_entropy_targets_are_not_trained_as_their_argmax():
    X, y = _data()
    soft = np.full((len(y), 4), 0.1)
    soft[np.arange(len(y)), y] = 0.7
    runs = []
    for fused in (False, None):
        model = _model("numba", "relu", np.float64)
        runs.append((model, fit(model, CrossEntropyLoss(), X, soft, batch_size=1, lr=0.05, rng=0, fused=fused)))
    assert runs[1][1].path == "layers"
    _assert_same_weights(runs[0][0], runs[1][0], np.float64)
    with pytest.raises(ValueError, match="cannot take these targets: soft"):
        fit(_model("numba", "relu", np.float64), CrossEntropyLoss(), X, soft, batch_size=1, fused=True)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("batch_size,threads", [(1, 1), (1, 2), (8, 1)])
def test_fused_divergence_at_the_first_step_does_not_blame_the_learning_rate(batch_size, threads):
    X, y = _data(n=50)
    X[0] = 1e200
    with pytest.raises(TrainingDivergedError, match=r"at sample 0 \(position 0 of the epoch\), before this fit made "
                                                    r"any update") as info:
        fit(_model("numba", "identity", np.float64), MSELoss(), X, y, batch_size=batch_size, shuffle=False,
            threads=threads)
    assert "learning rate" not in str(info.value)


def test_fused_plan_checks_arguments_before_the_kernel():
    X, y = _data(n=20)
    model = _model("numba", "relu", np.float64)
    p = plan(model, CrossEntropyLoss(), batch_size=1)
    labels, targets = p.targets(y)
    order = np.arange(20)
    for bad, match in [((X[:, :29], labels, targets, order), r"X must be C-contiguous float64 of shape \(N, 30\)"),
                       ((X, labels[:19], targets, order), r"expected 20 labels in \[0, 4\)"),
                       ((X, labels + 1, targets, order), r"expected 20 labels in \[0, 4\)"),
                       ((X, labels, targets, order + 1), r"sample indices must lie in \[0, 20\)")]:
        with pytest.raises(ValueError, match=match):
            p.run(np.ascontiguousarray(bad[0]), *bad[1:], lr=0.1)


def test_float64_X_beyond_the_float32_range_is_rejected():
    X, y = _data(n=20)
    X[13] = 1e39
    with pytest.raises(ValueError, match=r"X row 13 has values beyond the float32 range"):
        fit(_model("numba", "relu", np.float32), CrossEntropyLoss(), X, y, batch_size=4)
