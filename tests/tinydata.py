"""A small synthetic classification set with the Dataset interface the trainer uses
(shared by the fixtures and by scripts the tests run in subprocesses)."""
import numpy as np


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


class TinyImages:
    """A small CIFAR-shaped data set (the real one is exercised by the data tests and the report)."""
    name = "tiny-images"
    n_classes = 10
    input_shape = (3, 12, 12)

    def __init__(self, n=40, seed=0):
        rng = np.random.default_rng(seed)
        self.x_train = rng.integers(0, 256, (n, 3, 12, 12), dtype=np.uint8)
        self.y_train = rng.integers(0, 10, n)
        self.x_test = self.x_train[:10]
        self.y_test = self.y_train[:10]

    def images_float32(self, split):
        x = self.x_train if split == "train" else self.x_test
        return x.astype(np.float32) / 255.0
