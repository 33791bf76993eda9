"""Sub-commands ``cost`` (the hardware cost of a run configuration, or of every run of a sweep
file) and ``budget`` (its hardware budget: energy with leakage, latency, area, throughput).

    lowbit-rbp cost --config run.toml [--set section.key=value ...] [--format json|csv|md]
                    [--energy-table NAME|FILE] [--out FILE]
                    [--pitch MM] [--layout row|snake] [--wire-model point_to_point|broadcast]
                    [--feedback-seed N] [--feedback-storage stored|regenerated] [--node NM]
    lowbit-rbp cost --sweep lowbit_rbp/sweeps/cost_mnist.toml --out reports/   # cost_mnist.md + .csv

    lowbit-rbp budget config [--config run.toml] [--set ...] [--arch NAME|FILE] [--arch-set S.F=V]
                      [--dataflow per_example|minibatch_tiled|online] [--format md|json|csv|accelergy|neurosim]
    lowbit-rbp budget mnist --out reports/hw_budget_mnist.md
    lowbit-rbp budget validation --out reports/hw_validation.md

The net is the one the config trains (``model.*``, its dataset's input), at its forward precision.
The commands read sweep files (``lowbit_rbp.results``), so they stand above the cost model they run.
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
    from .core.config import load_config
    from .cost.report import cost_report, render_markdown
    cfg = load_config(args.config, args.overrides)
    rep = cost_report(cfg, energy_table=args.energy_table, floorplan=fp, feedback_seed=args.feedback_seed,
                      feedback_storage=args.feedback_storage, node_nm=args.node, vdd_v=args.vdd)
    text = {"json": lambda: rep.to_json() + "\n", "csv": rep.to_csv, "md": lambda: render_markdown(rep)}[args.format]()
    return _emit(text, args.out)


def _emit(text: str, out) -> int:
    """Write ``text`` to the file ``out`` (its folder made), or to standard output."""
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _run_sweep(args, fp) -> int:
    from .errors import ConfigError
    from .results.sweep import load_sweep
    from .cost.variants import write_variants_report
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


BUDGET_FORMATS = ("md", "json", "csv", "accelergy", "neurosim")


def register_budget(subparsers) -> argparse.ArgumentParser:
    from hw_models.architecture import DEFAULT_ARCH
    p = subparsers.add_parser("budget", help="hardware budget: energy with leakage, latency, area, throughput",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="budget_cmd", required=True)
    q = sub.add_parser("config", help="the hardware budget of one run configuration")
    q.add_argument("--config", help="TOML run file (defaults if omitted)")
    q.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    q.add_argument("--dataflow", default=None, help="per_example | minibatch_tiled | online (default: the template's)")
    q.add_argument("--feedback-seed", type=int, default=None)
    q.add_argument("--feedback-storage", default="stored", help="stored | regenerated")
    q.add_argument("--format", choices=BUDGET_FORMATS, default="md")
    q.add_argument("--arch-set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a template field, e.g. --arch-set 'sram.capacity=\"256 KiB\"'")
    for name, text in (("mnist", "reports/hw_budget_mnist.md"), ("validation", "reports/hw_validation.md")):
        sub.add_parser(name, help=f"write {text}")
    for q in sub.choices.values():
        q.add_argument("--arch", default=DEFAULT_ARCH, metavar="NAME|FILE", help="architecture template (hw_models/arch)")
        q.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=run_budget)
    return p


def _arch_overrides(items) -> dict:
    """``section.field=value`` strings -> {"section.field": value}; values read as TOML (16, true, "8 KiB")
    or, failing that, as plain strings (8 KiB)."""
    import tomllib
    from .errors import ConfigError
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--arch-set {item!r}: give section.field=value (e.g. sram.capacity=256 KiB)")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key.strip()] = value
    return out


def run_budget(args) -> int:
    from hw_models import exports
    from .core.config import load_config
    from .cost import budget
    if args.budget_cmd == "mnist":
        text = budget.mnist_report(args.arch)
    elif args.budget_cmd == "validation":
        text = budget.validation_report(args.arch)
    else:
        cfg = load_config(args.config, args.overrides)
        b = budget.budget_for_config(cfg, arch=args.arch, arch_overrides=_arch_overrides(args.arch_set),
                                     dataflow=args.dataflow,
                                     feedback_seed=args.feedback_seed, feedback_storage=args.feedback_storage)
        text = {"md": b.to_markdown, "json": lambda: b.to_json() + "\n", "csv": b.to_csv,
                "accelergy": lambda: exports.accelergy_yaml(b), "neurosim": lambda: exports.neurosim_csv(b)}[args.format]()
    return _emit(text, args.out)
