"""The budget planner picks the cheapest configuration that reaches the accuracy and the limits."""
import pytest

from hw_models.planner import BudgetRecord, cheapest

RECORDS = [
    #            label        acc %  energy pJ  area mm2  latency s  throughput /s
    BudgetRecord("BP float", 98.0, 10_000.0, 30.0, 50e-6, 20_000),
    BudgetRecord("SRBP float", 97.2, 9_000.0, 26.0, 36e-6, 27_000),
    BudgetRecord("SRBP 8-bit", 97.0, 3_000.0, 24.0, 29e-6, 34_000),
    BudgetRecord("SRBP sparse-1 8-bit", 96.0, 2_900.0, 23.0, 28e-6, 35_000),
]


def test_cheapest_by_each_objective():
    assert cheapest(RECORDS, 97.0, "energy").record.label == "SRBP 8-bit"      # sparse-1 misses 97 %
    assert cheapest(RECORDS, 96.0, "energy").record.label == "SRBP sparse-1 8-bit"
    assert cheapest(RECORDS, 97.1, "area").record.label == "SRBP float"
    assert cheapest(RECORDS, 98.0, "latency").record.label == "BP float"
    c = cheapest(RECORDS, 97.0, "latency")
    assert (c.record.label, c.candidates, c.considered) == ("SRBP 8-bit", 3, 4)
    assert c.breakdown["energy_pj"] == 3_000.0 and "lowest latency" in c.reason


def test_limits_exclude_records():
    # the 8-bit SRBP is cheapest in energy, but a 25 us latency limit leaves nothing at 97 %
    with pytest.raises(Exception, match="none of 4 configurations meets"):
        cheapest(RECORDS, 97.0, "energy", max_latency_s=25e-6)
    assert cheapest(RECORDS, 97.0, "energy", max_area_mm2=25.0).record.label == "SRBP 8-bit"
    assert cheapest(RECORDS, 97.0, "area", min_throughput_eps=30_000).record.label == "SRBP 8-bit"
    assert cheapest(RECORDS, 90.0, "area", max_energy_pj=9_500).record.label == "SRBP sparse-1 8-bit"


def test_ties_go_to_accuracy_and_bad_input_is_named():
    tie = [BudgetRecord("a", 96.0, 1.0, 1.0, 1.0, 1.0), BudgetRecord("b", 97.0, 1.0, 1.0, 1.0, 1.0)]
    assert cheapest(tie, 90.0, "energy").record.label == "b"
    with pytest.raises(Exception, match="allowed: energy, area, latency"):
        cheapest(RECORDS, 90.0, "power")
    with pytest.raises(Exception, match="energy_pj = -1"):
        BudgetRecord("x", 90.0, -1, 1.0, 1.0, 1.0)
    with pytest.raises(Exception, match="most accurate is 'BP float'"):
        cheapest(RECORDS, 99.0)


def test_record_from_a_budget():
    from lowbit_rbp.core.config import load_config
    from lowbit_rbp.cost.budget import budget_for_config
    b = budget_for_config(load_config(None, ["model.hidden=[20]", "channel.algorithm=srbp"]))
    r = BudgetRecord.from_budget("srbp", 90.0, b)
    assert r.energy_pj == b.summary["energy_per_example_pj"]["total"] and r.area_mm2 == b.summary["area"]["total_mm2"]
    assert cheapest([r], 80.0, "area").record is r
