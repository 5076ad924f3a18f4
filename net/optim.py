"""Optimisers stepping over ``model.parameters()`` in place, with PyTorch's names, defaults and updates.

========================================  ==============================================
scratchnet                                PyTorch
========================================  ==============================================
``SGD(params, lr, momentum, dampening,    ``torch.optim.SGD`` (same arguments)
weight_decay, nesterov)``
``Adam(params, lr, betas, eps,            ``torch.optim.Adam``
weight_decay, amsgrad)``
``AdamW(...)`` (``weight_decay=1e-2``)    ``torch.optim.AdamW``
``RMSprop(params, lr, alpha, eps,         ``torch.optim.RMSprop``
weight_decay, momentum, centered)``
``Adagrad(params, lr, lr_decay,           ``torch.optim.Adagrad``
weight_decay, initial_accumulator_value,
eps)``
========================================  ==============================================

Each ``step()`` runs one update kernel per parameter (``sgd_step``, ``adam_step``,
``rmsprop_step``, ``adagrad_step`` of :mod:`kernels`), on the backend of the parameter's layer
(``layer.ops``: NumPy, or one fused Numba pass).  The updates are PyTorch's ``_single_tensor_*``
formulas (``maximize=False``), checked against torch step by step in
``tests/reference/test_torch_optim.py``.

Regularisation.  ``weight_decay`` is L2 regularisation.  SGD, Adam, RMSprop and Adagrad add
``weight_decay * w`` to the gradient (*coupled*: in Adam, RMSprop and Adagrad the decay then
goes through the adaptive scaling, so weights with large gradients decay less); AdamW shrinks
the weights directly, ``w *= 1 - lr * weight_decay``, before the Adam step (*decoupled*,
Loshchilov & Hutter 2019).  ``l1`` (keyword-only, a scratchnet extra that PyTorch does not have)
adds ``l1 * sign(w)`` to the gradient, the L1 penalty's subgradient as in nnfs's regulariser;
in AdamW it is added to the gradient too (it is not decoupled).

Differences from torch.optim: no parameter groups (one ``lr`` attribute, which schedulers of
:mod:`net.schedule` write); every parameter must have a gradient at ``step()`` (torch skips
those without); one step count for all parameters; ``lr`` must be > 0 when constructed.
"""
from __future__ import annotations

import numpy as np

from .backend import resolve


def _real(owner: str, name: str, value, low: float = 0.0, *, strict: bool = False, high: float | None = None):
    """``value`` as a float, checked against ``[low, high)`` (``(low, ...)`` when ``strict``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    ok = (value > low if strict else value >= low) and (high is None or value < high)
    if not ok:
        if high is None:
            raise ValueError(f"{owner}: {name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
        where = f"({low:g}, {high:g})" if strict else f"[{low:g}, {high:g})"
        raise ValueError(f"{owner}: {name} must lie in {where}, got {value!r}")
    return value


class Optimizer:
    """Base class: ``params`` (a list of :class:`~net.Parameter`), ``lr`` (read and write),
    ``step()``, ``zero_grad()``, ``state_dict()``/``load_state_dict()``.

    Subclasses list their hyper-parameters in ``_hyper`` and their per-parameter state buffers
    in ``_buffers`` (each a list of arrays shaped like the parameters, or None until used), and
    implement ``_update(ops, i, w, g)`` for parameter ``i``.
    """

    _hyper: tuple[str, ...] = ()
    _buffers: tuple[str, ...] = ()

    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = _real(type(self).__name__, "lr", lr, strict=True)
        #: The lr a schedule starts from (set by the first scheduler attached; torch's ``initial_lr``).
        self.initial_lr: float | None = None
        #: Steps taken (PyTorch's per-parameter ``state["step"]``; one count here).
        self.step_count = 0
        for name in self._buffers:
            setattr(self, name, None)
        self._dummies: dict = {}

    # ---- stepping -------------------------------------------------------------------------------

    def step(self) -> None:
        """One update of every parameter from its gradient (``layer.grads``)."""
        grads = []
        for p in self.params:
            g = p.grad
            if g is None:
                raise RuntimeError(f"{type(self).__name__}.step: no gradient for {p.layer!r}.{p.name}; "
                                   "call backward() first")
            grads.append(g)
        self.step_count += 1
        for i, (p, g) in enumerate(zip(self.params, grads)):
            ops = getattr(p.layer, "ops", None) or resolve(None)[1]
            self._update(ops, i, p.value, g)

    def _update(self, ops, i: int, w: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _buffer(self, name: str) -> list:
        """The buffers ``name`` (zeros shaped like the parameters, created on first use)."""
        bufs = getattr(self, name)
        if bufs is None:
            bufs = [np.zeros(p.value.shape, p.value.dtype) for p in self.params]
            setattr(self, name, bufs)
        return bufs

    def _dummy(self, w: np.ndarray) -> np.ndarray:
        """A (0,) array of w's dtype for the buffers a kernel does not read with these options."""
        d = self._dummies.get(w.dtype)
        if d is None:
            d = self._dummies[w.dtype] = np.zeros(0, w.dtype)
        return d

    def zero_grad(self) -> None:
        for p in self.params:
            p.layer.grads[p.name] = np.zeros_like(p.value)

    # ---- state ------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """``{"type", "lr", hyper-parameters..., "step_count", "initial_lr", buffer name: list of
        arrays (copies) or None}``: JSON values plus lists of arrays (see :func:`net.io.save_checkpoint`)."""
        state = {"type": type(self).__name__, "lr": self.lr, "initial_lr": self.initial_lr,
                 "step_count": self.step_count}
        for name in self._hyper:
            value = getattr(self, name)
            state[name] = list(value) if isinstance(value, tuple) else value
        for name in self._buffers:
            bufs = getattr(self, name)
            state[name] = [b.copy() for b in bufs] if bufs is not None else None
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (hyper-parameters, step count, buffers)."""
        kind = state.get("type", "SGD")            # checkpoints written before issue 13 hold SGD's state
        if kind != type(self).__name__:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state is {kind}'s; build a {kind} "
                             "to load it")
        loaded = {}
        for name in self._buffers:
            bufs = state.get(name)
            if bufs is not None:
                if len(bufs) != len(self.params):
                    raise ValueError(f"{type(self).__name__}.load_state_dict: {name} holds {len(bufs)} arrays for "
                                     f"{len(self.params)} parameters")
                for b, p in zip(bufs, self.params):
                    b = np.asarray(b)
                    if b.shape != p.value.shape or b.dtype != p.value.dtype:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: {name} has an array of shape "
                                         f"{b.shape} {b.dtype} for {p.layer!r}.{p.name} of shape "
                                         f"{p.value.shape} {p.value.dtype}")
                bufs = [np.array(b, dtype=p.value.dtype, order="C", copy=True) for b, p in zip(bufs, self.params)]
            loaded[name] = bufs
        self.lr = float(state["lr"])
        self.initial_lr = None if state.get("initial_lr") is None else float(state["initial_lr"])
        self.step_count = int(state.get("step_count", 0))
        for name in self._hyper:
            if name in state:
                value = state[name]
                setattr(self, name, tuple(value) if isinstance(value, list) else value)
        for name, bufs in loaded.items():
            setattr(self, name, bufs)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{n}={getattr(self, n)!r}" for n in ("lr", *self._hyper))
        return f"{type(self).__name__}({hyper})"


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    ``g += weight_decay * w`` (coupled L2) ``+ l1 * sign(w)``; with momentum
    ``buf = momentum * buf + (1 - dampening) * g`` (``buf = g`` on the first step), then
    ``g = g + momentum * buf`` (``nesterov``) or ``g = buf``; ``w -= lr * g``.
    Parameters are updated in place, so layers keep their arrays.

    ``velocity`` holds the momentum buffers (zeros until the first step; None without momentum):
    the fused kernels of :mod:`net.fused` update the same arrays (``ensure_velocity()``), for
    plain momentum SGD only (``dampening``, ``weight_decay``, ``nesterov`` and ``l1`` at 0).
    """

    _hyper = ("momentum", "dampening", "weight_decay", "nesterov", "l1")
    _buffers = ("velocity",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, l1: float = 0.0):
        super().__init__(params, lr)
        self.momentum = _real("SGD", "momentum", momentum, high=1.0)
        self.dampening = _real("SGD", "dampening", dampening)
        self.weight_decay = _real("SGD", "weight_decay", weight_decay)
        self.l1 = _real("SGD", "l1", l1)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum "
                             f"{self.momentum} and dampening {self.dampening}")
        self._started = False          # the buffers hold torch's momentum_buffer (after a first step)
        if self.momentum:
            self._buffer("velocity")

    def ensure_velocity(self) -> list | None:
        """The momentum buffers, created (zeros) if momentum is on and there are none yet, for a
        caller that steps them as momentum buffers (the fused kernels: plain momentum, where a
        zero buffer's first step ``0 * momentum + g`` is torch's ``buf = g``)."""
        if not self.momentum:
            return self.velocity
        self._started = True
        return self._buffer("velocity")

    def unfused_options(self) -> str:
        """The options set that the fused kernels do not compute ("" when they compute this SGD)."""
        names = ("dampening", "weight_decay", "nesterov", "l1")
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in names if getattr(self, n))

    def step(self) -> None:
        if self.momentum:
            self._buffer("velocity")
        super().step()
        if self.momentum:
            self._started = True

    def _update(self, ops, i, w, g):
        buf = self.velocity[i] if self.momentum else self._dummy(w)
        ops.sgd_step(w, g, buf, self.lr, self.momentum, self.dampening, self.weight_decay, self.nesterov,
                     not self._started, self.l1)

    def state_dict(self) -> dict:
        """Hyper-parameters and momentum buffers (``"velocity"``, for checkpoints)."""
        return {**super().state_dict(), "started": self._started}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.momentum = float(self.momentum)
        self._started = bool(state.get("started", state.get("velocity") is not None))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam``; ``decoupled_weight_decay=True`` is AdamW.

    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2`` (``amsgrad``: the running
    maximum of v below), ``w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
    ``weight_decay`` is coupled L2 (added to g, then scaled like it); see :class:`AdamW` for the
    decoupled kind.  ``l1`` (scratchnet extra) adds ``l1 * sign(w)`` to g.
    State: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad), ``step_count``.
    """

    _hyper = ("betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay", "l1")
    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, decoupled_weight_decay: bool = False, l1: float = 0.0):
        super().__init__(params, lr)
        name = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_real(name, "betas[0]", betas[0], high=1.0), _real(name, "betas[1]", betas[1], high=1.0))
        self.eps = _real(name, "eps", eps)
        self.weight_decay = _real(name, "weight_decay", weight_decay)
        self.l1 = _real(name, "l1", l1)
        self.amsgrad = bool(amsgrad)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def _update(self, ops, i, w, g):
        m, v = self._buffer("exp_avg")[i], self._buffer("exp_avg_sq")[i]
        vmax = self._buffer("max_exp_avg_sq")[i] if self.amsgrad else self._dummy(w)
        ops.adam_step(w, g, m, v, vmax, self.step_count, self.lr, self.betas[0], self.betas[1], self.eps,
                      self.weight_decay, self.amsgrad, self.decoupled_weight_decay, self.l1)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``: Adam with *decoupled* weight
    decay, ``w *= 1 - lr * weight_decay`` before each Adam step (default ``weight_decay=1e-2``),
    instead of adding ``weight_decay * w`` to the gradient."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, l1: float = 0.0):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True, l1=l1)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), as ``torch.optim.RMSprop``.

    ``s = alpha s + (1 - alpha) g^2``; ``centered``: ``a = lerp(a, g, 1 - alpha)`` and
    ``avg = sqrt(s - a^2) + eps``, else ``sqrt(s) + eps``; with ``momentum > 0``
    ``buf = momentum buf + g / avg``, ``w -= lr buf``, else ``w -= lr g / avg``.
    ``weight_decay`` is coupled L2 (added to g); ``l1`` (scratchnet extra) adds ``l1 * sign(w)``.
    State: ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer`` (momentum > 0).
    """

    _hyper = ("alpha", "eps", "weight_decay", "momentum", "centered", "l1")
    _buffers = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, l1: float = 0.0):
        super().__init__(params, lr)
        self.alpha = _real("RMSprop", "alpha", alpha)
        self.eps = _real("RMSprop", "eps", eps)
        self.weight_decay = _real("RMSprop", "weight_decay", weight_decay)
        self.momentum = _real("RMSprop", "momentum", momentum)
        self.l1 = _real("RMSprop", "l1", l1)
        self.centered = bool(centered)

    def _update(self, ops, i, w, g):
        s = self._buffer("square_avg")[i]
        a = self._buffer("grad_avg")[i] if self.centered else self._dummy(w)
        buf = self._buffer("momentum_buffer")[i] if self.momentum > 0 else self._dummy(w)
        ops.rmsprop_step(w, g, s, a, buf, self.lr, self.alpha, self.eps, self.weight_decay, self.momentum,
                         self.centered, self.l1)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad`` (dense gradients).

    ``sum += g^2`` (starting from ``initial_accumulator_value``);
    ``w -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)`` at step t.
    ``weight_decay`` is coupled L2 (added to g); ``l1`` (scratchnet extra) adds ``l1 * sign(w)``.
    State: ``state_sum`` (torch's ``state["sum"]``), ``step_count``.
    """

    _hyper = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps", "l1")
    _buffers = ("state_sum",)

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, l1: float = 0.0):
        super().__init__(params, lr)
        self.lr_decay = _real("Adagrad", "lr_decay", lr_decay)
        self.weight_decay = _real("Adagrad", "weight_decay", weight_decay)
        self.initial_accumulator_value = _real("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.eps = _real("Adagrad", "eps", eps)
        self.l1 = _real("Adagrad", "l1", l1)
        self.state_sum = [np.full(p.value.shape, self.initial_accumulator_value, p.value.dtype) for p in self.params]

    def _update(self, ops, i, w, g):
        ops.adagrad_step(w, g, self.state_sum[i], self.step_count, self.lr, self.lr_decay, self.weight_decay,
                         self.eps, self.l1)


#: Optimisers by lower-case name (``--optimizer`` on the command line).
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
