"""Hardware cost model of the learning channel: what BP, RBP, SRBP and their variants cost per
training example, per epoch and per run, phase by phase (operations by width, memory, wires, energy).

    from hw_models import cost_report
    rep = cost_report(cfg)                 # cfg: lowbit_rbp.core.config.RunConfig
    rep.summary["channel"]["feedback_mults"], rep.to_markdown(), rep.to_csv(), rep.to_json()

Hardware budget (energy with leakage, latency, throughput, area, DRAM) from plain inputs:

    from hw_models import load_architecture, hardware_budget, accelergy_yaml, neurosim_csv, cheapest
    (the RunConfig glue is lowbit_rbp.hw_budget.budget_for_config)

Schema of the records: hw_models/SCHEMA.md.
"""
from .counts import (CHANNEL_RULES, PHASES, ChannelLayerCount, channel_op_counts, count_example, examples_per_epoch,
                     make_setup)
from .energy import DEFAULT_TABLE, EnergyTable, known_tables, load_energy_table
from .errors import CostModelError
from .floorplan import Floorplan
from .layers import Conv2d, Dense, mlp, network_from_config, paper_cifar_net
from .report import SCHEMA_VERSION, CostReport, CostRow, cost_report
from .architecture import Architecture, ArchitectureError, known_architectures, load_architecture
from .budget import BUDGET_SCHEMA, HardwareBudget, hardware_budget, inference_view
from .dataflow import apply_dataflow
from .exports import accelergy_yaml, neurosim_csv, parse_accelergy, parse_neurosim_csv
from .latency import schedule
from .area import area_report
from .planner import BudgetRecord, cheapest

__all__ = [
    "CHANNEL_RULES", "PHASES", "ChannelLayerCount", "channel_op_counts", "count_example", "examples_per_epoch",
    "make_setup", "DEFAULT_TABLE", "EnergyTable", "known_tables", "load_energy_table", "CostModelError",
    "Floorplan", "Conv2d", "Dense", "mlp", "network_from_config", "paper_cifar_net", "SCHEMA_VERSION",
    "CostReport", "CostRow", "cost_report",
    "Architecture", "ArchitectureError", "known_architectures", "load_architecture", "BUDGET_SCHEMA", "HardwareBudget",
    "hardware_budget", "inference_view", "apply_dataflow", "accelergy_yaml", "neurosim_csv", "parse_accelergy",
    "parse_neurosim_csv", "schedule", "area_report", "BudgetRecord", "cheapest",
]
