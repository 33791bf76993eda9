"""A hardware budget: energy (dynamic and leakage), latency, throughput, area and off-chip traffic of one
training configuration on an architecture template, from plain inputs (no training code):

    b = hardware_budget(actions, memory, layers, links, wires, batch, arch, table)
    b.summary["latency"]["time_per_example_s"], b.summary["area"]["total_mm2"], b.summary["tops_per_w"]
    b.to_json(), b.to_csv(), b.to_markdown(); hw_models.exports.accelergy_yaml(b), neurosim_csv(b)

Pipeline: (1) the dataflow transforms the actions and storage (``dataflow.py``); (2) a first schedule with
all state on chip gives the examples in flight of a pipeline, which multiply the activations and signals
held; (3) the state is placed in SRAM or DRAM (``offchip.py``) and off-chip accesses become DRAM actions;
(4) every action is priced (energy table; DRAM at the template's pJ/bit; registers as the table's SRAM
rule at its size floor, its register-file stand-in); (5) the final schedule gives latency and throughput
(``latency.py``); (6) area and leakage power (``area.py``); leakage energy per example = leakage power x
minibatch latency / batch.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field

from .architecture import Architecture
from .area import AreaReport, area_report, hold_in_flight
from .budget_report import budget_markdown
from .dataflow import apply_dataflow
from .latency import LatencyReport, arithmetic_ops, schedule
from .offchip import Placement, place_state, split_offchip
from .records import ARITH_OPS, NEUROSIM_PHASE, PHASES, wire_actions
from .report import price_actions

BUDGET_SCHEMA = "1.1"


def price_action(a, table, arch: Architecture, activity=None) -> tuple[float, str]:
    """pJ per unit of one action and the rule that set it."""
    if a.dtype == "dram":
        return arch.dram_pj_per_bit, f"DRAM {arch.dram_pj_per_bit:g} pJ/bit (architecture {arch.name})"
    if a.dtype == "reg":
        e, rule = table.price(a.op, "sram", capacity_bytes=a.capacity_bytes)
        return e, "register file: " + rule
    return table.price(a.op, a.dtype, a.bits_a, a.bits_b, a.capacity_bytes, activity)


def energy_category(row) -> str:
    if row.op in ARITH_OPS:
        return "compute"
    return {"sram": "sram", "reg": "register", "dram": "dram", "lfsr": "rng", "wire": "wire"}.get(row.dtype, "other")


@dataclass
class HardwareBudget:
    meta: dict
    rows: list                  # report.CostRow per priced action (per example)
    latency: LatencyReport
    area: AreaReport
    placement: Placement
    memory: list                # storage records as the dataflow and pipeline scale them
    summary: dict
    notes: list = field(default_factory=list)

    def energy(self, **match) -> float:
        return sum(r.energy_pj for r in self.rows if all(getattr(r, k) == v for k, v in match.items()))

    def layer_phase_table(self) -> list[dict]:
        """One row per (tile, phase): latency per example (s), dynamic energy per example (pJ) and their parts."""
        out = []
        layers = sorted({r.layer for r in self.rows} | {s.layer for s in self.latency.steps})
        for h in layers:
            for p in PHASES:
                rows = [r for r in self.rows if r.layer == h and r.phase == p]
                steps = [s for s in self.latency.steps if s.layer == h and s.phase == p]
                if not rows and not steps:
                    continue
                per = {c: sum(r.energy_pj for r in rows if energy_category(r) == c)
                       for c in ("compute", "sram", "register", "dram", "rng", "wire")}
                scale = {s.scope: (self.latency.batch if s.scope == "minibatch" else 1) for s in steps}
                sec = lambda attr: sum(getattr(s, attr) / scale[s.scope] for s in steps) / self.latency.clock_hz  # noqa: E731
                out.append({"layer": h, "phase": p, "neurosim_phase": NEUROSIM_PHASE[p],
                            "latency_s": self.latency.phase_seconds(h, p), "energy_pj": sum(r.energy_pj for r in rows),
                            **{f"energy_{c}_pj": v for c, v in per.items()},
                            "compute_s": sec("compute_cycles"), "sram_s": sec("sram_cycles"),
                            "dram_s": sec("dram_cycles"), "rng_s": sec("rng_cycles"),
                            "bound": "/".join(sorted({s.bound for s in steps})) or "none",
                            "scope": "/".join(sorted({s.scope for s in steps})) or "example"})
        return out

    def to_dict(self) -> dict:
        return {"schema_version": BUDGET_SCHEMA, "meta": self.meta, "summary": self.summary,
                "layer_phase": self.layer_phase_table(), "latency": self.latency.to_dict(), "area": self.area.to_dict(),
                "placement": asdict(self.placement), "rows": [asdict(r) for r in self.rows], "notes": self.notes}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_csv(self) -> str:
        """The per-(tile, phase) table, one row each, with a header (columns: SCHEMA.md)."""
        table = self.layer_phase_table()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(table[0]) if table else ["layer"], lineterminator="\n")
        w.writeheader()
        w.writerows(table)
        return buf.getvalue()

    def to_markdown(self) -> str:
        return budget_markdown(self)


def hardware_budget(actions, memory, layers, links, wires, batch: int, arch: Architecture, table, *,
                    dataflow: str | None = None, activity=None, meta: dict | None = None) -> HardwareBudget:
    """The budget of one training configuration (one example's ``actions``, per-minibatch work / batch)."""
    L = len(layers)
    df = apply_dataflow(list(actions) + wire_actions(wires), memory, layers, batch, arch, dataflow)
    first = schedule(df.actions, L, links, batch, arch, df.dataflow)
    held = hold_in_flight(df.memory, first.in_flight)
    placement = place_state(df.actions, held, arch.sram_capacity_bits, arch.dram_enabled)
    final_actions = split_offchip(df.actions, placement)
    label = (meta or {}).get("variant", "")
    rows, _ = price_actions(final_actions, table, activity, algorithm=(meta or {}).get("algorithm", ""), variant=label,
                            layer_name=lambda h: f"layer{h}", price=lambda a: price_action(a, table, arch, activity))
    lat = schedule(final_actions, L, links, batch, arch, df.dataflow)
    area = area_report(final_actions, held, L, wires, arch, placement)
    summary = _summary(rows, final_actions, lat, area, placement)
    notes = df.notes + placement.notes + lat.notes + area.notes + list(arch.notes)
    m = {"schema_version": BUDGET_SCHEMA, "architecture": arch.metadata(), "dataflow": df.dataflow,
         "pipeline": arch.pipeline, "overlap_update": arch.overlap_update, "batch_size": batch,
         "energy_table": table.metadata() if hasattr(table, "metadata") else str(table),
         "dataflow_reuse": df.reuse, "assumptions": ASSUMPTIONS, **(meta or {})}
    return HardwareBudget(m, rows, lat, area, placement, held, summary, notes)


ASSUMPTIONS = (
    "One tile per neuron layer; tile h runs every step of weight layer h (forward, its learning channel, its "
    "weight gradient and update) on its own PEs, one step after another.",
    "Step time = the slowest of compute (PEs), SRAM bandwidth (banks x width x ports of the busiest array), random "
    "bits (LFSR) and DRAM bandwidth; control, instruction and synchronisation overheads are not modelled.",
    "Wires are pipelined point-to-point links: no latency, energy per bit and mm from the energy table.",
    "Leakage energy per example = (SRAM bits x leakage per bit + logic area x leakage per area) x minibatch "
    "latency / batch; the chip is never power-gated.",
    "State that does not fit the SRAM capacity spills to DRAM by storage kind (most accesses per bit stay on chip); "
    "accesses are spread evenly over a kind's bits.",
    "TOPS counts every arithmetic operation (a MAC is a multiply and an add: 2 operations); TOPS/W = operations per "
    "example / total energy per example.",
)


def _summary(rows, actions, lat: LatencyReport, area: AreaReport, placement: Placement) -> dict:
    dyn = {p: sum(r.energy_pj for r in rows if r.phase == p) for p in PHASES}
    dynamic = sum(dyn.values())
    leak_pj = area.leakage_w * lat.time_per_example_s * 1e12
    total = dynamic + leak_pj
    split = {}
    for r in rows:
        c = energy_category(r)
        split[c] = split.get(c, 0.0) + r.energy_pj
    split["leakage"] = leak_pj
    ops = arithmetic_ops(actions)
    thr = lat.throughput_eps
    dram_bits = sum(r.count for r in rows if r.dtype == "dram")
    return {
        "energy_per_example_pj": {**dyn, "dynamic": dynamic, "leakage": leak_pj, "total": total},
        "energy_split_pj": split,
        "latency": {"example_latency_s": lat.example_latency_s, "minibatch_latency_s": lat.minibatch_latency_s,
                    "time_per_example_s": lat.time_per_example_s, "throughput_examples_per_s": thr,
                    "interval_s": lat.interval_cycles / lat.clock_hz, "minibatch_bound": lat.minibatch_bound,
                    "critical_path": lat.critical_path},
        "ops_per_example": ops,
        "tops": ops * thr * 1e-12,
        "tops_per_w": ops / total if total else 0.0,
        "power_w": total * 1e-12 * thr,
        "area": {"total_mm2": area.total_mm2, "by_category_mm2": area.by_category_mm2(),
                 "by_component_mm2": area.by_component_mm2()},
        "leakage_w": area.leakage_w,
        "memory": {"state_bits": placement.total_state_bits, "onchip_bits": placement.onchip_bits,
                   "offchip_bits": placement.offchip_bits, "sram_bits": placement.sram_bits},
        "dram": {"bits_per_example": dram_bits, "energy_pj_per_example": split.get("dram", 0.0)},
    }


def inference_view(actions, memory, wires):
    """The forward pass alone (an inference chip): forward actions and wires, weights and pool switches
    stored, no links. Returns (actions, memory, wires, links)."""
    return ([a for a in actions if a.phase == "forward"], [m for m in memory if m.what in ("weights", "pool_switches")],
            [g for g in wires if g.phase == "forward"], [])
