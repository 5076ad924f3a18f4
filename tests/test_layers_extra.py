"""The issue-13 layers: gradients by finite differences, Dropout's statistics and seeding,
train/eval mode, argument and shape errors, checkpoints with running statistics, and fit's
fallback from the fused kernels to the layer loop.  (Values against PyTorch:
tests/reference/test_torch_layers.py; NumPy vs Numba kernels: tests/equivalence.)"""
import re

import numpy as np
import pytest

import kernels
import net
from net import (GELU, BatchNorm1d, CrossEntropyLoss, Dropout, LayerNorm, LeakyReLU, Linear, MSELoss, ReLU,
                 Sequential, Tanh, fit, gradcheck, io, predict)
from net.io import CheckpointError

BACKENDS = ["numpy", "numba"]


class FixedMaskDropout(Dropout):
    """Dropout drawing the same mask on every forward pass (its generator reseeded), so that
    finite differences see one function."""

    def forward(self, x):
        self.rng = np.random.default_rng(5)
        return super().forward(x)


def _new_layers(backend):
    """Each new layer, float64, as it sits in an MLP of width 6."""
    return {
        "Tanh": lambda: Tanh(backend=backend),
        "LeakyReLU": lambda: LeakyReLU(0.1, backend=backend),
        "GELU": lambda: GELU(backend=backend),
        "GELU-tanh": lambda: GELU("tanh", backend=backend),
        "Dropout": lambda: FixedMaskDropout(0.4, backend=backend),
        "BatchNorm1d": lambda: BatchNorm1d(6, backend=backend, dtype=np.float64),
        "BatchNorm1d-no-affine": lambda: BatchNorm1d(6, affine=False, backend=backend, dtype=np.float64),
        "LayerNorm": lambda: LayerNorm(6, backend=backend, dtype=np.float64),
        "LayerNorm-no-bias": lambda: LayerNorm(6, bias=False, backend=backend, dtype=np.float64),
    }


def _randomise_affine(layer, rng):
    for name, p in layer.params.items():
        p[:] = rng.uniform(0.5, 1.5, p.shape) if name == "weight" else rng.standard_normal(p.shape)


# ---- gradients --------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(_new_layers("numpy")))
def test_gradients_match_central_differences(backend, name, rng):
    """Linear -> layer -> Linear in float64, MSE: the input's and every parameter's gradient
    (the layer's weight/bias included) against central differences (net.gradcheck)."""
    layer = _new_layers(backend)[name]()
    _randomise_affine(layer, rng)
    model = Sequential(Linear(5, 6, backend=backend, dtype=np.float64, rng=1), layer,
                       Linear(6, 3, backend=backend, dtype=np.float64, rng=2))
    x = rng.standard_normal((7, 5))
    y = rng.standard_normal((7, 3))
    errors = gradcheck(model, MSELoss(backend=backend), x, y, rng=0)
    assert {f"1.{type(layer).__name__}.{p}" for p in layer.params} <= set(errors)
    assert max(errors.values()) < 1e-5, errors       # a wrong backward: order 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_gradients_in_eval_mode(backend, rng):
    """Eval mode normalises with the (constant) running statistics: another function, another backward."""
    bn = BatchNorm1d(6, backend=backend, dtype=np.float64)
    _randomise_affine(bn, rng)
    for _ in range(3):
        bn.forward(rng.standard_normal((10, 6)) * 2 + 1)
    bn.eval()
    model = Sequential(Linear(5, 6, backend=backend, dtype=np.float64, rng=1), bn,
                       Linear(6, 3, backend=backend, dtype=np.float64, rng=2))
    errors = gradcheck(model, MSELoss(backend=backend), rng.standard_normal((4, 5)), rng.standard_normal((4, 3)),
                       rng=0)
    assert max(errors.values()) < 1e-5, errors       # a wrong backward: order 1


# ---- Dropout ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keep_rate_and_scale(backend, dtype, p):
    """Kept entries are exactly x / (1 - p) (in the dtype, as torch's noise), dropped ones 0; the
    number kept is Binomial(N, 1 - p): within 5 standard deviations (a chance of ~6e-7 per case)."""
    N = 200_000
    layer = Dropout(p, rng=11, backend=backend)
    x = np.full((400, 500), 3, dtype)
    y = layer.forward(x)
    assert y.dtype == x.dtype
    kept = y != 0
    scale = dtype(1) / dtype(1 - p)
    np.testing.assert_array_equal(y[kept], np.full(kept.sum(), dtype(3) * scale, dtype))
    np.testing.assert_array_equal(kept, layer.mask.astype(bool))
    k = int(kept.sum())
    assert abs(k - N * (1 - p)) <= 5 * np.sqrt(N * p * (1 - p)), (k, N * (1 - p))
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx, np.where(kept, scale, dtype(0)))


def test_dropout_is_reproducible_for_a_seed_on_both_backends(rng):
    x = rng.standard_normal((30, 20)).astype(np.float32)
    a, b = Dropout(0.3, rng=7, backend="numpy"), Dropout(0.3, rng=7, backend="numba")
    for _ in range(3):                   # the same sequence of masks, call after call
        np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(Dropout(0.3, rng=8).forward(x), Dropout(0.3, rng=7).forward(x))
    g = np.random.default_rng(4)
    c, d = Dropout(0.3, rng=g), Dropout(0.3, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(c.forward(x), d.forward(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_identity_and_zeros(backend, rng):
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 4))
    for layer in (Dropout(0.0, backend=backend), Dropout(0.7, backend=backend).eval()):
        np.testing.assert_array_equal(layer.forward(x), x)
        np.testing.assert_array_equal(layer.backward(dy), dy)
        assert layer.mask is None
    one = Dropout(1.0, backend=backend)
    np.testing.assert_array_equal(one.forward(x), np.zeros_like(x))
    np.testing.assert_array_equal(one.backward(dy), np.zeros_like(dy))


# ---- train / eval -----------------------------------------------------------------------------

def _mlp(backend="numpy", p=0.5):
    return Sequential(Linear(4, 8, backend=backend, rng=0), BatchNorm1d(8, backend=backend), GELU(backend=backend),
                      Dropout(p, rng=1, backend=backend), LayerNorm(8, backend=backend),
                      Tanh(backend=backend), LeakyReLU(backend=backend), Linear(8, 3, backend=backend, rng=2))


def test_train_and_eval_return_self_and_propagate():
    model = _mlp()
    assert model.training and all(layer.training for layer in model)
    assert model.eval() is model
    assert not model.training and not any(layer.training for layer in model)
    assert model.train() is model and all(layer.training for layer in model)
    assert model.train(False) is model and not any(layer.training for layer in model)
    layer = Tanh()
    assert layer.eval() is layer and not layer.training
    assert layer.train() is layer and layer.training
    assert Linear(2, 2).training and ReLU().buffers == {}
    with pytest.raises(ValueError, match="mode must be a bool"):
        model.train("no")
    with pytest.raises(ValueError, match="mode must be a bool"):
        layer.train(0)


def test_eval_mode_is_deterministic_and_leaves_running_statistics_alone(rng):
    model = _mlp()
    x = rng.standard_normal((16, 4)).astype(np.float32)
    a, b = model.forward(x), model.forward(x)
    assert not np.array_equal(a, b)                     # new dropout masks, new batch statistics
    bn = model[1]
    stats = {k: v.copy() for k, v in bn.buffers.items()}
    assert int(stats["num_batches_tracked"]) == 2
    model.eval()
    c = model.forward(x)
    np.testing.assert_array_equal(c, model.forward(x))
    np.testing.assert_allclose(model.forward(x[3:4]), c[3:4], rtol=1e-5, atol=1e-6)   # nor on the batch (BLAS
    # may round a 1-row product differently)
    for k, v in stats.items():
        np.testing.assert_array_equal(bn.buffers[k], v)


def test_predict_runs_in_eval_mode_and_restores_each_layers_mode(rng):
    model = _mlp()
    model[4].eval()                                     # a mixed state, restored as it was
    modes = [layer.training for layer in model]
    x = rng.standard_normal((10, 4)).astype(np.float32)
    model.forward(x)
    tracked = int(model[1].buffers["num_batches_tracked"])
    out = predict(model, x, batch_size=3)
    assert [layer.training for layer in model] == modes and model.training
    assert int(model[1].buffers["num_batches_tracked"]) == tracked
    np.testing.assert_allclose(out, model.eval().forward(x), rtol=1e-5, atol=1e-6)   # chunks of 3: BLAS rounding
    np.testing.assert_allclose(predict(model, x[:1]), out[:1], rtol=1e-5, atol=1e-6)  # one row is fine in eval


def test_fit_trains_in_train_mode(rng):
    model = _mlp().eval()
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    hist = fit(model, CrossEntropyLoss(), X, y, batch_size=10, epochs=2, lr=0.1, rng=0)
    assert all(layer.training for layer in model) and model.training
    assert int(model[1].buffers["num_batches_tracked"]) == 8      # 4 batches x 2 epochs; the first-sample check
    assert np.isfinite(hist).all()                                # runs in eval mode and tracks nothing


def test_fit_with_dropout_is_reproducible_for_seeds(rng):
    X = rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    runs = []
    for _ in range(2):
        model = _mlp()
        fit(model, CrossEntropyLoss(), X, y, batch_size=6, epochs=2, lr=0.1, rng=3)
        runs.append([p.value.copy() for p in model.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# ---- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: LeakyReLU("0.1"), TypeError, "negative_slope must be a real number"),
    (lambda: GELU("exact"), ValueError, r"approximate must be 'none' or 'tanh'"),
    (lambda: Dropout(1.5), ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
    (lambda: Dropout(-0.1), ValueError, "p must be a probability"),
    (lambda: BatchNorm1d(0), ValueError, "num_features must be a positive integer, got 0"),
    (lambda: BatchNorm1d(4, momentum=1.5), ValueError, r"momentum must lie in \[0, 1\] or be None"),
    (lambda: BatchNorm1d(4, eps=0), ValueError, "eps must be a positive number"),
    (lambda: BatchNorm1d(4, dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda: LayerNorm((3, 4)), ValueError, r"normalized_shape must be an int or a 1-tuple \(F,\)"),
    (lambda: LayerNorm(-2), ValueError, "normalized_shape must be a positive integer"),
    (lambda: Tanh(dtype="float16"), TypeError, "dtype must be float32 or float64"),
])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("layer, shape, message", [
    (BatchNorm1d(4), (3, 5), r"BatchNorm1d\(4\) expected input of shape \(batch, 4\), got \(3, 5\)"),
    (BatchNorm1d(4), (3, 4, 2), r"got \(3, 4, 2\); only 2-D input"),
    (LayerNorm(4), (2, 3), r"LayerNorm\(\(4,\)\) expected input of shape \(batch, 4\), got \(2, 3\)"),
    (LayerNorm(4), (4,), r"expected input of shape \(batch, 4\), got \(4,\)"),
])
def test_wrong_input_shapes(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make", [lambda: Tanh(), lambda: LeakyReLU(), lambda: GELU(), lambda: Dropout(0.5),
                                  lambda: BatchNorm1d(3), lambda: LayerNorm(3)])
def test_backward_checks(make):
    layer = make()
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((2, 3), np.float32))
    layer.forward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 3\), got \(2, 4\)"):
        layer.backward(np.zeros((2, 4), np.float32))


def test_the_kernels_reject_an_unknown_gelu_approximation_alike():
    x = np.zeros((2, 2))
    for backend in BACKENDS:
        ops = kernels.get_backend(backend)
        with pytest.raises(ValueError, match="^gelu_forward: approximate must be 'none' or 'tanh'"):
            ops.gelu_forward(x, "exact")
        with pytest.raises(ValueError, match="^gelu_backward: approximate must be 'none' or 'tanh'"):
            ops.gelu_backward(x, x, 1)


def test_dtype_of_outputs_and_parameters():
    x64 = np.ones((3, 4))
    assert Tanh().forward(x64).dtype == np.float64                 # keeps the float dtype
    assert Tanh(dtype=np.float32).forward(x64).dtype == np.float32
    assert Dropout(0.5, dtype="float32").forward(x64).dtype == np.float32
    bn = BatchNorm1d(4)
    assert bn.forward(x64 * np.arange(3)[:, None]).dtype == np.float32
    assert {v.dtype for v in [*bn.params.values(), bn.running_mean, bn.running_var]} == {np.dtype(np.float32)}
    assert LayerNorm(4, dtype=np.float64).forward(np.ones((3, 4), np.float32)).dtype == np.float64


# ---- checkpoints ------------------------------------------------------------------------------

def test_checkpoint_round_trip_restores_parameters_running_statistics_and_dropout_stream(tmp_path, rng):
    model = Sequential(Linear(4, 8, rng=0), BatchNorm1d(8, momentum=None), GELU("tanh"), Dropout(0.25, rng=1),
                       LayerNorm(8, eps=1e-3, bias=False), Tanh(dtype="float32"), LeakyReLU(0.2),
                       BatchNorm1d(8, affine=False, track_running_stats=False, eps=1e-4, momentum=0.5),
                       Linear(8, 3, rng=2))
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    opt = net.SGD(model.parameters(), lr=0.1)
    fit(model, CrossEntropyLoss(), X, y, batch_size=8, epochs=2, optimizer=opt, rng=0)
    path = io.save_checkpoint(tmp_path / "ckpt.npz", model, opt, epoch=2, rng=np.random.default_rng(0), history=[])
    loaded = io.load_checkpoint(path)["model"]
    assert repr(loaded) == repr(model)
    for mine, theirs in zip(model, loaded):
        assert type(mine) is type(theirs)
        assert mine.params.keys() == theirs.params.keys() and mine.buffers.keys() == theirs.buffers.keys()
        for name in mine.params:
            np.testing.assert_array_equal(mine.params[name], theirs.params[name])
        for name in mine.buffers:
            np.testing.assert_array_equal(mine.buffers[name], theirs.buffers[name])
            assert mine.buffers[name].dtype == theirs.buffers[name].dtype
    assert int(loaded[1].buffers["num_batches_tracked"]) == 10 and loaded[1].momentum is None
    assert (loaded[7].eps, loaded[7].momentum, loaded[7].affine, loaded[7].track_running_stats) == \
        (1e-4, 0.5, False, False)
    np.testing.assert_array_equal(predict(loaded, X), predict(model, X))
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))      # the same dropout masks next
    assert loaded[5].dtype == np.float32 and loaded[6].negative_slope == 0.2


def test_dropout_layers_sharing_one_generator_share_it_again_when_loaded(tmp_path, rng):
    """build_model (the CLI) gives every Dropout the model's one generator.  Saved as two copies of
    its state, the loaded layers drew the same masks where the saved model's drew in turn, and a
    resumed 784-64-64-10 run with --dropout left the uninterrupted one (found on Fashion-MNIST)."""
    shared = np.random.default_rng(5)
    model = Sequential(Linear(4, 6, rng=0), Dropout(0.5, rng=shared), Linear(6, 6, rng=1), Dropout(0.5, rng=shared),
                       Dropout(0.3, rng=7), Linear(6, 2, rng=2))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    model.forward(x)                                          # advance the generators
    loaded = io.load(io.save(model, tmp_path / "model.npz"))
    assert loaded[1].rng is loaded[3].rng and loaded[4].rng is not loaded[1].rng
    for _ in range(3):
        np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_a_dropout_sharing_a_layer_that_is_not_an_earlier_dropout_is_a_clear_error(tmp_path):
    import json

    model = Sequential(Linear(4, 6, rng=0), Dropout(0.5, rng=1), Linear(6, 2, rng=2))
    spec = io.describe(model)
    spec[1]["rng_shared_with"] = 2
    with pytest.raises(CheckpointError, match="layer 1: Dropout shares the generator of layer 2"):
        io.build(json.loads(json.dumps(spec)))


def test_a_dropout_generator_of_any_bit_generator_is_saved_and_restored(tmp_path, rng):
    x = rng.standard_normal((6, 5))
    for bits in (np.random.MT19937(3), np.random.Philox(3), np.random.PCG64(3)):
        layer = Dropout(0.5, rng=np.random.Generator(bits))
        layer.forward(x)
        loaded = io.load(io.save(Sequential(layer), tmp_path / "d.npz"))[0]
        assert type(loaded.rng.bit_generator) is type(bits)
        np.testing.assert_array_equal(loaded.forward(x), layer.forward(x))


def test_the_digest_covers_the_running_statistics(tmp_path):
    model = Sequential(Linear(3, 4, rng=0), BatchNorm1d(4))
    model.forward(np.arange(12, dtype=np.float32).reshape(3, 4)[:, :3])
    path = io.save(model, tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    assert "buffer/1/running_mean" in arrays
    arrays["buffer/1/running_mean"] = arrays["buffer/1/running_mean"] + 1
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        io.load(tmp_path / "edited.npz")
    del arrays["buffer/1/running_mean"]
    arrays["__digest__"] = np.array(io._digest(str(arrays["__meta__"]),
                                               {k: v for k, v in arrays.items() if not k.startswith("__")}))
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(CheckpointError, match="missing buffer buffer/1/running_mean"):
        io.load(tmp_path / "missing.npz")


# ---- the fused kernels refuse, fit falls back -------------------------------------------------

@pytest.mark.parametrize("make", [lambda: LeakyReLU(backend="numba"),
                                  lambda: GELU(backend="numba"), lambda: Dropout(0.2, rng=0, backend="numba"),
                                  lambda: BatchNorm1d(6, backend="numba"), lambda: LayerNorm(6, backend="numba")],
                         ids=["LeakyReLU", "GELU", "Dropout", "BatchNorm1d", "LayerNorm"])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_fit_falls_back_to_the_layer_loop_and_fused_true_names_the_layer(make, batch_size, rng):
    layer = make()
    model = Sequential(Linear(4, 6, backend="numba", rng=0), layer, Linear(6, 3, backend="numba", rng=1))
    X = rng.standard_normal((24, 4)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    if isinstance(layer, BatchNorm1d) and batch_size == 1:      # as torch: no batch statistics of one row
        with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
            fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=1)
        return
    before = model[0].params["W"].copy()
    hist = fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=batch_size, epochs=1, lr=0.05, rng=0)
    assert hist.path == "layers" and np.isfinite(hist).all()
    assert not np.array_equal(model[0].params["W"], before)
    with pytest.raises(ValueError, match=r"fit: fused=True needs a fused kernel, but the fused kernels do not know "
                                         rf"layer {re.escape(repr(layer))}"):
        fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=batch_size, fused=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size, momentum", [(1, 0.0), (5, 0.0), (5, 0.9)],
                         ids=["per-sample", "minibatch", "minibatch-momentum"])
def test_tanh_trains_in_the_fused_kernels_as_in_the_layer_loop(dtype, batch_size, momentum, rng):
    """Tanh is an activation code of the fused kernels (kernels.codes.TANH): the same SGD as the
    layer-by-layer loop, to rounding (the fused kernel's tanh is the numba Tanh layer's)."""
    X = rng.standard_normal((30, 4)).astype(dtype)
    y = rng.integers(0, 3, 30)
    results = {}
    for fused in (True, False):
        model = Sequential(Linear(4, 7, backend="numba", dtype=dtype, rng=0), Tanh(backend="numba"),
                           Linear(7, 5, backend="numba", dtype=dtype, rng=1), Tanh(backend="numba"),
                           Linear(5, 3, backend="numba", dtype=dtype, rng=2))
        hist = fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=batch_size, epochs=2, lr=0.1,
                   momentum=momentum, rng=4, fused=fused)
        assert hist.path == ("fused" if fused else "layers")
        results[fused] = (np.array(hist), [p.value.copy() for p in model.parameters()])
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[True][0], results[False][0], **tol)
    for a, b in zip(results[True][1], results[False][1]):
        np.testing.assert_allclose(a, b, **tol)
