"""Quantizer statistics of the learning diagnostics."""
from __future__ import annotations

import numpy as np

#: What ``quantization_counts`` counts, in its order.
QUANT_COUNTS = ("zero", "smallest", "clipped", "underflow")


def quantization_counts(before, after, level: float, lo: float, hi: float, threshold: float) -> np.ndarray:
    """Counts over the values ``before`` a quantizer and the same values ``after`` it (same size,
    float32), in ``QUANT_COUNTS`` order: ``after`` at 0; ``after`` at +-``level`` (the smallest
    level); ``before`` above ``hi`` or below ``lo`` (clipped or saturated); ``before`` non-zero with
    magnitude below ``threshold`` (under the smallest level). The bounds compare as float32 (as a
    float32 array with a Python float does in NumPy 2); NaN counts nowhere but in nothing-at-zero."""
    b = np.asarray(before, np.float32).ravel()
    a = np.asarray(after, np.float32).ravel()
    if a.size != b.size:
        raise ValueError(f"quantization_counts: before has {b.size} values, after {a.size}; need the same")
    level, lo, hi, threshold = (np.float32(v) for v in (level, lo, hi, threshold))
    mag = np.abs(b)
    return np.array([np.count_nonzero(a == 0), np.count_nonzero(np.abs(a) == level),
                     np.count_nonzero(b > hi) + np.count_nonzero(b < lo),
                     np.count_nonzero((mag < threshold) & (b != 0))], np.int64)
