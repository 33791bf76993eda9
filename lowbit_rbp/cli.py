"""Command line: ``lowbit-rbp train|reproduce|demo|data|cost|theory``. ``--help`` on each."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .errors import LowbitError

# Flags that are shorthands for config overrides.
_SHORTHANDS = {
    "algorithm": "channel.algorithm", "feedback": "channel.feedback", "epochs": "train.epochs",
    "seed": "train.seed", "lr": "train.lr", "batch_size": "train.batch_size", "dataset": "model.dataset",
    "error_format": "formats.error", "signal_format": "formats.signal", "backend": "backend",
    "threads": "threads",
}


def _add_override_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config field, e.g. --set channel.dropout=0.2 (repeatable)")
    p.add_argument("--algorithm", help="bp, rbp, srbp, sbp, top, arbp, asrbp")
    p.add_argument("--feedback", help="feedback spec, e.g. glorot_normal, sparse:n=2, lowrank:r=5")
    p.add_argument("--no-fprime", action="store_true", help="drop f' from the learning rule")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--dataset")
    p.add_argument("--error-format", help="format of T - O^L, e.g. log:alpha=2,bits=3")
    p.add_argument("--signal-format", help="format of the signals sent on in the channel")
    p.add_argument("--backend", help="auto, numpy, numba, cuda")
    p.add_argument("--threads", type=int, help="torch threads (0 = default)")


def overrides_from_args(args) -> list[str]:
    out = list(args.overrides)
    for attr, key in _SHORTHANDS.items():
        value = getattr(args, attr, None)
        if value is not None:
            out.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    if getattr(args, "no_fprime", False):
        out.append("channel.fprime=false")
    return out


def cmd_train(args) -> int:
    from .core.config import load_config
    from .learning.trainer import run_training, train
    cfg = load_config(args.config, overrides_from_args(args))
    print(f"training {cfg.label()} on {cfg.model.dataset} (config {cfg.config_hash()})", file=sys.stderr)
    if args.out:
        res = run_training(cfg, args.out, progress=not args.quiet)
    else:
        res = train(cfg, progress=not args.quiet)
    for r in res.epochs:
        print(f"epoch {r.epoch:3d}  train loss {r.train_loss:.4f} acc {100 * r.train_acc:6.2f}%  "
              f"test loss {r.test_loss:.4f} acc {100 * r.test_acc:6.2f}%  lr {r.lr:.5f}  {r.seconds:5.1f}s  {r.status}")
    print(f"{res.status}: final test accuracy {100 * res.final.test_acc:.2f}%")
    return 0 if res.status == "finished" else 3


def cmd_reproduce(args) -> int:
    from .errors import bad_value
    from .results.experiments import EXPERIMENTS, expand, run_experiment, table, write_report, markdown_table
    if args.experiment not in EXPERIMENTS:
        raise bad_value("experiment", args.experiment, ", ".join(EXPERIMENTS))
    exp = EXPERIMENTS[args.experiment]
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    epochs = args.epochs or exp.epochs
    base = [f"train.epochs={epochs}", *args.overrides]
    store = args.store or exp.store
    if not store:
        raise bad_value("--store", store, "a results store path")
    summaries = run_experiment(args.experiment, seeds, store, base_overrides=base,
                               workers=args.workers, progress=not args.quiet, train=not args.report_only)
    done = {(s["label"], s["seed"]) for s in summaries}
    missing = [f"{v.label} seed {cfg.train.seed}" for v, cfg in expand(exp.variants, seeds, (*exp.protocol, *base))
               if (v.label, cfg.train.seed) not in done]
    rows = table(summaries, exp.paper_table)
    command = "lowbit-rbp " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if args.command_line is None \
        else args.command_line
    print(markdown_table(rows))
    if args.out:
        path = write_report(args.experiment, rows, summaries, args.out, command, missing, epochs)
        print(f"wrote {path}")
    return 0


def cmd_demo(args) -> int:
    from .results.experiments import run_experiment, table, markdown_table
    import tempfile
    results = args.store or str(Path(tempfile.mkdtemp(prefix="lowbit-rbp-demo-")) / "demo.db")
    base = [f"train.epochs={args.epochs}"]
    if args.train_subset:
        base.append(f"train.train_subset={args.train_subset}")
    print(f"demo: MNIST, BP vs RBP vs SRBP, {args.epochs} epochs, seed 0 (results in {results})")
    summaries = run_experiment("demo", [0], results, base_overrides=base, workers=args.workers)
    print(markdown_table(table(summaries)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowbit-rbp", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="train one network")
    p.add_argument("--config", help="TOML run file (see configs/)")
    p.add_argument("--out", help="JSON-lines results file; a rerun resumes it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_override_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("reproduce", help="train a named set of runs over seeds and write a report")
    p.add_argument("experiment", help="foundation (MNIST), cifar10, demo")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="default: foundation 20, cifar10 10")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (each 1 thread)")
    p.add_argument("--store", default=None, help="SQLite results store (resumable); default "
                   "reports/sweeps/mnist.db (foundation), reports/sweeps/cifar10.db (cifar10)")
    p.add_argument("--report-only", action="store_true", help="train nothing; report the runs already finished")
    p.add_argument("--out", default="reports", help="where the Markdown report goes ('' for none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("demo", help="short MNIST comparison: BP vs RBP vs SRBP")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--store", default=None, help="results store (default: a new temporary one)")
    p.set_defaults(func=cmd_demo)

    from .data.cli import register as register_data
    from .theory.cli import register as register_theory
    from hw_models.cli import register as register_cost
    from .results.cli import register as register_sweep
    register_data(sub)
    register_sweep(sub)
    register_cost(sub)
    register_theory(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LowbitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
