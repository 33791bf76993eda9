"""Exports (JSON, CSV, Markdown), the `cost` sub-command and the MNIST report generator."""
import argparse
import csv
import io
import json

from hw_models import SCHEMA_VERSION
from hw_models.report import CostRow
from lowbit_rbp.cli import main as cli_main
from lowbit_rbp.core.config import load_config
from lowbit_rbp.cost import cost_report, render_markdown
from lowbit_rbp.cost_commands import register


def test_json_csv_markdown_exports():
    r = cost_report(load_config(None, ["channel.algorithm=srbp"]))
    d = json.loads(r.to_json())
    assert d["schema_version"] == SCHEMA_VERSION and d["meta"]["energy_table"]["name"] == "horowitz45nm"
    assert d["summary"]["channel"]["feedback_mults"] == 4000
    assert d["meta"]["units"]["energy_pj"].startswith("pJ")
    assert {"scaling_rules_applied", "floorplan", "formats", "config_hash"} <= set(d["meta"])
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert list(rows[0]) == list(CostRow.__dataclass_fields__)
    assert len(rows) == len(r.rows)
    assert sum(float(x["count"]) for x in rows if x["what"] == "feedback_product" and x["op"] == "mult") == 4000
    md = render_markdown(r)
    assert "horowitz45nm" in md and "23.6" in md and "SPOON" in md and "Learning-channel rate" in md
    assert {a["key"] for a in r.anchors} >= {"loihi_sop", "truenorth_event", "spoon_mnist"}


def test_cli_cost_json_and_out(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[channel]\nalgorithm = "rbp"\n')
    assert cli_main(["cost", "--config", str(cfg), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["meta"]["algorithm"] == "rbp" and d["summary"]["channel"]["feedback_mults"] == 31000
    out = tmp_path / "sub" / "c.csv"
    assert cli_main(["cost", "--config", str(cfg), "--set", "channel.algorithm=srbp", "--format", "csv",
                     "--out", str(out)]) == 0
    assert out.read_text().startswith("algorithm,variant,layer")
    assert cli_main(["cost", "--set", "channel.algorithm=srbp", "--format", "md", "--pitch", "2"]) == 0
    assert "| backward (channel) | 4,000 | 20,000 | 5 | 8 |" in capsys.readouterr().out


def test_cli_errors_exit_2_without_traceback(tmp_path, capsys):
    for argv in (["cost", "--energy-table", "nosuch"],
                 ["cost", "--set", "model.hidden=[100,0]"],
                 ["cost", "--config", str(tmp_path / "missing.toml")],
                 ["cost", "--pitch", "-1"]):
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err, err
    assert cli_main(["cost", "--energy-table", "nosuch"]) == 2
    assert "horowitz45nm" in capsys.readouterr().err


def test_register_sets_func():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    register(sub)
    args = parser.parse_args(["cost", "--format", "csv"])
    assert callable(args.func) and args.format == "csv" and args.energy_table == "horowitz45nm"


def test_variants_report_from_the_sweep_file(tmp_path, capsys):
    assert cli_main(["cost", "--sweep", "lowbit_rbp/sweeps/cost_mnist.toml", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "cost_mnist.md").read_text()
    assert "cost --sweep lowbit_rbp/sweeps/cost_mnist.toml" in md and "horowitz45nm" in md
    rows = {r["variant"]: r for r in csv.DictReader(io.StringIO((tmp_path / "cost_mnist.csv").read_text()))}
    assert {"BP", "RBP", "SRBP", "SBP", "ARBP", "RBP sparse-1", "SRBP sparse-8", "BP error 1-bit",
            "SRBP error 3-bit", "RBP error 5-bit"} <= set(rows)
    assert float(rows["BP"]["feedback_mults"]) == 31000 and float(rows["SRBP"]["feedback_mults"]) == 4000
    assert float(rows["SRBP sparse-1"]["feedback_mults"]) == 0
    assert float(rows["SRBP error 1-bit"]["feedback_mults"]) == 0
    assert float(rows["SRBP"]["backward_max_length_mm"]) > float(rows["BP"]["backward_max_length_mm"])
    assert float(rows["SRBP"]["energy_total_pj"]) < float(rows["BP"]["energy_total_pj"])
