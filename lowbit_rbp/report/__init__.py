"""Reports from results stores: Markdown tables (each with its protocol) and PNG plots.

    from lowbit_rbp.report.sweep_report import write_report
    from lowbit_rbp.report.tables import load_results, group, budget
    write_report("results/sweeps.db", "reports/sweeps")          # tables.md + *.png
    budget("results/sweeps.db", energy_pj=5e5, wires=1e4)          # variants that fit, best first

Modules: ``tables`` (runs and groups of a store, axes, protocol, budget, Pareto front, Markdown
tables), ``plots`` (the shared plot style and every PNG), ``sweep_report`` (a whole store's report),
``experiment`` (a named sweep beside the paper's table), ``table1`` (the paper's Table 1 with
ordering check and explanations), ``semantics`` (the quantization-semantics study), ``markdown``
(number formatting and tables), ``paper`` (the paper's reference numbers). Stores are opened
read-only; cost columns come from ``lowbit_rbp.cost``.
"""
