"""Data sets for the examples and tests: MNIST in the IDX format (8,000 digits embedded)."""

from .mnist import (
    MNIST,
    MNISTDownloadError,
    download_mnist,
    load_mnist,
    parse_idx,
    preprocess,
    read_idx,
    train_val_split,
)

__all__ = [
    "MNIST",
    "MNISTDownloadError",
    "download_mnist",
    "load_mnist",
    "parse_idx",
    "preprocess",
    "read_idx",
    "train_val_split",
]
