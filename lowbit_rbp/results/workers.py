"""The local executor of a sweep: worker processes that cannot outlive the sweep that started them.

Each worker is a spawned process that trains the jobs it is sent one at a time (``fn(*args)``,
``lowbit_rbp.results.sweep.run_one``) and answers each with its ``(config_hash, outcome)``.

* A worker dies with its parent, whatever killed the parent (``kill -9`` included): on Linux the
  kernel kills it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and everywhere a watchdog thread in the
  worker ends it within ``WATCHDOG_SECONDS`` once its parent is gone (its parent pid changed). A
  run left ``running`` by a killed sweep is retrained by the next claim (its owner's pid is dead).
* SIGTERM to the sweep, like Ctrl-C, stops it in order: the workers are terminated, the runs they
  held are marked ``failed`` ("interrupted"), and the sweep exits (status 143 for SIGTERM).
* A worker that dies on its own (killed, out of memory) is seen at once through its process
  sentinel: the run it held is marked ``failed`` with the cause, a new worker takes its place and
  the sweep goes on; the next sweep retrains the run. Workers ignore SIGINT: the sweep stops them.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import wait

WATCHDOG_SECONDS = 1.0
PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


class Terminated(SystemExit):
    """The sweep process got SIGTERM (exit status 128 + 15)."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


# --- in the worker ----------------------------------------------------------------------------
def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (its parent) ends: the kernel's parent-death signal on
    Linux, and a watchdog thread that polls the parent pid (every platform, and the case where the
    parent died before the signal was armed)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _worker_main(conn, fn, parent_pid: int) -> None:
    from tqdm.auto import tqdm
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the whole group: the sweep stops us
    # tqdm's default lock is a multiprocessing semaphore, which a killed worker leaks (a warning of
    # the resource tracker); a worker draws no progress bars, so a thread lock does.
    tqdm.set_lock(threading.RLock())
    while True:
        try:
            job = conn.recv()
        except EOFError:      # the sweep closed its end
            return
        if job is None:
            return
        conn.send(fn(*job))


# --- in the sweep -----------------------------------------------------------------------------
class _Worker:
    def __init__(self, ctx, fn):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, fn, os.getpid()), daemon=True,
                                name="lowbit-rbp-sweep-worker")
        self.proc.start()
        child.close()
        self.job: tuple | None = None   # (config_hash, args) it is training

    def give(self, queue: deque) -> bool:
        """Send the next queued job; False if this worker is gone (the job stays queued)."""
        if not queue:
            return True
        job = queue.popleft()
        try:
            self.conn.send(job[1])
        except OSError:   # BrokenPipeError: it died between two jobs
            queue.appendleft(job)
            return False
        self.job = job
        return True

    def result(self):
        """Its answer if one is waiting, else None (also when it died without answering)."""
        try:
            return self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None

    def cause(self) -> str:
        code = self.proc.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}, signal {-code}"
        return f"exit code {code}"


def _fail(store_path: str, worker: _Worker, error: str) -> str:
    """Mark the run of a dead worker failed; its outcome for the sweep's summary (a run it had
    already finished keeps its status)."""
    from .store import Store
    h = worker.job[0]
    with Store(store_path) as store:
        if h in store.fail_runs_of(worker.proc.pid, error):
            return "failed"
        run = store.run(h)
    return run.status if run is not None and run.done else "failed"


def _stop(pool: list[_Worker], store_path: str, error: str) -> None:
    """Terminate every worker and mark the runs they held failed with ``error``."""
    for w in pool:
        if w.proc.is_alive():
            w.proc.terminate()
    for w in pool:
        w.proc.join()
        if w.job is not None:
            _fail(store_path, w, error)
        w.conn.close()


def _quit(pool: list[_Worker]) -> None:
    """Let idle workers exit (end of the sweep)."""
    for w in pool:
        try:
            w.conn.send(None)
        except OSError:
            pass
    for w in pool:
        w.proc.join(timeout=30)
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join()
        w.conn.close()


def _on_sigterm(signum, frame):
    raise Terminated(signum)


def run_local(jobs: list[tuple[str, tuple]], fn, workers: int, store_path: str, note) -> None:
    """Run ``fn(*args)`` for every ``(config_hash, args)`` in ``jobs`` on ``workers`` processes,
    calling ``note((config_hash, outcome))`` in this process as each finishes (module docstring:
    what happens when a worker or this process dies)."""
    ctx = mp.get_context("spawn")
    queue = deque(jobs)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    pool: list[_Worker] = []
    try:
        while queue and len(pool) < workers:
            w = _Worker(ctx, fn)
            pool.append(w)
            w.give(queue)
        while any(w.job is not None for w in pool):
            busy = [w for w in pool if w.job is not None]
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for w in busy:
                answer = w.result()
                if answer is not None:
                    w.job = None
                    note(answer)
                    if w.give(queue):
                        continue
                elif w.proc.is_alive():
                    continue
                w.proc.join()
                if w.job is not None:
                    note((w.job[0], _fail(store_path, w, f"worker process {w.proc.pid} died ({w.cause()}) "
                                                         "while training this run; the next sweep retrains it")))
                    w.job = None
                pool.remove(w)
                w.conn.close()
                if queue:
                    fresh = _Worker(ctx, fn)
                    pool.append(fresh)
                    fresh.give(queue)
    except BaseException as exc:
        if main_thread:    # a second SIGTERM must not cut the clean-up short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        why = "SIGTERM" if isinstance(exc, Terminated) else type(exc).__name__
        held = sum(w.job is not None for w in pool)
        _stop(pool, store_path, f"interrupted ({why}): the sweep was stopped; the next sweep retrains this run")
        if isinstance(exc, (Terminated, KeyboardInterrupt)):
            print(f"sweep stopped ({why}): {held} run(s) in progress marked failed, {len(queue)} not started; "
                  "rerun the same command to finish", file=sys.stderr)
        raise
    else:
        _quit(pool)
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
