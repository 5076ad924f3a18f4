"""Optimisers stepping over ``model.parameters()`` in place."""
from __future__ import annotations

import numpy as np


class SGD:
    """Stochastic gradient descent, optionally with (PyTorch-style) momentum.

    ``v = momentum * v + g``; ``w -= lr * v``  (plain ``w -= lr * g`` when momentum is 0).
    Parameters are updated in place, so layers keep their arrays.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0):
        self.params = list(params)
        if not lr > 0:
            raise ValueError(f"SGD: lr must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        self.lr, self.momentum = float(lr), float(momentum)
        self.velocity = [np.zeros_like(p.value) for p in self.params] if self.momentum else None

    def ensure_velocity(self) -> list | None:
        """The momentum buffers, created (zeros) if momentum is on and there are none yet."""
        if self.momentum and self.velocity is None:
            self.velocity = [np.zeros_like(p.value) for p in self.params]
        return self.velocity

    def step(self) -> None:
        self.ensure_velocity()
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                raise RuntimeError(f"SGD.step: no gradient for {p.layer!r}.{p.name}; call backward() first")
            if self.velocity is not None:
                v = self.velocity[i]
                v *= self.momentum
                v += g
                g = v
            w = p.value
            w -= self.lr * g

    def zero_grad(self) -> None:
        for p in self.params:
            p.layer.grads[p.name] = np.zeros_like(p.value)

    def state_dict(self) -> dict:
        """Hyper-parameters and momentum buffers (for checkpoints)."""
        return {"lr": self.lr, "momentum": self.momentum,
                "velocity": [v.copy() for v in self.velocity] if self.velocity is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.momentum = float(state["lr"]), float(state["momentum"])
        vel = state.get("velocity")
        self.velocity = [np.array(v, copy=True) for v in vel] if vel is not None else None
