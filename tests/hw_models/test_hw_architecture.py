"""Architecture templates: the default's canonical values, clear errors, overrides and node scaling; and the
rule that the hardware library's new modules do not depend on the training code."""
import ast
import re
from pathlib import Path

import pytest

from hw_models.architecture import ArchitectureError, known_architectures, load_architecture, parse_quantity


def test_default_template_in_canonical_units():
    a = load_architecture()
    assert "default45nm" in known_architectures()
    assert (a.node_nm, a.vdd_v, a.clock_hz) == (45, 0.9, 200e6)
    assert (a.bank_bits, a.bank_width_bits, a.ports) == (8 * 8192, 64, 1)
    assert a.sram_capacity_bits is None and a.mult_bits is None
    assert a.sram_um2_per_bit == pytest.approx(0.45) and a.sram_leak_nw_per_bit == pytest.approx(0.023)
    # Aladdin's 40 nm 32-bit adder (278 um2) and 32x32 multiplier (6350 um2) moved to 45 nm by the area table's
    # factor 1 / 0.7923
    assert a.int_add_um2_per_bit == pytest.approx(278 / 32 / 0.7923)
    assert a.int_mult_um2_per_bit2 == pytest.approx(6350 / 1024 / 0.7923)
    assert a.dram_bits_per_cycle == pytest.approx(12.8e9 * 8 / 200e6)
    assert all(v for v in a.sources.values())


def test_quantities_and_units():
    assert parse_quantity("8 KiB", "size", "x") == 65536
    assert parse_quantity("1.5 MHz", "frequency", "x") == 1.5e6
    assert parse_quantity("360 nm", "length", "x") == pytest.approx(0.36)
    assert parse_quantity("12.8 GB/s", "bandwidth", "x") == pytest.approx(102.4e9)


@pytest.mark.parametrize("field, value, message", [
    ("sram.capacity", "-1 MiB", "'-1 MiB' must be > 0"),
    ("sram.bank_size", "0 KiB", "must be > 0"),
    ("clock.frequency", "200 MHz/s", "unknown unit 'MHz/s'"),
    ("sram.area_per_bit", "0.45 um2", "unknown unit 'um2' in '0.45 um2'; allowed: nm2/bit, um2/bit"),
    ("dram.bandwidth", 12.8, "give a number with its unit"),
    ("pe.per_layer", 0, "got 0; allowed: an integer >= 1"),
    ("pe.per_layer", [64, -1], "pe.per_layer[1]"),
    ("pe.mult_bits", "wide", "allowed: an integer >= 1"),
    ("schedule.dataflow", "tiled", "allowed: per_example, minibatch_tiled, online"),
    ("dram.enabled", "yes", "allowed: true or false"),
    ("sram.bank_size", "16 bit", "smaller than one access"),
])
def test_bad_fields_name_the_field(field, value, message):
    with pytest.raises(ArchitectureError, match=re.escape(message)) as e:
        load_architecture("default45nm", {field: value})
    assert "default45nm" in str(e.value)


def test_missing_section_and_field():
    import tomllib
    from hw_models.architecture import ARCH_DIR
    data = tomllib.loads((ARCH_DIR / "default45nm.toml").read_text())
    leak = data["sram"].pop("leakage_per_bit")
    with pytest.raises(ArchitectureError, match="missing field 'sram.leakage_per_bit'"):
        load_architecture(data)
    data["sram"]["leakage_per_bit"] = leak
    del data["dram"]
    with pytest.raises(ArchitectureError, match=r"missing section \[dram\]"):
        load_architecture(data)


def test_files_overrides_and_names(tmp_path):
    with pytest.raises(ArchitectureError, match="known templates: default45nm"):
        load_architecture("nosuch")
    with pytest.raises(ArchitectureError, match="does not exist"):
        load_architecture(str(tmp_path / "x.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[meta\n")
    with pytest.raises(ArchitectureError, match="not valid TOML"):
        load_architecture(str(bad))
    with pytest.raises(ArchitectureError, match="unknown field"):
        load_architecture("default45nm", {"sram.colour": "blue"})
    a = load_architecture("default45nm", {"pe.per_layer": [8, 16], "sram.capacity": "1 MiB"})
    assert (a.pes(0, 2), a.pes(1, 2), a.sram_capacity_bits) == (8, 16, 8 * 1024 ** 2)
    with pytest.raises(ArchitectureError, match="one per layer"):
        a.pes(0, 3)


def test_node_scaling():
    a = load_architecture()
    b = a.at_node(65)
    # Stillmaker-Baas via hwcomponents: area x 1.5, leakage power x 1.2535 (energy factor at 0.9 V)
    assert b.sram_um2_per_bit == pytest.approx(0.45 * 1.5)
    assert b.sram_leak_nw_per_bit == pytest.approx(a.sram_leak_nw_per_bit * 1.2535)
    assert b.logic_leak_nw_per_um2 == pytest.approx(a.logic_leak_nw_per_um2 * 1.2535 / 1.5)
    assert b.clock_hz == a.clock_hz and a.energy_factor(28) == pytest.approx(0.5066)
    with pytest.raises(ArchitectureError, match="no node_scaling.area factor for 11 nm"):
        a.at_node(11)


def test_hardware_library_modules_do_not_import_the_training_code():
    """hw_models knows nothing of learning rules: no module of it imports lowbit_rbp (lowbit_rbp imports
    hw_models, never the other way round)."""
    root = Path(__file__).resolve().parents[2] / "hw_models"
    files = sorted(root.glob("*.py"))
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            elif isinstance(node, ast.Import):
                mods = [n.name for n in node.names]
            else:
                continue
            for m in mods:
                assert m.split(".")[0] != "lowbit_rbp", f"hw_models/{path.name} imports {m}"
