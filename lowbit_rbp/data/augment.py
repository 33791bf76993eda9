"""Image augmentation of the paper's CIFAR-10 protocol: random translation and horizontal flip.

Random draws come from the run's data-order generator, so a seed fixes them (and a resumed run
continues the same stream).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import bad_value


def augment_(x: torch.Tensor, translate: float, hflip: float, rng: np.random.Generator) -> torch.Tensor:
    """In place on a batch ``(B, C, H, W)``: shift each image by whole pixels, up to
    ``round(translate * size)`` each way independently in x and y, filling the uncovered border with
    the nearest edge pixels (Keras' ``fill_mode="nearest"``), then mirror it left-right with
    probability ``hflip``. Labels are unchanged by construction."""
    if x.dim() != 4:
        raise bad_value("augmentation input shape", tuple(x.shape), "(batch, channels, height, width)")
    b, _, h, w = x.shape
    sy, sx = int(round(translate * h)), int(round(translate * w))
    if sy or sx:
        dy = rng.integers(-sy, sy + 1, size=b)
        dx = rng.integers(-sx, sx + 1, size=b)
        padded = F.pad(x, (sx, sx, sy, sy), mode="replicate")
        # Output pixel (r, c) reads input pixel (r - dy, c - dx): the image moves by (dy, dx). One
        # gather for the whole batch: rows/cols index the padded images per example.
        rows = torch.arange(h)[None, :] + torch.from_numpy(sy - dy)[:, None]          # (B, H)
        cols = torch.arange(w)[None, :] + torch.from_numpy(sx - dx)[:, None]          # (B, W)
        shifted = padded[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]]   # (B, H, W, C)
        x.copy_(shifted.permute(0, 3, 1, 2))
    if hflip:
        flip = torch.from_numpy(rng.random(b) < hflip)
        if bool(flip.any()):
            x[flip] = x[flip].flip(3)
    return x
