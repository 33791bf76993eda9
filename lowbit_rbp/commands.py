"""Sub-commands ``sweep``, ``reproduce``, ``demo``, ``report`` and ``search`` (registered into the main
CLI by ``register(subparsers)``). They run sweeps and searches (``lowbit_rbp.results``) and render
their reports (``lowbit_rbp.report``), so they stand above both.

    lowbit-rbp sweep lowbit_rbp/sweeps/mnist_table1.toml --store results/sweeps.db --workers 2
    lowbit-rbp sweep SWEEP.toml --executor dask --scheduler tcp://127.0.0.1:8786
    lowbit-rbp sweep SWEEP.toml --reclaim     # take over runs left 'running' by a host that went away
    lowbit-rbp reproduce foundation --epochs 20 --seeds 0,1,2 --workers 2    # a named sweep + its report
    lowbit-rbp report --store results/sweeps.db --out reports/sweeps --budget energy_pj=5e5 --budget wires=2e4
    lowbit-rbp search SPACE.toml --objective accuracy:max --objective energy_pj:min --trials 81 --store S.db

``report`` writes ``tables.md`` (every table with its protocol) and PNG plots: accuracy vs error bits,
update bits, sparsity n, rank and LC dropout (each when the store has such runs), training curves, and
accuracy vs each cost (energy, learning-channel energy and operations, wires, bits moved, feedback memory)
with the Pareto front. The store is opened read-only, so a report can be made while a sweep writes it.
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import ConfigError, bad_value

DEFAULT_STORE = "results/sweeps.db"


def cmd_sweep(args) -> int:
    from .core.runtime import Runtime
    from .results.sweep import load_sweep, run_sweep
    sw = load_sweep(args.sweep)
    if args.executor == "local" and args.scheduler:
        raise ConfigError("--scheduler is for --executor dask")
    if args.scheduler:
        check_scheduler(args.scheduler)
    runtime = Runtime.from_args(args)
    print(f"sweep {sw.name}: {len(sw.runs)} runs -> {args.store}", file=sys.stderr)
    if args.executor == "local":
        note = thread_note(args.store, sw, runtime.per_worker(os.cpu_count() or 1).threads)
        if note:
            print(note, file=sys.stderr)
    s = run_sweep(sw, args.store, runtime=runtime, executor=args.executor,
                  scheduler=args.scheduler, progress=not args.quiet, reclaim=args.reclaim, retrain=args.retrain)
    div = sum(v == "diverged" for v in s.ran.values())
    print(f"ran {len(s.ran)} ({div} diverged, {len(s.failed)} failed), skipped {len(s.skipped)} already done, "
          f"{len(s.busy)} held by another sweep")
    if s.failed:
        print(f"failed runs (see runs.error in {args.store}; a rerun retrains them): {', '.join(s.failed)}",
              file=sys.stderr)
    if s.busy:
        print(f"{len(s.busy)} run(s) held by another sweep are not done yet; rerun when it ends, or with --reclaim "
              "if its host went away", file=sys.stderr)
    return 1 if s.failed or s.busy else 0


def thread_note(store_path, sweep, threads: int) -> str:
    """A note when runs of ``sweep`` already done in the store were trained on another thread count
    than the next ones will be (results differ in the last digits: README "Results and threads")."""
    from pathlib import Path
    from .results.store import Store
    if not Path(store_path).is_file() or not Path(store_path).stat().st_size:
        return ""
    st = Store.read_only(store_path)
    try:
        hashes = {r.config.config_hash() for r in sweep.runs}
        counts = {r.machine.get("torch_threads") for r in st.runs() if r.done and r.config_hash in hashes}
    finally:
        st.close()
    other = sorted(c for c in counts if c is not None and c != threads)
    if not other:
        return ""
    return (f"note: runs of this sweep already done were trained on {', '.join(map(str, other))} thread(s) per "
            f"process, the next ones on {threads}: results differ in the last digits (each run keeps its own "
            f"count, recorded with it); --threads {other[0]} keeps them alike")


def check_scheduler(address: str) -> None:
    """A Dask scheduler address: [tcp://]HOST:PORT with PORT in 1..65535 (one line instead of the
    client's own error deep in its connection code)."""
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise bad_value("--scheduler", address, "a Dask scheduler address tcp://HOST:PORT with PORT 1-65535, "
                        "e.g. tcp://127.0.0.1:8786")


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2], or one error naming the bad item."""
    seeds = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit():
            raise bad_value("--seeds", text, "a comma-separated list of integers >= 0, e.g. 0,1,2")
        seeds.append(int(item))
    if not seeds:
        raise bad_value("--seeds", text, "a comma-separated list of integers >= 0, e.g. 0,1,2")
    return seeds


def cmd_reproduce(args) -> int:
    import shlex
    from pathlib import Path
    from .core.runtime import Runtime
    from .report import experiment
    from .results.store import Store
    from .results.sweep import load_sweep, run_sweep, sweep_path
    runtime = Runtime.from_args(args)
    path = sweep_path(args.experiment)
    default_epochs = load_sweep(path).configs[0].train.epochs
    overrides = ([f"train.epochs={args.epochs}"] if args.epochs else []) + list(args.overrides)
    sweep = load_sweep(path, seeds=parse_seeds(args.seeds) if args.seeds else None, overrides=overrides)
    if "paper_table" not in sweep.report:
        raise ConfigError(f"sweep {sweep.name} ({path}) is not a named experiment: it has no [report] table; "
                          "train it with `lowbit-rbp sweep` and report it with `lowbit-rbp report`")
    store = args.store or sweep.report.get("store")
    if not store:
        raise bad_value("--store", store, "a results store path")
    if not args.report_only:
        Path(store).parent.mkdir(parents=True, exist_ok=True)
        run_sweep(sweep, store, runtime=runtime, progress=not args.quiet)
    st = Store.read_only(store)
    try:
        records = {r.config_hash: r for r in st.runs()}
    finally:
        st.close()
    groups = experiment.groups(sweep, records)
    missing = [f"{r.config.label()} seed {r.config.train.seed}" for r in sweep.runs
               if not (r.config.config_hash() in records and records[r.config.config_hash()].done)]
    rows = [experiment.row_dict(g, sweep.report["paper_table"]) for g in groups]
    print(experiment.markdown_table(rows))
    if args.out:
        command = args.command_line or "lowbit-rbp " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
        epochs = args.epochs or default_epochs
        out = experiment.write_report(sweep, groups, args.out, command, missing, epochs=epochs,
                                      default_epochs=default_epochs)
        print(f"wrote {out}")
    return 0


def cmd_demo(args) -> int:
    import tempfile
    from pathlib import Path
    from .core.runtime import Runtime
    from .report import experiment
    from .results.store import Store
    from .results.sweep import load_sweep, run_sweep
    store = args.store or str(Path(tempfile.mkdtemp(prefix="lowbit-rbp-demo-")) / "demo.db")
    overrides = [f"train.epochs={args.epochs}"] + ([f"train.train_subset={args.train_subset}"]
                                                   if args.train_subset else [])
    sweep = load_sweep("foundation", seeds=[0], overrides=overrides).select(["BP", "RBP", "SRBP"])
    print(f"demo: MNIST, BP vs RBP vs SRBP, {args.epochs} epochs, seed 0 (results in {store})")
    run_sweep(sweep, store, runtime=Runtime.from_args(args))
    st = Store.read_only(store)
    try:
        groups = experiment.groups(sweep, {r.config_hash: r for r in st.runs()})
    finally:
        st.close()
    print(experiment.markdown_table([experiment.row_dict(g, sweep.report["paper_table"]) for g in groups]))
    return 0


def _parse_budget(items) -> dict:
    import math
    from .cost.per_example import COST_KEYS
    out = {}
    for item in items or ():
        k, eq, v = item.partition("=")
        if not eq or k not in COST_KEYS:
            raise bad_value("--budget", item, "KEY=VALUE with KEY in " + ", ".join(COST_KEYS))
        try:
            out[k] = float(v)
        except ValueError:
            raise bad_value(f"--budget {k}", v, "a number") from None
        if not math.isfinite(out[k]):
            raise bad_value(f"--budget {k}", v, "a finite number")
    return out


def _parse_plan(text):
    """'96' or '96:area' -> (96.0, 'area'); None stays None."""
    if text is None:
        return None
    acc, _, objective = str(text).partition(":")
    objective = objective or "energy"
    try:
        value = float(acc)
    except ValueError:
        raise bad_value("--cheapest", text, "ACCURACY[:energy|area|latency], e.g. 96 or 96:area") from None
    if objective not in ("energy", "area", "latency"):
        raise bad_value("--cheapest objective", objective, "energy, area, latency")
    return value, objective


def cmd_report(args) -> int:
    from pathlib import Path
    from .report.sweep_report import write_report
    from .results.store import Store
    if not Path(args.store).is_file():
        raise ConfigError(f"results store {args.store!r} does not exist; run `lowbit-rbp sweep` first")
    Store.read_only(args.store).close()    # not a store: refused before anything is written
    if args.bit_true:
        if args.budget or args.cheapest:
            raise ConfigError("--bit-true writes the designer's grid report; --budget and --cheapest are for the "
                              "store report (leave --bit-true out)")
        from .report.bit_true import write_bit_true_report
        command = " ".join(["lowbit-rbp report --bit-true", "--store", args.store, "--out", args.out,
                            *(["--no-plots"] if args.no_plots else [])])
        path = write_bit_true_report(args.store, args.out, command=command, plots=not args.no_plots)
        print(path.read_text())
        print(f"wrote {path}", file=sys.stderr)
        return 0
    limits = _parse_budget(args.budget)
    plan = _parse_plan(args.cheapest)
    command = " ".join(["lowbit-rbp report", "--store", args.store, "--out", args.out,
                        *(f"--budget {b}" for b in args.budget),
                        *([f"--cheapest {args.cheapest}"] if args.cheapest else []),
                        *(["--no-plots"] if args.no_plots else [])])
    path = write_report(args.store, args.out, budget_limits=limits, plan=plan, plots=not args.no_plots,
                        command=command)
    print(path.read_text())
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _search_setting(args, space, name):
    """A search setting: the command line's, else the space file's [search] table's, else the default."""
    from .results.search import DEFAULTS
    value = getattr(args, "objective" if name == "objectives" else name)
    return value if value is not None else space.defaults.get(name, DEFAULTS[name])


def cmd_search(args) -> int:
    from .core.runtime import Runtime
    from .results.search import Pruner, parse_objectives, run_search, train_grid
    from .results.space import load_space
    space = load_space(args.space)
    objectives = parse_objectives(_search_setting(args, space, "objectives"))
    if args.executor == "local" and args.scheduler:
        raise ConfigError("--scheduler is for --executor dask")
    if args.report:
        from .report.search_report import write_search_report
        command = "lowbit-rbp " + " ".join(getattr(args, "argv", sys.argv[1:]))
        path = write_search_report(space, args.store, objectives, args.report, grid_store=args.grid_store,
                                   journal=args.journal, other_stores=args.other_search, command=command)
        print(path.read_text())
        print(f"wrote {path}", file=sys.stderr)
        return 0
    runtime = Runtime.from_args(args)
    if args.grid:
        grid = space.grid()
        print(f"grid of {space.name}: {len(grid.runs)} runs -> {args.store}", file=sys.stderr)
        s = train_grid(space, args.store, runtime=runtime, executor=args.executor, scheduler=args.scheduler,
                       progress=not args.quiet)
        print(f"ran {len(s.ran)} ({len(s.failed)} failed), skipped {len(s.skipped)} already done, "
              f"{len(s.busy)} held by another sweep")
        return 1 if s.failed else 0
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prune = _search_setting(args, space, "prune")
    pruner = Pruner(_search_setting(args, space, "eta"), _search_setting(args, space, "min_epochs")) if prune else None
    trials = _search_setting(args, space, "trials")
    print(f"search {space.name}: {trials} configurations of {space.size:g}, objectives "
          f"{', '.join(o.spec for o in objectives)} -> {args.store}", file=sys.stderr)
    s = run_search(space, args.store, objectives, trials, runtime=runtime, executor=args.executor,
                   scheduler=args.scheduler, sampler=_search_setting(args, space, "sampler"),
                   seed=_search_setting(args, space, "seed"), pruner=pruner, journal=args.journal,
                   progress=not args.quiet)
    outcomes = list(s.trained.values())
    print(f"study {s.study}: {s.size} configurations evaluated; trained {len(outcomes)} now "
          f"({outcomes.count('pruned')} pruned, {outcomes.count('failed')} failed), {len(s.reused)} answered "
          f"from the store, {s.repeats} repeated proposals" + (f"; {s.note}" if s.note else ""))
    print(f"Optuna journal: {s.journal}", file=sys.stderr)
    return 1 if "failed" in outcomes else 0


def register(subparsers) -> None:
    from .core.runtime import Runtime
    p = subparsers.add_parser("sweep", help="train every run of a sweep file into a SQLite results store")
    p.add_argument("sweep", metavar="SWEEP.toml", help="sweep file (see lowbit_rbp/sweeps/)")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results store (default {DEFAULT_STORE})")
    Runtime.add_flags(p, workers=True)
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    from .results.store import RECLAIM_AFTER, STALE_AFTER
    p.add_argument("--reclaim", action="store_true", help="first take over the runs left 'running' by an owner "
                   f"whose heartbeat stopped {RECLAIM_AFTER:g} s ago (a host that went away); without it: after "
                   f"{STALE_AFTER:g} s")
    p.add_argument("--retrain", choices=("all", "dirty"), default=None,
                   help="retrain done runs from scratch: all of the sweep's (after a change that alters results), "
                        "or those recorded from uncommitted code (code version ...-dirty)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("reproduce", help="train a named sweep (foundation, cifar10) over seeds and write "
                              "its report beside the paper's table")
    p.add_argument("experiment", help="a sweep file with a [report] table, or its name: foundation (MNIST), cifar10")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the sweep file's)")
    p.add_argument("--epochs", type=int, default=None, help="default: the sweep file's (foundation 20, cifar10 10)")
    p.add_argument("--store", default=None, help="SQLite results store (resumable); default: the sweep file's "
                   "(reports/sweeps/mnist.db for foundation, reports/sweeps/cifar10.db for cifar10)")
    p.add_argument("--report-only", action="store_true", help="train nothing; report the runs already finished")
    p.add_argument("--out", default="reports", help="where the Markdown report goes ('' for none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    Runtime.add_flags(p, workers=True)
    p.set_defaults(func=cmd_reproduce)

    p = subparsers.add_parser("demo", help="short MNIST comparison: BP vs RBP vs SRBP")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--store", default=None, help="results store (default: a new temporary one)")
    Runtime.add_flags(p, workers=True)
    p.set_defaults(func=cmd_demo, workers=2)

    p = subparsers.add_parser("search", help="search a design space (Optuna) for the front of accuracy and "
                              "costs, pruning hopeless runs early; or train its grid, or compare the two")
    p.add_argument("space", metavar="SPACE.toml", help="space file: [base] and [knobs] (see "
                   "lowbit_rbp/sweeps/search_srbp_formats.toml)")
    p.add_argument("--objective", action="append", default=None, metavar="KEY[:max|min]",
                   help="accuracy or a cost key (energy_pj, area_mm2, latency_s, ...); repeatable; default: the "
                        "space file's [search] objectives, else accuracy:max and energy_pj:min")
    p.add_argument("--trials", type=int, default=None, help="distinct configurations the study evaluates "
                   "(a rerun continues up to it)")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"SQLite results store (default {DEFAULT_STORE})")
    p.add_argument("--journal", default=None, help="Optuna journal file (default: STORE.optuna.log beside the store)")
    p.add_argument("--sampler", default=None, choices=("tpe", "nsga2", "random"))
    p.add_argument("--seed", type=int, default=None, help="the sampler's seed")
    p.add_argument("--eta", type=int, default=None, help="pruning: keep the best 1/eta at each rung (default 3)")
    p.add_argument("--min-epochs", dest="min_epochs", type=int, default=None, help="pruning: the first rung")
    p.add_argument("--no-prune", dest="prune", action="store_const", const=False, default=None)
    p.add_argument("--grid", action="store_true", help="train the space's full grid instead (a sweep)")
    p.add_argument("--report", default=None, metavar="OUT.md", help="write the search's front (beside the "
                   "grid's, with --grid-store) to OUT.md and a plot beside it; trains nothing")
    p.add_argument("--grid-store", default=None, help="the store holding the space's grid (--report)")
    p.add_argument("--other-search", action="append", default=[], metavar="STORE",
                   help="--report: another search's store (its journal beside it), measured the same way; repeatable")
    Runtime.add_flags(p, workers=True)
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_search)

    from .cost.per_example import COST_KEYS
    p = subparsers.add_parser("report", help="Markdown tables and PNG plots from a results store")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--out", default="reports/sweeps", help="output folder (tables.md, *.png)")
    p.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE",
                   help="list the configurations within a cost budget per training example, best accuracy "
                        "first, with the full cost breakdown; KEY: " + ", ".join(COST_KEYS) + " (at most VALUE; "
                        "throughput_eps: at least VALUE; repeatable)")
    p.add_argument("--cheapest", default=None, metavar="ACC[:energy|area|latency]",
                   help="the planner: the configuration with the lowest energy (with leakage), area or time per "
                        "example reaching ACC %% mean accuracy within the --budget limits on budget_energy_pj, "
                        "area_mm2, latency_s, throughput_eps; with its breakdown")
    p.add_argument("--bit-true", action="store_true",
                   help="the designer's grid report of a bit-true store (lowbit_rbp/sweeps/bit_true.toml): "
                        "bit_true_channel.md with accuracy along each width, the fewest bits reaching 96 %%, "
                        "accuracy vs energy with the Pareto front, and its plots, into --out")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_report)
