"""Quantizer statistics in one pass (``kernels.reference.quantization_counts``, bit for bit): the
learning diagnostics count them over every example's update products, about 10^7 values a
sampled MNIST minibatch, where NumPy's seven passes cost as much as the products themselves."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def quantization_counts(b, a, level, lo, hi, threshold):
    """Counts of ``reference.quantization_counts`` over the 1-D float32 ``b`` (before) and ``a``
    (after); the bounds are float32 scalars."""
    zero = smallest = clipped = under = 0
    for t in range(b.size):
        x = b[t]
        y = a[t]
        zero += 1 if y == 0 else 0
        smallest += 1 if abs(y) == level else 0
        clipped += 1 if (x > hi or x < lo) else 0
        under += 1 if (abs(x) < threshold and x != 0) else 0
    return np.array([zero, smallest, clipped, under], np.int64)
