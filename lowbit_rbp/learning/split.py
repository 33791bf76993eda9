"""Two cores on one small MLP: split each minibatch into halves computed on two threads.

The paper's MNIST net is made of 100-wide GEMMs; handing each of them to a 2-thread BLAS costs more
in synchronisation than it gains (measured: every contender is slower at 2 threads than at 1).
Instead each half of the minibatch runs forward, learning channel and its share of the weight
gradients on its own thread with a 1-thread BLAS (torch releases the GIL inside its ops), and the
two partial gradients are added. The halves and the summation order are fixed, so a run is
deterministic for a given thread count; it differs from the 1-thread arithmetic by float rounding
only (the same holds for a multi-threaded BLAS).

Opt-in (``parallel = "split"``): on the CI machine a 2-thread BLAS is faster (the split rows of
reports/bench_epoch.md); benchmarks/bench_epoch.py times both on yours. Used
only where every half sees the same channel: float formats, no channel randomness (dropout,
resampling), no channel state updated by the step (adaptive, sign-concordant), full updates,
dense layers, no forward quantization, no op tally.
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import torch

MIN_HALF = 32


def eligible(cfg, net, channel, batch: int, threads: int) -> bool:
    c = cfg.channel
    return (cfg.parallel == "split" and threads >= 2 and batch >= 2 * MIN_HALF
            and all(kind == "dense" for kind in net.kinds)
            and net.forward_quant is None and channel.tally is None and not channel.quantized_update
            and not any(q.active for q in (channel.q_error, channel.q_signal, channel.q_feedback))
            and not (c.dropout or c.resample or channel.adaptive or c.per_weight)
            and c.update == "full" and not channel.feedback_spec.needs_forward_sign)


class SplitBatch:
    """Forward, signals and summed gradients of a minibatch as two halves on two threads."""

    def __init__(self, net, channel, xb: torch.Tensor, tb: torch.Tensor):
        self.net = net
        batch = xb.shape[0]
        cut = batch // 2
        self.parts = []
        for lo, hi in ((0, cut), (cut, batch)):
            ch = copy.copy(channel)          # shares the feedback matrices, owns its buffers
            ch._alloc(net, hi - lo)
            self.parts.append({"lo": lo, "hi": hi, "x": xb[lo:hi], "t": tb[lo:hi], "ch": ch,
                               "acts": net.new_activations(hi - lo),
                               "g": [torch.empty_like(w) for w in net.W],
                               "gb": [torch.empty_like(b) for b in net.b]})
        self.trains = [channel.trains(k) for k in range(net.n_layers)]
        self.pool = ThreadPoolExecutor(max_workers=1, initializer=torch.set_num_threads, initargs=(1,))

    def _half(self, p: dict, scores, start: int) -> bool:
        net = self.net
        acts = net.forward(p["x"], p["acts"])
        finite = scores.record(start + p["lo"], acts[-1])
        R = p["ch"].signals(net, acts, p["t"])
        for k in range(net.n_layers):
            if self.trains[k]:
                torch.mm(R[k].T, acts[k], out=p["g"][k])
                torch.sum(R[k], dim=0, out=p["gb"][k])
        return finite

    def step(self, scores, start: int, grads, bias_grads) -> bool:
        """Fill ``grads``/``bias_grads`` (trained layers) with the minibatch's summed R^T O and R,
        and score its examples in ``scores`` (train.EpochScores) from ``start``; False if any
        output is NaN."""
        other = self.pool.submit(self._half, self.parts[1], scores, start)
        finite0 = self._half(self.parts[0], scores, start)
        finite1 = other.result()
        a, b = self.parts
        for k, trains in enumerate(self.trains):
            if trains:
                torch.add(a["g"][k], b["g"][k], out=grads[k])
                torch.add(a["gb"][k], b["gb"][k], out=bias_grads[k])
        return finite0 and finite1
