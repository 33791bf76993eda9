"""Training one run into memory or into a JSON-lines run file (``lowbit-rbp train --out``).

The run file starts with the run's header (``RunRecord.header``: config, its hash, machine) and
holds one ``EpochRecord`` per line as epochs finish, beside a checkpoint, so a killed run resumes
from its last finished epoch. With learning diagnostics on (``Runtime.diagnostics``), each epoch's
line is followed by one ``{"type": "diagnostics", "epoch", "layer", <metric>: value}`` line per
weight layer (``read_diagnostics``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.config import RunConfig
from ..core.runtime import Runtime
from ..errors import ConfigError
from ..learning.diagnostics import LayerDiagnostics
from ..learning.trainer import EpochRecord, Trainer, machine_info
from .records import RunRecord


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


def run_training(cfg: RunConfig, out: str | Path, data=None, *, runtime: Runtime | None = None, progress: bool = True,
                 checkpoint: bool = True) -> RunRecord:
    """Train, appending one JSON line per finished epoch to ``out``; resume from its checkpoint.

    The file starts with a header line holding the full config and its hash. A rerun with the
    same config continues after the last finished epoch (restored exactly from the checkpoint);
    a file written for another config is refused rather than mixed.
    """
    out = Path(out)
    ckpt = out.with_suffix(out.suffix + ".ckpt")
    if data is None:
        from ..data import load_dataset
        data = load_dataset(cfg.model.dataset)
    trainer = Trainer(cfg, data, runtime)
    records: list[EpochRecord] = []
    if out.exists() and out.stat().st_size:
        lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        header = lines[0]
        if header.get("config_hash") != cfg.config_hash():
            raise ConfigError(f"results file {str(out)!r} holds a run of another config "
                              f"(hash {header.get('config_hash')}, this config {cfg.config_hash()}); "
                              "choose another --out or delete it")
        records = [EpochRecord.from_dict(rec) for rec in lines[1:] if rec.get("type", "epoch") == "epoch"]
        if records and (records[-1].status == "diverged" or len(records) >= cfg.train.epochs):
            return RunRecord.from_header(header)._with(records, _status(records))
        if records:
            if not ckpt.exists():
                raise ConfigError(f"{str(out)!r} has {len(records)} epochs but no checkpoint {str(ckpt)!r} to resume from")
            trainer.load_state(torch.load(ckpt, weights_only=False))
            records = records[: trainer.epoch]
            kept = [d for d in lines[1:] if d.get("type") == "diagnostics" and d["epoch"] <= trainer.epoch]
            _rewrite(out, lines[0], records, kept)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        header = RunRecord(cfg, machine=machine_info(), started=time.strftime("%Y-%m-%dT%H:%M:%S")).header()
        out.write_text(json.dumps(header) + "\n")

    def save(rec: EpochRecord, tr: Trainer):
        # The record first, then the checkpoint: a kill between the two leaves a record ahead of
        # the checkpoint, which the resume drops and recomputes (deterministically).
        diagnostics = tr.diagnostics.last if tr.diagnostics is not None else []
        with out.open("a") as fh:
            fh.write(json.dumps({"type": "epoch", **asdict(rec)}) + "\n")
            fh.writelines(json.dumps(d.to_dict()) + "\n" for d in diagnostics)
            fh.flush()
            os.fsync(fh.fileno())
        if checkpoint and rec.status == "ok":
            tmp = ckpt.with_suffix(".tmp")
            torch.save(tr.state(), tmp)
            os.replace(tmp, ckpt)

    for rec in trainer.run(on_epoch=save, progress=progress):
        records.append(rec)
    if ckpt.exists() and (records[-1].status == "diverged" or len(records) >= cfg.train.epochs):
        ckpt.unlink()
    return RunRecord.from_header(header)._with(records, _status(records))


def _rewrite(out: Path, header: dict, records: list[EpochRecord], diagnostics: list[dict] = ()) -> None:
    """The run file with ``records`` (and the diagnostics lines of those epochs, each after its epoch)."""
    by_epoch: dict = {}
    for d in diagnostics:
        by_epoch.setdefault(d["epoch"], []).append(d)
    lines = [header]
    for r in records:
        lines += [{"type": "epoch", **asdict(r)}] + by_epoch.get(r.epoch, [])
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(x) + "\n" for x in lines))
    os.replace(tmp, out)


def read_diagnostics(path: str | Path) -> list[LayerDiagnostics]:
    """The learning diagnostics of a ``train --out`` run file (empty when it was run without them)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            if d.get("type") == "diagnostics":
                rows.append(LayerDiagnostics.from_dict(d))
    return rows
