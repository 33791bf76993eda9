"""Cost reports: plain records (dataclasses) with units and a schema version, their JSON and CSV
exports, and the pricing of counted actions with an energy table.

``lowbit_rbp.cost.cost_report(cfg)`` counts one training example of a run config and builds a
``CostReport`` from these records (its summary and Markdown rendering live there, beside the
counts they summarize).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, fields

from .energy import EnergyTable
from .floorplan import WireGroup
from .records import NEUROSIM_PHASE, Action

SCHEMA_VERSION = "1.0"
UNITS = {"count": "op | bit | bit_mm (see unit)", "energy_pj": "pJ per training example",
         "length": "mm", "memory": "bits", "per_epoch": "J", "per_run": "J"}


@dataclass(frozen=True)
class CostRow:
    """One priced action of one training example (long format)."""

    algorithm: str
    variant: str
    layer: int
    layer_name: str
    phase: str
    neurosim_phase: str
    what: str
    op: str
    dtype: str
    bits_a: int
    bits_b: int
    count: float
    unit: str
    capacity_bytes: float
    energy_per_unit_pj: float
    energy_pj: float
    rule: str


@dataclass(frozen=True)
class WireRow:
    algorithm: str
    variant: str
    phase: str
    sender_tile: int
    receiver_tile: int
    connections: float
    links: float
    length_mm: float
    total_length_mm: float
    traversals: float
    bits: int
    bits_moved: float
    bit_mm: float
    energy_pj: float


@dataclass(frozen=True)
class MemoryRow:
    algorithm: str
    variant: str
    layer: int
    what: str
    kind: str
    bits: float
    nnz: float
    note: str


@dataclass
class CostReport:
    meta: dict
    rows: list
    wires: list
    memory: list
    summary: dict
    anchors: list = field(default_factory=list)

    # --- queries ------------------------------------------------------------------------------
    def select(self, **match) -> list:
        """Rows whose fields equal the given values (a callable value is used as a predicate)."""
        out = []
        for r in self.rows:
            ok = True
            for k, v in match.items():
                x = getattr(r, k)
                if callable(v):
                    ok = ok and bool(v(x))
                else:
                    ok = ok and x == v
            if ok:
                out.append(r)
        return out

    def count(self, **match) -> float:
        return sum(r.count for r in self.select(**match))

    def energy(self, **match) -> float:
        return sum(r.energy_pj for r in self.select(**match))

    # --- exports ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "meta": self.meta, "summary": self.summary,
                "rows": [asdict(r) for r in self.rows], "wires": [asdict(w) for w in self.wires],
                "memory": [asdict(m) for m in self.memory], "anchors": self.anchors}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_json_default)

    def to_csv(self) -> str:
        """The priced actions in long format, one per line, with a header (columns: SCHEMA.md)."""
        buf = io.StringIO()
        names = [f.name for f in fields(CostRow)]
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        for r in self.rows:
            w.writerow([_fmt_csv(getattr(r, n)) for n in names])
        return buf.getvalue()


def _json_default(o):
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _fmt_csv(v):
    if isinstance(v, float):
        return repr(v) if not v.is_integer() else str(int(v)) if abs(v) < 1e15 else repr(v)
    return v


def price_actions(actions: list[Action], table: EnergyTable, activity, *, algorithm: str, variant: str,
                  layer_name, price=None) -> tuple[list[CostRow], list[str]]:
    """One priced ``CostRow`` per action, and the pricing rules used (in first-use order).
    ``layer_name(layer)`` names a layer for the rows; ``price(action) -> (pJ per unit, rule)``
    replaces the energy table's own pricing (the budget's DRAM and register actions)."""
    rules = {}
    rows = []
    for a in actions:
        unit_e, rule = price(a) if price is not None else table.price(a.op, a.dtype, a.bits_a, a.bits_b,
                                                                      a.capacity_bytes, activity)
        rules.setdefault(rule, None)
        rows.append(CostRow(algorithm, variant, a.layer, layer_name(a.layer), a.phase, NEUROSIM_PHASE[a.phase],
                            a.what, a.op, a.dtype, a.bits_a, a.bits_b, a.count, a.unit, a.capacity_bytes, unit_e,
                            a.count * unit_e, rule))
    return rows, list(rules)


def price_wires(groups: list[WireGroup], table: EnergyTable, activity, *, algorithm: str, variant: str,
                layer_name) -> tuple[list[WireRow], list[CostRow], str]:
    """The wire groups priced per bit and millimetre: ``WireRow``s, the matching ``CostRow``s (unit
    bit_mm, at the receiving tile's layer) and the pricing rule."""
    wire_e, rule = table.price("wire", "wire", activity=activity)
    wires, rows = [], []
    for g in groups:
        e = g.bit_mm * wire_e
        wires.append(WireRow(algorithm, variant, g.phase, g.sender, g.receiver, g.connections, g.links, g.length_mm,
                             g.total_length_mm, g.traversals, g.bits, g.bits_moved, g.bit_mm, e))
        if g.bit_mm > 0:
            rows.append(CostRow(algorithm, variant, g.receiver, layer_name(g.receiver), g.phase,
                                NEUROSIM_PHASE[g.phase], f"wires_from_tile_{g.sender}", "wire", "wire", g.bits, 0,
                                g.bit_mm, "bit_mm", 0.0, wire_e, e, rule))
    return wires, rows, rule
