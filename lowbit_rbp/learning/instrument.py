"""Counting what the learning channel actually executes, for "measured = modelled" checks.

Attach an ``OpTally`` to a channel (``channel.tally = OpTally()``) and every feedback product and
f' product the training loop runs is tallied from the tensors it really used: the non-zeros of the
matrix at that step, whether the matrix is binary (a product with it is a gated addition), whether
the incoming signal is sign-only (a product with it is a sign flip), and the batch size. The cost
model (``hw_models.counts.channel_op_counts``) computes the same quantities from the config.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch


@dataclass
class LayerTally:
    steps: int = 0
    examples: int = 0
    mults: float = 0.0
    gated: float = 0.0
    sign_flips: float = 0.0
    shifts: float = 0.0
    accumulate_adds: float = 0.0
    fprime_mults: float = 0.0
    shifts_fprime: float = 0.0


@dataclass
class OpTally:
    layers: dict = field(default_factory=lambda: defaultdict(LayerTally))

    def product(self, k: int, signal: torch.Tensor, matrix: torch.Tensor, keep: torch.Tensor | None = None,
                *, wired_nonzeros_only: bool = False) -> None:
        """A product ``signal @ matrix`` (a 2-D matrix, (sender, receiver)); ``keep`` (batch,
        receivers): the dropout mask, a dropped receiver's products counted as not done.
        ``wired_nonzeros_only``: the matrix is fixed wiring, so only its non-zeros are products;
        otherwise (stored forward weights) every entry is, zeros included."""
        t = self.layers[k]
        batch = signal.shape[0]
        nz = matrix != 0 if wired_nonzeros_only else torch.ones_like(matrix, dtype=torch.bool)
        nnz_col = nz.sum(dim=0).double()
        # how many examples each receiver's products run for
        runs = keep.reshape(batch, -1).sum(dim=0).double() if keep is not None else torch.full_like(nnz_col, batch)
        products = float((nnz_col * runs).sum())
        values = matrix[nz]
        binary = values.numel() > 0 and bool((values == values[0]).all())
        grid = signal_grid(signal)
        if binary:
            t.gated += products
        elif grid == "sign":
            t.sign_flips += products
        elif grid == "pow2":
            t.shifts += products
        else:
            t.mults += products
        t.accumulate_adds += float(((nnz_col - 1).clamp(min=0) * runs).sum())

    def fprime(self, k: int, received: torch.Tensor, keep: torch.Tensor | None = None) -> None:
        """f' times the received signal of every kept receiver: a shift when that signal is on a
        power-of-two grid."""
        n = received.numel() if keep is None else float(keep.sum())
        if signal_grid(received) == "float":
            self.layers[k].fprime_mults += n
        else:
            self.layers[k].shifts_fprime += n

    def step(self, k: int, batch: int) -> None:
        t = self.layers[k]
        t.steps += 1
        t.examples += batch


def signal_grid(x: torch.Tensor) -> str:
    """What multiplying by ``x`` costs in hardware: ``sign`` (one magnitude: sign flips), ``pow2``
    (every non-zero magnitude a power of two times one scale: shifts) or ``float`` (multiplies)."""
    mags = x.abs()
    nz = mags[mags != 0]
    if nz.numel() == 0:
        return "sign"
    if bool((nz == nz[0]).all()):
        return "sign"
    mantissa, _ = torch.frexp(nz / nz.max())
    return "pow2" if bool((mantissa == 0.5).all()) else "float"
