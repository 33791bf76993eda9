"""``cost`` sub-command: the hardware cost of a run configuration, or of every run of a sweep file.

    lowbit-rbp cost --config run.toml [--set section.key=value ...] [--format json|csv|md]
                    [--energy-table NAME|FILE] [--out FILE]
                    [--pitch MM] [--layout row|snake] [--wire-model point_to_point|broadcast]
                    [--feedback-seed N] [--feedback-storage stored|regenerated] [--node NM]
    lowbit-rbp cost --sweep lowbit_rbp/sweeps/cost_mnist.toml --out reports/   # cost_mnist.md + .csv

The net is the one the config trains (``model.*``, its dataset's input), at its forward precision.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

FORMATS = ("md", "json", "csv")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("cost", help="hardware cost of a run: operations, wires, memory, energy per phase",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="TOML run file (defaults if omitted)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config field, e.g. --set channel.algorithm=srbp (repeatable)")
    p.add_argument("--sweep", metavar="SWEEP.toml",
                   help="price every run of a sweep file (its [[runs]] may carry cost.feedback_seed and "
                        "cost.feedback_storage) and write <name>.md and <name>.csv into --out (a folder)")
    p.add_argument("--format", choices=FORMATS, default="md", help="output format of one run (default md)")
    p.add_argument("--energy-table", default="horowitz45nm", metavar="NAME|FILE",
                   help="energy table name (hw_models/tables) or a TOML file (default horowitz45nm)")
    p.add_argument("--out", help="write to this file (one run) or folder (--sweep) instead of standard output")
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
    from hw_models.floorplan import Floorplan
    fp = Floorplan(pitch_mm=args.pitch, layout=args.layout, columns=args.columns, wire_model=args.wire_model)
    if args.sweep:
        return _run_sweep(args, fp)
    from ..core.config import load_config
    from .report import cost_report, render_markdown
    cfg = load_config(args.config, args.overrides)
    rep = cost_report(cfg, energy_table=args.energy_table, floorplan=fp, feedback_seed=args.feedback_seed,
                      feedback_storage=args.feedback_storage, node_nm=args.node, vdd_v=args.vdd)
    text = {"json": lambda: rep.to_json() + "\n", "csv": rep.to_csv, "md": lambda: render_markdown(rep)}[args.format]()
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _run_sweep(args, fp) -> int:
    from ..errors import ConfigError
    from ..results.sweep import load_sweep
    from .variants import write_variants_report
    if args.config or args.overrides:
        raise ConfigError("--sweep prices the runs of the sweep file; --config and --set are for one run")
    if not args.out:
        raise ConfigError("--sweep needs --out FOLDER for its Markdown and CSV reports")
    sweep = load_sweep(args.sweep)
    command = "lowbit-rbp " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
    md, csv_path = write_variants_report(sweep, Path(args.out), command, energy_table=args.energy_table,
                                         floorplan=fp, node_nm=args.node, vdd_v=args.vdd)
    print(f"wrote {md} and {csv_path} ({len(sweep.runs)} variants)")
    return 0
