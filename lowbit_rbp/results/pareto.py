"""Pareto dominance, non-dominated sorting and the hypervolume, for objective vectors to minimise.

A search prunes by non-dominated rank (``lowbit_rbp.results.search``); the search-vs-grid report
measures fronts by their hypervolume (``lowbit_rbp.report.search_report``). Maximised objectives
are negated (or turned into a loss, such as error = 100 - accuracy) before they get here.
"""
from __future__ import annotations

from ..errors import bad_value


def dominates(a, b) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one (minimisation)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def nondominated_ranks(points: list) -> list[int]:
    """The non-dominated sorting rank of each point: 0 for the points no other dominates, 1 for
    those only rank-0 points dominate, and so on (NSGA-II's fronts)."""
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    rank = 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def front(points: list) -> list[int]:
    """Indices of the non-dominated points, in input order (equal points all stay)."""
    return [i for i, r in enumerate(nondominated_ranks(points)) if r == 0]


def hypervolume(points: list, ref) -> float:
    """The volume dominated by ``points`` and bounded by the reference point ``ref`` (exact, by
    slicing along the last objective). Points not strictly better than ``ref`` in every objective
    add nothing."""
    ref = tuple(float(r) for r in ref)
    if not ref:
        raise bad_value("hypervolume reference point", ref, "at least one objective")
    pts = []
    for p in points:
        p = tuple(float(x) for x in p)
        if len(p) != len(ref):
            raise bad_value("hypervolume point", p, f"{len(ref)} objectives like the reference point")
        if all(x < r for x, r in zip(p, ref)):
            pts.append(p)
    return _hv(pts, ref)


def _hv(pts: list, ref: tuple) -> float:
    if not pts:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in pts)
    if len(ref) == 2:
        volume, best_y = 0.0, ref[1]
        for x, y in sorted(pts):
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    # A slab per distinct last coordinate: the lower-dimensional volume of every point at or below it.
    pts = sorted(pts, key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        if top > p[-1]:
            below = [q[:-1] for q in pts[:i + 1]]
            volume += _hv([below[j] for j in front(below)], ref[:-1]) * (top - p[-1])
    return volume
