"""Results of a store as typed run records, grouped over seeds, as Markdown tables; the axes the
plots and tables vary along; the budget filter; the Pareto front.

Every table states its own protocol (runs, net, epochs, seeds, dates, machine, code version),
computed from the runs in that table only. ``lowbit_rbp.report.sweep_report`` writes them (and the
plots) for a whole store.
"""
from __future__ import annotations

import functools
import json
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hw_models.errors import CostModelError

from ..core.algorithms import REPORT_ORDER as ALG_ORDER
from ..cost.per_example import BREAKDOWN_KEYS, COST_INFO, COST_KEYS, MAXIMIZED, default_cost
from ..errors import ConfigError, LowbitError, bad_value
from ..results.records import Group, RunRecord
from ..results.store import PRUNED_TAG, Store
from ..results.sweep import code_version

BREAKDOWN_INFO = {"energy_forward_pj": "E forward (pJ)", "energy_error_projection_pj": "E error projection (pJ)",
                  "energy_weight_gradient_pj": "E weight gradient (pJ)",
                  "energy_weight_update_pj": "E weight update (pJ)",
                  "energy_channel_update_pj": "E channel update (pJ)"}
ROW_ORDER = ("baseline", "no_fprime", "adaptive", "sparse_8", "sparse_2", "sparse_1", "qerror_5", "qerror_3",
             "qerror_1", "qupdate_5", "qupdate_3", "qupdate_1", "dropout_10", "dropout_20", "dropout_50")


def _open(store) -> tuple[Store, bool]:
    if isinstance(store, Store):
        return store, False
    return Store.read_only(store), True


def store_name(store) -> str:
    return Path(store.path if isinstance(store, Store) else store).name


def load_results(store, cost_fn=None) -> list[RunRecord]:
    """Every run of a store (opened read-only when given as a path), with its cost per example
    from ``cost_fn(config)`` attached when one is given. A cost that cannot be computed is an
    error naming the run."""
    st, close = _open(store)
    try:
        runs = st.runs()
    finally:
        if close:
            st.close()
    if cost_fn is not None:
        costs: dict = {}
        for r in runs:
            key = r.variant_key()    # the cost does not depend on the seed
            if key not in costs:
                try:
                    costs[key] = cost_fn(r.config)
                except (LowbitError, CostModelError) as exc:
                    raise ConfigError(f"cost of run {r.label!r} (config {r.config_hash}): {exc}") from None
            r.cost = costs[key]
    return runs


def _sort_key(g: Group):
    row = g.row
    return (ROW_ORDER.index(row) if row in ROW_ORDER else len(ROW_ORDER) + (0 if row else 1), row,
            ALG_ORDER.index(g.algorithm) if g.algorithm in ALG_ORDER else len(ALG_ORDER), g.label)


def group(results: list[RunRecord]) -> list[Group]:
    """Group runs over seeds: mean / sample sd of final test accuracy (%) of runs that did not diverge.
    Sorted by the paper's Table 1 row order, then algorithm."""
    groups: dict = {}
    for r in results:
        groups.setdefault(r.variant_key(), []).append(r)
    # Runs of different lengths are different variants; say which is which where a store mixes them.
    mixed_lengths = len({r.epochs_planned for r in results}) > 1
    out = []
    for runs in groups.values():
        first = runs[0]
        label = re.sub(r"^\S+", first.algorithm, first.label)
        label = re.sub(r"error=(\S+) signal=\1(?=\s|$)", r"error=signal=\1", label)
        label = (f"{first.row}: " if first.row else "") + label \
            + (f" [{first.epochs_planned} ep]" if mixed_lengths else "")
        out.append(Group(runs, label))
    return sorted(out, key=_sort_key)


# --- protocol ---------------------------------------------------------------------------------
def _net(cfg) -> str:
    m, t = cfg.model, cfg.train
    hidden = list(m.hidden)
    h = f"{hidden[0]}x{len(hidden)}" if hidden and len(set(hidden)) == 1 else "-".join(map(str, hidden))
    return (f"{m.dataset} hidden {h or 'none'} {m.activation}, batch {t.batch_size}, lr {t.lr:g}"
            + (" (decay " + re.sub(r"e-0*(\d)", r"e-\1", f"{t.lr_decay:g}") + "/update)" if t.lr_decay else "")
            + (f", momentum {t.momentum:g}" if t.momentum else ""))


@functools.lru_cache(maxsize=1)
def report_code() -> str:
    """The code version a report is made from (``git describe --dirty``), asked once per process:
    a report's every table names it, and a dirty one says the numbers' code is not committed."""
    return code_version()


def protocol(results: list[RunRecord]) -> dict:
    machines = {(m.get("processor", "?"), m.get("cpus", "?"), m.get("torch", "?"), m.get("python", "?"))
                for m in (r.machine for r in results) if m}
    return {
        "runs": len(results),
        "nets": sorted({_net(r.config) for r in results}),
        "epochs": sorted({r.epochs_planned for r in results}),
        "seeds": sorted({r.seed for r in results}),
        "dates": sorted({(r.finished or "")[:10] for r in results if r.finished}),
        "machines": sorted(machines, key=str),
        "code_versions": sorted({r.code_version for r in results if r.code_version}),
        "report_date": time.strftime("%Y-%m-%d"),
        "report_code": report_code(),
    }


def protocol_markdown(results: list[RunRecord]) -> str:
    p = protocol(results)
    mach = "; ".join(f"{a}, {b} CPUs, torch {c}, Python {d}" for a, b, c, d in p["machines"]) or "?"
    done = sum(r.done for r in results)
    return (f"_Protocol: {p['runs']} runs ({done} done); net {' | '.join(p['nets']) or '?'}; "
            f"epochs {', '.join(map(str, p['epochs'])) or '?'}; "
            f"seeds {', '.join(map(str, p['seeds'])) or '?'}; finished {', '.join(p['dates']) or '-'}; "
            f"machine {mach}; runs' code {', '.join(p['code_versions']) or '?'}; report {p['report_date']} from code "
            f"{p['report_code']}. "
            "Final test accuracy %, mean (sample sd) over seeds; diverged runs counted apart._")


def runs_of(groups: list[Group], results: list[RunRecord]) -> list[RunRecord]:
    """The runs behind ``groups`` (for a table's own protocol line)."""
    hashes = {h for g in groups for h in g.config_hashes}
    return [r for r in results if r.config_hash in hashes]


def _fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, float)) and float(x).is_integer() and abs(x) < 1e5:
        return str(int(x))
    if isinstance(x, float) and (abs(x) >= 1e5 or (x and abs(x) < 1e-2)):
        return f"{x:.3g}"
    if isinstance(x, float) and abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _acc(g: Group) -> str:
    acc = ("" if math.isnan(g.mean) else f"{g.mean:.2f}") + (f" ({g.sd:.2f})" if not math.isnan(g.sd) else "")
    # Runs a search stopped early (lowbit_rbp.results.search) are named apart from runs still to train.
    pruned = sum(r.status == "failed" and PRUNED_TAG in r.tags for r in g.runs)
    if pruned:
        acc += f" [{pruned} pruned by a search]"
    if g.unfinished - pruned:
        acc += f" [{g.unfinished - pruned} unfinished]"
    return acc


def markdown_table(groups: list[Group], results: list[RunRecord], columns=("label",), title: str = "",
                   cost_keys=COST_KEYS, note: str = "") -> str:
    """A Markdown table of ``groups`` under ``title`` with the protocol of its own runs."""
    has_cost = [k for k in cost_keys if any(g.cost_of(k) is not None for g in groups)]
    head = [*columns, "acc % mean (sd)", "seeds", "diverged",
            *(COST_INFO.get(k, (BREAKDOWN_INFO.get(k, k),))[0] for k in has_cost)]
    lines = ([f"### {title}", ""] if title else []) + [protocol_markdown(runs_of(groups, results)), ""]
    if note:
        lines += [note, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        cells = [_fmt(g.column(c)) for c in columns] + [_acc(g), str(len(g.seeds)), str(g.diverged)] + \
            [_fmt(g.cost_of(k)) for k in has_cost]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + diverged_notes(groups))


def diverged_notes(groups: list[Group]) -> list[str]:
    """Why each diverged run of ``groups`` diverged (its epoch and reason), under the table that counts them."""
    notes = [f"- {g.label}, seed {r.seed}, epoch {r.epochs_done}: {r.diverged_reason}"
             for g in groups for r in g.runs if r.status == "diverged"]
    return ["", "Diverged runs (not in the means; rule: lowbit_rbp/learning/trainer.py):", *notes] if notes else []


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points (cost, accuracy) not dominated by another (lower-or-equal cost and higher-or-equal
    accuracy, one strictly), sorted by cost."""
    idx = []
    for i, (c, a) in enumerate(points):
        if any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i):
            continue
        idx.append(i)
    return sorted(idx, key=lambda i: (points[i][0], points[i][1]))


def cost_points(groups: list[Group], key: str) -> list[Group]:
    """Variants with a cost ``key`` and a finished mean accuracy."""
    return [g for g in groups if g.cost_of(key) is not None and not math.isnan(g.mean)]


def front_groups(groups: list[Group], key: str) -> list[Group]:
    pts = cost_points(groups, key)
    return [pts[i] for i in pareto_front([(float(g.cost_of(key)), g.mean) for g in pts])]


def fits(value, key: str, limit: float) -> bool:
    """A cost within its budget: at most ``limit``, or at least it for the keys in ``MAXIMIZED``."""
    return value is not None and (value >= limit if key in MAXIMIZED else value <= limit)


def limit_text(key: str, limit: float) -> str:
    return f"{key} {'>=' if key in MAXIMIZED else '<='} {limit:g}"


def budget(store, cost_fn=None, **limits) -> list[Group]:
    """Variants (grouped over seeds) whose cost fits every limit (keys in ``COST_KEYS``: ``energy_pj=``,
    ``area_mm2=``, ``latency_s=``, ...: at most the value; ``throughput_eps=``: at least it), best mean
    accuracy first."""
    for k in limits:
        if k not in COST_KEYS:
            raise bad_value("budget key", k, ", ".join(COST_KEYS))
    results = load_results(store, cost_fn=cost_fn or default_cost)
    out = [g for g in group(results) if not math.isnan(g.mean)
           and all(fits(g.cost_of(k), k, float(v)) for k, v in limits.items())]
    return sorted(out, key=lambda g: -g.mean)


def cheapest(store, min_accuracy: float, minimize: str = "energy", cost_fn=None, **limits):
    """The planner over a store: the variant with the lowest energy (with leakage), area or time per
    example among those reaching ``min_accuracy`` % (mean over seeds) within ``limits`` (budget keys
    ``budget_energy_pj``, ``area_mm2``, ``latency_s``, ``throughput_eps``); a
    ``hw_models.planner.PlanChoice`` with its breakdown, and the group chosen."""
    from hw_models.planner import BudgetRecord, cheapest as plan
    names = {"budget_energy_pj": "max_energy_pj", "area_mm2": "max_area_mm2", "latency_s": "max_latency_s",
             "throughput_eps": "min_throughput_eps"}
    for k in limits:
        if k not in names:
            raise bad_value("planner limit", k, ", ".join(names))
    groups = {g.label: g for g in group(load_results(store, cost_fn=cost_fn or default_cost))
              if not math.isnan(g.mean) and g.cost is not None}
    records = [BudgetRecord(label, g.mean, g.cost_of("budget_energy_pj"), g.cost_of("area_mm2"),
                            g.cost_of("latency_s"), g.cost_of("throughput_eps"),
                            {k: g.cost_of(k) for k in BREAKDOWN_KEYS}) for label, g in groups.items()]
    choice = plan(records, min_accuracy, minimize, **{names[k]: float(v) for k, v in limits.items()})
    return choice, groups[choice.record.label]


def plan_markdown(choice, chosen: Group, results: list[RunRecord]) -> str:
    b = choice.breakdown
    lines = [f"### Cheapest configuration: {choice.reason}", "", protocol_markdown(runs_of([chosen], results)), "",
             "| variant | acc % | energy+leak/ex (pJ) | area (mm2) | time/ex (s) | examples/s |", "|---|---|---|---|---|---|",
             f"| {b['label']} | {b['accuracy']:.2f} | {_fmt(b['energy_pj'])} | {_fmt(b['area_mm2'])} | "
             f"{_fmt(b['latency_s'])} | {_fmt(b['throughput_eps'])} |", "",
             "Dynamic energy per example by phase (pJ): " + ", ".join(
                 f"{BREAKDOWN_INFO[k].split(' (')[0][2:]} {_fmt(v)}" for k, v in b.items() if k in BREAKDOWN_INFO
                 and v is not None) + "."]
    return "\n".join(lines)


def budget_markdown(rows: list[Group], limits: dict, results: list[RunRecord]) -> str:
    title = "Budget: " + ", ".join(limit_text(k, float(v)) for k, v in limits.items())
    if not rows:
        return f"### {title}\n\n{protocol_markdown(results)}\n\nNo configuration fits."
    note = ("Configurations that fit every limit, best mean accuracy first; cost per training example from "
            "`lowbit_rbp.cost` with the energy split into its parts (forward, error projection, weight gradient, "
            "weight update, channel update).")
    return markdown_table(rows, results, columns=("label",), title=title, note=note,
                          cost_keys=(*COST_KEYS, *BREAKDOWN_KEYS))


# --- axes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One quantity a sweep varies. ``fields`` are the config fields it owns; ``value(config)`` gives
    ``("point", x, tag)`` for a run on the axis, ``("ref", None, None)`` for the reference (float32, dense,
    full rank, no dropout) and ``None`` for a run that is neither."""
    key: str
    title: str
    xlabel: str
    fields: tuple
    ref_label: str
    log2: bool
    paper_row: str = ""     # Table 1 row name pattern, {v} the axis value ("" = no paper numbers)


def _fmt_value(fmt):
    if fmt.kind == "float":
        return "ref", None, None
    return "point", int(fmt.bits), re.sub(r"bits=\d+", "bits=b", fmt.spec)


def _axis_value(axis: Axis, cfg):
    ch, f = cfg.channel, cfg.formats
    if axis.key == "error_bits":
        e, s = _fmt_value(f.error), _fmt_value(f.signal)
        if e[0] == "ref" and s[0] == "ref":
            return e
        if e[0] == "ref":
            return None
        same = s[0] == "point" and s[1] == e[1]
        return "point", e[1], e[2] + " | signal " + ("same" if same else f.signal.spec)
    if axis.key == "update_bits":
        return _fmt_value(f.update)
    fs = ch.feedback
    if axis.key == "sparsity_n":
        if fs.kind == "glorot_normal" and not fs.mean:
            return "ref", None, None
        return ("point", fs.n, f"per={fs.per},scale={fs.scale_rule}") if fs.kind == "sparse" else None
    if axis.key == "rank":
        if fs.kind == "glorot_uniform" and not fs.mean:
            return "ref", None, None
        return ("point", fs.r, "") if fs.kind == "lowrank" else None
    if axis.key == "dropout":
        return ("ref", None, None) if not ch.dropout else ("point", ch.dropout, "")
    raise bad_value("axis", axis.key, ", ".join(a.key for a in AXES))


AXES = (
    Axis("error_bits", "Accuracy vs error bits",
         "bits per error value sent (T - O and every signal passed on; log quantizer)",
         (("formats", "error"), ("formats", "signal")), "float32", True, "qerror_{v}"),
    Axis("update_bits", "Accuracy vs update bits", "bits per weight update (per example, before the minibatch sum)",
         (("formats", "update"),), "float32", True, "qupdate_{v}"),
    Axis("sparsity_n", "Accuracy vs sparsity n",
         "sparsity n: expected non-zero feedback weights per receiving neuron "
         "(per sending one where the legend says so)",
         (("channel", "feedback"),),
         "dense", True, "sparse_{v}"),
    Axis("rank", "Accuracy vs rank", "rank r of every feedback matrix (truncated SVD of Glorot-uniform)",
         (("channel", "feedback"),), "full rank", True),
    Axis("dropout", "Accuracy vs LC dropout", "learning-channel dropout probability p (%); survivors scaled by 1/(1-p)",
         (("channel", "dropout"),), "0", False, "dropout_{v}"),
)
AXIS = {a.key: a for a in AXES}


def _rest(g: Group, axis: Axis) -> str:
    """The group's variant without the axis' own fields."""
    c = json.loads(g.first.variant_key())
    for section, name in axis.fields:
        c[section].pop(name, None)
    return json.dumps(c, sort_keys=True)


@dataclass
class Series:
    """Groups along an axis that differ only in the axis value (and share ``tag``): ``points`` sorted
    by ``x``, ``ref`` the reference group with everything else equal (or None), ``paper``: its points
    are Table 1 rows."""
    algorithm: str
    tag: str
    rest: str
    points: list
    ref: Group | None = None
    paper: bool = False


def axis_series(groups: list[Group], axis) -> list[Series]:
    """Groups along ``axis`` as series (see ``Series``); a series needs at least one point off the
    reference."""
    axis = AXIS[axis] if isinstance(axis, str) else axis
    series: dict = {}
    refs: dict = {}
    for g in groups:
        v = _axis_value(axis, g.config)
        if v is None:
            continue
        rest = _rest(g, axis)
        if v[0] == "ref":
            refs[rest] = g
        else:
            s = series.setdefault((rest, v[2]), Series(g.algorithm, v[2], rest, []))
            s.points.append(replace(g, x=v[1]))
    out = []
    for s in series.values():
        s.points.sort(key=lambda g: g.x)
        s.ref = refs.get(s.rest)
        prefix = axis.paper_row.split("{")[0]
        s.paper = bool(prefix) and any(g.row.startswith(prefix) for g in s.points)
        out.append(s)
    return sorted(out, key=lambda s: (ALG_ORDER.index(s.algorithm) if s.algorithm in ALG_ORDER else 99,
                                      s.tag, s.rest))


def axis_groups(groups: list[Group], axis, mark_ref: bool = False) -> list[Group]:
    """The groups of ``axis_series`` flattened (reference first in each series; shared references once).
    ``mark_ref``: the reference groups come as copies with the axis column shown as the axis' reference
    label ('float32', 'dense', 'full', ...), for tables."""
    axis = AXIS[axis] if isinstance(axis, str) else axis
    out, seen = [], set()
    for s in axis_series(groups, axis):
        for g in ([s.ref] if s.ref else []) + s.points:
            if g.config_hashes[0] in seen:
                continue
            seen.add(g.config_hashes[0])
            out.append(replace(g, shown={axis.key: axis.ref_label}) if mark_ref and g is s.ref else g)
    return out


SECTION_COLUMNS = {
    "error_bits": ("algorithm", "error_bits", "signal_bits", "label"),
    "update_bits": ("algorithm", "update_bits", "label"),
    "sparsity_n": ("algorithm", "sparsity_n", "label"),
    "rank": ("algorithm", "rank", "label"),
    "dropout": ("algorithm", "dropout", "label"),
}


def pareto_markdown(groups: list[Group], results: list[RunRecord], keys=COST_KEYS) -> list[str]:
    parts = []
    for key in (k for k in keys if k not in MAXIMIZED):
        front = front_groups(groups, key)
        if len(cost_points(groups, key)) < 2 or not front:
            continue
        parts += [markdown_table(front, results, columns=("label",), title=f"Pareto front: accuracy vs {key}",
                                 note=f"Cost: {COST_INFO[key][1]}. The variants that no other variant beats on both "
                                      "cost (lower) and mean accuracy (higher), cheapest first."), ""]
    return parts


def store_report_main(module: str, render, default_store: str, default_out: str, argv=None) -> int:
    """``python -m lowbit_rbp.report.<module> --store S --out F``: render a store to Markdown."""
    import argparse
    ap = argparse.ArgumentParser(prog=f"python -m lowbit_rbp.report.{module}")
    ap.add_argument("--store", default=default_store)
    ap.add_argument("--out", default=default_out)
    args = ap.parse_args(argv)
    command = f"python -m lowbit_rbp.report.{module} --store {args.store} --out {args.out}"
    text = render(load_results(args.store), command)
    with open(args.out, "w") as fh:
        fh.write(text)
    print(text)
    return 0
