"""Runs trained away from the store: workers stream each finished epoch back; the client alone writes.

A worker (a thread of this process, a local process, or a Dask worker on another machine) trains
one run with ``stream_run`` and talks to the client over a channel: ``("start", key, attempt,
machine)`` when it begins, ``("epoch", key, attempt, record)`` after every epoch. It returns the
run's outcome with all its epochs. It never opens the store, so workers need no shared disk: only
this package and the run's data (by default from their own data folder, ``$LOWBIT_RBP_DATA``,
checked against the official checksums by the loaders; see ``lowbit_rbp.results.providers``).

The client (``StreamDriver``) holds the SQLite store (never over a network file system: the file
lives beside the client). It claims a run when a worker starts it (``Store.claim``: the run's old
epochs are deleted in the same transaction), writes each epoch as it arrives, and sets the final
status from the outcome, first writing any epoch whose message had not arrived. So:

* a killed client loses only the runs in flight: they stay ``running`` under a dead owner and the
  next sweep restarts them (the store's claim rules);
* a lost Dask worker's task is rerun elsewhere by the scheduler; its new attempt announces itself
  with a new ``attempt`` token, the claim restarts the run from scratch, and messages of the old
  attempt are ignored. Training is deterministic per seed, so the redone run equals an
  uninterrupted one.

Between epochs a worker asks whether the client wants the run stopped, and at the epochs listed in
``RunJob.checkpoints`` it waits for the client's decision (a search prunes runs there, so a pruned
run stops exactly at its rung).

Backends: ``ThreadBackend`` (one run at a time in this process; data providers may be callables),
``ProcessBackend`` (``workers`` spawned local processes), ``DaskBackend`` (a ``distributed``
scheduler; epochs travel through a ``distributed.Queue``, stops through ``distributed.Event``).
"""
from __future__ import annotations

import os
import queue as queue_mod
import socket
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field

from ..core.config import from_stored
from ..core.runtime import Runtime
from ..errors import ConfigError
from .providers import load_data
from .store import Store, StoreError

DECISION_TIMEOUT_S = 1800.0   # a worker waiting this long at a checkpoint assumes its client is gone and stops
POLL_S = 0.05


@dataclass(frozen=True)
class RunJob:
    """One run to train: what travels to a worker (no store path)."""

    key: str                     # the config hash
    config: dict                 # RunConfig.to_dict()
    tags: dict = field(default_factory=dict)
    data: object = None          # a data provider (lowbit_rbp.results.providers)
    runtime: Runtime = Runtime(threads=1)
    checkpoints: tuple = ()      # epochs after which the worker waits for the client's go or stop


@dataclass
class Outcome:
    """What a worker returns: ``status`` finished | diverged | stopped | failed."""

    key: str
    attempt: str
    status: str
    epochs: list          # EpochRecord dicts, in order (each with its "diagnostics": LayerDiagnostics dicts)
    machine: dict
    error: str | None = None


# --- the worker side --------------------------------------------------------------------------
def worker_place() -> dict:
    """Where a run is trained: host and process (and the Dask worker's address on a Dask worker)."""
    place = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        from distributed import get_worker
        place["dask_worker"] = get_worker().address
    except (ImportError, ValueError):   # not on a Dask worker
        pass
    return place


def stream_run(job: RunJob, channel) -> Outcome:
    """Train ``job`` here, sending its start and every epoch over ``channel``; stop early when the
    client says so. Never raises for a failing run: the outcome says ``failed`` with the error."""
    from ..learning.trainer import Trainer, machine_info
    attempt = uuid.uuid4().hex[:12]
    machine: dict = worker_place()
    epochs: list = []
    try:
        runtime = job.runtime.apply()
        machine = {**machine_info(), **machine}
        channel.send(("start", job.key, attempt, machine))
        cfg = from_stored(job.config)
        trainer = Trainer(cfg, load_data(job.data, cfg), runtime)
        status = "finished"
        for rec in trainer.run(progress=False):
            # an epoch travels with its learning diagnostics, if any (Runtime.diagnostics)
            diagnostics = [d.to_dict() for d in trainer.diagnostics.last] if trainer.diagnostics is not None else []
            epochs.append({**asdict(rec), "diagnostics": diagnostics})
            channel.send(("epoch", job.key, attempt, epochs[-1]))
            if rec.status == "diverged":
                status = "diverged"
            elif rec.epoch in job.checkpoints and not channel.wait_decided(job.key, rec.epoch, DECISION_TIMEOUT_S):
                status = "stopped"
            elif channel.stopped(job.key):
                status = "stopped"
            if status == "stopped":
                break
        return Outcome(job.key, attempt, status, epochs, machine)
    except Exception as exc:  # any failure of this run is reported to the client; the sweep goes on
        err = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return Outcome(job.key, attempt, "failed", epochs, machine, err + "\n" + traceback.format_exc()[-4000:])


class LocalChannel:
    """A channel of a thread or a local process: a queue (``put``) and a dict of flags
    (``stop/KEY`` and ``go/KEY/EPOCH``), plain for threads, ``multiprocessing.Manager`` proxies
    for processes."""

    def __init__(self, messages, flags):
        self.messages = messages
        self.flags = flags

    def send(self, msg) -> None:
        self.messages.put(msg)

    def stopped(self, key: str) -> bool:
        return bool(self.flags.get(f"stop/{key}", False) or self.flags.get("stop/*", False))

    def wait_decided(self, key: str, epoch: int, timeout: float) -> bool:
        """Wait for the client's decision on ``key`` after ``epoch``; True: go on."""
        deadline = time.monotonic() + timeout
        while f"go/{key}/{epoch}" not in self.flags:
            if self.stopped(key) or time.monotonic() > deadline:
                return False
            time.sleep(POLL_S / 2)
        return not self.stopped(key)


class DaskChannel:
    """The channel of a Dask task: names of a ``distributed.Queue`` and of ``distributed.Event``s
    (resolved on the worker, through the worker's connection to the scheduler)."""

    def __init__(self, session: str):
        self.session = session

    def send(self, msg) -> None:
        from distributed import Queue
        Queue(f"{self.session}-messages").put(msg)

    def stopped(self, key: str) -> bool:
        from distributed import Event
        return Event(f"{self.session}-stop-{key}").is_set()

    def wait_decided(self, key: str, epoch: int, timeout: float) -> bool:
        from distributed import Event
        if not Event(f"{self.session}-go-{key}-{epoch}").wait(timeout):
            return False
        return not self.stopped(key)


# --- backends (the client's view of its workers) ----------------------------------------------
class ThreadBackend:
    """One run at a time in a thread of this process (``--workers 1``)."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lowbit-run")
        self.queue: queue_mod.Queue = queue_mod.Queue()
        self.flags: dict = {}
        self.channel = LocalChannel(self.queue, self.flags)

    def slots(self) -> int:
        return 1

    def submit(self, job: RunJob, priority: int = 0):
        return self.pool.submit(stream_run, job, self.channel)

    def messages(self) -> list:
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue_mod.Empty:
                return out

    def decide(self, key: str, epoch: int | None, go: bool) -> None:
        if not go:
            self.flags[f"stop/{key}"] = True
        if epoch is not None:
            self.flags[f"go/{key}/{epoch}"] = True

    def close(self) -> None:
        self.flags["stop/*"] = True       # a run still going (an interrupted client) stops after its epoch
        self.pool.shutdown(wait=False, cancel_futures=True)


class ProcessBackend(ThreadBackend):
    """``workers`` spawned processes on this machine, each applying ``runtime`` per run."""

    def __init__(self, workers: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        ctx = mp.get_context("spawn")
        self.manager = ctx.Manager()
        self.queue = self.manager.Queue()
        self.flags = self.manager.dict()
        self.channel = LocalChannel(self.queue, self.flags)
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=ctx)

    def slots(self) -> int:
        return self.workers

    def close(self) -> None:
        # Runs still going find their channel gone at their next epoch and end there.
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.manager.shutdown()


class DaskBackend:
    """A Dask cluster: ``client`` (a ``distributed.Client``), else a new client of ``scheduler``
    (an address such as ``tcp://HOST:8786``, or a cluster object)."""

    def __init__(self, client=None, scheduler=None):
        try:
            from distributed import Client, Queue
        except ImportError:
            raise ConfigError("executor 'dask' needs the distributed package: pip install 'lowbit-rbp[dist]'") \
                from None
        self.own = None
        if client is None:
            if scheduler is None:
                raise ConfigError("executor 'dask' needs a scheduler address (--scheduler tcp://HOST:PORT) "
                                  "or a client/cluster")
            try:
                client = self.own = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise ConfigError(f"Dask scheduler {scheduler!r}: cannot connect ({exc}); start one with "
                                  "`dask scheduler` (see README, 'Several machines')") from None
        self.client = client
        self.session = f"lowbit-{uuid.uuid4().hex[:12]}"
        self.channel = DaskChannel(self.session)
        self.queue = Queue(f"{self.session}-messages", client=client)
        self.futures: list = []

    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, job: RunJob, priority: int = 0):
        fut = self.client.submit(stream_run, job, self.channel, key=f"lowbit-run-{job.key}-{self.session}",
                                 pure=False, priority=priority)
        self.futures.append(fut)
        return fut

    def messages(self) -> list:
        return list(self.queue.get(batch=True))

    def decide(self, key: str, epoch: int | None, go: bool) -> None:
        from distributed import Event
        if not go:
            Event(f"{self.session}-stop-{key}", client=self.client).set()
        if epoch is not None:
            Event(f"{self.session}-go-{key}-{epoch}", client=self.client).set()

    def close(self) -> None:
        pending = [f for f in self.futures if not f.done()]
        if pending:
            self.client.cancel(pending)
        if self.own is not None:
            self.own.close()


def make_backend(executor: str, runtime: Runtime, *, client=None, scheduler=None):
    """The backend of ``executor`` (local: a thread for 1 worker, else processes; dask)."""
    if executor == "dask":
        return DaskBackend(client=client, scheduler=scheduler)
    if client is not None or scheduler is not None:
        raise ConfigError("--scheduler is for --executor dask")
    return ThreadBackend() if runtime.workers == 1 else ProcessBackend(runtime.workers)


# --- the client side --------------------------------------------------------------------------
@dataclass
class _Flight:
    job: RunJob
    future: object
    attempt: str | None = None
    claimed: bool = False
    written: int = 0
    refused: str | None = None        # done | busy: another sweep finished or holds it
    pruned: dict | None = None         # why the client stopped it
    decided: set = field(default_factory=set)


class StreamDriver:
    """Submits runs to a backend and writes what comes back into ``store`` (this process is the
    store's only writer for these runs). ``on_epoch(key, record)`` is called for every epoch
    written; at a checkpoint epoch its answer decides: a dict (why) stops the run as pruned,
    None lets it go on."""

    def __init__(self, store: Store, backend, *, code_version: str = "", on_epoch=None):
        from .store import new_owner
        self.store = store
        self.backend = backend
        self.code_version = code_version
        self.on_epoch = on_epoch
        self.owner = new_owner()
        self.flights: dict[str, _Flight] = {}

    @property
    def in_flight(self) -> int:
        return len(self.flights)

    def submit(self, job: RunJob, priority: int = 0) -> None:
        self.flights[job.key] = _Flight(job, self.backend.submit(job, priority))

    # --- messages -----------------------------------------------------------------------------
    def _claim(self, f: _Flight, attempt: str, machine: dict) -> None:
        cfg = from_stored(f.job.config)
        state = self.store.claim(cfg, self.owner, machine=machine, code_version=self.code_version, tags=f.job.tags)
        f.attempt, f.written = attempt, 0
        f.claimed = state == "claimed"
        if not f.claimed:
            f.refused = state
            self.backend.decide(f.job.key, None, go=False)

    def _write_epoch(self, f: _Flight, rec: dict):
        from ..learning.diagnostics import LayerDiagnostics
        from ..learning.trainer import EpochRecord
        rec = dict(rec)
        diagnostics = rec.pop("diagnostics", [])
        er = EpochRecord(**rec)
        self.store.record_epoch(f.job.key, self.owner, er)
        if diagnostics:
            self.store.record_diagnostics(f.job.key, self.owner, er.epoch,
                                          [LayerDiagnostics.from_dict(d) for d in diagnostics])
        f.written += 1
        return self.on_epoch(f.job.key, er) if self.on_epoch is not None else None

    def _lost(self, f: _Flight) -> None:
        """Another sweep took the run over (it judged this client dead): leave it to that sweep."""
        f.refused = "busy"
        self.backend.decide(f.job.key, None, go=False)

    def _handle(self, msg) -> None:
        kind, key, attempt, payload = msg
        f = self.flights.get(key)
        if f is None or f.refused:
            return        # a message of a run already settled (or of an earlier session)
        try:
            self._handle_run(f, kind, attempt, payload)
        except StoreError:
            self._lost(f)

    def _handle_run(self, f: _Flight, kind: str, attempt: str, payload) -> None:
        key = f.job.key
        if kind == "start":
            if attempt != f.attempt:      # the first attempt, or a retry elsewhere: restart the run
                self._claim(f, attempt, payload)
            return
        if attempt != f.attempt or not f.claimed or payload["epoch"] != f.written + 1:
            return        # an old attempt's epoch (a lost worker that still talks), or a duplicate
        verdict = self._write_epoch(f, payload)
        epoch = payload["epoch"]
        if epoch in f.job.checkpoints and epoch not in f.decided:
            f.decided.add(epoch)
            if verdict is not None and f.pruned is None:
                f.pruned = verdict
            self.backend.decide(key, epoch, go=f.pruned is None)

    def _settle(self, f: _Flight) -> tuple[str, str]:
        """The final status of a run whose worker returned (or was lost for good)."""
        try:
            out = f.future.result()
        except Exception as exc:  # the task itself was lost (e.g. Dask's KilledWorker): the run failed
            out = Outcome(f.job.key, f.attempt or "lost", "failed", [], {}, f"{type(exc).__name__}: {exc}")
        try:
            return self._settle_run(f, out)
        except StoreError:
            return f.job.key, "busy"

    def _settle_run(self, f: _Flight, out: Outcome) -> tuple[str, str]:
        key = f.job.key
        if f.refused:
            return key, f.refused
        if out.attempt != f.attempt or not f.claimed:     # its start or epochs never arrived
            self._claim(f, out.attempt, out.machine)
            if f.refused:
                return key, f.refused
        for rec in out.epochs[f.written:]:
            self._write_epoch(f, rec)
        if out.status == "stopped" and f.pruned is not None:
            self.store.record_pruned(key, self.owner, f.pruned)
            return key, "pruned"
        status = "failed" if out.status == "stopped" else out.status
        error = out.error if out.status != "stopped" else "stopped by the worker: no decision from the client"
        self.store.finish(key, self.owner, status, error=error)
        return key, status

    def poll(self, timeout: float = 0.2) -> list[tuple[str, str]]:
        """Handle what has arrived; return ``(config_hash, outcome)`` of the runs settled since the
        last call (outcome: finished | diverged | failed | pruned | done | busy)."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.backend.messages():
                self._handle(msg)
            finished = [f for f in self.flights.values() if f.future.done()]
            if finished:
                for msg in self.backend.messages():    # what the finished ones sent last
                    self._handle(msg)
                out = []
                for f in finished:
                    out.append(self._settle(f))
                    del self.flights[f.job.key]
                return out
            if time.monotonic() >= deadline:
                return []
            time.sleep(POLL_S)


def run_streamed(jobs: list[RunJob], backend, store_path, *, code_version: str = "", note=None) -> None:
    """Train ``jobs`` on ``backend`` (all submitted at once, in order of priority), writing the
    store at ``store_path`` here; ``note((config_hash, outcome))`` after each run."""
    with Store(store_path) as store:
        driver = StreamDriver(store, backend, code_version=code_version)
        try:
            for i, job in enumerate(jobs):
                driver.submit(job, priority=len(jobs) - i)
            while driver.in_flight:
                for result in driver.poll(timeout=1.0):
                    if note is not None:
                        note(result)
        finally:
            backend.close()
