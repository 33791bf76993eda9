"""The cost report of a run config: ``cost_report(cfg)`` counts one training example
(``counts.py``), prices every action with an energy table (``hw_models.energy``), and sums per
phase, per example, per epoch and per run; ``render_markdown`` writes one report as Markdown.
"""
from __future__ import annotations

import math

from hw_models.anchors import ANCHORS
from hw_models.energy import DEFAULT_TABLE, EnergyTable, load_energy_table
from hw_models.errors import bad
from hw_models.floorplan import Floorplan, summarize
from hw_models.records import ARITH_OPS, NEUROSIM_PHASE, PHASES
from hw_models.report import SCHEMA_VERSION, UNITS, CostReport, MemoryRow, price_actions, price_wires

from ..core.config import RunConfig
from hw_models.markdown import fmt, md_table
from .counts import Counts, count_example, examples_per_epoch
from .setup import make_setup

# ------------------------------------------------------------------------------------------------

def cost_report(cfg: RunConfig, *, energy_table=DEFAULT_TABLE, floorplan: Floorplan | None = None,
                feedback_matrices=None, feedback_seed: int | None = None, feedback_storage: str = "stored",
                input_shape=None, n_classes=None, node_nm: float | None = None, vdd_v: float | None = None,
                activity: float | None = None, variant: str | None = None) -> CostReport:
    """What one training example, one epoch and the whole run of ``cfg`` cost, phase by phase.

    The net is the one ``cfg`` trains (``lowbit_rbp.nets.layout``: ``input_shape`` and
    ``n_classes`` default to its dataset's), at its forward precision (``formats.weights``,
    ``weight_shadow``, ``activations``). ``feedback_matrices``: the actual feedback matrices (dict keyed like
    ``Channel.B`` or a list, shape (sender, receiver)); ``feedback_seed``: draw them with
    ``lowbit_rbp.core.feedback.build_feedback`` from ``numpy.random.default_rng(seed)``; neither:
    expected counts. ``feedback_storage``: ``stored`` in SRAM or ``regenerated`` on chip by a seeded
    LFSR.
    """
    table = load_energy_table(energy_table)
    if node_nm is not None or vdd_v is not None:
        table = table.at_node(node_nm if node_nm is not None else table.node_nm, vdd_v)
    if activity is not None and (not isinstance(activity, (int, float)) or not 0 <= activity <= 1):
        raise bad("wire activity factor", activity, "a number in [0, 1]")
    fp = floorplan or Floorplan()
    if not isinstance(fp, Floorplan):
        raise bad("floorplan", fp, "a hw_models.Floorplan")
    setup = make_setup(cfg, input_shape=input_shape, n_classes=n_classes, feedback_matrices=feedback_matrices,
                       feedback_seed=feedback_seed, feedback_storage=feedback_storage)
    counts = count_example(setup, fp)
    label = variant or cfg.label()
    return _price(counts, table, fp, activity, label,
                  drawn="seed" if feedback_seed is not None else "given" if feedback_matrices is not None else "expected",
                  feedback_seed=feedback_seed)


def _price(c: Counts, table: EnergyTable, fp: Floorplan, activity, label: str, drawn: str, feedback_seed) -> CostReport:
    s = c.setup
    cfg = s.cfg
    algo = s.algorithm

    def layer_name(h: int) -> str:
        return s.name(h - 1) if h >= 1 else "input"

    rows, rules = price_actions(c.actions, table, activity, algorithm=algo, variant=label, layer_name=layer_name)
    wires, wire_rows, wire_rule = price_wires(c.wires, table, activity, algorithm=algo, variant=label,
                                              layer_name=layer_name)
    rows += wire_rows
    memory = [MemoryRow(algo, label, m.layer, m.what, m.kind, m.bits, m.nnz, m.note) for m in c.memory]
    n_ex = examples_per_epoch(cfg)
    summary = _summary(c, rows, wires, memory, n_ex)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "units": UNITS,
        "algorithm": algo,
        "variant": label,
        "config_hash": cfg.config_hash(),
        "config": cfg.to_dict(),
        "network": [layer.describe() for layer in s.layers],
        "layer_sizes": [s.layers[0].n_in] + [layer.n_out for layer in s.layers],
        "formats": {"error": s.error.label(), "signal": s.signal.label(), "feedback": s.feedback.label(),
                    "update": s.update.label(), "accumulator": s.acc.label(), "weights": s.weight.label(),
                    "activations": s.act.label(), "quantize_at": cfg.formats.quantize_at},
        "feedback": {"spec": s.fb_spec.spec, "storage": s.storage, "drawn": drawn, "seed": feedback_seed},
        "energy_table": table.metadata(),
        "scaling_rules_applied": sorted({*rules, wire_rule}),
        "floorplan": fp.metadata(),
        "wire_activity": activity if activity is not None else table.data["wire"]["activity_default"],
        "examples_per_epoch": n_ex,
        "batch_size": s.batch,
        "epochs": cfg.train.epochs,
        "notes": sorted(set(c.notes)),
        "assumptions": ASSUMPTIONS,
    }
    anchors = _anchors(summary)
    return CostReport(meta, rows, wires, memory, summary, anchors)


ASSUMPTIONS = (
    "All arithmetic and storage on chip in SRAM; no DRAM, no leakage, no control or instruction overhead.",
    "Weights are stored in formats.weights (float32 masters and a quantized copy with formats.weight_shadow) and "
    "hidden activations in formats.activations; the network's input is read in the activation format.",
    "Every operand is read from its SRAM array once per use per example; the per-bit SRAM energy depends on the "
    "size of the array that holds it (per layer and per data structure).",
    "Per-minibatch work (weight update, adaptive channel update, SBP products, re-sampling) is charged per example "
    "as count / batch size.",
    "Sums of n products cost n-1 adds (channel) or n adds (forward and update, which add a bias or an accumulator).",
    "LC dropout: a dropped receiving neuron skips its feedback products, f' and quantizer (expected fraction 1-p); "
    "its update is still computed (it is zero); the 1/(1-p) scale is folded into the learning rate.",
    "Log-format scale alpha is a power of two in the paper and folded into the learning rate (not counted).",
    "Zero signals are not skipped: a neuron that receives no term of a sparse map still computes f' and its update.",
    "Point-to-point wires: one per non-zero backward connection (sender neuron -> receiving tile), driven once per "
    "example; for BP this implies a transported copy of W^{h+1} beside the receiving layer.",
)


def _ops(rows, phase=None, op=None, what=None) -> float:
    return sum(r.count for r in rows if r.op in ARITH_OPS and (phase is None or r.phase == phase)
               and (op is None or r.op == op) and (what is None or (what(r.what) if callable(what) else r.what == what)))


def _summary(c: Counts, rows, wires, memory, n_ex: int) -> dict:
    s = c.setup
    cfg = s.cfg
    per_phase = {p: sum(r.energy_pj for r in rows if r.phase == p) for p in PHASES}
    total = sum(per_phase.values())
    split = {
        "compute": sum(r.energy_pj for r in rows if r.op in ARITH_OPS),
        "memory": sum(r.energy_pj for r in rows if r.op.startswith("sram")),
        "rng": sum(r.energy_pj for r in rows if r.op == "rng_bit"),
        "wire": sum(r.energy_pj for r in rows if r.op == "wire"),
    }
    fb = lambda w: w.startswith("feedback_product")   # noqa: E731
    channel = {
        "feedback_mults": _ops(rows, "error_projection", "mult", fb),
        "feedback_adds": _ops(rows, "error_projection", "add", "feedback_accumulate"),
        "feedback_sign_flips": _ops(rows, "error_projection", "sign_flip", fb),
        "feedback_shifts": _ops(rows, "error_projection", "shift", fb),
        "gated_terms": sum(st.products for mc in c.maps.values() for st in mc.stages if st.b.kind == "binary")
        * (1 - s.dropout),
        "fprime_mults": _ops(rows, "error_projection", "mult", "fprime_product"),
        "fprime_eval_ops": _ops(rows, "error_projection", None, "fprime_eval"),
        "mults": _ops(rows, "error_projection", "mult"),
        "adds": _ops(rows, "error_projection", "add"),
        "sign_flips": _ops(rows, "error_projection", "sign_flip"),
        "shifts": _ops(rows, "error_projection", "shift"),
        "compares": _ops(rows, "error_projection", "compare"),
        "ops_total": _ops(rows, "error_projection"),
    }
    update = {
        "weight_gradient_ops": _ops(rows, "weight_gradient"),
        "weight_update_ops": _ops(rows, "weight_update"),
        "weight_gradient_mults": _ops(rows, "weight_gradient", "mult"),
        "channel_update_ops": _ops(rows, "channel_update"),
    }
    forward = {"macs": sum(layer.fwd_macs for layer in s.layers), "ops": _ops(rows, "forward")}
    bwd = summarize(c.wires, "error_projection")
    fwd = summarize(c.wires, "forward")
    bwd["energy_pj"] = sum(w.energy_pj for w in wires if w.phase == "error_projection")
    fwd["energy_pj"] = sum(w.energy_pj for w in wires if w.phase == "forward")
    fb_mem = [m for m in memory if m.what == "feedback"]
    mem = {
        "weights_bits": sum(m.bits for m in memory if m.what == "weights"),
        "feedback_bits": sum(m.bits for m in fb_mem),
        "feedback_kinds": sorted({m.kind for m in fb_mem}),
        "feedback_nnz": sum(m.nnz for m in fb_mem),
        "activations_kept_bits": sum(m.bits for m in memory if m.what == "activations_kept"),
        "signal_buffer_bits": sum(m.bits for m in memory if m.what == "signals"),
        "gradient_accumulator_bits": sum(m.bits for m in memory if m.what == "gradient_accumulator"),
    }
    # Learning-channel rate (Baldi & Sadowski 2016): bits delivered per weight / operations per weight.
    n_w = sum(layer.n_weights for layer in s.layers)
    q = 1.0 - s.dropout
    delivered = 0.0
    for j, layer in enumerate(s.layers):
        if s.trains(j) and j in c.signal_ops:
            frac = 1.0 if j == s.L - 1 else q
            delivered += c.signal_ops[j].bits * frac * layer.n_weights
    ops_lc = _ops(rows, "error_projection") + _ops(rows, "weight_gradient")
    bits_pw = delivered / n_w
    ops_pw = ops_lc / n_w
    rate = {"bits_per_weight": bits_pw, "ops_per_weight": ops_pw,
            "rate_bits_per_op": bits_pw / ops_pw if ops_pw else 0.0, "weights": n_w}
    steps = n_ex // s.batch
    return {
        "energy_per_example_pj": {**per_phase, "total": total},
        "energy_split_pj": split,
        "energy_per_epoch_j": total * n_ex * 1e-12,
        "energy_per_run_j": total * n_ex * cfg.train.epochs * 1e-12,
        "examples_per_epoch": n_ex, "updates_per_epoch": steps, "epochs": cfg.train.epochs,
        "channel": channel, "update": update, "forward": forward,
        "wires_backward": bwd, "wires_forward": fwd,
        "memory": mem, "lc_rate": rate,
        "forward_pj_per_mac": per_phase["forward"] / forward["macs"],
        "forward_nj_per_example": per_phase["forward"] / 1000.0,
        "update_pj_per_weight": (per_phase["weight_gradient"] + per_phase["weight_update"]) / n_w,
    }


def _anchors(summary: dict) -> list:
    out = []
    for a in ANCHORS:
        ours = summary[a.compare_with]
        out.append({**a.to_dict(), "ours": ours, "ratio_ours_over_anchor": ours / a.value if a.value else math.nan})
    return out


# ------------------------------------------------------------------------------------------------
# Markdown

PHASE_TITLES = {"forward": "forward (FW)", "error_projection": "learning channel (AG)",
                "weight_gradient": "weight gradient (WG)", "weight_update": "weight update (WU)",
                "channel_update": "channel update"}


def render_markdown(rep: CostReport) -> str:
    m, s = rep.meta, rep.summary
    t = m["energy_table"]
    e = s["energy_per_example_pj"]
    out = [f"# Cost of {m['variant']}", "",
           f"Network {' / '.join(m['network'])}; algorithm **{m['algorithm']}**; formats "
           + ", ".join(f"{k} {v}" for k, v in m["formats"].items()) + f"; feedback {m['feedback']['spec']} "
           f"({m['feedback']['storage']}, counts {m['feedback']['drawn']}).",
           f"Energy table **{t['name']}** v{t['version']} at {t['node_nm']:g} nm, {t['vdd_v']:g} V; "
           f"schema {m['schema_version']}; batch {m['batch_size']}, {m['examples_per_epoch']:,} examples per epoch, "
           f"{m['epochs']} epochs.", "",
           "## Energy per training example", "",
           md_table(["phase", "NeuroSim", "energy (nJ)", "share"],
                    [[PHASE_TITLES[p], NEUROSIM_PHASE[p], e[p] / 1000, f"{100 * e[p] / e['total']:.1f}%"]
                     for p in PHASES if e[p]] + [["total", "", e["total"] / 1000, "100%"]]), "",
           md_table(["compute (nJ)", "memory (nJ)", "random bits (nJ)", "wires (nJ)", "per epoch (J)", "per run (J)"],
                    [[s["energy_split_pj"]["compute"] / 1000, s["energy_split_pj"]["memory"] / 1000,
                      s["energy_split_pj"]["rng"] / 1000, s["energy_split_pj"]["wire"] / 1000,
                      s["energy_per_epoch_j"], s["energy_per_run_j"]]]), "",
           "## Learning channel", ""]
    ch = s["channel"]
    out.append(md_table(["feedback mults", "feedback adds", "sign flips", "shifts", "gated terms", "f' mults",
                         "all channel ops"],
                        [[ch["feedback_mults"], ch["feedback_adds"], ch["feedback_sign_flips"], ch["feedback_shifts"],
                          ch["gated_terms"], ch["fprime_mults"], ch["ops_total"]]]))
    out += ["", "## Wires", ""]
    rows = []
    for name, w in (("backward (channel)", s["wires_backward"]), ("forward", s["wires_forward"])):
        rows.append([name, w["connections"], w["connection_length_mm"], w["mean_length_mm"], w["max_length_mm"],
                     w["bits_moved"], w["bit_mm"], w["energy_pj"] / 1000])
    out.append(md_table(["wires", "connections", "total length (mm)", "mean (mm)", "max (mm)", "bits moved",
                         "bit*mm", "energy (nJ)"], rows))
    out += ["", f"Floorplan: {m['floorplan']['description']}.", "", "## Memory (bits held)", ""]
    mm = s["memory"]
    out.append(md_table(["weights", "feedback", "feedback kind", "activations kept", "signal buffers",
                         "gradient accumulators"],
                        [[mm["weights_bits"], mm["feedback_bits"], ", ".join(mm["feedback_kinds"]) or "-",
                          mm["activations_kept_bits"], mm["signal_buffer_bits"], mm["gradient_accumulator_bits"]]]))
    r = s["lc_rate"]
    out += ["", "## Learning-channel rate (Baldi & Sadowski 2016)", "",
            f"{fmt(r['bits_per_weight'])} bits delivered per weight / {fmt(r['ops_per_weight'])} operations per "
            f"weight = **{fmt(r['rate_bits_per_op'])} bits per operation** (over {r['weights']:,} weights).", "",
            "## Per layer and phase", ""]
    agg = {}
    for row in rep.rows:
        key = (row.layer, row.phase)
        d = agg.setdefault(key, {"mult": 0.0, "add": 0.0, "other": 0.0, "mem_bits": 0.0, "bit_mm": 0.0, "e": 0.0})
        if row.op in ("mult", "add"):
            d[row.op] += row.count
        elif row.op in ARITH_OPS:
            d["other"] += row.count
        elif row.op.startswith("sram"):
            d["mem_bits"] += row.count
        elif row.op == "wire":
            d["bit_mm"] += row.count
        d["e"] += row.energy_pj
    out.append(md_table(["layer", "phase", "mults", "adds", "other ops", "SRAM bits", "wire bit*mm", "energy (nJ)"],
                        [[f"{k[0]}", k[1], d["mult"], d["add"], d["other"], d["mem_bits"], d["bit_mm"], d["e"] / 1000]
                         for k, d in sorted(agg.items(), key=lambda kv: (kv[0][0], PHASES.index(kv[0][1])))]))
    out += ["", "## Sanity anchors (published figures, not used in any sum)", "", anchors_markdown(rep.anchors), "",
            "## Table and rules", "", f"Table source: {t['source']}", ""]
    out += [f"- {rule}" for rule in m["scaling_rules_applied"]]
    if t["node_scaling"]:
        out += [f"- {n}" for n in t["node_scaling"]]
    if m["notes"]:
        out += ["", "Notes:"] + [f"- {n}" for n in m["notes"]]
    out += ["", "Assumptions:"] + [f"- {a}" for a in m["assumptions"]]
    return "\n".join(out) + "\n"


def anchors_markdown(anchors) -> str:
    names = {"forward_pj_per_mac": "forward energy per MAC (pJ)", "forward_nj_per_example": "forward energy per example (nJ)",
             "update_pj_per_weight": "update energy per weight (pJ)"}
    return md_table(["anchor", "value", "scope / evidence", "ours", "ours / anchor", "source"],
                    [[a["name"], f"{fmt(a['value'])} {a['unit']} ({a['node']})", f"{a['scope']}; {a['evidence']}",
                      f"{fmt(a['ours'])} ({names[a['compare_with']]})", f"{a['ratio_ours_over_anchor']:.3g}",
                      a["source"]] for a in anchors])
