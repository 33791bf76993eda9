"""The command line: clear errors, exit codes, and the demo path through the results store."""
import sqlite3

from lowbit_rbp.cli import main


def test_unknown_algorithm_is_one_clear_line(capsys):
    assert main(["train", "--algorithm", "foo", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: channel.algorithm: got 'foo'; allowed: bp, rbp, srbp, sbp, top, arbp, asrbp"


def test_bad_feedback_spec_and_missing_data(capsys, tmp_path, monkeypatch):
    assert main(["train", "--feedback", "sparse:k=1"]) == 2
    assert "unknown parameter 'k'" in capsys.readouterr().err
    monkeypatch.setenv("LOWBIT_RBP_DATA", str(tmp_path))
    assert main(["train", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "missing file" in err and "lowbit-rbp data fetch mnist" in err


def test_demo_trains_into_the_store_and_resumes(mnist, tmp_path, capsys):
    store = tmp_path / "demo.db"
    args = ["demo", "--epochs", "1", "--train-subset", "1000", "--workers", "1", "--store", str(store)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "| BP |" in first and "| SRBP |" in first
    rows = sqlite3.connect(store).execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
    assert rows == [("finished", 3)]
    assert main(args) == 0                      # a rerun trains nothing and prints the same table
    assert capsys.readouterr().out.split("\n")[1:] == first.split("\n")[1:]
