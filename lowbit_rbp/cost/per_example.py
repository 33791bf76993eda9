"""Cost per training example of a run config: the numbers the reports tabulate and plot, the budgets
bound and a design-space search optimises. The cost report's dynamic energy and counts
(``lowbit_rbp.cost.cost_report``) and the hardware budget on the default architecture template
(``lowbit_rbp.cost.budget``), as one flat record."""
from __future__ import annotations

from .budget import budget_for_config
from .report import cost_report

# Any of these can bound a budget.
COST_KEYS = ("energy_pj", "lc_energy_pj", "lc_ops", "wires", "bits_moved", "feedback_memory_bits",
             "budget_energy_pj", "area_mm2", "latency_s", "throughput_eps")
COST_INFO = {   # key: (table header, description without unit)
    "energy_pj": ("energy/ex (pJ)", "energy per training example: forward + learning channel + update"),
    "lc_energy_pj": ("LC energy/ex (pJ)", "learning-channel energy per example: error projection + channel learning"),
    "lc_ops": ("LC ops/ex", "learning-channel operations per example: mults + adds + sign flips + shifts"),
    "wires": ("LC wires", "learning-channel wires: backward connections"),
    "bits_moved": ("LC bits moved/ex", "bits moved on learning-channel wires per example"),
    "feedback_memory_bits": ("feedback memory (bits)", "feedback-weight memory"),
    "budget_energy_pj": ("energy+leak/ex (pJ)", "energy per training example with leakage, on the default "
                         "architecture template (hw_models/arch)"),
    "area_mm2": ("area (mm2)", "chip area on the default architecture template"),
    "latency_s": ("time/ex (s)", "time per training example (a minibatch's latency / its size) on the default "
                  "architecture template"),
    "throughput_eps": ("examples/s", "training examples per second on the default architecture template"),
}
# Keys where more is better: a budget bounds them from below, and they have no Pareto front of costs.
MAXIMIZED = ("throughput_eps",)
# The energy split shown beside the totals in budget tables (the "full cost breakdown").
BREAKDOWN_KEYS = ("energy_forward_pj", "energy_error_projection_pj", "energy_weight_gradient_pj",
                  "energy_weight_update_pj", "energy_channel_update_pj")


def default_cost(cfg) -> dict:
    """Cost per training example of ``cfg``, keyed by ``COST_KEYS`` and ``BREAKDOWN_KEYS``."""
    s = cost_report(cfg).summary
    e = s["energy_per_example_pj"]
    b = budget_for_config(cfg).summary
    return {"energy_pj": e["total"], "lc_energy_pj": e["error_projection"] + e["channel_update"],
            "lc_ops": s["channel"]["ops_total"], "wires": s["wires_backward"]["connections"],
            "bits_moved": s["wires_backward"]["bits_moved"], "feedback_memory_bits": s["memory"]["feedback_bits"],
            "budget_energy_pj": b["energy_per_example_pj"]["total"], "area_mm2": b["area"]["total_mm2"],
            "latency_s": b["latency"]["time_per_example_s"],
            "throughput_eps": b["latency"]["throughput_examples_per_s"],
            **{f"energy_{k}_pj": e[k] for k in ("forward", "error_projection", "weight_gradient", "weight_update",
                                                "channel_update")}}
