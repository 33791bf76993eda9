"""Counts of one training example of a run config, per layer and phase: operations by operand
width, memory accesses, random bits, and the wires of the floorplan (the phases are
``hw_models.records.PHASES``).

What is counted is read from the one description the trainer also runs: the algorithm's links
(``lowbit_rbp.core.algorithms``), the feedback spec's density and scale
(``lowbit_rbp.core.feedback``), the number formats, and the net's layers
(``lowbit_rbp.nets.layout``). Every per-minibatch action is charged per example as
``count / batch_size``; counts are floats (expected values where sparsity or dropout is drawn at
random).
"""
from __future__ import annotations

from dataclasses import dataclass

from hw_models import operands as opd
from hw_models.errors import bad
from hw_models.floorplan import Floorplan, WireGroup
from hw_models.operands import BINARY, FLOAT32, Operand
from hw_models.records import Action, MemoryRecord

from ..core.config import RunConfig
from ..data.specs import TRAIN_EXAMPLES
from .maps import _idx_bits, map_cost
from .setup import Setup, make_setup  # noqa: F401  (make_setup: channel_op_counts)

DROPOUT_RNG_BITS = 8     # random bits per dropout decision (compared against an 8-bit threshold)
LFSR_STATE_BITS = 64     # seed/state kept per regenerated matrix
FLOAT_RNG_BITS = 32      # random bits to draw one float feedback entry when re-sampling


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

    def rounding(self, phase, layer, what, fmt, count):
        """The random bits of ``count`` roundings into ``fmt`` (stochastic rounding or underflow:
        the trainer draws a uniform per rounded value; nearest rounding draws none)."""
        self.rng(phase, layer, what + "_rounding", count * fmt.random_bits)


def _activation_ops(acc: _Acc, s: Setup, phase: str, h: int, n: float, derivative: bool):
    """Hidden activation (forward) or its derivative f' (channel), per neuron."""
    a = s.cfg.model.activation
    if derivative:
        f = s.cfg.formats
        if f.fprime_lut:                    # read from a table of fprime_lut entries indexed by O
            bits = s.fprime_value.bits * f.fprime_lut
            acc.mem(phase, h, "fprime_table", "sram_read", n * s.fprime_value.bits, bits)
            return
        if a in ("tanh", "logistic"):      # 1 - O^2 or O(1 - O): one multiply, one add
            acc.product(phase, h, "fprime_eval", s.act, s.act, n)
            acc.add(phase, h, "fprime_eval", s.act, n)
            if not s.fprime_value.is_float:      # rounded into formats.fprime
                acc.op(phase, h, "fprime_round", "compare", s.act, s.act.bits, 0, n)
                acc.rounding(phase, h, "fprime", f.fprime, n)
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
    return BINARY if a == "relu" else s.fprime_value


def count_example(s: Setup, floorplan: Floorplan | None = None) -> Counts:
    """All actions, wires and storage of one training example under setup ``s``."""
    fp = floorplan or Floorplan()
    acc = _Acc()
    wires: list[WireGroup] = []
    memory: list[MemoryRecord] = []
    L, layers, batch = s.L, s.layers, float(s.batch)
    n_tiles = L + 1
    wb, ab = s.weight.bits, s.act.bits
    sb = s.weight_store.bits

    # -- forward ------------------------------------------------------------------------------
    for j, layer in enumerate(layers):
        h = j + 1
        nwb = layer.n_weights + layer.n_biases
        acc.product("forward", h, "forward_mac", s.act, s.weight, layer.fwd_macs)
        fan = layer.fwd_macs / layer.conv_out
        acc.add("forward", h, "forward_accumulate", opd.accumulator(s.act, s.weight, fan), layer.fwd_macs)
        if j < L - 1:
            _activation_ops(acc, s, "forward", h, layer.conv_out, derivative=False)
            if not s.act.is_float:   # the activation's value rounded into formats.activations
                acc.op("forward", h, "activation_quantize", "compare", FLOAT32, FLOAT32.bits, 0, layer.conv_out)
                acc.rounding("forward", h, "activation", s.cfg.formats.activations, layer.conv_out)
        else:   # softmax: exp, sum, normalise
            acc.op("forward", h, "softmax", "activation_fn", s.act, ab, 0, layer.n_out)
            acc.add("forward", h, "softmax", s.act, layer.n_out)
            acc.product("forward", h, "softmax", s.act, s.act, layer.n_out)
        acc.op("forward", h, "max_pool", "compare", s.act, ab, 0, layer.pool_compares)
        wbits = nwb * wb
        acc.mem("forward", h, "weights_copy" if s.weight_copy else "weights", "sram_read", wbits, wbits)
        if s.weight_copy:
            # Once per minibatch the float32 master weights are rounded into the forward's copy:
            # one rounding (charged as a compare of the float32 value) per weight and bias.
            acc.op("forward", h, "weight_quantize", "compare", s.weight_store, sb, 0, nwb / batch)
            acc.rounding("forward", h, "weight", s.cfg.formats.weights, nwb / batch)
            acc.mem("forward", h, "weights", "sram_read", nwb * sb / batch, nwb * sb)
            acc.mem("forward", h, "weights_copy", "sram_write", wbits / batch, wbits)
            memory.append(MemoryRecord(h, "weights_copy", "dense", wbits, nwb,
                                       f"int{wb} copy of the stored weights that the forward reads"))
        acc.mem("forward", h, "activations", "sram_read", layer.n_in * ab, layer.n_in * ab)
        acc.mem("forward", h, "activations", "sram_write", layer.n_out * ab, layer.n_out * ab)
        acc.mem("forward", h, "pool_switches", "sram_write", layer.switch_bits, layer.switch_bits)
        memory.append(MemoryRecord(h, "weights", "dense", nwb * sb, nwb))
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
        acc.rounding("error_projection", L, "error", s.cfg.formats.error, out_n)
    acc.mem("error_projection", L, "activations", "sram_read", out_n * ab, out_n * ab)
    acc.mem("error_projection", L, "signals", "sram_write", out_n * s.error.bits, out_n * s.error.bits)
    signal_ops = {top: s.error}
    links = s.links()
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
            # the bit-true channel's accumulator is the configured one; otherwise the width the sum needs
            last_acc = s.channel_acc or opd.accumulator(st.a, st.b, st.fan_in)
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
        if s.signal_quantized:
            acc.rounding("error_projection", h, "signal", s.cfg.formats.signal, n_recv)
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
            acc.rounding("weight_gradient", h, "update", s.cfg.formats.update, layer.n_weights)
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
        acc.add("weight_update", h, "weight_write", s.weight_store, nwb / batch)
        if not s.weight_store.is_float:      # the stored weight rounded by its update
            acc.rounding("weight_update", h, "weight_write", s.cfg.formats.weights, nwb / batch)
        hidden = j < L - 1
        if hidden and s.cfg.channel.update == "sign":
            acc.product("weight_update", h, "sign_update", s.acc, s.acc, nwb / batch)
            acc.add("weight_update", h, "sign_update", s.acc, nwb / batch)
            acc.op("weight_update", h, "sign_update", "compare", s.acc, s.acc.bits, 0, nwb / batch)
        elif hidden and s.cfg.channel.update == "magnitude":
            acc.op("weight_update", h, "magnitude_update", "compare", s.acc, s.acc.bits, 0, nwb / batch)
        if s.cfg.train.momentum:
            v = s.momentum
            acc.product("weight_update", h, "momentum", v, FLOAT32, nwb / batch)
            acc.add("weight_update", h, "momentum", v, nwb / batch)
            acc.rounding("weight_update", h, "momentum", s.cfg.formats.momentum, nwb / batch)
            acc.mem("weight_update", h, "velocity", "sram_read", nwb * v.bits / batch, nwb * v.bits)
            acc.mem("weight_update", h, "velocity", "sram_write", nwb * v.bits / batch, nwb * v.bits)
            memory.append(MemoryRecord(h, "velocity", "dense", nwb * v.bits, nwb))
        acc.mem("weight_update", h, "gradient_accumulator", "sram_read", nwb * s.acc.bits / batch, nwb * s.acc.bits)
        acc.mem("weight_update", h, "weights", "sram_read", nwb * sb / batch, nwb * sb)
        acc.mem("weight_update", h, "weights", "sram_write", nwb * sb / batch, nwb * sb)

    # -- channel upkeep -----------------------------------------------------------------------
    if s.rule.adaptive:
        _adaptive_upkeep(acc, s, links, maps, signal_ops, memory)
    if s.rule.source == "forward_product":
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
        acc.product("channel_update", k, "sbp_product", s.weight_store, s.weight_store, mults / batch)
        acc.add("channel_update", k, "sbp_product", opd.accumulator(s.weight_store, s.weight_store, w.n_out),
                n_top * (w.n_out - 1) * w.n_in / batch)
        acc.mem("channel_update", k, "weights", "sram_read", w.n_weights * s.weight_store.bits / batch,
                (w.n_weights + w.n_biases) * s.weight_store.bits)
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
                      input_shape=None, n_classes=None) -> list[ChannelLayerCount]:
    """Per-layer multiply/add counts of the learning channel for the given (actual) feedback matrices.

    Pass the trainer's matrices (``channel.B``, torch or NumPy, shape (sender, receiver)) to compare
    with counts measured from the real training code.
    """
    s = make_setup(cfg, input_shape=input_shape, n_classes=n_classes, feedback_matrices=feedback_matrices,
                   feedback_seed=feedback_seed)
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
