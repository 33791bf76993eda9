"""The tiny sweep of ``tests/sweep/helper.py`` (6 runs of 3 epochs) on worker processes, for the
fault tests that kill a sweep from outside (run as a script in a subprocess).

    python sweep_driver.py STORE [--workers N]

Each epoch sleeps ``$LOWBIT_TEST_EPOCH_DELAY`` seconds (default 0) in the worker that trains it,
so a test can act while runs are in progress; the data provider installs the delay, since it runs
in the worker process.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "sweep"))
import helper  # noqa: E402

DATA_SPEC = f"{HERE}:slow_tiny"


def slow_tiny(cfg=None):
    delay = float(os.environ.get("LOWBIT_TEST_EPOCH_DELAY", "0"))
    if delay:
        helper.slow_epochs(delay)
    return helper.tiny(cfg)


def main(argv) -> int:
    import argparse
    from lowbit_rbp.core.runtime import Runtime
    from lowbit_rbp.results.sweep import run_sweep
    p = argparse.ArgumentParser()
    p.add_argument("store")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    print("started", os.getpid(), flush=True)
    s = run_sweep(helper.sweep(), args.store, data=DATA_SPEC, progress=False,
                  runtime=Runtime(threads=1, workers=args.workers))
    print("ran", len(s.ran), "skipped", len(s.skipped), "busy", len(s.busy), "failed", len(s.failed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
