"""Which state fits the template's on-chip SRAM, and the DRAM traffic of the rest.

Storage kinds (``MemoryRecord.what``) are placed greedily: the kind with the most SRAM accesses per
stored bit stays on chip first, until ``sram.capacity`` is full; the kind that straddles the boundary
is split by bits. Accesses to a kind are assumed spread evenly over its bits, so a fraction ``f`` of a
kind off chip sends ``f`` of its access bits to DRAM (``dram_read``/``dram_write`` actions, dtype
``dram``, priced at ``dram.energy_per_bit``) and leaves ``1 - f`` in SRAM. With ``sram.capacity =
"auto"`` everything is on chip. Registers (minibatch-tiling accumulators, LFSR state) are not SRAM.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .architecture import ArchitectureError

# SRAM action ``what`` -> the storage kind (MemoryRecord.what) it touches.
ACCESS_KIND = {
    "weights": "weights", "forward_weights_transposed": "weights", "feedback_matrix": "feedback",
    "gradient_accumulator": "gradient_accumulator", "activations": "activations_kept", "signals": "signals",
    "channel_accumulator": "channel_accumulator", "velocity": "velocity", "pool_switches": "pool_switches",
}
NOT_SRAM = {"accumulator_registers"}


def sram_state_bits(memory) -> dict:
    """Bits held in SRAM per storage kind (regenerated feedback keeps only an LFSR state: not SRAM)."""
    out = {}
    for m in memory:
        if m.what in NOT_SRAM or (m.what == "feedback" and m.kind == "regenerated") or m.bits <= 0:
            continue
        out[m.what] = out.get(m.what, 0.0) + m.bits
    return out


@dataclass
class Placement:
    capacity_bits: float | None        # None: sized to the state
    state_bits: dict                   # kind -> bits held in SRAM or DRAM
    access_bits: dict                  # kind -> SRAM access bits per example (before placement)
    offchip_fraction: dict             # kind -> fraction of its bits (and accesses) in DRAM
    order: list                        # kinds in the order they were placed on chip
    notes: list = field(default_factory=list)

    @property
    def total_state_bits(self) -> float:
        return sum(self.state_bits.values())

    @property
    def onchip_bits(self) -> float:
        return sum(b * (1.0 - self.offchip_fraction.get(k, 0.0)) for k, b in self.state_bits.items())

    @property
    def offchip_bits(self) -> float:
        return self.total_state_bits - self.onchip_bits

    @property
    def sram_bits(self) -> float:
        """SRAM the chip has: the capacity, or the state when sized to it."""
        return self.capacity_bits if self.capacity_bits is not None else self.total_state_bits


def place_state(actions, memory, capacity_bits: float | None, dram_enabled: bool) -> Placement:
    state = sram_state_bits(memory)
    access = {}
    for a in actions:
        if a.dtype == "sram" and a.what in ACCESS_KIND:
            k = ACCESS_KIND[a.what]
            access[k] = access.get(k, 0.0) + a.count
    order = sorted(state, key=lambda k: (-access.get(k, 0.0) / state[k], k))
    if capacity_bits is None:
        return Placement(None, state, access, {k: 0.0 for k in state}, order, ["on-chip SRAM sized to the state"])
    total = sum(state.values())
    if total > capacity_bits and not dram_enabled:
        raise ArchitectureError(f"the state needs {total:,.0f} bits of memory but sram.capacity is {capacity_bits:,.0f} "
                                f"bits and dram.enabled = false; enlarge the SRAM or enable DRAM")
    free = capacity_bits
    frac = {}
    for k in order:
        on = min(state[k], free)
        free -= on
        frac[k] = 1.0 - on / state[k]
    notes = [f"on-chip SRAM {capacity_bits:,.0f} bits for {total:,.0f} bits of state; placed by accesses per bit: "
             + ", ".join(f"{k} {100 * (1 - frac[k]):.0f}% on chip" for k in order)]
    return Placement(capacity_bits, state, access, frac, order, notes)


def split_offchip(actions, placement: Placement) -> list:
    """SRAM actions of (partly) off-chip kinds split into their SRAM and DRAM parts."""
    out = []
    for a in actions:
        f = placement.offchip_fraction.get(ACCESS_KIND.get(a.what, ""), 0.0) if a.dtype == "sram" else 0.0
        if f <= 0.0:
            out.append(a)
            continue
        if f < 1.0:
            out.append(replace(a, count=a.count * (1.0 - f)))
        out.append(replace(a, op="dram_read" if a.op == "sram_read" else "dram_write", dtype="dram", count=a.count * f))
    return out
