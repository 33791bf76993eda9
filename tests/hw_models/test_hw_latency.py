"""Latency: the two-layer toy computed by hand, and BP against SRBP on deeper nets."""
import pytest

from hw_models.latency import schedule, step_time
from hw_models.records import Action

from hw_toy import BATCH, LINKS, toy_actions, toy_arch


def steps(rep):
    return {(s.layer, s.phase, s.scope): s for s in rep.steps}


def test_two_layer_toy_step_cycles_by_hand():
    rep = schedule(toy_actions(), 2, LINKS, BATCH, toy_arch())
    st = steps(rep)
    # FW1: 12 mults, 12 + 3 adder ops on 2 PEs -> ceil(15 / 2) = 8; SRAM 120 bits / 32 per cycle -> 4: compute, 8
    assert (st[(1, "forward", "example")].cycles, st[(1, "forward", "example")].bound) == (8, "compute")
    assert st[(1, "forward", "example")].sram_cycles == 4
    # FW2: ceil(6 / 2) = 3 compute; 64 / 32 = 2 SRAM -> 3
    assert st[(2, "forward", "example")].cycles == 3
    # output error: ceil(2 / 2) = 1; 16 bits written -> 1 cycle
    assert st[(2, "error_projection", "example")].cycles == 1
    # channel into layer 1: ceil(6 / 2) = 3 compute, 48 / 32 -> 2 SRAM -> 3
    assert st[(1, "error_projection", "example")].cycles == 3
    # WG1: compute ceil(15 / 2) = 8; the accumulator array moves 240 + 240 bits through one 32-bit bank: 15 -> SRAM
    assert (st[(1, "weight_gradient", "example")].cycles, st[(1, "weight_gradient", "example")].bound) == (15, "sram")
    # WG2: compute ceil(8 / 2) = 4; 256 bits / 32 = 8 -> 8
    assert st[(2, "weight_gradient", "example")].cycles == 8
    # WU per minibatch (counts x batch 2): tile 1 15 adds -> 8; tile 2 8 adds -> 4
    assert st[(1, "weight_update", "minibatch")].cycles == 8
    assert st[(2, "weight_update", "minibatch")].cycles == 4


def test_two_layer_toy_schedule_by_hand():
    rep = schedule(toy_actions(), 2, LINKS, BATCH, toy_arch())
    t = {tt.layer: tt for tt in rep.tiles}
    # forward: tile 1 cycles 0-8, tile 2 8-11; output error 11-12; channel into layer 1 12-15; WG1 15-30
    assert (t[1].fw_start, t[1].fw_end, t[2].fw_start, t[2].fw_end) == (0, 8, 8, 11)
    assert (t[2].ag_start, t[2].ag_end, t[1].ag_start, t[1].ag_end) == (11, 12, 12, 15)
    assert (t[1].end, t[2].end) == (15 + 15, 12 + 8)
    assert rep.example_cycles == 30 and rep.example_latency_s == pytest.approx(30 / 100e6)
    assert rep.critical_path == ["FW1", "FW2", "AG2", "AG1", "WG1"]
    # minibatch of 2, no pipeline: II = 30; tails 8 (tile 1) and 4 (tile 2):
    # T = max(2 x 30, 30 + max(30 + 8, 20 + 4)) = 68 cycles
    assert rep.interval_cycles == 30 and rep.minibatch_cycles == 68
    assert rep.time_per_example_s == pytest.approx(34 / 100e6)
    assert rep.throughput_eps == pytest.approx(2 / 680e-9)
    # per-example phase latency: the weight update's 8 cycles are shared by the 2 examples
    assert rep.phase_seconds(1, "weight_update") == pytest.approx(4 / 100e6)


def test_two_layer_toy_pipeline_and_overlap_by_hand():
    # pipeline: II = busiest tile = max(8 + 3 + 15, 3 + 1 + 8) = 26; T = max(2 x 26, 26 + 38) = 64
    rep = schedule(toy_actions(), 2, LINKS, BATCH, toy_arch(schedule__pipeline="examples"))
    assert rep.interval_cycles == 26 and rep.minibatch_cycles == 64
    # tile 1 holds an example from cycle 0 to 30 > II: 2 in flight; tile 2 from 8 to 20: 1
    assert rep.in_flight == {1: 2, 2: 1}
    # overlap: tile 2 may finish its update while the next example's forward is in tile 1 (offset 8), but tile 1
    # starts the next example itself: max(30 + 8 - 0, 20 + 4 - 8) = 38, unchanged
    over = schedule(toy_actions(), 2, LINKS, BATCH, toy_arch(schedule__overlap_update=True))
    assert over.minibatch_cycles == 68


def test_overlap_hides_an_upper_tiles_update():
    # a long update in tile 2 only: 40 extra adds per example -> 80 per minibatch -> 40 more cycles (44 in all)
    acts = toy_actions() + [Action("weight_update", 2, "lr_scale", "add", "int", 8, 0, 40.0)]
    plain = schedule(acts, 2, LINKS, BATCH, toy_arch())
    over = schedule(acts, 2, LINKS, BATCH, toy_arch(schedule__overlap_update=True))
    # no overlap: 30 + max(38, 20 + 44) = 94; overlap: tile 2's tail may run during the next forward in tile 1
    # (8 cycles): 30 + max(38, 64 - 8) = 86
    assert plain.minibatch_cycles == 94 and over.minibatch_cycles == 86


def test_fixed_width_pes_take_more_cycles():
    # 4-bit multipliers: an 8 x 8 multiply takes ceil(8/4) x ceil(8/4) = 4 cycles; 16-bit adds on an 8-bit adder 2
    arch = toy_arch(pe__mult_bits=4, pe__add_bits=8)
    s = step_time([Action("forward", 1, "m", "mult", "int", 8, 8, 10), Action("forward", 1, "a", "add", "int", 16, 0, 10)],
                  1, "forward", "example", 2, arch, 1.0)
    assert (s.mult_cycles, s.add_cycles, s.compute_cycles) == (40, 20, 20)
    # a float32 multiply on 8-bit multipliers: ceil(24 / 8)^2 = 9 cycles
    arch8 = toy_arch(pe__mult_bits=8)
    f = step_time([Action("forward", 1, "m", "mult", "float", 32, 32, 1)], 1, "forward", "example", 1, arch8, 1.0)
    assert f.mult_cycles == 9


def test_dram_traffic_bounds_step_and_minibatch():
    # 320 DRAM bits in a step at 32 bits per cycle: 10 cycles
    arch = toy_arch()
    s = step_time([Action("forward", 1, "weights", "dram_read", "dram", 1, 0, 320, "bit")], 1, "forward", "example",
                  2, arch, 1.0)
    assert (s.dram_cycles, s.bound) == (10, "dram")


def test_links_must_run_downwards():
    with pytest.raises(Exception, match="sender"):
        schedule(toy_actions(), 2, [(1, 0)], BATCH, toy_arch())


def _budget(algorithm, hidden, **kw):
    from lowbit_rbp.core.config import load_config
    from lowbit_rbp.cost.budget import budget_for_config
    cfg = load_config(None, ["model.dataset=mnist", f"model.hidden={hidden}", f"channel.algorithm={algorithm}",
                             "train.batch_size=10"])
    return budget_for_config(cfg, **kw)


def test_bp_after_srbp_on_a_deeper_net():
    bp, rbp, srbp = (_budget(a, "[32,32,32,32,32]") for a in ("bp", "rbp", "srbp"))
    assert srbp.latency.example_cycles < rbp.latency.example_cycles <= bp.latency.example_cycles
    bp_ag = {t.layer: t.ag_start for t in bp.latency.tiles if t.layer < 6}
    srbp_ag = {t.layer: t.ag_start for t in srbp.latency.tiles if t.layer < 6}
    # BP: each hidden layer's channel waits for the one above; SRBP: all start once T - O exists
    assert all(bp_ag[h] > bp_ag[h + 1] for h in range(1, 5))
    assert len(set(srbp_ag.values())) == 1
    assert bp.latency.critical_path[6:12] == ["AG6", "AG5", "AG4", "AG3", "AG2", "AG1"]


def test_srbp_advantage_grows_with_depth():
    ratios = []
    for d in (2, 4, 8):
        hidden = "[" + ",".join(["32"] * d) + "]"
        ratios.append(_budget("bp", hidden).latency.example_cycles / _budget("srbp", hidden).latency.example_cycles)
    assert 1.0 < ratios[0] < ratios[1] < ratios[2]
