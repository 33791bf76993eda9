"""Area and leakage power of a tiled learning accelerator, from the storage records, the actions (which
size the processing elements), the floorplan's wires and an architecture template.

- SRAM: every data structure held in SRAM (weights, stored feedback, gradient accumulators, activations
  kept for the update, signal buffers, ...) at ``sram.area_per_bit``; with a fixed ``sram.capacity`` the
  whole capacity is counted (the part the state does not use is listed as ``unused``). With a pipeline the
  activations and signals of every example in flight are held (``hold_in_flight``).
- Processing elements: ``pe.per_layer`` per tile; each has one multiplier and one adder sized to the
  tile's widest multiply and add (``pe.mult_bits``/``add_bits`` = "auto"), integer units from the Aladdin
  figures (adder linear in width, multiplier proportional to the product of the widths), float units by
  the template's structural estimate (significand multiplier or three significand adders, plus an
  exponent adder); with fixed widths, one integer multiplier and adder of those widths (floats emulated).
- Registers: the minibatch-tiling accumulators (``accumulator_registers``) at ``area.register_bit``.
- LFSRs: one per regenerated feedback matrix, (state bits + taps) x ``area.register_bit``.
- Wires: every link of the floorplan occupies one track of ``wires.pitch`` over its length, shared by
  ``wires.layers`` routing layers: area = total length x pitch / layers (an upper bound on the silicon it
  costs: wires over logic take none).
Leakage power: SRAM bits x ``sram.leakage_per_bit`` + logic area (PEs, registers, LFSRs) x
``leakage.logic_per_area``; wires and DRAM are not charged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .architecture import Architecture
from .latency import ADDER_OPS, FLOAT_ADDER_WIDTH, SIGNIFICAND_BITS
from .offchip import NOT_SRAM, Placement

EXPONENT_BITS = {16: 5, 32: 8, 64: 11}


@dataclass(frozen=True)
class AreaItem:
    layer: int
    component: str      # weights, feedback, ..., pe, accumulator_registers, lfsr, wires_forward, wires_backward, unused
    category: str       # sram | pe | register | lfsr | wire
    bits: float
    units: float        # PEs, LFSRs, wire links; bits for storage
    um2: float
    leakage_nw: float
    note: str = ""


@dataclass
class AreaReport:
    items: list
    offchip_bits: float
    notes: list = field(default_factory=list)

    @property
    def total_um2(self) -> float:
        return sum(i.um2 for i in self.items)

    @property
    def total_mm2(self) -> float:
        return self.total_um2 * 1e-6

    @property
    def leakage_w(self) -> float:
        return sum(i.leakage_nw for i in self.items) * 1e-9

    def by_category_mm2(self) -> dict:
        out = {}
        for i in self.items:
            out[i.category] = out.get(i.category, 0.0) + i.um2 * 1e-6
        return out

    def by_component_mm2(self) -> dict:
        out = {}
        for i in self.items:
            out[i.component] = out.get(i.component, 0.0) + i.um2 * 1e-6
        return out

    def layer_mm2(self, layer: int) -> float:
        return sum(i.um2 for i in self.items if i.layer == layer) * 1e-6

    def to_dict(self) -> dict:
        return {"total_mm2": self.total_mm2, "by_category_mm2": self.by_category_mm2(),
                "by_component_mm2": self.by_component_mm2(), "leakage_w": self.leakage_w,
                "offchip_bits": self.offchip_bits, "items": [asdict(i) for i in self.items], "notes": self.notes}


def int_add_area(bits: float, arch: Architecture) -> float:
    return arch.int_add_um2_per_bit * bits


def int_mult_area(a: float, b: float, arch: Architecture) -> float:
    return arch.int_mult_um2_per_bit2 * a * b


def float_mult_area(bits: int, arch: Architecture) -> float:
    s, e = SIGNIFICAND_BITS[bits], EXPONENT_BITS[bits]
    return int_mult_area(s, s, arch) + int_add_area(e, arch)


def float_add_area(bits: int, arch: Architecture) -> float:
    s, e = SIGNIFICAND_BITS[bits], EXPONENT_BITS[bits]
    return 3 * int_add_area(s + 3, arch) + int_add_area(e, arch)


def pe_units(actions) -> dict:
    """The widest operation of each unit a tile's actions need: int multiply (a, b), int add width,
    float multiply and add widths (0 where none)."""
    u = {"int_mult": (0, 0), "int_add": 0, "float_mult": 0, "float_add": 0}
    for a in actions:
        if a.op == "mult":
            if a.dtype == "float":
                u["float_mult"] = max(u["float_mult"], max(a.bits_a, a.bits_b))
            elif a.bits_a * max(a.bits_b, 1) > u["int_mult"][0] * u["int_mult"][1]:
                u["int_mult"] = (a.bits_a, max(a.bits_b, 1))
        elif a.op in ADDER_OPS:
            if a.dtype == "float" and a.op == "add":
                u["float_add"] = max(u["float_add"], a.bits_a)
            else:
                width = FLOAT_ADDER_WIDTH.get(a.op, a.bits_a) if a.dtype == "float" else a.bits_a
                u["int_add"] = max(u["int_add"], width)
        elif a.op == "activation_fn":
            if a.dtype == "float":
                u["float_mult"] = max(u["float_mult"], a.bits_a)
                u["float_add"] = max(u["float_add"], a.bits_a)
            else:
                u["int_add"] = max(u["int_add"], a.bits_a)
    return u


def pe_area(units: dict, arch: Architecture) -> tuple[float, str]:
    """Area of one PE and a description of its units."""
    if arch.mult_bits is not None or arch.add_bits is not None:
        m = arch.mult_bits or max(units["int_mult"]) or 8
        w = arch.add_bits or units["int_add"] or 32
        return int_mult_area(m, m, arch) + int_add_area(w, arch), f"int {m}x{m} multiplier, {w}-bit adder (fixed widths)"
    area, parts = 0.0, []
    a, b = units["int_mult"]
    if a:
        area += int_mult_area(a, b, arch)
        parts.append(f"int {a}x{b} multiplier")
    if units["float_mult"]:
        area += float_mult_area(units["float_mult"], arch)
        parts.append(f"fp{units['float_mult']} multiplier")
    if units["int_add"]:
        area += int_add_area(units["int_add"], arch)
        parts.append(f"{units['int_add']}-bit adder")
    if units["float_add"]:
        area += float_add_area(units["float_add"], arch)
        parts.append(f"fp{units['float_add']} adder")
    return area, ", ".join(parts) or "no arithmetic"


def hold_in_flight(memory, in_flight: dict) -> list:
    """Storage with each tile's activations kept and signal buffers multiplied by the examples in flight."""
    out = []
    for m in memory:
        copies = in_flight.get(m.layer, 1) if m.what in ("activations_kept", "signals") else 1
        out.append(m if copies == 1 else replace(m, bits=m.bits * copies, note=(m.note + "; " if m.note else "")
                                                 + f"x {copies} examples in flight"))
    return out


def area_report(actions, memory, n_layers: int, wires, arch: Architecture, placement: Placement) -> AreaReport:
    """Area and leakage of the chip that runs ``actions`` with the storage ``memory`` (as the dataflow and
    the pipeline scale it), ``wires`` (floorplan WireGroups) and the ``placement`` of its state."""
    items = []
    sram_leak = arch.sram_leak_nw_per_bit
    logic_leak = arch.logic_leak_nw_per_um2
    onchip_used = 0.0
    for m in memory:
        if m.bits <= 0:
            continue
        if m.what == "accumulator_registers":
            um2 = m.bits * arch.register_um2_per_bit
            items.append(AreaItem(m.layer, m.what, "register", m.bits, m.bits, um2, um2 * logic_leak, m.note))
            continue
        if m.what == "feedback" and m.kind == "regenerated":
            um2 = (arch.lfsr_state_bits + arch.lfsr_taps) * arch.register_um2_per_bit
            items.append(AreaItem(m.layer, "lfsr", "lfsr", arch.lfsr_state_bits, 1, um2, um2 * logic_leak,
                                  "regenerates the feedback matrix"))
            continue
        if m.what in NOT_SRAM:
            continue
        on = m.bits * (1.0 - placement.offchip_fraction.get(m.what, 0.0))
        onchip_used += on
        items.append(AreaItem(m.layer, m.what, "sram", on, on, on * arch.sram_um2_per_bit, on * sram_leak, m.note))
    if placement.capacity_bits is not None and placement.capacity_bits > onchip_used:
        free = placement.capacity_bits - onchip_used
        items.append(AreaItem(0, "unused", "sram", free, free, free * arch.sram_um2_per_bit, free * sram_leak,
                              "SRAM capacity the state does not use"))
    for h in range(1, n_layers + 1):
        acts = [a for a in actions if a.layer == h]
        if not acts:
            continue
        one, desc = pe_area(pe_units(acts), arch)
        n = arch.pes(h - 1, n_layers)
        items.append(AreaItem(h, "pe", "pe", 0.0, n, n * one, n * one * logic_leak, f"{n} PEs: {desc}"))
    for g in wires:
        if g.links <= 0 or g.length_mm <= 0:
            continue
        um2 = g.total_length_mm * 1000.0 * arch.wire_pitch_um / arch.wire_layers
        comp = "wires_forward" if g.phase == "forward" else "wires_backward"
        items.append(AreaItem(g.receiver, comp, "wire", 0.0, g.links, um2, 0.0,
                              f"{g.links:g} links of {g.length_mm:g} mm from tile {g.sender}"))
    notes = [f"SRAM {arch.sram_um2_per_bit:.3g} um2/bit, {sram_leak:.3g} nW/bit leakage; logic leakage "
             f"{logic_leak:.3g} nW/um2; wires {arch.wire_pitch_um:g} um pitch over {arch.wire_layers} layers"]
    return AreaReport(items, placement.offchip_bits, notes)
