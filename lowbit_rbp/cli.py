"""Command line: ``lowbit-rbp train|sweep|reproduce|demo|report|cost|theory|data``. ``--help`` on each."""
from __future__ import annotations

import argparse
import sys

from .core.runtime import Runtime
from .errors import LowbitError

# Flags that are shorthands for config overrides.
_SHORTHANDS = {
    "algorithm": "channel.algorithm", "feedback": "channel.feedback", "epochs": "train.epochs",
    "seed": "train.seed", "lr": "train.lr", "batch_size": "train.batch_size", "dataset": "model.dataset",
    "error_format": "formats.error", "signal_format": "formats.signal",
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
    Runtime.add_flags(p)


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
    from .results.runs import run_training, train
    cfg = load_config(args.config, overrides_from_args(args))
    runtime = Runtime.from_args(args).apply()
    print(f"training {cfg.label()} on {cfg.model.dataset} (config {cfg.config_hash()})", file=sys.stderr)
    if args.out:
        res = run_training(cfg, args.out, runtime=runtime, progress=not args.quiet)
    else:
        res = train(cfg, runtime=runtime, progress=not args.quiet)
    for r in res.epochs:
        print(f"epoch {r.epoch:3d}  train loss {r.train_loss:.4f} acc {100 * r.train_acc:6.2f}%  "
              f"test loss {r.test_loss:.4f} acc {100 * r.test_acc:6.2f}%  lr {r.lr:.5f}  {r.seconds:5.1f}s  {r.status}")
    print(f"{res.status}: final test accuracy {100 * res.final.test_acc:.2f}%"
          + (f" ({res.diverged_reason})" if res.diverged_reason else ""))
    return 0 if res.status == "finished" else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowbit-rbp", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="train one network")
    p.add_argument("--config", help="TOML run file (README: 'A run file')")
    p.add_argument("--out", help="JSON-lines results file; a rerun resumes it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_override_flags(p)
    p.set_defaults(func=cmd_train)

    from .data.cli import register as register_data
    from .theory.cli import register as register_theory
    from .cost_commands import register as register_cost, register_budget
    from .commands import register as register_sweep
    register_data(sub)
    register_sweep(sub)
    register_cost(sub)
    register_budget(sub)
    register_theory(sub)
    return parser


def main(argv=None) -> int:
    """Run a command. Errors a user can act on print one line and exit with status 2: the project's
    own (``LowbitError``, the hardware models' ``CostModelError``), the operating system's (a path
    under a regular file, permission denied, disk full, a scheduler that does not answer) and
    SQLite's; anything else is a bug and keeps its traceback."""
    import sqlite3
    from hw_models.errors import CostModelError
    from .oserror import os_error_line
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as given, for reports that state the command that made them.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (LowbitError, CostModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        writing = next((v for v in (getattr(args, k, None) for k in ("out", "out_dir", "store")) if v), None)
        print(f"error: {os_error_line(exc, writing)}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"error: SQLite: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
