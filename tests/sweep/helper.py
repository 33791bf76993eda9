"""Tiny synthetic data and a sweep driver for the sweep tests (run as a script in subprocesses).

    python helper.py STORE [--reverse] [--delay SECONDS] [--scheduler tcp://HOST:PORT]
    python helper.py STORE --search TRIALS [--delay SECONDS]      # a search of TINY_SPACE
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))
from tinydata import TinyData  # noqa: E402
DATA_SPEC = f"{HERE}:tiny"
SLOW_DATA_SPEC = f"{HERE}:tiny_slow"    # the same data; every epoch takes 0.4 s more (for kills mid-run)


def tiny(cfg=None):
    return TinyData()


def tiny_slow(cfg=None):
    """The tiny data, and epochs made slow in the process that loads it (a Dask worker)."""
    slow_epochs(0.4)
    return TinyData()


SWEEP = {
    "name": "tiny",
    "seeds": [0, 1],
    "base": {"model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 20}},
    "grid": {"channel.algorithm": ["bp", "rbp", "srbp"]},
}


# A tiny design space: 3 x 3 x 2 = 18 configurations of a tiny SRBP net (costs differ by knob).
TINY_SPACE = {
    "name": "tiny_space",
    "base": {"model": {"hidden": [8]}, "channel": {"algorithm": "srbp"}, "train": {"epochs": 3, "batch_size": 20}},
    "knobs": {"formats.error": ["float32", "log:alpha=2,bits=2", "log:alpha=2,bits=4"],
              "formats.weights": ["float32", "fixed:w=12,f=10,round=stochastic", "fixed:w=8,f=6,round=stochastic"],
              "channel.feedback": ["glorot_normal", "sparse:n=1"]},
}
TINY_OBJECTIVES = ("accuracy:max", "energy_pj:min", "area_mm2:min")


def space(**changes):
    from lowbit_rbp.results.space import parse_space
    return parse_space({**TINY_SPACE, **changes})


def sweep(**changes):
    from lowbit_rbp.results.sweep import expand_sweep
    data = {**SWEEP, **changes}
    return expand_sweep(data)


def snapshot(path):
    """Runs (hash, status) and epoch rows without wall-clock fields: what an equal sweep must give."""
    from lowbit_rbp.results.store import Store
    with Store(path) as st:
        runs = sorted((r.config_hash, r.status, r.label) for r in st.runs())
        epochs = sorted((r.config_hash, e.epoch, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.lr, e.status)
                        for r in st.runs() for e in r.epochs)
        assert st.integrity_ok()
    return runs, epochs


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
    p.add_argument("--scheduler", default=None, help="train on this Dask scheduler's workers (slow epochs)")
    p.add_argument("--search", type=int, default=0, help="search TINY_SPACE with this many trials instead")
    args = p.parse_args(argv)
    from lowbit_rbp.core.runtime import Runtime
    from lowbit_rbp.results.sweep import run_sweep
    if args.delay:
        slow_epochs(args.delay)
    if args.search:
        from lowbit_rbp.results.search import run_search
        s = run_search(space(), args.store, TINY_OBJECTIVES, args.search, data=DATA_SPEC, progress=False,
                       runtime=Runtime(threads=1))
        print("trained", len(s.trained), "reused", len(s.reused), flush=True)
        return 0
    sw = sweep()
    if args.reverse:
        sw.runs.reverse()
    if args.scheduler:
        s = run_sweep(sw, args.store, data=SLOW_DATA_SPEC, progress=False, executor="dask", scheduler=args.scheduler)
    else:
        s = run_sweep(sw, args.store, data=DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    print("ran", len(s.ran), "skipped", len(s.skipped), "busy", len(s.busy), "failed", len(s.failed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
