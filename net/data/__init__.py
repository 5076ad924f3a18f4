"""Data: MNIST-family loaders, generated toy sets, transforms and batching."""
from .datasets import (DATASETS, FASHION_MNIST, FASHION_MNIST_CLASSES, MNIST, MNIST_CLASSES, DatasetSpec,
                       IdxFile, fashion_mnist, get_spec, load, load_by_name, locate, mnist)
from .download import download, sha256_of
from .errors import DatasetChecksumError, DatasetError, DatasetFormatError, DatasetNotFoundError
from .idx import read_idx, write_idx
from .loader import DataLoader
from .toy import spiral
from .transforms import normalize, one_hot, train_val_split

__all__ = [
    "DATASETS", "FASHION_MNIST", "FASHION_MNIST_CLASSES", "MNIST", "MNIST_CLASSES", "DatasetSpec", "IdxFile",
    "fashion_mnist", "mnist", "load", "load_by_name", "locate", "get_spec", "download", "sha256_of",
    "DatasetError", "DatasetNotFoundError", "DatasetFormatError", "DatasetChecksumError",
    "read_idx", "write_idx", "DataLoader", "spiral", "normalize", "one_hot", "train_val_split",
]
