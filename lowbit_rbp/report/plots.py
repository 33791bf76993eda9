"""PNG plots (matplotlib Agg) of grouped sweep results: accuracy vs an axis per algorithm, training
curves, accuracy vs cost with the Pareto front."""
from __future__ import annotations

import math
from pathlib import Path

from .tables import COST_KEYS, axis_groups, pareto_front

AXES = (("error_bits", "error bits"), ("update_bits", "update bits"), ("sparsity_n", "sparsity n (non-zeros)"),
        ("rank", "feedback rank"), ("dropout", "learning-channel dropout"))


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_axis(groups, axis: str, xlabel: str, path) -> bool:
    pts = [g for g in axis_groups(groups, axis) if not math.isnan(g["mean"])]
    # Baselines (dense / no dropout) sit at x = 0 on the sparsity, rank and dropout axes.
    pts = [{**g, axis: 0 if g[axis] is None else g[axis]} for g in pts]
    if len({g[axis] for g in pts}) < 2:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for alg in sorted({g["algorithm"] for g in pts}):
        sel = sorted((g for g in pts if g["algorithm"] == alg), key=lambda g: g[axis])
        xs = [g[axis] for g in sel]
        ax.errorbar(xs, [g["mean"] for g in sel], yerr=[0 if math.isnan(g["sd"]) else g["sd"] for g in sel],
                    marker="o", capsize=3, label=alg)
    return _save_accuracy_plot(fig, ax, xlabel, path)


def plot_curves(groups, path) -> bool:
    sel = [g for g in groups if g["curves"]]
    if not sel:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for g in sel:
        n = max(len(c) for c in g["curves"])
        mean = []
        for i in range(n):
            v = [c[i][1] for c in g["curves"] if len(c) > i and c[i][1] is not None]
            mean.append(100 * sum(v) / len(v) if v else math.nan)
        ax.plot(range(1, n + 1), mean, label=g["label"][:40])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy % (mean over seeds)")
    if len(sel) <= 12:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_cost(groups, key: str, path) -> bool:
    pts = [g for g in groups if g.get(key) is not None and not math.isnan(g["mean"])]
    if len(pts) < 2:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xy = [(float(g[key]), g["mean"]) for g in pts]
    ax.scatter([x for x, _ in xy], [y for _, y in xy], s=14, label="variants")
    front = pareto_front(xy)
    ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "r-o", ms=5, label="Pareto front")
    if min(x for x, _ in xy) > 0:
        ax.set_xscale("log")
    return _save_accuracy_plot(fig, ax, key, path)


def write_plots(groups, out_dir) -> list[str]:
    out_dir = Path(out_dir)
    names = []
    for axis, label in AXES:
        name = f"acc_vs_{axis}.png"
        if plot_axis(groups, axis, label, out_dir / name):
            names.append(name)
    if plot_curves(groups, out_dir / "curves.png"):
        names.append("curves.png")
    for key in COST_KEYS:
        name = f"acc_vs_cost_{key}.png"
        if plot_cost(groups, key, out_dir / name):
            names.append(name)
    return names


def _save_accuracy_plot(fig, ax, xlabel: str, path) -> bool:
    """Label an accuracy-vs-something axis, save the figure as PNG and close it."""
    import matplotlib.pyplot as plt
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy %")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
