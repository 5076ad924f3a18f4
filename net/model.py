"""``Sequential``: layers chained forward, gradients chained backward."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layers import Layer


@dataclass(frozen=True)
class Parameter:
    """Handle on one trainable array: ``layer.params[name]`` and ``layer.grads[name]``."""

    layer: Layer
    name: str

    @property
    def value(self) -> np.ndarray:
        return self.layer.params[self.name]

    @property
    def grad(self) -> np.ndarray | None:
        return self.layer.grads.get(self.name)


class Sequential:
    """``Sequential(layer1, layer2, ...)`` (or a single list): ``forward``, ``backward``, ``parameters``."""

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(f"Sequential: item {i} ({layer!r}) is not a layer (no forward/backward)")
        self.layers = list(layers)
        self.training = True

    def train(self, mode: bool = True) -> Sequential:
        """Training mode (``mode=True``) or eval mode for the model and every layer; returns ``self``."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"Sequential.train: mode must be a bool, got {mode!r}")
        self.training = bool(mode)
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(self.training)
        return self

    def eval(self) -> Sequential:
        """Eval mode for the model and every layer, ``train(False)``; returns ``self``."""
        return self.train(False)

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def parameters(self) -> list[Parameter]:
        """Every trainable array, in layer order (``W`` before ``b``)."""
        return [Parameter(layer, name) for layer in self.layers for name in getattr(layer, "params", {})]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.layer.grads[p.name] = np.zeros_like(p.value)

    @property
    def backend(self) -> str | None:
        """The backend of the layers (None if they differ); assign to switch them all."""
        names = {getattr(layer, "backend", None) for layer in self.layers}
        return names.pop() if len(names) == 1 else None

    @backend.setter
    def backend(self, name: str) -> None:
        for layer in self.layers:
            layer.backend = name

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"
