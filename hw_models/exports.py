"""Exports of a hardware budget for peer tools, and readers for them (round trip).

Accelergy style (``accelergy_yaml``): one YAML document with the four tables Accelergy/Timeloop use,
``action_counts`` (per training example), ``ERT`` (pJ per action, the energy table's price), ``ART``
(um^2 per component) and ``energy_estimation`` (pJ per component per example), in Accelergy's v0.3
layout (``local`` list of ``name`` / ``action_counts`` with ``name``, ``arguments``, ``counts``;
``tables`` of ``name`` / ``actions`` with ``energy``; ``tables`` of ``name`` / ``area``), plus a
``lowbit_rbp`` block naming the schema, units, dataflow and schedule. Components: ``chip.tile<h>.pe``
(the tile's PE array: multiplies, adds, ...), ``chip.tile<h>.<storage>`` (SRAM arrays, registers),
``chip.tile<h>.lfsr``, ``chip.tile<h>.wires_forward`` / ``wires_backward`` (links into the tile), and
``chip.dram``. Action names are ``<op>`` with ``arguments`` {phase, dtype, bits_a, bits_b, capacity_bytes}.

NeuroSim style (``neurosim_csv``): DNN+NeuroSim V2.1's training breakdown file layout (its
``main.cpp``): a chip-area block, a per-layer block with its column names (``layer_number,
latency_FW(s), latency_AG(s), latency_WG(s), latency_WU(s), energy_FW(J), ...``) and a ``Total`` row, and
a chip block ``TOPS/W,FPS,TOPS``. SI units. Columns NeuroSim has and this model has no counterpart for
(ADC, CIM array, Peak values) are left out; columns this model adds are listed in SCHEMA.md.
"""
from __future__ import annotations

import csv
import io

import yaml

from .errors import CostModelError
from .records import ARITH_OPS

ACCELERGY_VERSION = 0.3
NEUROSIM_AREA_COLUMNS = ["Total Area(m^2)", "Routing Area(m^2)", "Accumulation Area(m^2)",
                         "Other Logic&Storage Area(m^2)"]
NEUROSIM_PHASES = (("FW", "forward"), ("AG", "error_projection"), ("WG", "weight_gradient"), ("WU", "weight_update"))
NEUROSIM_LAYER_COLUMNS = (["layer_number"] + [f"latency_{p}(s)" for p, _ in NEUROSIM_PHASES]
                          + [f"energy_{p}(J)" for p, _ in NEUROSIM_PHASES]
                          + ["Buffer_latency(s)", "IC_latency(s)", "Weight_gradient_latency(s)", "Weight_update(s)",
                             "DRAM_latency(s)", "Buffer_energy(J)", "IC_energy(J)", "Weight_gradient_energy(J)",
                             "Weight_update_energy(J)", "DRAM_energy(J)",
                             # not NeuroSim columns (documented in SCHEMA.md):
                             "latency_CU(s)", "energy_CU(J)", "leakageEnergy(J)"])
NEUROSIM_CHIP_COLUMNS = ["TOPS/W", "FPS", "TOPS"]


# ------------------------------------------------------------------------------------------------
# Accelergy

def component_of(row) -> str:
    """Accelergy component of one priced action."""
    if row.op in ARITH_OPS:
        return f"chip.tile{row.layer}.pe"
    if row.dtype == "dram":
        return "chip.dram"
    if row.dtype == "lfsr":
        return f"chip.tile{row.layer}.lfsr"
    if row.dtype == "wire":
        return f"chip.tile{row.layer}.wires_{'forward' if row.phase == 'forward' else 'backward'}"
    return f"chip.tile{row.layer}.{row.what}"


def area_component(item) -> str:
    if item.layer == 0:
        return f"chip.{item.component}"
    return f"chip.tile{item.layer}.{item.component}"


def _arguments(row) -> dict:
    return {"phase": row.phase, "dtype": row.dtype, "bits_a": int(row.bits_a), "bits_b": int(row.bits_b),
            "capacity_bytes": float(row.capacity_bytes)}


def accelergy_yaml(budget) -> str:
    counts, ert, energy = {}, {}, {}
    for r in budget.rows:
        comp = component_of(r)
        args = _arguments(r)
        key = (comp, r.op, tuple(sorted(args.items())))
        counts[key] = counts.get(key, 0.0) + r.count
        ert[key] = r.energy_per_unit_pj
        energy[comp] = energy.get(comp, 0.0) + r.energy_pj
    local, tables = {}, {}
    for (comp, op, args), n in counts.items():
        local.setdefault(comp, []).append({"name": op, "arguments": dict(args), "counts": n})
        tables.setdefault(comp, []).append({"name": op, "arguments": dict(args), "energy": ert[(comp, op, args)]})
    area = {}
    for i in budget.area.items:
        comp = area_component(i)
        area[comp] = area.get(comp, 0.0) + i.um2
    doc = {
        "lowbit_rbp": {"schema_version": budget.meta["schema_version"], "variant": budget.meta.get("variant", ""),
                       "units": {"counts": "per training example (per-minibatch work / batch)",
                                 "energy": "pJ", "area": "um^2"},
                       "dataflow": budget.meta["dataflow"], "pipeline": budget.meta["pipeline"],
                       "architecture": budget.meta["architecture"]["name"],
                       "energy_table": (budget.meta["energy_table"] or {}).get("name", "")
                       if isinstance(budget.meta["energy_table"], dict) else str(budget.meta["energy_table"]),
                       "leakage_pj_per_example": budget.summary["energy_per_example_pj"]["leakage"]},
        "action_counts": {"version": ACCELERGY_VERSION,
                          "local": [{"name": c, "action_counts": a} for c, a in sorted(local.items())]},
        "ERT": {"version": ACCELERGY_VERSION, "tables": [{"name": c, "actions": a} for c, a in sorted(tables.items())]},
        "ART": {"version": ACCELERGY_VERSION, "tables": [{"name": c, "area": a} for c, a in sorted(area.items())]},
        "energy_estimation": {"version": ACCELERGY_VERSION,
                              "components": [{"name": c, "energy": e} for c, e in sorted(energy.items())]},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def parse_accelergy(text: str) -> dict:
    """Counts, ERT, ART and energy of an ``accelergy_yaml`` document, keyed by (component, action, arguments)."""
    doc = yaml.safe_load(text)
    for key in ("action_counts", "ERT", "ART", "energy_estimation"):
        if not isinstance(doc, dict) or key not in doc:
            raise CostModelError(f"Accelergy document: missing top-level key {key!r}")

    def k(comp, a):
        return comp, a["name"], tuple(sorted((a.get("arguments") or {}).items()))
    counts = {k(c["name"], a): float(a["counts"]) for c in doc["action_counts"]["local"] for a in c["action_counts"]}
    ert = {k(t["name"], a): float(a["energy"]) for t in doc["ERT"]["tables"] for a in t["actions"]}
    return {"counts": counts, "ert": ert, "art": {t["name"]: float(t["area"]) for t in doc["ART"]["tables"]},
            "energy": {c["name"]: float(c["energy"]) for c in doc["energy_estimation"]["components"]},
            "meta": doc.get("lowbit_rbp", {})}


def accelergy_energy_pj(parsed: dict) -> float:
    """Dynamic energy per example recomputed the Accelergy way: sum of counts x ERT energy."""
    missing = set(parsed["counts"]) - set(parsed["ert"])
    if missing:
        raise CostModelError(f"Accelergy document: {len(missing)} action(s) without an ERT entry, e.g. "
                             f"{sorted(missing)[0]}")
    return sum(n * parsed["ert"][key] for key, n in parsed["counts"].items())


# ------------------------------------------------------------------------------------------------
# NeuroSim

def neurosim_layer_rows(budget) -> list[dict]:
    table = budget.layer_phase_table()
    leak_per_example_j = budget.summary["energy_per_example_pj"]["leakage"] * 1e-12
    total_area = budget.area.total_um2 or 1.0
    rows = []
    for h in sorted({r["layer"] for r in table}):
        mine = {r["phase"]: r for r in table if r["layer"] == h}

        def get(phase, key, default=0.0):
            return mine[phase][key] if phase in mine else default
        row = {"layer_number": h}
        for p, phase in NEUROSIM_PHASES:
            row[f"latency_{p}(s)"] = get(phase, "latency_s")
        for p, phase in NEUROSIM_PHASES:
            row[f"energy_{p}(J)"] = get(phase, "energy_pj") * 1e-12
        row["Buffer_latency(s)"] = sum(r["sram_s"] for r in mine.values())
        row["IC_latency(s)"] = 0.0
        row["Weight_gradient_latency(s)"] = row["latency_WG(s)"]
        row["Weight_update(s)"] = row["latency_WU(s)"]
        row["DRAM_latency(s)"] = sum(r["dram_s"] for r in mine.values())
        row["Buffer_energy(J)"] = sum(r["energy_sram_pj"] + r["energy_register_pj"] for r in mine.values()) * 1e-12
        row["IC_energy(J)"] = sum(r["energy_wire_pj"] for r in mine.values()) * 1e-12
        row["Weight_gradient_energy(J)"] = row["energy_WG(J)"]
        row["Weight_update_energy(J)"] = row["energy_WU(J)"]
        row["DRAM_energy(J)"] = sum(r["energy_dram_pj"] for r in mine.values()) * 1e-12
        row["latency_CU(s)"] = get("channel_update", "latency_s")
        row["energy_CU(J)"] = get("channel_update", "energy_pj") * 1e-12
        # leakage shared out by area (the chip leaks as a whole; NeuroSim prints it per layer the same way)
        row["leakageEnergy(J)"] = leak_per_example_j * budget.area.layer_mm2(h) * 1e6 / total_area
        rows.append(row)
    return rows


def neurosim_csv(budget) -> str:
    """The NeuroSim V2.1 breakdown layout: area block, per-layer block with a Total row, chip block."""
    cats = budget.area.by_category_mm2()
    comps = budget.area.by_component_mm2()
    area = [budget.area.total_mm2 * 1e-6, cats.get("wire", 0.0) * 1e-6, comps.get("accumulator_registers", 0.0) * 1e-6]
    area.append(area[0] - area[1] - area[2])
    rows = neurosim_layer_rows(budget)
    total = {"layer_number": "Total"}
    for c in NEUROSIM_LAYER_COLUMNS[1:]:
        total[c] = sum(r[c] for r in rows)
    total["leakageEnergy(J)"] = budget.summary["energy_per_example_pj"]["leakage"] * 1e-12
    s = budget.summary
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(NEUROSIM_AREA_COLUMNS)
    w.writerow([repr(x) for x in area])
    w.writerow(NEUROSIM_LAYER_COLUMNS)
    for r in rows + [total]:
        w.writerow([r[c] if isinstance(r[c], str) or c == "layer_number" else repr(float(r[c]))
                    for c in NEUROSIM_LAYER_COLUMNS])
    w.writerow(NEUROSIM_CHIP_COLUMNS)
    w.writerow([repr(float(s["tops_per_w"])), repr(float(s["latency"]["throughput_examples_per_s"])),
                repr(float(s["tops"]))])
    return buf.getvalue()


def parse_neurosim_csv(text: str) -> dict:
    """The three blocks of ``neurosim_csv`` back as dicts: {"area", "layers", "total", "chip"}."""
    lines = list(csv.reader(io.StringIO(text)))
    try:
        i_layer = lines.index(NEUROSIM_LAYER_COLUMNS)
        i_chip = lines.index(NEUROSIM_CHIP_COLUMNS)
    except ValueError:
        raise CostModelError("NeuroSim CSV: the layer or chip header is missing") from None
    if lines[0] != NEUROSIM_AREA_COLUMNS:
        raise CostModelError(f"NeuroSim CSV: first line is {lines[0]!r}, expected the area header")
    area = dict(zip(NEUROSIM_AREA_COLUMNS, map(float, lines[1])))
    body = [dict(zip(NEUROSIM_LAYER_COLUMNS, r)) for r in lines[i_layer + 1:i_chip]]
    conv = [{k: (v if k == "layer_number" else float(v)) for k, v in r.items()} for r in body]
    chip = dict(zip(NEUROSIM_CHIP_COLUMNS, map(float, lines[i_chip + 1])))
    return {"area": area, "layers": [r for r in conv if r["layer_number"] != "Total"],
            "total": next(r for r in conv if r["layer_number"] == "Total"), "chip": chip}
