"""Markdown of hardware budgets: one budget on its own, and side-by-side tables of several (pure functions
of ``HardwareBudget`` records; the reports that need run configurations live in ``lowbit_rbp.hw_budget``)."""
from __future__ import annotations

from .records import NEUROSIM_PHASE, PHASES

PHASE_SHORT = {"forward": "FW", "error_projection": "AG", "weight_gradient": "WG", "weight_update": "WU",
               "channel_update": "CU"}


def fmt(x, digits: int = 4) -> str:
    """Numbers for tables: thousands separators for large values, ``digits`` significant digits otherwise.
    (The cost report's ``report.fmt`` follows the same rules; this module must not import report.py,
    which depends on the training code's config.)"""
    if isinstance(x, str):
        return x
    if x is None:
        return "-"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        x = int(x)
    if isinstance(x, int):
        return f"{x:,}"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def si(x: float, unit: str) -> str:
    """``2.5e-6, 's'`` -> ``2.5 us``."""
    if x == 0:
        return f"0 {unit}"
    for f, p in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= f:
            return f"{x / f:.4g} {p}{unit}"
    return f"{x:.3g} {unit}"


def describe_schedule(b) -> str:
    m = b.meta
    a = m["architecture"]
    return (f"architecture **{a['name']}** v{a['version']} at {a['node_nm']:g} nm, {a['clock_hz'] / 1e6:g} MHz, "
            f"{a['pe']['per_layer']} PEs per layer tile; dataflow **{m['dataflow']}**, pipeline **{m['pipeline']}**, "
            f"overlap of update and forward **{str(m['overlap_update']).lower()}**; minibatch {m['batch_size']}")


def budget_markdown(b) -> str:
    s = b.summary
    e = s["energy_per_example_pj"]
    lat = s["latency"]
    out = [f"# Hardware budget of {b.meta.get('variant', b.meta.get('algorithm', 'a configuration'))}", "",
           describe_schedule(b) + ".", "",
           "## Summary (per training example unless stated)", "",
           md_table(["energy (nJ)", "of which leakage (nJ)", "example latency", "time per example", "throughput",
                     "TOPS", "TOPS/W", "area (mm2)", "DRAM bits"],
                    [[e["total"] / 1e3, e["leakage"] / 1e3, si(lat["example_latency_s"], "s"),
                      si(lat["time_per_example_s"], "s"), f"{fmt(lat['throughput_examples_per_s'])} /s", s["tops"],
                      s["tops_per_w"], s["area"]["total_mm2"], s["dram"]["bits_per_example"]]]), "",
           f"Critical path of one example: {' -> '.join(lat['critical_path'])}; minibatch bound: "
           f"{lat['minibatch_bound']}.", "", "## Energy per phase (nJ per example)", "",
           md_table(["phase", "NeuroSim", "dynamic energy (nJ)"],
                    [[p, NEUROSIM_PHASE[p], e[p] / 1e3] for p in PHASES if e[p]]
                    + [["leakage", "", e["leakage"] / 1e3], ["total", "", e["total"] / 1e3]]), "",
           md_table(["compute", "SRAM", "registers", "DRAM", "random bits", "wires", "leakage"],
                    [[s["energy_split_pj"].get(k, 0.0) / 1e3 for k in
                      ("compute", "sram", "register", "dram", "rng", "wire", "leakage")]]), "",
           "## Per layer and phase", "",
           md_table(["layer", "phase", "latency per example", "bound", "energy (nJ)", "SRAM (nJ)", "DRAM (nJ)"],
                    [[r["layer"], r["phase"], si(r["latency_s"], "s"), r["bound"], r["energy_pj"] / 1e3,
                      r["energy_sram_pj"] / 1e3, r["energy_dram_pj"] / 1e3] for r in b.layer_phase_table()]), "",
           "## Area (mm2)", "",
           md_table(["component", "area (mm2)"], sorted(s["area"]["by_component_mm2"].items(), key=lambda kv: -kv[1])),
           "", f"Leakage power {si(s['leakage_w'], 'W')}. State {fmt(s['memory']['state_bits'])} bits, "
           f"{fmt(s['memory']['offchip_bits'])} off chip.", "", "## Notes", ""]
    out += [f"- {n}" for n in b.notes]
    out += ["", "Assumptions:"] + [f"- {a}" for a in b.meta["assumptions"]]
    return "\n".join(out) + "\n"
