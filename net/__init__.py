"""scratchnet: neural-network layers written from scratch in NumPy, with Numba kernels.

>>> from net import Linear, ReLU, Sequential, CrossEntropyLoss, SGD
"""
from .backend import get_backend, set_backend
from .layers import Layer, Linear, ReLU, Sigmoid, Softmax
from .losses import CrossEntropyLoss, MSELoss
from .model import Parameter, Sequential
from .optim import SGD
from . import data, init, io, metrics, plot
from .gradcheck import gradcheck
from .train import TrainingDivergedError, fit, predict
# -- layers (issue 13) --
from .activations import GELU, LeakyReLU, Tanh
from .dropout import Dropout
from .norm import BatchNorm1d, LayerNorm
# -- end layers --

# -- losses (issue 13) --
from .losses import BCELoss, BCEWithLogitsLoss, HuberLoss, L1Loss, NLLLoss  # noqa: E402
# -- end losses --

# -- optimisers and schedules (issue 13) --
from .optim import Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedule import CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler, StepLR
from . import schedule
# -- end optimisers and schedules --

__version__ = "0.1.0"

__all__ = [
    "Layer", "Linear", "ReLU", "Sigmoid", "Softmax",
    "CrossEntropyLoss", "MSELoss", "Sequential", "Parameter", "SGD",
    "set_backend", "get_backend", "data", "init", "io", "metrics", "plot", "gradcheck",
    "fit", "predict", "TrainingDivergedError",
]
# -- __all__ additions: layers (issue 13) --
__all__ += ["Tanh", "LeakyReLU", "GELU", "Dropout", "BatchNorm1d", "LayerNorm"]
# -- end layers --

# -- __all__ additions: losses (issue 13) --
__all__ += ["BCELoss", "BCEWithLogitsLoss", "HuberLoss", "L1Loss", "NLLLoss"]
# -- end losses --

# -- __all__ additions: optimisers and schedules (issue 13) --
__all__ += ["Optimizer", "Adam", "AdamW", "RMSprop", "Adagrad", "schedule", "LRScheduler", "StepLR", "ExponentialLR",
            "CosineAnnealingLR", "LinearLR"]
# -- end optimisers and schedules --

