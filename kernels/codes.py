"""Integer codes for the per-sample SGD kernels (``sgd_epoch``), shared by both backends.

Kept free of Numba so that :mod:`kernels.reference` can use them; :mod:`kernels.fused`
re-exports them under the same names.
"""
from __future__ import annotations

#: Activation after a Linear layer (one code per layer; the last layer's code is ignored).
IDENTITY, RELU, SIGMOID = 0, 1, 2
TANH = 3            # issue 13
#: Loss on the last layer's output: softmax + cross-entropy on logits (integer labels),
#: or mean squared error over the K outputs (dense targets).
SOFTMAX_CE, MSE = 0, 1

ACTIVATION_CODES = {"identity": IDENTITY, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}
LOSS_CODES = {"softmax_ce": SOFTMAX_CE, "mse": MSE}
