"""One MNIST epoch with the bit-true learning channel against the float32 SRBP epoch, side by side.

Same net (784-100-100-100-100-10 tanh, softmax), minibatch 100, 60,000 examples, same thread count
(1 by default) for torch and Numba; each timing the median of ``--repeats`` interleaved rounds
(one epoch of every contender per round), so machine noise hits every contender alike.

Contenders (the datapaths of ``lowbit_rbp/sweeps/bit_true.toml``; ``lowbit_rbp/core/datapath.py``):

* float SRBP: the paper's SRBP, dense Glorot-normal feedback, float32 everywhere (the reference);
* float SRBP sparse-1: float32, sparse-1 feedback as a dense float matrix (torch.mm);
* bit-true SRBP sparse-1: 4-bit errors/signals (stochastic rounding), sparse-1 binary feedback by
  index lists into a 12-bit saturating accumulator (``fixed_sparse_product``), float32 weights;
* bit-true SRBP dense: the same with dense feedback stored fixed:w=4,f=4 (``fixed_product``);
* bit-true RBP dense: layer to layer, 100 x 100 fixed-point products, 16-bit accumulator;
* designer's SRBP: bit-true SRBP sparse-1 plus weights stored in 8 bits with stochastic rounding
  of every update (``add_quantize``), no float shadow.

    python benchmarks/bench_bit_true_epoch.py [--threads 1] [--repeats 5] [--markdown FILE] [--json FILE]
"""
from __future__ import annotations

import argparse
import os
import statistics

from common import Tables, command_line, time_interleaved
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.data import load_dataset
from lowbit_rbp.learning.trainer import Trainer

SIGNALS = ["formats.quantize_at=after_fprime", "formats.error=fixed:w=4,f=3,round=stochastic",
           "formats.signal=fixed:w=4,f=3,round=stochastic"]
CONTENDERS = {
    "float SRBP": ["channel.algorithm=srbp"],
    "float SRBP sparse-1": ["channel.algorithm=srbp", "channel.feedback=sparse:n=1"],
    "bit-true SRBP sparse-1": ["channel.algorithm=srbp", "channel.feedback=sparse:n=1", *SIGNALS,
                               "formats.channel_accumulator=fixed:w=12,f=3"],
    "bit-true SRBP dense": ["channel.algorithm=srbp", "formats.feedback=fixed:w=4,f=4", *SIGNALS,
                            "formats.channel_accumulator=fixed:w=12,f=7"],
    "bit-true RBP dense": ["channel.algorithm=rbp", "formats.feedback=fixed:w=4,f=4", *SIGNALS,
                           "formats.channel_accumulator=fixed:w=16,f=7"],
    "designer's SRBP (+ 8-bit stored weights)": ["channel.algorithm=srbp", "channel.feedback=sparse:n=1", *SIGNALS,
                                                 "formats.channel_accumulator=fixed:w=12,f=3",
                                                 "formats.weights=fixed:w=8,f=6,round=stochastic"],
}
REFERENCE = "float SRBP"
TARGETS = {"bit-true SRBP sparse-1": 1.5, "bit-true SRBP dense": 1.5}   # issue 17: at most 1.5x float SRBP


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    Runtime(threads=args.threads).apply()
    out = Tables()
    data = load_dataset("mnist")
    n = data.x_train.shape[0]
    trainers = {name: Trainer(apply_overrides(RunConfig(), over), data) for name, over in CONTENDERS.items()}
    load = os.getloadavg()[0]
    times = time_interleaved({name: tr.train_epoch for name, tr in trainers.items()}, args.repeats)
    load_after = os.getloadavg()[0]
    base = statistics.median(times[REFERENCE])
    out.emit(f"\n{args.threads} thread(s); median of {args.repeats} interleaved rounds (after one warm-up epoch "
             f"each); 1-minute load average {load:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs "
             f"(a load above the CPU count means other work shared the cores)")
    out.emit("")
    out.emit("| contender | median s/epoch | samples/s | vs float SRBP | target |")
    out.emit("|---|---|---|---|---|")
    results = []
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = med / base
        target = TARGETS.get(name)
        verdict = "" if target is None else f"<= {target}x: {'met' if ratio <= target else 'NOT met'}"
        out.emit(f"| {name} | {med:.3f} | {n / med:.0f} | {ratio:.2f}x | {verdict} |")
        results.append({"contender": name, "median_s": med, "ratio_vs_float_srbp": ratio, "times_s": ts,
                        "threads": args.threads, "overrides": CONTENDERS[name]})
    out.finish(args, results, "One MNIST epoch: the bit-true learning channel vs float SRBP",
               command_line("bench_bit_true_epoch.py", argv),
               "Net 784-100-100-100-100-10 tanh, minibatch 100, 60,000 examples; contenders and "
               "their datapaths in the script's docstring; epochs trained in turn on one Trainer "
               "each (the weights keep learning across rounds).")
    return results


if __name__ == "__main__":
    main()
