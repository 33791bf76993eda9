"""The Dask executor on a real cluster of separate processes (``dask scheduler``, ``dask worker``)
on 127.0.0.1, with workers that cannot reach the store: they run in their own folders, and a
``sitecustomize`` on their path refuses every SQLite connection and every file under the
client's folder. Workers stream epochs back; the sweep's process alone writes the store.

A worker killed with SIGKILL in the middle of a run: its run is redone on the other worker and the
store equals an uninterrupted local sweep. A client killed with SIGKILL: the rerun finishes the
sweep and the store again equals the uninterrupted one.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.results.store import Store
from lowbit_rbp.results.sweep import run_sweep

sys.path.insert(0, str(Path(__file__).parent))
import helper  # noqa: E402

pytest.importorskip("distributed")
DASK = str(Path(sys.executable).parent / "dask")
HELPER = str(Path(__file__).parent / "helper.py")

GUARD = '''
import builtins, io, os, sqlite3
_FORBIDDEN = os.environ["LOWBIT_TEST_FORBIDDEN"]

def _check(path):
    if isinstance(path, (str, bytes, os.PathLike)):
        p = os.path.abspath(os.fsdecode(path))
        if p == _FORBIDDEN or p.startswith(_FORBIDDEN + os.sep):
            raise PermissionError(f"worker must not reach the client's folder: {p}")

def _no_sqlite(*args, **kw):
    raise PermissionError("worker must not open SQLite: the client writes the store")

_open, _os_open = builtins.open, os.open
def _guarded_open(file, *a, **kw):
    _check(file)
    return _open(file, *a, **kw)
def _guarded_os_open(path, *a, **kw):
    _check(path)
    return _os_open(path, *a, **kw)
builtins.open = io.open = _guarded_open
os.open = _guarded_os_open
sqlite3.connect = _no_sqlite
'''


def _wait_for(value, timeout: float, what: str):
    """The first value of ``value()`` that is not None (polled), or a failure after ``timeout`` s."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = value()
        if v is not None and v is not False:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# Run on every worker (as code: the test module is not importable there): SQLite and the client's
# folder must both be refused.
REACH_CHECK = """
def check():
    import sqlite3
    for attempt in (lambda: sqlite3.connect(":memory:"), lambda: open({path!r}, "a")):
        try:
            attempt().close()
        except PermissionError:
            continue
        raise AssertionError("a worker reached SQLite or the client's folder")
check()
"""


class Cluster:
    """A scheduler and two no-nanny workers as subprocesses, each in its own folder."""

    def __init__(self, root: Path, forbidden: Path):
        self.root, self.forbidden = root, forbidden
        self.procs: list = []
        self.worker_dirs: list = []

    def start(self) -> None:
        root, forbidden = self.root, self.forbidden
        guard = root / "guard"
        guard.mkdir(parents=True)
        (guard / "sitecustomize.py").write_text(GUARD)
        env = {**os.environ, "PYTHONPATH": str(guard), "LOWBIT_TEST_FORBIDDEN": str(forbidden)}
        sched_dir = root / "scheduler"
        sched_dir.mkdir()
        self.file = root / "scheduler.json"
        self.procs.append(subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
             str(self.file)], cwd=sched_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for(lambda: self.file.exists() and self.file.stat().st_size > 0, 60, "the scheduler file")
        self.address = json.loads(self.file.read_text())["address"]
        for i in range(2):
            wd = root / f"worker{i}"
            wd.mkdir()
            self.worker_dirs.append(wd)
            self.procs.append(subprocess.Popen(
                [DASK, "worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-nanny", "--no-dashboard",
                 "--name", f"w{i}", "--local-directory", str(wd)], cwd=wd, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(self.address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=90)
            c.run(exec, REACH_CHECK.format(path=str(forbidden / "store.db")))    # the guard is in place

    @property
    def worker_pids(self) -> set[int]:
        return {p.pid for p in self.procs[1:]}

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    c = Cluster(tmp_path / "cluster", client_dir)
    try:
        c.start()
        yield c, client_dir
    finally:
        c.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.db"
    s = run_sweep(helper.sweep(), path, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    assert len(s.ran) == 6 and not s.failed
    return helper.snapshot(path)


def _running_with_epochs(db: Path):
    """(config_hash, worker pid) of a run that is running and has at least one epoch, else None."""
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        row = con.execute("SELECT r.config_hash, r.machine_json FROM runs r WHERE r.status='running' AND "
                          "(SELECT COUNT(*) FROM epochs e WHERE e.config_hash=r.config_hash) >= 1").fetchone()
        con.close()
    except sqlite3.Error:
        return None
    return None if row is None else (row[0], json.loads(row[1])["pid"])


def _no_store_files_near_workers(c: Cluster) -> None:
    for d in c.worker_dirs:
        assert not [p for p in d.rglob("*.db*")], f"a store file appeared in {d}"


def test_worker_killed_mid_run_is_redone_elsewhere(cluster, reference):
    c, client_dir = cluster
    db = client_dir / "store.db"
    result: dict = {}

    def sweep():
        result["summary"] = run_sweep(helper.sweep(), db, executor="dask", scheduler=c.address,
                                      data=helper.SLOW_DATA_SPEC, progress=False)
    t = threading.Thread(target=sweep)
    t.start()
    killed_hash, pid = _wait_for(lambda: _running_with_epochs(db), 120, "a run with a finished epoch")
    assert pid in c.worker_pids            # trained in a worker process, not in the client
    os.kill(pid, signal.SIGKILL)
    t.join(timeout=240)
    assert not t.is_alive()
    s = result["summary"]
    assert sorted(s.ran.values()) == ["finished"] * 6 and not s.busy and not s.skipped
    assert helper.snapshot(db) == reference        # every epoch once, equal to the uninterrupted sweep
    with Store.read_only(db) as st:
        redone = st.run(killed_hash)
        assert redone.machine["pid"] in c.worker_pids - {pid}
        assert {r.machine["pid"] for r in st.runs()} <= c.worker_pids
    _no_store_files_near_workers(c)


@pytest.mark.slow
def test_client_killed_then_rerun_finishes_the_sweep(cluster, reference):
    c, client_dir = cluster
    db = client_dir / "store.db"
    proc = subprocess.Popen([sys.executable, HELPER, str(db), "--scheduler", c.address], cwd=client_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _running_with_epochs(db), 120, "a run with a finished epoch")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store.read_only(db) as st:
        counts = st.counts()
    assert counts.get("finished", 0) < 6 and counts.get("running", 0) >= 1, counts
    s = run_sweep(helper.sweep(), db, executor="dask", scheduler=c.address, data=helper.SLOW_DATA_SPEC,
                  progress=False)
    assert len(s.ran) + len(s.skipped) == 6 and len(s.ran) >= 1 and not s.failed and not s.busy
    assert helper.snapshot(db) == reference
    _no_store_files_near_workers(c)
