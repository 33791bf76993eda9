"""``--store`` pointing at files that are not results stores; the thread counts a store records."""
import sqlite3
import sys
from pathlib import Path

import pytest

from lowbit_rbp.cli import main
from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.commands import thread_note
from lowbit_rbp.results.store import Store, StoreError
from lowbit_rbp.results.sweep import run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sweep"))
import helper  # noqa: E402

SWEEP = str(Path(__file__).resolve().parents[2] / "lowbit_rbp" / "sweeps" / "mnist_table1.toml")


def _foreign_sqlite(path: Path, journal: str) -> bytes:
    """Another program's database, closed (SQLite's default rollback journal, or WAL)."""
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA journal_mode = {journal}")
    con.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                      "INSERT INTO customers(name) VALUES ('Ada'), ('Grace');"
                      "CREATE TABLE runs (x);")         # even a table of the same name
    con.close()
    return path.read_bytes()


def _unchanged(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]   # no -wal, -shm or -journal


@pytest.mark.fault("foreign_store")
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_foreign_sqlite_file_is_refused_unchanged(tmp_path, capsys, journal):
    db = tmp_path / "shop.db"
    before = _foreign_sqlite(db, journal)
    with pytest.raises(StoreError, match=r"another program \(tables: customers, runs\)"):
        Store(db)
    _unchanged(db, before)
    with pytest.raises(StoreError):
        run_sweep(helper.sweep(), db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    _unchanged(db, before)
    for argv in (["sweep", SWEEP, "--store", str(db)], ["report", "--store", str(db), "--out", str(tmp_path / "r")]):
        assert main(argv) == 2
        errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and str(db) in errors[0], errors
        _unchanged(db, before)


@pytest.mark.fault("foreign_store")
@pytest.mark.parametrize("content", [b"plain text, not a database\n" * 40, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_not_an_sqlite_file_or_a_damaged_one_is_refused_unchanged(tmp_path, content):
    db = tmp_path / "x.db"
    db.write_bytes(content)
    with pytest.raises(StoreError, match="is not a usable SQLite store"):
        Store(db)
    _unchanged(db, content)


@pytest.mark.fault("foreign_store")
def test_empty_file_and_new_path_become_stores(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    for path in (tmp_path / "empty.db", tmp_path / "new" / "deeper" / "s.db"):
        with Store(path) as st:
            assert st.schema_version() == 1
        with Store(path) as st:                   # and are then recognised as stores
            assert st.counts() == {}


@pytest.mark.fault("threads")
def test_each_store_run_records_its_threads_and_a_mix_is_announced(tmp_path):
    db = tmp_path / "t.db"
    sw = helper.sweep(grid={}, seeds=[0])
    run_sweep(sw, db, data=helper.DATA_SPEC, progress=False, runtime=Runtime(threads=1))
    with Store(db) as st:
        assert [r.machine["torch_threads"] for r in st.runs()] == [1]
    assert thread_note(db, sw, 1) == ""
    assert thread_note(db, sw, 2).startswith("note: runs of this sweep already done were trained on 1 thread(s) "
                                             "per process, the next ones on 2")
    assert thread_note(db, helper.sweep(grid={}, seeds=[5]), 2) == ""    # other runs: nothing to mix
    assert thread_note(tmp_path / "none.db", sw, 2) == ""
