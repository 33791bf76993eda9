import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tinydata import TinyData  # noqa: E402


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
