"""What the learning channel of a run config costs in hardware: counts of every action per layer
and phase (``counts``), priced by the hardware models (``hw_models``) into a cost report
(``report``), rendered as Markdown, CSV and JSON; a run's cost per training example as one flat
record for reports, budgets and searches (``per_example``).

    from lowbit_rbp.cost import cost_report, render_markdown
    rep = cost_report(cfg)                 # cfg: lowbit_rbp.core.config.RunConfig
    rep.summary["channel"]["feedback_mults"], render_markdown(rep), rep.to_csv(), rep.to_json()

Schema of the records: hw_models/SCHEMA.md.
"""
from .counts import ChannelLayerCount, channel_op_counts, count_example, examples_per_epoch
from .setup import make_setup
from .report import cost_report, render_markdown

__all__ = ["ChannelLayerCount", "channel_op_counts", "count_example", "cost_report", "examples_per_epoch",
           "make_setup", "render_markdown"]
