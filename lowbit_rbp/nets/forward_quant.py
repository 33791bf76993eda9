"""Low-precision forward path through Brevitas quantizers (``model.weight_bits``, ``model.act_bits``).

So a user can study a low-bit forward path together with a low-bit learning channel. Weights:
Brevitas ``Int8WeightPerTensorFloat`` at ``weight_bits`` (signed, narrow range: integer codes
-(2^(b-1)-1)..2^(b-1)-1, one scale per tensor = max|W| / (2^(b-1)-1), recomputed from the current
float weights at every forward). Activations (every hidden layer's output, after the activation
function): Brevitas ``Int8ActPerTensorFloat`` at ``act_bits`` with a constant scale 2^-(b-1), so
tanh outputs in [-1, 1] land on codes -2^(b-1)..2^(b-1)-1.

The training loop keeps float "shadow" weights and updates them; the forward, the BP channel's
transposed weights and f' (from the quantized outputs) see the quantized values, the
straight-through reading of quantized training. Brevitas is imported only when a quantized
forward is asked for (it is an optional dependency: ``pip install -e '.[quant]'``).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


def _brevitas():
    try:
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
    except ImportError as exc:  # pragma: no cover - brevitas is installed by the Makefile
        raise ConfigError("model.weight_bits/act_bits need Brevitas: pip install -e '.[quant]' "
                          f"(import failed: {exc})") from None
    return qnn, Int8WeightPerTensorFloat, Int8ActPerTensorFloat


class ForwardQuant:
    """Per-layer Brevitas quantizers sharing storage with the net's float weights."""

    def __init__(self, weights: list[torch.Tensor], weight_bits: int, act_bits: int):
        qnn, wq, aq = _brevitas()
        self.weight_bits, self.act_bits = weight_bits, act_bits
        self._w = []
        for w in weights:
            if not weight_bits:
                self._w.append(None)
                continue
            if w.dim() == 4:
                m = qnn.QuantConv2d(w.shape[1], w.shape[0], w.shape[2], bias=False, weight_quant=wq,
                                    weight_bit_width=weight_bits)
            else:
                m = qnn.QuantLinear(w.shape[1], w.shape[0], bias=False, weight_quant=wq, weight_bit_width=weight_bits)
            m.weight = torch.nn.Parameter(w, requires_grad=False)   # shares the float weights' storage
            self._w.append(m)
        self._a = (qnn.QuantIdentity(act_quant=aq, bit_width=act_bits, scaling_impl_type="const", scaling_init=1.0,
                                     return_quant_tensor=True) if act_bits else None)

    def weight(self, k: int, w: torch.Tensor) -> torch.Tensor:
        if self._w[k] is None:
            return w
        with torch.no_grad():
            return self._w[k].quant_weight().value

    def weight_quant(self, k: int):
        """The Brevitas quant tensor of layer k's weights (value, scale, bit width), for inspection."""
        with torch.no_grad():
            return self._w[k].quant_weight()

    def activation_(self, k: int, o: torch.Tensor) -> torch.Tensor:
        if self._a is None:
            return o
        with torch.no_grad():
            return o.copy_(self._a(o).value)

    @property
    def activation_scale(self) -> float:
        return 2.0 ** -(self.act_bits - 1)
