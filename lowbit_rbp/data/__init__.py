"""Datasets (MNIST, CIFAR-10, a local CIFAR-10 subset): locate, verify, load, fetch."""

from .fetching import fetch
from .loading import Dataset, data_root, load_dataset, locate
from .specs import DATASETS

__all__ = ["DATASETS", "Dataset", "data_root", "fetch", "load_dataset", "locate"]
