"""The dataflow transformation: counts moved by hand, the online variant, and the MNIST SRBP effect."""
import math

import pytest

from lowbit_rbp.core.config import load_config
from lowbit_rbp.cost.budget import budget_for_config
from lowbit_rbp.cost import cost_report
from hw_models.architecture import load_architecture
from lowbit_rbp.cost import count_example, make_setup
from hw_models.dataflow import apply_dataflow, per_minibatch_phases, reuse_factors
from hw_models.layers import Dense

MNIST = ["model.dataset=mnist", "model.hidden=[100,100,100,100]", "train.batch_size=100"]


def toy_counts(batch=10):
    cfg = load_config(None, ["model.dataset=mnist", "model.hidden=[20]", "channel.algorithm=srbp",
                             f"train.batch_size={batch}"])
    s = make_setup(cfg)
    return s, count_example(s)


def test_reuse_factors_by_hand():
    # 784 -> 20 with 64 PEs and 16 registers each: rows 20, cols 784 + 1 bias = 785;
    # passes = ceil(20/64) x ceil(785/16) = 1 x 50; signals re-read 50 x min(64, 20) / 20 = 50 times;
    # activations 50 x 16 / 785 times
    f = reuse_factors(Dense(784, 20), 64, 16)
    assert (f["rows"], f["cols"], f["passes"]) == (20, 785, 50)
    assert f["signal_factor"] == 50 and f["activation_factor"] == pytest.approx(800 / 785)


def test_minibatch_tiling_moves_accumulator_traffic_to_registers():
    s, c = toy_counts(batch=10)
    arch = load_architecture()
    df = apply_dataflow(c.actions, c.memory, s.layers, 10, arch, "minibatch_tiled")

    def total(actions, **m):
        return sum(a.count for a in actions if all(getattr(a, k) == v for k, v in m.items()))
    for h, layer in ((1, Dense(784, 20)), (2, Dense(20, 10))):
        before = total(c.actions, layer=h, phase="weight_gradient", what="gradient_accumulator")
        # every per-example accumulator access becomes a register access ...
        assert total(df.actions, layer=h, what="gradient_accumulator_register", dtype="reg") == pytest.approx(before)
        # ... and the SRAM accumulator is read and written once per minibatch of 10
        assert total(df.actions, layer=h, phase="weight_gradient", what="gradient_accumulator",
                     dtype="sram") == pytest.approx(before / 10)
        f = reuse_factors(layer, 64, 16)
        for what, key in (("signals", "signal_factor"), ("activations", "activation_factor")):
            old = total(c.actions, layer=h, phase="weight_gradient", what=what, op="sram_read")
            assert total(df.actions, layer=h, phase="weight_gradient", what=what, op="sram_read") == pytest.approx(
                old * f[key])
    # nothing else changes: arithmetic of every phase is the same
    assert total(df.actions, op="mult") == total(c.actions, op="mult")
    # storage: the minibatch's activations and signals are kept, and the registers appear
    kept = {(m.layer, m.what): m.bits for m in df.memory}
    orig = {(m.layer, m.what): m.bits for m in c.memory}
    assert kept[(1, "activations_kept")] == 10 * orig[(1, "activations_kept")]
    assert kept[(1, "accumulator_registers")] == 64 * 16 * 32      # 64 PEs x 16 registers x float32
    assert per_minibatch_phases("minibatch_tiled") == {"weight_gradient", "weight_update"}


def test_online_dataflow_drops_the_accumulator_and_needs_batch_1():
    s, c = toy_counts(batch=1)
    df = apply_dataflow(c.actions, c.memory, s.layers, 1, load_architecture(), "online")
    assert not [a for a in df.actions if a.what == "gradient_accumulator"]
    assert not [m for m in df.memory if m.what == "gradient_accumulator"]
    with pytest.raises(Exception, match="batch size 1"):
        apply_dataflow(c.actions, c.memory, s.layers, 10, load_architecture(), "online")
    with pytest.raises(Exception, match="allowed: per_example, minibatch_tiled, online"):
        apply_dataflow(c.actions, c.memory, s.layers, 10, load_architecture(), "tiled")


def test_per_example_budget_prices_like_the_cost_report():
    # the hardware budget's dynamic energy under per-example accumulation is the cost report's total
    cfg = load_config(None, MNIST + ["channel.algorithm=srbp"])
    b = budget_for_config(cfg, dataflow="per_example")
    rep = cost_report(cfg)
    assert b.summary["energy_per_example_pj"]["dynamic"] == pytest.approx(rep.summary["energy_per_example_pj"]["total"])
    e = b.summary["energy_per_example_pj"]
    # the figure: the weight gradient is about 61 % of SRBP's dynamic energy (5,505 of 9,088 nJ)
    assert e["weight_gradient"] / e["dynamic"] == pytest.approx(5504.7 / 9088.2, abs=1e-3)


def test_tiling_cuts_srbp_weight_gradient_energy():
    cfg = load_config(None, MNIST + ["channel.algorithm=srbp"])
    pe = budget_for_config(cfg, dataflow="per_example").summary["energy_per_example_pj"]
    mt = budget_for_config(cfg, dataflow="minibatch_tiled").summary["energy_per_example_pj"]
    assert mt["weight_gradient"] < 0.3 * pe["weight_gradient"]
    for phase in ("forward", "error_projection", "weight_update"):
        assert mt[phase] == pytest.approx(pe[phase])
    assert math.isfinite(mt["total"]) and mt["total"] < pe["total"]
