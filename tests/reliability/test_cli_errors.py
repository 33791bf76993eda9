"""Every expected error of the command line: one line naming the path or value, exit status 2, no traceback."""
import math
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lowbit_rbp.cli import main

SWEEP = str(Path(__file__).resolve().parents[2] / "lowbit_rbp" / "sweeps" / "mnist_table1.toml")


def one_error(capsys, argv) -> str:
    """Run the command line; it must exit with 2 and print exactly one error line: that line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    errors = [x for x in captured.err.splitlines() if "error: " in x]
    assert len(errors) == 1, captured.err
    return errors[0]


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A regular file that commands are asked to write under."""
    f = tmp_path / "afile"
    f.write_text("a regular file\n")
    return f


@pytest.fixture
def store(tmp_path) -> str:
    from lowbit_rbp.results.store import Store
    Store(tmp_path / "s.db").close()
    return str(tmp_path / "s.db")


@pytest.mark.fault("os_errors")
@pytest.mark.parametrize("command", ["train", "report", "theory", "cost", "budget", "sweep"])
def test_output_path_under_a_regular_file(capsys, a_file, store, command):
    under = str(a_file / "sub" / "x")
    argv = {"train": ["train", "--epochs", "1", "--out", under + ".jsonl"],
            "report": ["report", "--store", store, "--out", under, "--no-plots"],
            "theory": ["theory", "field", "--out", under + ".png"],
            "cost": ["cost", "--out", under + ".md"],
            "budget": ["budget", "config", "--out", under + ".md"],
            "sweep": ["sweep", SWEEP, "--store", under + ".db"]}[command]
    line = one_error(capsys, argv)
    assert str(a_file) in line and ("is a file, not a folder" in line or "Not a directory" in line), line


@pytest.mark.fault("os_errors")
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_disk_full_names_the_output(capsys):
    assert one_error(capsys, ["cost", "--out", "/dev/full"]) == \
        "error: No space left on device (writing '/dev/full')"


@pytest.mark.fault("os_errors")
def test_permission_denied_names_the_path(capsys, tmp_path, monkeypatch):
    """Tests may run as root, which no file mode stops: the folder creation is made to fail as it
    does for a user without write permission."""
    denied = tmp_path / "locked"

    def mkdir(self, *a, **kw):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert one_error(capsys, ["train", "--epochs", "1", "--out", str(denied / "r.jsonl")]) == \
        f"error: {str(denied)!r}: Permission denied"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.fault("dask_unreachable")
def test_dask_scheduler_on_a_closed_port(capsys, tmp_path):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        line = one_error(capsys, ["sweep", SWEEP, "--store", str(tmp_path / "d.db"), "--executor", "dask",
                                  "--scheduler", address, "--quiet"])
    assert line.startswith(f"error: Dask scheduler {address!r}: cannot connect (Timed out trying to connect to {address}")
    assert "dask scheduler" in line


@pytest.mark.fault("dask_unreachable")
@pytest.mark.parametrize("address", ["foo", "tcp://127.0.0.1:99999", "tcp://:8786"])
def test_malformed_scheduler_address(capsys, tmp_path, address):
    assert one_error(capsys, ["sweep", SWEEP, "--store", str(tmp_path / "d.db"), "--executor", "dask",
                              "--scheduler", address]).startswith(f"error: --scheduler: got {address!r}")


@pytest.mark.fault("sqlite_errors")
def test_damaged_store(capsys, tmp_path):
    db = tmp_path / "damaged.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84 + b"\xff" * 2000)
    for argv in (["report", "--store", str(db), "--out", str(tmp_path / "r")], ["sweep", SWEEP, "--store", str(db)]):
        line = one_error(capsys, argv)
        assert str(db) in line and "not a usable SQLite store" in line, line


@pytest.mark.fault("sqlite_errors")
def test_sqlite_error_under_a_command(capsys, monkeypatch, tmp_path):
    from lowbit_rbp.results import sweep

    def locked_store(*a, **kw):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(sweep, "run_sweep", locked_store)
    assert one_error(capsys, ["sweep", SWEEP, "--store", str(tmp_path / "s.db")]) == \
        "error: SQLite: database is locked"


def _cuda_available() -> bool:
    from numba import cuda
    return cuda.is_available()


BAD_VALUES = [
    (["train", "--lr", "nan"], "error: train.lr: got nan; allowed: a finite number > 0"),
    (["train", "--set", "train.lr_decay=inf"], "error: train.lr_decay: got inf; allowed: a finite number >= 0"),
    (["train", "--set", "model.hidden=[10.5]"], "error: model.hidden: got [10.5]"),
    (["reproduce", "foundation", "--seeds", "0,x", "--report-only"], "error: --seeds: got '0,x'"),
    (["sweep", SWEEP, "--threads", "-1"], "error: threads: got -1"),
    (["sweep", SWEEP, "--workers", "0"], "error: workers: got 0; allowed: an integer >= 1"),
    (["theory", "field", "--grid", "100000"], "lowbit-rbp theory: error: --grid: got 100000; allowed: at most 400"),
    (["theory", "sgd", "--runs", "10000000000"], "lowbit-rbp theory: error: --runs: got 10000000000"),
    (["theory", "sgd", "--steps", "100000000000"], "lowbit-rbp theory: error: --steps: got 100000000000"),
    (["theory", "check", "--L", "100000"], "lowbit-rbp theory: error: --L: got 100000"),
    (["theory", "trajectories", "--t-end", "1e300"], "lowbit-rbp theory: error: --t-end: got 1e+300"),
]


@pytest.mark.fault("bad_values")
@pytest.mark.parametrize("argv, start", BAD_VALUES, ids=[" ".join(a[:3]) for a, _ in BAD_VALUES])
def test_bad_values(capsys, tmp_path, monkeypatch, argv, start):
    monkeypatch.chdir(tmp_path)     # nothing may be written, and surely not into the checkout
    assert one_error(capsys, argv).startswith(start)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.fault("bad_values")
def test_cuda_backend_without_a_gpu(capsys):
    if _cuda_available():
        pytest.skip("this machine has a CUDA GPU")
    assert one_error(capsys, ["train", "--backend", "cuda", "--epochs", "1"]).startswith(
        "error: backend 'cuda': no CUDA GPU is available on this machine")


@pytest.mark.fault("bad_values")
def test_huge_theory_argument_in_a_real_process(tmp_path):
    """The console script's exit status and output, not only main()'s return value."""
    p = subprocess.run([sys.executable, "-m", "lowbit_rbp", "theory", "field", "--grid", "100000",
                        "--out", str(tmp_path / "f.png")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [
        "lowbit-rbp theory: error: --grid: got 100000; allowed: at most 400 (arrows per axis: 160,000 arrows, more "
        "than a figure can show)"]
    assert math.isclose(100000 ** 2 * 8 / 2 ** 30, 74.5, abs_tol=0.05)   # what it would have allocated per array
