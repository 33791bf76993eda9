"""The fault classes the reliability suite injects: id -> (the fault, what lowbit-rbp does about it).

Each test of tests/reliability names the class it proves with ``@pytest.mark.fault(ID)``;
``tools/reliability_report.py`` turns this table, the marks and the test outcomes into
reports/reliability.md. Figures come from the constants the code uses.
"""
from lowbit_rbp.learning.trainer import ACC_MARGIN, LOSS_FACTOR
from lowbit_rbp.results.store import HEARTBEAT_SECONDS, RECLAIM_AFTER, STALE_AFTER

FAULTS = {
    "parent_kill9": (
        "The process of a sweep with `--workers 2` is killed with SIGKILL.",
        "Its workers die with it: the kernel kills them (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), and a watchdog thread "
        "in each ends it once its parent pid changes. The runs they held stay `running` under a dead pid; the next "
        "sweep retrains them from scratch and completes the set."),
    "parent_term": (
        "The process of a sweep with `--workers 2` gets SIGTERM (or Ctrl-C).",
        "It stops in order: its workers are terminated, the runs they held are marked `failed` (\"interrupted\"), "
        "one line says so and it exits with status 143. The next sweep retrains those runs."),
    "worker_killed": (
        "One worker process of a sweep is killed (or runs out of memory) while it trains a run.",
        "The sweep sees it at once (the worker's process sentinel): that run is marked `failed` with the signal that "
        "killed it, a new worker takes the worker's place, the other runs go on, and the sweep ends with one line "
        "naming the failed run (exit status 1). A rerun retrains it."),
    "owner_gone": (
        "A run is left `running` by a worker on another host that went away (no pid to check there).",
        f"A worker refreshes its run's heartbeat every {HEARTBEAT_SECONDS:g} s from a thread, also during long "
        f"epochs. A run whose heartbeat is {STALE_AFTER:g} s old is taken over by the next sweep; `lowbit-rbp sweep "
        f"--reclaim` takes it after {RECLAIM_AFTER:g} s. A run whose owner still beats is left to it."),
    "blow_up": (
        "A run blows up without producing NaN (learning rate 1e6: losses of tens of nats at chance accuracy).",
        f"It stops and is recorded `diverged` with its reason (an epoch's loss above {LOSS_FACTOR:g} x ln C nats, C "
        f"classes, while its train and test accuracies stay within {100 * ACC_MARGIN:g}% of chance; or NaN/inf): in "
        "the epoch record, the run record, the store and the run file. Reports count such runs apart and list "
        "each with its reason. Stores written before keep loading."),
    "runfile_no_ckpt": (
        "`train --out` is killed after writing an epoch record but before writing the first checkpoint.",
        "The rerun finds records without a checkpoint and starts over from scratch (no human step); the result "
        "equals an uninterrupted run bit for bit."),
    "runfile_torn": (
        "`train --out` leaves a torn last line, a torn header, or a damaged checkpoint.",
        "The torn line (and any record the checkpoint does not reach) is dropped and recomputed; a torn header or a "
        "damaged checkpoint starts the run over; the result equals an uninterrupted run bit for bit."),
    "runfile_two_writers": (
        "Two `train` processes write the same `--out` file.",
        "The file is locked (`fcntl.flock`) while it is written: the second process is refused with one line "
        "(exit status 2) and writes nothing. A file that is not a run file is refused unchanged."),
    "threads": (
        "A run is resumed on another thread count (results depend on it in the last digits).",
        "A run file resumes only on the thread count recorded in its header (one line names the `--threads` to "
        "use); a store run is always trained whole in one process, its thread count recorded with it, and a sweep "
        "whose done runs used another count says so."),
    "foreign_store": (
        "`--store` points at a file that is not a results store (another program's SQLite database, or not SQLite).",
        "It is inspected read-only and refused with one line before anything is written: the file stays the same "
        "byte for byte and no journal files appear. An empty file or a new path becomes a store."),
    "os_errors": (
        "An output path lies under a regular file; permission is denied; the disk is full.",
        "One line naming the path, exit status 2 (`report`, `train`, `theory`, `cost`, `budget`, `sweep`), no "
        "traceback."),
    "dask_unreachable": (
        "The Dask scheduler address is malformed, or nothing listens on its port.",
        "One line naming the address, exit status 2."),
    "sqlite_errors": (
        "The store is a damaged SQLite file, or SQLite fails under a command.",
        "One line naming the store (or SQLite's message), exit status 2."),
    "bad_values": (
        "Values no run can use: non-finite learning rate or decay, a fractional hidden size, a malformed seed "
        "list, `--threads -1`, `--backend cuda` without a GPU, theory sizes that would allocate tens of GiB.",
        "One line naming the value and what is allowed, exit status 2, before any work starts."),
    "broad_except": (
        "An unexpected exception swallowed by a broad `except` (hiding bugs, Ctrl-C or exit).",
        "No `except Exception`/`BaseException`/bare `except` in the package except where it re-raises, and the one "
        "place a run's failure is recorded (`results/sweep.py` `run_one`, which lets Ctrl-C and exit through)."),
}
