import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lowbit_rbp.errors import ConfigError
from lowbit_rbp.results.store import SCHEMA_VERSION, Store, StoreError
from lowbit_rbp.results.sweep import expand_sweep, load_sweep, run_sweep

sys.path.insert(0, str(Path(__file__).parent))
import helper  # noqa: E402

from lowbit_rbp.core.runtime import Runtime  # noqa: E402

HELPER = str(Path(__file__).parent / "helper.py")
PY = sys.executable


snapshot = helper.snapshot


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.db"
    s = run_sweep(helper.sweep(), path, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert len(s.ran) == 6 and not s.failed
    return snapshot(path)


def test_uninterrupted_sweep_and_rerun_skips(tmp_path, reference):
    runs, epochs = reference
    assert len(runs) == 6 and all(r[1] == "finished" for r in runs)
    assert len(epochs) == 6 * 3
    run_sweep(helper.sweep(), tmp_path / "a.db", data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    s2 = run_sweep(helper.sweep(), tmp_path / "a.db", data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert len(s2.skipped) == 6 and not s2.ran
    assert snapshot(tmp_path / "a.db") == reference


def test_retrain_all_and_dirty(tmp_path, reference, monkeypatch):
    """--retrain all retrains every done run of the sweep (same results: training is deterministic);
    --retrain dirty only those recorded from uncommitted code, and is refused from uncommitted code."""
    from lowbit_rbp.results import sweep as sweep_mod
    path = tmp_path / "r.db"
    rt = Runtime(threads=1)
    run_sweep(helper.sweep(), path, data=helper.DATA_SPEC, progress=False, runtime=rt)
    s = run_sweep(helper.sweep(), path, data=helper.DATA_SPEC, progress=False, runtime=rt, retrain="all")
    assert len(s.ran) == 6 and not s.skipped
    assert snapshot(path) == reference
    dirty = sorted(h for h, _, _ in reference[0])[:2]
    with sqlite3.connect(path) as con:      # (this checkout may itself be dirty: set every version)
        con.execute("UPDATE runs SET code_version='abc1234'")
        con.executemany("UPDATE runs SET code_version='abc1234-dirty' WHERE config_hash=?", [(h,) for h in dirty])
    monkeypatch.setattr(sweep_mod, "code_version", lambda: "def5678")
    s = run_sweep(helper.sweep(), path, data=helper.DATA_SPEC, progress=False, runtime=rt, retrain="dirty")
    assert sorted(s.ran) == dirty and len(s.skipped) == 4
    with Store(path) as st:
        assert {r.code_version for r in st.runs() if r.config_hash in dirty} == {"def5678"}
    assert snapshot(path) == reference
    monkeypatch.setattr(sweep_mod, "code_version", lambda: "def5678-dirty")
    with pytest.raises(ConfigError, match="commit first"):
        run_sweep(helper.sweep(), path, data=helper.DATA_SPEC, progress=False, runtime=rt, retrain="dirty")


def test_sweep_runs_seed_major(tmp_path):
    """Every row's seed 0 runs before any row's seed 1, so a sweep stopped part-way covers the grid."""
    sweep = helper.sweep()
    seed_of = {r.config.config_hash(): r.config.train.seed for r in sweep.runs}
    assert [seed_of[r.config.config_hash()] for r in sweep.runs] != sorted(seed_of.values())  # file order differs
    s = run_sweep(sweep, tmp_path / "order.db", data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert [seed_of[h] for h in s.ran] == [0, 0, 0, 1, 1, 1]


def _wait_for(pred, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_kill9_mid_sweep_then_rerun_matches_uninterrupted(tmp_path, reference):
    db = tmp_path / "k.db"
    proc = subprocess.Popen([PY, HELPER, str(db), "--delay", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def mid_run():
        if not db.exists():
            return False
        try:
            con = sqlite3.connect(db, timeout=5)
            fin = con.execute("SELECT COUNT(*) FROM runs WHERE status='finished'").fetchone()[0]
            part = con.execute("SELECT COUNT(*) FROM epochs e JOIN runs r USING(config_hash) "
                               "WHERE r.status='running'").fetchone()[0]
            con.close()
            return fin >= 1 and part >= 1
        except sqlite3.Error:
            return False
    try:
        assert _wait_for(mid_run), proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store(db) as st:
        c = st.counts()
        assert c.get("running") == 1 and c.get("finished", 0) < 6, c
        killed = st.runs("running")[0].config_hash
        assert 1 <= len(st.epochs(killed)) < 3
    s = run_sweep(helper.sweep(), db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert killed in s.ran and len(s.skipped) >= 1 and len(s.ran) + len(s.skipped) == 6
    assert snapshot(db) == reference


def test_two_sweeps_writing_one_store_concurrently(tmp_path, reference):
    db = tmp_path / "c.db"
    procs = [subprocess.Popen([PY, HELPER, str(db), "--delay", "0.05", *extra], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for extra in ([], ["--reverse"])]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    ran = sum(int(out.split()[1]) for out, _ in outs)
    assert ran >= 6   # every run trained by one of them (a busy one may be retried after a lost race)
    assert snapshot(db) == reference


def test_diverged_run_is_stored_as_diverged(tmp_path):
    sw = helper.sweep(grid={}, seeds=[0], base={"model": {"hidden": [8], "activation": "linear"},
                                                "train": {"epochs": 3, "batch_size": 20, "lr": 1e6}})
    s = run_sweep(sw, tmp_path / "d.db", data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert list(s.ran.values()) == ["diverged"]
    with Store(tmp_path / "d.db") as st:
        (run,) = st.runs()
        assert run.status == "diverged" and run.finished
        eps = st.epochs(run.config_hash)
        assert eps and eps[-1].status == "diverged"


def test_failed_run_recorded_and_retried(tmp_path):
    sw = helper.sweep(grid={}, seeds=[0])
    s = run_sweep(sw, tmp_path / "f.db", data="no_such_module_xyz:tiny", progress=False, runtime=Runtime(threads=1))
    assert list(s.ran.values()) == ["failed"]
    with Store(tmp_path / "f.db") as st:
        assert "no_such_module_xyz" in st.runs()[0].error
    s = run_sweep(sw, tmp_path / "f.db", data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert list(s.ran.values()) == ["finished"]


def test_dask_executor_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    sw = helper.sweep(seeds=[0], grid={"channel.algorithm": ["bp", "rbp", "srbp", "top"]})
    assert len(sw.runs) == 4
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        s = run_sweep(sw, tmp_path / "dask.db", executor="dask", client=client, data=helper.DATA_SPEC,
                      progress=False)
    assert sorted(s.ran.values()) == ["finished"] * 4
    with Store(tmp_path / "dask.db") as st:
        assert st.counts() == {"finished": 4}
        assert sum(len(r.epochs) for r in st.runs()) == 4 * 3
        assert {r.machine["torch_threads"] for r in st.runs()} == {1}


# --- bad input --------------------------------------------------------------------------------
def test_unknown_field_names_field_and_allowed(tmp_path):
    with pytest.raises(ConfigError, match=r"channel\.algoritm.*allowed:.*channel\.algorithm"):
        helper.sweep(grid={"channel.algoritm": ["bp"]})
    with pytest.raises(ConfigError, match=r"train\.epoch\b.*train\.epochs"):
        helper.sweep(base={"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match=r"seed.*allowed: name, description, seeds"):
        expand_sweep({"seed": [0]})
    f = tmp_path / "bad.toml"
    f.write_text('seeds = [0]\n[grid]\n"model.hiden" = [[8]]\n')
    with pytest.raises(ConfigError, match=r"bad\.toml.*model\.hiden.*model\.hidden"):
        load_sweep(f)


def test_bad_values_and_empty_grid():
    with pytest.raises(ConfigError, match=r"\[grid\] channel\.algorithm: empty list"):
        helper.sweep(grid={"channel.algorithm": []})
    with pytest.raises(ConfigError, match=r"channel\.algorithm.*'nope'"):
        helper.sweep(grid={"channel.algorithm": ["bp", "nope"]})
    with pytest.raises(ConfigError, match="a list of values"):
        helper.sweep(grid={"channel.algorithm": "bp"})
    with pytest.raises(ConfigError, match="seeds"):
        helper.sweep(seeds=[])


def test_newer_schema_store_is_refused(tmp_path):
    db = tmp_path / "new.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}.*version {SCHEMA_VERSION}"):
        Store(db)
    with pytest.raises(StoreError):
        run_sweep(helper.sweep(), db, data=helper.DATA_SPEC, progress=False)


def test_not_a_store(tmp_path):
    f = tmp_path / "junk.db"
    f.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite store"):
        Store(f)


def test_expansion_runs_grid_seeds_dedup():
    sw = expand_sweep({
        "seeds": [0, 1],
        "base": {"train": {"epochs": 2}},
        "grid": {"channel": {"algorithm": ["rbp", "srbp"]}},
        "runs": [{"row": "baseline"}, {"row": "sparse_8", "channel.feedback": "sparse:n=8"},
                 {"row": "bp_only", "grid": {"channel.algorithm": ["bp"]}},
                 {"row": "dup", "grid": {"channel.algorithm": ["bp"]}}],
    })
    assert len(sw.runs) == 2 * 2 + 2 * 2 + 2   # dup collapses onto bp_only
    assert {r.tags["row"] for r in sw.runs} == {"baseline", "sparse_8", "bp_only"}
    assert all(r.config.train.epochs == 2 for r in sw.runs)
    sp = [r.config for r in sw.runs if r.tags["row"] == "sparse_8"]
    assert {c.channel.feedback.spec for c in sp} == {"sparse:n=8"} and {c.train.seed for c in sp} == {0, 1}
