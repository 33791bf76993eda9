"""``quantization_counts``: the quantizer statistics of the learning diagnostics, on the host
(a CUDA tensor is copied back: the diagnostics sample a few minibatches an epoch)."""
from __future__ import annotations

import numpy as np

from .. import reference
from .backends import _backend, _cpu, _host


def quantization_counts(before, after, level: float, lo: float, hi: float, threshold: float, *,
                        backend: str = "numpy") -> np.ndarray:
    """``kernels.reference.quantization_counts`` (zero, smallest, clipped, underflow) of the values
    ``before`` a quantizer and ``after`` it; numba (or auto / cuda: on the host) or numpy."""
    be = _backend(backend, before, after)
    b, a = (t.detach().cpu() if be == "cuda" else t for t in (before, after))
    b, a = _host(b, "before").ravel(), _host(a, "after").ravel()
    if be == "numpy" or a.size != b.size:     # the reference refuses a size mismatch, with its message
        return reference.quantization_counts(b, a, level, lo, hi, threshold)
    return _cpu().quantization_counts(np.ascontiguousarray(b), np.ascontiguousarray(a), np.float32(level),
                                      np.float32(lo), np.float32(hi), np.float32(threshold))
