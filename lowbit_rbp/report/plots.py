"""PNG plots (matplotlib Agg) of grouped sweep results: accuracy along an axis per algorithm (with the
paper's Table 1 numbers as open diamonds where the plot is of a Table 1 quantity), training curves, and
accuracy vs cost with the Pareto front.

One style for every plot: ``new_figure``, ``ALG_COLORS`` / ``alg_name``, ``title``, ``legend_outside``
and ``save`` (the theory and semantics reports may reuse them).
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

from dataclasses import replace

from ..core.algorithms import ALGORITHMS, REPORT_ORDER
from .tables import AXES, AXIS, COST_INFO, COST_KEYS, MAXIMIZED, axis_series, cost_points, front_groups

# One colour per algorithm, in the reports' order of algorithms (BP, SBP, RBP, ARBP, SRBP, ASRBP, top).
ALG_COLORS = dict(zip(REPORT_ORDER, ("#1f77b4", "#8c564b", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd", "#7f7f7f")))
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)))
MARKERS = ("o", "s", "^", "v", "P")
PAPER_STYLE = dict(marker="D", mfc="none", ls="none", ms=7, mew=1.3)
DPI = 110
# Cost axes: divide by ``scale`` and name the unit.
COST_UNITS = {"energy_pj": (1e6, "µJ"), "lc_energy_pj": (1e3, "nJ"), "lc_ops": (1, "count"),
              "wires": (1, "count"), "bits_moved": (1, "bits"), "feedback_memory_bits": (1, "bits"),
              "budget_energy_pj": (1e6, "µJ"), "area_mm2": (1, "mm²"), "latency_s": (1e-6, "µs")}
COST_TITLES = {"energy_pj": "energy per example", "lc_energy_pj": "learning-channel energy per example",
               "lc_ops": "learning-channel operations per example", "wires": "learning-channel wires",
               "bits_moved": "learning-channel bits moved per example",
               "feedback_memory_bits": "feedback-weight memory",
               "budget_energy_pj": "energy per example with leakage", "area_mm2": "chip area",
               "latency_s": "time per training example"}
FAMILIES = (("baseline", "baseline: float32, dense Glorot-normal feedback"), ("no_fprime", "no f'"),
            ("adaptive", "adaptive learning channel"), ("sparse", "sparse feedback"),
            ("qerror", "quantized error and signals"), ("qupdate", "quantized updates"),
            ("dropout", "learning-channel dropout"), ("lowrank", "low-rank feedback"), ("other", "other runs"))


# --- shared style -----------------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def new_figure(width: float = 8.0, height: float = 4.2, nrows: int = 1, ncols: int = 1):
    """A figure with a light grid on every axes; returns (fig, ax) or (fig, list of axes)."""
    plt = _plt()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat:
        a.grid(True, alpha=0.3, lw=0.6)
        a.tick_params(labelsize=8)
    return fig, (flat[0] if len(flat) == 1 else flat)


def alg_name(alg: str) -> str:
    return ALGORITHMS[alg].label if alg in ALGORITHMS else alg.upper()


def alg_color(alg: str) -> str:
    return ALG_COLORS.get(alg, "#17becf")


def title(ax, text: str, sub: str = "") -> None:
    ax.set_title(text + (f"\n{sub}" if sub else ""), fontsize=10)


def legend_outside(ax, handles=None, **kw):
    """The legend right of the axes, so it never covers data."""
    kw = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "fontsize": 8, "borderaxespad": 0.0, **kw}
    return ax.legend(handles=handles, **kw) if handles is not None else ax.legend(**kw)


def save(fig, path) -> bool:
    """Save as PNG (tight bounding box, so outside legends are kept) and close."""
    plt = _plt()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return True


def protocol_line(groups: list, stat: str = "mean ± sd") -> str:
    """'mnist, hidden 100x4 tanh; 20 epochs; mean ± sd over 3 seeds' for the groups in a plot."""
    nets = sorted({(g.config.model.dataset, _hidden(g.config), g.config.model.activation) for g in groups})
    epochs = sorted({g.first.epochs_planned for g in groups})
    seeds = sorted({len(g.seeds) for g in groups if g.seeds})
    net = "; ".join(f"{d}, hidden {h} {a}" for d, h, a in nets)
    nseeds = "?" if not seeds else (str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}")
    return f"{net}; {'/'.join(map(str, epochs))} epochs; {stat} over {nseeds} seeds"


def _hidden(config) -> str:
    h = list(config.model.hidden)
    return f"{h[0]}x{len(h)}" if h and len(set(h)) == 1 else "-".join(map(str, h)) or "none"


def variant_text(g, axes_shown: bool = True) -> str:
    """What sets a variant apart, in a few words ('n=8', 'error 3-bit', 'p=0.5', 'r=5', 'no f'');
    without the axis quantities (sparsity, rank, bits, dropout) unless ``axes_shown``."""
    r = g.first
    parts = []
    if not r.fprime:
        parts.append("no f'")
    if axes_shown and r.sparsity_n is not None:
        parts.append(f"n={r.sparsity_n}" + (" per sender" if "per=sender" in r.feedback else ""))
    if axes_shown and r.rank is not None:
        parts.append(f"r={r.rank}")
    elif r.feedback.startswith("glorot_uniform"):
        parts.append("Glorot-uniform (full rank)")
    if axes_shown and r.error_bits < 32:
        parts.append(f"error {r.error_bits}-bit")
    if axes_shown and r.update_bits < 32:
        parts.append(f"update {r.update_bits}-bit")
    if axes_shown and r.dropout:
        parts.append(f"dropout {r.dropout:g}")
    if list(g.config.model.hidden) != [100, 100, 100, 100]:
        parts.append(f"hidden {_hidden(g.config)}")
    return ", ".join(parts)


def short_label(g) -> str:
    v = variant_text(g)
    return alg_name(g.algorithm) + (f" {v}" if v else "")


# --- accuracy along an axis -------------------------------------------------------------------
def _paper(row: str, alg: str):
    from .paper import MNIST_TABLE1
    return MNIST_TABLE1.get(row, {}).get(alg)


def _series_labels(series: list) -> list[str]:
    """Algorithm name, plus the tag or differing settings where two series share an algorithm."""
    labels = []
    for s in series:
        same = [t for t in series if t.algorithm == s.algorithm]
        text = alg_name(s.algorithm)
        if len(same) > 1:
            extra = variant_text(s.points[0], axes_shown=False)
            tag = _tag_text(s.tag)
            text += " (" + ", ".join(x for x in (tag, extra) if x) + ")" if (tag or extra) else ""
        labels.append(text)
    return labels


def _tag_text(tag: str) -> str:
    """A series tag in words: the sparse reading, or the quantizer family."""
    if tag.startswith("per="):
        per, _, scale = tag.partition(",")
        text = {"per=receiver": "per receiving neuron", "per=sender": "per sending neuron"}.get(per, per)
        return text + ("" if scale in ("", "scale=auto") else f", {scale}")
    return tag.replace(",bits=b", "").replace(" | signal same", "")


def _paper_points(axis, s, pct, ref_x):
    """The paper's Table 1 numbers for a series: (xs, ys, sds), the reference as the baseline row."""
    px, py, pe = [], [], []
    if not s.paper:
        return px, py, pe
    for g in s.points:
        v = round(100 * g.x) if pct else g.x
        p = _paper(axis.paper_row.format(v=v), s.algorithm)
        if p is not None:
            px.append(100 * g.x if pct else g.x), py.append(p[0]), pe.append(p[1] or 0)
    base = _paper("baseline", s.algorithm) if s.ref is not None else None
    if base is not None:
        px.append(ref_x), py.append(base[0]), pe.append(base[1] or 0)
    order = sorted(range(len(px)), key=lambda i: px[i])
    return [px[i] for i in order], [py[i] for i in order], [pe[i] for i in order]


def _draw_axis(ax, axis, series, pct, ref_x, xs_all):
    """Draw every series (ours, reference, paper) on ``ax``; returns (legend handles, any paper points)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator
    handles, any_paper = [], False
    labels = _series_labels(series)
    style_n: dict = {}
    for s, label in zip(series, labels):
        color = alg_color(s.algorithm)
        k = style_n[s.algorithm] = style_n.get(s.algorithm, -1) + 1
        ls, mk = LINESTYLES[k % len(LINESTYLES)], MARKERS[k % len(MARKERS)]
        xs = [100 * g.x if pct else g.x for g in s.points]
        ys = [g.mean for g in s.points]
        es = [0 if math.isnan(g.sd) else g.sd for g in s.points]
        if s.ref is not None:
            r = s.ref
            rsd = 0 if math.isnan(r.sd) else r.sd
            if axis.log2:   # the reference is not on the axis' continuum: its own tick, a dotted link
                near = max(range(len(xs)), key=lambda i: xs[i])
                ax.plot([xs[near], ref_x], [ys[near], r.mean], color=color, ls=":", lw=1)
                ax.errorbar([ref_x], [r.mean], yerr=[rsd], color=color, marker=mk, capsize=3, ls="none")
            else:
                xs, ys, es = [ref_x] + xs, [r.mean] + ys, [rsd] + es
        ax.errorbar(xs, ys, yerr=es, color=color, marker=mk, ls=ls, capsize=3, ms=5)
        handles.append(Line2D([], [], color=color, marker=mk, ls=ls, label=label))
        px, py, pe = _paper_points(axis, s, pct, ref_x)
        if px:
            any_paper = True
            ax.plot(px, py, color=color, **PAPER_STYLE)
            sd = [i for i, e in enumerate(pe) if e]
            if sd:
                ax.errorbar([px[i] for i in sd], [py[i] for i in sd], yerr=[pe[i] for i in sd], fmt="none",
                            ecolor=color, capsize=2, lw=0.9)
    if axis.log2:
        ax.set_xscale("log", base=2)
        ticks = xs_all + ([ref_x] if any(s.ref for s in series) else [])
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([axis.ref_label if t == ref_x and any(s.ref for s in series) else f"{t:g}"
                            for t in ticks])
        ax.set_xlim(min(ticks) / 1.4, max(ticks) * 1.4)
    else:
        ticks = sorted(set(xs_all) | {ref_x})
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlabel(axis.xlabel, fontsize=9)
    ax.set_ylabel("final test accuracy (%)", fontsize=9)
    return handles, any_paper


def plot_axis(groups, axis, path) -> bool:
    """Accuracy vs ``axis`` (an ``Axis`` or its key), one line per series, the reference point (float32 /
    dense / full rank / no dropout) at its own tick, the paper's Table 1 numbers as open diamonds."""
    from matplotlib.lines import Line2D
    axis = AXIS[axis] if isinstance(axis, str) else axis
    series = []
    for s in axis_series(groups, axis):
        pts = [g for g in s.points if not math.isnan(g.mean)]
        ref = s.ref if s.ref is not None and not math.isnan(s.ref.mean) else None
        if pts:
            series.append(replace(s, points=pts, ref=ref))
    if not series:
        return False
    pct = axis.key == "dropout"
    xs_all = sorted({(100 * g.x if pct else g.x) for s in series for g in s.points})
    if axis.log2:
        ref_x = 32 if axis.key.endswith("bits") and max(xs_all) < 32 else 2 ** (math.ceil(math.log2(max(xs_all))) + 1)
    else:
        ref_x = 0
    if len(set(xs_all) | ({ref_x} if any(s.ref for s in series) else set())) < 2:
        return False
    ys_all = [g.mean for s in series for g in s.points + ([s.ref] if s.ref else [])]
    ys_all += [y for s in series for y in _paper_points(axis, s, pct, ref_x)[1]]
    hi = max(ys_all)
    high = [y for y in ys_all if y >= hi - 12]
    zoom = min(ys_all) < hi - 25 and len(high) >= 0.6 * len(ys_all)
    if zoom:   # a far-off failure squeezes the rest: a second panel zooms on the top
        fig, (ax, axz) = new_figure(12.5, 4.4, 1, 2)
    else:
        fig, ax = new_figure(8.2, 4.4)
        axz = None
    for a in [ax] + ([axz] if axz else []):
        handles, any_paper = _draw_axis(a, axis, series, pct, ref_x, xs_all)
    if zoom:
        axz.set_ylim(math.floor(min(high)) - 0.5, hi + 0.5)
        title(axz, "zoom on the top of the left panel", "")
    all_groups = [g for s in series for g in s.points + ([s.ref] if s.ref else [])]
    head, sub = axis.title.replace("Accuracy", "Test accuracy"), protocol_line(all_groups)
    if zoom:
        fig.suptitle(f"{head}\n{sub}", fontsize=10)
    else:
        title(ax, head, sub)
    handles.append(Line2D([], [], color="k", marker="o", ls="-", label="ours: mean ± sd over seeds"))
    if any_paper:
        handles.append(Line2D([], [], color="k", label="paper, Table 1 (100 epochs;\nsd where given)",
                              **PAPER_STYLE))
    if any(s.ref for s in series) and axis.log2:
        handles.append(Line2D([], [], color="k", ls=":", lw=1, label=f"link to the reference ({axis.ref_label})"))
    legend_outside(axz or ax, handles)
    if zoom:
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save(fig, path)


# --- training curves --------------------------------------------------------------------------
def _family(g) -> str:
    """The panel of a variant: its row tag's family, else what it varies (an untagged sparse run joins the
    sparse panel), else 'other'."""
    row, r = g.row, g.first
    for name, _ in FAMILIES:
        if row == name or row.startswith(name + "_"):
            return name
    for name, on in (("sparse", r.sparsity_n is not None), ("lowrank", r.rank is not None),
                     ("qerror", r.error_bits < 32), ("qupdate", r.update_bits < 32),
                     ("dropout", bool(r.dropout)), ("no_fprime", not r.fprime)):
        if on:
            return name
    return "other"


def _mean_curve(curves) -> list[float]:
    n = max(len(c) for c in curves)
    out = []
    for i in range(n):
        v = [c[i][1] for c in curves if len(c) > i and c[i][1] is not None]
        out.append(100 * sum(v) / len(v) if v else math.nan)
    return out


def plot_curves(groups, path) -> bool:
    """Test accuracy per epoch (mean over seeds), one panel per family of rows (baseline, sparse,
    quantized error, ...), colour = algorithm, line style = variant."""
    from matplotlib.ticker import MaxNLocator
    sel = [g for g in groups if g.curves and any(g.curves)]
    if not sel:
        return False
    fams = [(name, desc) for name, desc in FAMILIES if any(_family(g) == name for g in sel)]
    ncols = min(3, len(fams))
    nrows = math.ceil(len(fams) / ncols)
    fig, axes = new_figure(5.4 * ncols, 4.8 * nrows, nrows, ncols)
    axes = axes if isinstance(axes, list) else [axes]
    for ax, (name, desc) in zip(axes, fams):
        style_n: dict = {}
        for g in [g for g in sel if _family(g) == name]:
            k = style_n[g.algorithm] = style_n.get(g.algorithm, -1) + 1
            y = _mean_curve([c for c in g.curves if c])
            ax.plot(range(1, len(y) + 1), y, color=alg_color(g.algorithm), ls=LINESTYLES[k % len(LINESTYLES)],
                    lw=1.3, label=f"{short_label(g)} ({len(g.curves)} seeds)")
        ax.set_title(desc, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(ax.get_lines()) > 6:
            # A crowded panel: the legend goes under the axes, where it hides no curve.
            ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        else:
            ax.legend(fontsize=6.5, loc="best")
    for ax in axes[len(fams):]:
        ax.set_visible(False)
    fig.suptitle("Training curves: test accuracy after each epoch\n" + protocol_line(sel, "mean"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / fig.get_figheight()))   # room for the two-line title
    return save(fig, path)


# --- accuracy vs cost, Pareto front -----------------------------------------------------------
def _place_numbers(fig, ax, items, avoid) -> None:
    """Number points: try offsets around each point until the label's box overlaps no other label and no
    marker and stays inside the axes (a thin leader line joins a label set further off to its point)."""
    from matplotlib.transforms import Bbox
    renderer = fig.canvas.get_renderer()
    placed = list(avoid)
    box = ax.get_window_extent(renderer)
    offsets = [(6, 6), (6, -14), (-14, 6), (-14, -14), (12, 0), (-20, 0), (0, 12), (0, -20),
               (14, 16), (14, -24), (-24, 16), (-24, -24), (26, 4), (-34, 4), (4, 26), (4, -34)]

    def put(x, y, text, dx, dy):
        far = abs(dx) > 12 or abs(dy) > 12
        return ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                           color="#b00000", fontweight="bold", annotation_clip=False,
                           arrowprops=dict(arrowstyle="-", lw=0.6, color="#b00000", shrinkA=0, shrinkB=5)
                           if far else None)

    for x, y, text in items:
        best = None
        for dx, dy in offsets:
            t = put(x, y, text, dx, dy)
            tb = t.get_window_extent(renderer)
            bb = Bbox.from_extents(tb.x0 - 4, tb.y0 - 3, tb.x1 + 4, tb.y1 + 3)   # keep labels apart
            inside = box.x0 <= tb.x0 and tb.x1 <= box.x1 and box.y0 <= tb.y0 and tb.y1 <= box.y1
            hits = sum(bb.overlaps(p) for p in placed)
            score = hits + (0 if inside else 100)
            if best is None or score < best[0]:
                best = (score, dx, dy, bb)
            t.remove()
            if score == 0:
                break
        _, dx, dy, bb = best
        put(x, y, text, dx, dy)
        placed.append(bb)


def _cost_scale(ax, values) -> None:
    """Log axis when the costs span more than 1.5 decades; symlog (0 at the left, then powers of ten)
    when some variants cost nothing; linear otherwise."""
    from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, NullLocator
    pos = [x for x in values if x > 0]
    if not pos or max(pos) / min(pos) <= 30:
        return
    if min(values) > 0:
        ax.set_xscale("log")
        return
    lo = math.floor(math.log10(min(pos)))
    hi = math.ceil(math.log10(max(pos)))
    ax.set_xscale("symlog", linthresh=10 ** lo, linscale=0.5)
    ax.xaxis.set_major_locator(FixedLocator([0] + [10 ** k for k in range(lo, hi + 1)]))
    ax.xaxis.set_major_formatter(LogFormatterSciNotation(base=10, labelOnlyBase=False))
    ax.xaxis.set_minor_locator(NullLocator())


def _draw_cost(ax, pts, xs, front, ylo, ylim=None, xlim=None) -> None:
    """Scatter by algorithm (points below ``ylo`` as triangles on the bottom edge) and the front."""
    lo = ylo if ylim is None else ylim[0]
    for alg in dict.fromkeys(g.algorithm for g in pts):
        sel = [g for g in pts if g.algorithm == alg and g.mean >= lo]
        ax.scatter([xs[id(g)] for g in sel], [g.mean for g in sel], s=22, color=alg_color(alg), zorder=3,
                   edgecolors="white", linewidths=0.4)
        low = [g for g in pts if g.algorithm == alg and g.mean < lo and ylim is None]
        ax.scatter([xs[id(g)] for g in low], [lo + 0.35] * len(low), marker="v", s=30, color=alg_color(alg),
                   zorder=3)
    fx, fy = [xs[id(g)] for g in front], [g.mean for g in front]
    ax.step(fx, fy, where="post", color="#d00000", ls="--", lw=1.2, zorder=2)
    ax.scatter(fx, fy, s=110, facecolors="none", edgecolors="#d00000", linewidths=1.4, zorder=4)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:
        ax.set_ylim(bottom=ylo)
        ax.margins(y=0.08)
        ax.set_ylim(bottom=ylo)
    if xlim is not None:
        ax.set_xlim(*xlim)


def _cost_text(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else (f"{x:.3g}" if x else "0")


def plot_cost(groups, key: str, path) -> bool:
    """Mean accuracy vs a cost per example, coloured by algorithm, the Pareto front as a red staircase of
    ringed, numbered points listed beside the plot. Costs spanning decades get a log axis (symlog when
    some variants cost nothing); variants far below the front are drawn as triangles on the bottom edge.
    When all but the cheapest front points crowd into a sliver of a linear axis (total energy: the
    forward pass, common to all, dominates), a second panel zooms on them."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import Bbox
    pts = cost_points(groups, key)
    if len(pts) < 2:
        return False
    scale, unit = COST_UNITS.get(key, (1, ""))
    front = front_groups(groups, key)
    xs = {id(g): float(g.cost_of(key)) / scale for g in pts}
    span = max(xs.values()) - min(xs.values())
    fx = [xs[id(g)] for g in front]
    pos = [x for x in xs.values() if x > 0]
    linear = not pos or max(pos) / min(pos) <= 30
    zoom = linear and len(front) >= 4 and span > 0 and (fx[-1] - fx[1]) < 0.2 * span
    ylo = max(0.0, math.floor(min(g.mean for g in front) - 3))
    height = 4.6 + 0.12 * max(0, len(front) - 8)
    if zoom:
        fig, (ax, axz) = new_figure(11.5, height, 1, 2)
    else:
        fig, ax = new_figure(7.0, height)
        axz = None
    _cost_scale(ax, list(xs.values()))
    _draw_cost(ax, pts, xs, front, ylo)
    below = [g for g in pts if g.mean < ylo]
    xlabel = f"{COST_TITLES.get(key, key)} ({unit})"
    for a in [ax] + ([axz] if axz else []):
        a.set_xlabel(xlabel, fontsize=9)
        a.set_ylabel("final test accuracy (%), mean over seeds", fontsize=9)
    head = f"Test accuracy vs {COST_TITLES.get(key, key)}"
    sub = f"cost = {COST_INFO[key][1].partition(': ')[2] or COST_INFO[key][1]} (hw_models)\n" + \
        protocol_line(pts, "mean")
    if zoom:
        fig.suptitle(head + "\n" + sub, fontsize=10)
    else:
        title(ax, head, sub)
    numbered = [(ax, i) for i in range(len(front))]
    if zoom:
        zf = front[1:]
        zx = [xs[id(g)] for g in zf]
        near = [g for g in pts if zx[0] - 0.02 * span <= xs[id(g)] <= zx[-1] + 0.02 * span]
        x0, x1 = min(xs[id(g)] for g in near), max(xs[id(g)] for g in near)
        pad = 0.08 * (x1 - x0 or 1)
        y0 = math.floor(min(g.mean for g in zf) - 0.5)
        y1 = max(g.mean for g in near) + 0.3
        _draw_cost(axz, [g for g in near if g.mean >= y0], xs, zf, y0, ylim=(y0, y1),
                   xlim=(x0 - pad, x1 + pad))
        title(axz, "zoom on the grey box", "")
        ax.add_patch(Rectangle((x0 - pad, y0), x1 - x0 + 2 * pad, y1 - y0, fill=False, ec="0.4", lw=0.8, ls="-",
                               zorder=1))
        numbered = [(ax, 0)] + [(axz, i) for i in range(1, len(front))]
    handles = [Line2D([], [], color=alg_color(a), marker="o", ls="none", label=alg_name(a))
               for a in dict.fromkeys(g.algorithm for g in pts)]
    handles.append(Line2D([], [], color="#d00000", ls="--", marker="o", mfc="none", ms=9,
                          label="Pareto front: no other variant is\nboth cheaper and more accurate"))
    if below:
        handles.append(Line2D([], [], color="k", marker="v", ls="none",
                              label=f"{len(below)} variant(s) below {ylo:g}%\n(drawn on the bottom edge)"))
    last = axz or ax
    legend_outside(last, handles)
    fig.tight_layout()
    fig.canvas.draw()
    for a in [ax] + ([axz] if axz else []):
        idx = [i for b, i in numbered if b is a]
        disp = a.transData.transform([(xs[id(front[i])], front[i].mean) for i in idx]) if idx else []
        avoid = [Bbox.from_extents(x - 6, y - 6, x + 6, y + 6) for x, y in disp]
        _place_numbers(fig, a, [(xs[id(front[i])], front[i].mean, str(i + 1)) for i in idx], avoid)
    word = {"lc_ops": "ops", "wires": "wires"}.get(key, unit)
    lines = [f"{i + 1}. {short_label(g)}: {g.mean:.1f}% at {_cost_text(float(g.cost_of(key)) / scale)} {word}"
             for i, g in enumerate(front)]
    renderer = fig.canvas.get_renderer()
    leg = last.get_legend().get_window_extent(renderer).transformed(last.transAxes.inverted())
    last.text(1.02, leg.y0 - 0.04, "Pareto front, cheapest first:\n" + "\n".join(lines), transform=last.transAxes,
              va="top", ha="left", fontsize=7.5)
    return save(fig, path)


# --- learning diagnostics: alignment angles per layer over epochs ---------------------------------
LAYER_COLORS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#b8a000", "#e5731b", "#c1121f")


def layer_name(k: int, n_layers: int) -> str:
    """'W1' .. 'W4', 'top' for weight layer k of n (k = n-1 is the output layer)."""
    return "top" if k == n_layers - 1 else f"W{k + 1}"


def mean_series(runs_rows: list, metric: str, layer: int) -> tuple[list[int], list[float]]:
    """(epochs, mean over runs) of ``metric`` at ``layer`` from each run's ``LayerDiagnostics`` rows;
    NaN where no run has a finite value."""
    by_epoch: dict = {}
    for rows in runs_rows:
        for d in rows:
            v = d.values.get(metric)
            if d.layer == layer and v is not None:
                by_epoch.setdefault(d.epoch, []).append(v)
    epochs = sorted(by_epoch)
    means = []
    for e in epochs:
        finite = [v for v in by_epoch[e] if math.isfinite(v)]
        means.append(sum(finite) / len(finite) if finite else math.nan)
    return epochs, means


def plot_alignment(panels: list, path, head: str = "Alignment with BP's gradient", sub: str = "",
                   ncols: int = 4) -> bool:
    """One panel per entry ``(title, algorithm, [rows of each run])``: the angle between each layer's
    update and BP's gradient over epochs (solid, mean over runs) and between its feedback matrix and
    BP's (dotted), 0-180 degrees, 90 = orthogonal (dashed). An entry None leaves its slot empty (so
    that columns stay one algorithm each)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    panels = [p if p is not None and any(p[2]) else None for p in panels]
    while panels and panels[-1] is None:
        panels.pop()
    if not panels:
        return False
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(3.6 * ncols, 2.9 * nrows + 0.6, nrows, ncols)
    fig.set_layout_engine("constrained")     # room for the title and the legend right of the first row
    axes = axes if isinstance(axes, list) else [axes]
    n_layers = max(d.layer for p in panels if p is not None for rows in p[2] for d in rows) + 1
    for ax, panel in zip(axes, panels):
        if panel is None:
            ax.set_visible(False)
            continue
        text, alg, runs_rows = panel
        for k in range(n_layers):
            color = LAYER_COLORS[k % len(LAYER_COLORS)]
            for metric, ls in (("update_angle", "-"), ("feedback_angle", ":")):
                x, y = mean_series(runs_rows, metric, k)
                if any(math.isfinite(v) for v in y):
                    ax.plot(x, y, color=color, ls=ls, lw=1.4 if ls == "-" else 1.1)
        ax.axhline(90, color="0.5", ls="--", lw=0.8)
        ax.set_ylim(-5, 185)
        ax.set_yticks([0, 45, 90, 135, 180])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(textwrap.fill(text, 44), fontsize=8.5, color=alg_color(alg))
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("angle to BP (degrees)", fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=LAYER_COLORS[k % len(LAYER_COLORS)], lw=1.6, label=layer_name(k, n_layers))
               for k in range(n_layers)]
    handles += [Line2D([], [], color="k", ls="-", label="update of W[k] vs BP's gradient"),
                Line2D([], [], color="k", ls=":", label="feedback matrix vs BP's (W^T above; SRBP:\nthe product "
                       "of the forward matrices above)")]
    legend_outside(axes[min(ncols, len(panels)) - 1], handles)
    fig.suptitle(head + (f"\n{sub}" if sub else ""), fontsize=10)
    return save(fig, path)


def write_plots(groups, out_dir) -> list[str]:
    out_dir = Path(out_dir)
    names = []
    for axis in AXES:
        name = f"acc_vs_{axis.key}.png"
        if plot_axis(groups, axis, out_dir / name):
            names.append(name)
    if plot_curves(groups, out_dir / "curves.png"):
        names.append("curves.png")
    for key in (k for k in COST_KEYS if k not in MAXIMIZED):
        name = f"acc_vs_cost_{key}.png"
        if plot_cost(groups, key, out_dir / name):
            names.append(name)
    return names
