"""What each dataset consists of: file names, official checksums, sources.

Checksums are the official ones (MNIST: yann.lecun.com/exdb/mnist; CIFAR-10:
www.cs.toronto.edu/~kriz/cifar.html), as listed in shared/data/SOURCES.md.
"""

from __future__ import annotations

from dataclasses import dataclass

ENV_VAR = "LOWBIT_RBP_DATA"
CACHE_DIRNAME = "lowbit-rbp"

DATASETS: tuple[str, ...] = ("mnist", "cifar10", "cifar10-subset")


@dataclass(frozen=True)
class MnistFile:
    """One MNIST idx file: its content (decompressed) and its official .gz."""

    name: str  # canonical uncompressed name, e.g. "train-images-idx3-ubyte"
    size: int  # bytes of the uncompressed idx content
    md5: str  # md5 of the uncompressed idx content
    gz_size: int  # bytes of the official .gz
    gz_md5: str  # md5 of the official .gz
    ndim: int  # 3 for images, 1 for labels

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"


MNIST_FILES: dict[str, MnistFile] = {
    f.name: f
    for f in (
        MnistFile("train-images-idx3-ubyte", 47040016, "6bbc9ace898e44ae57da46a324031adb",
                  9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873", 3),
        MnistFile("train-labels-idx1-ubyte", 60008, "a25bea736e30d166cdddb491f175f624",
                  28881, "d53e105ee54ea40749a09fcbcd1e9432", 1),
        MnistFile("t10k-images-idx3-ubyte", 7840016, "2646ac647ad5339dbf082846283269ea",
                  1648877, "9fb629c4189551a2d022fa330f9573f3", 3),
        MnistFile("t10k-labels-idx1-ubyte", 10008, "27ae3e4e09519cfbb04c329615203637",
                  4542, "ec29112dd5afa0611ce80d1b7f02629c", 1),
    )
}
MNIST_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

CIFAR_BATCH_DIR = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_META = "batches.meta"
CIFAR_FILES: tuple[str, ...] = CIFAR_TRAIN_BATCHES + (CIFAR_TEST_BATCH, CIFAR_META)
CIFAR10_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_IMAGES_PER_BATCH = 10000
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
SUBSET_SUMS = "SHA256SUMS"

N_CLASSES = 10
INPUT_SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar10-subset": (3, 32, 32)}
# Training examples of each set (the subset: the first 1,017 images of each of the 5 batches).
TRAIN_EXAMPLES = {"mnist": 60_000, "cifar10": 50_000, "cifar10-subset": 5_085}
TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar10-subset": "CIFAR-10 subset"}
MNIST_CLASS_NAMES = tuple(str(i) for i in range(10))
