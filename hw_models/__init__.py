"""Hardware models: what actions cost and where they sit, knowing nothing of learning rules.

Energy tables as data with sources and their pricing rules (``energy``), operands and the
arithmetic a product or a sum needs (``operands``), layer shapes of the work (``layers``), a
floorplan's wires (``floorplan``), the records counted actions are priced into and their exports
(``records``, ``report``), published figures to set results beside (``anchors``).

Counting what a training run's learning channel does is ``lowbit_rbp.cost``'s job; it hands its
counts to these models. Schema of the records: hw_models/SCHEMA.md.
"""
from .energy import DEFAULT_TABLE, EnergyTable, known_tables, load_energy_table
from .errors import CostModelError
from .floorplan import Floorplan
from .layers import Conv2d, Dense, mlp
from .records import PHASES, Action, MemoryRecord
from .report import SCHEMA_VERSION, CostReport, CostRow

__all__ = [
    "DEFAULT_TABLE", "EnergyTable", "known_tables", "load_energy_table", "CostModelError", "Floorplan", "Conv2d",
    "Dense", "mlp", "PHASES", "Action", "MemoryRecord", "SCHEMA_VERSION", "CostReport", "CostRow",
]
