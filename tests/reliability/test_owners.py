"""Runs held by owners that went away: heartbeats during long epochs, staleness and --reclaim."""
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.results import store as store_mod
from lowbit_rbp.results.store import RECLAIM_AFTER, STALE_AFTER, Store
from lowbit_rbp.results.sweep import run_one, run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sweep"))
import helper  # noqa: E402

OTHER_HOST = "a-host-that-went-away:4242:deadbeef"


def _held_by_other_host(db: Path, seconds_since_heartbeat: float):
    """A one-run sweep whose run is 'running' under an owner on another host, silent that long."""
    sw = helper.sweep(grid={}, seeds=[0])
    (run,) = sw.runs
    with Store(db) as st:
        assert st.claim(run.config, OTHER_HOST) == "claimed"
        st.conn.execute("UPDATE runs SET heartbeat=?", (time.time() - seconds_since_heartbeat,))
    return sw


def _status(db: Path) -> str:
    with Store(db) as st:
        return st.runs()[0].status


@pytest.mark.fault("owner_gone")
@pytest.mark.parametrize("silent, reclaim, outcome", [
    (STALE_AFTER + 60, False, "finished"),        # stale: the next sweep takes the run over
    (RECLAIM_AFTER + 30, False, "busy"),          # silent for a while, not yet stale: left alone ...
    (RECLAIM_AFTER + 30, True, "finished"),       # ... unless the sweep is told to reclaim
    (5, True, "busy"),                            # a live owner keeps its run even then
])
def test_runs_of_a_silent_owner_on_another_host(tmp_path, silent, reclaim, outcome):
    db = tmp_path / "s.db"
    sw = _held_by_other_host(db, silent)
    s = run_sweep(sw, db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1), reclaim=reclaim)
    if outcome == "busy":
        assert s.busy and not s.ran and _status(db) == "running"
    else:
        assert list(s.ran.values()) == [outcome] and _status(db) == outcome


@pytest.mark.fault("owner_gone")
def test_reclaim_records_whose_run_it_took(tmp_path):
    db = tmp_path / "r.db"
    _held_by_other_host(db, RECLAIM_AFTER + 30)
    with Store(db) as st:
        (h,) = st.reclaim()
        run = st.run(h)
    assert run.status == "failed"
    assert run.error.startswith(f"reclaimed: owner {OTHER_HOST} last heartbeat ")


@pytest.mark.fault("owner_gone")
def test_heartbeat_is_refreshed_during_a_long_epoch(tmp_path, monkeypatch):
    """While an epoch runs, with no epoch record written, the run's heartbeat moves on: the worker
    beats from a thread."""
    from lowbit_rbp.learning import trainer
    db = tmp_path / "h.db"
    monkeypatch.setattr(store_mod, "HEARTBEAT_SECONDS", 0.05)
    seen = []
    real_epoch = trainer.Trainer.train_epoch

    def long_epoch(self, progress=None):
        """An epoch that lasts until the run's heartbeat has moved on (or 60 s: then it never did)."""
        result = real_epoch(self, progress)
        con = sqlite3.connect(db)
        beat = lambda: con.execute("SELECT heartbeat FROM runs").fetchone()[0]  # noqa: E731
        before, end = beat(), time.time() + 60
        while beat() == before and time.time() < end:
            time.sleep(0.01)
        seen.append(beat() > before)
        con.close()
        return result

    monkeypatch.setattr(trainer.Trainer, "train_epoch", long_epoch)
    (run,) = helper.sweep(grid={}, seeds=[0]).runs
    assert run_one(str(db), run.config.to_dict(), data=helper.DATA_SPEC, runtime=Runtime(threads=1))[1] == "finished"
    assert seen == [True, True, True]
