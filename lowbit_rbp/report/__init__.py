"""Reports from a sweep results store: Markdown tables (each with its protocol) and PNG plots.

    from lowbit_rbp.report import load_results, write_report, budget
    write_report("results/sweeps.db", "reports/sweeps")          # tables.md + *.png
    budget("results/sweeps.db", energy_pj=5e5, wires=1e4)          # configs that fit, best first

Cost columns come from a pluggable ``cost_fn(RunConfig) -> dict | None`` (keys among ``COST_KEYS``,
plus the energy split ``BREAKDOWN_KEYS`` shown in budget tables); the default uses
``hw_models.cost_report`` when it can be imported, else none. Stores are opened read-only.

Modules: ``tables`` (results, grouping, axes, protocol, budget, Pareto front, ``write_report``),
``plots`` (the shared plot style and every PNG), ``table1`` (the paper's Table 1 with ordering
check and explanations), ``semantics`` (the quantization-semantics study).
"""
from .tables import (AXES, BREAKDOWN_KEYS, COST_KEYS, axis_groups, axis_series, budget, budget_markdown,
                     default_cost, group, load_results, markdown_table, pareto_front, protocol, protocol_markdown,
                     write_report)

__all__ = ["AXES", "BREAKDOWN_KEYS", "COST_KEYS", "axis_groups", "axis_series", "budget", "budget_markdown",
           "default_cost", "group", "load_results", "markdown_table", "pareto_front", "protocol",
           "protocol_markdown", "write_report"]
