"""SQLite results store for sweeps: one row per run, one row per finished epoch.

The file is opened in WAL mode with a busy timeout, and every write is a short ``BEGIN IMMEDIATE``
transaction, so several sweeps (processes, Dask workers) can write the same store at once.

Run life cycle (``runs.status``): ``pending`` -> ``running`` -> ``finished`` | ``diverged`` | ``failed``.

* A worker *claims* a run before training it (one transaction). A run already ``finished`` or
  ``diverged`` is skipped. A run ``running`` under a live owner (its heartbeat is younger than
  ``stale_after`` seconds, default ``STALE_AFTER`` = 10 minutes, and, on this machine, its
  process still exists) is left to that owner. Otherwise (pending, failed, or running under a
  dead owner: a killed sweep) the claim restarts it **from scratch**: its old epoch rows are
  deleted in the same transaction that marks it running. Training is deterministic per seed, so
  a restarted run gives the same epochs an uninterrupted one would; no checkpoints are kept.
* Each finished epoch is written as it finishes; a write from a worker that no longer owns the
  run is refused (``StoreError``). While a run trains, a thread of its worker refreshes its
  heartbeat every ``HEARTBEAT_SECONDS`` (``Store.heartbeat``), also during long epochs, so an owner
  on another host that went away (its heartbeat stopped) loses its runs after ``stale_after``;
  ``reclaim`` takes them over sooner (``lowbit-rbp sweep --reclaim``: after ``RECLAIM_AFTER``).
* A worker process that died (killed, out of memory) while training a run has the run marked
  ``failed`` by its sweep (``fail_runs_of``); the next sweep retrains it.
* The final status is set in one transaction, with ``finished`` time. A search may end a run
  early (``record_pruned``): status ``failed`` with the tag ``pruned``, its epochs kept.
* With the Dask executor the sweep's own process is the only writer: workers stream their epochs
  back to it (``lowbit_rbp.results.remote``), so the store never sits on a network file system.

Readers get typed records (``lowbit_rbp.results.records``). ``Store.read_only(path)`` opens a
store without ever writing to it (reports, while a sweep writes the same file).

A file that is not a results store (not SQLite, or an SQLite database with tables but no store
``meta``) is refused before anything is written to it; an empty file or a new path becomes one.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

from ..core.config import from_stored
from ..errors import LowbitError
from ..oserror import os_error_line
from .records import DONE, EPOCH_FIELDS, EpochRecord, RunRecord

SCHEMA_VERSION = 1
HEARTBEAT_SECONDS = 30.0        # a training run's heartbeat period (Store.heartbeat)
STALE_AFTER = 600.0             # a running run whose heartbeat is older is taken over by the next claim
RECLAIM_AFTER = 3 * HEARTBEAT_SECONDS   # lowbit-rbp sweep --reclaim: three missed heartbeats
SQLITE_MAGIC = b"SQLite format 3\x00"
STATUSES = ("pending", "running", "finished", "diverged", "failed")
PRUNED_TAG = "pruned"     # tag of a run a search stopped early (status failed; see record_pruned)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    config_hash TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending','running','finished','diverged','failed')),
    started TEXT,
    finished TEXT,
    machine_json TEXT,
    code_version TEXT,
    tags_json TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    heartbeat REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, test_loss REAL, test_acc REAL, lr REAL, seconds REAL,
    status TEXT NOT NULL,
    PRIMARY KEY (config_hash, epoch)
);
"""
# Columns added since schema version 1 (readers of version 1 ignore them): (table, column, type).
_ADDED_COLUMNS = (("epochs", "reason", "TEXT"),)

# Learning diagnostics (``lowbit_rbp.learning.diagnostics``): one row per run, epoch, weight layer and
# metric. Created when a run first records diagnostics, so stores written before it stay readable
# (and a read-only store without it reads as having none). WITHOUT ROWID: the key is the row (half
# the file of a rowid table with its key index).
_DIAGNOSTICS_SCHEMA = """
CREATE TABLE IF NOT EXISTS diagnostics (
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    epoch INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (config_hash, epoch, layer, metric)
) WITHOUT ROWID
"""


class StoreError(LowbitError):
    """The results store cannot be used as asked (newer schema, lost claim, not a store)."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def new_owner() -> str:
    """An owner id for claims: host, process id and a random token (``host:pid:token``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_pid(owner: str | None) -> int | None:
    """The process id of an owner of this host, else None."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def check_is_store(path: Path) -> None:
    """Refuse a file that is not a results store, reading it only: not an SQLite file, or an SQLite
    database that has tables but no store ``meta`` (another program's). A missing or empty file passes."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"results store {str(path)!r}: {exc.strerror or exc}") from None
    if head != SQLITE_MAGIC:
        raise StoreError(f"results store {str(path)!r} is not a usable SQLite store: not an SQLite file; "
                         "choose another --store")
    # Without a -wal file nobody has the database open in WAL mode and the file holds all of it:
    # read it as immutable, which creates no -wal/-shm files beside another program's database.
    idle = not Path(str(path) + "-wal").exists()
    try:
        con = sqlite3.connect("file:" + quote(str(path.resolve())) + "?mode=ro" + ("&immutable=1" if idle else ""),
                              uri=True, timeout=60.0)
    except sqlite3.Error as exc:
        raise StoreError(f"results store {str(path)!r} cannot be opened: {exc}") from None
    try:
        tables = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        ours = "meta" in tables and con.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"results store {str(path)!r} is not a usable SQLite store: {exc}") from None
    finally:
        con.close()
    if tables and not ours:
        raise StoreError(f"{str(path)!r} is an SQLite database of another program (tables: {', '.join(tables)}), "
                         "not a lowbit-rbp results store; it was left unchanged; choose another --store")


def _owner_alive(owner: str | None, heartbeat: float | None, stale_after: float) -> bool:
    """An owner is alive while its heartbeat is younger than ``stale_after`` seconds and, if it is
    a process of this host, that process exists (a pid may be reused: the heartbeat decides then)."""
    if not owner:
        return False
    pid = _owner_pid(owner)
    if pid is not None and not _process_alive(pid):
        return False
    return heartbeat is not None and time.time() - heartbeat < stale_after


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs: it exists and is not a zombie (a killed worker
    stays one until something reaps it, which a container's init may do late)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, as another user's process
        pass
    if not Path("/proc/self/stat").exists():   # not Linux: kill() has answered
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:           # it ended meanwhile
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


class Store:
    """A results store at ``path`` (created if missing). Use as a context manager or call ``close``."""

    def __init__(self, path, *, timeout: float = 120.0, stale_after: float = STALE_AFTER):
        self.path = Path(path)
        self.stale_after = stale_after
        self.timeout = timeout
        check_is_store(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"results store {str(self.path)!r}: cannot create its folder: "
                             f"{os_error_line(exc)}") from None
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"results store {str(self.path)!r}: could not switch to WAL mode (got {mode})")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {str(self.path)!r} is not a usable SQLite store: {exc}") from None

    # --- plumbing -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """``BEGIN IMMEDIATE`` (takes the write lock up front, waiting up to the busy timeout)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _init_schema(self) -> None:
        with self.transaction() as c:
            have = c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            version = None
            if have:
                row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(f"results store {str(self.path)!r} has schema version {version}, newer than "
                                 f"version {SCHEMA_VERSION} that this lowbit-rbp understands; upgrade lowbit-rbp "
                                 "or use another --store")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if version is None:
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            for table, column, kind in _ADDED_COLUMNS:
                if column not in {r[1] for r in c.execute(f"PRAGMA table_info({table})")}:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- writing ------------------------------------------------------------------------------
    def add_pending(self, cfg, tags: dict | None = None) -> None:
        """Register a run (no-op if the store already knows its config hash)."""
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO runs(config_hash, label, config_json, status, tags_json) "
                      "VALUES (?, ?, ?, 'pending', ?)",
                      (cfg.config_hash(), cfg.label(), json.dumps(cfg.to_dict(), sort_keys=True),
                       json.dumps(tags or {}, sort_keys=True)))

    def claim(self, cfg, owner: str, *, machine: dict | None = None, code_version: str = "",
              tags: dict | None = None) -> str:
        """Try to take a run for training. Returns ``"claimed"`` (epochs cleared, status running),
        ``"done"`` (finished or diverged: skip) or ``"busy"`` (running under a live owner)."""
        h = cfg.config_hash()
        with self.transaction() as c:
            row = c.execute("SELECT status, owner, heartbeat FROM runs WHERE config_hash=?", (h,)).fetchone()
            if row is not None:
                if row["status"] in DONE:
                    return "done"
                if row["status"] == "running" and row["owner"] != owner and \
                        _owner_alive(row["owner"], row["heartbeat"], self.stale_after):
                    return "busy"
            c.execute("DELETE FROM epochs WHERE config_hash=?", (h,))
            c.execute("INSERT OR REPLACE INTO runs(config_hash, label, config_json, status, started, finished, "
                      "machine_json, code_version, tags_json, owner, heartbeat, error) "
                      "VALUES (?, ?, ?, 'running', ?, NULL, ?, ?, ?, ?, ?, NULL)",
                      (h, cfg.label(), json.dumps(cfg.to_dict(), sort_keys=True), _now(),
                       json.dumps(machine or {}, sort_keys=True), code_version,
                       json.dumps(tags or {}, sort_keys=True), owner, time.time()))
            return "claimed"

    def _check_owner(self, c, h: str, owner: str) -> None:
        row = c.execute("SELECT status, owner FROM runs WHERE config_hash=?", (h,)).fetchone()
        if row is None or row["owner"] != owner or row["status"] != "running":
            raise StoreError(f"run {h} is no longer owned by this worker ({owner}); another sweep restarted it")

    def record_epoch(self, config_hash: str, owner: str, rec: EpochRecord) -> None:
        """Write one finished epoch of a run this owner holds."""
        d = asdict(rec)
        with self.transaction() as c:
            self._check_owner(c, config_hash, owner)
            c.execute("INSERT OR REPLACE INTO epochs(config_hash, " + ", ".join(EPOCH_FIELDS) + ") VALUES (?"
                      + ", ?" * len(EPOCH_FIELDS) + ")", (config_hash, *[d[k] for k in EPOCH_FIELDS]))
            c.execute("UPDATE runs SET heartbeat=? WHERE config_hash=?", (time.time(), config_hash))

    def finish(self, config_hash: str, owner: str, status: str, error: str | None = None) -> None:
        """Set the final status (finished, diverged or failed) of a run this owner holds."""
        if status not in ("finished", "diverged", "failed"):
            raise StoreError(f"final run status: got {status!r}; allowed: finished, diverged, failed")
        with self.transaction() as c:
            self._check_owner(c, config_hash, owner)
            c.execute("UPDATE runs SET status=?, finished=?, error=?, heartbeat=? WHERE config_hash=?",
                      (status, _now(), error, time.time(), config_hash))

    @contextmanager
    def heartbeat(self, config_hash: str, owner: str, every: float | None = None):
        """Refresh the heartbeat of a run this owner holds every ``every`` seconds (default
        ``HEARTBEAT_SECONDS``) while the block runs (a thread with its own connection), so a long
        epoch does not look like a dead owner."""
        every = HEARTBEAT_SECONDS if every is None else every
        stop = threading.Event()

        def beat():
            # Autocommit: each beat is its own transaction, and a failed one leaves none open.
            con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
            try:
                while not stop.wait(every):
                    try:
                        con.execute("UPDATE runs SET heartbeat=? WHERE config_hash=? AND owner=? AND status='running'",
                                    (time.time(), config_hash, owner))
                    except sqlite3.OperationalError:   # busy past the timeout: the next beat tries again
                        continue
            finally:
                con.close()

        thread = threading.Thread(target=beat, name=f"heartbeat-{config_hash[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def reclaim(self, stale_after: float = RECLAIM_AFTER) -> list[str]:
        """Mark ``failed`` (so the next claim retrains them) the runs ``running`` under an owner that
        is not alive by ``stale_after`` (a dead process here, or no heartbeat for ``stale_after``
        seconds); returns their config hashes."""
        taken = []
        with self.transaction() as c:
            for row in c.execute("SELECT config_hash, owner, heartbeat FROM runs WHERE status='running'").fetchall():
                if not _owner_alive(row["owner"], row["heartbeat"], stale_after):
                    age = "never" if row["heartbeat"] is None else f"{time.time() - row['heartbeat']:.0f} s ago"
                    c.execute("UPDATE runs SET status='failed', finished=?, error=? WHERE config_hash=?",
                              (_now(), f"reclaimed: owner {row['owner']} last heartbeat {age}", row["config_hash"]))
                    taken.append(row["config_hash"])
        return taken

    def mark_for_retraining(self, hashes, reason: str) -> list[str]:
        """Mark ``failed`` with ``reason`` the done (finished or diverged) runs among ``hashes``, so
        the next claim retrains them from scratch (a code change that alters results, or runs
        recorded from uncommitted code); a run another owner is training is left alone. Returns
        the hashes marked."""
        marked = []
        with self.transaction() as c:
            for h in hashes:
                row = c.execute("SELECT status FROM runs WHERE config_hash=?", (h,)).fetchone()
                if row is not None and row["status"] in DONE:
                    c.execute("UPDATE runs SET status='failed', error=? WHERE config_hash=?", (f"retrain: {reason}", h))
                    marked.append(h)
        return marked

    def fail_runs_of(self, pid: int, error: str) -> list[str]:
        """Mark ``failed`` with ``error`` the runs still ``running`` under a process ``pid`` of this
        host (a sweep's worker that died); returns their config hashes."""
        with self.transaction() as c:
            rows = c.execute("SELECT config_hash, owner FROM runs WHERE status='running'").fetchall()
            hashes = [r["config_hash"] for r in rows if _owner_pid(r["owner"]) == pid]
            for h in hashes:
                c.execute("UPDATE runs SET status='failed', finished=?, error=? WHERE config_hash=?", (_now(), error, h))
        return hashes

    def record_pruned(self, config_hash: str, owner: str, info: dict) -> None:
        """End a run this owner holds that a search stopped early (``lowbit_rbp.results.search``):
        its epochs are kept, ``tags["pruned"] = info`` says where and why, and its status is
        ``failed``: not done, so a sweep that wants the run trains it in full (from scratch), and
        reports that show finished runs leave it out."""
        with self.transaction() as c:
            self._check_owner(c, config_hash, owner)
            row = c.execute("SELECT tags_json FROM runs WHERE config_hash=?", (config_hash,)).fetchone()
            tags = {**json.loads(row["tags_json"] or "{}"), PRUNED_TAG: info}
            c.execute("UPDATE runs SET status='failed', finished=?, error=?, heartbeat=?, tags_json=? "
                      "WHERE config_hash=?", (_now(), f"pruned: {json.dumps(info, sort_keys=True)}", time.time(),
                                              json.dumps(tags, sort_keys=True), config_hash))

    # --- reading ------------------------------------------------------------------------------
    @classmethod
    def read_only(cls, path) -> "Store":
        """A store opened read-only (``mode=ro``): never takes the write lock, never creates or
        changes a file; only the reading methods may be used."""
        self = cls.__new__(cls)
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"results store {str(self.path)!r} does not exist")
        check_is_store(self.path)
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        try:
            self.conn = sqlite3.connect(uri, uri=True, timeout=60.0)
            self.conn.row_factory = sqlite3.Row
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {str(self.path)!r} is not a usable SQLite store: {exc}") from None
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            self.conn.close()
            raise StoreError(f"results store {str(self.path)!r} has schema version {row[0]}, newer than version "
                             f"{SCHEMA_VERSION} that this lowbit-rbp understands; upgrade lowbit-rbp")
        return self

    def runs(self, status: str | None = None) -> list[RunRecord]:
        """Every run (with its epochs), ordered by config hash."""
        q = "SELECT * FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY config_hash"
        epochs: dict[str, list[EpochRecord]] = {}
        for r in self.conn.execute("SELECT * FROM epochs ORDER BY config_hash, epoch"):
            epochs.setdefault(r["config_hash"], []).append(_epoch(r))
        return [self._record(dict(r), epochs.get(r["config_hash"], []))
                for r in self.conn.execute(q, (status,) if status else ())]

    def run(self, config_hash: str) -> RunRecord | None:
        row = self.conn.execute("SELECT * FROM runs WHERE config_hash=?", (config_hash,)).fetchone()
        return None if row is None else self._record(dict(row), self.epochs(config_hash))

    def epochs(self, config_hash: str) -> list[EpochRecord]:
        rows = self.conn.execute("SELECT * FROM epochs WHERE config_hash=? ORDER BY epoch", (config_hash,))
        return [_epoch(r) for r in rows]

    def done_hashes(self) -> set[str]:
        """Config hashes of the runs finished or diverged (nothing left to train)."""
        return {r[0] for r in self.conn.execute(
            f"SELECT config_hash FROM runs WHERE status IN ({', '.join('?' * len(DONE))})", DONE)}

    @staticmethod
    def _record(d: dict, epochs: list[EpochRecord]) -> RunRecord:
        cfg = from_stored(json.loads(d["config_json"]))
        if cfg.config_hash() != d["config_hash"]:
            raise StoreError(f"results store: run {d['config_hash']} holds a config whose hash is {cfg.config_hash()}; "
                             "the store was written by an incompatible lowbit-rbp")
        return RunRecord(cfg, d["status"], epochs, json.loads(d["tags_json"] or "{}"), d["label"],
                         json.loads(d["machine_json"] or "{}"), d["code_version"] or "", d["started"], d["finished"],
                         d["error"])

    def counts(self) -> dict:
        return {r[0]: r[1] for r in self.conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")}

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # --- learning diagnostics -----------------------------------------------------------------
    def record_diagnostics(self, config_hash: str, owner: str, epoch: int, rows) -> None:
        """Write one epoch's diagnostics (``LayerDiagnostics`` rows) of a run this owner holds. Epoch
        1 first clears the run's older rows (a claim restarts a run from scratch)."""
        with self.transaction() as c:
            self._check_owner(c, config_hash, owner)
            c.execute(_DIAGNOSTICS_SCHEMA)
            if epoch == 1:
                c.execute("DELETE FROM diagnostics WHERE config_hash=?", (config_hash,))
            c.executemany("INSERT OR REPLACE INTO diagnostics(config_hash, epoch, layer, metric, value) "
                          "VALUES (?, ?, ?, ?, ?)",
                          [(config_hash, epoch, row.layer, name, _finite_or_none(value))
                           for row in rows for name, value in row.values.items()])

    def has_diagnostics(self) -> bool:
        return self.conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='diagnostics'"
                                 ).fetchone() is not None

    def diagnostics(self, config_hash: str | None = None) -> dict:
        """``{config_hash: [LayerDiagnostics, ...]}`` ordered by epoch and layer (a missing value: NaN);
        empty for a store without diagnostics."""
        from ..learning.diagnostics import LayerDiagnostics
        if not self.has_diagnostics():
            return {}
        q = "SELECT * FROM diagnostics" + (" WHERE config_hash=?" if config_hash else "") + \
            " ORDER BY config_hash, epoch, layer, metric"
        grouped: dict = {}
        for r in self.conn.execute(q, (config_hash,) if config_hash else ()):
            key = (r["config_hash"], r["epoch"], r["layer"])
            grouped.setdefault(key, {})[r["metric"]] = float("nan") if r["value"] is None else r["value"]
        out: dict = {}
        for (h, epoch, layer), values in grouped.items():
            out.setdefault(h, []).append(LayerDiagnostics(epoch, layer, values))
        return out


def _finite_or_none(value):
    """SQLite stores NaN as NULL anyway; say so."""
    return None if value is None or value != value else float(value)


def _epoch(row) -> EpochRecord:
    """An epoch row as a record (a store of schema 1 before ``reason`` was added has none)."""
    d = dict(row)
    d["reason"] = d.get("reason") or ""
    return EpochRecord.from_dict(d)
