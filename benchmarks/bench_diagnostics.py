"""What the learning diagnostics cost: one MNIST epoch with them off and on, side by side.

Same net as ``bench_epoch.py`` (784-100-100-100-100-10 tanh, softmax, minibatch 100, 600 steps),
same thread count for torch and Numba, same seed. For each channel below, two trainers: diagnostics
off (``Runtime(diagnostics=0)``, the default) and on (``--diagnostics N``: N sampled minibatches per
epoch, each with BP's gradient on the side, the angles, norms and quantizer statistics). Each timing
is the median of ``--repeats`` epochs, interleaved so that machine noise hits every contender alike,
after one warm-up epoch each.

With diagnostics off, the training loop differs from a loop without them by one ``is None`` test per
minibatch and per quantization point; that cost is measured apart (``timeit`` of the tests, times
the number an epoch makes) and printed as a fraction of the epoch.

    LOWBIT_RBP_DATA=../shared/data python benchmarks/bench_diagnostics.py [--threads 1] [--repeats 3]
        [--minibatches 4] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_epoch import SIZES  # noqa: E402
from common import Tables, command_line, time_interleaved  # noqa: E402
from lowbit_rbp.core.config import RunConfig, apply_overrides  # noqa: E402
from lowbit_rbp.core.runtime import Runtime  # noqa: E402
from lowbit_rbp.data import load_dataset  # noqa: E402
from lowbit_rbp.learning.trainer import Trainer  # noqa: E402

CHANNELS = {
    "SRBP float32": ["channel.algorithm=srbp"],
    "BP float32": ["channel.algorithm=bp"],
    "RBP 3-bit error + signals": ["channel.algorithm=rbp", "formats.error='log:alpha=2,bits=3'",
                                  "formats.signal='log:alpha=2,bits=3'"],
    "SRBP 5-bit per-example update": ["channel.algorithm=srbp", "formats.update='log:alpha=0.5,bits=5'",
                                      "train.lr_decay=0"],
}


def hook_seconds_per_epoch(steps: int, points: int) -> float:
    """Seconds an epoch spends in the diagnostics-off tests: per minibatch one ``diag is None`` and one
    ``self.probe is None`` per quantization point (``points``: the error and each hidden signal)."""
    class Obj:
        probe = None
    obj, diag = Obj(), None
    n = 200_000
    per_test = min(timeit.repeat(lambda: obj.probe is None, number=n, repeat=5)) / n
    per_test = max(per_test, min(timeit.repeat(lambda: diag is None, number=n, repeat=5)) / n)
    return steps * (1 + points) * per_test


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch and Numba threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--minibatches", type=int, default=4, help="diagnostics: minibatches sampled per epoch")
    ap.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    Runtime(threads=args.threads).apply()
    data = load_dataset("mnist")
    out = Tables()
    out.emit(f"\n{args.threads} thread(s); diagnostics on {args.minibatches} of 600 minibatches per epoch; "
             f"median of {args.repeats} interleaved epochs (after one warm-up each)")
    out.emit("| channel | off: median s/epoch | on: median s/epoch | on / off | off: hook tests s/epoch "
             "(fraction) |")
    out.emit("|---|---|---|---|---|")
    for name, sets in CHANNELS.items():
        cfg = apply_overrides(RunConfig(), sets)
        off = Trainer(cfg, data, Runtime(threads=args.threads))
        on = Trainer(cfg, data, Runtime(threads=args.threads, diagnostics=args.minibatches))
        times = time_interleaved({"off": off.train_epoch, "on": on.train_epoch}, args.repeats)
        t_off, t_on = statistics.median(times["off"]), statistics.median(times["on"])
        hooks = hook_seconds_per_epoch(600, len(SIZES) - 2)
        out.emit(f"| {name} | {t_off:.3f} | {t_on:.3f} | {t_on / t_off:.3f}x | {hooks * 1e3:.2f} ms "
                 f"({100 * hooks / t_off:.3f} %) |")
    if args.markdown:
        out.write_markdown(args.markdown, "Learning diagnostics: one MNIST epoch with them off and on",
                           command_line("bench_diagnostics.py", argv),
                           f"Net {'-'.join(map(str, SIZES))} tanh, minibatch 100, 60,000 examples. 'off' is the "
                           "default training loop; its only diagnostics code is the hook tests of the last "
                           "column, timed apart.")


if __name__ == "__main__":
    main()
