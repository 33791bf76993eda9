"""A number format applied to torch tensors in place, with its own counter-based random stream, so
stochastic rounding is reproducible from the run's seed and resumes exactly from a checkpoint."""
from __future__ import annotations


class Quantizer:
    """Quantizes tensors in place to ``fmt``; element i of the n-th value quantized draws with
    counter ``(values before) + i`` of the stream ``seed``. A float32 format does nothing."""

    def __init__(self, fmt, seed: int, backend: str = "auto"):
        self.fmt = fmt
        self.seed = seed
        self.backend = backend
        self.counter = 0
        self.active = fmt.kind != "float"

    def __call__(self, t):
        if not self.active:
            return t
        from kernels import dispatch
        dispatch.quantize_(t, self.fmt, seed=self.seed, counter=self.counter, backend=self.backend)
        self.counter += t.numel()
        return t

    def add_(self, w, g, scale: float):
        """``w = Q(w + scale * g)`` in place, rounded once (a stored weight's update)."""
        from kernels import dispatch
        dispatch.add_quantize_(w, g, scale, self.fmt, seed=self.seed, counter=self.counter, backend=self.backend)
        self.counter += w.numel()
        return w
