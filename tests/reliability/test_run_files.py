"""Run files of ``train --out`` after faults: kills between a record and its checkpoint, torn lines,
damaged checkpoints, two writers, another thread count."""
import json

import pytest

from lowbit_rbp.cli import main
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.results import runs as runs_mod
from lowbit_rbp.results.runs import RunFileError, locked, run_training

CFG = apply_overrides(RunConfig(), ["model.hidden=[10,8]", "train.epochs=3", "train.batch_size=10",
                                    "channel.algorithm=srbp"])


class Killed(BaseException):
    """Stands for a kill -9 at the point it is raised (nothing after it runs)."""


def _exact(res) -> list[tuple]:
    """Every value of every epoch that must come out bit for bit (not the wall-clock seconds)."""
    return [(e.epoch, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.lr, e.status) for e in res.epochs]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tinydata import TinyData
    return _exact(run_training(CFG, tmp_path_factory.mktemp("ref") / "ref.jsonl", TinyData(), progress=False))


def _killed_at_checkpoint(monkeypatch, out, data, n: int) -> None:
    """Train into ``out`` and die just before writing the ``n``-th checkpoint (its record written)."""
    real_save = runs_mod.torch.save
    calls = {"n": 0}

    def save(obj, path):
        calls["n"] += 1
        if calls["n"] == n:
            raise Killed
        real_save(obj, path)

    monkeypatch.setattr(runs_mod.torch, "save", save)
    with pytest.raises(Killed):
        run_training(CFG, out, data, progress=False)
    monkeypatch.setattr(runs_mod.torch, "save", real_save)


def _lines(out) -> list[dict]:
    return [json.loads(x) for x in out.read_text().splitlines()]


@pytest.mark.fault("runfile_no_ckpt")
def test_killed_before_the_first_checkpoint_restarts_from_scratch(tmp_path, tiny_data, monkeypatch, reference):
    out = tmp_path / "r.jsonl"
    _killed_at_checkpoint(monkeypatch, out, tiny_data, 1)
    assert [x["type"] for x in _lines(out)] == ["header", "epoch"]
    assert not out.with_suffix(".jsonl.ckpt").exists()
    assert _exact(run_training(CFG, out, tiny_data, progress=False)) == reference
    assert [x.get("epoch") for x in _lines(out)] == [None, 1, 2, 3]


@pytest.mark.fault("runfile_torn")
def test_torn_last_line_is_dropped_and_recomputed(tmp_path, tiny_data, monkeypatch, reference):
    out = tmp_path / "r.jsonl"
    _killed_at_checkpoint(monkeypatch, out, tiny_data, 2)          # checkpoint at epoch 1, records 1-2
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"type": "epoch", "epoch": 3, "train_lo')   # killed while writing a line
    assert _exact(run_training(CFG, out, tiny_data, progress=False)) == reference
    assert [x.get("epoch") for x in _lines(out)] == [None, 1, 2, 3]
    assert out.read_bytes().startswith(whole.split(b"\n")[0] + b"\n")   # the header kept as it was


@pytest.mark.fault("runfile_torn")
@pytest.mark.parametrize("damage", ["torn header", "damaged checkpoint", "checkpoint ahead"])
def test_torn_header_or_bad_checkpoint_starts_over(tmp_path, tiny_data, monkeypatch, reference, damage):
    out = tmp_path / "r.jsonl"
    ckpt = out.with_suffix(".jsonl.ckpt")
    _killed_at_checkpoint(monkeypatch, out, tiny_data, 3)          # checkpoints 1-2 written, records 1-3
    if damage == "torn header":
        out.write_bytes(out.read_bytes()[:25])
    elif damage == "damaged checkpoint":
        ckpt.write_bytes(ckpt.read_bytes()[:100])
    else:   # the records behind the checkpoint were lost (a file restored from a backup)
        lines = out.read_text().splitlines(keepends=True)
        out.write_text("".join(lines[:2]))
    assert _exact(run_training(CFG, out, tiny_data, progress=False)) == reference
    assert [x.get("epoch") for x in _lines(out)] == [None, 1, 2, 3] and not ckpt.exists()


@pytest.mark.fault("runfile_two_writers")
def test_second_writer_is_refused(tmp_path, tiny_data, capsys):
    out = tmp_path / "r.jsonl"
    with locked(out):                         # another process writes the file (a separate open file)
        with pytest.raises(RunFileError, match=f"{out}' is being written by another process"):
            run_training(CFG, out, tiny_data, progress=False)
        assert main(["train", "--out", str(out), "--set", "model.hidden=[10,8]", "--epochs", "3",
                     "--set", "train.batch_size=10", "--algorithm", "srbp"]) == 2
        assert out.read_bytes() == b""
    err = capsys.readouterr().err.splitlines()
    assert [x for x in err if x.startswith("error:")] == [
        f"error: results file {str(out)!r} is being written by another process (it holds the file's lock); "
        "wait for it to end or choose another --out"]
    run_training(CFG, out, tiny_data, progress=False)   # the lock went with its holder


@pytest.mark.fault("runfile_two_writers")
def test_a_file_that_is_not_a_run_file_is_left_alone(tmp_path, tiny_data):
    out = tmp_path / "notes.txt"
    for text in (b"my notes\nline 2\n", b"no newline at all"):
        out.write_bytes(text)
        with pytest.raises(RunFileError, match="is not a run file of lowbit-rbp train"):
            run_training(CFG, out, tiny_data, progress=False)
        assert out.read_bytes() == text


@pytest.mark.fault("threads")
def test_resume_on_another_thread_count_is_refused(tmp_path, tiny_data, monkeypatch, reference):
    import torch
    out = tmp_path / "r.jsonl"
    _killed_at_checkpoint(monkeypatch, out, tiny_data, 2)
    lines = out.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    started = torch.get_num_threads() + 1
    header["machine"]["torch_threads"] = started       # as if started with one thread more
    out.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    before = out.read_bytes()
    with pytest.raises(RunFileError, match=f"trained on {started} thread.*resume it with --threads {started}"):
        run_training(CFG, out, tiny_data, progress=False)
    assert out.read_bytes() == before


@pytest.mark.slow
@pytest.mark.fault("runfile_two_writers")
def test_two_train_processes_on_one_file(tmp_path, data_root):
    """The case as a user meets it: a second `lowbit-rbp train` on the file a first one is writing."""
    import os
    import subprocess
    import sys
    import time
    out = tmp_path / "r.jsonl"
    argv = [sys.executable, "-m", "lowbit_rbp", "train", "--epochs", "10", "--set", "train.train_subset=30000",
            "--quiet", "--threads", "1", "--out", str(out)]
    env = {**os.environ, "LOWBIT_RBP_DATA": str(data_root)}
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.time() + 120
        while not (out.exists() and out.read_bytes().endswith(b"\n")) and first.poll() is None and time.time() < end:
            time.sleep(0.05)
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first writer ended before the second started: nothing was tested"
        first_out, first_err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert [x for x in second.stderr.splitlines() if x.startswith("error:")] == [
        f"error: results file {str(out)!r} is being written by another process (it holds the file's lock); "
        "wait for it to end or choose another --out"]
    assert first.returncode == 0, first_err
    assert [x.get("epoch") for x in _lines(out)] == [None, *range(1, 11)]
