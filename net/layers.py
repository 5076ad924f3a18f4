"""Layers: ``forward(x)`` caches what ``backward(dy)`` needs; ``params``/``grads`` dicts.

Every layer runs its math through a kernel backend (``"numpy"`` or ``"numba"``),
chosen once at construction (``backend=``, default :func:`net.set_backend`) and
switchable later via the ``backend`` attribute.  Inputs are checked before any
kernel runs.  ``backward`` overwrites ``grads`` (no accumulation across calls).
"""
from __future__ import annotations

import numpy as np

from . import init as initializers
from .backend import BackendUser
from .checks import as_dtype, as_float_array, require_2d


class Layer(BackendUser):
    """Base class: backend handling, ``__call__`` and the forward-before-backward check."""

    #: Training mode (the default) or eval mode; see :meth:`train`/:meth:`eval`.
    training: bool = True

    def __init__(self, backend: str | None = None):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        #: Non-trainable state saved with the model (BatchNorm1d's running statistics).
        self.buffers: dict[str, np.ndarray] = {}
        self._cache = None
        self.backend = backend
        self.training = True

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode: bool = True):
        """Set training mode (``mode=True``) or eval mode; returns ``self``, as ``torch.nn.Module.train``.

        Only Dropout and BatchNorm1d behave differently: in eval mode Dropout is the identity and
        BatchNorm1d normalises with its running statistics.
        """
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"{self!r}.train: mode must be a bool, got {mode!r}")
        self.training = bool(mode)
        return self

    def eval(self):
        """Eval mode, ``train(False)``; returns ``self``."""
        return self.train(False)

    def forward(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover - interface
        raise NotImplementedError

    def _check_dy(self, dy, shape, dtype) -> np.ndarray:
        dy = as_float_array(dy, f"{self!r}.backward", dtype)
        if dy.shape != shape:
            raise ValueError(f"{self!r}.backward expected dy of shape {shape}, got {dy.shape}")
        return dy

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Layer):
    """Fully connected layer ``y = x @ W + b`` with ``W : (in_features, out_features)``.

    Parameters
    ----------
    in_features, out_features : int
    init : str or callable
        Weight initialiser (see :mod:`net.init`), default ``"xavier_normal"``.
        Biases start at zero, except with ``"torch_default"`` (PyTorch's ``nn.Linear``
        default: W and b from U(+-1/sqrt(in_features))).
    bias : bool
        Without bias the layer computes ``x @ W`` and has no ``"b"`` parameter.
    backend : ``"numpy"``, ``"numba"`` or None (the default backend)
    dtype : float32 (default) or float64 -- the dtype of parameters *and* outputs.
        Inputs of another dtype (float64 data, uint8 pixels) are cast to it.
    rng : numpy.random.Generator, int seed or None
    """

    def __init__(self, in_features: int, out_features: int, *, init="xavier_normal", bias: bool = True,
                 backend: str | None = None, dtype=np.float32, rng=None):
        super().__init__(backend)
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = as_dtype(dtype)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        W = initializers.get(init)((self.in_features, self.out_features), rng, self.dtype)
        self.params["W"] = np.ascontiguousarray(W, dtype=self.dtype)
        self.has_bias = bool(bias)
        if self.has_bias:
            self.params["b"] = np.zeros(self.out_features, dtype=self.dtype)
            if isinstance(init, str) and init in initializers.BIAS_INITIALIZERS:
                self.params["b"][:] = initializers.BIAS_INITIALIZERS[init](self.in_features, self.out_features, rng,
                                                                           self.dtype)
        self._zero_bias = np.zeros(self.out_features, dtype=self.dtype)

    def __repr__(self) -> str:
        extra = "" if self.has_bias else ", bias=False"
        return f"Linear({self.in_features} -> {self.out_features}{extra})"

    def _bias(self) -> np.ndarray:
        return self.params["b"] if self.has_bias else self._zero_bias

    def forward(self, x):
        """x : (B, in_features) -> (B, out_features), dtype of the layer."""
        x = as_float_array(x, repr(self), self.dtype)
        require_2d(x, repr(self), self.in_features, allow_empty=True)
        self._cache = x
        return self.ops.linear_forward(x, self.params["W"], self._bias())

    def backward(self, dy):
        """dy : (B, out_features) -> dx : (B, in_features); fills ``grads["W"]``, ``grads["b"]``."""
        x = self._saved()
        dy = self._check_dy(dy, (x.shape[0], self.out_features), self.dtype)
        dx, dW, db = self.ops.linear_backward(x, self.params["W"], dy)
        self.grads["W"] = dW
        if self.has_bias:
            self.grads["b"] = db
        return dx


class _Elementwise(Layer):
    """Activation applied elementwise; caches one array for its backward."""

    def forward(self, x):
        x = as_float_array(x, repr(self))
        out = self._forward(x)
        self._cache = self._to_cache(x, out)
        return out

    def backward(self, dy):
        saved = self._saved()
        dy = self._check_dy(dy, saved.shape, saved.dtype)
        return self._backward(saved, dy)


class ReLU(_Elementwise):
    """``max(x, 0)``; the gradient is zero where ``x <= 0``.  Any shape, float dtype kept."""

    def _forward(self, x):
        return self.ops.relu_forward(x)

    def _to_cache(self, x, out):
        return x

    def _backward(self, x, dy):
        return self.ops.relu_backward(x, dy)


class Sigmoid(_Elementwise):
    """Logistic ``1 / (1 + exp(-x))``, overflow-free.  Any shape, float dtype kept."""

    def _forward(self, x):
        return self.ops.sigmoid_forward(x)

    def _to_cache(self, x, out):
        return out

    def _backward(self, y, dy):
        return self.ops.sigmoid_backward(y, dy)


class Softmax(_Elementwise):
    """Row-wise softmax over (B, K); backward is the per-sample Jacobian-vector product.

    Pair it with ``CrossEntropyLoss(from_logits=False)`` (the tutorials' path);
    ``CrossEntropyLoss()`` on logits is the fused, cheaper equivalent.
    """

    def _forward(self, z):
        require_2d(z, repr(self), allow_empty=True)
        return self.ops.softmax(z)

    def _to_cache(self, z, s):
        return s

    def _backward(self, s, ds):
        return self.ops.softmax_backward(s, ds)
