"""The front a search found beside the front of the full grid of the same space
(``lowbit-rbp search SPACE --report OUT.md [--grid-store G]``): both fronts in a table and a plot,
their hypervolumes, and what each cost in runs, epochs and CPU time.

Hypervolume (the volume of objective space a front dominates, up to a reference point): every
objective is turned into a loss to minimise (error = 100 - accuracy %, costs as they are, maximised
costs negated) and normalised with the grid's front as the reference front: 0 at its best value
(the ideal point) and 1 at its worst (the nadir point). The reference point is 1.1 in every
objective, 10 % beyond the nadir. Both fronts are measured in that one box, so the ratio says how
much of the grid front's dominated volume the search's front covers (at most 100 %: the grid holds
every configuration of the space). Without a grid store the search front is normalised by itself.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from hw_models.markdown import fmt, md_table
from ..cost.per_example import COST_INFO, default_cost
from ..results.pareto import front, hypervolume
from ..results.records import RunRecord
from ..results.search import journal_path, objective_values, open_study
from ..results.space import Space
from ..results.store import PRUNED_TAG, Store
from .tables import load_results, report_code

REFERENCE = 1.1      # the reference point in normalised losses: 10 % beyond the reference front's nadir
TOP_WINDOW = 5.0     # the second measure: only designs within this many accuracy points of the best count


@dataclass
class Point:
    """A configuration with its objective values (natural units: accuracy %, costs)."""

    config_hash: str
    knobs: dict
    values: list
    source: str = ""
    losses: tuple = ()                  # the values as losses to minimise (Objective.loss)


@dataclass
class Side:
    """The runs of one side (grid or search): its evaluated points and what they cost to get."""

    name: str
    points: list                        # finished configurations (Point)
    runs: int = 0                       # distinct configurations trained (pruned and failed included)
    epochs: int = 0
    seconds: float = 0.0
    pruned: int = 0
    failed: int = 0
    extra: dict = field(default_factory=dict)
    hv: float = math.nan                # normalised hypervolume of its front
    hv_top: float = math.nan            # the same over designs within TOP_WINDOW points of the best

    @property
    def front(self) -> list:
        return [self.points[i] for i in front([p.losses for p in self.points])] if self.points else []


def _losses(objectives, values) -> tuple:
    return tuple(o.loss(v) for o, v in zip(objectives, values))


def _with_losses(points: list, objectives) -> list:
    for p in points:
        p.losses = _losses(objectives, p.values)
    return points


def _tally_runs(side: Side, records: list[RunRecord]) -> None:
    side.runs = sum(r.status in ("finished", "diverged", "failed") for r in records)     # trained to an end
    side.epochs = sum(len(r.epochs) for r in records)
    side.seconds = sum(r.seconds for r in records)
    side.pruned = sum(r.status == "failed" and PRUNED_TAG in r.tags for r in records)
    side.failed = sum(r.status == "failed" and PRUNED_TAG not in r.tags for r in records)


def grid_side(space: Space, grid_store, objectives, cost_fn=default_cost) -> Side:
    """The grid's finished runs of ``space`` in ``grid_store`` (other runs of the store ignored)."""
    knobs_of = {}
    for combo in itertools.product(*(k.grid_values() for k in space.knobs)):
        raw = dict(zip((k.key for k in space.knobs), combo))
        knobs_of[space.config(raw).config_hash()] = raw
    with Store.read_only(grid_store) as st:
        records = [r for r in st.runs() if r.config_hash in knobs_of]
    side = Side("grid", [], extra={"size": len(knobs_of), "missing": len(knobs_of) - sum(r.done for r in records)})
    _tally_runs(side, records)
    for r in records:
        if r.status == "finished" and r.test_acc is not None:
            values = objective_values(objectives, 100.0 * r.test_acc, cost_fn(r.config))
            side.points.append(Point(r.config_hash, knobs_of[r.config_hash], values, "grid"))
    _with_losses(side.points, objectives)
    return side


def search_side(space: Space, store, objectives, journal=None, name: str = "search") -> Side:
    """The configurations the study evaluated (its journal), with what its own training cost."""
    from optuna.trial import TrialState
    study = open_study(space, objectives, journal or journal_path(store), create=False)
    trials = study.get_trials(deepcopy=False)
    points: dict = {}
    sources: dict = {}
    states = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
        h = t.user_attrs.get("config_hash")
        if h is None:
            continue
        if t.user_attrs.get("source") != "repeat":
            sources.setdefault(h, t.user_attrs.get("source"))
        if t.state == TrialState.COMPLETE and h not in points:
            points[h] = Point(h, {k.key: t.params[k.key] for k in space.knobs}, list(t.values),
                              t.user_attrs.get("source", ""))
    with Store.read_only(store) as st:
        trained = [st.run(h) for h, src in sources.items() if src == "trained"]
    side = Side(name, [], extra={"study": study.study_name, "trials": len(trials), "states": states,
                                 "configurations": len(sources), "store": str(store),
                                 "reused": sum(src == "store" for src in sources.values()),
                                 "sampler": study.user_attrs.get("sampler", "?"),
                                 "pruning": study.user_attrs.get("pruning", "?")})
    _tally_runs(side, [r for r in trained if r is not None])
    side.runs = len(sources)     # every configuration the search needed, trained now or found in the store
    side.points = _with_losses([p for p in points.values() if _finite(p.values)], objectives)
    return side


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


# --- hypervolume --------------------------------------------------------------------------------
def normaliser(reference_front: list):
    """ideal and nadir losses of the reference front (a zero range counts as 1)."""
    losses = [p.losses for p in reference_front]
    ideal = [min(col) for col in zip(*losses)]
    nadir = [max(col) for col in zip(*losses)]
    return ideal, nadir


def top_nadir(objectives, ideal, nadir) -> list:
    """The nadir of the second measure: accuracy's worst value raised to the best minus TOP_WINDOW."""
    return [lo + TOP_WINDOW if o.key == "accuracy" else hi for o, lo, hi in zip(objectives, ideal, nadir)]


def normalised_hypervolume(points: list, ideal, nadir) -> float:
    norm = [tuple((x - lo) / ((hi - lo) or 1.0) for x, lo, hi in zip(p.losses, ideal, nadir)) for p in points]
    return hypervolume(norm, [REFERENCE] * len(ideal))


# --- the plot -----------------------------------------------------------------------------------
def _panel(ax, grid: Side | None, search: Side, a: int, c: int, scale: float, ylim) -> None:
    """One projection (accuracy ``a`` against cost ``c``) within ``ylim``; runs below it as
    triangles on the bottom edge."""
    ylo = ylim[0]

    def draw(points, edge_marks=False, **style):
        shown = [p for p in points if p.values[a] >= ylo]
        ax.scatter([p.values[c] / scale for p in shown], [p.values[a] for p in shown], **style)
        low = [p for p in points if p.values[a] < ylo]
        if edge_marks and low:
            ax.scatter([p.values[c] / scale for p in low], [ylo + 0.02 * (ylim[1] - ylo)] * len(low), marker="v",
                       s=14, color=style["color"], alpha=0.6, zorder=2)
    if grid:
        draw(grid.points, True, s=12, color="0.7", zorder=1)
    draw(search.points, True, s=18, color="#1f77b4", alpha=0.6, zorder=3)
    if grid:
        draw(grid.front, s=120, facecolors="none", edgecolors="k", linewidths=1.2, zorder=4)
    draw(search.front, s=36, color="#1f77b4", edgecolors="#08306b", linewidths=0.8, zorder=5)
    ax.set_ylim(*ylim)


def plot_fronts(grid: Side | None, search: Side, objectives, path) -> bool:
    """Accuracy against each cost objective: the grid's runs (grey), its front (black rings), the
    search's finished runs (blue) and its front (blue, filled); top row the whole range, bottom row
    the designs within ``TOP_WINDOW`` points of the best. With more than one cost the fronts are
    those of all objectives, seen in each projection."""
    from matplotlib.lines import Line2D
    from .plots import COST_TITLES, COST_UNITS, legend_outside, new_figure, save, title
    acc_i = [i for i, o in enumerate(objectives) if o.key == "accuracy"]
    costs = [i for i, o in enumerate(objectives) if o.key != "accuracy"]
    if not acc_i or not costs or not search.points:
        return False
    a = acc_i[0]
    fig, axes = new_figure(5.2 * len(costs) + 1.8, 8.4, 2, len(costs))
    rows = [axes[:len(costs)], axes[len(costs):]]
    fronts = [p for side in (grid, search) if side for p in side.front]
    best = max(p.values[a] for p in fronts)
    whole = (math.floor(min(p.values[a] for p in fronts) - 3), best + 0.8)
    top = (best - TOP_WINDOW - 0.5, best + 0.3)
    for col, c in enumerate(costs):
        key = objectives[c].key
        scale, unit = COST_UNITS.get(key, (1, ""))
        for row, ylim in ((0, whole), (1, top)):
            ax = rows[row][col]
            _panel(ax, grid, search, a, c, scale, ylim)
            ax.set_xlabel(f"{COST_TITLES.get(key, key)} ({unit})", fontsize=9)
            ax.set_ylabel("final test accuracy (%)", fontsize=9)
            title(ax, f"accuracy vs {COST_TITLES.get(key, key)}" + (f" (within {TOP_WINDOW:g} points of the best)"
                                                                   if row else ""))
    handles = [Line2D([], [], color="0.7", marker="o", ls="none", label="grid: every configuration"),
               Line2D([], [], color="k", marker="o", mfc="none", ms=10, ls="none", label="grid front"),
               Line2D([], [], color="#1f77b4", marker="o", alpha=0.6, ls="none", label="search: finished trials"),
               Line2D([], [], color="#1f77b4", marker="o", mec="#08306b", ls="none", label="search front"),
               Line2D([], [], color="0.5", marker="v", ls="none", label="below the panel (bottom edge)")]
    if not grid:
        handles = [h for h in handles if not h.get_label().startswith("grid")]
    legend_outside(rows[0][-1], handles)
    fig.suptitle(f"{search.extra['study']}: fronts of all {len(objectives)} objectives"
                 + (", each cost projection" if len(costs) > 1 else ""), fontsize=10)
    fig.tight_layout()
    return save(fig, path)


# --- the report ---------------------------------------------------------------------------------
def _short(value) -> str:
    """A knob value as the tables show it (log specs without their default options)."""
    return str(value).replace(",underflow=stochastic,levels=paper", "")


def _front_table(points: list, space: Space, objectives, found: set | None = None) -> str:
    header = [k.key for k in space.knobs] + [_objective_header(o) for o in objectives]
    if found is not None:
        header.append("found by the search")
    rows = []
    for p in sorted(points, key=lambda p: p.losses):
        row = [_short(p.knobs[k.key]) for k in space.knobs] + [float(v) for v in p.values]
        if found is not None:
            row.append("yes" if p.config_hash in found else "no")
        rows.append(row)
    return md_table(header, rows)


def _objective_header(o) -> str:
    if o.key == "accuracy":
        return "accuracy (%)"
    return COST_INFO[o.key][0] if o.key in COST_INFO else o.key


def write_search_report(space: Space, store, objectives, out, *, grid_store=None, journal=None,
                        other_stores=(), command: str = "", cost_fn=default_cost) -> Path:
    """Write the search's front (and the grid's, when ``grid_store`` is given) to ``out`` (Markdown),
    with the plot beside it (same stem, .png). ``other_stores``: more searches of the same space
    and objectives (each with its journal beside its store), measured the same way."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    search = search_side(space, store, objectives, journal)
    others = [search_side(space, o, objectives, name=Path(o).stem) for o in other_stores]
    grid = grid_side(space, grid_store, objectives, cost_fn) if grid_store else None
    reference = grid.front if grid else search.front
    ideal, nadir = normaliser(reference) if reference else ([0.0] * len(objectives), [1.0] * len(objectives))
    top = top_nadir(objectives, ideal, nadir) if any(o.key == "accuracy" for o in objectives) else None
    sides = [s for s in (grid, search, *others) if s]
    for side in sides:
        side.hv = normalised_hypervolume(side.front, ideal, nadir)
        side.hv_top = normalised_hypervolume(side.front, ideal, top) if top else math.nan
    png = out.with_suffix(".png")
    plotted = plot_fronts(grid, search, objectives, png)
    lines = [f"# Search vs grid: {space.name}", ""]
    if command:
        lines += [f"Generated by `{command}` from the stores (finished runs only).", ""]
    lines += _protocol(space, objectives, [search, *others], grid)
    lines[-1:-1] = [_code_line([store, *other_stores] + ([grid_store] if grid_store else []))]
    lines += _result(grid, search, others, top is not None)
    lines += _hv_definition(objectives, ideal, nadir, grid is not None, top is not None)
    if plotted:
        lines += [f"![fronts]({png.name})", ""]
    if grid:
        found = {p.config_hash for p in search.points}
        lines += [f"## The grid's front ({len(grid.front)} configurations)", "",
                  _front_table(grid.front, space, objectives, found), ""]
    lines += [f"## The search's front ({len(search.front)} configurations)", "",
              _front_table(search.front, space, objectives), ""]
    out.write_text("\n".join(lines))
    return out


def _code_line(stores) -> str:
    """The code versions the stores' runs were trained by, and the report's own."""
    versions = sorted({r.code_version or "?" for st in stores for r in load_results(st)})
    return f"- Code: runs' {', '.join(versions)}; report from {report_code()}."


def _protocol(space: Space, objectives, searches: list, grid: Side | None) -> list[str]:
    base = space.config(space.first())
    knobs = "; ".join(f"`{k.key}` in {{{', '.join(_short(k.value(v)) for v in k.grid_values())}}}"
                      if k.size < math.inf else f"`{k.key}` in [{k.low}, {k.high}]" for k in space.knobs)
    lines = ["## Protocol", "",
             f"- Space `{space.source or space.name}`: {space.description or space.name}. Base: "
             f"{base.model.dataset}, hidden {list(base.model.hidden)} {base.model.activation}, "
             f"{base.channel.algorithm}, {base.train.epochs} epochs, seed {base.train.seed}, batch "
             f"{base.train.batch_size}, lr {base.train.lr}.",
             f"- Knobs ({len(space.knobs)}; {space.size:g} configurations): {knobs}.",
             f"- Objectives: {', '.join(o.spec for o in objectives)}; accuracy is the final test accuracy, "
             "costs are per training example from `lowbit_rbp.cost.per_example.default_cost` (the cost report "
             "and the hardware budget on the default architecture template)."]
    for s in searches:
        states = ", ".join(f"{n} {k.lower()}" for k, n in s.extra["states"].items() if n)
        lines.append(f"- {s.name} (`{s.extra['store']}`): study `{s.extra['study']}`, sampler {s.extra['sampler']}, "
                     f"pruning: {s.extra['pruning']}; {s.extra['trials']} Optuna trials ({states}).")
    lines.append("- A trial that proposes a configuration already evaluated is answered again and not counted; "
                 "runs = distinct configurations evaluated (pruned ones included).")
    if grid:
        lines.append(f"- Grid: {grid.extra['size']} configurations, {grid.extra['missing']} not finished yet.")
    return lines + [""]


def _result(grid: Side | None, search: Side, others: list, has_top: bool) -> list[str]:
    def row(side):
        return [side.name, side.runs, side.pruned, side.failed, side.epochs, side.seconds / 60.0, len(side.points),
                len(side.front), side.hv] + ([side.hv_top] if has_top else []) + \
            ([100 * side.hv / grid.hv] if grid else [])
    lines = ["## Result", "",
             md_table(["", "runs", "pruned", "failed", "epochs trained", "training time (min, 1 thread)",
                       "finished", "front size", "hypervolume"]
                      + ([f"hypervolume, accuracy within {TOP_WINDOW:g} points of the best"] if has_top else [])
                      + (["% of the grid's hypervolume"] if grid else []),
                      [row(s) for s in (grid, search, *others) if s]), "",
             "Epochs trained measure the work; the training time is the wall-clock time of the epochs (single-"
             "threaded runs, possibly on a machine shared with other jobs), for orientation only.", ""]
    if grid and grid.hv > 0:
        ratio = search.hv / grid.hv
        share = search.runs / grid.extra["size"]
        found = {q.config_hash for q in search.points}
        lines += [f"The search's front reaches **{100 * ratio:.2f} %** of the grid front's hypervolume "
                  f"({100 * (1 - ratio):.2f} % short) with **{search.runs} runs, {100 * share:.1f} % of the grid's "
                  f"{grid.extra['size']}** ({search.epochs} of {grid.epochs} epochs). It found "
                  f"{sum(p.config_hash in found for p in grid.front)} of the grid front's {len(grid.front)} "
                  "configurations.", ""]
        if has_top and grid.hv_top > 0:
            lines += [f"Counting only designs within {TOP_WINDOW:g} accuracy points of the grid's best (the second "
                      f"measure below), the search reaches {100 * search.hv_top / grid.hv_top:.2f} %.", ""]
        for o in others:
            lines += [f"{o.name} ({o.extra['sampler']}, pruning {o.extra['pruning']}): {100 * o.hv / grid.hv:.2f} % "
                      f"of the grid's hypervolume" + (f", {100 * o.hv_top / grid.hv_top:.2f} % by the second measure"
                                                       if has_top and grid.hv_top > 0 else "")
                      + f", with {o.runs} runs.", ""]
    if search.extra["reused"]:
        lines += [f"{search.extra['reused']} of the search's configurations were answered from its store "
                  "(finished there before) and counted as runs.", ""]
    return lines


def _hv_definition(objectives, ideal, nadir, has_grid: bool, has_top: bool) -> list[str]:
    ref_front = "the grid's front" if has_grid else "the search's front"
    rows = []
    for o, lo, hi in zip(objectives, ideal, nadir):
        loss = "error = 100 - accuracy (%)" if o.key == "accuracy" else \
            (f"-{o.key}" if o.direction == "max" else o.key)
        shift = 100.0 if o.key == "accuracy" else 0.0      # -accuracy shown as the error 100 - accuracy
        rows.append([o.spec, loss, fmt(shift + lo), fmt(shift + hi)])
    return ["## Hypervolume: how it is measured", "",
            "Each objective becomes a loss to minimise, normalised to 0 at the best and 1 at the worst value "
            f"on {ref_front} (its ideal and nadir points); the reference point is {REFERENCE} in every "
            "normalised loss (10 % beyond the nadir). The hypervolume is the volume the front dominates inside "
            "that box (exact, by slicing); the box's own volume is "
            f"{REFERENCE ** len(objectives):.3g}.", "",
            md_table(["objective", "loss", "0 (ideal)", "1 (nadir)"], rows), "",
            *([f"Second measure: the same, with the error's 1 set to the best error + {TOP_WINDOW:g} points, so only "
               f"designs within about {1.1 * TOP_WINDOW:g} accuracy points of the best add volume (the part of the "
               "front a designer would pick from).", ""] if has_top else [])]
