import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not flake on a rare draw).
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("repeatable")

sys.path.insert(0, str(Path(__file__).parent))
from tinydata import TinyData  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_torch():
    """Tests that draw with torch draw the same numbers on every run."""
    import torch
    torch.manual_seed(0)


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
