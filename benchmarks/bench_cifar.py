"""CIFAR-10 conv net training: our BP / RBP / SRBP against plain torch autograd BP, side by side.

The paper's net (3 x conv 5x5 64 tanh + max-pool 3x3/2, dense 1024 tanh, softmax), minibatch 128,
SGD momentum 0.9, the same augmentation (``lowbit_rbp.data.augment``) for every contender, same thread
count. A conv epoch takes about a minute here, so each timing is a block of ``--steps`` minibatches
(the first ``steps x 128`` training images), interleaved across contenders, median of
``--repeats`` blocks. Prints samples/s and the ratio to autograd BP.

    python benchmarks/bench_cifar.py [--threads 2] [--steps 4] [--repeats 3] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from common import Tables, command_line, time_interleaved  # noqa: E402
from lowbit_rbp.data.augment import augment_  # noqa: E402
from lowbit_rbp.core.config import apply_overrides  # noqa: E402
from lowbit_rbp.core.runtime import Runtime  # noqa: E402
from lowbit_rbp.data import load_dataset  # noqa: E402
from lowbit_rbp.results.sweep import load_sweep  # noqa: E402
from lowbit_rbp.learning.trainer import Trainer  # noqa: E402

BATCH = 128


class AutogradBP:
    """The straightforward torch way: nn layers, autograd, optim.SGD with momentum."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed=0):
        torch.manual_seed(seed)
        nn = torch.nn
        layers, c = [], 3
        for _ in range(3):
            layers += [nn.Conv2d(c, 64, 5, padding=2), nn.Tanh(), nn.MaxPool2d(3, 2, 1)]
            c = 64
        layers += [nn.Flatten(), nn.Linear(1024, 1024), nn.Tanh(), nn.Linear(1024, 10)]
        self.net = nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        self.rng = np.random.default_rng(seed)
        self.loss = nn.CrossEntropyLoss()
        self.xb = torch.empty(BATCH, 3, 32, 32)

    def epoch(self):
        order = torch.from_numpy(self.rng.permutation(self.x.shape[0]))
        for start in range(0, self.x.shape[0] - BATCH + 1, BATCH):
            idx = order[start:start + BATCH]
            torch.index_select(self.x, 0, idx, out=self.xb)
            augment_(self.xb, 0.1, 0.5, self.rng)
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(self.xb), self.y[idx]).backward()
            self.opt.step()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args(argv)
    data = load_dataset("cifar10-subset")
    n = args.steps * BATCH
    out = Tables()
    for threads in [int(t) for t in args.threads.split(",")]:
        Runtime(threads=threads).apply()
        contenders = {}
        for alg in ("bp", "rbp", "srbp"):
            # The CIFAR-10 protocol of the sweep file (its baseline run), this algorithm, n examples.
            protocol = load_sweep("cifar10", seeds=[0]).runs[0].config
            cfg = apply_overrides(protocol, [f"channel.algorithm={alg}", f"train.train_subset={n}", "name=''"])
            tr = Trainer(cfg, data)
            contenders[f"ours {alg.upper()}"] = lambda tr=tr: tr.train_epoch()
        ag = AutogradBP(tr.x_train.numpy(), tr.y_train)   # the same centred images and labels
        contenders = {"torch autograd BP": ag.epoch, **contenders}
        times = time_interleaved(contenders, args.repeats)
        base = statistics.median(times["torch autograd BP"])
        out.emit(f"\n{threads} thread(s); blocks of {args.steps} minibatches of {BATCH}; median of {args.repeats} "
             "interleaved repeats")
        out.emit("| contender | median s/minibatch | samples/s | vs autograd BP |")
        out.emit("|---|---|---|---|")
        for name in contenders:
            med = statistics.median(times[name])
            out.emit(f"| {name} | {med / args.steps:.3f} | {n / med:.1f} | {base / med:.2f}x |")
    if args.markdown:
        out.write_markdown(args.markdown, "CIFAR-10 conv net: ours vs torch autograd BP",
                           command_line("bench_cifar.py", argv),
                           "Paper net, minibatch 128, momentum 0.9, translation + flip augmentation for every "
                           "contender.")


if __name__ == "__main__":
    main()
