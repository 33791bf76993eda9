"""What ``count_example`` counts for a run config: its net, its algorithm's links, its operands
(the number formats as hardware operands) and, where given or drawn, the actual feedback matrices."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw_models import operands as opd
from hw_models.errors import CostModelError, bad
from hw_models.layers import Dense, check_network, layer_name
from hw_models.operands import FLOAT32, Operand

from ..core.algorithms import Algorithm, Link
from ..core.config import RunConfig
from ..core.datapath import bit_true
from ..core.feedback import FeedbackSpec, build_feedback
from ..nets.layout import net_layers

STORAGE_MODES = ("stored", "regenerated")


@dataclass
class Setup:
    cfg: RunConfig
    layers: tuple
    rule: Algorithm
    error: Operand
    signal: Operand
    feedback: Operand
    update: Operand
    acc: Operand
    weight: Operand        # the weights as the forward pass and BP's channel read them
    weight_store: Operand  # the weights as stored and updated
    act: Operand
    fprime_value: Operand  # f' as the channel multiplies by it (formats.fprime; else the activations')
    channel_acc: Operand | None   # the bit-true channel's accumulator, None: the width each sum needs
    momentum: Operand      # the velocity as stored (formats.momentum; else the update accumulator's)
    fb_spec: FeedbackSpec
    batch: int
    storage: str
    matrices: dict
    notes: list = field(default_factory=list)

    @property
    def algorithm(self) -> str:
        return self.rule.name

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
    def weight_copy(self) -> bool:
        """The forward reads a quantized copy of float32 master weights (``formats.weight_shadow``)."""
        return self.weight != self.weight_store

    def links(self) -> list[Link]:
        return self.rule.links(self.L)

    def trains(self, j: int) -> bool:
        return self.rule.trains(j, self.L, self.cfg.channel.fixed_top)

    def name(self, j: int) -> str:
        return layer_name(self.layers, j)


def _as_array(m) -> np.ndarray:
    if hasattr(m, "detach"):
        m = m.detach().cpu().numpy()
    return np.asarray(m)


def make_setup(cfg: RunConfig, *, input_shape=None, n_classes=None, feedback_matrices=None, feedback_seed=None,
               feedback_storage: str = "stored", workload=None) -> Setup:
    """What ``count_example`` counts for ``cfg``: its net (``net_layers``; ``input_shape`` and
    ``n_classes`` default to the dataset's, as for the trainer), algorithm and formats.

    ``workload``: instead of that net, the ``Dense``/``Conv2d`` layers of a network this project
    does not train (a published chip's, ``hw_models.validation``); the config still gives the
    algorithm, formats and options, but nothing checks the layers against a trainer."""
    if not isinstance(cfg, RunConfig):
        raise bad("cost model config", type(cfg).__name__, "a lowbit_rbp.core.config.RunConfig")
    cfg.validate()
    layers = check_network(workload if workload is not None else net_layers(cfg.model, input_shape, n_classes))
    if feedback_storage not in STORAGE_MODES:
        raise bad("feedback_storage", feedback_storage, ", ".join(STORAGE_MODES))
    f = cfg.formats
    # Forward precision: the weights stored in formats.weights (with a shadow: float32 masters and a
    # quantized copy the forward reads), the hidden activations in formats.activations.
    weight = opd.operand(f.weights)
    weight_store = FLOAT32 if f.weight_shadow else weight
    act = opd.operand(f.activations)
    acc = opd.operand(f.accumulator)
    s = Setup(cfg=cfg, layers=layers, rule=cfg.channel.rule,
              error=opd.operand(f.error), signal=opd.operand(f.signal), feedback=opd.operand(f.feedback),
              update=opd.operand(f.update), acc=acc, weight=weight, weight_store=weight_store,
              act=act, fprime_value=_fprime_operand(f, act),
              channel_acc=opd.operand(f.channel_accumulator) if bit_true(f) else None,
              momentum=opd.operand(f.momentum) if f.momentum.kind != "float" else acc,
              fb_spec=cfg.channel.feedback, batch=cfg.train.batch_size, storage=feedback_storage, matrices={})
    if feedback_matrices is not None and feedback_seed is not None:
        raise CostModelError("give either feedback_matrices or feedback_seed, not both")
    for lk in s.links():
        if lk.source == "random" and _dense_link(s, lk):
            shape = _link_shape(s, lk)
            if cfg.channel.per_weight:     # drawn as one row per sender over the receiving layer's weights
                shape = (shape[0], layers[lk.receiver].n_weights)
            s.fb_spec.check_shape(shape, f" (channel into weight layer {lk.receiver})")
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
    random_links = [lk for lk in s.links() if lk.source == "random"]
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
        for lk in random_links:
            if _dense_link(s, lk) and s.fb_spec.kind != "lowrank":
                out[lk.receiver] = build_feedback(s.fb_spec, _link_shape(s, lk), rng, skipped=s.rule.skipped)
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


def _fprime_operand(f, act: Operand) -> Operand:
    """f' as the channel multiplies by it: its own format if one is set; a float32 table entry; or
    computed from O in the activations' format."""
    if f.fprime.kind != "float":
        return opd.operand(f.fprime)
    return FLOAT32 if f.fprime_lut else act
