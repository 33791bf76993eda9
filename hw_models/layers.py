"""Generic layer descriptions the cost model counts over: ``Dense`` and ``Conv2d`` (+ max-pool).

A network is a sequence of layers; layer ``j`` (0-based; the paper's ``h = j + 1``) maps the
``n_in`` outputs of the layer below to its ``n_out`` outputs. Sizes are flattened element counts.

Conventions (documented in SCHEMA.md):
- ``fwd_macs``: multiply-accumulates of the forward pass. For a convolution every output position
  costs ``in_ch * k * k`` MACs, padding positions included (hardware does not skip them).
- ``n_out`` of a convolution is counted *after* its max-pool: these are the neurons the next
  layer sees and the neurons that receive learning-channel signals (tanh is monotonic, so f' at a
  pooled neuron is f' at the selected conv output; the signal is routed back through the pool's
  stored switch without arithmetic).
- ``backward_macs``: MACs to carry a signal from this layer's outputs to its inputs through this
  layer's weights or a same-shape random kernel (BP, RBP): equal to ``fwd_macs`` (transposed
  convolution; zeros produced by max-pool routing are not skipped).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import bad, CostModelError

PADDINGS = ("same", "valid")


def _positive_int(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(what, value, "an integer >= 1")


@dataclass(frozen=True)
class Dense:
    """Fully connected layer ``n_in -> n_out`` (with a bias per output)."""

    n_in: int
    n_out: int
    name: str = ""

    def __post_init__(self):
        _positive_int("Dense n_in (layer input size)", self.n_in)
        _positive_int("Dense n_out (layer output size)", self.n_out)

    kind = "dense"

    @property
    def n_weights(self) -> int:
        return self.n_in * self.n_out

    @property
    def n_biases(self) -> int:
        return self.n_out

    @property
    def conv_out(self) -> int:
        """Elements where the activation is applied (before any pooling)."""
        return self.n_out

    @property
    def fwd_macs(self) -> int:
        return self.n_in * self.n_out

    @property
    def backward_macs(self) -> int:
        return self.n_in * self.n_out

    @property
    def pool_compares(self) -> int:
        return 0

    @property
    def switch_bits(self) -> int:
        return 0

    def describe(self) -> str:
        return f"dense {self.n_in}->{self.n_out}"


@dataclass(frozen=True)
class Conv2d:
    """2-D convolution ``in_ch x H x W -> out_ch x Ho x Wo`` with a k x k kernel, then an optional
    max-pool ``pool = (pool_k, pool_stride)``.

    ``padding``: ``"same"`` (``(k-1)//2`` zeros each side), ``"valid"`` (none) or an integer.
    ``pool_padding``: ``"same"`` (output ``ceil(Ho / stride)``, the usual "overlapping pooling"
    of cuda-convnet-style nets), ``"valid"`` (``floor((Ho - pool_k) / stride) + 1``) or an integer
    p of padding each side (``floor((Ho + 2p - pool_k) / stride) + 1``; the trainer's nets use
    ``pool_k // 2``, giving 32 -> 16 -> 8 -> 4 for the paper's CIFAR net).
    """

    in_ch: int
    out_ch: int
    k: int
    H: int
    W: int
    stride: int = 1
    padding: object = "same"
    pool: tuple[int, int] | None = None
    pool_padding: object = "same"
    name: str = ""

    kind = "conv"

    def __post_init__(self):
        for what in ("in_ch", "out_ch", "k", "H", "W", "stride"):
            _positive_int(f"Conv2d {what}", getattr(self, what))
        if isinstance(self.padding, str):
            if self.padding not in PADDINGS:
                raise bad("Conv2d padding", self.padding, "'same', 'valid' or an integer >= 0")
        elif isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            raise bad("Conv2d padding", self.padding, "'same', 'valid' or an integer >= 0")
        if self.pool is not None:
            if (not isinstance(self.pool, (tuple, list)) or len(self.pool) != 2):
                raise bad("Conv2d pool", self.pool, "None or (pool_k, pool_stride)")
            _positive_int("Conv2d pool size", self.pool[0])
            _positive_int("Conv2d pool stride", self.pool[1])
        if isinstance(self.pool_padding, str):
            if self.pool_padding not in PADDINGS:
                raise bad("Conv2d pool_padding", self.pool_padding, "'same', 'valid' or an integer >= 0")
        elif isinstance(self.pool_padding, bool) or not isinstance(self.pool_padding, int) or self.pool_padding < 0:
            raise bad("Conv2d pool_padding", self.pool_padding, "'same', 'valid' or an integer >= 0")
        ho, wo = self.out_hw
        if ho < 1 or wo < 1:
            raise CostModelError(f"Conv2d: a {self.k}x{self.k} kernel with padding {self.padding!r} and stride "
                                 f"{self.stride} leaves no output on a {self.H}x{self.W} input")
        hp, wp = self.pooled_hw
        if hp < 1 or wp < 1:
            raise CostModelError(f"Conv2d: pool {tuple(self.pool)} leaves no output on a {ho}x{wo} map")

    @property
    def pad(self) -> int:
        if self.padding == "same":
            return (self.k - 1) // 2
        if self.padding == "valid":
            return 0
        return int(self.padding)

    @property
    def out_hw(self) -> tuple[int, int]:
        p, k, s = self.pad, self.k, self.stride
        return (self.H + 2 * p - k) // s + 1, (self.W + 2 * p - k) // s + 1

    @property
    def pooled_hw(self) -> tuple[int, int]:
        ho, wo = self.out_hw
        if self.pool is None:
            return ho, wo
        pk, ps = self.pool
        if self.pool_padding == "same":
            return math.ceil(ho / ps), math.ceil(wo / ps)
        p = 0 if self.pool_padding == "valid" else self.pool_padding
        return (ho + 2 * p - pk) // ps + 1, (wo + 2 * p - pk) // ps + 1

    @property
    def n_in(self) -> int:
        return self.in_ch * self.H * self.W

    @property
    def conv_out(self) -> int:
        ho, wo = self.out_hw
        return self.out_ch * ho * wo

    @property
    def n_out(self) -> int:
        hp, wp = self.pooled_hw
        return self.out_ch * hp * wp

    @property
    def n_weights(self) -> int:
        return self.out_ch * self.in_ch * self.k * self.k

    @property
    def n_biases(self) -> int:
        return self.out_ch

    @property
    def fwd_macs(self) -> int:
        return self.conv_out * self.in_ch * self.k * self.k

    @property
    def backward_macs(self) -> int:
        return self.fwd_macs

    @property
    def pool_compares(self) -> int:
        if self.pool is None:
            return 0
        return self.n_out * (self.pool[0] * self.pool[0] - 1)

    @property
    def switch_bits(self) -> int:
        """Bits of the max-pool switches (argmax per pooled neuron) kept for routing signals back."""
        if self.pool is None:
            return 0
        return self.n_out * max(1, math.ceil(math.log2(self.pool[0] * self.pool[0])))

    def describe(self) -> str:
        ho, wo = self.out_hw
        s = f"conv{self.k}x{self.k} {self.in_ch}x{self.H}x{self.W}->{self.out_ch}x{ho}x{wo}"
        if self.pool is not None:
            hp, wp = self.pooled_hw
            s += f" pool{self.pool[0]}/{self.pool[1]}->{self.out_ch}x{hp}x{wp}"
        return s


Layer = Dense | Conv2d


def mlp(sizes) -> tuple[Dense, ...]:
    """Dense layers for layer sizes ``[N_0, N_1, ..., N_L]``."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise bad("layer sizes", sizes, "at least two sizes (input and output)")
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise bad(f"layer size N_{i}", n, "an integer >= 1")
    return tuple(Dense(sizes[i], sizes[i + 1], name=f"dense{i + 1}") for i in range(len(sizes) - 1))


def check_network(layers) -> tuple[Layer, ...]:
    """Validate a layer sequence: at least one layer, and each layer's input is the one below's output."""
    layers = tuple(layers)
    if not layers:
        raise bad("network", [], "at least one layer")
    for j, layer in enumerate(layers):
        if not isinstance(layer, (Dense, Conv2d)):
            raise bad(f"network layer {j + 1}", layer, "a Dense or Conv2d")
        if j and layers[j - 1].n_out != layer.n_in:
            raise CostModelError(f"network layer {j + 1} ({layer.describe()}): input size {layer.n_in} does not "
                                 f"match the output size {layers[j - 1].n_out} of layer {j} "
                                 f"({layers[j - 1].describe()})")
    return layers


def layer_name(layers, j: int) -> str:
    layer = layers[j]
    return layer.name or f"{layer.kind}{j + 1}"
