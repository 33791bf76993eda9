"""The report of a whole results store (``lowbit-rbp report``): ``tables.md`` with every table
(each with its protocol) and the PNG plots."""
from __future__ import annotations

from pathlib import Path

from ..results.store import Store
from .alignment import store_angle_table, store_panels
from .plots import plot_alignment, protocol_line, write_plots
from .tables import (AXES, COST_KEYS, MAXIMIZED, SECTION_COLUMNS, store_name, axis_groups, budget, budget_markdown,
                     cheapest, default_cost, group, load_results, markdown_table, pareto_markdown, plan_markdown)

PLANNER_LIMITS = ("budget_energy_pj", "area_mm2", "latency_s", "throughput_eps")

# Files this report writes; a plot that cannot be drawn any more (its runs gone) is removed, so that
# reports/ never shows a stale picture beside a fresh table.
PLOT_FILES = ("alignment.png", "acc_vs_error_bits.png", "acc_vs_update_bits.png", "acc_vs_sparsity_n.png", "acc_vs_rank.png",
              "acc_vs_dropout.png", "curves.png", *(f"acc_vs_cost_{k}.png" for k in COST_KEYS if k not in MAXIMIZED))


def write_report(store, out_dir, *, cost_fn=default_cost, budget_limits: dict | None = None,
                 plan: tuple | None = None, plots: bool = True, command: str = "") -> Path:
    """Write ``tables.md`` (and PNG plots) for the store into ``out_dir``; returns the Markdown path.
    ``plan``: (minimum accuracy %, energy | area | latency) for the planner's pick within
    ``budget_limits``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = load_results(store, cost_fn=cost_fn)
    groups = group(results)
    command = command or f"lowbit-rbp report --store {store.path if isinstance(store, Store) else store} " \
                         f"--out {out_dir}"
    parts = [f"# Sweep report: {store_name(store)}", "",
             "Generated from the results store; do not edit the numbers by hand.", "",
             f"- Command: `{command}`",
             "- Every table states the protocol of its own runs. Cost columns: per training example, from "
             "`lowbit_rbp.cost` (LC = learning channel).", ""]
    parts += [markdown_table(groups, results, columns=("label",), title="All variants"), ""]
    for axis in AXES:
        sel = axis_groups(groups, axis, mark_ref=True)
        if sel:
            parts += [markdown_table(sel, results, columns=SECTION_COLUMNS[axis.key], title=axis.title), ""]
    parts += pareto_markdown(groups, results)
    if budget_limits:
        rows = budget(store, cost_fn=cost_fn, **budget_limits)
        parts += [budget_markdown(rows, budget_limits, results), ""]
    if plan is not None:
        limits = {k: v for k, v in (budget_limits or {}).items() if k in PLANNER_LIMITS}
        choice, chosen = cheapest(store, plan[0], plan[1], cost_fn=cost_fn, **limits)
        parts += [plan_markdown(choice, chosen, results), ""]
    diagnostics = _diagnostics(store)
    if diagnostics:
        shown, every = len(store_panels(groups, diagnostics)), len(store_panels(groups, diagnostics, limit=None))
        parts += ["## Learning diagnostics", "",
                  "The angle (degrees) between each layer's update and BP's gradient on the same minibatch and "
                  "weights at the last epoch, mean over seeds (`--diagnostics`; alignment.png: over epochs, "
                  f"the first {shown} of the {every} variants with diagnostics).", ""]
        parts += store_angle_table(groups, diagnostics) + [""]
    if plots and results:
        names = write_plots(groups, out_dir)
        if diagnostics and plot_alignment(store_panels(groups, diagnostics), out_dir / "alignment.png",
                                          "Angle to BP's gradient per layer over epochs", protocol_line(groups, "mean")):
            names.append("alignment.png")
        for name in PLOT_FILES:
            if name not in names and (out_dir / name).is_file():
                (out_dir / name).unlink()
        parts += ["## Plots", ""] + [f"![{name}]({name})" for name in names]
    path = out_dir / "tables.md"
    path.write_text("\n".join(parts) + "\n")
    return path


def _diagnostics(store) -> dict:
    """The store's learning diagnostics (``{}`` when it has none)."""
    if isinstance(store, Store):
        return store.diagnostics()
    st = Store.read_only(store)
    try:
        return st.diagnostics()
    finally:
        st.close()
