"""Hardware models: what actions cost and where they sit, knowing nothing of learning rules.

Energy tables as data with sources and their pricing rules (``energy``), operands and the
arithmetic a product or a sum needs (``operands``), layer shapes of the work (``layers``), a
floorplan's wires (``floorplan``), the records counted actions are priced into and their exports
(``records``, ``report``), published figures to set results beside (``anchors``).

The hardware budget (energy with leakage, latency, throughput, area, DRAM) from plain inputs: an
architecture template as data (``architecture``, ``arch/*.toml``), dataflows (``dataflow``), the
schedule model (``latency``), area and leakage (``area``), off-chip traffic (``offchip``), the
budget record (``budget``) and its exports (``exports``: Accelergy-style YAML, NeuroSim-style CSV),
the planner (``planner``) and published chips to check the model against (``validation``).

    from hw_models import load_architecture, hardware_budget, accelergy_yaml, neurosim_csv, cheapest

Counting what a training run's learning channel does is ``lowbit_rbp.cost``'s job; it hands its
counts to these models. Schema of the records: hw_models/SCHEMA.md.
"""
from .architecture import Architecture, ArchitectureError, known_architectures, load_architecture
from .area import area_report
from .budget import BUDGET_SCHEMA, HardwareBudget, hardware_budget, inference_view
from .dataflow import apply_dataflow
from .energy import DEFAULT_TABLE, EnergyTable, known_tables, load_energy_table
from .errors import CostModelError
from .exports import accelergy_yaml, neurosim_csv, parse_accelergy, parse_neurosim_csv
from .floorplan import Floorplan
from .latency import schedule
from .layers import Conv2d, Dense, mlp
from .planner import BudgetRecord, cheapest
from .records import PHASES, Action, Link, MemoryRecord
from .report import SCHEMA_VERSION, CostReport, CostRow

__all__ = [
    "Architecture", "ArchitectureError", "known_architectures", "load_architecture", "area_report", "BUDGET_SCHEMA",
    "HardwareBudget", "hardware_budget", "inference_view", "apply_dataflow", "DEFAULT_TABLE", "EnergyTable",
    "known_tables", "load_energy_table", "CostModelError", "accelergy_yaml", "neurosim_csv", "parse_accelergy",
    "parse_neurosim_csv", "Floorplan", "schedule", "Conv2d", "Dense", "mlp", "BudgetRecord", "cheapest", "PHASES",
    "Action", "Link", "MemoryRecord", "SCHEMA_VERSION", "CostReport", "CostRow",
]
