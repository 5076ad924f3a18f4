"""The issue-13 layers against PyTorch: Tanh, LeakyReLU, GELU, Dropout, BatchNorm1d, LayerNorm.

Same inputs and parameters through both; forward values, input gradients, parameter
gradients and BatchNorm1d's running statistics (over several training steps, then eval mode)
are compared with a per-dtype table: float64 tight, float32 at a few ulps of the terms
(looser for the normalisation layers, whose outputs divide by a float32 standard deviation
computed from a float32 sum).  Skipped without torch unless SCRATCHNET_REQUIRE_TORCH is set,
as tests/reference/test_torch_reference.py.
"""
import os

import numpy as np
import pytest

if os.environ.get("SCRATCHNET_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from net import GELU, BatchNorm1d, Dropout, LayerNorm, LeakyReLU, Tanh  # noqa: E402

pytestmark = pytest.mark.torch

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}
#: GELU's derivative near saturation: ``0.5 x (1 - tanh(u)**2) sqrt(2/pi) (1 + 0.134 x**2)`` with
#: tanh(u) within an ulp of -1 carries ~16 * 1.2e-7 = 2e-6 of float32 rounding at |x| = 6.
GELU_TOL = {np.float32: dict(rtol=2e-5, atol=1e-5), np.float64: dict(rtol=1e-11, atol=1e-13)}
NORM_TOL = {np.float32: dict(rtol=1e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def close(mine, theirs, dtype, what, tol=TOL):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    mine = np.asarray(mine)
    assert mine.dtype == theirs.dtype, f"{what}: dtype {mine.dtype} vs torch {theirs.dtype}"
    np.testing.assert_allclose(mine, theirs, **tol[dtype], err_msg=what)


@pytest.fixture(params=[(b, d) for b in BACKENDS for d in DTYPES],
                ids=[f"{b}-{np.dtype(d).name}" for b in BACKENDS for d in DTYPES])
def setting(request):
    return request.param


def _activation_inputs(rng, dtype):
    """(6, 9) values over [-6, 6] with exact zeros and a few tiny ones, and a gradient."""
    x = rng.uniform(-6, 6, (6, 9))
    x[0, :3] = 0
    x[1, :3] = [1e-6, -1e-7, 3e-4]
    return x.astype(dtype), rng.standard_normal((6, 9)).astype(dtype)


def _check_elementwise(layer, fn, x, dy, dtype, tol=TOL):
    xt = t(x, grad=True)
    yt = fn(xt)
    yt.backward(t(dy))
    y = layer.forward(x)
    close(y, yt, dtype, f"{layer!r} forward", tol)
    close(layer.backward(dy), xt.grad, dtype, f"{layer!r} backward", tol)


def test_tanh(setting, rng):
    backend, dtype = setting
    x, dy = _activation_inputs(rng, dtype)
    _check_elementwise(Tanh(backend=backend), torch.tanh, x, dy, dtype)


@pytest.mark.parametrize("slope", [None, 0.2, -0.5, 1.5])
def test_leaky_relu(setting, rng, slope):
    backend, dtype = setting
    x, dy = _activation_inputs(rng, dtype)
    layer = LeakyReLU(backend=backend) if slope is None else LeakyReLU(slope, backend=backend)
    ref = torch.nn.LeakyReLU() if slope is None else torch.nn.LeakyReLU(slope)
    assert layer.negative_slope == ref.negative_slope
    _check_elementwise(layer, ref, x, dy, dtype)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(setting, rng, approximate):
    backend, dtype = setting
    x, dy = _activation_inputs(rng, dtype)
    _check_elementwise(GELU(approximate, backend=backend), torch.nn.GELU(approximate=approximate), x, dy, dtype,
                       GELU_TOL)


def test_gelu_default_is_the_exact_erf_form():
    assert GELU().approximate == torch.nn.GELU().approximate == "none"


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_dropout_applies_torchs_inverted_scaling_to_the_drawn_mask(setting, rng, p):
    """torch draws its own mask, so the comparison uses ours in torch's formula
    ``input * (bernoulli(1 - p) / (1 - p))``; p = 1 is F.dropout's zeros."""
    backend, dtype = setting
    layer = Dropout(p, rng=3, backend=backend)
    x = rng.standard_normal((40, 30)).astype(dtype)
    dy = rng.standard_normal((40, 30)).astype(dtype)
    y = layer.forward(x)
    xt = t(x, grad=True)
    if p == 0:
        yt = F.dropout(xt, p, training=True)
    elif p == 1:
        yt = F.dropout(xt, p, training=True)
    else:
        noise = t(layer.mask) / (1 - p)          # torch: noise.bernoulli_(1 - p).div_(1 - p); input * noise
        yt = xt * noise
    yt.backward(t(dy))
    close(y, yt, dtype, f"Dropout({p}) forward")
    close(layer.backward(dy), xt.grad, dtype, f"Dropout({p}) backward")
    layer.eval()
    close(layer.forward(x), F.dropout(t(x), p, training=False), dtype, f"Dropout({p}) eval")


def _bn_pair(dtype, backend, **kw):
    mine = BatchNorm1d(5, backend=backend, dtype=dtype, **kw)
    ref = torch.nn.BatchNorm1d(5, dtype=TORCH_DTYPE[dtype], **kw)
    if mine.affine:
        w = np.linspace(0.5, 2.0, 5).astype(dtype)
        b = np.linspace(-1.0, 1.0, 5).astype(dtype)
        mine.params["weight"][:], mine.params["bias"][:] = w, b
        with torch.no_grad():
            ref.weight.copy_(t(w))
            ref.bias.copy_(t(b))
    return mine, ref


def _bn_step(mine, ref, x, dy, dtype, what):
    xt = t(x, grad=True)
    yt = ref(xt)
    yt.backward(t(dy))
    close(mine.forward(x), yt, dtype, f"{what} forward", NORM_TOL)
    close(mine.backward(dy), xt.grad, dtype, f"{what} dx", NORM_TOL)
    if mine.affine:
        close(mine.grads["weight"], ref.weight.grad, dtype, f"{what} dweight", NORM_TOL)
        close(mine.grads["bias"], ref.bias.grad, dtype, f"{what} dbias", NORM_TOL)
        ref.weight.grad = ref.bias.grad = None


@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False},
                                {"track_running_stats": False}],
                         ids=["defaults", "cumulative", "momentum0.3-eps1e-3", "no-affine", "no-running-stats"])
def test_batchnorm1d_training_steps_running_statistics_and_eval(setting, rng, kw):
    backend, dtype = setting
    mine, ref = _bn_pair(dtype, backend, **kw)
    for step, B in enumerate((8, 3, 16, 2)):
        x = (rng.standard_normal((B, 5)) * [1, 3, 0.1, 10, 1] + [0, 5, -2, 100, 0]).astype(dtype)
        dy = rng.standard_normal((B, 5)).astype(dtype)
        _bn_step(mine, ref, x, dy, dtype, f"step {step}")
        if ref.track_running_stats:
            close(mine.running_mean, ref.running_mean, dtype, f"step {step} running_mean", NORM_TOL)
            close(mine.running_var, ref.running_var, dtype, f"step {step} running_var", NORM_TOL)
            assert mine.num_batches_tracked == int(ref.num_batches_tracked) == step + 1
        else:
            assert ref.running_mean is None and mine.running_mean is None and not mine.buffers
    mine.eval()
    ref.eval()
    x = (rng.standard_normal((6, 5)) * 2 + 1).astype(dtype)
    dy = rng.standard_normal((6, 5)).astype(dtype)
    _bn_step(mine, ref, x, dy, dtype, "eval")
    if ref.track_running_stats:      # eval mode leaves the statistics alone
        close(mine.running_mean, ref.running_mean, dtype, "eval running_mean", NORM_TOL)
        assert mine.num_batches_tracked == int(ref.num_batches_tracked) == 4


def test_batchnorm1d_defaults_match_torch():
    mine, ref = BatchNorm1d(4), torch.nn.BatchNorm1d(4)
    assert (mine.eps, mine.momentum, mine.affine, mine.track_running_stats) == \
        (ref.eps, ref.momentum, ref.affine, ref.track_running_stats)
    np.testing.assert_array_equal(mine.running_var, ref.running_var.numpy())
    np.testing.assert_array_equal(mine.params["weight"], ref.weight.detach().numpy())


def test_batchnorm1d_refuses_a_single_row_in_training_as_torch(setting):
    backend, dtype = setting
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got input of shape \(1, 3\)"):
        BatchNorm1d(3, backend=backend, dtype=dtype).forward(np.zeros((1, 3), dtype))


def test_batchnorm1d_without_running_stats_refuses_a_single_row_in_eval_mode_as_torch(setting):
    """track_running_stats=False: eval mode normalises with batch statistics too, so torch
    refuses one row there as well (F.batch_norm runs with training=True)."""
    backend, dtype = setting
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3, track_running_stats=False).eval()(torch.zeros(1, 3))
    layer = BatchNorm1d(3, track_running_stats=False, backend=backend, dtype=dtype)
    layer.eval()
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*got input of shape \(1, 3\)"):
        layer.forward(np.ones((1, 3), dtype))


@pytest.mark.parametrize("kw", [{}, {"eps": 1e-2}, {"elementwise_affine": False}, {"bias": False}],
                         ids=["defaults", "eps1e-2", "no-affine", "no-bias"])
def test_layernorm(setting, rng, kw):
    backend, dtype = setting
    mine = LayerNorm(7, backend=backend, dtype=dtype, **kw)
    ref = torch.nn.LayerNorm(7, dtype=TORCH_DTYPE[dtype], **kw)
    if "weight" in mine.params:
        w = rng.uniform(0.5, 2, 7).astype(dtype)
        mine.params["weight"][:] = w
        with torch.no_grad():
            ref.weight.copy_(t(w))
    if "bias" in mine.params:
        b = rng.standard_normal(7).astype(dtype)
        mine.params["bias"][:] = b
        with torch.no_grad():
            ref.bias.copy_(t(b))
    x = (rng.standard_normal((9, 7)) * 3 + 2).astype(dtype)
    dy = rng.standard_normal((9, 7)).astype(dtype)
    xt = t(x, grad=True)
    yt = ref(xt)
    yt.backward(t(dy))
    close(mine.forward(x), yt, dtype, "forward", NORM_TOL)
    close(mine.backward(dy), xt.grad, dtype, "dx", NORM_TOL)
    assert set(mine.grads) == {n for n, p in ref.named_parameters()}
    for name, p in ref.named_parameters():
        close(mine.grads[name], p.grad, dtype, f"d{name}", NORM_TOL)
