"""Results of a store as rows, grouped over seeds, as Markdown tables; the axes the plots and tables
vary along; the budget filter; the Pareto front.

Every table states its own protocol (runs, net, epochs, seeds, dates, machine, code version),
computed from the runs in that table only.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import bad_value
from ..core.formats import parse_format
from ..results.store import SCHEMA_VERSION, Store, StoreError

# Cost per training example (hw_models.cost_report); any of them can bound a budget.
COST_KEYS = ("energy_pj", "lc_energy_pj", "lc_ops", "wires", "bits_moved", "feedback_memory_bits")
COST_INFO = {   # key: (table header, description without unit)
    "energy_pj": ("energy/ex (pJ)", "energy per training example: forward + learning channel + update"),
    "lc_energy_pj": ("LC energy/ex (pJ)", "learning-channel energy per example: error projection + channel learning"),
    "lc_ops": ("LC ops/ex", "learning-channel operations per example: mults + adds + sign flips + shifts"),
    "wires": ("LC wires", "learning-channel wires: backward connections"),
    "bits_moved": ("LC bits moved/ex", "bits moved on learning-channel wires per example"),
    "feedback_memory_bits": ("feedback memory (bits)", "feedback-weight memory"),
}
# The energy split shown beside the totals in budget tables (the "full cost breakdown").
BREAKDOWN_KEYS = ("energy_forward_pj", "energy_error_projection_pj", "energy_weight_gradient_pj",
                  "energy_weight_update_pj", "energy_channel_update_pj")
BREAKDOWN_INFO = {"energy_forward_pj": "E forward (pJ)", "energy_error_projection_pj": "E error projection (pJ)",
                  "energy_weight_gradient_pj": "E weight gradient (pJ)",
                  "energy_weight_update_pj": "E weight update (pJ)",
                  "energy_channel_update_pj": "E channel update (pJ)"}
ALG_ORDER = ("bp", "sbp", "rbp", "arbp", "srbp", "asrbp", "top")
ROW_ORDER = ("baseline", "no_fprime", "adaptive", "sparse_8", "sparse_2", "sparse_1", "qerror_5", "qerror_3",
             "qerror_1", "qupdate_5", "qupdate_3", "qupdate_1", "dropout_10", "dropout_20", "dropout_50")


def _bits(spec: str) -> int:
    try:
        return int(parse_format(spec).bits)
    except Exception:
        return 32


def _param(spec: str, kind: str, name: str):
    m = re.match(rf"{kind}:(?:.*,)?{name}=(\d+)", spec or "")
    return int(m.group(1)) if m else None


def default_cost(cfg) -> dict | None:
    """Cost per training example from ``hw_models.cost_report`` (None when hw_models is missing or fails)."""
    try:
        from hw_models import cost_report
    except Exception:
        return None
    try:
        s = cost_report(cfg).summary
    except Exception:
        return None
    e = s["energy_per_example_pj"]
    return {"energy_pj": e["total"], "lc_energy_pj": e["error_projection"] + e["channel_update"],
            "lc_ops": s["channel"]["ops_total"], "wires": s["wires_backward"]["connections"],
            "bits_moved": s["wires_backward"]["bits_moved"], "feedback_memory_bits": s["memory"]["feedback_bits"],
            **{f"energy_{k}_pj": e[k] for k in ("forward", "error_projection", "weight_gradient", "weight_update",
                                                "channel_update")}}


class _ReadOnlyStore(Store):
    """A store opened read-only (``mode=ro``): reports never take the write lock of a store a sweep is
    writing. Only the reading methods of ``Store`` are used."""

    def __init__(self, path):   # noqa: D107 - deliberately skips Store.__init__ (which writes)
        self.path = Path(path)
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        try:
            self.conn = sqlite3.connect(uri, uri=True, timeout=60.0)
            self.conn.row_factory = sqlite3.Row
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {str(self.path)!r} is not a usable SQLite store: {exc}") from None
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            self.conn.close()
            raise StoreError(f"results store {str(self.path)!r} has schema version {row[0]}, newer than version "
                             f"{SCHEMA_VERSION} that this lowbit-rbp understands; upgrade lowbit-rbp")


def _open(store):
    if isinstance(store, Store):
        return store, False
    if Path(store).is_file():
        return _ReadOnlyStore(store), True
    return Store(store), True


def _store_name(store) -> str:
    return Path(store.path if isinstance(store, Store) else store).name


def load_results(store, cost_fn=None) -> list[dict]:
    """One dict per run: ids, axes read from the config, final epoch metrics, optional cost columns."""
    from ..core.config import from_dict
    st, close = _open(store)
    try:
        runs = st.runs()
        out = []
        for r in runs:
            c = r["config"]
            eps = st.epochs(r["config_hash"])
            last = eps[-1] if eps else {}
            f, ch = c["formats"], c["channel"]
            row = {
                "config_hash": r["config_hash"], "label": r["label"], "status": r["status"],
                "row": r["tags"].get("row", ""), "sweep": r["tags"].get("sweep", ""),
                "algorithm": ch["algorithm"], "fprime": ch["fprime"], "feedback": ch["feedback"],
                "seed": c["train"]["seed"], "epochs_planned": c["train"]["epochs"], "epochs_done": len(eps),
                "error_bits": _bits(f["error"]), "signal_bits": _bits(f["signal"]), "update_bits": _bits(f["update"]),
                "sparsity_n": _param(ch["feedback"], "sparse", "n"), "rank": _param(ch["feedback"], "lowrank", "r"),
                "dropout": ch["dropout"], "test_acc": last.get("test_acc"), "train_acc": last.get("train_acc"),
                "seconds": sum(e["seconds"] or 0 for e in eps), "curve": [(e["epoch"], e["test_acc"]) for e in eps],
                "machine": r["machine"], "code_version": r["code_version"], "finished": r["finished"],
                "config": c,
            }
            if cost_fn is not None:
                try:
                    cost = cost_fn(from_dict(c))
                except Exception:
                    cost = None
                for k in (*COST_KEYS, *BREAKDOWN_KEYS):
                    row[k] = None if cost is None else cost.get(k)
            out.append(row)
        return out
    finally:
        if close:
            st.close()


def _strip(config: dict) -> dict:
    """The config without what does not change a result and without the seed."""
    c = {k: v for k, v in config.items() if k not in ("name", "threads", "backend")}
    return {**c, "train": {k: v for k, v in c["train"].items() if k != "seed"}}


def _key(r: dict) -> str:
    """The variant a run belongs to (everything but the seed)."""
    return json.dumps(_strip(r["config"]), sort_keys=True)


def _sort_key(g: dict):
    row = g["row"]
    return (ROW_ORDER.index(row) if row in ROW_ORDER else len(ROW_ORDER) + (0 if row else 1), row,
            ALG_ORDER.index(g["algorithm"]) if g["algorithm"] in ALG_ORDER else len(ALG_ORDER), g["label"])


def group(results: list[dict]) -> list[dict]:
    """Group runs over seeds: mean / sample sd of final test accuracy (%) of runs that did not diverge.
    Sorted by the paper's Table 1 row order, then algorithm."""
    groups: dict = {}
    for r in results:
        groups.setdefault(_key(r), []).append(r)
    # Runs of different lengths are different variants; say which is which where a store mixes them.
    mixed_lengths = len({r["epochs_planned"] for r in results}) > 1
    out = []
    for runs in groups.values():
        done = [r for r in runs if r["status"] in ("finished", "diverged")]
        accs = [100 * r["test_acc"] for r in done if r["status"] == "finished" and r["test_acc"] is not None]
        first = runs[0]
        g = {k: first[k] for k in ("row", "algorithm", "fprime", "feedback", "error_bits", "signal_bits",
                                    "update_bits", "sparsity_n", "rank", "dropout", "epochs_planned")}
        label = re.sub(r"^\S+", first["algorithm"], first["label"])
        label = re.sub(r"error=(\S+) signal=\1(?=\s|$)", r"error=signal=\1", label)
        g["label"] = (f"{first['row']}: " if first["row"] else "") + label \
            + (f" [{first['epochs_planned']} ep]" if mixed_lengths else "")
        g.update(n=len(done), seeds=sorted(r["seed"] for r in done),
                 diverged=sum(r["status"] == "diverged" for r in runs),
                 unfinished=sum(r["status"] not in ("finished", "diverged") for r in runs),
                 mean=statistics.fmean(accs) if accs else math.nan,
                 sd=statistics.stdev(accs) if len(accs) > 1 else math.nan,
                 curves=[r["curve"] for r in done], config_hashes=[r["config_hash"] for r in runs],
                 config=_strip(first["config"]))
        for k in (*COST_KEYS, *BREAKDOWN_KEYS):
            if k in first:
                g[k] = first[k]
        out.append(g)
    return sorted(out, key=_sort_key)


# --- protocol ---------------------------------------------------------------------------------
def _net(config: dict) -> str:
    m = config["model"]
    hidden = list(m["hidden"])
    h = f"{hidden[0]}x{len(hidden)}" if hidden and len(set(hidden)) == 1 else "-".join(map(str, hidden))
    t = config["train"]
    return (f"{m['dataset']} hidden {h or 'none'} {m['activation']}, batch {t['batch_size']}, lr {t['lr']:g}"
            + (" (decay " + re.sub(r"e-0*(\d)", r"e-\1", f"{t['lr_decay']:g}") + "/update)" if t["lr_decay"] else "")
            + (f", momentum {t['momentum']:g}" if t["momentum"] else ""))


def protocol(results: list[dict]) -> dict:
    machines = {(m.get("processor", "?"), m.get("cpus", "?"), m.get("torch", "?"), m.get("python", "?"))
                for m in (r["machine"] for r in results) if m}
    return {
        "runs": len(results),
        "nets": sorted({_net(r["config"]) for r in results}),
        "epochs": sorted({r["epochs_planned"] for r in results}),
        "seeds": sorted({r["seed"] for r in results}),
        "dates": sorted({(r["finished"] or "")[:10] for r in results if r["finished"]}),
        "machines": sorted(machines, key=str),
        "code_versions": sorted({r["code_version"] for r in results if r["code_version"]}),
        "report_date": time.strftime("%Y-%m-%d"),
    }


def protocol_markdown(results: list[dict]) -> str:
    p = protocol(results)
    mach = "; ".join(f"{a}, {b} CPUs, torch {c}, Python {d}" for a, b, c, d in p["machines"]) or "?"
    done = sum(r["status"] in ("finished", "diverged") for r in results)
    return (f"_Protocol: {p['runs']} runs ({done} done); net {' | '.join(p['nets']) or '?'}; "
            f"epochs {', '.join(map(str, p['epochs'])) or '?'}; "
            f"seeds {', '.join(map(str, p['seeds'])) or '?'}; finished {', '.join(p['dates']) or '-'}; "
            f"machine {mach}; code {', '.join(p['code_versions']) or '?'}; report {p['report_date']}. "
            "Final test accuracy %, mean (sample sd) over seeds; diverged runs counted apart._")


def runs_of(groups: list[dict], results: list[dict]) -> list[dict]:
    """The runs behind ``groups`` (for a table's own protocol line)."""
    hashes = {h for g in groups for h in g["config_hashes"]}
    return [r for r in results if r["config_hash"] in hashes]


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


def _acc(g: dict) -> str:
    acc = ("" if math.isnan(g["mean"]) else f"{g['mean']:.2f}") + \
        (f" ({g['sd']:.2f})" if not math.isnan(g["sd"]) else "")
    if g["unfinished"]:
        acc += f" [{g['unfinished']} unfinished]"
    return acc


def markdown_table(groups: list[dict], results: list[dict], columns=("label",), title: str = "",
                   cost_keys=COST_KEYS, note: str = "") -> str:
    """A Markdown table of ``groups`` under ``title`` with the protocol of its own runs."""
    has_cost = [k for k in cost_keys if any(g.get(k) is not None for g in groups)]
    head = [*columns, "acc % mean (sd)", "seeds", "diverged",
            *(COST_INFO.get(k, (BREAKDOWN_INFO.get(k, k),))[0] for k in has_cost)]
    lines = ([f"### {title}", ""] if title else []) + [protocol_markdown(runs_of(groups, results)), ""]
    if note:
        lines += [note, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        cells = [_fmt(g.get(c)) for c in columns] + [_acc(g), str(len(g["seeds"])), str(g["diverged"])] + \
            [_fmt(g.get(k)) for k in has_cost]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points (cost, accuracy) not dominated by another (lower-or-equal cost and higher-or-equal
    accuracy, one strictly), sorted by cost."""
    idx = []
    for i, (c, a) in enumerate(points):
        if any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i):
            continue
        idx.append(i)
    return sorted(idx, key=lambda i: (points[i][0], points[i][1]))


def cost_points(groups: list[dict], key: str) -> list[dict]:
    """Variants with a cost ``key`` and a finished mean accuracy."""
    return [g for g in groups if g.get(key) is not None and not math.isnan(g["mean"])]


def front_groups(groups: list[dict], key: str) -> list[dict]:
    pts = cost_points(groups, key)
    return [pts[i] for i in pareto_front([(float(g[key]), g["mean"]) for g in pts])]


def budget(store, cost_fn=None, **limits) -> list[dict]:
    """Variants (grouped over seeds) whose cost fits every limit (keys in ``COST_KEYS``: ``energy_pj=``,
    ``wires=``, ``bits_moved=``, ``feedback_memory_bits=``, ...), best mean accuracy first. Variants without
    a cost are left out."""
    for k in limits:
        if k not in COST_KEYS:
            raise bad_value("budget key", k, ", ".join(COST_KEYS))
    results = load_results(store, cost_fn=cost_fn or default_cost)
    out = []
    for g in group(results):
        if math.isnan(g["mean"]):
            continue
        if all(g.get(k) is not None and g[k] <= float(v) for k, v in limits.items()):
            out.append(g)
    return sorted(out, key=lambda g: -g["mean"])


def budget_markdown(rows: list[dict], limits: dict, results: list[dict]) -> str:
    title = "Budget: " + ", ".join(f"{k} <= {v:g}" if isinstance(v, float) else f"{k} <= {v}"
                                   for k, v in limits.items())
    if not rows:
        return f"### {title}\n\n{protocol_markdown(results)}\n\nNo configuration fits."
    note = ("Configurations that fit every limit, best mean accuracy first; cost per training example from "
            "`hw_models` with the energy split into its parts (forward, error projection, weight gradient, "
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


def _fmt_value(config: dict, section: str, name: str):
    spec = config[section][name]
    if spec == "float32":
        return "ref", None, None
    try:
        bits = int(parse_format(spec).bits)
    except Exception:
        return None
    return "point", bits, re.sub(r"bits=\d+", "bits=b", spec)


def _axis_value(axis: Axis, config: dict):
    ch = config["channel"]
    if axis.key == "error_bits":
        e, s = _fmt_value(config, "formats", "error"), _fmt_value(config, "formats", "signal")
        if e is None or s is None:
            return None
        if e[0] == "ref" and s[0] == "ref":
            return e
        if e[0] == "ref":
            return None
        same = s[0] == "point" and s[1] == e[1]
        return "point", e[1], e[2] + " | signal " + ("same" if same else config["formats"]["signal"])
    if axis.key == "update_bits":
        return _fmt_value(config, "formats", "update")
    if axis.key in ("sparsity_n", "rank"):
        from ..core.feedback import parse_feedback_spec
        try:
            fs = parse_feedback_spec(ch["feedback"])
        except Exception:
            return None
        if axis.key == "sparsity_n":
            if fs.kind == "glorot_normal" and not fs.mean:
                return "ref", None, None
            return ("point", fs.n, f"per={fs.per},scale={fs.scale}") if fs.kind == "sparse" else None
        if fs.kind == "glorot_uniform" and not fs.mean:
            return "ref", None, None
        return ("point", fs.r, "") if fs.kind == "lowrank" else None
    if axis.key == "dropout":
        return ("ref", None, None) if not ch["dropout"] else ("point", ch["dropout"], "")
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


def _rest(config: dict, axis: Axis) -> str:
    c = json.loads(json.dumps(config))
    for section, name in axis.fields:
        c[section].pop(name, None)
    return json.dumps(c, sort_keys=True)


def axis_series(groups: list[dict], axis) -> list[dict]:
    """Groups along ``axis`` as series: the runs that differ only in the axis value (and share a tag such
    as the quantizer family or the sparse reading), each with its reference group (float32 / dense /
    full-rank / no dropout with everything else equal) when the store has one. A series needs at least one
    point off the reference. Each series: algorithm, tag, rest (config key without the axis fields),
    points (groups with ``x`` set, sorted), ref (group or None), paper (bool: its points are Table 1 rows)."""
    axis = AXIS[axis] if isinstance(axis, str) else axis
    series: dict = {}
    refs: dict = {}
    for g in groups:
        v = _axis_value(axis, g["config"])
        if v is None:
            continue
        rest = _rest(g["config"], axis)
        if v[0] == "ref":
            refs[rest] = g
        else:
            s = series.setdefault((rest, v[2]), {"algorithm": g["algorithm"], "tag": v[2], "rest": rest,
                                                 "points": []})
            s["points"].append({**g, "x": v[1]})
    out = []
    for s in series.values():
        s["points"].sort(key=lambda g: g["x"])
        s["ref"] = refs.get(s["rest"])
        prefix = axis.paper_row.split("{")[0]
        s["paper"] = bool(prefix) and any(g["row"].startswith(prefix) for g in s["points"])
        out.append(s)
    return sorted(out, key=lambda s: (ALG_ORDER.index(s["algorithm"]) if s["algorithm"] in ALG_ORDER else 99,
                                      s["tag"], s["rest"]))


def axis_groups(groups: list[dict], axis, mark_ref: bool = False) -> list[dict]:
    """The groups of ``axis_series`` flattened (reference first in each series; shared references once).
    ``mark_ref``: the reference groups come as copies with the axis column set to the axis' reference
    label ('float32', 'dense', 'full', ...), for tables."""
    axis = AXIS[axis] if isinstance(axis, str) else axis
    out, seen = [], set()
    for s in axis_series(groups, axis):
        for g in ([s["ref"]] if s["ref"] else []) + s["points"]:
            if g["config_hashes"][0] in seen:
                continue
            seen.add(g["config_hashes"][0])
            out.append({**g, axis.key: axis.ref_label} if mark_ref and g is s["ref"] else g)
    return out


_SECTION_COLUMNS = {
    "error_bits": ("algorithm", "error_bits", "signal_bits", "label"),
    "update_bits": ("algorithm", "update_bits", "label"),
    "sparsity_n": ("algorithm", "sparsity_n", "label"),
    "rank": ("algorithm", "rank", "label"),
    "dropout": ("algorithm", "dropout", "label"),
}
# Files this report writes; a plot that cannot be drawn any more (its runs gone) is removed, so that
# reports/ never shows a stale picture beside a fresh table.
PLOT_FILES = ("acc_vs_error_bits.png", "acc_vs_update_bits.png", "acc_vs_sparsity_n.png", "acc_vs_rank.png",
              "acc_vs_dropout.png", "curves.png", *(f"acc_vs_cost_{k}.png" for k in COST_KEYS))


def pareto_markdown(groups: list[dict], results: list[dict], keys=COST_KEYS) -> list[str]:
    parts = []
    for key in keys:
        front = front_groups(groups, key)
        if len(cost_points(groups, key)) < 2 or not front:
            continue
        parts += [markdown_table(front, results, columns=("label",), title=f"Pareto front: accuracy vs {key}",
                                 note=f"Cost: {COST_INFO[key][1]}. The variants that no other variant beats on both "
                                      "cost (lower) and mean accuracy (higher), cheapest first."), ""]
    return parts


def write_report(store, out_dir, *, cost_fn=default_cost, budget_limits: dict | None = None,
                 plots: bool = True, command: str = "") -> Path:
    """Write ``tables.md`` (and PNG plots) for the store into ``out_dir``; returns the Markdown path."""
    from .plots import write_plots
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = load_results(store, cost_fn=cost_fn)
    groups = group(results)
    command = command or f"lowbit-rbp report --store {store.path if isinstance(store, Store) else store} " \
                         f"--out {out_dir}"
    parts = [f"# Sweep report: {_store_name(store)}", "",
             "Generated from the results store; do not edit the numbers by hand.", "",
             f"- Command: `{command}`",
             "- Every table states the protocol of its own runs. Cost columns: per training example, from "
             "`hw_models` (LC = learning channel).", ""]
    parts += [markdown_table(groups, results, columns=("label",), title="All variants"), ""]
    for axis in AXES:
        sel = axis_groups(groups, axis, mark_ref=True)
        if sel:
            parts += [markdown_table(sel, results, columns=_SECTION_COLUMNS[axis.key], title=axis.title), ""]
    parts += pareto_markdown(groups, results)
    if budget_limits:
        rows = budget(store, cost_fn=cost_fn, **budget_limits)
        parts += [budget_markdown(rows, budget_limits, results), ""]
    if plots and results:
        names = write_plots(groups, out_dir)
        for name in PLOT_FILES:
            if name not in names and (out_dir / name).is_file():
                (out_dir / name).unlink()
        parts += ["## Plots", ""] + [f"![{name}]({name})" for name in names]
    path = out_dir / "tables.md"
    path.write_text("\n".join(parts) + "\n")
    return path


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
