"""Backend selection for the learning-channel kernels.

Torch CPU tensors reach the NumPy / Numba kernels through ``.numpy()`` views (no copies).
"""
from __future__ import annotations

import numpy as np
import torch

from . import reference


def quantize_(t: torch.Tensor, fmt, *, seed: int = 0, counter: int = 0, backend: str = "numpy") -> torch.Tensor:
    """Quantize a float32 tensor in place to ``fmt``'s grid."""
    view = t.detach().numpy()
    np.copyto(view, fmt.quantize(view, seed=seed, counter=counter))
    return t
