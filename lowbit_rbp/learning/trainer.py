"""The one training loop: forward, output error, learning-channel signals, update, metrics.

Every algorithm runs through this loop; they differ only in their ``Channel``. A run yields one
record per epoch; ``run_training`` writes them as JSON lines as they finish and keeps a
checkpoint, so a killed run resumes from its last finished epoch.

Divergence: a run stops, recorded ``diverged`` with the reason in its last ``EpochRecord``, when
its outputs or weights become NaN/inf, or when it has blown up without NaN (``blow_up_reason``):
an epoch's train or test loss above ``LOSS_FACTOR`` x ln(C) nats (C classes; ln C is the loss of a
uniform guess, the chance level) while its train and test accuracy both stay below
``chance_bound(C)`` = 1/C + ``ACC_MARGIN`` x (1 - 1/C), i.e. within 10% of chance. Both halves are
needed: quantized channels that do learn (1-bit RBP/SRBP errors: 85-94% on MNIST after 20
epochs) have losses up to 13 x ln 10 on the way, from overconfident mistakes at 37-44% accuracy,
while the blown-up runs seen (lr 1e6; BP with 1-bit errors) have losses of 24-27 x ln 10 at
chance accuracy and stay there (in reports/sweeps, every run the rule flags ends at 10-11%).
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..core.config import RunConfig
from ..core.quantizer import Quantizer
from ..core.runtime import Runtime
from ..data.augment import augment_
from ..nets import build_net
from .channel import make_channel
from .diagnostics import Diagnostics


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch of a run."""

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    status: str = "ok"   # ok | diverged
    reason: str = ""     # why a diverged epoch diverged (module docstring: the rule)

    @classmethod
    def from_dict(cls, d: dict) -> "EpochRecord":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


LOSS_FACTOR = 3.0    # a blown-up epoch's loss exceeds LOSS_FACTOR x ln(C) nats ...
ACC_MARGIN = 0.1     # ... while its accuracies stay below 1/C + ACC_MARGIN x (1 - 1/C)


def chance_bound(n_classes: int) -> float:
    """The accuracy below which an epoch counts as at chance level (for the blow-up rule)."""
    chance = 1.0 / n_classes
    return chance + ACC_MARGIN * (1.0 - chance)


def blow_up_reason(train_loss: float, test_loss: float, train_acc: float, test_acc: float, n_classes: int) -> str:
    """Why an epoch with finite losses has blown up, or "" if it has not (module docstring: the rule)."""
    limit = LOSS_FACTOR * math.log(n_classes)
    loss, which = max((train_loss, "train"), (test_loss, "test"))
    acc_bound = chance_bound(n_classes)
    if loss > limit and max(train_acc, test_acc) < acc_bound:
        return (f"blow-up: {which} loss {loss:.3g} nats > {LOSS_FACTOR:g} x ln({n_classes}) = {limit:.3g} "
                f"(chance level) with train/test accuracy {100 * train_acc:.1f}%/{100 * test_acc:.1f}% < "
                f"{100 * acc_bound:.1f}% (chance {100 / n_classes:.1f}%)")
    return ""


class EpochScores:
    """Every training example's output probabilities, copied in as minibatches finish; the epoch's
    loss and accuracy are reduced once, at its end. One copy per minibatch instead of a gather and
    an argmax (each a few microseconds of dispatch on a 100 x 10 output)."""

    def __init__(self, n: int, n_classes: int):
        self.probs = torch.empty(n, n_classes)
        self._probs_np = self.probs.numpy()

    def record(self, start: int, probs: torch.Tensor) -> bool:
        """Keep the outputs of examples ``start..start+len(probs)``; False if any is NaN (a
        non-finite weight reaches every output, so this is the divergence check)."""
        end = start + probs.shape[0]
        self.probs[start:end].copy_(probs)
        return math.isfinite(self._probs_np[start:end].sum())

    def totals(self, labels: torch.Tensor) -> tuple[float, int]:
        """(summed cross-entropy, correct count) of the first ``len(labels)`` examples, in order."""
        seen = labels.shape[0]
        probs = self.probs[:seen]
        p_true = probs.gather(1, labels.unsqueeze(1))
        loss = -float(p_true.clamp_min(1e-30).double().log_().sum())
        return loss, int((probs.argmax(1) == labels).sum())


def seed_streams(seed: int):
    """Independent generators for data order, initial weights and feedback matrices."""
    data_ss, init_ss, fb_ss = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(data_ss), np.random.default_rng(init_ss), np.random.default_rng(fb_ss)


class Trainer:
    """Holds the state of one run: net, channel, optimizer buffers, data order, step count."""

    def __init__(self, cfg: RunConfig, data, runtime: Runtime | None = None):
        """``runtime``: its kernel backend is used; its threads are the process's business
        (``Runtime.apply``, called once where the process starts)."""
        cfg.validate()
        self.cfg = cfg
        self.runtime = runtime or Runtime()
        t = cfg.train
        m = cfg.model
        if m.conv:
            # Images (N, C, H, W) in [0, 1], centred by the training set's per-channel mean.
            x_train, x_test = data.images_float32("train"), data.images_float32("test")
            mean = x_train.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
            x_train -= mean
            x_test -= mean
        else:
            x_train, x_test = data.flat_float32("train"), data.flat_float32("test")
        self.x_train, self.y_train = _subset(x_train, data.y_train, t.train_subset)
        self.x_test, self.y_test = _subset(x_test, data.y_test, t.test_subset)
        self.x_train = torch.from_numpy(np.ascontiguousarray(self.x_train))
        self.x_test = torch.from_numpy(np.ascontiguousarray(self.x_test))
        if cfg.formats.activations.kind != "float":
            # The input is presented in the activation format, as every hidden activation is.
            q = Quantizer(cfg.formats.activations, t.seed * 4 + 7, self.runtime.backend)
            q(self.x_train)
            q(self.x_test)
        self.y_train_t = torch.from_numpy(self.y_train.astype(np.int64))
        self.y_test_t = torch.from_numpy(self.y_test.astype(np.int64))
        self.n_classes = data.n_classes
        self.data_rng, init_rng, fb_rng = seed_streams(t.seed)
        self.net = build_net(cfg, tuple(self.x_train.shape[1:]), data.n_classes, init_rng, self.runtime.backend)
        self.batch = min(t.batch_size, self.x_train.shape[0])
        self.channel = make_channel(cfg, self.net, fb_rng, self.batch, self.runtime.backend)
        self.grads = [torch.empty_like(w) for w in self.net.W]
        self.velocity = ([torch.zeros_like(w) for w in self.net.W], [torch.zeros_like(b) for b in self.net.b]) \
            if t.momentum else None
        # The velocity as stored: rounded into formats.momentum by every update (float32: kept as is).
        self.momentum_q = Quantizer(cfg.formats.momentum, t.seed * 4 + 9, self.runtime.backend) \
            if cfg.formats.momentum.kind != "float" else None
        self.step = 0
        self.epoch = 0
        # Preallocated per-minibatch buffers: inputs, one-hot targets, activations, bias updates.
        self.xb = torch.empty(self.batch, *self.x_train.shape[1:])
        self.tb = torch.zeros(self.batch, data.n_classes)
        # One-hot targets of every training example, gathered per minibatch in one op.
        self.targets_train = torch.zeros(self.x_train.shape[0], data.n_classes)
        self.targets_train.scatter_(1, self.y_train_t.unsqueeze(1), 1.0)
        self.acts = self.net.new_activations(self.batch)
        self.bias_grads = [torch.empty_like(b) for b in self.net.b]
        self.augment = (t.translate, t.hflip) if (t.translate or t.hflip) else None
        self.scores = EpochScores(self.x_train.shape[0], data.n_classes)
        # Learning diagnostics on a few minibatches per epoch (``Runtime.diagnostics``), off by default.
        self.diagnostics = Diagnostics(cfg, self.net, self.channel, self.batch, self.runtime.diagnostics,
                                       self.runtime.backend) if self.runtime.diagnostics else None

    def lr(self) -> float:
        t = self.cfg.train
        return t.lr / (1.0 + t.lr_decay * self.step)

    def train_epoch(self, progress=None) -> tuple[float, float, str]:
        """One pass over the training set; returns (mean loss, accuracy, why it diverged: "" if
        its outputs and weights stayed finite)."""
        n = self.x_train.shape[0]
        order = torch.from_numpy(self.data_rng.permutation(n))
        scores = self.scores
        seen = 0
        mom = self.cfg.train.momentum
        net, ch = self.net, self.channel
        trained = [k for k in range(net.n_layers) if ch.trains(k)]
        # Stored weights in a number format are rounded by every update: never the fused float path.
        stored_float = net.weight_q is None or net.shadow
        fused = [not mom and stored_float and ch.plain_update(k) and kind == "dense" for k, kind in enumerate(net.kinds)]
        diag, steps = self.diagnostics, n // self.batch
        for start in range(0, n - self.batch + 1, self.batch):
            idx = order[start:start + self.batch]
            torch.index_select(self.x_train, 0, idx, out=self.xb)
            if self.augment is not None:
                augment_(self.xb, *self.augment, self.data_rng)
            torch.index_select(self.targets_train, 0, idx, out=self.tb)
            acts = net.forward(self.xb, self.acts)
            finite = scores.record(start, acts[-1])
            seen += self.batch
            if not finite:
                _, correct = scores.totals(self.y_train_t[order[:seen]])
                return float("nan"), correct / seen, f"non-finite output (NaN/inf) at step {self.step + 1}"
            probe = None if diag is None else diag.probe_for(start // self.batch, steps)
            if probe is not None:
                ch.probe = probe
                R = ch.signals(net, acts, self.tb)
                ch.probe = None
                probe.observe(net, ch, acts, self.tb, fused)
            else:
                R = ch.signals(net, acts, self.tb)
            lr = self.lr()
            scale = lr / self.batch
            for k in trained:
                gb = net.bias_grad(k, R[k], self.bias_grads[k])
                if fused[k]:
                    # Fused W += scale * R^T O: one BLAS call, no gradient buffer round trip.
                    a = acts[k] if acts[k].dim() == 2 else acts[k].reshape(self.batch, -1)
                    net.W[k].addmm_(R[k].T, a, alpha=scale)
                    net.b[k].add_(gb, alpha=scale)
                    continue
                g = ch.weight_gradient(k, net, acts, self.grads[k])
                if probe is not None:
                    probe.observe_update(k, g)
                self._apply(k, g, gb, scale, mom)
            ch.after_update(net, acts, lr)
            self.step += 1
            if progress is not None:
                progress.update(1)
        finite = all(bool(torch.isfinite(w).all()) for w in net.W)
        loss_sum, correct = scores.totals(self.y_train_t[order[:seen]])
        return loss_sum / max(seen, 1), correct / max(seen, 1), "" if finite else "non-finite weights (NaN/inf)"

    def _apply(self, k: int, g: torch.Tensor, gb: torch.Tensor, scale: float, mom: float) -> None:
        """W += scale * g (with momentum: the velocity), b likewise; stored weights in a number
        format are rounded into it by the add (``Quantizer.add_``: one rounding of the exact sum)."""
        net = self.net
        if mom:
            vw, vb = self.velocity[0][k], self.velocity[1][k]
            if self.momentum_q is None:
                g, gb = vw.mul_(mom).add_(g, alpha=scale), vb.mul_(mom).add_(gb, alpha=scale)
            else:       # v = Q(mom v + scale g), one rounding into the stored velocity's format
                g, gb = self.momentum_q.add_(vw.mul_(mom), g, scale), self.momentum_q.add_(vb.mul_(mom), gb, scale)
            scale = 1.0
        q = net.weight_q
        if q is not None and not net.shadow:
            q.add_(net.W[k], g, scale)
            q.add_(net.b[k], gb, scale)
        else:
            net.W[k].add_(g, alpha=scale)
            net.b[k].add_(gb, alpha=scale)

    def evaluate(self, split: str = "test") -> tuple[float, float]:
        x, y = (self.x_test, self.y_test_t) if split == "test" else (self.x_train, self.y_train_t)
        probs = self.net.predict_proba(x)
        p_true = probs.gather(1, y.unsqueeze(1)).clamp_min(1e-30)
        return float(-p_true.log().mean()), float((probs.argmax(1) == y).float().mean())

    def state(self) -> dict:
        return {"net": self.net.state(), "channel": self.channel.state(), "step": self.step,
                "epoch": self.epoch, "data_rng": self.data_rng.bit_generator.state,
                "feedback_rng": self.channel.rng.bit_generator.state,
                "velocity": self.velocity,
                "momentum_counter": None if self.momentum_q is None else self.momentum_q.counter,
                **({"diagnostics": self.diagnostics.state()} if self.diagnostics is not None else {})}

    def load_state(self, state: dict) -> None:
        self.net.load_state(state["net"])
        self.channel.load_state(state["channel"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.data_rng.bit_generator.state = state["data_rng"]
        self.channel.rng.bit_generator.state = state["feedback_rng"]
        if self.diagnostics is not None:
            self.diagnostics.load_state(state.get("diagnostics", {}))
        if self.velocity is not None:
            for dst, src in zip(self.velocity[0] + self.velocity[1], state["velocity"][0] + state["velocity"][1]):
                dst.copy_(src)
        if self.momentum_q is not None:
            self.momentum_q.counter = state["momentum_counter"]

    def run(self, *, on_epoch=None, progress: bool = False):
        """Train the remaining epochs, yielding an ``EpochRecord`` after each."""
        from tqdm.auto import tqdm
        steps = self.x_train.shape[0] // self.batch
        total = self.cfg.train.epochs
        while self.epoch < total:
            bar = tqdm(total=steps, desc=f"{self.cfg.label()} epoch {self.epoch + 1}/{total}", leave=False,
                       disable=not progress, mininterval=1.0)
            t0 = time.perf_counter()
            train_loss, train_acc, diverged = self.train_epoch(bar)
            bar.close()
            seconds = time.perf_counter() - t0
            self.epoch += 1
            if self.diagnostics is not None:
                self.diagnostics.end_epoch(self.epoch)
            if diverged:
                rec = EpochRecord(self.epoch, float("nan"), train_acc, float("nan"), float("nan"), self.lr(),
                                  seconds, "diverged", diverged)
            else:
                test_loss, test_acc = self.evaluate("test")
                diverged = blow_up_reason(train_loss, test_loss, train_acc, test_acc, self.n_classes)
                rec = EpochRecord(self.epoch, train_loss, train_acc, test_loss, test_acc, self.lr(), seconds,
                                  "diverged" if diverged else "ok", diverged)
            if on_epoch is not None:
                on_epoch(rec, self)
            yield rec
            if diverged:
                return


def _subset(x, y, n):
    return (x[:n], y[:n]) if n else (x, y)


def machine_info() -> dict:
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__}
