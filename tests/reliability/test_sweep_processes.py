"""Sweep processes killed from outside: the parent of a 2-worker sweep (SIGKILL, SIGTERM) and one of
its workers. Linux: process states are read from /proc."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.results.store import Store
from lowbit_rbp.results.sweep import run_sweep

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sweep"))
import helper  # noqa: E402

DRIVER = str(HERE / "sweep_driver.py")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


def _state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (None: gone). Z (a zombie) has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rpartition(")")[2].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                out.append(int(p.name))
    return out


def _wait_for(pred, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _running_owners(db: Path) -> list[int]:
    """Pids of the owners of the runs now running (empty while the store is being created)."""
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            rows = con.execute("SELECT owner FROM runs WHERE status='running'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []
    return [int(o.split(":")[1]) for (o,) in rows]


def _start(db: Path, delay: float = 1.0) -> subprocess.Popen:
    env = {**os.environ, "LOWBIT_TEST_EPOCH_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, DRIVER, str(db), "--workers", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _both_workers_training(proc, db) -> list[int]:
    """Wait until two workers hold a run; their pids."""
    assert _wait_for(lambda: len(_running_owners(db)) == 2 or proc.poll() is not None, 120), "no run started"
    assert proc.poll() is None, proc.communicate()
    return _running_owners(db)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep's runs, trained uninterrupted in this process: (hash, epoch, losses, accuracies)."""
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    run_sweep(helper.sweep(), db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    return _epochs(db)


def _epochs(db) -> list[tuple]:
    with Store(db) as st:
        return sorted((r.config_hash, r.status, e.epoch, e.train_loss, e.test_loss, e.test_acc)
                      for r in st.runs() for e in r.epochs)


def _rerun_completes(db, reference) -> None:
    run_sweep(helper.sweep(), db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    with Store(db) as st:
        assert st.counts() == {"finished": 6}
    assert _epochs(db) == reference


@pytest.mark.fault("parent_kill9")
def test_parent_killed_with_sigkill_takes_its_workers_along(tmp_path, reference):
    db = tmp_path / "k9.db"
    proc = _start(db)
    try:
        workers = _both_workers_training(proc, db)
        family = _children(proc.pid)              # the two workers and the resource tracker
        assert set(workers) <= set(family)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert _wait_for(lambda: not any(_alive(p) for p in family), 5), \
            {p: _state(p) for p in family if _alive(p)}
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store(db) as st:
        assert st.counts().get("running") == 2    # left behind by the dead workers ...
    _rerun_completes(db, reference)               # ... and retrained by the next sweep


@pytest.mark.fault("parent_term")
def test_parent_sigterm_stops_the_workers_and_marks_their_runs(tmp_path, reference):
    db = tmp_path / "term.db"
    proc = _start(db)
    try:
        workers = _both_workers_training(proc, db)
        family = _children(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("sweep stopped")]
    assert line.startswith("sweep stopped (SIGTERM): 2 run(s) in progress marked failed")
    assert _wait_for(lambda: not any(_alive(p) for p in family), 5), {p: _state(p) for p in family if _alive(p)}
    with Store(db) as st:
        failed = st.runs("failed")
        assert "running" not in st.counts() and len(failed) == 2
        assert all(r.error.startswith("interrupted (SIGTERM)") for r in failed)
    assert set(workers) <= set(family)
    _rerun_completes(db, reference)


@pytest.mark.slow
@pytest.mark.fault("worker_killed")
def test_one_worker_killed_fails_its_run_and_the_sweep_goes_on(tmp_path, reference):
    db = tmp_path / "w9.db"
    proc = _start(db)
    try:
        victim = _both_workers_training(proc, db)[0]
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert out.split()[-6:] == ["skipped", "0", "busy", "0", "failed", "1"]
    with Store(db) as st:
        assert st.counts() == {"finished": 5, "failed": 1}
        (failed,) = st.runs("failed")
        assert failed.error.startswith(f"worker process {victim} died (killed by SIGKILL, signal 9)")
    _rerun_completes(db, reference)
