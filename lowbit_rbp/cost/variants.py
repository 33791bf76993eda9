"""The cost of a sweep file's runs side by side (``reports/cost_mnist.md`` and ``.csv`` from
``lowbit_rbp/sweeps/cost_mnist.toml``): BP, RBP, SRBP and their variants on the paper's MNIST net.

    lowbit-rbp cost --sweep lowbit_rbp/sweeps/cost_mnist.toml --out reports/

The variants are the sweep file's runs, labelled by their ``name``; a run's ``cost`` table holds
options of the cost model (``feedback_seed``, ``feedback_storage``).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from hw_models.records import NEUROSIM_PHASE, PHASES

from ..errors import bad_value
from hw_models.markdown import fmt, md_table
from .report import anchors_markdown, cost_report

COST_OPTIONS = ("feedback_seed", "feedback_storage")

CSV_COLUMNS = [
    "variant", "algorithm", "feedback", "error_format", "signal_format", "feedback_storage", "counts",
    "feedback_mults", "feedback_adds", "feedback_sign_flips", "feedback_shifts", "gated_terms", "fprime_mults",
    "channel_ops", "weight_gradient_ops", "weight_update_ops", "channel_update_ops",
    "backward_connections", "backward_total_length_mm", "backward_mean_length_mm", "backward_max_length_mm",
    "backward_bits_moved", "backward_bit_mm", "backward_wire_energy_pj", "feedback_memory_bits", "feedback_memory_kind",
    *[f"energy_{p}_pj" for p in PHASES], "energy_total_pj", "energy_compute_pj", "energy_memory_pj", "energy_rng_pj",
    "energy_wire_pj", "energy_per_epoch_j", "energy_per_run_j",
    "lc_bits_per_weight", "lc_ops_per_weight", "lc_rate_bits_per_op",
]


def build(sweep, **kw) -> list:
    """One cost report per run of ``sweep`` (a ``results.sweep.Sweep``), in its order; ``kw`` go to
    ``cost_report`` (energy table, floorplan, node)."""
    reports = []
    for r in sweep.runs:
        options = dict(r.tags.get("cost", {}))
        for k in options:
            if k not in COST_OPTIONS:
                raise bad_value(f"sweep {sweep.name}: run {r.config.label()!r}: cost option", k, ", ".join(COST_OPTIONS))
        reports.append(cost_report(r.config, variant=r.config.label(), **options, **kw))
    return reports


def write_variants_report(sweep, out_dir: Path, command: str, **kw) -> tuple[Path, Path]:
    """``<sweep name>.md`` and ``.csv`` in ``out_dir``."""
    reports = build(sweep, **kw)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / f"{sweep.name}.md", out_dir / f"{sweep.name}.csv"
    md.write_text(to_markdown(reports, command))
    csv_path.write_text(to_csv(reports))
    return md, csv_path


def csv_row(rep) -> dict:
    s, m = rep.summary, rep.meta
    ch, up, bw, mem, e, sp, r = (s["channel"], s["update"], s["wires_backward"], s["memory"],
                                 s["energy_per_example_pj"], s["energy_split_pj"], s["lc_rate"])
    return {
        "variant": m["variant"], "algorithm": m["algorithm"], "feedback": m["feedback"]["spec"],
        "error_format": m["config"]["formats"]["error"], "signal_format": m["config"]["formats"]["signal"],
        "feedback_storage": m["feedback"]["storage"], "counts": m["feedback"]["drawn"],
        "feedback_mults": ch["feedback_mults"], "feedback_adds": ch["feedback_adds"],
        "feedback_sign_flips": ch["feedback_sign_flips"], "feedback_shifts": ch["feedback_shifts"],
        "gated_terms": ch["gated_terms"], "fprime_mults": ch["fprime_mults"], "channel_ops": ch["ops_total"],
        "weight_gradient_ops": up["weight_gradient_ops"], "weight_update_ops": up["weight_update_ops"],
        "channel_update_ops": up["channel_update_ops"],
        "backward_connections": bw["connections"], "backward_total_length_mm": bw["connection_length_mm"],
        "backward_mean_length_mm": bw["mean_length_mm"], "backward_max_length_mm": bw["max_length_mm"],
        "backward_bits_moved": bw["bits_moved"], "backward_bit_mm": bw["bit_mm"],
        "backward_wire_energy_pj": bw["energy_pj"], "feedback_memory_bits": mem["feedback_bits"],
        "feedback_memory_kind": "+".join(mem["feedback_kinds"]) or "none",
        **{f"energy_{p}_pj": e[p] for p in PHASES}, "energy_total_pj": e["total"],
        "energy_compute_pj": sp["compute"], "energy_memory_pj": sp["memory"], "energy_rng_pj": sp["rng"],
        "energy_wire_pj": sp["wire"], "energy_per_epoch_j": s["energy_per_epoch_j"], "energy_per_run_j": s["energy_per_run_j"],
        "lc_bits_per_weight": r["bits_per_weight"], "lc_ops_per_weight": r["ops_per_weight"],
        "lc_rate_bits_per_op": r["rate_bits_per_op"],
    }


def to_csv(reports) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for rep in reports:
        w.writerow({k: (repr(v) if isinstance(v, float) and not v.is_integer() else
                        int(v) if isinstance(v, float) else v) for k, v in csv_row(rep).items()})
    return buf.getvalue()


def _by(reports, name):
    return next(r for r in reports if r.meta["variant"] == name)


def to_markdown(reports, command: str) -> str:
    rows = [csv_row(r) for r in reports]
    first = reports[0]
    t = first.meta["energy_table"]
    bp, srbp = _by(reports, "BP"), _by(reports, "SRBP")
    bw_bp, bw_s = bp.summary["wires_backward"], srbp.summary["wires_backward"]
    e_bp, e_s = bp.summary["energy_per_example_pj"], srbp.summary["energy_per_example_pj"]
    s1 = _by(reports, "SRBP sparse-1").summary["channel"]
    one = _by(reports, "SRBP error 1-bit").summary["channel"]
    out = [
        "# Hardware cost of the learning channel: MNIST 784-100-100-100-100-10",
        "",
        f"Generated by `{command}` (hw_models, report schema {first.meta['schema_version']}). "
        f"Per training example unless stated; minibatch {first.meta['batch_size']}, "
        f"{first.meta['examples_per_epoch']:,} examples per epoch, {first.meta['epochs']} epochs per run.",
        "",
        f"Energy table **{t['name']}** v{t['version']}: {t['description']} ({t['node_nm']:g} nm, {t['vdd_v']:g} V; "
        f"leakage: {t['leakage']}). Floorplan: {first.meta['floorplan']['description']}.",
        "",
        "## In short",
        "",
        f"- Backward multiplies per example: BP and RBP {fmt(bp.summary['channel']['feedback_mults'])} (eq. 14), "
        f"SRBP {fmt(srbp.summary['channel']['feedback_mults'])} (eq. 15).",
        f"- Backward connections: BP {fmt(bw_bp['connections'])} of mean length {fmt(bw_bp['mean_length_mm'])} mm "
        f"(max {fmt(bw_bp['max_length_mm'])} mm, total {fmt(bw_bp['connection_length_mm'])} mm); SRBP "
        f"{fmt(bw_s['connections'])} of mean length {fmt(bw_s['mean_length_mm'])} mm (max "
        f"{fmt(bw_s['max_length_mm'])} mm, total {fmt(bw_s['connection_length_mm'])} mm): fewer but longer wires.",
        f"- Energy per example: BP {fmt(e_bp['total'] / 1000)} nJ (learning channel "
        f"{fmt(e_bp['error_projection'] / 1000)} nJ), SRBP {fmt(e_s['total'] / 1000)} nJ (learning channel "
        f"{fmt(e_s['error_projection'] / 1000)} nJ). The weight gradient and forward pass, identical for every "
        f"algorithm, dominate; they are memory-bound (float32 weights and accumulators in SRAM).",
        f"- Sparse-1 SRBP: {fmt(s1['feedback_mults'])} feedback multiplies ({fmt(s1['gated_terms'])} non-zero terms "
        f"gated into {fmt(s1['feedback_adds'])} additions); "
        f"1-bit error SRBP: {fmt(one['feedback_mults'])} feedback multiplies ({fmt(one['feedback_sign_flips'])} sign "
        "flips). The f' products (one per hidden neuron) stay multiplies unless f' is dropped.",
        "",
        "## Variants",
        "",
        "Every variant trains the same net; quantized-error variants quantize T - O^L and every signal sent on to "
        "log:alpha=2,bits=b *after* f' (`formats.quantize_at=after_fprime`), so every backward wire carries b bits. "
        "Sparse-n draws n expected non-zeros per receiving neuron (p = n / senders: p = 0.1 n for SRBP's 10 x 100 "
        "maps); '(per sender)' draws n per sending neuron (p = n / receivers = n / 100), the other reading of the "
        "paper (see reports/mnist_foundation.md); the two agree for RBP on this net. "
        "Sparse variants count the non-zeros actually drawn by `lowbit_rbp.core.feedback.build_feedback` "
        f"(seed {_by(reports, 'RBP sparse-1').meta['feedback']['seed']}); the others are exact counts. "
        "'LFSR' regenerates the sparse matrix on chip from a seeded LFSR instead of storing it.",
        "",
        md_table(["variant", "algorithm", "feedback", "error / signal", "feedback store", "counts"],
                 [[r["variant"], r["algorithm"], r["feedback"], f"{r['error_format']} / {r['signal_format']}",
                   r["feedback_storage"], r["counts"]] for r in rows]),
        "",
        "## Operations per example",
        "",
        "Feedback products and their sums (eq. 14/15 count the multiplies), the f' products, all learning-channel "
        "operations (including the output error, f' evaluation, quantizers, dropout), and the operations of the "
        "weight gradient (per example) and weight update (per minibatch / batch), which are the same for every "
        "algorithm that trains the hidden layers with the same formats.",
        "",
        md_table(["variant", "feedback mults", "feedback adds", "sign flips", "shifts", "gated terms", "f' mults",
                  "channel ops", "weight-gradient ops", "weight-update ops", "channel-update ops"],
                 [[r["variant"], r["feedback_mults"], r["feedback_adds"], r["feedback_sign_flips"], r["feedback_shifts"],
                   r["gated_terms"], r["fprime_mults"], r["channel_ops"], r["weight_gradient_ops"],
                   r["weight_update_ops"], r["channel_update_ops"]] for r in rows]),
        "",
        "## Backward wires and feedback memory",
        "",
        "Connections: one point-to-point wire per non-zero backward connection (sender neuron -> receiving layer's "
        "tile); bits moved = traversals x bits per signal; bit*mm weights them by length.",
        "",
        md_table(["variant", "connections", "total length (mm)", "mean (mm)", "max (mm)", "bits moved", "bit*mm",
                  "wire energy (nJ)", "feedback memory (bits)", "kind"],
                 [[r["variant"], r["backward_connections"], r["backward_total_length_mm"], r["backward_mean_length_mm"],
                   r["backward_max_length_mm"], r["backward_bits_moved"], r["backward_bit_mm"],
                   r["backward_wire_energy_pj"] / 1000, r["feedback_memory_bits"], r["feedback_memory_kind"]]
                  for r in rows]),
        "",
        "## Energy per example (nJ), per epoch and per run (J), learning-channel rate",
        "",
        "Phases line up with NeuroSim: " + ", ".join(f"{p} = {NEUROSIM_PHASE[p]}" for p in PHASES)
        + ". Each phase includes its arithmetic, SRAM accesses, random bits and wires. The learning-channel rate "
        "(Baldi & Sadowski 2016) is bits delivered per weight / (channel + weight-gradient operations per weight); "
        "it counts delivered bits, not bits of information about the true gradient.",
        "",
        md_table(["variant", "forward", "channel (AG)", "weight grad.", "weight upd.", "channel upd.", "total",
                  "of which wires", "per epoch (J)", "per run (J)", "LC rate (bits/op)"],
                 [[r["variant"], r["energy_forward_pj"] / 1000, r["energy_error_projection_pj"] / 1000,
                   r["energy_weight_gradient_pj"] / 1000, r["energy_weight_update_pj"] / 1000,
                   r["energy_channel_update_pj"] / 1000, r["energy_total_pj"] / 1000, r["energy_wire_pj"] / 1000,
                   r["energy_per_epoch_j"], r["energy_per_run_j"], r["lc_rate_bits_per_op"]] for r in rows]),
        "",
        "## Sanity anchors (published figures beside the BP numbers; not used in any sum)",
        "",
        anchors_markdown(bp.anchors),
        "",
        "## Energy table, sources and rules",
        "",
        f"Table `{t['name']}` v{t['version']} ({t['path'] and Path(t['path']).name}); source: {t['source']}.",
        "",
        md_table(["entry", "source"], [[k, v] for k, v in t["sources"].items()]),
        "",
        "Scaling rules of the table: " + "; ".join(f"{k}: {v}" for k, v in t["rules"].items()) + ".",
        "Derived operations: " + "; ".join(f"{k}: {v}" for k, v in t["derived"].items()) + ".",
        "",
        "Rules applied in this report:",
        "",
    ]
    applied = sorted({rule for rep in reports for rule in rep.meta["scaling_rules_applied"]})
    out += [f"- {a}" for a in applied]
    notes = sorted({n for rep in reports for n in rep.meta["notes"]})
    out += ["", "## Assumptions", ""] + [f"- {a}" for a in first.meta["assumptions"]]
    if notes:
        out += [""] + [f"- {n}" for n in notes]
    out += ["", "Counts and schema: `hw_models/SCHEMA.md`. Per-action rows for any single variant: "
            "`lowbit-rbp cost --set channel.algorithm=srbp --format csv`.", ""]
    return "\n".join(out)
