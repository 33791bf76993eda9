"""Dataflow of the weight gradient, as a transformation of the action list (energy and latency follow).

``per_example`` (the paper's section 5.2, online neuromorphic learning, and what ``counts.py`` counts):
every example's ``R^h (O^{h-1})^T`` is added into the SRAM gradient accumulator, one read-modify-write of
every accumulator per example. Identity transformation.

``minibatch_tiled`` (what accelerators do): each tile's PEs hold a block of accumulators in registers
(``pe.per_layer x registers.accumulators_per_pe``) and stream the whole minibatch through it before moving
to the next block. Per weight layer with ``rows`` outputs (conv: output channels) and ``cols`` inputs per
output (conv: ``in_ch x k x k``) plus a bias column, P PEs and k registers per PE:

- every per-example SRAM accumulator read and write becomes a register read and write (dtype ``reg``,
  priced as the energy table's register-file stand-in, the SRAM rule at its size floor), and each SRAM
  accumulator is read and written once per minibatch (``count / batch`` per example);
- passes = ceil(rows / P) x ceil(cols / k) blocks; for each block every example's P signal values and k
  input activations are read again: the weight gradient's signal reads grow by ``passes x min(P, rows) /
  rows`` and its activation reads by ``passes x min(k, cols) / cols`` (for a convolution the same block
  rule is applied to the kernel matrix, an approximation);
- the minibatch's ``O^{h-1}`` and ``R^h`` are kept until the weight gradient runs after the minibatch's
  last example (``activations_kept`` and ``signals`` storage x batch; the weight gradient's reads come
  from these batch-sized buffers, so their capacity grows x batch; the writes into them keep the
  per-example buffer's price, an underestimate of a few pJ per example), and the accumulator registers
  are added to the storage (``accumulator_registers``);
- the weight gradient becomes per-minibatch work in the schedule (``per_minibatch_phases``).

``online`` (batch 1, as on-chip online learners such as SPOON or Park et al.'s processor do): each
example's update is added straight into the weights, so the gradient accumulator's storage and its SRAM
reads and writes disappear (the weight update's weight read and write remain). Requires batch 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .architecture import DATAFLOWS, Architecture, ArchitectureError
from .layers import Conv2d
from .records import MemoryRecord


@dataclass
class DataflowResult:
    dataflow: str
    actions: list
    memory: list
    notes: list = field(default_factory=list)
    reuse: dict = field(default_factory=dict)   # layer h -> {"passes", "signal_factor", "activation_factor"}


def check_dataflow(name: str) -> str:
    if name not in DATAFLOWS:
        raise ArchitectureError(f"dataflow: got {name!r}; allowed: {', '.join(DATAFLOWS)}")
    return name


def per_minibatch_phases(dataflow: str) -> frozenset:
    """Phases the schedule runs once per minibatch (after the minibatch's last example)."""
    check_dataflow(dataflow)
    return frozenset({"weight_update", "weight_gradient"} if dataflow == "minibatch_tiled" else {"weight_update"})


def block_shape(layer) -> tuple[int, int]:
    """(rows, cols) of the weight matrix the accumulator blocks tile; cols includes the bias column."""
    rows = layer.out_ch if isinstance(layer, Conv2d) else layer.n_out
    return rows, layer.n_weights // rows + 1


def reuse_factors(layer, pes: int, regs: int) -> dict:
    rows, cols = block_shape(layer)
    passes = math.ceil(rows / pes) * math.ceil(cols / regs)
    return {"rows": rows, "cols": cols, "passes": passes, "signal_factor": passes * min(pes, rows) / rows,
            "activation_factor": passes * min(regs, cols) / cols}


def apply_dataflow(actions, memory, layers, batch: int, arch: Architecture, dataflow: str | None = None) -> DataflowResult:
    """The action and storage lists under ``dataflow`` (default: the template's ``schedule.dataflow``)."""
    dataflow = check_dataflow(dataflow or arch.dataflow)
    actions, memory = list(actions), list(memory)
    if dataflow == "per_example":
        return DataflowResult(dataflow, actions, memory,
                              ["per-example accumulation: every example's update is read-modify-written through the "
                               "SRAM gradient accumulator"])
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ArchitectureError(f"batch size: got {batch!r}; allowed: an integer >= 1")
    if dataflow == "online":
        if batch != 1:
            raise ArchitectureError(f"dataflow 'online' adds every example's update into the weights: it needs "
                                    f"batch size 1, got {batch}")
        return DataflowResult(dataflow, [a for a in actions if a.what != "gradient_accumulator"],
                              [m for m in memory if m.what != "gradient_accumulator"],
                              ["online learning (batch 1): each update is added into the weights directly; no "
                               "gradient accumulator"])
    L = len(layers)
    trained = sorted({a.layer for a in actions if a.phase == "weight_gradient"})
    reuse = {h: reuse_factors(layers[h - 1], arch.pes(h - 1, L), arch.accumulators_per_pe) for h in trained}
    out = []
    acc_bits = {}
    for a in actions:
        if a.phase != "weight_gradient" or a.layer not in reuse:
            out.append(a)
        elif a.what == "gradient_accumulator":
            layer = layers[a.layer - 1]
            bits = a.count / (layer.n_weights + layer.n_biases)
            acc_bits[a.layer] = bits
            reg_bytes = arch.accumulators_per_pe * bits / 8.0
            out.append(replace(a, what="gradient_accumulator_register", dtype="reg", capacity_bytes=reg_bytes))
            out.append(replace(a, count=a.count / batch))
        elif a.what == "signals" and a.op == "sram_read":
            out.append(replace(a, count=a.count * reuse[a.layer]["signal_factor"],
                               capacity_bytes=a.capacity_bytes * batch))
        elif a.what == "activations" and a.op == "sram_read":
            out.append(replace(a, count=a.count * reuse[a.layer]["activation_factor"],
                               capacity_bytes=a.capacity_bytes * batch))
        else:
            out.append(a)
    mem = []
    for m in memory:
        if m.layer in reuse and m.what in ("activations_kept", "signals"):
            mem.append(replace(m, bits=m.bits * batch, note=(m.note + "; " if m.note else "") + f"kept for the {batch} "
                               "examples of a minibatch (minibatch tiling)"))
        else:
            mem.append(m)
    for h in trained:
        pes = arch.pes(h - 1, L)
        mem.append(MemoryRecord(h, "accumulator_registers", "register",
                                pes * arch.accumulators_per_pe * acc_bits.get(h, 0.0), pes * arch.accumulators_per_pe,
                                f"{pes} PEs x {arch.accumulators_per_pe} accumulators"))
    notes = [f"minibatch tiling: {arch.accumulators_per_pe} accumulators per PE in registers; each SRAM accumulator "
             f"read and written once per minibatch of {batch}; the weight gradient's operands are re-read once per "
             f"accumulator block; the minibatch's activations and signals are kept until its weight gradient"]
    return DataflowResult(dataflow, out, mem, notes, reuse)
