"""The learning channel: how each hidden layer receives its error signal.

One interface, one small class per algorithm. Every algorithm trains the top layer like BP and
differs only in where a hidden layer's received signal ``J^k`` comes from:

    BP     J^k = R^{k+1} @ W^{k+1}                (the forward weights, transposed use)
    RBP    J^k = R^{k+1} @ B^k                    (fixed random B^k, layer to layer)
    SRBP   J^k = R^{top} @ B^k                    (fixed random B^k, straight from the output)
    SBP    J^k = R^{top} @ (W^{top} ... W^{k+1})  (skipped BP: product of forward weights)
    top    no signal: hidden layers stay at their initial values

then ``R^k = f'(S^k) * J^k`` (or ``J^k`` without f'). Everything else is an option of the channel,
not a new algorithm: adaptive feedback (ARBP/ASRBP), dropout, quantization points, sign or
magnitude-only updates, per-weight feedback, resampling, sign concordance, fixed top layers.

Indexing: weight layer k = 0..L-1 maps ``O[k]`` to ``O[k+1]``; ``J[k]`` is what layer k's units
receive (shape of ``O[k+1]``), ``R[k]`` the signal its update uses: for dense layers the same
tensor, shape ``(batch, N_{k+1})``, update ``W[k] += lr/batch * R[k]^T O[k]``; for conv blocks
(``lowbit_rbp.nets.convnet``) ``R[k]`` is ``J[k]`` routed back through the max pooling. The net's
``backward_input``, ``route`` and ``weight_grad`` carry the layer types; the channel never asks.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.algorithms import check_combination
from ..core.config import RunConfig
from ..core.quantizer import Quantizer
from ..core.feedback import build_feedback, build_feedback_factors
from ..nets.mlp import MLP
from .datapath import make_datapath

# What the channel needs from a network (MLP or ConvNet): W, b, sizes, shapes, kinds, n_layers,
# fprime_, route, backward_input, weight_grad, feedback_layout, as_kernel.


class Channel:
    """Base learning channel; what kind of matrix its links use (the algorithm descriptor's
    ``source``) picks the subclass, which defines ``matrix(k, net)`` (and ``prepare``)."""

    def __init__(self, cfg: RunConfig, net: MLP, rng: np.random.Generator, batch: int, backend: str = "auto"):
        c, f = cfg.channel, cfg.formats
        self.cfg = cfg
        self.rule = c.rule
        self.L = net.n_layers
        self.use_fprime = c.fprime
        self.dropout = c.dropout
        self.update_mode = c.update
        self.per_weight = c.per_weight
        self.resample = c.resample
        self.adaptive = self.rule.adaptive
        self.adaptive_lr_scale = c.adaptive_lr_scale
        self.feedback_spec = c.feedback
        self.rng = rng
        self.gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        seed = cfg.train.seed
        self.q_error = Quantizer(f.error, seed * 4 + 1, backend)
        self.q_signal = Quantizer(f.signal, seed * 4 + 2, backend)
        self.q_feedback = Quantizer(f.feedback, seed * 4 + 3, backend)
        # Per-example quantized weight update (paper section 5.2) and its accumulator; the fused
        # kernel never materializes the batch x out x in tensor. Bias updates stay float sums.
        self.update_fmt = f.update
        self.accumulator_fmt = f.accumulator
        self.quantized_update = f.quantized_update
        self.update_seed = seed * 4 + 4
        self.update_counter = 0
        self.backend = backend
        self.datapath = make_datapath(cfg, net.activation, self.q_signal, backend)
        # The net's own layer kinds (a config validated them; a net given directly is checked here).
        check_combination(cfg, net.kinds)
        self.tally = None        # an instrument.OpTally to count what the channel executes
        # A random feedback matrix is fixed when the chip is wired, so its zero entries get no wire and
        # no product (the cost model counts its non-zeros too); forward weights change while training,
        # so a weight stored as 0 still occupies its multiplier.
        self.feedback_is_wiring = self.rule.random_feedback
        self.probe = None        # a diagnostics.Diagnostics sampling this minibatch's quantizers
        self.B: dict[int, torch.Tensor] = {}
        self._magnitudes: dict[int, torch.Tensor] = {}
        self.per_weight_B: dict[int, torch.Tensor] = {}
        self.factors: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}   # low-rank links applied as two factors
        if self.rule.random_feedback:
            self.draw_feedback(net)
        self._alloc(net, batch)

    # --- what differs per algorithm -------------------------------------------------------
    def source(self, k: int) -> int:
        return self.rule.sender(k, self.L)

    def matrix(self, k: int, net: MLP) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, net: MLP) -> None:
        """Per-step set-up before signals are computed (SBP products, resampling, sign concordance)."""
        if self.resample:
            self.draw_feedback(net)
        for k, mag in self._magnitudes.items():
            torch.mul(mag, torch.sign(net.W[k + 1]), out=self.B[k])
            self.q_feedback(self.B[k])
            self.datapath.prepare_matrix(k, self.B[k])

    # --- shared machinery ---------------------------------------------------------------
    @property
    def skipped(self) -> bool:
        return self.rule.skipped

    def hidden_layers(self):
        return range(self.L - 1) if self.rule.trains_hidden else range(0)

    def feedback_layout(self, k: int, net: MLP):
        """``(sender, receiver)`` of layer k's feedback matrix and the glorot fans (None: the shape's).

        Skipped channels: a dense map from the output layer to all of layer k's units. Layer-to-layer
        channels: a stand-in for W[k+1], drawn as a matrix and laid out as W[k+1] (a conv kernel
        for a conv block above), with W[k+1]'s initialization fans."""
        if self.skipped:
            return (net.sizes[self.source(k) + 1], net.sizes[k + 1]), None
        return net.feedback_layout(k + 1)

    def draw_feedback(self, net: MLP) -> None:
        for k in self.hidden_layers():
            shape, fans = self.feedback_layout(k, net)
            where = f" (channel into weight layer {k})"
            if self.per_weight:
                # One feedback weight per (sender, forward weight) triple: (sender, N_{k+1}, N_k).
                full = (shape[0], net.sizes[k + 1], net.sizes[k])
                drawn = (shape[0], full[1] * full[2])
                self.feedback_spec.check_shape(drawn, where)
                m = build_feedback(self.feedback_spec, drawn, self.rng, skipped=self.skipped)
                self.per_weight_B[k] = torch.from_numpy(m.reshape(full))
                continue
            self.feedback_spec.check_shape(shape, where)
            if self.feedback_spec.two_factors(shape) and not self.adaptive:
                # The cheaper circuit: R @ U then @ V (the matrix is kept for inspection only).
                left, right = build_feedback_factors(self.feedback_spec, shape, self.rng, fans=fans)
                self.factors[k] = (self.q_feedback(torch.from_numpy(left)), self.q_feedback(torch.from_numpy(right)))
                self.B[k] = self.factors[k][0] @ self.factors[k][1]
                continue
            m = build_feedback(self.feedback_spec, shape, self.rng, skipped=self.skipped, fans=fans)
            m = torch.from_numpy(m) if self.skipped else net.as_kernel(k + 1, torch.from_numpy(m))
            if self.feedback_spec.needs_forward_sign:
                self._magnitudes[k] = m
                self.B[k] = torch.empty_like(m)
            else:
                self.B[k] = self.q_feedback(m)
                self.datapath.prepare_matrix(k, self.B[k])

    def _alloc(self, net: MLP, batch: int) -> None:
        self.batch = batch
        self.J = [torch.empty(batch, *shape) for shape in net.shapes[1:]]
        self.R = list(self.J)
        self.fp = [torch.empty(batch, *shape) for shape in net.shapes[1:]]

    def receive(self, k: int, net: MLP, out: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Layer k's received signal J^k: through layer k+1's backward operator with ``matrix(k)``
        (layer to layer), or a dense map from the source layer (skipped). ``keep``: the dropout
        mask, for the op tally (a dropped receiver's products count as not done)."""
        flat = out if out.dim() == 2 else out.view(out.shape[0], -1)   # conv blocks: (B, C, H, W)
        src = self.R[self.source(k)]
        if k in self.factors:
            left, right = self.factors[k]
            mid = torch.mm(src, left)
            if self.tally is not None:
                self.tally.product(k, src, left, keep, wired_nonzeros_only=self.feedback_is_wiring)
                self.tally.product(k, mid, right, keep, wired_nonzeros_only=self.feedback_is_wiring)
            return torch.mm(mid, right, out=flat).view(out.shape)
        if self.tally is not None:
            self.tally.product(k, src, self.matrix(k, net), keep, wired_nonzeros_only=self.feedback_is_wiring)
        if self.skipped or net.kinds[k + 1] == "dense":
            # a dense map from the sender (skipped), or a dense layer above sending R^{k+1} @ B^k
            # (B^k laid out as W[k+1], (sender, receiver))
            self.datapath.product(k, src, self.matrix(k, net), flat)
            return out
        return net.backward_input(k + 1, src, self.matrix(k, net), out)

    def signals(self, net: MLP, acts: list[torch.Tensor], target: torch.Tensor) -> list[torch.Tensor]:
        """Fill and return ``R[k]`` for every layer from the forward activations and one-hot targets."""
        if acts[0].shape[0] != self.batch:
            self._alloc(net, acts[0].shape[0])
        top = self.L - 1
        torch.sub(target, acts[-1], out=self.J[top])
        self._quantize("error", top, self.q_error, self.J[top])
        self.R[top] = self.J[top]
        self.prepare(net)
        for k in reversed(self.hidden_layers()):
            r = self.J[k]
            if self.per_weight:
                # The per-weight channel forms each weight's update directly (weight_gradient);
                # no per-neuron signal exists, so hidden biases receive none.
                self.R[k] = r.zero_()
                continue
            if self.tally is not None:
                self.tally.step(k, r.shape[0])
            keep = torch.empty_like(r).bernoulli_(1.0 - self.dropout, generator=self.gen) if self.dropout else None
            self.receive(k, net, r, keep)
            if keep is not None:
                r.mul_(keep).mul_(1.0 / (1.0 - self.dropout))
            seen = None if self.tally is None else (lambda x, k=k, keep=keep: self.tally.fprime(k, x, keep))
            quantize = None if self.probe is None else (lambda t, k=k: self._quantize("signal", k, self.q_signal, t))
            self.datapath.send(net, r, acts[k + 1], self.fp[k], self.use_fprime, seen, quantize)
            self.R[k] = net.route(k, r)
        return self.R

    def _quantize(self, point: str, k: int, q: Quantizer, t: torch.Tensor) -> torch.Tensor:
        """``q(t)`` in place; with a probe, the probe makes that same call and sees the values before
        and after (``point``: error or signal, at layer k)."""
        if self.probe is None:
            return q(t)
        return self.probe.quantize(point, k, q, t)

    def trains(self, k: int) -> bool:
        """Whether weight layer k is updated (top layer always, unless held fixed)."""
        return self.rule.trains(k, self.L, self.cfg.channel.fixed_top)

    def plain_update(self, k: int) -> bool:
        """Whether layer k's update is exactly R^T O (so the loop may fuse it into the weights)."""
        if self.quantized_update:
            return False
        return k == self.L - 1 or (self.update_mode == "full" and not self.per_weight)

    def weight_gradient(self, k: int, net: MLP, acts, out: torch.Tensor) -> torch.Tensor:
        """Write the summed update direction ``R^T O`` for layer k into ``out`` (shape of W[k])."""
        hidden = k < self.L - 1
        if hidden and self.per_weight:
            self._per_weight_gradient(k, net, acts, out)
        elif self.quantized_update:
            from kernels import dispatch
            dispatch.per_example_update(self.R[k], acts[k], self.update_fmt, accumulator=self.accumulator_fmt,
                                        seed=self.update_seed, counter=self.update_counter, out=out,
                                        backend=self.backend)
            self.update_counter += self.R[k].shape[0] * out.numel()
        else:
            net.weight_grad(k, self.R[k], acts, out)
        if hidden and self.update_mode == "sign":
            # Sign only: keep one scale per layer (RMS) so the learning rate keeps its meaning.
            scale = out.pow(2).mean().sqrt()
            out.sign_().mul_(scale)
        elif hidden and self.update_mode == "magnitude":
            out.abs_()
        return out

    def _per_weight_gradient(self, k, net, acts, out):
        """dW_ij = sum_b sum_s C_sij (f'_bi) R_bs O_bj: a private feedback weight per forward weight."""
        src = self.R[self.source(k)]
        fp = net.fprime_(acts[k + 1], self.fp[k]) if self.use_fprime else None
        out.zero_()
        c = self.per_weight_B[k]
        for s in range(src.shape[1]):
            signal = src[:, s:s + 1] * fp if fp is not None else src[:, s:s + 1].expand(-1, out.shape[0])
            out.add_(c[s] * (signal.T @ acts[k]))

    def after_update(self, net: MLP, acts, lr: float) -> None:
        """Adaptive channels learn: B^k += eta_c/batch * R_src^T O^{k+1} (the paper's dC = eta O R^T)."""
        if not self.adaptive or self.per_weight:
            return
        batch = acts[0].shape[0]
        eta = lr * self.adaptive_lr_scale / batch
        for k in self.hidden_layers():
            if self.skipped or net.kinds[k + 1] == "dense":
                self.B[k].addmm_(self.R[self.source(k)].T, acts[k + 1].reshape(batch, -1), alpha=eta)
            else:
                # dC^k = O^{k+1} (R^{k+1})^T is layer k+1's own weight update, laid out as its kernel.
                self.B[k].add_(net.weight_grad(k + 1, self.R[k + 1], acts, torch.empty_like(self.B[k])), alpha=eta)

    def state(self) -> dict:
        return {"B": {k: v.clone() for k, v in self.B.items()},
                "per_weight_B": {k: v.clone() for k, v in self.per_weight_B.items()},
                "factors": {k: (u.clone(), v.clone()) for k, (u, v) in self.factors.items()},
                "counters": [self.q_error.counter, self.q_signal.counter, self.q_feedback.counter,
                             self.update_counter],
                "gen": self.gen.get_state()}

    def load_state(self, state: dict) -> None:
        for k, v in state["B"].items():
            self.B[k].copy_(v)
        for k, v in state["per_weight_B"].items():
            self.per_weight_B[k].copy_(v)
        for k, (u, v) in state.get("factors", {}).items():
            self.factors[k][0].copy_(u)
            self.factors[k][1].copy_(v)
        (self.q_error.counter, self.q_signal.counter, self.q_feedback.counter,
         self.update_counter) = state["counters"]
        self.gen.set_state(state["gen"])


class ForwardChannel(Channel):
    """BP: the signal goes down through the forward weights as the forward pass used them
    (quantized when the forward is)."""

    def matrix(self, k, net):
        return net.W_fwd[k + 1]


class RandomChannel(Channel):
    """RBP, SRBP and the adaptive ones: fixed random matrices from the feedback factory."""

    def matrix(self, k, net):
        return self.B[k]


class ProductChannel(Channel):
    """Skipped BP: the output error reaches layer k through the product of the forward matrices above it."""

    def prepare(self, net):
        prod = net.W[self.L - 1]
        self._products = {}
        for k in reversed(range(self.L - 1)):
            self._products[k] = prod
            if k > 0:
                prod = prod @ net.W[k]

    def matrix(self, k, net):
        return self._products[k]


class NoChannel(Channel):
    """Top layer only: no signal reaches the hidden layers."""


CHANNELS = {"forward": ForwardChannel, "random": RandomChannel, "forward_product": ProductChannel, None: NoChannel}


def make_channel(cfg: RunConfig, net: MLP, rng: np.random.Generator, batch: int, backend: str = "auto") -> Channel:
    return CHANNELS[cfg.channel.rule.source](cfg, net, rng, batch, backend)
