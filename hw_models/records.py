"""Plain records shared by the cost model and the hardware library (no dependency on the training code).

``Action``: an Accelergy-style action count (what, how many, of which width); ``MemoryRecord``: bits a
data structure holds; ``Link``: which layer's learning signal feeds which layer's channel. The hardware
models (latency, area, dataflow, exports) take lists of these and nothing from ``lowbit_rbp``.
"""
from __future__ import annotations

from dataclasses import dataclass

PHASES = ("forward", "error_projection", "weight_gradient", "weight_update", "channel_update")
NEUROSIM_PHASE = {"forward": "FW", "error_projection": "AG", "weight_gradient": "WG", "weight_update": "WU",
                  "channel_update": "-"}
ARITH_OPS = ("mult", "add", "sign_flip", "shift", "compare", "activation_fn")


@dataclass(frozen=True)
class Action:
    """``count`` units of one action (an Accelergy-style action count). Units: ``op`` for
    arithmetic, ``bit`` for SRAM reads/writes and random bits, ``bit_mm`` for wires."""

    phase: str
    layer: int
    what: str
    op: str
    dtype: str
    bits_a: int
    bits_b: int
    count: float
    unit: str = "op"
    capacity_bytes: float = 0.0


@dataclass(frozen=True)
class MemoryRecord:
    """Storage of one data structure (bits held, not accesses)."""

    layer: int
    what: str      # weights | feedback | activations | signals | gradient_accumulator | pool_switches | ...
    kind: str      # dense | sparse_index | lowrank | regenerated | shared_forward | product | buffer
    bits: float
    nnz: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Link:
    """The learning channel into weight layer ``receiver`` (0-based) from layer ``sender``'s signal."""

    receiver: int
    sender: int
    source: str    # forward (BP: W^{h+1}) | random (C^h) | forward_product (SBP)


def wire_actions(wires) -> list[Action]:
    """The floorplan's wire groups as actions (one per group, ``bit_mm`` moved per example), charged to
    the receiving tile, as ``report.py`` prices them."""
    return [Action(g.phase, g.receiver, f"wires_from_tile_{g.sender}", "wire", "wire", int(g.bits), 0,
                   float(g.bit_mm), "bit_mm") for g in wires if g.bit_mm > 0]
