"""Markdown of hardware budgets: one budget on its own, and side-by-side tables of several (pure functions
of ``HardwareBudget`` records; the reports that need run configurations live in ``lowbit_rbp.cost.budget``)."""
from __future__ import annotations

from .markdown import fmt, md_table
from .records import NEUROSIM_PHASE, PHASES

PHASE_SHORT = {"forward": "FW", "error_projection": "AG", "weight_gradient": "WG", "weight_update": "WU",
               "channel_update": "CU"}


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


# ------------------------------------------------------------------------------------------------
# side-by-side tables

def comparison_rows(labelled) -> list[list]:
    """One row per (label, budget): energy, latency, throughput, TOPS/W, area."""
    rows = []
    for label, b in labelled:
        s = b.summary
        e, lat = s["energy_per_example_pj"], s["latency"]
        area = s["area"]["by_category_mm2"]
        rows.append([label, e["dynamic"] / 1e3, e["leakage"] / 1e3, e["total"] / 1e3,
                     f"{100 * e['weight_gradient'] / e['total']:.0f}%", si(lat["example_latency_s"], "s"),
                     si(lat["time_per_example_s"], "s"), f"{fmt(lat['throughput_examples_per_s'])} /s",
                     s["tops_per_w"], s["area"]["total_mm2"], area.get("sram", 0.0), area.get("wire", 0.0),
                     area.get("pe", 0.0) + area.get("register", 0.0) + area.get("lfsr", 0.0)])
    return rows


COMPARISON_HEADER = ["variant", "dynamic (nJ)", "leakage (nJ)", "total (nJ)", "WG share", "example latency",
                     "time per example", "throughput", "TOPS/W", "area (mm2)", "SRAM (mm2)", "wires (mm2)",
                     "logic (mm2)"]


def comparison_table(labelled) -> str:
    return md_table(COMPARISON_HEADER, comparison_rows(labelled))


def dataflow_table(pairs) -> str:
    """``pairs``: (label, per-example budget, minibatch-tiled budget): the weight gradient and totals side by side."""
    rows = []
    for label, pe, mt in pairs:
        a, b = pe.summary, mt.summary
        ea, eb = a["energy_per_example_pj"], b["energy_per_example_pj"]
        rows.append([label, ea["weight_gradient"] / 1e3, f"{100 * ea['weight_gradient'] / ea['total']:.0f}%",
                     eb["weight_gradient"] / 1e3, f"{100 * eb['weight_gradient'] / eb['total']:.0f}%",
                     ea["total"] / 1e3, eb["total"] / 1e3, f"{100 * (1 - eb['total'] / ea['total']):.0f}%",
                     si(a["latency"]["time_per_example_s"], "s"), si(b["latency"]["time_per_example_s"], "s"),
                     a["area"]["total_mm2"], b["area"]["total_mm2"]])
    return md_table(["variant", "WG per-example (nJ)", "share", "WG tiled (nJ)", "share", "total per-example (nJ)",
                     "total tiled (nJ)", "saved", "time/example per-example", "time/example tiled",
                     "area per-example (mm2)", "area tiled (mm2)"], rows)


def depth_table(rows) -> str:
    """``rows``: (hidden layers, BP budget, RBP budget, SRBP budget): one example's latency, and its part
    after the forward pass (output error, learning channel, weight gradient)."""
    out = []
    for depth, bp, rbp, srbp in rows:
        lb, lr, ls = (x.summary["latency"]["example_latency_s"] for x in (bp, rbp, srbp))
        fb, fs = (max(t.fw_end for t in x.latency.tiles) / x.latency.clock_hz for x in (bp, srbp))
        out.append([depth, si(lb, "s"), si(lr, "s"), si(ls, "s"), f"{lb / ls:.2f}x", f"{100 * (1 - ls / lb):.0f}%",
                    si(lb - fb, "s"), si(ls - fs, "s"), f"{(lb - fb) / (ls - fs):.2f}x",
                    si(bp.summary["latency"]["time_per_example_s"], "s"),
                    si(srbp.summary["latency"]["time_per_example_s"], "s")])
    return md_table(["hidden layers", "BP example latency", "RBP", "SRBP", "BP / SRBP", "SRBP saves",
                     "BP after forward", "SRBP after forward", "ratio after forward", "BP time per example",
                     "SRBP time per example"], out)


def layer_phase_latency_table(labelled) -> str:
    """Per-layer latency per example of each phase (FW/AG/WG/WU), for each (label, budget)."""
    rows = []
    for label, b in labelled:
        for h in sorted({s.layer for s in b.latency.steps}):
            rows.append([label, h] + [si(b.latency.phase_seconds(h, p), "s") for p in
                                      ("forward", "error_projection", "weight_gradient", "weight_update")])
    return md_table(["variant", "layer", "FW", "AG", "WG", "WU (per example)"], rows)


def validation_markdown(chips_results) -> str:
    """``chips_results``: (chip, {variant: budget}, rows from ``validation.evaluate``, {claim key: why-note})."""
    out = []
    for chip, budgets, rows, why in chips_results:
        out += [f"## {chip.name}", "", f"Source: {chip.citation}.", "", "Published: " + " ".join(chip.facts), "",
                f"Modelled at {chip.node_nm:g} nm, {chip.vdd_v:g} V: network "
                + " / ".join(layer.describe() for layer in chip.network) + "; weights " + chip.weight_format
                + ", activations " + chip.activation_format + "; config " + ", ".join(chip.base_overrides)
                + f"; dataflow {chip.dataflow}; architecture overrides "
                + (", ".join(f"{k} = {v}" for k, v in chip.arch_overrides) or "none") + ".", "",
                "Assumptions:", ""] + [f"- {a}" for a in chip.assumptions] + [""]
        out.append(md_table(["variant", "energy (nJ)", "of which leakage (nJ)", "area (mm2)", "time per example",
                             "DRAM bits per example"],
                            [[name, b.summary["energy_per_example_pj"]["total"] / 1e3,
                              b.summary["energy_per_example_pj"]["leakage"] / 1e3, b.summary["area"]["total_mm2"],
                              si(b.summary["latency"]["time_per_example_s"], "s"),
                              b.summary["dram"]["bits_per_example"]] for name, b in budgets.items()]))
        out += ["", md_table(["claim", "published", "predicted", "predicted / published", "within 2x"],
                             [[r["claim"], _pct_range(r["published_low"], r["published_high"]),
                               f"{100 * r['predicted']:.1f}%", f"{r['ratio']:.2f}", "yes" if r["within_2x"] else "no"]
                              for r in rows]), ""]
        for r, c in zip(rows, chip.claims):
            if not r["within_2x"] and c.key in why:
                out += [f"Why '{r['claim']}' is off by more than 2x: {why[c.key]}", ""]
    return "\n".join(out)


def _pct_range(low: float, high: float) -> str:
    return f"{100 * low:.1f}%" if low == high else f"{100 * low:.1f}-{100 * high:.1f}%"
