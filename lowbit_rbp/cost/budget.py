"""The hardware budget of a run config: its counts per training example (``counts``) on an
architecture template (``hw_models.architecture``) as energy with leakage, latency, throughput,
area and off-chip traffic (``hw_models.budget``), and the two budget reports.

    from lowbit_rbp.cost.budget import budget_for_config
    b = budget_for_config(load_config(None, ["channel.algorithm=srbp"]), dataflow="minibatch_tiled")

    lowbit-rbp budget --set channel.algorithm=srbp [--format md|json|csv|accelergy|neurosim]
    lowbit-rbp budget mnist --out reports/hw_budget_mnist.md
    lowbit-rbp budget validation --out reports/hw_validation.md
"""
from __future__ import annotations

from hw_models.architecture import DEFAULT_ARCH, load_architecture
from hw_models.budget import hardware_budget, inference_view
from hw_models.energy import DEFAULT_TABLE, load_energy_table
from hw_models.floorplan import Floorplan

from ..core.config import RunConfig, load_config
from .counts import count_example
from .setup import make_setup


def budget_for_config(cfg: RunConfig, *, arch=DEFAULT_ARCH, arch_overrides: dict | None = None, dataflow=None,
                      workload=None, feedback_seed=None, feedback_storage="stored", energy_table=DEFAULT_TABLE,
                      floorplan=None, node_nm=None, vdd_v=None, energy_factors=None, inference=False, variant=None):
    """Hardware budget of ``cfg`` (its counts per training example) on architecture ``arch``.

    ``workload``: the layers of a network this project does not train (a published chip's), priced
    with ``cfg``'s algorithm and formats; by default the net ``cfg`` trains. ``node_nm``/``vdd_v``
    move the energy table and the template to another node (``energy_factors``: extra energy-table
    node factors, e.g. the template's Stillmaker-Baas ones for 65 or 28 nm); ``inference=True`` keeps
    the forward pass only (weights and forward buffers, no learning channel)."""
    setup = make_setup(cfg, workload=workload, feedback_seed=feedback_seed, feedback_storage=feedback_storage)
    fp = floorplan or Floorplan()
    counts = count_example(setup, fp)
    a = load_architecture(arch, arch_overrides)
    table = load_energy_table(energy_table)
    if energy_factors:
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in table.data.items()}
        data["node_scaling"] = {**data["node_scaling"], "factors": {**data["node_scaling"]["factors"],
                                                                   **{str(k): v for k, v in energy_factors.items()}}}
        table = load_energy_table(data)
    if node_nm is not None:
        a = a.at_node(node_nm)
        table = table.at_node(node_nm, vdd_v)
    actions, memory, wires, links = counts.actions, counts.memory, counts.wires, counts.links
    if inference:
        actions, memory, wires, links = inference_view(actions, memory, wires)
    meta = {"variant": variant or cfg.label(), "algorithm": setup.algorithm, "config_hash": cfg.config_hash(),
            "network": [layer.describe() for layer in setup.layers], "inference_only": inference,
            "formats": {"error": setup.error.label(), "signal": setup.signal.label(),
                        "feedback": setup.feedback.label(), "update": setup.update.label(),
                        "accumulator": setup.acc.label(), "weights": setup.weight.label(),
                        "activations": setup.act.label()},
            "feedback": {"spec": setup.fb_spec.spec, "storage": setup.storage,
                         "drawn": "seed" if feedback_seed is not None else "expected", "seed": feedback_seed},
            "floorplan": fp.metadata()}
    return hardware_budget(actions, memory, setup.layers, links, wires, setup.batch, a, table, dataflow=dataflow,
                           meta=meta)


# ------------------------------------------------------------------------------------------------
# the MNIST comparison and the depth sweep

MNIST_BASE = ("model.dataset=mnist", "model.hidden=[100,100,100,100]", "train.batch_size=100", "train.epochs=100")
EIGHT_BIT = ("formats.error=fixed:w=8,f=6", "formats.signal=fixed:w=8,f=6", "formats.feedback=fixed:w=8,f=6",
             "formats.update=fixed:w=8,f=6", "formats.accumulator=fixed:w=16,f=12", "formats.weights=fixed:w=8,f=6",
             "formats.activations=fixed:w=8,f=6")
MNIST_ALGORITHMS = (("BP", ("channel.algorithm=bp",), None), ("RBP", ("channel.algorithm=rbp",), None),
                    ("SRBP", ("channel.algorithm=srbp",), None),
                    ("SRBP sparse-1", ("channel.algorithm=srbp", "channel.feedback=sparse:n=1"), 0))


def mnist_budgets(dataflow: str, arch=DEFAULT_ARCH, arch_overrides=None, floorplan=None) -> list[tuple[str, object]]:
    """(label, budget) for BP, RBP, SRBP and sparse-1 SRBP, float and 8-bit, on the paper's MNIST net."""
    out = []
    for precision, extra in (("float", ()), ("8-bit", EIGHT_BIT)):
        for name, overrides, seed in MNIST_ALGORITHMS:
            cfg = load_config(None, [*MNIST_BASE, *overrides, *extra])
            label = f"{name}, {precision}"
            out.append((label, budget_for_config(cfg, arch=arch, arch_overrides=arch_overrides, dataflow=dataflow,
                                                 feedback_seed=seed, floorplan=floorplan, variant=label)))
    return out


def depth_sweep(depths=range(2, 11), arch=DEFAULT_ARCH) -> list[tuple]:
    rows = []
    for d in depths:
        hidden = "[" + ",".join(["100"] * d) + "]"
        row = [d]
        for algo in ("bp", "rbp", "srbp"):
            cfg = load_config(None, [*MNIST_BASE, f"model.hidden={hidden}", f"channel.algorithm={algo}"])
            row.append(budget_for_config(cfg, arch=arch, variant=f"{algo} depth {d}"))
        rows.append(tuple(row))
    return rows


def mnist_report(arch=DEFAULT_ARCH) -> str:
    from hw_models.budget_report import (comparison_table, dataflow_table, depth_table, describe_schedule,
                                         layer_phase_latency_table)
    per_example = mnist_budgets("per_example", arch)
    tiled = mnist_budgets("minibatch_tiled", arch)
    pipelined = mnist_budgets("per_example", arch, {"schedule.pipeline": "examples", "schedule.overlap_update": True})
    bus = mnist_budgets("per_example", arch, floorplan=Floorplan(wire_model="broadcast"))
    depth = depth_sweep(arch=arch)
    a = per_example[0][1]
    arch_meta = a.meta["architecture"]
    pairs = [(pe[0], pe[1], mt[1]) for pe, mt in zip(per_example, tiled)]
    text = [
        "# Hardware budget: MNIST 784-100-100-100-100-10 (energy, latency, area, throughput)", "",
        "Generated by `lowbit-rbp budget mnist --out reports/hw_budget_mnist.md` (hw_models budget "
        f"schema {a.meta['schema_version']}); do not edit by hand. Per training example unless stated; minibatch 100.",
        "", f"Template: {describe_schedule(a)}. Energy table {a.meta['energy_table']['name']} "
        f"(dynamic energy, as reports/cost_mnist.md) plus leakage (template). Float: float32 everywhere; 8-bit: "
        "weights, activations, errors, signals, feedback and updates fixed:w=8,f=6, accumulators fixed:w=16,f=12. "
        "Sparse-1 SRBP counts the non-zeros drawn with seed 0 (stored as index lists).", "",
        "Template figures and their sources: " + "; ".join(f"[{k}] {v}" for k, v in arch_meta["sources"].items()
                                                            if k in ("clock", "area", "sram", "leakage", "wires",
                                                                     "dram")) + ".", "",
        "## Side by side: per-example accumulation (the paper's section 5.2, online learning)", "",
        "Every example's update is read-modify-written through the SRAM gradient accumulator (the cost model's "
        "counts); examples one after another, no pipeline. 'WG share' is the weight gradient's share of the total "
        "energy. Example latency is one example's forward, learning channel and weight gradient; time per example "
        "is the minibatch's latency (with its weight update) / 100.", "",
        comparison_table(per_example), "",
        "## Side by side: minibatch tiling (accelerator dataflow)", "",
        "Each tile's PEs hold 16 accumulators each in registers and stream the minibatch through them; each SRAM "
        "accumulator is read and written once per minibatch; the minibatch's activations and signals are kept "
        "until its weight gradient, which runs after the last example.", "",
        comparison_table(tiled), "",
        "## The dataflow, side by side", "",
        dataflow_table(pairs), "",
        "## Pipelined examples with update/forward overlap (per-example accumulation)", "",
        "Examples stream through the tiles (initiation interval = the busiest tile's work per example, an ideal "
        "pipeline); each tile's activations and signals are held for every example in flight; a tile's weight update "
        "overlaps the next minibatch's forward in the tiles below.", "",
        comparison_table(pipelined), "",
        "## Area with bus wires", "",
        "The tables above count one wire per forward synapse and per backward connection (the cost model's "
        "point-to-point floorplan, as reports/cost_mnist.md: the paper's wire argument), so wires dominate the area. "
        "With one bus wire per sending neuron and receiving tile (`wire_model = broadcast`), per-example "
        "accumulation:", "",
        comparison_table(bus), "",
        "## SRBP's latency advantage against depth", "",
        "Hidden layers of 100 neurons between the 784 inputs and 10 outputs; float32, per-example accumulation, no "
        "pipeline. BP's and RBP's learning channel runs down the layers one after another (a layer's channel starts "
        "when the layer above has its signal); SRBP's channels all start once T - O exists. Example latency = "
        "forward + output error + channel + the last weight gradient.", "",
        depth_table(depth), "",
        "## Per layer and phase (float32, per-example accumulation)", "",
        layer_phase_latency_table([per_example[0], per_example[2]]), "",
        "## Schedule model and assumptions", "",
    ]
    text += [f"- {x}" for x in a.meta["assumptions"]]
    text += [f"- {n}" for n in per_example[0][1].notes]
    return "\n".join(text) + "\n"


# ------------------------------------------------------------------------------------------------
# validation against published chips

def chip_budgets(chip, arch=DEFAULT_ARCH) -> dict:
    """{variant name: budget} of one ``hw_models.validation.Chip``."""
    base_arch = load_architecture(arch)
    factors = {chip.node_nm: base_arch.energy_factor(chip.node_nm)}
    out = {}
    for name, v in chip.variants.items():
        cfg = load_config(None, [*chip.base_overrides, f"formats.weights={chip.weight_format}",
                                 f"formats.activations={chip.activation_format}", *v.overrides])
        overrides = {**dict(chip.arch_overrides), **dict(v.arch_overrides), "schedule.dataflow": chip.dataflow}
        out[name] = budget_for_config(cfg, arch=arch, arch_overrides=overrides, workload=list(chip.network),
                                      feedback_storage=v.feedback_storage, node_nm=chip.node_nm,
                                      vdd_v=chip.vdd_v, energy_factors=factors, inference=v.inference,
                                      floorplan=Floorplan(wire_model="broadcast"), variant=f"{chip.key}: {name}")
    return out


def validation_report(arch=DEFAULT_ARCH) -> str:
    from hw_models.budget_report import validation_markdown
    from hw_models.validation import CHIPS, evaluate, why_off
    results = []
    for chip in CHIPS:
        budgets = chip_budgets(chip, arch)
        results.append((chip, budgets, evaluate(chip, budgets), why_off(chip, budgets)))
    summary = [[r["chip"], r["claim"], f"{100 * r['published_low']:.1f}%" if r["published_low"] == r["published_high"]
                else f"{100 * r['published_low']:.1f}-{100 * r['published_high']:.1f}%", f"{100 * r['predicted']:.1f}%",
                "yes" if r["within_2x"] else "no"] for _, _, rows, _ in results for r in rows]
    from hw_models.budget_report import md_table
    head = ["# Hardware model against published on-chip-learning chips", "",
            "Generated by `lowbit-rbp budget validation --out reports/hw_validation.md`; do not edit by "
            "hand. Each chip is modelled with our counts (lowbit_rbp.cost) at its node and an assumed precision and "
            "topology, on the default template moved to that node (areas and leakage by Stillmaker-Baas factors, the "
            "energy table by the same source's energy factor at 0.9 V and wires by Vdd^2), with one bus wire per "
            "sending neuron (`wire_model = broadcast`). Every assumption is listed under its chip; the network sizes and "
            "precisions in particular were not in the sources available to this session (abstracts only).", "",
            md_table(["chip", "claim", "published", "predicted", "within 2x"], summary), ""]
    return "\n".join(head) + "\n" + validation_markdown(results) + "\n"
