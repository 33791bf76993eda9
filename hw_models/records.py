"""What the hardware models price: counted actions and stored data of one training example.

The counts themselves come from whoever knows the workload (``lowbit_rbp.cost.counts`` counts
the learning channel of a run config); the hardware models only read these records.

Phases (named to line up with DNN+NeuroSim's FW / AG / WG / WU and with Accelergy's action counts):
    forward           FW  forward pass (MACs, activations, max-pool, softmax)
    error_projection  AG  the learning channel: output error, feedback products, f', quantizers, dropout
    weight_gradient   WG  per-example update R^h (O^{h-1})^T, its quantizer, minibatch accumulation
    weight_update     WU  applying the accumulated update once per minibatch (counts / batch size)
    channel_update    --  learning or recomputing the channel itself: ARBP/ASRBP dC, SBP products,
                          feedback re-sampling (per-minibatch parts / batch size)
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
