"""Area and leakage of the two-layer toy, computed by hand, and state placement with DRAM."""
import pytest

from hw_models.area import area_report, float_add_area, float_mult_area, pe_units
from hw_models.offchip import place_state, split_offchip
from hw_models.records import MemoryRecord

from hw_toy import toy_actions, toy_arch, toy_memory, toy_wires


def test_two_layer_toy_area_by_hand():
    arch = toy_arch()
    mem = toy_memory()
    placement = place_state(toy_actions(), mem, None, True)
    rep = area_report(toy_actions(), mem, 2, toy_wires(), arch, placement)
    parts = rep.by_category_mm2()
    # PEs: each tile's widest multiply is 8 x 8 (64 um2 at 1 um2/bit^2) and widest add 16 bits (16 um2):
    # 80 um2 per PE, 2 PEs per tile, 2 tiles -> 320 um2
    assert parts["pe"] * 1e6 == pytest.approx(320)
    # SRAM: 120 + 64 weight bits, 240 + 128 accumulator bits, 48 feedback bits = 600 bits x 0.5 um2 -> 300 um2
    assert parts["sram"] * 1e6 == pytest.approx(300)
    # wires: 12 links x 1 mm x 1 um pitch on 1 layer = 12 x 1000 um x 1 um -> 12,000 um2
    assert parts["wire"] * 1e6 == pytest.approx(12_000)
    assert rep.total_um2 == pytest.approx(12_620)
    # leakage: 600 bits x 1 nW + 320 um2 of logic x 0.5 nW/um2 = 760 nW (wires leak nothing)
    assert rep.leakage_w == pytest.approx(760e-9)


def test_lfsr_and_registers_replace_stored_feedback():
    arch = toy_arch()
    mem = [MemoryRecord(1, "feedback", "regenerated", 64), MemoryRecord(1, "accumulator_registers", "register", 128)]
    rep = area_report([], mem, 2, [], arch, place_state([], mem, None, True))
    comp = rep.by_component_mm2()
    # LFSR: (16 state bits + 2 taps) x 2 um2 = 36 um2; registers: 128 bits x 2 um2 = 256 um2; no SRAM at all
    assert comp["lfsr"] * 1e6 == pytest.approx(36) and comp["accumulator_registers"] * 1e6 == pytest.approx(256)
    assert "sram" not in rep.by_category_mm2()


def test_pe_sized_by_widths():
    u = pe_units(toy_actions())
    assert u == {"int_mult": (8, 8), "int_add": 16, "float_mult": 0, "float_add": 0}
    arch = toy_arch()
    # fp32 multiplier: 24 x 24 significand product (576 um2) + 8-bit exponent adder (8 um2)
    assert float_mult_area(32, arch) == pytest.approx(584)
    # fp32 adder: three 27-bit adders (align, add, normalise) + 8-bit exponent adder = 81 + 8
    assert float_add_area(32, arch) == pytest.approx(89)


def test_fixed_capacity_spills_the_least_accessed_state_to_dram():
    acts, mem = toy_actions(), toy_memory()
    # accesses per stored bit: weights (120 + 64 + 60 + 32) / 184 = 1.5, accumulators (480 + 256) / 368 = 2,
    # feedback 48 / 48 = 1: accumulators stay first, then weights, then feedback
    p = place_state(acts, mem, 400, dram_enabled=True)
    assert p.order == ["gradient_accumulator", "weights", "feedback"]
    # 400 bits: all 368 accumulator bits, 32 of 184 weight bits on chip; the feedback off chip
    assert p.offchip_fraction["gradient_accumulator"] == 0
    assert p.offchip_fraction["weights"] == pytest.approx(1 - 32 / 184)
    assert p.offchip_fraction["feedback"] == 1
    assert p.onchip_bits == pytest.approx(400) and p.offchip_bits == pytest.approx(200)
    split = split_offchip(acts, p)
    dram = sum(a.count for a in split if a.dtype == "dram")
    assert dram == pytest.approx(48 + (120 + 64 + 60 + 32) * (1 - 32 / 184))
    # every bit is still accessed once: SRAM + DRAM = the original SRAM bits
    assert sum(a.count for a in split if a.dtype in ("sram", "dram")) == pytest.approx(
        sum(a.count for a in acts if a.dtype == "sram"))
    with pytest.raises(Exception, match="dram.enabled = false"):
        place_state(acts, mem, 400, dram_enabled=False)
