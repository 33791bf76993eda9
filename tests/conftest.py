import os
from pathlib import Path

import numpy as np
import pytest


class TinyData:
    """A small synthetic classification set with the Dataset interface the trainer uses."""

    def __init__(self, n_train=200, n_test=100, dim=12, n_classes=4, seed=0):
        rng = np.random.default_rng(seed)
        centers = rng.normal(0, 1, size=(n_classes, dim))
        def make(n):
            y = rng.integers(0, n_classes, size=n)
            x = centers[y] + 0.5 * rng.normal(size=(n, dim))
            x = (x - x.min()) / (x.max() - x.min())
            return (x * 255).astype(np.uint8), y.astype(np.int64)
        self.x_train, self.y_train = make(n_train)
        self.x_test, self.y_test = make(n_test)
        self.n_classes = n_classes
        self.name = "tiny"

    def flat_float32(self, split):
        x = self.x_train if split == "train" else self.x_test
        return x.reshape(x.shape[0], -1).astype(np.float32) / 255.0


@pytest.fixture
def tiny_data():
    return TinyData()


@pytest.fixture(scope="session")
def data_root():
    root = os.environ.get("LOWBIT_RBP_DATA")
    if not root or not Path(root, "mnist").is_dir():
        pytest.skip("LOWBIT_RBP_DATA is not set to a folder with mnist/ (CI sets it to ../shared/data)")
    return Path(root)


@pytest.fixture(scope="session")
def mnist(data_root):
    from lowbit_rbp.data import load_dataset
    return load_dataset("mnist", root=data_root)
