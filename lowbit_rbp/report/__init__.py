"""Reports from a sweep results store: Markdown tables (with their protocol) and PNG plots.

    from lowbit_rbp.report import load_results, write_report, budget
    write_report("results/sweeps.db", "reports/sweeps")          # tables.md + *.png
    budget("results/sweeps.db", energy_pj=5e5, wires=1e4)          # configs that fit, best first

Cost columns come from a pluggable ``cost_fn(RunConfig) -> dict | None`` (keys among
``COST_KEYS``); the default uses ``hw_models.cost_report`` when it can be imported, else none.
"""
from .tables import (COST_KEYS, budget, budget_markdown, default_cost, group, load_results, markdown_table,
                     pareto_front, protocol, protocol_markdown, write_report)

__all__ = ["COST_KEYS", "budget", "budget_markdown", "default_cost", "group", "load_results", "markdown_table",
           "pareto_front", "protocol", "protocol_markdown", "write_report"]
