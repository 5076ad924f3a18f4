"""The issue-13 losses and reductions: finite-difference gradients, label smoothing, errors,
``backward(grad)``, the fused kernels' fallback and training with the layer-by-layer loop.

Gradients are checked in float64 against central differences of the reduced loss (for
``reduction="none"``: of ``sum(g * loss)`` for a random upstream ``g``), entry by entry.
"""
import re

import numpy as np
import pytest

from net import (SGD, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, Linear, MSELoss, NLLLoss,
                 Sequential, Softmax, fit)
from net import fused as fused_path
from net.losses import REDUCTIONS

BACKENDS = ["numpy", "numba"]
STEP = 1e-6


def _logp(rng, B, K):
    z = rng.standard_normal((B, K))
    return z - np.log(np.exp(z).sum(1, keepdims=True))


#: name -> (make loss(reduction, backend), make (pred, target)(rng)); predictions away from
#: kinks (BCE's 0 and 1) so that central differences measure the gradient.
CASES = {
    "mse": (lambda r, b: MSELoss(backend=b, reduction=r),
            lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))),
    "mse-labels": (lambda r, b: MSELoss(backend=b, reduction=r),
                   lambda rng: (rng.standard_normal((3, 4)), np.array([0, 3, 1]))),
    "l1": (lambda r, b: L1Loss(backend=b, reduction=r),
           lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))),
    "huber": (lambda r, b: HuberLoss(r, 0.8, backend=b),
              lambda rng: (rng.standard_normal((3, 4)) * 2, rng.standard_normal((3, 4)))),
    "bce": (lambda r, b: BCELoss(backend=b, reduction=r),
            lambda rng: (rng.uniform(0.05, 0.95, (3, 4)), rng.random((3, 4)))),
    "bce-1d": (lambda r, b: BCELoss(backend=b, reduction=r),
               lambda rng: (rng.uniform(0.05, 0.95, 5), rng.integers(0, 2, 5).astype(float))),
    "bce_with_logits": (lambda r, b: BCEWithLogitsLoss(backend=b, reduction=r),
                        lambda rng: (rng.standard_normal((3, 4)) * 3, rng.random((3, 4)))),
    "bce_with_logits-pos_weight": (lambda r, b: BCEWithLogitsLoss(backend=b, reduction=r, pos_weight=[0.3, 1, 2, 5]),
                                   lambda rng: (rng.standard_normal((3, 4)) * 3, rng.random((3, 4)))),
    "ce": (lambda r, b: CrossEntropyLoss(backend=b, reduction=r),
           lambda rng: (rng.standard_normal((3, 4)) * 2, np.array([0, 3, 1]))),
    "ce-smoothing": (lambda r, b: CrossEntropyLoss(backend=b, reduction=r, label_smoothing=0.15),
                     lambda rng: (rng.standard_normal((3, 4)) * 2, np.array([0, 3, 1]))),
    "ce-smoothing-dense": (lambda r, b: CrossEntropyLoss(backend=b, reduction=r, label_smoothing=0.3),
                           lambda rng: (rng.standard_normal((3, 4)) * 2, rng.random((3, 4)))),
    "ce-probs-smoothing": (lambda r, b: CrossEntropyLoss(from_logits=False, backend=b, reduction=r,
                                                         label_smoothing=0.15),
                           lambda rng: (rng.dirichlet(np.ones(4), 3), np.array([0, 3, 1]))),
    "nll": (lambda r, b: NLLLoss(backend=b, reduction=r),
            lambda rng: (_logp(rng, 4, 3), np.array([0, -100, 2, 1]))),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_gradient_matches_central_differences(case, reduction, backend, rng):
    make_loss, make_data = CASES[case]
    loss = make_loss(reduction, backend)
    pred, target = make_data(rng)
    out = loss(pred, target)
    g = rng.standard_normal(np.shape(out)) if reduction == "none" else None

    def objective(p):
        value = loss.forward(p, target)
        return float(np.sum(g * value)) if g is not None else value

    objective(pred)
    grad = loss.backward(g)
    assert grad.shape == pred.shape and grad.dtype == np.float64
    numeric = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[i] += STEP
        down[i] -= STEP
        numeric[i] = (objective(up) - objective(down)) / (2 * STEP)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_reductions_agree_with_each_other(case, backend, rng):
    """'none' returns the terms, 'sum' their sum, 'mean' their mean (over the batch for the
    cross-entropies, over the rows not ignored for NLL); backward() of 'none' is that of 'sum'."""
    make_loss, make_data = CASES[case]
    pred, target = make_data(rng)
    none, total, mean = (make_loss(r, backend) for r in ("none", "sum", "mean"))
    terms = none(pred, target)
    rows = case.startswith(("ce", "nll"))
    assert isinstance(terms, np.ndarray) and terms.shape == (pred.shape[:1] if rows else pred.shape)
    count = np.sum(np.asarray(target) != -100) if case == "nll" else (pred.shape[0] if rows else pred.size)
    assert np.isclose(total(pred, target), terms.sum(), rtol=1e-13)
    assert np.isclose(mean(pred, target), terms.sum() / count, rtol=1e-13)
    np.testing.assert_allclose(none.backward(), total.backward(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(mean.backward(), total.backward() / count, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_in_float32_out(backend, dtype, rng):
    pred, t = rng.uniform(0.05, 0.95, (4, 3)).astype(dtype), rng.random((4, 3)).astype(dtype)
    for loss in (BCELoss(backend=backend, reduction="none"), BCEWithLogitsLoss(backend=backend, reduction="none"),
                 L1Loss(backend=backend, reduction="none"), HuberLoss("none", backend=backend)):
        assert loss(pred, t).dtype == dtype and loss.backward().dtype == dtype
    nll = NLLLoss(backend=backend, reduction="none")
    assert nll(np.log(pred), [0, 1, 2, 0]).dtype == dtype and nll.backward().dtype == dtype
    ce = CrossEntropyLoss(backend=backend, reduction="none", label_smoothing=0.1)
    assert ce(pred, [0, 1, 2, 0]).dtype == dtype and ce.backward().dtype == dtype


@pytest.mark.parametrize("backend", BACKENDS)
def test_label_smoothing_is_the_mix_of_the_label_loss_and_the_uniform_one(backend, rng):
    """(1 - eps) CE(z, y) + eps mean_k(-log softmax(z)_k): PyTorch's formula, written independently."""
    z, y, eps = rng.standard_normal((5, 4)) * 2, np.array([0, 3, 1, 1, 2]), 0.2
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    expected = np.mean((1 - eps) * -logp[np.arange(5), y] + eps * -logp.mean(1))
    assert np.isclose(CrossEntropyLoss(backend=backend, label_smoothing=eps)(z, y), expected, rtol=1e-13)
    # the probabilities path with the same smoothing, through a Softmax layer
    softmax = Softmax(backend=backend)
    probs = CrossEntropyLoss(from_logits=False, backend=backend, label_smoothing=eps)
    assert np.isclose(probs(softmax(z), y), expected, rtol=1e-12)
    logits = CrossEntropyLoss(backend=backend, label_smoothing=eps)
    logits(z, y)
    np.testing.assert_allclose(softmax.backward(probs.backward()), logits.backward(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nll_of_log_softmax_is_cross_entropy(backend, rng):
    z, y = rng.standard_normal((5, 4)) * 2, np.array([0, 3, 1, 1, 2])
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    nll, ce = NLLLoss(backend=backend), CrossEntropyLoss(backend=backend)
    assert np.isclose(nll(logp, y), ce(z, y), rtol=1e-13)
    g = nll.backward()
    np.testing.assert_allclose(g, -np.eye(4)[y] / 5)


# ---- errors ----------------------------------------------------------------------------------

ALL_LOSSES = [MSELoss, CrossEntropyLoss, NLLLoss, L1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss]


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=lambda c: c.__name__)
def test_unknown_reduction_lists_the_choices(cls):
    with pytest.raises(ValueError, match=re.escape(f"{cls.__name__}: reduction must be one of 'mean', 'sum', "
                                                   "'none', got 'avg'")):
        cls(reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        cls(reduction=None)


@pytest.mark.parametrize("cls", [L1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss], ids=lambda c: c.__name__)
def test_elementwise_losses_need_a_target_of_the_predictions_shape(cls):
    loss = cls()
    with pytest.raises(ValueError, match=re.escape(f"{cls.__name__}(): expected target of shape (3, 4) (the "
                                                   "predictions' shape), got (3, 5)")):
        loss(np.full((3, 4), 0.5), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=re.escape("expected target of shape (3, 4) (the predictions' shape), got "
                                                   "(3,)")):
        loss(np.full((3, 4), 0.5), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"at least one axis and one entry, got shape \(0, 4\)"):
        loss(np.zeros((0, 4)), np.zeros((0, 4)))


def test_bce_rejects_values_outside_zero_one_as_torch():
    loss = BCELoss()
    with pytest.raises(ValueError, match=r"BCELoss\(\): probabilities must lie in \[0, 1\], got 1.5 \(for logits"):
        loss(np.array([[0.5, 1.5]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\], got -0.25"):
        loss(np.array([[0.5, -0.25]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\], got 2.0"):
        loss(np.array([[0.5, 0.5]]), np.array([[0.0, 2.0]]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\], got nan"):
        loss(np.array([[0.5, 0.5]]), np.array([[0.0, np.nan]]))
    # a NaN probability (a diverged model) gives a NaN loss, which fit reports as divergence
    assert np.isnan(loss(np.array([[0.5, np.nan]]), np.array([[0.0, 1.0]])))
    assert BCEWithLogitsLoss()(np.array([[3.0]]), np.array([[2.0]])) == pytest.approx(3 - 6 + np.log1p(np.exp(-3)))


def test_constructor_arguments_are_checked():
    for delta in (0, -1.0, np.inf, np.nan, "1"):
        with pytest.raises(ValueError, match="HuberLoss: delta must be a positive number"):
            HuberLoss(delta=delta)
    for eps in (-0.1, 1.5, np.nan, True):
        with pytest.raises(ValueError, match=r"CrossEntropyLoss: label_smoothing must lie in \[0, 1\]"):
            CrossEntropyLoss(label_smoothing=eps)
    with pytest.raises(TypeError, match="NLLLoss: ignore_index must be an integer, got float"):
        NLLLoss(ignore_index=1.5)


def test_pos_weight_must_broadcast_to_the_predictions():
    with pytest.raises(ValueError, match=re.escape("pos_weight of shape (3,) does not broadcast to the predictions' "
                                                   "shape (2, 4) (e.g. give one weight per class, (4,))")):
        BCEWithLogitsLoss(pos_weight=[1, 2, 3])(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="pos_weight must be a real array with at least one axis"):
        BCEWithLogitsLoss(pos_weight=2.0)
    assert repr(BCEWithLogitsLoss(pos_weight=[1.0, 2.0])) == "BCEWithLogitsLoss(pos_weight=[1.0, 2.0])"


def test_nll_targets():
    loss, logp = NLLLoss(), np.log(np.full((3, 4), 0.25))
    with pytest.raises(TypeError, match=r"NLLLoss\(\): expected \(3,\) integer class labels .* got float64 of "
                                        r"shape \(3, 4\)"):
        loss(logp, np.eye(4)[[0, 1, 2]])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) or equal ignore_index=-100, got 4"):
        loss(logp, [0, 4, 1])
    with pytest.raises(ValueError, match=r"or equal ignore_index=-100, got -1"):
        loss(logp, [0, -1, 1])
    with pytest.raises(ValueError, match="expected 3 labels to match predictions, got 2"):
        loss(logp, [0, 1])
    assert np.isclose(NLLLoss(ignore_index=7)(logp, [7, 1, 7]), np.log(4))


def test_backward_grad_must_fit_the_reduction(rng):
    pred, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    none = L1Loss(reduction="none")
    none(pred, t)
    with pytest.raises(ValueError, match=re.escape("L1Loss(reduction='none').backward: grad must have the shape "
                                                   "of forward's output (3, 4), got (3,)")):
        none.backward(np.ones(3))
    ce = CrossEntropyLoss(reduction="none")
    ce(pred, [0, 1, 2])
    with pytest.raises(ValueError, match=re.escape("grad must have the shape of forward's output (3,), got (3, 4)")):
        ce.backward(np.ones((3, 4)))
    mean = MSELoss()
    mean(pred, t)
    with pytest.raises(ValueError, match=r"with reduction='mean' the loss is a scalar, so grad must be a scalar or "
                                         r"None, got an array of shape \(3, 4\)"):
        mean.backward(np.ones((3, 4)))
    np.testing.assert_allclose(mean.backward(np.float64(3.0)), 3 * mean.backward())


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=lambda c: c.__name__)
def test_backward_before_forward(cls):
    with pytest.raises(RuntimeError, match="before forward"):
        cls().backward()


def test_repr_shows_the_arguments_that_differ_from_the_defaults():
    assert repr(MSELoss()) == "MSELoss()" and repr(CrossEntropyLoss()) == "CrossEntropyLoss(from_logits=True)"
    assert repr(CrossEntropyLoss(reduction="sum", label_smoothing=0.1)) == \
        "CrossEntropyLoss(from_logits=True, reduction='sum', label_smoothing=0.1)"
    assert repr(HuberLoss("none", 2.0)) == "HuberLoss(reduction='none', delta=2.0)"
    assert repr(NLLLoss(ignore_index=3)) == "NLLLoss(ignore_index=3)"
    assert repr(BCELoss(reduction="sum")) == "BCELoss(reduction='sum')"


# ---- the fused kernels and the training loop -------------------------------------------------

def _model(backend="numba", K=3, seed=0):
    return Sequential(Linear(4, 5, backend=backend, dtype=np.float64, rng=seed), Linear(5, K, backend=backend,
                                                                                       dtype=np.float64,
                                                                                       rng=seed + 1))


@pytest.mark.parametrize("loss", [CrossEntropyLoss(label_smoothing=0.1), CrossEntropyLoss(reduction="sum"),
                                  MSELoss(reduction="sum"), CrossEntropyLoss(from_logits=False),
                                  BCEWithLogitsLoss(), NLLLoss()], ids=repr)
def test_fused_kernels_take_only_what_they_compute_exactly(loss, rng):
    """Anything but CrossEntropyLoss(from_logits=True) / MSELoss with reduction 'mean' and no
    label smoothing falls back to the layer loop (the kernels compute the plain batch mean)."""
    model = _model()
    reason = fused_path.plan(model, loss, batch_size=1)
    assert isinstance(reason, str) and repr(loss) in reason
    X, y = rng.standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    target = y if isinstance(loss, (CrossEntropyLoss, NLLLoss)) else np.eye(3)[y]
    with pytest.raises(ValueError, match=re.escape(f"fit: fused=True needs a fused kernel, but the fused kernels "
                                                   f"support CrossEntropyLoss(from_logits=True) (label_smoothing=0, "
                                                   f"reduction='mean') and MSELoss(reduction='mean'), not {loss!r}")):
        fit(model, loss, X, target, fused=True, batch_size=2)
    assert fit(model, loss, X, target, batch_size=2).path == "layers"


def test_the_plain_losses_still_take_the_fused_kernels():
    for loss in (CrossEntropyLoss(), MSELoss(), CrossEntropyLoss(label_smoothing=0.0, reduction="mean")):
        assert isinstance(fused_path.plan(_model(), loss, batch_size=1), fused_path.FusedPlan)


def test_fit_refuses_reduction_none(rng):
    X, y = rng.standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    for fused in (None, False):
        with pytest.raises(ValueError, match=re.escape("fit: the loss must be a scalar to train on, but "
                                                       "CrossEntropyLoss(from_logits=True, reduction='none') has "
                                                       "reduction='none'")):
            fit(_model(), CrossEntropyLoss(reduction="none"), X, y, fused=fused)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_trains_as_mean_with_the_learning_rate_times_the_batch(backend, rng):
    """Full batch: SGD on the sum with lr / (N K) takes the steps of SGD on the mean (over all
    N K elements) with lr; the history of 'sum' is the epoch's summed loss / N, K times 'mean's."""
    X, y = rng.standard_normal((8, 4)), rng.random((8, 3))
    runs = {}
    for reduction, lr in (("mean", 0.3), ("sum", 0.3 / 24)):
        model = _model(backend)
        history = fit(model, BCEWithLogitsLoss(reduction=reduction, backend=backend), X, y, batch_size=None,
                      epochs=3, lr=lr, fused=False)
        runs[reduction] = (history, [p.value.copy() for p in model.parameters()])
    for a, b in zip(runs["mean"][1], runs["sum"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    K = 3
    np.testing.assert_allclose(np.asarray(runs["sum"][0]) / K, runs["mean"][0], rtol=1e-12)


@pytest.mark.parametrize("make_loss,target", [
    (lambda b: BCEWithLogitsLoss(backend=b), "dense01"), (lambda b: L1Loss(backend=b), "dense"),
    (lambda b: HuberLoss(delta=0.5, backend=b), "dense"), (lambda b: CrossEntropyLoss(label_smoothing=0.1,
                                                                                       backend=b), "labels"),
    (lambda b: MSELoss(reduction="sum", backend=b), "dense"),
], ids=["bce_with_logits", "l1", "huber", "ce-smoothing", "mse-sum"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_layer_loop_trains_with_the_new_losses(make_loss, target, backend, rng):
    X = rng.standard_normal((64, 4))
    W = rng.standard_normal((4, 3))
    y = {"dense01": (X @ W > 0).astype(float), "dense": X @ W * 0.5,
         "labels": np.argmax(X @ W, axis=1)}[target]
    model = _model(backend)
    loss = make_loss(backend)
    lr = 0.05 / (8 * 3) if loss.reduction == "sum" else 0.05       # the sum's gradient is B K times the mean's
    history = fit(model, loss, X, y, batch_size=8, epochs=15, lr=lr, rng=0)
    assert history.path == "layers" and np.all(np.isfinite(history))
    assert history[-1] < 0.7 * history[0]


def test_training_diverges_with_a_clear_error_not_a_bce_range_error(rng):
    """BCELoss on a Sigmoid output that became NaN: fit reports divergence (TrainingDivergedError)."""
    from net import Sigmoid, TrainingDivergedError

    X, y = rng.standard_normal((16, 4)), rng.integers(0, 2, (16, 3)).astype(float)
    model = Sequential(Linear(4, 3, dtype=np.float64, rng=0), Sigmoid())
    model[0].params["W"][1, 2] = np.nan
    with pytest.raises(TrainingDivergedError, match="loss became nan in epoch 1 at sample"):
        fit(model, BCELoss(), X, y, epochs=1, batch_size=4, optimizer=SGD(model.parameters(), lr=0.1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_logits_keeps_every_digit_at_logits_of_1e4(backend, dtype):
    """logsumexp(z) - z_y for z = (1e4, -1e4, 0, 1e4), y = 0 is log 2; computed as (m + log 2) - 1e4
    the float32 kernel lost three digits (0.69336); (m - z_y) + log(sum) is exact to rounding."""
    from kernels import get_backend

    ops = get_backend(backend)
    z = np.array([[1e4, -1e4, 0, 1e4], [-1e4, 1e4, 0, 0]], dtype=dtype)
    expected = np.array([np.log(2), 0.0])
    for y in (np.array([0, 1]), np.eye(4, dtype=dtype)[[0, 1]]):
        got = ops.cross_entropy_logits(z, y)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=np.finfo(dtype).eps * 4, atol=np.finfo(dtype).tiny)


def test_fit_trains_nll_with_ignored_rows_and_still_checks_the_others(rng):
    """fit's up-front label check refused ignore_index (-100) for NLLLoss; ignored rows must not
    move the weights (the same steps as training without them, full batch)."""
    X = rng.standard_normal((6, 4))
    y = np.array([0, 1, -100, 2, -100, 1])
    keep = y != -100
    with_ignored, without = _model("numpy"), _model("numpy")
    fit(with_ignored, NLLLoss(backend="numpy"), X, y, batch_size=None, epochs=3, lr=0.1, fused=False)
    fit(without, NLLLoss(backend="numpy"), X[keep], y[keep], batch_size=None, epochs=3, lr=0.1, fused=False)
    for a, b in zip(with_ignored.parameters(), without.parameters()):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=re.escape("fit: labels must lie in [0, 3) (or equal the loss's "
                                                   "ignore_index=-100) for a model with 3 outputs, got min 0 and "
                                                   "max 3")):
        fit(_model("numpy"), NLLLoss(backend="numpy"), X, np.array([0, 1, -100, 3, -100, 1]), fused=False)
