"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names, arguments and ``step()`` semantics.

=============================================  ==========================================
scratchnet                                     PyTorch
=============================================  ==========================================
``StepLR(opt, step_size, gamma=0.1)``          ``lr_scheduler.StepLR``
``ExponentialLR(opt, gamma)``                  ``lr_scheduler.ExponentialLR``
``CosineAnnealingLR(opt, T_max, eta_min=0)``   ``lr_scheduler.CosineAnnealingLR``
``LinearLR(opt, start_factor=1/3,              ``lr_scheduler.LinearLR`` (e.g. a warm-up)
end_factor=1.0, total_iters=5)``
=============================================  ==========================================

As in PyTorch: the constructor records the optimiser's ``lr`` as ``initial_lr`` (if no
scheduler did before) and takes the first step, which sets the lr of epoch 0 (``LinearLR``:
``lr * start_factor``; the others leave it); each ``scheduler.step()``, called after the
epoch's ``optimizer.step()`` calls (or by ``fit(..., scheduler=...)``, once per epoch), sets
the next one.  The values are torch's recursive (chainable) formulas, computed from the
optimiser's current ``lr`` in Python floats, so the sequence equals torch's bit for bit
(``tests/reference/test_torch_optim.py``).  ``get_last_lr()`` returns ``[lr]`` (one parameter
group); ``state_dict()``/``load_state_dict()`` hold the counters (JSON values only).
"""
from __future__ import annotations

import math

from .optim import Optimizer


class LRScheduler:
    """Base class: ``optimizer``, ``base_lrs``, ``last_epoch``, ``step()``, ``get_last_lr()``."""

    def __init__(self, optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer of net.optim")
        self.optimizer = optimizer
        if last_epoch == -1:
            if optimizer.initial_lr is None:
                optimizer.initial_lr = optimizer.lr
        elif optimizer.initial_lr is None:
            raise ValueError(f"{type(self).__name__}: last_epoch={last_epoch} resumes a schedule, but the optimizer "
                             "has no initial_lr; load the optimizer's state_dict first")
        self.base_lrs = [optimizer.initial_lr]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimiser's ``lr`` to the schedule's next value."""
        self._step_count += 1
        self.last_epoch += 1
        self.optimizer.lr = float(self.get_lr()[0])
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self) -> list[float]:
        """The lr the last ``step()`` set, as ``[lr]`` (torch: one entry per parameter group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Every attribute but the optimiser (JSON values), and ``"type"``."""
        state = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items() if k != "optimizer"}
        return {"type": type(self).__name__, **state}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        kind = state.pop("type", type(self).__name__)
        if kind != type(self).__name__:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state is {kind}'s")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.optimizer.lr!r})"


def _positive_int(owner, name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


class StepLR(LRScheduler):
    """``lr *= gamma`` every ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [self.optimizer.lr]
        return [self.optimizer.lr * self.gamma]


class ExponentialLR(LRScheduler):
    """``lr *= gamma`` every epoch (``torch.optim.lr_scheduler.ExponentialLR``)."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return [self.optimizer.lr]
        return [self.optimizer.lr * self.gamma]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the initial lr down to ``eta_min`` over ``T_max`` epochs, then back up
    (SGDR without restarts; ``torch.optim.lr_scheduler.CosineAnnealingLR``, its recursive form):
    ``lr_t = eta_min + (lr_0 - eta_min) (1 + cos(pi t / T_max)) / 2``."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lr, base, e, T = self.optimizer.lr, self.base_lrs[0], self.last_epoch, self.T_max
        if self._is_initial:
            return [lr]
        if self._step_count == 1 and e > 0:
            return [self.eta_min + (base - self.eta_min) * (1 + math.cos(e * math.pi / T)) / 2]
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (base - self.eta_min) * (1 - math.cos(math.pi / T)) / 2]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - self.eta_min)
                + self.eta_min]


class LinearLR(LRScheduler):
    """The lr factor goes linearly from ``start_factor`` to ``end_factor`` over ``total_iters``
    epochs, then stays (``torch.optim.lr_scheduler.LinearLR``; the default is a 5-epoch warm-up
    from a third of the lr)."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must lie in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must lie in [0, 1], got {end_factor!r}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lr = self.optimizer.lr
        if self.last_epoch == 0:
            return [lr * self.start_factor]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [lr]
        return [lr * (1.0 + (self.end_factor - self.start_factor)
                      / (self.total_iters * self.start_factor
                         + (self.last_epoch - 1) * (self.end_factor - self.start_factor)))]


#: Schedules by name (``--schedule`` on the command line), each made from ``(optimizer, n)`` where
#: ``n`` is the schedule's length in epochs (``--schedule-epochs``): ``step`` divides the lr by 10
#: every n epochs, ``exponential`` by 10 over n epochs (``gamma = 0.1 ** (1 / n)``), ``cosine``
#: anneals it to 0 over n epochs, ``linear-warmup`` rises from a third of it to all of it over n.
SCHEDULES = {
    "none": None,
    "step": lambda opt, n: StepLR(opt, step_size=n, gamma=0.1),
    "exponential": lambda opt, n: ExponentialLR(opt, gamma=0.1 ** (1 / n)),
    "cosine": lambda opt, n: CosineAnnealingLR(opt, T_max=n),
    "linear-warmup": lambda opt, n: LinearLR(opt, start_factor=1.0 / 3, end_factor=1.0, total_iters=n),
}
