"""gradcheck at ReLU kinks: the README's spiral example (x = 0 rows, b = 0) passes with a warning that says why,
and a wrong backward is still caught there."""
import warnings

import numpy as np
import pytest

from net import CrossEntropyLoss, Linear, ReLU, Sequential, gradcheck
from net.data import spiral
from net.gradcheck import KinkWarning


def _spiral_model(layer=Linear):
    rng = np.random.default_rng(0)
    return Sequential(layer(2, 100, init="kaiming_normal", rng=rng, dtype=np.float64), ReLU(),
                      Linear(100, 3, rng=rng, dtype=np.float64))


class _DoubledWeightGradient(Linear):
    """A wrong backward: dW twice too large."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] = 2 * self.grads["W"]
        return dx


def test_readme_spiral_example_passes_and_warns_about_the_kink():
    X, y = spiral(points_per_class=100, classes=3, rng=0)
    assert not X[0].any()                                   # the origin: pre-activation = b = 0 exactly
    with pytest.warns(KinkWarning, match=r"crossed a ReLU kink .*x = 0 with b = 0.*input: \d+ of \d+") as record:
        errors = gradcheck(_spiral_model(), CrossEntropyLoss(), X, y, rng=0)
    assert len(record) == 1
    assert max(errors.values()) < 1e-5, errors


def test_no_warning_away_from_kinks():
    X, y = spiral(points_per_class=100, classes=3, rng=0)
    model = _spiral_model()
    model.layers[0].params["b"][...] = 0.01                 # every pre-activation of the origin rows is 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        errors = gradcheck(model, CrossEntropyLoss(), X[1:40], y[1:40], rng=0)
    assert max(errors.values()) < 1e-5, errors


def test_a_wrong_gradient_is_still_reported_at_a_kink():
    X, y = spiral(points_per_class=100, classes=3, rng=0)
    with pytest.warns(KinkWarning):
        errors = gradcheck(_spiral_model(_DoubledWeightGradient), CrossEntropyLoss(), X, y, rng=0)
    assert errors["0._DoubledWeightGradient.W"] > 0.1
    assert max(v for k, v in errors.items() if k != "0._DoubledWeightGradient.W") < 1e-5


def test_small_arrays_entry_by_entry_at_an_exact_zero():
    """One sample at x = 0, b = 0: every entry of b crosses the kink, so b's error keeps them; x's do too."""
    model = Sequential(Linear(2, 3, rng=0, dtype=np.float64), ReLU(), Linear(3, 2, rng=1, dtype=np.float64))
    with pytest.warns(KinkWarning, match=r"0.Linear.b: 3 of 3 \(all: its error includes them\)"):
        gradcheck(model, CrossEntropyLoss(), np.zeros((1, 2)), np.array([1]))
