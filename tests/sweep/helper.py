"""Tiny synthetic data and a sweep driver for the sweep tests (run as a script in subprocesses).

    python helper.py STORE [--reverse] [--delay SECONDS] [--workers N]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
DATA_SPEC = f"{HERE}:tiny"


class TinyData:
    def __init__(self, n_train=200, n_test=100, dim=12, n_classes=4, seed=0):
        rng = np.random.default_rng(seed)
        centers = rng.normal(0, 1, size=(n_classes, dim))

        def make(n):
            y = rng.integers(0, n_classes, size=n)
            x = centers[y] + 0.5 * rng.normal(size=(n, dim))
            x = (x - x.min()) / (x.max() - x.min())
            return (x * 255).astype(np.uint8), y.astype(np.int64)
        self.x_train, self.y_train = make(n_train)
        self.x_test, self.y_test = make(n_test)
        self.n_classes = n_classes
        self.name = "tiny"

    def flat_float32(self, split):
        x = self.x_train if split == "train" else self.x_test
        return x.reshape(x.shape[0], -1).astype(np.float32) / 255.0


def tiny(cfg=None):
    return TinyData()


SWEEP = {
    "name": "tiny",
    "seeds": [0, 1],
    "base": {"model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 20}, "threads": 1},
    "grid": {"channel.algorithm": ["bp", "rbp", "srbp"]},
}


def sweep(**changes):
    from lowbit_rbp.sweep import expand_sweep
    data = {**SWEEP, **changes}
    return expand_sweep(data)


def slow_epochs(delay: float) -> None:
    """Make every epoch take at least ``delay`` seconds (patches Trainer.run in this process)."""
    from lowbit_rbp import train
    orig = train.Trainer.run

    def run(self, **kw):
        for rec in orig(self, **kw):
            time.sleep(delay)
            yield rec
    train.Trainer.run = run


def main(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("store")
    p.add_argument("--reverse", action="store_true")
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args(argv)
    from lowbit_rbp.sweep import run_sweep
    if args.delay:
        slow_epochs(args.delay)
    sw = sweep()
    if args.reverse:
        sw.runs.reverse()
    s = run_sweep(sw, args.store, data=DATA_SPEC, progress=False, threads=1)
    print("ran", len(s.ran), "skipped", len(s.skipped), "busy", len(s.busy), "failed", len(s.failed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
