import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hw_models.errors import CostModelError
from lowbit_rbp.errors import ConfigError, LowbitError
from lowbit_rbp.core.config import apply_overrides
from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.report.sweep_report import write_report
from lowbit_rbp.report.tables import budget, default_cost, group, load_results, pareto_front
from lowbit_rbp.results.sweep import run_sweep
from lowbit_rbp.commands import register

sys.path.insert(0, str(Path(__file__).parent))
import helper  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("rep") / "r.db"
    sw = helper.sweep(seeds=[0, 1], base={"model": {"hidden": [8]}, "train": {"epochs": 2, "batch_size": 20}},
                      grid={"channel.algorithm": ["bp", "srbp"]},
                      runs=[{"row": "baseline"},
                            {"row": "qerror_3", "formats.error": "log:alpha=2,bits=3",
                             "formats.signal": "log:alpha=2,bits=3"},
                            {"row": "qupdate_3", "formats.update": "log:alpha=0.1,bits=3"},
                            {"row": "sparse_1", "channel.feedback": "sparse:n=1", "grid": {"channel.algorithm": ["srbp"]}},
                            {"row": "dropout_50", "channel.dropout": 0.5}])
    run_sweep(sw, path, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    return path


def fake_cost(cfg):
    bits = 32 if cfg.formats.error.kind == "float" else 3
    return {"energy_pj": 100.0 * bits + (50 if cfg.channel.algorithm == "bp" else 0), "wires": 10 * bits,
            "bits_moved": 7.0 * bits, "feedback_memory_bits": 0 if cfg.channel.algorithm == "bp" else 99}


def test_load_and_group(store):
    res = load_results(store)
    assert len(res) == 18 and all(r.status == "finished" for r in res)
    q = [r for r in res if r.row == "qerror_3"]
    assert {r.error_bits for r in q} == {3} and {r.signal_bits for r in q} == {3}
    assert {r.update_bits for r in res if r.row == "qupdate_3"} == {3}
    assert {r.sparsity_n for r in res if r.row == "sparse_1"} == {1}
    groups = group(res)
    assert len(groups) == 9 and all(g.n == 2 and g.seeds == [0, 1] for g in groups)
    assert not any("ep]" in g.label for g in groups)
    longer = [replace(r, config=apply_overrides(r.config, ["train.epochs=5"])) for r in res if r.row == "baseline"]
    mixed = group(res + longer)                      # same variants at another length: their own groups
    assert len(mixed) == 11
    labels = [g.label for g in mixed if g.row == "baseline"]
    assert sorted(labels) == ["baseline: bp [2 ep]", "baseline: bp [5 ep]", "baseline: srbp [2 ep]",
                              "baseline: srbp [5 ep]"]


def test_write_report_tables_plots_and_protocol(store, tmp_path):
    path = write_report(store, tmp_path, cost_fn=fake_cost, budget_limits={"energy_pj": 400})
    text = path.read_text()
    for title in ("All variants", "Accuracy vs error bits", "Accuracy vs update bits", "Accuracy vs sparsity n",
                  "Accuracy vs LC dropout", "Budget: energy_pj <= 400"):
        assert title in text
    assert "Accuracy vs rank" not in text          # no low-rank runs in the store
    assert text.count("_Protocol: ") >= 6 and "epochs 2" in text and "seeds 0, 1" in text and "code " in text
    assert "energy_pj" in text
    for png in ("acc_vs_error_bits.png", "acc_vs_update_bits.png", "acc_vs_dropout.png", "curves.png",
                "acc_vs_cost_energy_pj.png"):
        assert (tmp_path / png).stat().st_size > 1000, png
        assert f"]({png})" in text


def test_budget_filter_best_first(store):
    rows = budget(store, cost_fn=fake_cost, energy_pj=400)
    assert rows and all(g.cost_of("energy_pj") <= 400 for g in rows)
    assert {g.row for g in rows} == {"qerror_3"}
    assert [g.mean for g in rows] == sorted((g.mean for g in rows), reverse=True)
    assert budget(store, cost_fn=fake_cost, energy_pj=1) == []
    assert budget(store, cost_fn=lambda cfg: None, energy_pj=1e9) == []
    with pytest.raises(ConfigError, match="budget key.*energy_pj"):
        budget(store, cost_fn=fake_cost, joules=3)


def test_pareto_front():
    pts = [(1.0, 50.0), (2.0, 60.0), (3.0, 55.0), (2.0, 40.0), (5.0, 90.0)]
    assert pareto_front(pts) == [0, 1, 4]


def _parser():
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="cmd", required=True))
    return p


def test_cli_report_and_errors(store, tmp_path, capsys):
    p = _parser()
    args = p.parse_args(["report", "--store", str(store), "--out", str(tmp_path / "o"), "--no-plots"])
    assert args.func(args) == 0
    assert "All variants" in capsys.readouterr().out
    args = p.parse_args(["report", "--store", str(store), "--budget", "joules=1"])
    with pytest.raises(LowbitError, match="--budget"):
        args.func(args)
    args = p.parse_args(["report", "--store", str(tmp_path / "missing.db")])
    with pytest.raises(LowbitError, match="does not exist"):
        args.func(args)


def test_cli_sweep_runs_a_sweep_file(tmp_path, capsys, monkeypatch):
    # The CLI loads the real dataset; point the worker's loader at the tiny data instead.
    from lowbit_rbp.results import sweep as sweep_mod
    monkeypatch.setattr(sweep_mod, "_load_data", lambda spec, cfg: helper.tiny(cfg))
    f = tmp_path / "s.toml"
    f.write_text('seeds = [0]\n[base]\nmodel.hidden = [4]\ntrain.epochs = 1\ntrain.batch_size = 50\n'
                 '[grid]\n"channel.algorithm" = ["bp", "rbp"]\n')
    p = _parser()
    args = p.parse_args(["sweep", str(f), "--store", str(tmp_path / "s.db"), "--quiet"])
    assert args.func(args) == 0
    assert "ran 2 (0 diverged, 0 failed)" in capsys.readouterr().out
    assert args.func(args) == 0
    assert "skipped 2 already done" in capsys.readouterr().out
    f.write_text('[grid]\n"channel.algorithm" = []\n')
    with pytest.raises(LowbitError, match="empty list"):
        args.func(args)


def test_shipped_sweep_files_expand():
    from lowbit_rbp.report.paper import MNIST_TABLE1
    from lowbit_rbp.results.sweep import load_sweep
    root = Path(__file__).resolve().parents[2] / "lowbit_rbp" / "sweeps"
    sw = load_sweep(root / "mnist_table1.toml")
    rows = {r.tags["row"] for r in sw.runs}
    assert rows == set(MNIST_TABLE1)
    assert {r.config.train.epochs for r in sw.runs} == {20}
    assert {r.config.train.seed for r in sw.runs} == {0, 1, 2}
    for row, cols in MNIST_TABLE1.items():
        algs = {r.config.channel.algorithm for r in sw.runs if r.tags["row"] == row}
        want = {"arbp" if c == "rbp" else "asrbp" if c == "srbp" else c for c in cols} if row == "adaptive" \
            else set(cols)
        assert algs == want, row


def test_budget_with_the_cost_model_shows_breakdown(store, tmp_path):
    path = write_report(store, tmp_path, cost_fn=default_cost, budget_limits={"lc_ops": 1e9}, plots=False)
    text = path.read_text()
    budget_part = text.split("### Budget: lc_ops <= 1e+09")[1]
    assert "E forward (pJ)" in budget_part and "E error projection (pJ)" in budget_part
    assert budget_part.count("_Protocol: ") == 1
    rows = [line for line in budget_part.splitlines() if line.startswith("| ") and "label" not in line]
    accs = [float(line.split("|")[2].split()[0]) for line in rows]
    assert len(rows) == 9 and accs == sorted(accs, reverse=True)


def fake_budget(cfg):
    """Hardware-budget columns: SRBP is smaller and faster; quantized error halves the area."""
    srbp = cfg.channel.algorithm == "srbp"
    q = cfg.formats.error.kind != "float"
    return {**fake_cost(cfg), "budget_energy_pj": 1000.0 - (200 if srbp else 0), "area_mm2": (10.0 if srbp else 20.0)
            / (2 if q else 1), "latency_s": 2e-5 if srbp else 5e-5, "throughput_eps": 5e4 if srbp else 2e4}


def test_budget_bounds_throughput_from_below_and_the_rest_from_above(store):
    fast = budget(store, cost_fn=fake_budget, throughput_eps=3e4)
    assert fast and {g.algorithm for g in fast} == {"srbp"}
    assert budget(store, cost_fn=fake_budget, latency_s=3e-5) == fast


def test_planner_picks_the_cheapest_reaching_the_accuracy(store, tmp_path):
    from lowbit_rbp.report.tables import cheapest, group, load_results
    groups = group(load_results(store, cost_fn=fake_budget))
    floor = min(g.mean for g in groups) - 1                   # every variant qualifies
    choice, chosen = cheapest(store, floor, "area", cost_fn=fake_budget)
    assert chosen.algorithm == "srbp" and chosen.row == "qerror_3" and choice.record.area_mm2 == 5.0
    choice, chosen = cheapest(store, floor, "energy", cost_fn=fake_budget, latency_s=1e-4)
    assert choice.record.energy_pj == 800.0 and chosen.algorithm == "srbp"
    with pytest.raises(CostModelError, match="none of .* meets accuracy >= 101"):
        cheapest(store, 101, "area", cost_fn=fake_budget)
    path = write_report(store, tmp_path, cost_fn=fake_budget, plan=(floor, "area"), plots=False)
    assert "### Cheapest configuration: 'qerror_3: srbp" in path.read_text()
