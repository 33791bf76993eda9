"""Results of a store as rows, grouped over seeds, as Markdown tables; the budget filter."""
from __future__ import annotations

import math
import re
import statistics
import time
from pathlib import Path

from ..errors import bad_value
from ..formats import parse_format
from ..store import Store

COST_KEYS = ("energy_pj", "wires", "bits_moved", "feedback_memory_bits")


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
    return {"energy_pj": s["energy_per_example_pj"]["total"], "wires": s["wires_backward"]["connections"],
            "bits_moved": s["wires_backward"]["bits_moved"], "feedback_memory_bits": s["memory"]["feedback_bits"]}


def _open(store):
    return (store, False) if isinstance(store, Store) else (Store(store), True)


def load_results(store, cost_fn=None) -> list[dict]:
    """One dict per run: ids, axes read from the config, final epoch metrics, optional cost columns."""
    from ..config import from_dict
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
                for k in COST_KEYS:
                    row[k] = None if cost is None else cost.get(k)
            out.append(row)
        return out
    finally:
        if close:
            st.close()


def _key(r: dict) -> str:
    """The variant a run belongs to (everything but the seed)."""
    import json
    c = {k: v for k, v in r["config"].items() if k not in ("name", "threads", "backend")}
    c = {**c, "train": {k: v for k, v in c["train"].items() if k != "seed"}}
    return json.dumps(c, sort_keys=True)


def group(results: list[dict]) -> list[dict]:
    """Group runs over seeds: mean / sample sd of final test accuracy (%) of runs that did not diverge."""
    groups: dict = {}
    for r in results:
        groups.setdefault(_key(r), []).append(r)
    out = []
    for runs in groups.values():
        done = [r for r in runs if r["status"] in ("finished", "diverged")]
        accs = [100 * r["test_acc"] for r in done if r["status"] == "finished" and r["test_acc"] is not None]
        first = runs[0]
        g = {k: first[k] for k in ("row", "algorithm", "fprime", "feedback", "error_bits", "signal_bits",
                                    "update_bits", "sparsity_n", "rank", "dropout", "epochs_planned")}
        g["label"] = (f"{first['row']}: " if first["row"] else "") + re.sub(r"^\S+", first["algorithm"],
                                                                             first["label"])
        g.update(n=len(done), seeds=sorted(r["seed"] for r in done),
                 diverged=sum(r["status"] == "diverged" for r in runs),
                 unfinished=sum(r["status"] not in ("finished", "diverged") for r in runs),
                 mean=statistics.fmean(accs) if accs else math.nan,
                 sd=statistics.stdev(accs) if len(accs) > 1 else math.nan,
                 curves=[r["curve"] for r in done], config_hashes=[r["config_hash"] for r in runs])
        for k in COST_KEYS:
            if k in first:
                g[k] = first[k]
        out.append(g)
    return out


def protocol(results: list[dict]) -> dict:
    machines = {(m.get("processor", "?"), m.get("cpus", "?"), m.get("torch", "?"), m.get("python", "?"))
                for m in (r["machine"] for r in results) if m}
    return {
        "runs": len(results),
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
    return (f"_Protocol: {p['runs']} runs; epochs {', '.join(map(str, p['epochs'])) or '?'}; "
            f"seeds {', '.join(map(str, p['seeds'])) or '?'}; finished {', '.join(p['dates']) or '-'}; "
            f"machine {mach}; code {', '.join(p['code_versions']) or '?'}; report {p['report_date']}. "
            "Final test accuracy %, mean (sample sd) over seeds; diverged runs counted apart._")


def _fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float) and (abs(x) >= 1e5 or (x and abs(x) < 1e-2)):
        return f"{x:.3g}"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown_table(groups: list[dict], results: list[dict], columns=("label",), title: str = "") -> str:
    has_cost = [k for k in COST_KEYS if any(g.get(k) is not None for g in groups)]
    head = [*columns, "acc % mean (sd)", "seeds", "diverged", *has_cost]
    lines = ([f"### {title}", ""] if title else []) + [protocol_markdown(results), "",
                                                       "| " + " | ".join(head) + " |",
                                                       "|" + "---|" * len(head)]
    for g in groups:
        acc = _fmt(g["mean"]) + (f" ({_fmt(g['sd'])})" if not math.isnan(g["sd"]) else "")
        if g["unfinished"]:
            acc += f" [{g['unfinished']} unfinished]"
        cells = [_fmt(g.get(c)) for c in columns] + [acc, str(len(g["seeds"])), str(g["diverged"])] + \
            [_fmt(g.get(k)) for k in has_cost]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points (cost, accuracy) not dominated by another (lower-or-equal cost and higher-or-equal
    accuracy, one strictly)."""
    idx = []
    for i, (c, a) in enumerate(points):
        if any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i):
            continue
        idx.append(i)
    return sorted(idx, key=lambda i: points[i][0])


def budget(store, cost_fn=None, **limits) -> list[dict]:
    """Variants (grouped over seeds) whose cost fits every limit (``energy_pj=``, ``wires=``, ``bits_moved=``,
    ``feedback_memory_bits=``), best mean accuracy first. Variants without a cost are left out."""
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
    title = "Budget: " + ", ".join(f"{k} <= {v}" for k, v in limits.items())
    if not rows:
        return f"### {title}\n\n{protocol_markdown(results)}\n\nNo configuration fits."
    return markdown_table(rows, results, columns=("label",), title=title)


def axis_groups(groups: list[dict], axis: str) -> list[dict]:
    """Variants that vary ``axis`` (bits < 32, a sparsity, a rank, a dropout) plus the plain baselines
    (float32, dense, no dropout) of the same algorithms, sorted by algorithm and axis value."""
    sel = [g for g in groups if g[axis] not in (None, 32) and g[axis] != 0.0]
    if not sel:
        return []
    algs = {g["algorithm"] for g in sel}
    base = [g for g in groups if g not in sel and g["algorithm"] in algs and g["row"] in ("", "baseline")
            and g["error_bits"] == 32 and g["update_bits"] == 32 and g["sparsity_n"] is None
            and g["rank"] is None and g["dropout"] == 0.0 and g["fprime"]]
    return sorted(base + sel, key=lambda g: (g["algorithm"], -1 if g[axis] is None else g[axis]))


_SECTIONS = (
    ("All variants", None, ("label",)),
    ("Accuracy vs error bits", "error_bits", ("algorithm", "error_bits", "signal_bits", "label")),
    ("Accuracy vs update bits", "update_bits", ("algorithm", "update_bits", "label")),
    ("Accuracy vs sparsity n", "sparsity_n", ("algorithm", "sparsity_n", "label")),
    ("Accuracy vs rank", "rank", ("algorithm", "rank", "label")),
    ("Accuracy vs LC dropout", "dropout", ("algorithm", "dropout", "label")),
)


def write_report(store, out_dir, *, cost_fn=default_cost, budget_limits: dict | None = None,
                 plots: bool = True) -> Path:
    """Write ``tables.md`` (and PNG plots) for the store into ``out_dir``; returns the Markdown path."""
    from .plots import write_plots
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = load_results(store, cost_fn=cost_fn)
    groups = group(results)
    parts = [f"# Sweep report: {Path(store.path if isinstance(store, Store) else store).name}", "",
             "Generated from the results store; do not edit the numbers by hand.", ""]
    for title, axis, cols in _SECTIONS:
        sel = groups if axis is None else axis_groups(groups, axis)
        if not sel:
            continue
        parts += [markdown_table(sel, results, columns=cols, title=title), ""]
    if budget_limits:
        rows = budget(store, cost_fn=cost_fn, **budget_limits)
        parts += [budget_markdown(rows, budget_limits, results), ""]
    if plots and results:
        for name in write_plots(groups, out_dir):
            parts.append(f"![{name}]({name})")
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
