"""One MNIST epoch: our BP and SRBP against plain torch autograd BP, measured side by side.

Same net (784-100-100-100-100-10 tanh, softmax), same minibatch (100), same thread count, same
data order; each timing is the median of several repeats, interleaved so that machine noise hits
every contender alike. Prints samples/s, the ratio to autograd BP, and the fraction of this
machine's measured sgemm peak (FLOPs of the algorithm / time / peak).

    python benchmarks/bench_epoch.py [--threads 1,2] [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from common import Tables, command_line, time_interleaved
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.data import load_dataset
from lowbit_rbp.learning.trainer import Trainer

SIZES = [784, 100, 100, 100, 100, 10]


def flops_per_sample(algorithm: str) -> float:
    """Multiply-adds x 2: forward, learning channel, weight update (biases ignored)."""
    fwd = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    if algorithm == "bp":
        channel = sum(a * b for a, b in zip(SIZES[1:-1], SIZES[2:]))       # eq. 14
    else:
        channel = SIZES[-1] * sum(SIZES[1:-1])                              # eq. 15
    return 2.0 * (fwd + channel + fwd)


def sgemm_peak(threads: int, n: int = 1024, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=c)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times)


class AutogradBP:
    """The straightforward torch way: nn.Linear layers, autograd, optim.SGD."""

    def __init__(self, data, seed=0):
        torch.manual_seed(seed)
        layers = []
        for k, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            lin = torch.nn.Linear(a, b)
            torch.nn.init.xavier_normal_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
            layers.append(lin)
            if k < len(SIZES) - 2:
                layers.append(torch.nn.Tanh())
        self.net = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        self.x = torch.from_numpy(data.flat_float32("train"))
        self.y = torch.from_numpy(data.y_train.astype(np.int64))
        self.rng = np.random.default_rng(seed)
        self.loss = torch.nn.CrossEntropyLoss()

    def epoch(self):
        order = torch.from_numpy(self.rng.permutation(self.x.shape[0]))
        for start in range(0, self.x.shape[0] - 99, 100):
            idx = order[start:start + 100]
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(self.x[idx]), self.y[idx]).backward()
            self.opt.step()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None, help="also write the tables to this Markdown file")
    args = ap.parse_args(argv)
    out = Tables()
    data = load_dataset("mnist")
    n = data.x_train.shape[0]
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        Runtime(threads=threads).apply()
        peak = sgemm_peak(threads)
        contenders = {"torch autograd BP": AutogradBP(data).epoch}
        algorithm = {"torch autograd BP": "bp"}
        for alg in ("bp", "srbp"):
            tr = Trainer(apply_overrides(RunConfig(), [f"channel.algorithm={alg}"]), data)
            name = f"ours {alg.upper()}"
            contenders[name] = lambda tr=tr: tr.train_epoch()
            algorithm[name] = alg
        times = time_interleaved(contenders, args.repeats)
        base = statistics.median(times["torch autograd BP"])
        out.emit(f"\n{threads} thread(s); sgemm peak {peak / 1e9:.1f} GFLOP/s (1024^3 torch.mm); "
                 f"median of {args.repeats} interleaved repeats")
        out.emit("| contender | median s/epoch | samples/s | vs autograd BP | % of sgemm peak |")
        out.emit("|---|---|---|---|---|")
        for name, ts in times.items():
            med = statistics.median(ts)
            frac = flops_per_sample(algorithm[name]) * n / med / peak
            out.emit(f"| {name} | {med:.3f} | {n / med:.0f} | {base / med:.2f}x | {100 * frac:.1f}% |")
            results.append({"threads": threads, "contender": name, "median_s": med, "samples_per_s": n / med,
                            "ratio_vs_autograd_bp": base / med, "fraction_of_peak": frac,
                            "repeats": args.repeats, "sgemm_peak_flops": peak})
    out.finish(args, results, "One MNIST epoch: ours vs torch autograd BP",
               command_line("bench_epoch.py", argv),
               "Net 784-100-100-100-100-10 tanh, minibatch 100, 60,000 examples; FLOPs counted as 2 x "
               "(forward + learning channel + weight update) multiply-adds.")
    return results


if __name__ == "__main__":
    main()
