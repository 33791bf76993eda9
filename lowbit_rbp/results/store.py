"""SQLite results store for sweeps: one row per run, one row per finished epoch.

The file is opened in WAL mode with a busy timeout, and every write is a short ``BEGIN IMMEDIATE``
transaction, so several sweeps (processes, Dask workers) can write the same store at once.

Run life cycle (``runs.status``): ``pending`` -> ``running`` -> ``finished`` | ``diverged`` | ``failed``.

* A worker *claims* a run before training it (one transaction). A run already ``finished`` or
  ``diverged`` is skipped. A run ``running`` under a live owner (another sweep on this machine
  whose process still exists, or any owner whose heartbeat is younger than ``stale_after``
  seconds) is left to that owner. Otherwise (pending, failed, or running under a dead owner: a
  killed sweep) the claim restarts it **from scratch**: its old epoch rows are deleted in the
  same transaction that marks it running. Training is deterministic per seed, so a restarted
  run gives the same epochs an uninterrupted one would; no checkpoints are kept.
* Each finished epoch is written as it finishes (with a heartbeat); a write from a worker that
  no longer owns the run is refused (``StoreError``).
* The final status is set in one transaction, with ``finished`` time.

Readers get typed records (``lowbit_rbp.results.records``). ``Store.read_only(path)`` opens a
store without ever writing to it (reports, while a sweep writes the same file).
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

from ..core.config import from_stored
from ..errors import LowbitError
from .records import DONE, EPOCH_FIELDS, EpochRecord, RunRecord

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "finished", "diverged", "failed")

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


def _owner_alive(owner: str | None, heartbeat: float | None, stale_after: float) -> bool:
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # The pid exists; it may be reused, so fall through to the heartbeat as well.
    return heartbeat is not None and time.time() - heartbeat < stale_after


class Store:
    """A results store at ``path`` (created if missing). Use as a context manager or call ``close``."""

    def __init__(self, path, *, timeout: float = 120.0, stale_after: float = 6 * 3600.0):
        self.path = Path(path)
        self.stale_after = stale_after
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
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

    # --- reading ------------------------------------------------------------------------------
    @classmethod
    def read_only(cls, path) -> "Store":
        """A store opened read-only (``mode=ro``): never takes the write lock, never creates or
        changes a file; only the reading methods may be used."""
        self = cls.__new__(cls)
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"results store {str(self.path)!r} does not exist")
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
            epochs.setdefault(r["config_hash"], []).append(EpochRecord.from_dict(dict(r)))
        return [self._record(dict(r), epochs.get(r["config_hash"], []))
                for r in self.conn.execute(q, (status,) if status else ())]

    def run(self, config_hash: str) -> RunRecord | None:
        row = self.conn.execute("SELECT * FROM runs WHERE config_hash=?", (config_hash,)).fetchone()
        return None if row is None else self._record(dict(row), self.epochs(config_hash))

    def epochs(self, config_hash: str) -> list[EpochRecord]:
        rows = self.conn.execute("SELECT * FROM epochs WHERE config_hash=? ORDER BY epoch", (config_hash,))
        return [EpochRecord.from_dict(dict(r)) for r in rows]

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
