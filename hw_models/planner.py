"""Budget planner: "the cheapest configuration reaching X % accuracy, minimizing energy, area or latency",
under optional limits on latency, area, energy and throughput. A pure function of plain records; where
the records come from (a results store, a sweep) is the caller's business.

    recs = [BudgetRecord("SRBP 8-bit", 97.1, energy_pj=2.1e6, area_mm2=3.2, latency_s=2e-5,
                         throughput_eps=5e4), ...]
    choice = cheapest(recs, min_accuracy=97.0, minimize="energy", max_area_mm2=5.0)
    choice.record.label, choice.breakdown, choice.reason
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import CostModelError

OBJECTIVES = {"energy": "energy_pj", "area": "area_mm2", "latency": "latency_s"}


@dataclass(frozen=True)
class BudgetRecord:
    """One configuration's accuracy (%) and hardware cost: energy per training example (pJ), chip area
    (mm^2), time per training example (s) and throughput (examples per s); ``breakdown``: anything to
    show beside it (energy by phase, area by component, ...)."""

    label: str
    accuracy: float
    energy_pj: float
    area_mm2: float
    latency_s: float
    throughput_eps: float
    breakdown: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label:
            raise CostModelError(f"budget record label: got {self.label!r}; allowed: a non-empty string")
        for name in ("accuracy", "energy_pj", "area_mm2", "latency_s", "throughput_eps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
                raise CostModelError(f"budget record {self.label!r}: {name} = {v!r}; allowed: a number >= 0")

    @classmethod
    def from_budget(cls, label: str, accuracy: float, budget) -> "BudgetRecord":
        """A record from a ``HardwareBudget`` (its summary)."""
        s = budget.summary
        return cls(label, accuracy, s["energy_per_example_pj"]["total"], s["area"]["total_mm2"],
                   s["latency"]["time_per_example_s"], s["latency"]["throughput_examples_per_s"],
                   {"energy_per_example_pj": dict(s["energy_per_example_pj"]),
                    "area_mm2": dict(s["area"]["by_category_mm2"]), "latency": dict(s["latency"])})


@dataclass(frozen=True)
class PlanChoice:
    record: BudgetRecord
    minimize: str
    candidates: int         # records meeting every constraint
    considered: int         # records given
    reason: str

    @property
    def breakdown(self) -> dict:
        r = self.record
        return {"label": r.label, "accuracy": r.accuracy, "energy_pj": r.energy_pj, "area_mm2": r.area_mm2,
                "latency_s": r.latency_s, "throughput_eps": r.throughput_eps, **r.breakdown}


def cheapest(records, min_accuracy: float, minimize: str = "energy", *, max_energy_pj: float | None = None,
             max_area_mm2: float | None = None, max_latency_s: float | None = None,
             min_throughput_eps: float | None = None) -> PlanChoice:
    """The record with the lowest ``minimize`` (energy | area | latency) among those reaching
    ``min_accuracy`` and every given limit; ties go to the higher accuracy, then the label."""
    if minimize not in OBJECTIVES:
        raise CostModelError(f"planner objective: got {minimize!r}; allowed: {', '.join(OBJECTIVES)}")
    records = list(records)
    if not records:
        raise CostModelError("planner: no configurations to choose from")
    limits = [("accuracy", min_accuracy, lambda r: r.accuracy >= min_accuracy)]
    for name, value, test in (("energy_pj", max_energy_pj, lambda r: r.energy_pj <= max_energy_pj),
                              ("area_mm2", max_area_mm2, lambda r: r.area_mm2 <= max_area_mm2),
                              ("latency_s", max_latency_s, lambda r: r.latency_s <= max_latency_s),
                              ("throughput_eps", min_throughput_eps, lambda r: r.throughput_eps >= min_throughput_eps)):
        if value is not None:
            limits.append((name, value, test))
    ok = [r for r in records if all(test(r) for _, _, test in limits)]
    if not ok:
        best = max(records, key=lambda r: r.accuracy)
        said = ", ".join(f"{n} {'>=' if n in ('accuracy', 'throughput_eps') else '<='} {v:g}" for n, v, _ in limits)
        raise CostModelError(f"planner: none of {len(records)} configurations meets {said}; the most accurate is "
                             f"{best.label!r} at {best.accuracy:g}%")
    key = OBJECTIVES[minimize]
    pick = min(ok, key=lambda r: (getattr(r, key), -r.accuracy, r.label))
    reason = (f"{pick.label!r}: lowest {minimize} ({getattr(pick, key):.4g}) of {len(ok)} configuration(s) reaching "
              f"{min_accuracy:g}% accuracy" + (" within the limits" if len(limits) > 1 else ""))
    return PlanChoice(pick, minimize, len(ok), len(records), reason)
