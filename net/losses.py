"""Losses with PyTorch's names, arguments, defaults and semantics.

Every loss has ``forward(pred, target)`` and ``backward(grad=None) -> dpred``, and takes
``reduction="mean" | "sum" | "none"`` (PyTorch's meaning):

* ``"mean"`` (default): a Python float; the mean over all elements for the elementwise
  losses (:class:`MSELoss`, :class:`L1Loss`, :class:`HuberLoss`, :class:`BCELoss`,
  :class:`BCEWithLogitsLoss`), over the batch for :class:`CrossEntropyLoss` and
  :class:`NLLLoss` (over the rows not ignored, for ``NLLLoss(ignore_index=...)``);
* ``"sum"``: a Python float, the sum of the same terms;
* ``"none"``: the unreduced losses as an array of pred's dtype -- pred's shape for the
  elementwise losses, ``(B,)`` for the cross-entropies.

Sums and means accumulate in float64.  ``backward(grad)`` takes the upstream gradient of
what ``forward`` returned: for ``"mean"``/``"sum"`` a scalar (default 1), for ``"none"`` an
array of the forward output's shape (default ones, i.e. the gradient of the sum), so
``loss.backward()`` works for every reduction.  It returns ``d(loss)/d(pred)`` with pred's
shape and dtype.

Targets: :class:`CrossEntropyLoss` and :class:`MSELoss` take integer class labels ``(B,)``
or dense targets ``(B, K)``; :class:`NLLLoss` labels only; the other losses a target of
pred's shape.
"""
from __future__ import annotations

import numpy as np

from .backend import BackendUser
from .checks import as_float_array, as_targets, require_2d
from kernels.reference import EPS

#: Valid values of every loss's ``reduction``.
REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, who: str) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{who}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    return reduction


class Loss(BackendUser):
    """Base class: backend handling, ``reduction``, ``__call__`` and the forward-before-backward check."""

    def __init__(self, backend: str | None = None, reduction: str = "mean"):
        self._cache = None
        self.backend = backend
        self.reduction = _check_reduction(reduction, type(self).__name__)

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def _extras(self) -> str:
        """``", reduction='sum'"`` for the repr when it is not the default."""
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._extras()})"

    def _prepare(self, pred, target):
        pred = as_float_array(pred, repr(self))
        require_2d(pred, repr(self))
        B, K = pred.shape
        return pred, as_targets(target, B, K, pred.dtype, repr(self))

    def _prepare_same_shape(self, pred, target):
        """pred (any shape, at least one entry) and a float target of exactly its shape."""
        pred = as_float_array(pred, repr(self))
        if pred.ndim == 0 or pred.size == 0:
            raise ValueError(f"{self!r} expected predictions with at least one axis and one entry, got shape "
                             f"{pred.shape}")
        t = np.asarray(target)
        if t.shape != pred.shape:
            raise ValueError(f"{self!r}: expected target of shape {pred.shape} (the predictions' shape), "
                             f"got {t.shape}")
        return pred, as_float_array(t, repr(self), pred.dtype)

    def _reduce(self, values: np.ndarray, count: int | None = None):
        """The unreduced ``values`` -> float mean (over ``count``, default all of them) or sum, or themselves."""
        if self.reduction == "none":
            return values
        total = np.sum(values, dtype=np.float64)
        if self.reduction == "sum":
            return float(total)
        n = values.size if count is None else count
        return float(total / n) if n else float("nan")

    def _upstream(self, d: np.ndarray, grad, scale: float = 1.0, rows: bool = False) -> np.ndarray:
        """Apply the upstream gradient to ``d`` (a fresh array, updated in place) and return it.

        ``d`` is the gradient of the unreduced loss times ``scale`` (e.g. ``1/n`` for a mean).
        With ``rows`` the unreduced loss is per row and an array ``grad`` (B,) scales d's rows.
        """
        if self.reduction == "none":
            shape = d.shape[:1] if rows else d.shape
            if grad is not None:
                g = np.asarray(grad)
                if g.shape != shape:
                    raise ValueError(f"{self!r}.backward: grad must have the shape of forward's output {shape}, "
                                     f"got {g.shape}")
                g = as_float_array(g, f"{self!r}.backward", d.dtype)
                if scale != 1:
                    g = g * d.dtype.type(scale)
                d *= g[:, None] if rows else g
            elif scale != 1:
                d *= d.dtype.type(scale)
            return d
        if grad is not None:
            if np.ndim(grad) != 0:
                raise ValueError(f"{self!r}.backward: with reduction={self.reduction!r} the loss is a scalar, so "
                                 f"grad must be a scalar or None, got an array of shape {np.shape(grad)}")
            scale = float(grad) * scale
        if scale != 1:
            d *= d.dtype.type(scale)
        return d


class MSELoss(Loss):
    """Squared error ``(pred - target)^2``, PyTorch's ``MSELoss`` (mean over all entries by default).

    pred : (B, K); target : (B, K), or labels (B,) taken as one-hot rows.
    ``reduction="none"`` gives the (B, K) squares (computed in NumPy on both backends: the
    ``mse`` kernel returns row means).
    """

    def __init__(self, backend: str | None = None, *, reduction: str = "mean"):
        super().__init__(backend, reduction)

    def forward(self, pred, target):
        pred, t = self._prepare(pred, target)
        if t.ndim == 1:
            t = np.eye(pred.shape[1], dtype=pred.dtype)[t]
        self._cache = (pred, t)
        if self.reduction == "mean":
            return self._reduce(self.ops.mse(pred, t))
        d = pred - t
        return self._reduce(d * d)

    def backward(self, grad=None):
        """-> dpred : (B, K), dtype of pred."""
        pred, t = self._saved()
        if self.reduction == "mean":
            return self._upstream(self.ops.mse_backward(pred, t), grad)
        d = pred - t
        d *= pred.dtype.type(2)
        return self._upstream(d, grad)


class CrossEntropyLoss(Loss):
    """Cross-entropy, PyTorch's ``CrossEntropyLoss`` (mean over the batch by default).

    ``from_logits=True`` (default, as PyTorch): ``pred`` are logits; the loss is
    computed by log-sum-exp and the gradient is the fused ``(softmax(z) - t) / B``.

    ``from_logits=False``: ``pred`` are probabilities from a :class:`~net.Softmax`
    layer; the loss is ``-log(clip(p_y, eps, 1))`` and the gradient ``-t / (B p)``
    flows back through the Softmax layer's Jacobian product (the tutorials' path).
    Both paths give the same gradient w.r.t. the logits.

    ``label_smoothing`` ``eps`` in [0, 1] (PyTorch's): the target becomes
    ``(1 - eps) t + eps / K`` -- ``t`` the one-hot rows of labels, or the dense targets
    as given (PyTorch smooths probability targets the same way).  With
    ``from_logits=False`` the same smoothed target multiplies ``log(clip(p, eps, 1))``,
    so both paths still agree (up to the clip).
    """

    def __init__(self, from_logits: bool = True, eps: float = EPS, backend: str | None = None, *,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(backend, reduction)
        self.from_logits = bool(from_logits)
        if not 0 < eps < 1:
            raise ValueError(f"CrossEntropyLoss: eps must lie in (0, 1), got {eps}")
        self.eps = float(eps)
        if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, (int, float, np.number)) \
                or not 0 <= label_smoothing <= 1:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def __repr__(self) -> str:
        extras = [self._extras()] if self.reduction != "mean" else []
        if self.label_smoothing:
            extras.append(f"label_smoothing={self.label_smoothing}")
        return f"CrossEntropyLoss(from_logits={self.from_logits}{''.join(', ' + e for e in extras)})"

    def _smoothed(self, t, K: int, dtype) -> np.ndarray:
        """``(1 - eps) t + eps / K`` as dense (B, K) targets of ``dtype`` (labels one-hot first)."""
        if t.ndim == 1:
            t = np.eye(K, dtype=dtype)[t]
        eps = self.label_smoothing
        return t * dtype.type(1 - eps) + dtype.type(eps / K)

    def forward(self, pred, target):
        pred, t = self._prepare(pred, target)
        if self.label_smoothing:
            t = self._smoothed(t, pred.shape[1], pred.dtype)
        self._cache = (pred, t)
        if self.from_logits:
            return self._reduce(self.ops.cross_entropy_logits(pred, t))
        return self._reduce(self.ops.cross_entropy(pred, t, self.eps))

    def backward(self, grad=None):
        """-> dpred : (B, K): d(loss)/d(logits) or d(loss)/d(probabilities)."""
        pred, t = self._saved()
        if self.from_logits:
            d = self.ops.softmax_cross_entropy_backward(self.ops.softmax(pred), t)
        else:
            d = self.ops.cross_entropy_backward(pred, t, self.eps)
        # the kernels return the gradient of the batch mean: times B for a sum or per-row losses
        return self._upstream(d, grad, 1.0 if self.reduction == "mean" else float(pred.shape[0]), rows=True)


class NLLLoss(Loss):
    """Negative log-likelihood of labels, PyTorch's ``NLLLoss``: ``-logp[i, y_i]`` (mean over the batch).

    logp : (B, K) log-probabilities (e.g. from a log-softmax); target : (B,) integer labels
    in ``[0, K)``, or ``ignore_index`` (default -100, as PyTorch): those rows give loss 0 and
    gradient 0, and ``"mean"`` divides by the number of rows *not* ignored (NaN if all are,
    as PyTorch).  PyTorch's ``weight`` is not supported.
    """

    def __init__(self, *, ignore_index: int = -100, reduction: str = "mean", backend: str | None = None):
        super().__init__(backend, reduction)
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"NLLLoss: ignore_index must be an integer, got {type(ignore_index).__name__}")
        self.ignore_index = int(ignore_index)

    def _extras(self) -> str:
        extras = [super()._extras()] if self.reduction != "mean" else []
        if self.ignore_index != -100:
            extras.append(f"ignore_index={self.ignore_index}")
        return ", ".join(extras)

    def forward(self, logp, target):
        logp = as_float_array(logp, repr(self))
        require_2d(logp, repr(self))
        B, K = logp.shape
        y = np.asarray(target)
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: expected ({B},) integer class labels (PyTorch's NLLLoss takes no dense "
                            f"targets; use CrossEntropyLoss for those), got {y.dtype} of shape {y.shape}")
        if y.shape[0] != B:
            raise ValueError(f"{self!r}: expected {B} labels to match predictions, got {y.shape[0]}")
        keep = y != self.ignore_index
        bad = keep & ((y < 0) | (y >= K))
        if bad.any():
            raise ValueError(f"{self!r}: labels must lie in [0, {K}) or equal ignore_index={self.ignore_index}, "
                             f"got {y[bad][0]}")
        labels = np.where(keep, y, 0).astype(np.int64)
        self._cache = (logp, labels, keep)
        rows = self.ops.nll(logp, labels)
        if not keep.all():
            rows[~keep] = 0
        return self._reduce(rows, count=int(keep.sum()))

    def backward(self, grad=None):
        """-> dlogp : (B, K), dtype of logp."""
        logp, labels, keep = self._saved()
        d = self.ops.nll_backward(logp, labels)
        if not keep.all():
            d[~keep] = 0
        count = int(keep.sum())
        return self._upstream(d, grad, 1.0 / max(count, 1) if self.reduction == "mean" else 1.0, rows=True)


class _ElementwiseLoss(Loss):
    """A loss computed entry by entry: pred and target of one shape, kernels ``_kernel``/``_kernel_backward``."""

    _kernel = ""

    def _args(self) -> tuple:
        return ()

    def _check_values(self, pred, t) -> None:
        pass

    def forward(self, pred, target):
        pred, t = self._prepare_same_shape(pred, target)
        self._check_values(pred, t)
        self._cache = (pred, t)
        return self._reduce(self._terms(pred, t))

    def backward(self, grad=None):
        """-> dpred : pred's shape and dtype."""
        pred, t = self._saved()
        return self._upstream(self._grad(pred, t), grad, 1.0 / pred.size if self.reduction == "mean" else 1.0)

    def _terms(self, pred, t) -> np.ndarray:
        """The unreduced loss (a fresh array)."""
        return getattr(self.ops, self._kernel)(pred, t, *self._args())

    def _grad(self, pred, t) -> np.ndarray:
        """Its elementwise gradient (a fresh array)."""
        return getattr(self.ops, self._kernel + "_backward")(pred, t, *self._args())


class L1Loss(_ElementwiseLoss):
    """Absolute error ``|pred - target|``, PyTorch's ``L1Loss``; the gradient is ``sign(pred - target)``
    (0 where they are equal).  pred : any shape; target : pred's shape."""

    _kernel = "l1"

    def __init__(self, *, reduction: str = "mean", backend: str | None = None):
        super().__init__(backend, reduction)


class HuberLoss(_ElementwiseLoss):
    """Huber loss, PyTorch's ``HuberLoss(reduction="mean", delta=1.0)``.

    With ``d = pred - target``: ``d^2 / 2`` where ``|d| < delta``, else ``delta (|d| - delta/2)``;
    the gradient is ``d`` clipped to ``[-delta, delta]``.  pred : any shape; target : pred's shape.
    """

    _kernel = "huber"

    def __init__(self, reduction: str = "mean", delta: float = 1.0, *, backend: str | None = None):
        super().__init__(backend, reduction)
        if isinstance(delta, (bool, np.bool_)) or not isinstance(delta, (int, float, np.number)) \
                or not 0 < delta < np.inf:
            raise ValueError(f"HuberLoss: delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    def _extras(self) -> str:
        extras = [super()._extras()] if self.reduction != "mean" else []
        if self.delta != 1.0:
            extras.append(f"delta={self.delta}")
        return ", ".join(extras)

    def _args(self) -> tuple:
        return (self.delta,)


class BCELoss(_ElementwiseLoss):
    """Binary cross-entropy on probabilities, PyTorch's ``BCELoss``.

    ``-(t log p + (1 - t) log(1 - p))`` with each log clamped at -100 (as PyTorch), so
    ``p = 0`` or ``1`` gives a finite loss; the gradient ``(p - t) / max(p (1 - p), 1e-12)``.
    pred : any shape, probabilities in [0, 1] (e.g. from a :class:`~net.Sigmoid`);
    target : pred's shape, in [0, 1].  Values outside [0, 1] raise ``ValueError`` (PyTorch:
    RuntimeError), and so do NaN targets; a NaN probability -- a diverged model -- gives a
    NaN loss instead (PyTorch raises), which ``fit`` reports as divergence.  PyTorch's
    ``weight`` is not supported.  For logits use :class:`BCEWithLogitsLoss` (stable).
    """

    _kernel = "bce"

    def __init__(self, *, reduction: str = "mean", backend: str | None = None):
        super().__init__(backend, reduction)

    def _check_values(self, p, t) -> None:
        outside = (p < 0) | (p > 1)
        if outside.any():
            raise ValueError(f"{self!r}: probabilities must lie in [0, 1], got {p[outside][0]} (for logits use "
                             f"BCEWithLogitsLoss)")
        inside = (t >= 0) & (t <= 1)
        if not inside.all():
            raise ValueError(f"{self!r}: targets must lie in [0, 1], got {t[~inside][0]}")


class BCEWithLogitsLoss(_ElementwiseLoss):
    """Binary cross-entropy on logits, PyTorch's ``BCEWithLogitsLoss``.

    ``max(z, 0) - z t + log1p(exp(-|z|))`` (= BCE of ``sigmoid(z)``, computed without
    overflow: exact at logits of +-1e4); the gradient ``sigmoid(z) - t``.  pred : any
    shape, logits; target : pred's shape (not range-checked, as PyTorch).

    ``pos_weight`` (PyTorch's): weights of the positive term, an array broadcast against
    pred (e.g. one per class, (K,)): the loss is ``-(pw t log s + (1 - t) log(1 - s))``,
    ``s = sigmoid(z)``, computed as ``bce_with_logits(z, t) + (pw - 1) t softplus(-z)``
    (``softplus(-z) = bce_with_logits(z, 1)``), the gradient ``s (1 + (pw - 1) t) - pw t``.
    PyTorch's ``weight`` is not supported.
    """

    _kernel = "bce_with_logits"

    def __init__(self, *, reduction: str = "mean", pos_weight=None, backend: str | None = None):
        super().__init__(backend, reduction)
        if pos_weight is not None:
            pos_weight = np.array(pos_weight)
            if pos_weight.dtype.kind not in "fiu" or pos_weight.ndim == 0:
                raise ValueError(f"BCEWithLogitsLoss: pos_weight must be a real array with at least one axis (e.g. "
                                 f"one weight per class), got {pos_weight.dtype} of shape {pos_weight.shape}")
            pos_weight = pos_weight.astype(np.float64)
        self.pos_weight = pos_weight

    def _extras(self) -> str:
        extras = [super()._extras()] if self.reduction != "mean" else []
        if self.pos_weight is not None:
            extras.append(f"pos_weight={self.pos_weight.tolist() if self.pos_weight.size <= 8 else '...'}")
        return ", ".join(extras)

    def _weight(self, pred, t):
        """``(pos_weight - 1) t`` of pred's shape and dtype, or None."""
        if self.pos_weight is None:
            return None
        try:
            shape = np.broadcast_shapes(self.pos_weight.shape, pred.shape)
        except ValueError:
            shape = None
        if shape != pred.shape:
            raise ValueError(f"{self!r}: pos_weight of shape {self.pos_weight.shape} does not broadcast to the "
                             f"predictions' shape {pred.shape} (e.g. give one weight per class, ({pred.shape[-1]},))")
        return (self.pos_weight.astype(pred.dtype) - pred.dtype.type(1)) * t

    def _terms(self, pred, t) -> np.ndarray:
        values = super()._terms(pred, t)
        w = self._weight(pred, t)
        if w is not None:
            values += w * self.ops.bce_with_logits(pred, np.ones_like(pred))
        return values

    def _grad(self, pred, t) -> np.ndarray:
        d = super()._grad(pred, t)
        w = self._weight(pred, t)
        if w is not None:
            d += w * self.ops.bce_with_logits_backward(pred, np.ones_like(pred))
        return d
