"""Energy arithmetic against the table, by hand, and the scaling rules."""
import pytest

from lowbit_rbp.core.config import load_config
from hw_models import load_energy_table
from lowbit_rbp.cost import cost_report


@pytest.fixture(scope="module")
def table():
    return load_energy_table("horowitz45nm")


def test_table_values_and_scaling_rules(table):
    assert table.price("mult", "float", 32, 32)[0] == 3.7
    assert table.price("add", "float", 32)[0] == 0.9
    assert table.price("mult", "int", 8, 8)[0] == 0.2
    assert table.price("mult", "int", 32, 32)[0] == 3.1          # table value, not the rule's 3.2
    assert table.price("add", "int", 16)[0] == 0.05
    # quadratic multiply rule: 0.2 pJ x (a x b) / 64
    assert table.price("mult", "int", 4, 4)[0] == pytest.approx(0.2 * 16 / 64)
    assert table.price("mult", "int", 8, 32)[0] == pytest.approx(0.8)
    # linear add rule: 0.03 pJ x b / 8
    e, rule = table.price("add", "int", 12)
    assert e == pytest.approx(0.045) and "linear" in rule
    # derived: a sign flip of an 8-bit integer = an 8-bit add; a shift of a float = an 8-bit exponent add
    assert table.price("sign_flip", "int", 8, 1)[0] == 0.03
    assert table.price("shift", "float", 32, 3)[0] == 0.03
    # SRAM per bit: 0.156 x (C / 8 KB)^0.47 reproduces Horowitz's 64-bit reads (10 / 20 / 100 pJ)
    for cap, per64 in ((8192, 10), (32768, 20), (1 << 20, 100)):
        assert 64 * table.price("sram_read", "sram", capacity_bytes=cap)[0] == pytest.approx(per64, rel=0.05)
    assert table.price("sram_read", "sram", capacity_bytes=10)[0] == pytest.approx(0.156 * (1024 / 8192) ** 0.47)
    assert table.price("wire", "wire")[0] == 0.12
    assert table.price("wire", "wire", activity=0.25)[0] == pytest.approx(0.06)
    assert table.price("rng_bit", "lfsr")[0] == 0.01


def test_node_scaling(table):
    t7 = table.at_node(7)
    assert t7.price("mult", "float", 32, 32)[0] == pytest.approx(3.7 * 0.094)
    assert t7.price("wire", "wire")[0] == pytest.approx(0.12)            # wires: not scaled with the node
    t = table.at_node(45, vdd_v=0.7)
    assert t.price("wire", "wire")[0] == pytest.approx(0.12 * (0.7 / 0.9) ** 2)
    assert t.price("mult", "float", 32, 32)[0] == pytest.approx(3.7)
    rep = cost_report(load_config(None, ["channel.algorithm=srbp"]), node_nm=16)
    assert rep.meta["energy_table"]["node_nm"] == 16
    assert any("0.17" in n for n in rep.meta["energy_table"]["node_scaling"])


def test_srbp_channel_energy_by_hand():
    r = cost_report(load_config(None, ["channel.algorithm=srbp"]))
    # 4,000 fp32 products at 3.7 pJ, 3,600 fp32 adds at 0.9 pJ
    assert r.energy(phase="error_projection", what="feedback_product") == pytest.approx(4000 * 3.7)
    assert r.energy(phase="error_projection", what="feedback_accumulate") == pytest.approx(3600 * 0.9)
    # wires: 1,000 connections each of 4, 3, 2, 1 mm x 32 bits x 0.12 pJ/bit/mm
    assert r.summary["wires_backward"]["energy_pj"] == pytest.approx(1000 * (4 + 3 + 2 + 1) * 32 * 0.12)
    # reading C^1 (10 x 100 float32 = 4,000 bytes) once: 32,000 bits x 0.156 x (4000/8192)^0.47 pJ
    per_bit = 0.156 * (4000 / 8192) ** 0.47
    assert per_bit == pytest.approx(0.11138, rel=1e-3)
    assert r.energy(phase="error_projection", what="feedback_matrix", layer=1) == pytest.approx(32000 * per_bit)
    assert 32000 * per_bit == pytest.approx(3564.1, rel=1e-3)


def test_fixed_point_energy_by_hand():
    r = cost_report(load_config(None, ["channel.algorithm=rbp", "formats.feedback=fixed:w=8,f=6",
                                       "formats.error=fixed:w=8,f=6", "formats.signal=fixed:w=8,f=6",
                                       "formats.quantize_at=after_fprime"]))
    # 31,000 int 8x8 multiplies at 0.2 pJ; adds 23 bits wide (layers 1-3) and 20 bits (layer 4), linear rule
    assert r.energy(what="feedback_product") == pytest.approx(31000 * 0.2)
    adds = 3 * 9900 * 0.03 * 23 / 8 + 900 * 0.03 * 20 / 8
    assert r.energy(what="feedback_accumulate") == pytest.approx(adds)


def test_energy_is_sum_of_count_times_price():
    r = cost_report(load_config(None, ["channel.algorithm=rbp", "channel.feedback=sparse:n=2"]))
    for row in r.rows:
        assert row.energy_pj == pytest.approx(row.count * row.energy_per_unit_pj)
        assert row.energy_per_unit_pj >= 0
    e = r.summary["energy_per_example_pj"]
    assert e["total"] == pytest.approx(sum(row.energy_pj for row in r.rows))
    assert e["total"] == pytest.approx(sum(v for k, v in e.items() if k != "total"))
    split = r.summary["energy_split_pj"]
    assert e["total"] == pytest.approx(sum(split.values()))
    assert r.summary["energy_per_epoch_j"] == pytest.approx(e["total"] * 60000 * 1e-12)
    assert r.summary["energy_per_run_j"] == pytest.approx(e["total"] * 60000 * 20 * 1e-12)


def test_regenerated_feedback_uses_lfsr_bits():
    cfg = load_config(None, ["channel.algorithm=srbp"])
    stored = cost_report(cfg)
    regen = cost_report(cfg, feedback_storage="regenerated")
    assert regen.count(what="feedback_regenerated", op="rng_bit") == 4 * 1000 * 32
    assert regen.energy(what="feedback_regenerated") == pytest.approx(4 * 1000 * 32 * 0.01)
    assert regen.count(what="feedback_matrix") == 0
    assert regen.summary["memory"]["feedback_bits"] == 4 * 64
    assert stored.summary["memory"]["feedback_bits"] == 4 * 1000 * 32


def test_user_table_file_is_used(tmp_path, table):
    text = (table.path and open(table.path).read())
    p = tmp_path / "cheap.toml"
    p.write_text(text.replace('name = "horowitz45nm"', 'name = "cheap"').replace("32 = 3.7", "32 = 1.0"))
    r = cost_report(load_config(None, ["channel.algorithm=srbp"]), energy_table=str(p))
    assert r.meta["energy_table"]["name"] == "cheap"
    assert r.energy(what="feedback_product") == pytest.approx(4000 * 1.0)
