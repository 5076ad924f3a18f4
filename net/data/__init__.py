"""Data: generated toy sets, MNIST-family loaders, transforms and batching."""
from .toy import spiral

__all__ = ["spiral"]
