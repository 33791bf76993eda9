"""Sub-commands ``sweep`` and ``report`` (registered into the main CLI by ``register(subparsers)``).

    lowbit-rbp sweep lowbit_rbp/sweeps/mnist_table1.toml --store results/sweeps.db --workers 2
    lowbit-rbp sweep SWEEP.toml --executor dask --scheduler tcp://127.0.0.1:8786
    lowbit-rbp report --store results/sweeps.db --out reports/sweeps --budget energy_pj=5e5 --budget wires=2e4

``report`` writes ``tables.md`` (every table with its protocol) and PNG plots: accuracy vs error bits,
update bits, sparsity n, rank and LC dropout (each when the store has such runs), training curves, and
accuracy vs each cost (energy, learning-channel energy and operations, wires, bits moved, feedback memory)
with the Pareto front. The store is opened read-only, so a report can be made while a sweep writes it.
"""
from __future__ import annotations

import sys

from ..errors import ConfigError, bad_value

DEFAULT_STORE = "results/sweeps.db"


def cmd_sweep(args) -> int:
    from .sweep import load_sweep, run_sweep
    sw = load_sweep(args.sweep)
    if args.executor == "local" and args.scheduler:
        raise ConfigError("--scheduler is for --executor dask")
    print(f"sweep {sw.name}: {len(sw.runs)} runs -> {args.store}", file=sys.stderr)
    s = run_sweep(sw, args.store, workers=args.workers, executor=args.executor, scheduler=args.scheduler,
                  threads=args.threads, progress=not args.quiet)
    div = sum(v == "diverged" for v in s.ran.values())
    print(f"ran {len(s.ran)} ({div} diverged, {len(s.failed)} failed), skipped {len(s.skipped)} already done, "
          f"{len(s.busy)} held by another sweep")
    if s.failed:
        print(f"failed runs (see runs.error in {args.store}): {', '.join(s.failed)}", file=sys.stderr)
    return 1 if s.failed else 0


def _parse_budget(items) -> dict:
    from ..report import COST_KEYS
    out = {}
    for item in items or ():
        k, eq, v = item.partition("=")
        if not eq or k not in COST_KEYS:
            raise bad_value("--budget", item, "KEY=VALUE with KEY in " + ", ".join(COST_KEYS))
        try:
            out[k] = float(v)
        except ValueError:
            raise bad_value(f"--budget {k}", v, "a number") from None
    return out


def cmd_report(args) -> int:
    from pathlib import Path
    from ..report import write_report
    if not Path(args.store).is_file():
        raise ConfigError(f"results store {args.store!r} does not exist; run `lowbit-rbp sweep` first")
    limits = _parse_budget(args.budget)
    command = " ".join(["lowbit-rbp report", "--store", args.store, "--out", args.out,
                        *(f"--budget {b}" for b in args.budget), *(["--no-plots"] if args.no_plots else [])])
    path = write_report(args.store, args.out, budget_limits=limits, plots=not args.no_plots, command=command)
    print(path.read_text())
    print(f"wrote {path}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="train every run of a sweep file into a SQLite results store")
    p.add_argument("sweep", metavar="SWEEP.toml", help="sweep file (see lowbit_rbp/sweeps/)")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results store (default {DEFAULT_STORE})")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default cores/workers)")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    from ..report import COST_KEYS
    p = subparsers.add_parser("report", help="Markdown tables and PNG plots from a results store")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--out", default="reports/sweeps", help="output folder (tables.md, *.png)")
    p.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE",
                   help="list the configurations within a cost budget per training example, best accuracy "
                        "first, with the full cost breakdown; KEY: " + ", ".join(COST_KEYS) + " (repeatable)")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_report)
