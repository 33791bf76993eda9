"""Learning diagnostics: how well each layer's update follows the true gradient, per epoch.

On a few sampled minibatches of every epoch (``Runtime.diagnostics`` of them, evenly spaced, no
random draw), with the weights and activations of that minibatch, before any layer is updated:

- ``update_angle``: the angle (degrees) between the update direction the channel gives weight
  layer k and BP's gradient direction, computed on the side by a float32 BP channel (the
  ``ForwardChannel`` with every format float32, f' on, no dropout) through the weights as the
  forward pass read them. BP itself: exactly 0.
- ``feedback_angle``: the angle between the matrix that carries layer k's signal and what BP would
  use there: W[k+1] for layer-to-layer channels (RBP), the product W[L-1] ... W[k+1] for skipped
  ones (SRBP; that product is SBP's matrix).
- ``signal_rms`` / ``signal_mean``: RMS and mean of the signal R[k] the update of W[k] uses (for the
  top layer, T - O^L as quantized); ``bp_signal_rms``: BP's float signal there.
- ``error_mean_share``: for a hidden layer that hears the output error directly (the top hidden
  layer; every hidden layer of a skipped channel), the share of the signal it receives that comes
  from the error's mean over the outputs: ||mean(e) 1^T M|| / ||e M|| for its matrix M. A softmax
  error T - O sums to zero (share 0); a quantized one need not (at 1 bit: +alpha once, -alpha for
  every other class).
- ``weight_norm``, ``feedback_norm``: Frobenius norms of W[k] and of its feedback matrix.
- ``{error,signal,update}_{zero,smallest,clipped,underflow}``: at each quantization point with a
  number format (error at the top layer, signals at the hidden layers, each example's update
  R_bi O_bj at every trained dense layer): the fraction of quantized values at 0 and at the
  smallest non-zero level, and of the values before quantization above the largest level
  (clipped / saturated) and non-zero but below the smallest level's rounding threshold
  (underflow: to 0, up to the smallest level or either at random, by the format's rule).

Skipped (no value recorded): ``feedback_angle`` for per-weight feedback (no per-neuron matrix), for
SRBP into a layer with a conv block above it (no matrix product) and for top-only; update stats of
conv layers (no per-example quantized update is defined there); the accumulator format.

Nothing here draws from the training's random streams or changes a tensor the training reads:
quantizing the per-example products for the update statistics uses its own counter-based stream
(``STREAM``), so epochs with and without diagnostics are bit-identical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from kernels.reference import QUANT_COUNTS

from ..core.config import FormatsConfig, RunConfig
from ..core.formats import Float32
from .channel import ForwardChannel

# The counter-based random stream of the update statistics' own quantization (stochastic rounding
# of the per-example products); the training's streams are seed*4+1..4 and seed*4+7.
STREAM = 2 ** 40 + 19
QUANT_POINTS = ("error", "signal", "update")
QUANT_STATS = QUANT_COUNTS    # zero, smallest, clipped, underflow: what the kernel counts, in its order
METRICS = {
    "update_angle": "angle (degrees) between the channel's update of W[k] and BP's gradient, same minibatch "
                    "and weights",
    "feedback_angle": "angle (degrees) between the feedback matrix into layer k and BP's (W[k+1]; skipped: "
                      "W[L-1]...W[k+1])",
    "signal_rms": "RMS of the signal R[k] that W[k]'s update uses (top: T - O as quantized)",
    "signal_mean": "mean of R[k] (top: of T - O as quantized; 0 for a float softmax error)",
    "bp_signal_rms": "RMS of BP's float32 signal for W[k]",
    "error_mean_share": "share of the signal into a layer that hears T - O directly due to the error's mean over "
                        "the outputs",
    "weight_norm": "Frobenius norm of W[k]",
    "feedback_norm": "Frobenius norm of the feedback matrix into layer k",
    **{f"{p}_{s}": f"{p} format: fraction {d}" for p in QUANT_POINTS for s, d in (
        ("zero", "of quantized values at 0"), ("smallest", "of quantized values at the smallest level"),
        ("clipped", "of values above the largest level (clipped / saturated)"),
        ("underflow", "of non-zero values below the smallest level"))},
}


@dataclass(frozen=True)
class LayerDiagnostics:
    """One weight layer's diagnostics in one epoch: metric name -> mean over the sampled minibatches."""

    epoch: int
    layer: int
    values: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"type": "diagnostics", "epoch": self.epoch, "layer": self.layer, **self.values}

    @classmethod
    def from_dict(cls, d: dict) -> "LayerDiagnostics":
        values = {k: v for k, v in d.items() if k not in ("type", "epoch", "layer")}
        return cls(int(d["epoch"]), int(d["layer"]), values)


# --- pure measurements ------------------------------------------------------------------------
def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between two tensors seen as vectors, in degrees, in float64: 2 atan2(|u - v|, |u + v|)
    of the unit vectors, accurate near 0 and 180 where arccos of the cosine is not. NaN when either
    is zero or not finite."""
    u, v = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    nu, nv = float(u.norm()), float(v.norm())
    if not (nu > 0 and nv > 0 and math.isfinite(nu) and math.isfinite(nv)):
        return math.nan
    u, v = u / nu, v / nv
    return math.degrees(2.0 * math.atan2(float((u - v).norm()), float((u + v).norm())))


def format_levels(fmt) -> tuple[float, float, float]:
    """(smallest non-zero magnitude, largest magnitude, underflow threshold) of a log or fixed format:
    below the threshold a non-zero value is under the smallest level (log: rounding in the log domain,
    alpha 2^(E_min - 1/2); fixed: half a step)."""
    if fmt.kind == "log":
        smallest = fmt.alpha * 2.0 ** fmt.min_exponent
        return smallest, fmt.alpha, smallest * 2.0 ** -0.5
    largest = max(abs(fmt.int_min), fmt.int_max) * fmt.scale
    return fmt.scale, largest, fmt.scale / 2.0


def quantization_stats(before: torch.Tensor, after: torch.Tensor, fmt, backend: str = "auto") -> dict:
    """Fractions of ``QUANT_STATS`` for values ``before`` a quantizer and the same values ``after`` it
    (``kernels.dispatch.quantization_counts``: one pass, bit for bit its NumPy reference)."""
    from kernels import dispatch
    smallest, largest, threshold = format_levels(fmt)
    lo, hi = (fmt.int_min * fmt.scale, fmt.int_max * fmt.scale) if fmt.kind == "fixed" else (-largest, largest)
    counts = dispatch.quantization_counts(before, after, smallest, lo, hi, threshold, backend=backend)
    n = before.numel()
    return {stat: int(c) / n for stat, c in zip(QUANT_STATS, counts)}


def sampled_steps(steps: int, n: int) -> frozenset[int]:
    """``n`` minibatch indices of an epoch of ``steps``, evenly spaced (the middle of n equal parts)."""
    if n >= steps:
        return frozenset(range(steps))
    return frozenset(int((i + 0.5) * steps / n) for i in range(n))


def _mean_share(e: torch.Tensor, m: torch.Tensor) -> float:
    """||mean(e) 1^T m|| / ||e m||: how much of the signal ``e @ m`` the error's per-example mean over the
    outputs carries (``e``: batch x outputs, ``m``: outputs x receivers)."""
    e, m = e.double(), m.double()
    full = float((e @ m).norm())
    common = float((e.mean(1, keepdim=True) @ m.sum(0, keepdim=True)).norm())
    return common / full if full > 0 else math.nan


def _rms(t: torch.Tensor) -> float:
    return float(t.double().pow(2).mean().sqrt())


# --- the per-run recorder -----------------------------------------------------------------------
class Diagnostics:
    """Samples ``minibatches`` minibatches per epoch of a trainer's net and channel (see the module
    docstring). The trainer calls ``probe_for(step)`` before the channel's signals, ``observe`` after
    them, ``observe_update`` with each update it computes itself, and ``end_epoch`` after the epoch."""

    def __init__(self, cfg: RunConfig, net, channel, batch: int, minibatches: int, backend: str = "auto"):
        self.cfg = cfg
        self.minibatches = minibatches
        self.backend = backend
        self.rule = cfg.channel.rule
        self.L = net.n_layers
        self.reference = ForwardChannel(bp_reference_config(cfg), net, np.random.default_rng(0), batch, backend)
        self.update_fmt = cfg.formats.update if cfg.formats.update.kind != "float" else None
        self.counter = 0          # of this recorder's own stream (update statistics)
        self._products: dict = {}  # per layer: buffers for each example's update products, before and after
        self.last: list[LayerDiagnostics] = []
        self._values: dict = {}
        self._bp_grad: dict = {}
        self._steps: frozenset = frozenset()
        self._steps_of = None

    # --- sampling -----------------------------------------------------------------------------
    def probe_for(self, step: int, steps: int):
        """The probe to hand the channel for minibatch ``step`` of ``steps``, None when not sampled."""
        if self._steps_of != steps:
            self._steps, self._steps_of = sampled_steps(steps, self.minibatches), steps
        return self if step in self._steps else None

    def add(self, k: int, name: str, value: float) -> None:
        self._values.setdefault((k, name), []).append(value)

    # --- the channel's quantizers (``Channel.probe``) -----------------------------------------
    def quantize(self, point: str, k: int, q, t: torch.Tensor) -> torch.Tensor:
        """Quantize ``t`` in place with the channel's own quantizer ``q`` (its stream, its counter: the
        same call the channel makes without a probe), recording the values before and after."""
        if not q.active:
            return q(t)
        before = t.clone()
        q(t)
        for stat, value in quantization_stats(before, t, q.fmt, self.backend).items():
            self.add(k, f"{point}_{stat}", value)
        return t

    # --- after the channel's signals, before any update ----------------------------------------
    def observe(self, net, channel, acts, target: torch.Tensor, fused) -> None:
        """BP's float gradient on this minibatch; the channel's fused updates (R^T O); matrices, norms,
        signals and the update format's statistics. ``fused[k]``: the trainer adds R^T O to W[k] itself."""
        ref = self.reference.signals(net, acts, target)
        self._bp_grad = {}
        for k in range(self.L):
            if not channel.trains(k):
                continue
            self._bp_grad[k] = net.weight_grad(k, ref[k], acts, torch.empty_like(net.W[k]))
            self.add(k, "bp_signal_rms", _rms(ref[k]))
            if not channel.per_weight or k == self.L - 1:
                self.add(k, "signal_rms", _rms(channel.R[k]))
                self.add(k, "signal_mean", float(channel.R[k].double().mean()))
            if fused[k]:
                self.observe_update(k, net.weight_grad(k, channel.R[k], acts, torch.empty_like(net.W[k])))
            if self.update_fmt is not None and net.kinds[k] == "dense":
                self._update_stats(k, channel.R[k], acts[k])
        for k in range(self.L):
            self.add(k, "weight_norm", float(net.W[k].double().norm()))
        for k in channel.hidden_layers():
            pair = self._feedback_pair(k, net, channel)
            if pair is not None:
                self.add(k, "feedback_angle", angle_degrees(*pair))
                self.add(k, "feedback_norm", float(pair[0].double().norm()))
                if channel.source(k) == self.L - 1 and pair[0].dim() == 2:
                    self.add(k, "error_mean_share", _mean_share(channel.R[self.L - 1], pair[0]))

    def observe_update(self, k: int, g: torch.Tensor) -> None:
        """The update direction the channel gives W[k] on a sampled minibatch (before the learning rate)."""
        self.add(k, "update_angle", angle_degrees(g, self._bp_grad[k]))

    def _feedback_pair(self, k: int, net, channel):
        """(the channel's matrix into hidden layer k, BP's matrix there), or None where not comparable."""
        if channel.per_weight:
            return None
        if self.rule.skipped:
            above = range(k + 1, self.L)
            if any(net.kinds[j] != "dense" for j in above):
                return None
            bp = net.W_fwd[self.L - 1]
            for j in reversed(range(k + 1, self.L - 1)):
                bp = bp @ net.W_fwd[j]
        else:
            bp = net.W_fwd[k + 1]
        return channel.matrix(k, net), bp

    def _update_stats(self, k: int, r: torch.Tensor, o: torch.Tensor) -> None:
        """Each example's update R_bi O_bj before and after the update format, quantized on this
        recorder's own stream (the training's per-example kernel never forms these products)."""
        o = o.reshape(o.shape[0], -1)
        shape = (r.shape[0], r.shape[1], o.shape[1])
        if k not in self._products or self._products[k][0].shape != shape:
            self._products[k] = (torch.empty(shape), torch.empty(shape))
        products, quantized = self._products[k]
        torch.mul(r.unsqueeze(2), o.unsqueeze(1), out=products)
        quantized.copy_(products)
        from kernels import dispatch
        dispatch.quantize_(quantized, self.update_fmt, seed=STREAM, counter=self.counter, backend=self.backend)
        self.counter += quantized.numel()
        for stat, value in quantization_stats(products, quantized, self.update_fmt, self.backend).items():
            self.add(k, f"update_{stat}", value)

    # --- per epoch ----------------------------------------------------------------------------
    def end_epoch(self, epoch: int) -> list[LayerDiagnostics]:
        """This epoch's rows (mean of each metric over the sampled minibatches, NaN-ignoring), and reset."""
        layers: dict = {}
        for (k, name), vals in sorted(self._values.items()):
            finite = [v for v in vals if math.isfinite(v)]
            layers.setdefault(k, {})[name] = sum(finite) / len(finite) if finite else math.nan
        self._values = {}
        self.last = [LayerDiagnostics(epoch, k, v) for k, v in sorted(layers.items())]
        return self.last

    def state(self) -> dict:
        return {"counter": self.counter}

    def load_state(self, state: dict) -> None:
        self.counter = state.get("counter", 0)


def bp_reference_config(cfg: RunConfig) -> RunConfig:
    """The float32 BP channel of ``cfg``'s net: every learning-channel format float32, f' on, no
    dropout, no channel options (the forward formats stay: the net applies them, not the channel)."""
    from ..core.config import ChannelConfig
    f = cfg.formats
    floats = {name: Float32() for name in ("error", "signal", "feedback", "update", "accumulator")}
    formats = FormatsConfig(**{**{k: getattr(f, k) for k in ("weights", "weight_shadow", "activations")}, **floats})
    return replace(cfg, channel=ChannelConfig(), formats=formats).validate()
