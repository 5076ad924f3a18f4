"""The losses against PyTorch (``pip install torch==2.13.0``): forward and backward, every reduction.

Each case builds the same inputs for both, runs ``forward``, then ``backward`` -- with an
upstream gradient of the output's shape for ``reduction="none"``, with none and with a
scalar one for ``"mean"``/``"sum"`` -- and compares values, gradients, shapes and dtypes on
both backends, float64 tightly and float32 with its own tolerance.  Edge cases: logits of
+-1e4 (BCEWithLogitsLoss, also with ``pos_weight``; CrossEntropyLoss with label smoothing), probabilities exactly 0 and
1 (BCELoss: PyTorch's -100 log floor and 1e-12 gradient floor), differences exactly +-delta
(HuberLoss) and exactly 0 (L1Loss: gradient 0), rows ignored by NLLLoss.
``.ci/run`` sets ``SCRATCHNET_REQUIRE_TORCH=1`` so that a missing torch fails CI.
"""
import os

import numpy as np
import pytest

if os.environ.get("SCRATCHNET_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from net import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,  # noqa: E402
                 Softmax)

pytestmark = pytest.mark.torch

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
#: float64: a few ulp; float32: the values summed in float64 here and in float32 by PyTorch
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


@pytest.fixture(params=[(b, d) for b in BACKENDS for d in DTYPES],
                ids=[f"{b}-{np.dtype(d).name}" for b in BACKENDS for d in DTYPES])
def setting(request):
    return request.param


def close(mine, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    mine = np.asarray(mine)
    assert mine.shape == theirs.shape, f"{what}: shape {mine.shape} vs torch {theirs.shape}"
    assert mine.dtype == theirs.dtype, f"{what}: dtype {mine.dtype} vs torch {theirs.dtype}"
    np.testing.assert_allclose(mine, theirs, **TOL[dtype], err_msg=what)


def check(ours, theirs, pred, target, dtype, rng, torch_target=None):
    """Forward and backward of ``ours`` against the torch module ``theirs`` on the same inputs."""
    reduction = ours.reduction
    value = ours(pred, target)
    pt = torch.tensor(pred, requires_grad=True)
    tt = torch.tensor(target) if torch_target is None else torch_target
    ref = theirs(pt, tt)
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == dtype
        close(value, ref, dtype, "loss")
        grad = rng.standard_normal(value.shape).astype(dtype)
        ref.backward(torch.tensor(grad))
        close(ours.backward(grad), pt.grad, dtype, "dpred (upstream grad)")
        pt.grad = None
        ref = theirs(pt, tt)
        ref.sum().backward()
        close(ours.backward(), pt.grad, dtype, "dpred (default grad: ones)")
    else:
        assert type(value) is float
        close(np.asarray(value, dtype=dtype), ref, dtype, "loss")
        ref.backward()
        close(ours.backward(), pt.grad, dtype, "dpred")
        pt.grad = None
        theirs(pt, tt).backward(torch.tensor(2.5, dtype=pt.dtype))
        close(ours.backward(2.5), pt.grad, dtype, "dpred (scalar grad 2.5)")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse(setting, reduction, rng):
    backend, dtype = setting
    pred, target = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    check(MSELoss(backend=backend, reduction=reduction), nn.MSELoss(reduction=reduction), pred, target, dtype, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_with_differences_exactly_zero(setting, reduction, rng):
    backend, dtype = setting
    pred, target = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    target[:, 1] = pred[:, 1]
    loss = L1Loss(backend=backend, reduction=reduction)
    check(loss, nn.L1Loss(reduction=reduction), pred, target, dtype, rng)
    assert (loss.backward()[:, 1] == 0).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.7, 3.0])
def test_huber_with_differences_exactly_delta(setting, reduction, delta, rng):
    backend, dtype = setting
    pred, target = (rng.standard_normal((6, 5)) * 2).astype(dtype), (rng.standard_normal((6, 5)) * 2).astype(dtype)
    target[:, 0] = 0
    pred[:, 0] = np.array([delta, -delta, delta, -delta, 0, 0], dtype=dtype)
    target[:, 1] = pred[:, 1]
    check(HuberLoss(reduction, delta, backend=backend), nn.HuberLoss(reduction=reduction, delta=delta), pred, target,
          dtype, rng)


def test_huber_default_delta_is_one(setting, rng):
    backend, dtype = setting
    pred, target = (rng.standard_normal((4, 3)) * 3).astype(dtype), np.zeros((4, 3), dtype)
    check(HuberLoss(backend=backend), nn.HuberLoss(), pred, target, dtype, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_probabilities_exactly_zero_and_one(setting, reduction, rng):
    backend, dtype = setting
    p = (1 / (1 + np.exp(-rng.standard_normal((6, 4))))).astype(dtype)
    t = rng.random((6, 4)).astype(dtype)
    p[:, 0] = [0, 0, 0, 1, 1, 1]
    t[:, 0] = [0, 1, 0.5, 0, 1, 0.5]
    t[:, 1] = [0, 1, 0, 1, 0, 1]
    check(BCELoss(backend=backend, reduction=reduction), nn.BCELoss(reduction=reduction), p, t, dtype, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_tiny_probabilities_use_log1p(setting, reduction, rng):
    """log(1 - p) for p ~ 1e-10 (float64) or 1e-5 (float32) must be log1p(-p), as PyTorch's."""
    backend, dtype = setting
    tiny = 1e-10 if dtype == np.float64 else 1e-5
    p = np.array([[tiny, 2 * tiny, 0.3], [1 - 0.5 ** 20, 5 * tiny, 0.9]], dtype=dtype)
    t = np.zeros_like(p)
    check(BCELoss(backend=backend, reduction=reduction), nn.BCELoss(reduction=reduction), p, t, dtype, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_at_plus_minus_1e4(setting, reduction, rng):
    backend, dtype = setting
    z = (rng.standard_normal((6, 4)) * 3).astype(dtype)
    t = rng.random((6, 4)).astype(dtype)
    z[:, 0] = [1e4, -1e4, 1e4, -1e4, 1e4, -1e4]
    t[:, 0] = [1, 0, 0, 1, 0.25, 0.25]
    loss = BCEWithLogitsLoss(backend=backend, reduction=reduction)
    check(loss, nn.BCEWithLogitsLoss(reduction=reduction), z, t, dtype, rng)
    if reduction == "none":
        np.testing.assert_array_equal(loss(z, t)[:4, 0], [0, 0, 1e4, 1e4])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_pos_weight(setting, reduction, rng):
    backend, dtype = setting
    z = (rng.standard_normal((6, 3)) * 3).astype(dtype)
    t = rng.random((6, 3)).astype(dtype)
    z[0], t[0] = [1e4, -1e4, 1e4], [1, 1, 0.5]
    pw = np.array([0.5, 2.0, 3.0])
    check(BCEWithLogitsLoss(backend=backend, reduction=reduction, pos_weight=pw),
          nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pw.astype(dtype))), z, t, dtype, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_labels_with_label_smoothing_and_logits_of_1e4(setting, reduction, smoothing, rng):
    backend, dtype = setting
    z = (rng.standard_normal((5, 4)) * 3).astype(dtype)
    z[0] = [1e4, -1e4, 0, 1e4]
    z[1] = [-1e4, -1e4, 1e4, 0]
    y = np.array([0, 1, 3, 2, 2])
    check(CrossEntropyLoss(backend=backend, reduction=reduction, label_smoothing=smoothing),
          nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing), z, y, dtype, rng,
          torch_target=torch.tensor(y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_with_label_smoothing(setting, reduction, smoothing, rng):
    """PyTorch smooths dense targets too, rows that do not sum to 1 included."""
    backend, dtype = setting
    z = (rng.standard_normal((4, 3)) * 3).astype(dtype)
    t = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 0.0]], dtype=dtype)
    check(CrossEntropyLoss(backend=backend, reduction=reduction, label_smoothing=smoothing),
          nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing), z, t, dtype, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_on_probabilities_with_label_smoothing_matches_torch_on_logits(setting, reduction, rng):
    """from_logits=False after a Softmax layer: the same loss and logits gradient as PyTorch's
    CrossEntropyLoss(label_smoothing=0.1) on the logits."""
    backend, dtype = setting
    z = (rng.standard_normal((5, 4)) * 2).astype(dtype)
    y = np.array([0, 1, 3, 2, 2])
    softmax = Softmax(backend=backend)
    loss = CrossEntropyLoss(from_logits=False, backend=backend, reduction=reduction, label_smoothing=0.1)
    value = loss(softmax(z), y)
    zt = torch.tensor(z, requires_grad=True)
    ref = nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1)(zt, torch.tensor(y))
    close(np.asarray(value, dtype=dtype), ref, dtype, "loss")
    ref.sum().backward()
    close(softmax.backward(loss.backward()), zt.grad, dtype, "dlogits")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_nll_with_ignored_rows(setting, reduction, ignore_index, rng):
    backend, dtype = setting
    z = rng.standard_normal((6, 4))
    logp = (z - np.log(np.exp(z).sum(1, keepdims=True))).astype(dtype)
    y = np.array([0, ignore_index, 3, 2, ignore_index, 1])
    check(NLLLoss(ignore_index=ignore_index, backend=backend, reduction=reduction),
          nn.NLLLoss(ignore_index=ignore_index, reduction=reduction), logp, y, dtype, rng,
          torch_target=torch.tensor(y))


def test_nll_with_every_row_ignored_is_nan_with_zero_gradient(setting):
    backend, dtype = setting
    logp = np.log(np.full((3, 4), 0.25, dtype))
    y = np.full(3, -100)
    loss = NLLLoss(backend=backend)
    pt = torch.tensor(logp, requires_grad=True)
    ref = nn.NLLLoss()(pt, torch.tensor(y))
    ref.backward()
    assert np.isnan(loss(logp, y)) and torch.isnan(ref)
    close(loss.backward(), pt.grad, dtype, "dlogp")
