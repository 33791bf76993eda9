"""Accelergy-style YAML and NeuroSim-style CSV: they parse, and their numbers come back."""
import pytest
import yaml

from lowbit_rbp.core.config import load_config
from lowbit_rbp.cost.budget import budget_for_config
from hw_models.exports import (NEUROSIM_LAYER_COLUMNS, accelergy_energy_pj, accelergy_yaml, neurosim_csv,
                               parse_accelergy, parse_neurosim_csv)


@pytest.fixture(scope="module")
def budget():
    cfg = load_config(None, ["model.dataset=mnist", "model.hidden=[30,20]", "channel.algorithm=srbp",
                             "channel.feedback=sparse:n=1", "train.batch_size=10"])
    return budget_for_config(cfg, feedback_seed=0, feedback_storage="regenerated", dataflow="minibatch_tiled",
                             arch_overrides={"sram.capacity": "4 KiB"})


def test_accelergy_yaml_parses_and_round_trips(budget):
    text = accelergy_yaml(budget)
    doc = yaml.safe_load(text)
    assert set(doc) == {"lowbit_rbp", "action_counts", "ERT", "ART", "energy_estimation"}
    assert doc["action_counts"]["version"] == doc["ERT"]["version"] == 0.3
    parsed = parse_accelergy(text)
    # counts x ERT = the budget's dynamic energy; per component = energy_estimation
    assert accelergy_energy_pj(parsed) == pytest.approx(budget.summary["energy_per_example_pj"]["dynamic"])
    per_comp = {}
    for key, n in parsed["counts"].items():
        per_comp[key[0]] = per_comp.get(key[0], 0.0) + n * parsed["ert"][key]
    assert per_comp == pytest.approx(parsed["energy"])
    assert sum(parsed["art"].values()) == pytest.approx(budget.area.total_um2)
    # the components the model has: PEs, SRAM arrays, registers, the LFSR, wires and DRAM (the SRAM is 4 KiB)
    comps = set(parsed["energy"])
    assert {"chip.tile1.pe", "chip.tile1.lfsr", "chip.tile1.gradient_accumulator_register", "chip.dram",
            "chip.tile1.wires_backward"} <= comps
    # action counts come back exactly: the multiplies of tile 1
    mults = sum(n for (comp, op, _), n in parsed["counts"].items() if comp == "chip.tile1.pe" and op == "mult")
    assert mults == pytest.approx(sum(r.count for r in budget.rows if r.layer == 1 and r.op == "mult"))


def test_neurosim_csv_columns_and_round_trip(budget):
    text = neurosim_csv(budget)
    header = text.splitlines()[2].split(",")
    # NeuroSim V2.1's own names (Training_pytorch/NeuroSIM/main.cpp breakdown file)
    for name in ("layer_number", "latency_FW(s)", "latency_AG(s)", "latency_WG(s)", "latency_WU(s)", "energy_FW(J)",
                 "energy_AG(J)", "energy_WG(J)", "energy_WU(J)", "Buffer_latency(s)", "IC_latency(s)",
                 "DRAM_latency(s)", "Buffer_energy(J)", "IC_energy(J)", "DRAM_energy(J)"):
        assert name in header
    assert header == NEUROSIM_LAYER_COLUMNS
    p = parse_neurosim_csv(text)
    assert [r["layer_number"] for r in p["layers"]] == ["1", "2", "3"]
    table = {(r["layer"], r["phase"]): r for r in budget.layer_phase_table()}
    for r in p["layers"]:
        h = int(r["layer_number"])
        assert r["energy_FW(J)"] == pytest.approx(table[(h, "forward")]["energy_pj"] * 1e-12)
        assert r["latency_AG(s)"] == pytest.approx(budget.latency.phase_seconds(h, "error_projection"))
    dyn = sum(p["total"][f"energy_{x}(J)"] for x in ("FW", "AG", "WG", "WU")) + p["total"]["energy_CU(J)"]
    assert dyn == pytest.approx(budget.summary["energy_per_example_pj"]["dynamic"] * 1e-12)
    assert p["total"]["DRAM_energy(J)"] > 0
    assert p["area"]["Total Area(m^2)"] == pytest.approx(budget.area.total_mm2 * 1e-6)
    assert p["chip"]["TOPS/W"] == pytest.approx(budget.summary["tops_per_w"])
    assert p["chip"]["FPS"] == pytest.approx(budget.summary["latency"]["throughput_examples_per_s"])


def test_bad_documents_give_clear_errors():
    with pytest.raises(Exception, match="missing top-level key 'ERT'"):
        parse_accelergy("action_counts: {local: []}\n")
    with pytest.raises(Exception, match="header"):
        parse_neurosim_csv("a,b\n1,2\n")
