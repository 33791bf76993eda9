"""``cost`` sub-command: the hardware cost of a run configuration.

    lowbit-rbp cost --config run.toml [--set section.key=value ...] [--format json|csv|md]
                    [--energy-table NAME|FILE] [--out FILE] [--network mlp|cifar-conv]
                    [--pitch MM] [--layout row|snake] [--wire-model point_to_point|broadcast]
                    [--feedback-seed N] [--feedback-storage stored|regenerated] [--node NM]

The main CLI calls ``register(subparsers)`` and then ``args.func(args)`` (an int exit code).
``python -m hw_models.cli cost ...`` runs it on its own.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lowbit_rbp.errors import LowbitError

FORMATS = ("md", "json", "csv")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("cost", help="hardware cost of a run: operations, wires, memory, energy per phase",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="TOML run file (defaults if omitted)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config field, e.g. --set channel.algorithm=srbp (repeatable)")
    p.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    p.add_argument("--energy-table", default="horowitz45nm", metavar="NAME|FILE",
                   help="energy table name (hw_models/tables) or a TOML file (default horowitz45nm)")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--network", default="mlp", help="mlp (the config's MLP) or cifar-conv (the paper's CIFAR net)")
    p.add_argument("--pitch", type=float, default=1.0, metavar="MM", help="floorplan tile pitch in mm (default 1)")
    p.add_argument("--layout", default="row", help="floorplan layout: row or snake (default row)")
    p.add_argument("--columns", type=int, default=4, help="tiles per row of the snake layout")
    p.add_argument("--wire-model", default="point_to_point", help="point_to_point or broadcast")
    p.add_argument("--feedback-seed", type=int, default=None,
                   help="draw the feedback matrices with this seed and count their actual non-zeros")
    p.add_argument("--feedback-storage", default="stored", help="stored (SRAM) or regenerated (seeded LFSR)")
    p.add_argument("--node", type=float, default=None, metavar="NM", help="scale the table to this node (nm)")
    p.add_argument("--vdd", type=float, default=None, metavar="V", help="supply voltage for wire scaling")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        text = _render(args)
    except LowbitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        try:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        except OSError as exc:
            print(f"error: cannot write {args.out!r}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _render(args) -> str:
    from lowbit_rbp.core.config import load_config

    from .floorplan import Floorplan
    from .report import cost_report
    cfg = load_config(args.config, args.overrides)
    fp = Floorplan(pitch_mm=args.pitch, layout=args.layout, columns=args.columns, wire_model=args.wire_model)
    rep = cost_report(cfg, energy_table=args.energy_table, floorplan=fp, network=args.network,
                      feedback_seed=args.feedback_seed, feedback_storage=args.feedback_storage,
                      node_nm=args.node, vdd_v=args.vdd)
    if args.format == "json":
        return rep.to_json() + "\n"
    if args.format == "csv":
        return rep.to_csv()
    return rep.to_markdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw_models.cli")
    sub = parser.add_subparsers(dest="cmd", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
