"""How the channel computes its products and sends its signals: in float32 (the default) or
bit-true (``formats.channel_accumulator`` fixed point; ``lowbit_rbp.core.datapath`` states the
datapath). One object per channel; the channel asks it for J = R @ B, for f' and for the sent
signal R = Q(J f'), and never looks at the formats itself."""
from __future__ import annotations

import torch

from ..core.datapath import bit_true, feedback_operand


class Datapath:
    """The float channel: torch products; f' computed from O (or read from a table / rounded into
    ``formats.fprime``), R = Q_signal(f' J) or f' Q_signal(J)."""

    def __init__(self, cfg, activation: str, q_signal, backend: str):
        f = cfg.formats
        self.q_signal = q_signal
        self.backend = backend
        self.quantize_after = f.quantize_at == "after_fprime"
        self.fprime_fmt = f.fprime
        self.table = None
        if f.fprime_lut:
            from kernels.reference import fprime_table
            self.table = fprime_table(activation, f.fprime_lut, f.fprime if f.fprime.kind != "float" else None)
        from ..core.quantizer import Quantizer
        # f' rounded into its format (deterministic formats only consume no random draws).
        self.q_fprime = Quantizer(f.fprime, cfg.train.seed * 4 + 8, backend)
        self.plain_fprime = self.table is None and f.fprime.kind == "float"

    def prepare_matrix(self, k: int, B: torch.Tensor) -> None:
        """A feedback matrix (re)drawn: nothing to precompute for float products."""

    def product(self, k: int, src: torch.Tensor, B: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.mm(src, B, out=out)

    def fprime(self, net, o: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """f'(S) from the forward output ``o``: computed, or read from the lookup table; rounded
        into ``formats.fprime``."""
        if self.table is not None:
            from kernels import dispatch
            dispatch.fprime_lut(o, self.table, out=out, backend=self.backend)
        else:
            net.fprime_(o, out)
        return self.q_fprime(out)

    def send(self, net, r: torch.Tensor, o: torch.Tensor, scratch: torch.Tensor, use_fprime: bool,
             seen=None, quantize=None) -> torch.Tensor:
        """The signal sent on, in place in ``r`` (the received J): f' and the signal format in
        the configured order; ``seen(r)`` is shown what f' multiplies (an op tally); ``quantize``
        rounds into the signal format in place of ``q_signal`` (a diagnostics probe that watches it)."""
        quantize = quantize or self.q_signal
        if not self.quantize_after:
            quantize(r)
        if use_fprime:
            if seen is not None:
                seen(r)
            if self.plain_fprime:
                net.mul_fprime_(r, o, scratch)
            else:
                r.mul_(self.fprime(net, o, scratch))
        if self.quantize_after:
            quantize(r)
        return r


class FixedDatapath(Datapath):
    """The bit-true channel: products summed in a fixed-point accumulator (saturating or wrapping
    at every add, ascending sender order; sparse {0,1} feedback by index lists, adds only), the
    sent signal the exact product J f' rounded once into ``formats.signal``."""

    def __init__(self, cfg, activation: str, q_signal, backend: str):
        super().__init__(cfg, activation, q_signal, backend)
        self.acc = cfg.formats.channel_accumulator
        self.binary = feedback_operand(cfg) == "binary"
        self.lists: dict = {}

    def prepare_matrix(self, k: int, B: torch.Tensor) -> None:
        if self.binary:
            from kernels.reference import binary_to_index_lists
            self.lists[k] = binary_to_index_lists(B.numpy())

    def product(self, k: int, src: torch.Tensor, B: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        from kernels import dispatch
        if self.binary:
            return dispatch.fixed_sparse_product(src, self.lists[k], self.acc, out=out, backend=self.backend)
        return dispatch.fixed_product(src, B, self.acc, out=out, backend=self.backend)

    def send(self, net, r: torch.Tensor, o: torch.Tensor, scratch: torch.Tensor, use_fprime: bool,
             seen=None, quantize=None) -> torch.Tensor:
        """As ``Datapath.send``; with f', R = Q(J f') is one fused rounding, which a probe does not see."""
        if not use_fprime:
            return (quantize or self.q_signal)(r)
        if seen is not None:
            seen(r)
        from kernels import dispatch
        q = self.q_signal
        dispatch.fixed_scale_round(r, self.fprime(net, o, scratch), q.fmt, seed=q.seed, counter=q.counter, out=r,
                                   backend=self.backend)
        q.counter += r.numel()
        return r


def make_datapath(cfg, activation: str, q_signal, backend: str) -> Datapath:
    return (FixedDatapath if bit_true(cfg.formats) else Datapath)(cfg, activation, q_signal, backend)
