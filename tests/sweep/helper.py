"""Tiny synthetic data and a sweep driver for the sweep tests (run as a script in subprocesses).

    python helper.py STORE [--reverse] [--delay SECONDS] [--workers N]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))
from tinydata import TinyData  # noqa: E402
DATA_SPEC = f"{HERE}:tiny"


def tiny(cfg=None):
    return TinyData()


SWEEP = {
    "name": "tiny",
    "seeds": [0, 1],
    "base": {"model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 20}},
    "grid": {"channel.algorithm": ["bp", "rbp", "srbp"]},
}


def sweep(**changes):
    from lowbit_rbp.results.sweep import expand_sweep
    data = {**SWEEP, **changes}
    return expand_sweep(data)


def slow_epochs(delay: float) -> None:
    """Make every epoch take at least ``delay`` seconds (patches Trainer.run in this process)."""
    from lowbit_rbp.learning import trainer as train
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
    from lowbit_rbp.results.sweep import run_sweep
    if args.delay:
        slow_epochs(args.delay)
    sw = sweep()
    if args.reverse:
        sw.runs.reverse()
    from lowbit_rbp.core.runtime import Runtime
    s = run_sweep(sw, args.store, data=DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    print("ran", len(s.ran), "skipped", len(s.skipped), "busy", len(s.busy), "failed", len(s.failed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
