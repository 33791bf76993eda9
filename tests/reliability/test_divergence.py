"""Runs that blow up without NaN: the rule, what the store, the run file and the report keep of them."""
import json
import math
import sqlite3
import sys
from pathlib import Path

import pytest

from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.learning.trainer import blow_up_reason, chance_bound
from lowbit_rbp.report.tables import group, markdown_table
from lowbit_rbp.results.runs import run_training
from lowbit_rbp.results.store import Store
from lowbit_rbp.results.sweep import run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sweep"))
import helper  # noqa: E402

# tanh saturates, so a huge learning rate gives huge but finite losses (no NaN).
BLOW_UP = {"model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 20, "lr": 1e6}}


@pytest.mark.fault("blow_up")
def test_the_rule_on_epochs_seen_in_real_stores():
    """Values from reports/sweeps (MNIST, 10 classes: chance loss ln 10 = 2.303 nats, bound 6.908;
    accuracy bound 0.1 + 0.1 x 0.9 = 0.19)."""
    assert chance_bound(10) == pytest.approx(0.19) and chance_bound(4) == pytest.approx(0.325)
    # 1-bit error BP: 55.9 nats at 11.3% -> blown up
    reason = blow_up_reason(44.449, 55.902, 0.111, 0.113, 10)
    assert reason == ("blow-up: test loss 55.9 nats > 3 x ln(10) = 6.91 (chance level) with train/test accuracy "
                      "11.1%/11.3% < 19.0% (chance 10.0%)")
    # 1-bit error RBP at epoch 1: 26.9 nats but 44.4% test accuracy, later 84.7%: it learns
    assert blow_up_reason(26.850, 20.093, 0.267, 0.444, 10) == ""
    # at chance but with a loss under the bound (a net that learns nothing yet)
    assert blow_up_reason(2.9, 2.8, 0.1, 0.1, 10) == ""
    assert blow_up_reason(3 * math.log(10) + 1e-9, 0.0, 0.0, 0.0, 10).startswith("blow-up: train loss")


@pytest.mark.fault("blow_up")
def test_blow_up_is_stored_as_diverged_with_its_reason_and_reported(tmp_path):
    db = tmp_path / "b.db"
    sw = helper.sweep(grid={}, seeds=[0, 2], base=BLOW_UP)
    s = run_sweep(sw, db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert list(s.ran.values()) == ["diverged", "diverged"]
    with Store(db) as st:
        runs = st.runs()
    for run in runs:
        (epoch,) = run.epochs                       # stopped after the first epoch
        assert epoch.status == "diverged" and math.isfinite(epoch.test_loss) and epoch.test_loss > 3 * math.log(4)
        assert run.diverged_reason == epoch.reason and epoch.reason.startswith("blow-up: ")
    table = markdown_table(group(runs), runs)
    row = next(line for line in table.splitlines() if line.startswith("| bp"))
    assert row.split("|")[2:5] == ["  ", " 2 ", " 2 "]       # no mean; 2 seeds done, both diverged
    notes = table.split("Diverged runs")[1].splitlines()[1:]
    assert [n.split(": ", 1)[1] for n in notes] == [r.diverged_reason for r in runs]
    assert {n.split(",")[1] for n in notes} == {" seed 0", " seed 2"}


@pytest.mark.fault("blow_up")
def test_huge_loss_above_chance_accuracy_is_not_a_blow_up(tmp_path):
    """Seed 1 at lr 1e6 has losses of 41-49 nats but 35-41% accuracy on 4 classes (chance 25%, bound
    32.5%): it keeps training and finishes, as the 1-bit RBP errors that learn on MNIST do."""
    sw = helper.sweep(grid={}, seeds=[1], base=BLOW_UP)
    s = run_sweep(sw, tmp_path / "h.db", data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert list(s.ran.values()) == ["finished"]
    with Store(tmp_path / "h.db") as st:
        (run,) = st.runs()
    assert len(run.epochs) == 3 and min(e.test_loss for e in run.epochs) > 3 * math.log(4)
    assert min(e.test_acc for e in run.epochs) > chance_bound(4) and run.diverged_reason == ""


@pytest.mark.fault("blow_up")
def test_blow_up_in_a_run_file(tmp_path):
    (run,) = helper.sweep(grid={}, seeds=[0], base=BLOW_UP).runs
    res = run_training(run.config, tmp_path / "b.jsonl", helper.tiny(), progress=False)
    assert res.status == "diverged" and res.diverged_reason.startswith("blow-up: ")
    last = json.loads((tmp_path / "b.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "diverged" and last["reason"] == res.diverged_reason


@pytest.mark.fault("blow_up")
def test_store_written_before_reasons_stays_readable(tmp_path):
    """A schema-1 store without epochs.reason (and a NaN-era diverged run) reads, before and after
    a writer adds the column."""
    db = tmp_path / "old.db"
    sw = helper.sweep(grid={}, seeds=[0], base=BLOW_UP)
    run_sweep(sw, db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    con = sqlite3.connect(db)
    con.executescript("ALTER TABLE epochs DROP COLUMN reason; UPDATE epochs SET train_loss=NULL, test_loss=NULL;")
    con.close()
    st = Store.read_only(db)
    (run,) = st.runs()
    st.close()
    assert run.status == "diverged" and run.epochs[0].reason == ""
    assert run.diverged_reason == "non-finite loss or weights (NaN/inf)"
    with Store(db) as st:                            # a writer adds the column; the old row keeps no reason
        assert "reason" in [r[1] for r in st.conn.execute("PRAGMA table_info(epochs)")]
        assert st.runs()[0].diverged_reason == "non-finite loss or weights (NaN/inf)"
