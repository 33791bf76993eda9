"""Glue between the training configuration and the hardware library: counts of a ``RunConfig`` (via
``hw_models.counts``) turned into a hardware budget (``hw_models.budget``), and the two reports.

    from lowbit_rbp.hw_budget import budget_for_config
    b = budget_for_config(load_config(None, ["channel.algorithm=srbp"]), dataflow="minibatch_tiled")

    python -m lowbit_rbp.hw_budget budget --set channel.algorithm=srbp [--format md|json|csv|accelergy|neurosim]
    python -m lowbit_rbp.hw_budget mnist --out reports/hw_budget_mnist.md
    python -m lowbit_rbp.hw_budget validation --out reports/hw_validation.md

This is the only module that knows both sides; everything it calls in ``hw_models`` takes plain inputs.
"""
from __future__ import annotations

from hw_models.architecture import DEFAULT_ARCH, load_architecture
from hw_models.budget import hardware_budget, inference_view
from hw_models.counts import count_example, make_setup
from hw_models.energy import DEFAULT_TABLE, load_energy_table
from hw_models.floorplan import Floorplan

from lowbit_rbp.core.config import RunConfig


def budget_for_config(cfg: RunConfig, *, arch=DEFAULT_ARCH, arch_overrides: dict | None = None, dataflow=None,
                      network=None, feedback_seed=None, feedback_storage="stored", weight_format="float32",
                      activation_format="float32", energy_table=DEFAULT_TABLE, floorplan=None, node_nm=None,
                      vdd_v=None, energy_factors=None, inference=False, variant=None):
    """Hardware budget of ``cfg`` (its counts per training example) on architecture ``arch``.

    ``node_nm``/``vdd_v`` move the energy table and the template to another node (``energy_factors``:
    extra energy-table node factors, e.g. the template's Stillmaker-Baas ones for 65 or 28 nm);
    ``inference=True`` keeps the forward pass only (weights and forward buffers, no learning channel)."""
    setup = make_setup(cfg, network=network, feedback_seed=feedback_seed, feedback_storage=feedback_storage,
                       weight_format=weight_format, activation_format=activation_format)
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
