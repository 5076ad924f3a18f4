"""scratchnet against PyTorch (``pip install torch==2.13.0``, the ``reference`` extra).

Weights are copied across (``torch.nn.Linear.weight`` is ``W.T``), the same
inputs go through both, and forward values, input gradients, parameter
gradients and SGD steps are compared with tolerances from one per-dtype table.
``.ci/run`` sets ``SCRATCHNET_REQUIRE_TORCH=1`` so that a missing torch fails CI
instead of skipping these tests.
"""
import os

import numpy as np
import pytest

if os.environ.get("SCRATCHNET_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from net import SGD, CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential, Sigmoid, Softmax  # noqa: E402

pytestmark = pytest.mark.torch

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def close(mine, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    mine = np.asarray(mine)
    assert mine.dtype == theirs.dtype, f"{what}: dtype {mine.dtype} vs torch {theirs.dtype}"
    np.testing.assert_allclose(mine, theirs, **TOL[dtype], err_msg=what)


@pytest.fixture(params=[(b, d) for b in BACKENDS for d in DTYPES],
                ids=[f"{b}-{np.dtype(d).name}" for b in BACKENDS for d in DTYPES])
def setting(request):
    return request.param


def test_linear(setting, rng):
    backend, dtype = setting
    layer = Linear(7, 5, backend=backend, dtype=dtype, rng=0)
    layer.params["b"][:] = rng.standard_normal(5)
    ref = torch.nn.Linear(7, 5, dtype=TORCH_DTYPE[dtype])
    with torch.no_grad():
        ref.weight.copy_(t(layer.params["W"].T))
        ref.bias.copy_(t(layer.params["b"]))
    x = rng.standard_normal((4, 7)).astype(dtype)
    dy = rng.standard_normal((4, 5)).astype(dtype)
    xt = t(x, grad=True)
    yt = ref(xt)
    yt.backward(t(dy))
    close(layer(x), yt, dtype, "forward")
    close(layer.backward(dy), xt.grad, dtype, "dx")
    close(layer.grads["W"], ref.weight.grad.T, dtype, "dW")
    close(layer.grads["b"], ref.bias.grad, dtype, "db")


@pytest.mark.parametrize("ours,theirs", [(ReLU, torch.relu), (Sigmoid, torch.sigmoid),
                                         (Softmax, lambda z: torch.softmax(z, dim=1))],
                         ids=["relu", "sigmoid", "softmax"])
def test_activations(setting, ours, theirs, rng):
    backend, dtype = setting
    x = (rng.standard_normal((6, 5)) * 3).astype(dtype)
    dy = rng.standard_normal((6, 5)).astype(dtype)
    layer = ours(backend=backend)
    xt = t(x, grad=True)
    yt = theirs(xt)
    yt.backward(t(dy))
    close(layer(x), yt, dtype, "forward")
    close(layer.backward(dy), xt.grad, dtype, "dx")


def test_mse(setting, rng):
    backend, dtype = setting
    pred = rng.standard_normal((6, 4)).astype(dtype)
    target = rng.standard_normal((6, 4)).astype(dtype)
    loss = MSELoss(backend=backend)
    pt = t(pred, grad=True)
    ref = F.mse_loss(pt, t(target))
    ref.backward()
    close(np.asarray(loss(pred, target), dtype=dtype), ref, dtype, "loss")
    close(loss.backward(), pt.grad, dtype, "dpred")


@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_cross_entropy_from_logits(setting, targets, rng):
    backend, dtype = setting
    z = (rng.standard_normal((8, 5)) * 4).astype(dtype)
    y = rng.integers(0, 5, 8)
    target = y if targets == "labels" else np.eye(5, dtype=dtype)[y]
    loss = CrossEntropyLoss(backend=backend)
    zt = t(z, grad=True)
    ref = F.cross_entropy(zt, torch.tensor(y) if targets == "labels" else t(target))
    ref.backward()
    close(np.asarray(loss(z, target), dtype=dtype), ref, dtype, "loss")
    close(loss.backward(), zt.grad, dtype, "dlogits")


def test_cross_entropy_with_soft_targets_not_summing_to_one(setting, rng):
    """PyTorch's probability targets: -sum_k t_k log_softmax(z)_k, whatever the rows sum to."""
    backend, dtype = setting
    z = (rng.standard_normal((4, 3)) * 2).astype(dtype)
    target = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.1], [2.0, 0.0, 0.5]], dtype=dtype)
    loss = CrossEntropyLoss(backend=backend)
    zt = t(z, grad=True)
    ref = F.cross_entropy(zt, t(target))
    ref.backward()
    close(np.asarray(loss(z, target), dtype=dtype), ref, dtype, "loss")
    close(loss.backward(), zt.grad, dtype, "dlogits")


def test_cross_entropy_from_probabilities_through_softmax(setting, rng):
    backend, dtype = setting
    z = (rng.standard_normal((8, 5)) * 2).astype(dtype)
    y = rng.integers(0, 5, 8)
    softmax, loss = Softmax(backend=backend), CrossEntropyLoss(from_logits=False, backend=backend)
    zt = t(z, grad=True)
    pt = torch.softmax(zt, dim=1)
    pt.retain_grad()
    ref = F.nll_loss(torch.log(pt), torch.tensor(y))
    ref.backward()
    value = loss(softmax(z), y)
    dp = loss.backward()
    close(np.asarray(value, dtype=dtype), ref, dtype, "loss")
    close(dp, pt.grad, dtype, "dprobs")
    close(softmax.backward(dp), zt.grad, dtype, "dlogits")


def _pair(backend, dtype, act=Sigmoid, torch_act=torch.nn.Sigmoid):
    rng = np.random.default_rng(0)
    ours = Sequential(Linear(6, 8, rng=rng, backend=backend, dtype=dtype), act(backend=backend),
                      Linear(8, 4, rng=rng, backend=backend, dtype=dtype))
    ours[0].params["b"][:] = rng.standard_normal(8)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 8), torch_act(), torch.nn.Linear(8, 4)).to(TORCH_DTYPE[dtype])
    with torch.no_grad():
        for mine, theirs in ((ours[0], ref[0]), (ours[2], ref[2])):
            theirs.weight.copy_(t(mine.params["W"].T))
            theirs.bias.copy_(t(mine.params["b"]))
    return ours, ref


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_sequential_gradients(setting, act, rng):
    backend, dtype = setting
    ours, ref = _pair(backend, dtype, *((Sigmoid, torch.nn.Sigmoid) if act == "sigmoid" else (ReLU, torch.nn.ReLU)))
    x = rng.standard_normal((5, 6)).astype(dtype)
    y = rng.integers(0, 4, 5)
    loss = CrossEntropyLoss(backend=backend)
    xt = t(x, grad=True)
    out = ref(xt)
    ref_loss = F.cross_entropy(out, torch.tensor(y))
    ref_loss.backward()
    close(ours(x), out, dtype, "forward")
    close(np.asarray(loss(ours(x), y), dtype=dtype), ref_loss, dtype, "loss")
    close(ours.backward(loss.backward()), xt.grad, dtype, "dx")
    for i in (0, 2):
        close(ours[i].grads["W"], ref[i].weight.grad.T, dtype, f"layer {i} dW")
        close(ours[i].grads["b"], ref[i].bias.grad, dtype, f"layer {i} db")


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_steps(setting, momentum, rng):
    backend, dtype = setting
    ours, ref = _pair(backend, dtype)
    opt = SGD(ours.parameters(), lr=0.1, momentum=momentum)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=momentum)
    loss = CrossEntropyLoss(backend=backend)
    for _ in range(3):
        x = rng.standard_normal((5, 6)).astype(dtype)
        y = rng.integers(0, 4, 5)
        loss(ours(x), y)
        ours.backward(loss.backward())
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(ref(t(x)), torch.tensor(y)).backward()
        ref_opt.step()
    for i in (0, 2):
        close(ours[i].params["W"], ref[i].weight.T, dtype, f"layer {i} W after 3 steps")
        close(ours[i].params["b"], ref[i].bias, dtype, f"layer {i} b after 3 steps")
