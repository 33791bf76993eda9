"""Training one run into memory or into a JSON-lines run file (``lowbit-rbp train --out``).

The run file starts with the run's header (``RunRecord.header``: config, its hash, machine) and
holds one ``EpochRecord`` per line as epochs finish, beside a checkpoint (``<out>.ckpt``), so a
killed run resumes from its last finished epoch.

* The file is locked (``fcntl.flock``) while a process writes it: a second ``train`` on the same
  ``--out`` is refused with one line instead of writing the same epochs twice.
* Recovery needs no human: a torn last line (killed while writing it) is dropped, and so is any
  record the checkpoint does not reach (killed between the record and its checkpoint); a file
  with records but no usable checkpoint (killed before the first one) restarts from scratch.
  Training is deterministic, so the recomputed epochs are the ones that were lost, bit for bit.
* A run resumed from its checkpoint must run on the thread count it started with (the header's
  ``machine.torch_threads``): results depend on it in the last digits, and a run never mixes two.
* With learning diagnostics on (``Runtime.diagnostics``), each epoch's line is followed by one
  ``{"type": "diagnostics", "epoch", "layer", <metric>: value}`` line per weight layer
  (``read_diagnostics``); they belong to that epoch's record and are kept or dropped with it.
"""
from __future__ import annotations

import fcntl
import json
import os
import pickle
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.config import RunConfig
from ..core.runtime import Runtime
from ..errors import ConfigError, LowbitError
from ..learning.diagnostics import LayerDiagnostics
from ..learning.trainer import EpochRecord, Trainer, machine_info
from .records import RunRecord

HEADER_START = b'{"type": "header"'   # how every header line begins (json.dumps of RunRecord.header)


class RunFileError(LowbitError):
    """A run file cannot be written as asked (another process writes it, it is not a run file,
    it was trained on another thread count)."""


def _status(records: list[EpochRecord]) -> str:
    return "diverged" if records and records[-1].status == "diverged" else "finished"


def train(cfg: RunConfig, data=None, *, runtime: Runtime | None = None, progress: bool = False) -> RunRecord:
    """Train in memory (no files); returns the run with every epoch's record."""
    if data is None:
        from ..data import load_dataset
        data = load_dataset(cfg.model.dataset)
    trainer = Trainer(cfg, data, runtime)
    records = list(trainer.run(progress=progress))
    return RunRecord(cfg, _status(records), records, machine=machine_info())


@contextmanager
def locked(out: Path):
    """``out`` opened for reading and writing (created if missing) under an exclusive lock held
    until the block ends; ``RunFileError`` at once if another process holds it."""
    if out.exists() and not out.is_file():
        raise RunFileError(f"results file {str(out)!r} is not a regular file; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    fh = open(out, "a+b")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFileError(f"results file {str(out)!r} is being written by another process (it holds the "
                               "file's lock); wait for it to end or choose another --out") from None
        yield fh
    finally:
        fh.close()


def read_run_file(raw: bytes, out: Path) -> tuple[dict | None, list[EpochRecord], list[int]]:
    """(header, records, ends) of a run file's bytes: ``ends[k]`` is the byte offset after the
    header (k = 0) and after the k-th record. A torn or unreadable line ends the readable part: it
    and what follows are dropped. No header (an empty file, or one torn while its header was
    written) gives (None, [], [])."""
    header, records, ends = None, [], []
    end = 0
    for line in raw.split(b"\n")[:-1]:     # the part after the last newline is torn: never complete
        end += len(line) + 1
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            break
        if header is None:
            if not isinstance(obj, dict) or obj.get("type") != "header" or "config_hash" not in obj:
                raise RunFileError(f"{str(out)!r} is not a run file of lowbit-rbp train (its first line is not a "
                                   "run header); choose another --out")
            header = obj
        elif obj.get("type") == "epoch":
            records.append(EpochRecord.from_dict(obj))
        elif obj.get("type") == "diagnostics" and records:
            ends[-1] = end          # part of the record before it
            continue
        else:
            break
        ends.append(end)
    if header is None and raw and not raw.startswith(HEADER_START[:len(raw)]):
        raise RunFileError(f"{str(out)!r} is not a run file of lowbit-rbp train; choose another --out")
    return header, records, ends


def _restore(trainer: Trainer, ckpt: Path, records: list[EpochRecord]) -> int:
    """Load the checkpoint into ``trainer``; how many records it reaches (0: none usable, start over)."""
    if not records or not ckpt.exists():
        return 0
    try:
        state = torch.load(ckpt, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError):   # a damaged checkpoint: start over
        return 0
    if not 0 < state["epoch"] <= len(records):                 # ahead of the records it belongs to
        return 0
    trainer.load_state(state)
    return trainer.epoch


def _check_threads(header: dict, out: Path) -> None:
    started = header.get("machine", {}).get("torch_threads")
    now = torch.get_num_threads()
    if started is not None and started != now:
        raise RunFileError(f"{str(out)!r} was trained on {started} thread(s) and would resume on {now}: results "
                           f"depend on the thread count in the last digits; resume it with --threads {started}")


def run_training(cfg: RunConfig, out: str | Path, data=None, *, runtime: Runtime | None = None, progress: bool = True,
                 checkpoint: bool = True) -> RunRecord:
    """Train, appending one JSON line per finished epoch to ``out``; resume from its checkpoint.

    The file starts with a header line holding the full config and its hash. A rerun with the
    same config continues after the last finished epoch (restored exactly from the checkpoint);
    a file written for another config is refused rather than mixed (module docstring: locking and
    recovery).
    """
    out = Path(out)
    ckpt = out.with_suffix(out.suffix + ".ckpt")
    with locked(out) as fh:
        fh.seek(0)
        header, records, ends = read_run_file(fh.read(), out)
        if header is not None and header.get("config_hash") != cfg.config_hash():
            raise ConfigError(f"results file {str(out)!r} holds a run of another config "
                              f"(hash {header.get('config_hash')}, this config {cfg.config_hash()}); "
                              "choose another --out or delete it")
        if records and (records[-1].status == "diverged" or len(records) >= cfg.train.epochs):
            ckpt.unlink(missing_ok=True)    # killed between the last record and the clean-up
            return RunRecord.from_header(header)._with(records, _status(records))
        if data is None:
            from ..data import load_dataset
            data = load_dataset(cfg.model.dataset)
        trainer = Trainer(cfg, data, runtime)
        kept = _restore(trainer, ckpt, records)
        if kept:
            _check_threads(header, out)
            records = records[:kept]
            fh.truncate(ends[kept])
        else:                       # a new file, or nothing to resume from: start over
            records = []
            ckpt.unlink(missing_ok=True)
            header = RunRecord(cfg, machine=machine_info(), started=time.strftime("%Y-%m-%dT%H:%M:%S")).header()
            fh.truncate(0)
            _append(fh, header)

        def save(rec: EpochRecord, tr: Trainer):
            # The record first, then the checkpoint: a kill between the two leaves a record ahead of
            # the checkpoint, which the resume drops and recomputes (deterministically).
            diagnostics = tr.diagnostics.last if tr.diagnostics is not None else []
            _append(fh, {"type": "epoch", **asdict(rec)}, *(d.to_dict() for d in diagnostics))
            if checkpoint and rec.status == "ok":
                tmp = ckpt.with_suffix(".tmp")
                torch.save(tr.state(), tmp)
                os.replace(tmp, ckpt)

        for rec in trainer.run(on_epoch=save, progress=progress):
            records.append(rec)
        ckpt.unlink(missing_ok=True)
    return RunRecord.from_header(header)._with(records, _status(records))


def _append(fh, *objs: dict) -> None:
    """JSON lines, one per object, on disk before the next step (``a+`` mode: always at the end)."""
    fh.write("".join(json.dumps(obj) + "\n" for obj in objs).encode())
    fh.flush()
    os.fsync(fh.fileno())


def read_diagnostics(path: str | Path) -> list[LayerDiagnostics]:
    """The learning diagnostics of a ``train --out`` run file (empty when it was run without them)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError:       # a torn last line (a killed run): what came before stands
            break
        if d.get("type") == "diagnostics":
            rows.append(LayerDiagnostics.from_dict(d))
    return rows
