"""The report's axes on a tiny store of fake finished runs (written through the Store API, no training):
accuracy vs rank (the low-rank sweep), series that never mix nets, reference points, stale plots,
read-only access to a store a sweep is writing."""
import sqlite3
import time
from pathlib import Path

import pytest

from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.report.sweep_report import write_report
from lowbit_rbp.report.tables import axis_groups, axis_series, group, load_results
from lowbit_rbp.results.store import Store
from lowbit_rbp.results.sweep import load_sweep
from lowbit_rbp.learning.trainer import EpochRecord

H7 = "model.hidden=[100,100,100,100,100,100,100]"
SWEEPS = Path(__file__).resolve().parents[2] / "lowbit_rbp" / "sweeps"


def put(store, overrides, row, accs, seed=0):
    """A finished run with one epoch per accuracy in ``accs``."""
    cfg = apply_overrides(RunConfig(), [*overrides, f"train.seed={seed}", f"train.epochs={len(accs)}"])
    assert store.claim(cfg, "t", tags={"row": row, "sweep": "fake"}, machine={"processor": "x", "cpus": 2},
                       code_version="test") == "claimed"
    for i, a in enumerate(accs, 1):
        store.record_epoch(cfg.config_hash(), "t", EpochRecord(i, 0.5, a, 0.5, a, 0.1, 1.0, "ok"))
    store.finish(cfg.config_hash(), "t", "finished")


def fake_cost(cfg):
    fb = cfg.channel.feedback
    r = fb.r if fb.kind == "lowrank" else 10
    return {"energy_pj": 1e6 + 1e3 * r, "lc_energy_pj": 100.0 * r, "lc_ops": 50.0 * r, "wires": 10 * r,
            "bits_moved": 320.0 * r, "feedback_memory_bits": 32 * 100 * r}


@pytest.fixture()
def rank_store(tmp_path):
    path = tmp_path / "rank.db"
    with Store(path) as st:
        for seed in (0, 1):
            for alg, base in (("rbp", 0.90), ("srbp", 0.92)):
                for r in (1, 2, 5):
                    acc = base + 0.01 * r + 0.002 * seed
                    put(st, [f"channel.algorithm={alg}", f"channel.feedback='lowrank:r={r}'", H7], f"lowrank_{r}",
                        [acc - 0.02, acc - 0.01, acc], seed)
                put(st, [f"channel.algorithm={alg}", "channel.feedback=glorot_uniform", H7], "lowrank_full",
                    [base, base + 0.03, base + 0.06], seed)
            # Runs of the 4-layer net: must not join the 7-layer rank series.
            put(st, ["channel.algorithm=rbp"], "baseline", [0.95, 0.96, 0.961], seed)
            put(st, ["channel.algorithm=rbp", "channel.feedback=glorot_uniform"], "", [0.95, 0.96, 0.962], seed)
    return path


def test_rank_series_references_and_no_mixing(rank_store):
    groups = group(load_results(rank_store))
    series = axis_series(groups, "rank")
    assert [s.algorithm for s in series] == ["rbp", "srbp"]
    for s in series:
        assert [g.x for g in s.points] == [1, 2, 5]
        assert s.ref is not None and s.ref.first.feedback == "glorot_uniform"
        assert list(s.ref.config.model.hidden) == [100] * 7 and not s.paper
    flat = axis_groups(groups, "rank")
    assert len(flat) == 8 and all(len(g.config.model.hidden) == 7 for g in flat)
    assert axis_groups(groups, "sparsity_n") == [] and axis_groups(groups, "error_bits") == []


def test_report_draws_accuracy_vs_rank(rank_store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "acc_vs_update_bits.png").write_bytes(b"stale")      # a plot whose runs are gone
    path = write_report(rank_store, out, cost_fn=fake_cost)
    text = path.read_text()
    assert "### Accuracy vs rank" in text and "![acc_vs_rank.png](acc_vs_rank.png)" in text
    rank = text.split("### Accuracy vs rank")[1].split("###")[0]
    assert "net mnist hidden 100x7 tanh" in rank and "seeds 0, 1" in rank and "code test" in rank
    assert "hidden 100x4" not in rank
    rows = [line for line in rank.splitlines() if line.startswith("| rbp") or line.startswith("| srbp")]
    assert len(rows) == 8
    assert any(line.startswith("| srbp | 5 | lowrank_5: srbp lowrank:r=5 | 97.") for line in rows)
    for png in ("acc_vs_rank.png", "curves.png", "acc_vs_cost_energy_pj.png", "acc_vs_cost_lc_ops.png",
                "acc_vs_cost_bits_moved.png"):
        assert (out / png).stat().st_size > 5000, png
    assert not (out / "acc_vs_update_bits.png").exists()
    assert "### Pareto front: accuracy vs lc_ops" in text
    # every table states its own protocol
    assert text.count("### ") == text.count("_Protocol: ")


def test_report_reads_a_store_another_process_is_writing(rank_store, tmp_path):
    writer = sqlite3.connect(rank_store, timeout=1)
    writer.execute("BEGIN IMMEDIATE")                # a sweep holding the write lock
    try:
        t0 = time.time()
        res = load_results(rank_store)
        assert len(res) == 20 and time.time() - t0 < 10
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_lowrank_sweep_file():
    sw = load_sweep(SWEEPS / "mnist_lowrank.toml")
    assert len(sw.runs) == 30
    assert {r.config.train.seed for r in sw.runs} == {0, 1, 2} and {r.config.train.epochs for r in sw.runs} == {20}
    assert {tuple(r.config.model.hidden) for r in sw.runs} == {(100,) * 7}
    assert {r.config.channel.algorithm for r in sw.runs} == {"rbp", "srbp"}
    assert {r.config.channel.feedback.spec for r in sw.runs} == {"lowrank:r=1", "lowrank:r=2", "lowrank:r=5",
                                                             "lowrank:r=10", "glorot_uniform"}
