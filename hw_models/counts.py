"""Counts of one training example, per layer and phase: operations by operand width, memory
accesses, random bits, and the wires of the floorplan.

Phases (named to line up with DNN+NeuroSim's FW / AG / WG / WU and with Accelergy's action counts):
    forward           FW  forward pass (MACs, activations, max-pool, softmax)
    error_projection  AG  the learning channel: output error, feedback products, f', quantizers, dropout
    weight_gradient   WG  per-example update R^h (O^{h-1})^T, its quantizer, minibatch accumulation
    weight_update     WU  applying the accumulated update once per minibatch (counts / batch size)
    channel_update    --  learning or recomputing the channel itself: ARBP/ASRBP dC, SBP products,
                          feedback re-sampling (per-minibatch parts / batch size)

Every per-minibatch action is charged per example as ``count / batch_size``; counts are floats
(expected values where sparsity or dropout is drawn at random).

Algorithms differ only in their *links* (which layer's signal reaches which layer, through what
matrix): one small function per algorithm in ``CHANNEL_RULES``; everything else is shared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lowbit_rbp.core.config import RunConfig
from lowbit_rbp.core.feedback import FeedbackSpec, build_feedback, parse_feedback_spec
from lowbit_rbp.core.formats import parse_format

from . import operands as opd
from .errors import CostModelError, bad
from .floorplan import Floorplan, WireGroup
from .layers import (Conv2d, Dense, NETWORKS, TRAIN_EXAMPLES, check_network, layer_name, network_from_config)
from .operands import BINARY, FLOAT32, Operand
# re-exported: the records and phase names live in records.py (no dependency on the training code)
from .records import ARITH_OPS, NEUROSIM_PHASE, PHASES, Action, Link, MemoryRecord  # noqa: F401

STORAGE_MODES = ("stored", "regenerated")
DROPOUT_RNG_BITS = 8     # random bits per dropout decision (compared against an 8-bit threshold)
LFSR_STATE_BITS = 64     # seed/state kept per regenerated matrix
FLOAT_RNG_BITS = 32      # random bits to draw one float feedback entry when re-sampling


# ------------------------------------------------------------------------------------------------
# records

@dataclass
class Stage:
    what: str
    products: float
    adds: float
    a: Operand
    b: Operand
    fan_in: float


@dataclass
class MapCost:
    """What carrying one sender's signal to one receiving layer costs per example (before dropout)."""

    kind: str               # dense | conv | lowrank | per_weight
    senders: int
    receivers: int
    dense_products: float   # products of the dense map (for adaptive updates)
    stages: list
    connections: float      # sender->receiver-tile connections (point to point)
    active_senders: float   # sender neurons with at least one connection (broadcast wires)
    scale_ops: float = 0.0
    scale_op: str | None = None
    storage_kind: str = "dense"
    storage_bits: float = 0.0
    read_bits: float = 0.0  # bits read from the feedback store per example
    nnz: float = 0.0
    drawn: str = "expected"  # expected | actual


@dataclass
class Setup:
    cfg: RunConfig
    layers: tuple
    algorithm: str
    error: Operand
    signal: Operand
    feedback: Operand
    update: Operand
    acc: Operand
    weight: Operand
    act: Operand
    fb_spec: FeedbackSpec
    batch: int
    storage: str
    matrices: dict
    notes: list = field(default_factory=list)

    @property
    def L(self) -> int:
        return len(self.layers)

    @property
    def fprime(self) -> bool:
        return self.cfg.channel.fprime

    @property
    def dropout(self) -> float:
        return self.cfg.channel.dropout

    @property
    def quantize_after(self) -> bool:
        return self.cfg.formats.quantize_at == "after_fprime"

    @property
    def signal_quantized(self) -> bool:
        return opd.is_quantized(self.cfg.formats.signal)

    @property
    def error_quantized(self) -> bool:
        return opd.is_quantized(self.cfg.formats.error)

    @property
    def update_quantized(self) -> bool:
        return opd.is_quantized(self.cfg.formats.update)

    @property
    def rule(self) -> "ChannelRule":
        return CHANNEL_RULES[self.algorithm]

    def trains(self, j: int) -> bool:
        if j >= self.L - self.cfg.channel.fixed_top:
            return False
        return j == self.L - 1 or self.rule.trains_hidden

    def name(self, j: int) -> str:
        return layer_name(self.layers, j)


# ------------------------------------------------------------------------------------------------
# one function per algorithm: the links of its learning channel

def _hidden(s: Setup) -> range:
    return range(s.L - 1)


def links_bp(s: Setup) -> list[Link]:
    """BP: each hidden layer receives the layer above's signal through the forward weights W^{h+1}."""
    return [Link(j, j + 1, "forward") for j in _hidden(s)]


def links_rbp(s: Setup) -> list[Link]:
    """RBP (and ARBP): layer to layer through a fixed random matrix (or kernel) C^h."""
    return [Link(j, j + 1, "random") for j in _hidden(s)]


def links_srbp(s: Setup) -> list[Link]:
    """SRBP (and ASRBP): the output error straight to every hidden layer through C^h (N_L x N_h)."""
    return [Link(j, s.L - 1, "random") for j in _hidden(s)]


def links_sbp(s: Setup) -> list[Link]:
    """SBP: the output error straight to every hidden layer through the product of the forward matrices."""
    if any(not isinstance(layer, Dense) for layer in s.layers):
        raise CostModelError("channel.algorithm 'sbp': skipped BP (products of forward matrices) is modelled "
                             "for dense networks only")
    return [Link(j, s.L - 1, "forward_product") for j in _hidden(s)]


def links_top(s: Setup) -> list[Link]:
    """Top layer only: no learning channel; hidden layers stay at their initial values."""
    return []


@dataclass(frozen=True)
class ChannelRule:
    links: object
    adaptive: bool = False
    sbp: bool = False
    trains_hidden: bool = True


CHANNEL_RULES = {
    "bp": ChannelRule(links_bp),
    "rbp": ChannelRule(links_rbp),
    "srbp": ChannelRule(links_srbp),
    "sbp": ChannelRule(links_sbp, sbp=True),
    "arbp": ChannelRule(links_rbp, adaptive=True),
    "asrbp": ChannelRule(links_srbp, adaptive=True),
    "top": ChannelRule(links_top, trains_hidden=False),
}


# ------------------------------------------------------------------------------------------------
# set-up from a RunConfig

def _as_array(m) -> np.ndarray:
    if hasattr(m, "detach"):
        m = m.detach().cpu().numpy()
    return np.asarray(m)


def resolve_network(cfg: RunConfig, network=None) -> tuple:
    if network is None or network == "mlp":
        return network_from_config(cfg)
    if isinstance(network, str):
        if network not in NETWORKS:
            raise bad("network", network, ", ".join(NETWORKS))
        return check_network(NETWORKS[network]())
    return check_network(network)


def make_setup(cfg: RunConfig, *, network=None, feedback_matrices=None, feedback_seed=None,
               feedback_storage: str = "stored", weight_format="float32", activation_format="float32") -> Setup:
    if not isinstance(cfg, RunConfig):
        raise bad("cost model config", type(cfg).__name__, "a lowbit_rbp.core.config.RunConfig")
    cfg.validate()
    layers = resolve_network(cfg, network)
    if cfg.channel.fixed_top >= len(layers):
        raise bad("channel.fixed_top", cfg.channel.fixed_top, f"0..{len(layers) - 1} for this {len(layers)}-layer net")
    if feedback_storage not in STORAGE_MODES:
        raise bad("feedback_storage", feedback_storage, ", ".join(STORAGE_MODES))
    f = cfg.formats
    acc = opd.operand(f.accumulator)
    if acc.kind in ("log", "sign"):
        raise bad("formats.accumulator", f.accumulator, "float32 or fixed:... (a log-quantized accumulator "
                  "cannot accumulate; the cost model has no adder for it)")
    s = Setup(cfg=cfg, layers=layers, algorithm=cfg.channel.algorithm,
              error=opd.operand(f.error), signal=opd.operand(f.signal), feedback=opd.operand(f.feedback),
              update=opd.operand(f.update), acc=acc, weight=opd.operand(parse_format(weight_format)),
              act=opd.operand(parse_format(activation_format)), fb_spec=parse_feedback_spec(cfg.channel.feedback),
              batch=cfg.train.batch_size, storage=feedback_storage, matrices={})
    if cfg.channel.per_weight and s.algorithm in ("bp", "sbp", "top"):
        raise CostModelError(f"channel.per_weight needs a random channel (rbp, srbp, arbp, asrbp); "
                             f"got {s.algorithm!r}")
    if s.fb_spec.needs_forward_sign and s.algorithm not in ("rbp", "arbp"):
        raise CostModelError(f"channel.feedback: sign_concordant needs a layer-to-layer random channel "
                             f"(rbp, arbp); got algorithm {s.algorithm!r}")
    if feedback_matrices is not None and feedback_seed is not None:
        raise CostModelError("give either feedback_matrices or feedback_seed, not both")
    s.matrices = _resolve_matrices(s, feedback_matrices, feedback_seed)
    return s


def _link_shape(s: Setup, link: Link) -> tuple[int, int]:
    """(sender, receiver) shape of a dense feedback matrix, as lowbit_rbp.core.feedback builds it."""
    return s.layers[link.sender].n_out, s.layers[link.receiver].n_out


def _dense_link(s: Setup, link: Link) -> bool:
    if link.sender == link.receiver + 1:
        return isinstance(s.layers[link.sender], Dense)
    return True


def _resolve_matrices(s: Setup, given, seed) -> dict:
    random_links = [lk for lk in s.rule.links(s) if lk.source == "random"]
    if given is None and seed is None:
        return {}
    if not random_links or s.cfg.channel.per_weight:
        if given:
            raise CostModelError(f"feedback_matrices given, but algorithm {s.algorithm!r}"
                                 + (" with per_weight feedback" if s.cfg.channel.per_weight else "")
                                 + " has no per-neuron random feedback matrices to use them for")
        return {}
    out = {}
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise bad("feedback_seed", seed, "an integer >= 0")
        rng = np.random.default_rng(seed)
        skipped = s.algorithm in ("srbp", "asrbp")
        for lk in random_links:
            if _dense_link(s, lk) and s.fb_spec.kind != "lowrank":
                out[lk.receiver] = build_feedback(s.fb_spec, _link_shape(s, lk), rng, skipped=skipped)
        return out
    if isinstance(given, dict):
        items = list(given.items())
    elif isinstance(given, (list, tuple)):
        items = list(enumerate(given))
    else:
        raise bad("feedback_matrices", type(given).__name__, "a dict {k: matrix} keyed like Channel.B, or a list")
    valid = {lk.receiver: lk for lk in random_links}
    for k, m in items:
        if k not in valid:
            raise bad("feedback_matrices key", k, f"receiving weight-layer indices {sorted(valid)} (0-based, as Channel.B)")
        arr = _as_array(m)
        lk = valid[k]
        if _dense_link(s, lk):
            want = _link_shape(s, lk)
        else:
            nxt = s.layers[lk.sender]
            want = (nxt.out_ch, nxt.in_ch, nxt.k, nxt.k)
        if tuple(arr.shape) != tuple(want):
            raise CostModelError(f"feedback_matrices[{k}]: shape {tuple(arr.shape)} does not fit the channel into "
                                 f"layer {k + 1}; expected {tuple(want)} (sender, receiver)")
        if not np.all(np.isfinite(arr)):
            raise CostModelError(f"feedback_matrices[{k}]: contains non-finite values")
        out[k] = arr
    return out


# ------------------------------------------------------------------------------------------------
# the cost of one link's map

def _expected_extra_adds(fan: float, p: float, receivers: float) -> float:
    """Expected adds to sum the non-zero terms: receivers x E[max(X - 1, 0)], X ~ Binomial(fan, p)."""
    n = max(int(round(fan)), 0)
    if n == 0 or p <= 0:
        return 0.0
    return receivers * (n * p - 1.0 + (1.0 - p) ** n)


def _sparse_p(spec: FeedbackSpec, sender: float, receiver: float) -> float:
    """Bernoulli probability of a sparse entry, as ``lowbit_rbp.core.feedback.build_feedback`` draws it:
    n / sender (``per=receiver``, n non-zeros per receiving neuron) or n / receiver (``per=sender``)."""
    per = getattr(spec, "per", "receiver")
    return min(1.0, spec.n / (sender if per == "receiver" else receiver))


def _scale_op(scale: float) -> str | None:
    if scale == 1.0:
        return None
    e = math.log2(abs(scale)) if scale else 0.0
    return "shift" if scale and float(e).is_integer() else "mult"


def _binary_scale(arr: np.ndarray):
    """If every non-zero of ``arr`` has the same magnitude, that magnitude (a binary matrix), else None."""
    nz = np.abs(arr[arr != 0])
    if nz.size == 0:
        return 1.0
    v = float(nz[0])
    return v if np.all(nz == nz[0]) else None


def _idx_bits(n: float) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def map_cost(s: Setup, link: Link, sig: Operand) -> MapCost:
    """Products, adds, connections and storage of the channel into ``link.receiver`` for one example."""
    recv = s.layers[link.receiver]
    rn = recv.n_out
    adaptive = s.rule.adaptive
    spec = s.fb_spec
    if link.source == "forward":
        b_op, kind_src = s.weight, "forward"
    elif link.source == "forward_product":
        b_op, kind_src = opd.result(s.weight, s.weight) if not s.weight.is_float else FLOAT32, "product"
    else:
        b_op, kind_src = s.feedback, "random"

    # per-weight feedback: one random weight per (sender, forward weight of the receiving layer)
    if s.cfg.channel.per_weight:
        if not isinstance(recv, Dense):
            raise CostModelError("channel.per_weight is modelled for dense layers only")
        sn = s.layers[link.sender].n_out
        nw = recv.n_weights
        if spec.kind == "sparse":
            p = _sparse_p(spec, sn, nw)
            stage = Stage("feedback_product", sn * nw * p, _expected_extra_adds(sn, p, nw), sig, BINARY, sn)
            conns = sn * rn * (1.0 - (1.0 - p) ** recv.n_in)
            bits = sn * nw * p * _idx_bits(sn)
        else:
            stage = Stage("feedback_product", sn * nw, (sn - 1) * nw, sig, b_op, sn)
            conns = sn * rn
            bits = sn * nw * b_op.bits
        return MapCost("per_weight", sn, rn, sn * nw, [stage], conns, sn, storage_kind="dense",
                       storage_bits=bits, read_bits=bits, nnz=stage.products)

    # convolution kernel map (BP / RBP into the layer below a convolution)
    if link.sender == link.receiver + 1 and isinstance(s.layers[link.sender], Conv2d):
        nxt = s.layers[link.sender]
        dense_products = float(nxt.backward_macs)
        fan = dense_products / rn
        kernel = nxt.n_weights
        arr = s.matrices.get(link.receiver)
        if kind_src == "random" and spec.kind == "lowrank":
            raise CostModelError("feedback 'lowrank' is defined for dense maps; the channel into layer "
                                 f"{link.receiver + 1} is a convolution kernel")
        density, binary_scale, drawn = 1.0, None, "expected"
        if kind_src == "random" and arr is not None:
            density = float(np.count_nonzero(arr)) / arr.size
            binary_scale = _binary_scale(arr) if spec.kind == "sparse" else None
            drawn = "actual"
        elif kind_src == "random" and spec.kind == "sparse" and not adaptive:
            density = _sparse_p(spec, nxt.out_ch * nxt.k * nxt.k, nxt.in_ch * nxt.k * nxt.k)
            binary_scale = _sparse_scale(s, spec)
        products = dense_products * density
        if binary_scale is not None and not adaptive:
            p = density
            st = Stage("feedback_product", products, _expected_extra_adds(fan, p, rn), sig, BINARY, fan)
            scale_ops = rn * (1.0 - (1.0 - p) ** max(int(round(fan)), 0))
            nnz_k = kernel * p
            storage = nnz_k * _idx_bits(nxt.out_ch * nxt.k * nxt.k) + (nxt.in_ch + 1) * _idx_bits(nnz_k + 1)
            return MapCost("conv", nxt.n_out, rn, dense_products, [st], products, nxt.n_out,
                           scale_ops, _scale_op(binary_scale), "sparse_index", storage, storage, nnz_k, drawn)
        st = Stage("feedback_product", products, max(products - rn, 0.0), sig, b_op, fan)
        if kind_src == "forward":
            return MapCost("conv", nxt.n_out, rn, dense_products, [st], products, nxt.n_out,
                           storage_kind="shared_forward", storage_bits=0.0,
                           read_bits=kernel * s.weight.bits, nnz=kernel)
        return MapCost("conv", nxt.n_out, rn, dense_products, [st], products, nxt.n_out,
                       storage_kind="dense", storage_bits=kernel * density * b_op.bits,
                       read_bits=kernel * density * b_op.bits, nnz=kernel * density, drawn=drawn)

    # dense map (S x Rn)
    sn = s.layers[link.sender].n_out
    dense_products = float(sn * rn)
    if kind_src == "forward":
        w = s.layers[link.sender]
        st = Stage("feedback_product", dense_products, (sn - 1) * rn, sig, b_op, sn)
        return MapCost("dense", sn, rn, dense_products, [st], dense_products, sn, storage_kind="shared_forward",
                       storage_bits=0.0, read_bits=w.n_weights * s.weight.bits, nnz=dense_products)
    if kind_src == "product":
        st = Stage("feedback_product", dense_products, (sn - 1) * rn, sig, b_op, sn)
        shared = link.receiver == s.L - 2     # the product above the last hidden layer is W^L itself
        bits = 0.0 if shared else dense_products * b_op.bits
        return MapCost("dense", sn, rn, dense_products, [st], dense_products, sn,
                       storage_kind="shared_forward" if shared else "product", storage_bits=bits,
                       read_bits=dense_products * b_op.bits, nnz=dense_products)
    if spec.kind == "lowrank" and not adaptive:
        r = spec.r
        if r > min(sn, rn):
            raise bad(f"feedback lowrank r (channel into layer {link.receiver + 1})", r,
                      f"1..{min(sn, rn)} for a {sn}x{rn} matrix")
        st1 = Stage("feedback_product", sn * r, (sn - 1) * r, sig, b_op, sn)
        mid = opd.accumulator(sig, b_op, sn)
        st2 = Stage("feedback_product_factor2", r * rn, (r - 1) * rn, mid, b_op, r)
        bits = (sn + rn) * r * b_op.bits
        return MapCost("lowrank", sn, rn, dense_products, [st1, st2], sn * r, sn, storage_kind="lowrank",
                       storage_bits=bits, read_bits=bits, nnz=(sn + rn) * r)
    arr = s.matrices.get(link.receiver)
    if adaptive and spec.kind in ("sparse", "lowrank"):
        s.notes.append(f"{s.algorithm}: the adaptive channel updates every entry of C, so the {spec.kind} "
                       f"feedback becomes dense after the first update; it is costed as dense")
        arr = None
    if spec.kind == "sparse" and not adaptive:
        scale = _sparse_scale(s, spec)
        if arr is not None:
            nnz_col = np.count_nonzero(arr, axis=0).astype(float)
            bscale = _binary_scale(arr)
            products = float(nnz_col.sum())
            adds = float(np.maximum(nnz_col - 1, 0).sum())
            active = float(np.count_nonzero(np.any(arr != 0, axis=1)))
            receivers_hit = float(np.count_nonzero(nnz_col))
            drawn = "actual"
            if bscale is None:     # a quantized feedback format left several magnitudes: real products
                st = Stage("feedback_product", products, adds, sig, b_op, sn)
                bits = products * (_idx_bits(sn) + b_op.bits)
                return MapCost("dense", sn, rn, dense_products, [st], products, active, storage_kind="sparse_index",
                               storage_bits=bits, read_bits=bits, nnz=products, drawn=drawn)
            scale = bscale
        else:
            p = _sparse_p(spec, sn, rn)
            products = dense_products * p
            adds = _expected_extra_adds(sn, p, rn)
            active = sn * (1.0 - (1.0 - p) ** rn)
            receivers_hit = rn * (1.0 - (1.0 - p) ** sn)
            drawn = "expected"
        st = Stage("feedback_product", products, adds, sig, BINARY, sn)
        bits = products * _idx_bits(sn) + (rn + 1) * _idx_bits(products + 1)
        return MapCost("dense", sn, rn, dense_products, [st], products, active, receivers_hit if _scale_op(scale) else 0.0,
                       _scale_op(scale), "sparse_index", bits, bits, products, drawn)
    # dense random (glorot_*, sign_concordant, or an adaptive channel)
    if arr is not None:
        nnz_col = np.count_nonzero(arr, axis=0).astype(float)
        products = float(nnz_col.sum())
        adds = float(np.maximum(nnz_col - 1, 0).sum())
        active = float(np.count_nonzero(np.any(arr != 0, axis=1)))
        drawn = "actual"
    else:
        products, adds, active, drawn = dense_products, float((sn - 1) * rn), float(sn), "expected"
    st = Stage("feedback_product", products, adds, sig, b_op, sn)
    bits = dense_products * b_op.bits
    return MapCost("dense", sn, rn, dense_products, [st], products, active, storage_kind="dense",
                   storage_bits=bits, read_bits=bits, nnz=products, drawn=drawn)


def _sparse_scale(s: Setup, spec: FeedbackSpec) -> float:
    scale = spec.scale
    if scale == "auto":
        scale = "one" if s.algorithm in ("srbp", "asrbp") else "inv_n"
    return 1.0 / spec.n if scale == "inv_n" and spec.n > 0 else 1.0


# ------------------------------------------------------------------------------------------------
# the phases

@dataclass
class Counts:
    setup: Setup
    actions: list
    wires: list
    memory: list
    links: list
    maps: dict
    signal_ops: dict       # receiving layer j -> operand of R^j at its synapses
    notes: list


def _bytes(bits: float) -> float:
    return bits / 8.0


class _Acc:
    """Collects actions; drops zero counts."""

    def __init__(self):
        self.items: list[Action] = []

    def op(self, phase, layer, what, op, operand_or_dtype, bits_a, bits_b, count):
        if count <= 0:
            return
        dtype = operand_or_dtype if isinstance(operand_or_dtype, str) else operand_or_dtype.dtype
        self.items.append(Action(phase, layer, what, op, dtype, int(bits_a), int(bits_b), float(count)))

    def product(self, phase, layer, what, a: Operand, b: Operand, count):
        p = opd.product_op(a, b)
        if p is not None:
            self.op(phase, layer, what, p.op, p.dtype, p.bits_a, p.bits_b, count)

    def add(self, phase, layer, what, acc: Operand, count):
        self.op(phase, layer, what, "add", acc.dtype, acc.bits, 0, count)

    def mem(self, phase, layer, what, op, bits, capacity_bits):
        if bits <= 0:
            return
        self.items.append(Action(phase, layer, what, op, "sram", 1, 0, float(bits), "bit",
                                 _bytes(capacity_bits)))

    def rng(self, phase, layer, what, bits):
        if bits <= 0:
            return
        self.items.append(Action(phase, layer, what, "rng_bit", "lfsr", 1, 0, float(bits), "bit"))


def _activation_ops(acc: _Acc, s: Setup, phase: str, h: int, n: float, derivative: bool):
    """Hidden activation (forward) or its derivative f' (channel), per neuron."""
    a = s.cfg.model.activation
    if derivative:
        if a in ("tanh", "logistic"):      # 1 - O^2 or O(1 - O): one multiply, one add
            acc.product(phase, h, "fprime_eval", s.act, s.act, n)
            acc.add(phase, h, "fprime_eval", s.act, n)
        elif a == "relu":
            acc.op(phase, h, "fprime_eval", "compare", s.act, s.act.bits, 0, n)
        return
    if a in ("tanh", "logistic"):
        acc.op(phase, h, "activation", "activation_fn", s.act, s.act.bits, 0, n)
    elif a == "relu":
        acc.op(phase, h, "activation", "compare", s.act, s.act.bits, 0, n)


def _fprime_operand(s: Setup) -> Operand | None:
    a = s.cfg.model.activation
    if not s.fprime or a == "linear":
        return None
    return BINARY if a == "relu" else s.act


def count_example(s: Setup, floorplan: Floorplan | None = None) -> Counts:
    """All actions, wires and storage of one training example under setup ``s``."""
    fp = floorplan or Floorplan()
    acc = _Acc()
    wires: list[WireGroup] = []
    memory: list[MemoryRecord] = []
    L, layers, batch = s.L, s.layers, float(s.batch)
    n_tiles = L + 1
    wb, ab = s.weight.bits, s.act.bits

    # -- forward ------------------------------------------------------------------------------
    for j, layer in enumerate(layers):
        h = j + 1
        acc.product("forward", h, "forward_mac", s.act, s.weight, layer.fwd_macs)
        fan = layer.fwd_macs / layer.conv_out
        acc.add("forward", h, "forward_accumulate", opd.accumulator(s.act, s.weight, fan), layer.fwd_macs)
        if j < L - 1:
            _activation_ops(acc, s, "forward", h, layer.conv_out, derivative=False)
        else:   # softmax: exp, sum, normalise
            acc.op("forward", h, "softmax", "activation_fn", s.act, ab, 0, layer.n_out)
            acc.add("forward", h, "softmax", s.act, layer.n_out)
            acc.product("forward", h, "softmax", s.act, s.act, layer.n_out)
        acc.op("forward", h, "max_pool", "compare", s.act, ab, 0, layer.pool_compares)
        wbits = (layer.n_weights + layer.n_biases) * wb
        acc.mem("forward", h, "weights", "sram_read", wbits, wbits)
        acc.mem("forward", h, "activations", "sram_read", layer.n_in * ab, layer.n_in * ab)
        acc.mem("forward", h, "activations", "sram_write", layer.n_out * ab, layer.n_out * ab)
        acc.mem("forward", h, "pool_switches", "sram_write", layer.switch_bits, layer.switch_bits)
        memory.append(MemoryRecord(h, "weights", "dense", wbits, layer.n_weights + layer.n_biases))
        if layer.switch_bits:
            memory.append(MemoryRecord(h, "pool_switches", "buffer", layer.switch_bits))
        links = layer.fwd_macs if fp.wire_model == "point_to_point" else layer.n_in
        wires.append(WireGroup("forward", j, h, layer.fwd_macs, links, fp.distance_mm(j, h, n_tiles), links, ab))

    # -- learning channel (error projection) --------------------------------------------------
    top = L - 1
    out_n = layers[top].n_out
    acc.add("error_projection", L, "output_error", s.act, out_n)
    if s.error_quantized:
        acc.op("error_projection", L, "quantize_error", "compare", s.act, ab, 0, out_n)
    acc.mem("error_projection", L, "activations", "sram_read", out_n * ab, out_n * ab)
    acc.mem("error_projection", L, "signals", "sram_write", out_n * s.error.bits, out_n * s.error.bits)
    signal_ops = {top: s.error}
    links = s.rule.links(s)
    maps = {}
    q = 1.0 - s.dropout
    fprime_op = _fprime_operand(s)
    for link in sorted(links, key=lambda lk: -lk.receiver):      # top-down: a sender's R exists first
        j, h = link.receiver, link.receiver + 1
        sig = signal_ops[link.sender]
        mc = map_cost(s, link, sig)
        maps[j] = mc
        rn = mc.receivers
        per_w = layers[j].n_in if mc.kind == "per_weight" else 1
        # feedback products and their sums (dropped receivers skip theirs)
        last_acc = None
        for st in mc.stages:
            acc.product("error_projection", h, st.what, st.a, st.b, st.products * q)
            last_acc = opd.accumulator(st.a, st.b, st.fan_in)
            acc.add("error_projection", h, "feedback_accumulate", last_acc, st.adds * q)
        J = last_acc
        if mc.scale_op == "shift":
            acc.op("error_projection", h, "sparse_scale", "shift", J, J.bits, 0, mc.scale_ops * q)
        elif mc.scale_op == "mult":
            acc.product("error_projection", h, "sparse_scale", J, FLOAT32 if J.is_float else J, mc.scale_ops * q)
        if s.dropout:
            acc.rng("error_projection", h, "dropout_mask", rn * DROPOUT_RNG_BITS)
            acc.op("error_projection", h, "dropout_mask", "compare", "int", DROPOUT_RNG_BITS, 0, rn)
        # f', quantizer, and the operand R^h the layer keeps and sends on
        Jq = s.signal if s.signal_quantized else J
        n_recv = rn * q * per_w
        if fprime_op is not None:
            _activation_ops(acc, s, "error_projection", h, rn * q, derivative=True)
            if s.quantize_after:
                acc.product("error_projection", h, "fprime_product", J, fprime_op, n_recv)
                pre = opd.result(J, fprime_op)
                R = s.signal if s.signal_quantized else pre
            else:
                if s.signal_quantized:
                    acc.op("error_projection", h, "quantize_signal", "compare", J, J.bits, 0, n_recv)
                acc.product("error_projection", h, "fprime_product", Jq, fprime_op, n_recv)
                pre = None
                R = opd.result(Jq, fprime_op)
            if s.quantize_after and s.signal_quantized:
                acc.op("error_projection", h, "quantize_signal", "compare", pre, pre.bits, 0, n_recv)
            acc.mem("error_projection", h, "activations", "sram_read", rn * q * ab, layers[j].n_out * ab)
        else:
            if s.signal_quantized:
                acc.op("error_projection", h, "quantize_signal", "compare", J, J.bits, 0, n_recv)
            R = Jq
        signal_ops[j] = R
        # memory: the feedback store (or its LFSR), the sender's signals read, R^h written
        if mc.storage_kind == "shared_forward":
            wl = layers[link.sender]
            acc.mem("error_projection", h, "forward_weights_transposed", "sram_read", mc.read_bits * q,
                    (wl.n_weights + wl.n_biases) * wb)
            memory.append(MemoryRecord(h, "feedback", "shared_forward", 0.0, mc.nnz,
                                       f"uses W^{link.sender + 1} (weight transport)"))
        elif s.storage == "regenerated" and link.source == "random":
            acc.rng("error_projection", h, "feedback_regenerated", mc.read_bits * q)
            memory.append(MemoryRecord(h, "feedback", "regenerated", LFSR_STATE_BITS, mc.nnz,
                                       f"LFSR state; regenerates {mc.read_bits:g} bits ({mc.storage_kind}) per example"))
        else:
            acc.mem("error_projection", h, "feedback_matrix", "sram_read", mc.read_bits * q, mc.storage_bits)
            memory.append(MemoryRecord(h, "feedback", mc.storage_kind, mc.storage_bits, mc.nnz, mc.drawn))
        sender_n = layers[link.sender].n_out
        acc.mem("error_projection", h, "signals", "sram_read", sender_n * sig.bits, sender_n * sig.bits)
        acc.mem("error_projection", h, "signals", "sram_write", rn * q * R.bits, rn * R.bits)
        # wires: sender tile -> receiver tile
        length = fp.distance_mm(link.sender + 1, h, n_tiles)
        if fp.wire_model == "point_to_point":
            wl_links, trav = mc.connections, mc.connections * q
        else:
            wl_links, trav = mc.active_senders, mc.active_senders
        wires.append(WireGroup("error_projection", link.sender + 1, h, mc.connections, wl_links, length, trav, sig.bits))

    # -- weight gradient and update -----------------------------------------------------------
    for j, layer in enumerate(layers):
        if not s.trains(j):
            continue
        h = j + 1
        R = signal_ops.get(j)
        if R is None:      # cannot happen for a trained layer; guard against rule mistakes
            raise AssertionError(f"layer {h} is trained but receives no signal")
        acc.product("weight_gradient", h, "update_product", R, s.act, layer.fwd_macs)
        u = opd.result(R, s.act)
        if s.update_quantized:
            acc.op("weight_gradient", h, "quantize_update", "compare", u, u.bits, 0, layer.n_weights)
        acc.add("weight_gradient", h, "update_accumulate", s.acc, layer.fwd_macs)
        acc.add("weight_gradient", h, "bias_accumulate", s.acc, layer.conv_out)
        nwb = layer.n_weights + layer.n_biases
        acc.mem("weight_gradient", h, "activations", "sram_read", layer.n_in * ab, layer.n_in * ab)
        acc.mem("weight_gradient", h, "signals", "sram_read", layer.n_out * R.bits, layer.n_out * R.bits)
        acc.mem("weight_gradient", h, "gradient_accumulator", "sram_read", nwb * s.acc.bits, nwb * s.acc.bits)
        acc.mem("weight_gradient", h, "gradient_accumulator", "sram_write", nwb * s.acc.bits, nwb * s.acc.bits)
        memory.append(MemoryRecord(h, "gradient_accumulator", "dense", nwb * s.acc.bits, nwb))
        memory.append(MemoryRecord(h, "activations_kept", "buffer", layer.n_in * ab, layer.n_in,
                                   "O^{h-1} kept from the forward pass for the update"))
        memory.append(MemoryRecord(h, "signals", "buffer", layer.n_out * R.bits, layer.n_out, f"R^{h} ({R.label()})"))
        # per minibatch, charged / batch
        acc.product("weight_update", h, "lr_scale", s.acc, FLOAT32, nwb / batch)
        acc.add("weight_update", h, "weight_write", s.weight, nwb / batch)
        hidden = j < L - 1
        if hidden and s.cfg.channel.update == "sign":
            acc.product("weight_update", h, "sign_update", s.acc, s.acc, nwb / batch)
            acc.add("weight_update", h, "sign_update", s.acc, nwb / batch)
            acc.op("weight_update", h, "sign_update", "compare", s.acc, s.acc.bits, 0, nwb / batch)
        elif hidden and s.cfg.channel.update == "magnitude":
            acc.op("weight_update", h, "magnitude_update", "compare", s.acc, s.acc.bits, 0, nwb / batch)
        if s.cfg.train.momentum:
            acc.product("weight_update", h, "momentum", s.acc, FLOAT32, nwb / batch)
            acc.add("weight_update", h, "momentum", s.acc, nwb / batch)
            acc.mem("weight_update", h, "velocity", "sram_read", nwb * s.acc.bits / batch, nwb * s.acc.bits)
            acc.mem("weight_update", h, "velocity", "sram_write", nwb * s.acc.bits / batch, nwb * s.acc.bits)
            memory.append(MemoryRecord(h, "velocity", "dense", nwb * s.acc.bits, nwb))
        acc.mem("weight_update", h, "gradient_accumulator", "sram_read", nwb * s.acc.bits / batch, nwb * s.acc.bits)
        acc.mem("weight_update", h, "weights", "sram_read", nwb * wb / batch, nwb * wb)
        acc.mem("weight_update", h, "weights", "sram_write", nwb * wb / batch, nwb * wb)

    # -- channel upkeep -----------------------------------------------------------------------
    if s.rule.adaptive:
        _adaptive_upkeep(acc, s, links, maps, signal_ops, memory)
    if s.rule.sbp:
        _sbp_upkeep(acc, s)
    if s.cfg.channel.resample:
        _resample_upkeep(acc, s, links, maps)
    if s.fb_spec.kind == "sign_concordant" and any(lk.source == "random" for lk in links):
        for lk in links:
            mc = maps[lk.receiver]
            acc.op("channel_update", lk.receiver + 1, "sign_concordance", "sign_flip", s.feedback,
                   s.feedback.bits, 1, mc.dense_products / batch)
    return Counts(s, acc.items, wires, memory, links, maps, signal_ops, s.notes)


def _adaptive_upkeep(acc, s, links, maps, signal_ops, memory):
    """ARBP/ASRBP: per example dC^h += O^h (R_src)^T; per minibatch C^h += eta_c/batch * dC^h."""
    batch = float(s.batch)
    for lk in links:
        h = lk.receiver + 1
        mc = maps[lk.receiver]
        n = mc.dense_products
        src = signal_ops[lk.sender]
        acc.product("channel_update", h, "channel_outer_product", src, s.act, n)
        acc.add("channel_update", h, "channel_accumulate", s.acc, n)
        acc.mem("channel_update", h, "channel_accumulator", "sram_read", n * s.acc.bits, n * s.acc.bits)
        acc.mem("channel_update", h, "channel_accumulator", "sram_write", n * s.acc.bits, n * s.acc.bits)
        acc.product("channel_update", h, "channel_lr_scale", s.acc, FLOAT32, n / batch)
        acc.add("channel_update", h, "channel_write", s.feedback if not s.feedback.kind in ("log", "sign") else FLOAT32,
                n / batch)
        cbits = n * s.feedback.bits
        acc.mem("channel_update", h, "feedback_matrix", "sram_read", cbits / batch, cbits)
        acc.mem("channel_update", h, "feedback_matrix", "sram_write", cbits / batch, cbits)
        memory.append(MemoryRecord(h, "channel_accumulator", "dense", n * s.acc.bits, n))


def _sbp_upkeep(acc, s):
    """SBP: once per minibatch, P^{k-1} = P^k W^k for k = L-2 .. 1 (the product matrices of the channel)."""
    batch = float(s.batch)
    L, layers = s.L, s.layers
    n_top = layers[L - 1].n_out
    for k in range(L - 2, 0, -1):        # code: prod @ W[k] for k > 0
        w = layers[k]                     # W[k]: (N_{k+1}, N_k)
        mults = n_top * w.n_out * w.n_in
        acc.product("channel_update", k, "sbp_product", s.weight, s.weight, mults / batch)
        acc.add("channel_update", k, "sbp_product", opd.accumulator(s.weight, s.weight, w.n_out),
                n_top * (w.n_out - 1) * w.n_in / batch)
        acc.mem("channel_update", k, "weights", "sram_read", w.n_weights * s.weight.bits / batch,
                (w.n_weights + w.n_biases) * s.weight.bits)
        pbits = n_top * w.n_in * FLOAT32.bits
        acc.mem("channel_update", k, "feedback_matrix", "sram_write", pbits / batch, pbits)


def _resample_upkeep(acc, s, links, maps):
    """Feedback re-drawn every minibatch: random bits for every entry (or index) and the store rewritten."""
    batch = float(s.batch)
    for lk in links:
        if lk.source != "random":
            continue
        mc = maps[lk.receiver]
        h = lk.receiver + 1
        bits = mc.nnz * _idx_bits(mc.senders) if mc.storage_kind == "sparse_index" else mc.nnz * FLOAT_RNG_BITS
        acc.rng("channel_update", h, "feedback_redraw", bits / batch)
        if s.storage == "stored":
            acc.mem("channel_update", h, "feedback_matrix", "sram_write", mc.storage_bits / batch, mc.storage_bits)


# ------------------------------------------------------------------------------------------------
# extension point for "measured = modelled"

@dataclass(frozen=True)
class ChannelLayerCount:
    """Arithmetic of the channel product ``R_src @ B`` into one layer, for one minibatch.

    ``k`` is the 0-based weight-layer index of the receiving layer (as ``Channel.B``); counts are for
    ``batch`` examples, non-zero products only (what a sparse-aware kernel does), with the expected
    dropout fraction applied. ``gated`` counts the non-zeros of a binary matrix (adds, no product).
    """

    k: int
    sender: int
    senders: int
    receivers: int
    batch: int
    nnz: float
    mults: float
    adds: float
    sign_flips: float
    shifts: float
    gated: float
    fprime_mults: float
    drawn: str


def channel_op_counts(cfg: RunConfig, *, feedback_matrices=None, feedback_seed=None, batch_size: int | None = None,
                      network=None) -> list[ChannelLayerCount]:
    """Per-layer multiply/add counts of the learning channel for the given (actual) feedback matrices.

    Pass the trainer's matrices (``channel.B``, torch or NumPy, shape (sender, receiver)) to compare
    with counts measured from the real training code.
    """
    s = make_setup(cfg, network=network, feedback_matrices=feedback_matrices, feedback_seed=feedback_seed)
    batch = s.batch if batch_size is None else int(batch_size)
    if batch < 1:
        raise bad("batch_size", batch_size, "an integer >= 1")
    c = count_example(s)
    out = []
    for lk in sorted(c.links, key=lambda lk: lk.receiver):
        h = lk.receiver + 1
        mc = c.maps[lk.receiver]
        rows = [a for a in c.actions if a.phase == "error_projection" and a.layer == h]
        prods = [a for a in rows if a.what.startswith("feedback_product")]

        def tot(items, op):
            return sum(a.count for a in items if a.op == op) * batch
        gated = sum(st.products for st in mc.stages if st.b.kind == "binary") * (1 - s.dropout) * batch
        out.append(ChannelLayerCount(
            k=lk.receiver, sender=lk.sender, senders=mc.senders, receivers=mc.receivers, batch=batch, nnz=mc.nnz,
            mults=tot(prods, "mult"), adds=sum(a.count for a in rows if a.what == "feedback_accumulate") * batch,
            sign_flips=tot(prods, "sign_flip"), shifts=tot(prods, "shift"), gated=gated,
            fprime_mults=tot([a for a in rows if a.what == "fprime_product"], "mult"), drawn=mc.drawn))
    return out


def examples_per_epoch(cfg: RunConfig) -> int:
    """Examples the trainer processes per epoch: full minibatches of the (subset of the) training set."""
    n = TRAIN_EXAMPLES[cfg.model.dataset]
    if cfg.train.train_subset:
        n = min(n, cfg.train.train_subset)
    return (n // cfg.train.batch_size) * cfg.train.batch_size
