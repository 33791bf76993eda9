"""The budget as a whole (toy and glue), the validation comparison, and the hw_budget command line."""
import csv
import io
import json

import pytest
import yaml

from hw_models.budget import hardware_budget
from hw_models.energy import load_energy_table
from hw_models.validation import CHIPS, Claim, compare, predicted

from hw_toy import BATCH, LAYERS, LINKS, toy_actions, toy_arch, toy_memory, toy_wires


def test_toy_budget_leakage_and_efficiency_by_hand():
    b = hardware_budget(toy_actions(), toy_memory(), LAYERS, LINKS, toy_wires(), BATCH, toy_arch(),
                        load_energy_table())
    s = b.summary
    # leakage 760 nW (test_hw_area) x 680 ns per minibatch / 2 examples = 0.2584 pJ per example
    assert s["energy_per_example_pj"]["leakage"] == pytest.approx(760e-9 * 680e-9 / 2 * 1e12)
    assert s["latency"]["time_per_example_s"] == pytest.approx(340e-9)
    # operations: every multiply, add and compare of the toy (12+12+3 + 6+6 + 2 + 6+3 + 12+15 + 6+8 + 7.5 + 4)
    assert s["ops_per_example"] == pytest.approx(102.5)
    assert s["tops_per_w"] == pytest.approx(102.5 / s["energy_per_example_pj"]["total"])
    assert s["tops"] == pytest.approx(102.5 * s["latency"]["throughput_examples_per_s"] * 1e-12)
    # the wires (12 links x 1 mm x 8 bits) are priced like the cost report: 96 bit*mm x 0.12 pJ
    assert b.energy(dtype="wire") == pytest.approx(96 * 0.12)
    d = json.loads(b.to_json())
    assert d["schema_version"] == "1.1" and d["meta"]["dataflow"] == "per_example"
    rows = list(csv.DictReader(io.StringIO(b.to_csv())))
    assert {(r["layer"], r["phase"]) for r in rows} >= {("1", "forward"), ("2", "weight_update")}
    assert "Hardware budget" in b.to_markdown()


def test_validation_comparison_logic():
    assert compare(0.2, (0.168,))["within_2x"] and not compare(0.5, (0.168,))["within_2x"]
    r = compare(0.3, (0.428, 0.684))
    assert r["within_2x"] and r["ratio"] == pytest.approx(0.3 / 0.556)

    class B:
        def __init__(self, e):
            self.summary = {"energy_per_example_pj": {"total": e}}
    c = Claim("k", "q", "energy", "overhead", "a", "b", (0.1,), "src")
    assert predicted(c, {"a": B(100.0), "b": B(110.0)}) == pytest.approx(0.1)
    c2 = Claim("k", "q", "energy", "reduction", "a", "b", (0.1,), "src")
    assert predicted(c2, {"a": B(100.0), "b": B(60.0)}) == pytest.approx(0.4)
    # every chip's claims name variants it defines, and every figure has a source
    for chip in CHIPS:
        for claim in chip.claims:
            assert {claim.base, claim.other} <= set(chip.variants) and claim.source
        assert chip.assumptions and chip.facts


def test_validation_report_lists_every_chip_and_claim():
    from lowbit_rbp.cost.budget import validation_report
    text = validation_report()
    for chip in CHIPS:
        assert f"## {chip.name}" in text
        for claim in chip.claims:
            assert claim.quantity in text
    assert "lowbit-rbp budget validation" in text


def test_mnist_report_tables():
    from lowbit_rbp.cost.budget import mnist_report
    text = mnist_report()
    for head in ("per-example accumulation", "minibatch tiling", "The dataflow, side by side",
                 "latency advantage against depth"):
        assert head in text
    for label in ("BP, float", "RBP, 8-bit", "SRBP sparse-1, float", "SRBP, 8-bit"):
        assert f"| {label} |" in text
    depth_rows = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert [int(r.split("|")[1]) for r in depth_rows] == list(range(2, 11))


def test_cli_formats_and_errors(tmp_path, capsys):
    from lowbit_rbp.cli import main
    base = ["budget", "config", "--set", "model.hidden=[20]", "--set", "channel.algorithm=srbp"]
    assert main(base + ["--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["algorithm"] == "srbp"
    assert main(base + ["--format", "accelergy", "--arch-set", 'sram.capacity="2 KiB"']) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert any(c["name"] == "chip.dram" for c in doc["energy_estimation"]["components"])
    out = tmp_path / "n.csv"
    assert main(base + ["--format", "neurosim", "--dataflow", "minibatch_tiled", "--out", str(out)]) == 0
    assert "latency_FW(s)" in out.read_text() and capsys.readouterr().err == f"wrote {out}\n"
    for argv in (base + ["--arch-set", "sram.capacity=-4 KiB"], base + ["--arch", "nosuch"],
                 base + ["--dataflow", "online"], base + ["--arch-set", "nofield"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
