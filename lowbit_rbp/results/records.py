"""The results of runs as typed records: what the trainer, a ``train --out`` file, the store and
the reports all exchange.

``EpochRecord``: one finished epoch. ``RunRecord``: one run (its config, status, epochs and where
and how it was trained), whether it lives in the SQLite store or a JSON-lines run file.
``Group``: the runs of one variant over seeds (everything but the seed equal), as the reports
tabulate them.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field, fields, replace

from ..core.config import RunConfig, from_stored
from ..learning.trainer import EpochRecord

DONE = ("finished", "diverged")
EPOCH_FIELDS = tuple(f.name for f in fields(EpochRecord))


@dataclass
class RunRecord:
    """One run. ``status``: pending | running | finished | diverged | failed. ``cost``: its cost
    per training example (``lowbit_rbp.cost.per_example.COST_KEYS``), attached by a report."""

    config: RunConfig
    status: str = "pending"
    epochs: list[EpochRecord] = field(default_factory=list)
    tags: dict = field(default_factory=dict)
    label: str = ""
    machine: dict = field(default_factory=dict)
    code_version: str = ""
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    cost: dict | None = None

    def __post_init__(self):
        if not self.label:
            self.label = self.config.label()

    @property
    def config_hash(self) -> str:
        return self.config.config_hash()

    # --- header of a JSON-lines run file (``train --out``) -------------------------------------
    def header(self) -> dict:
        return {"type": "header", "config_hash": self.config_hash, "label": self.label,
                "config": self.config.to_dict(), "machine": self.machine, "code_version": self.code_version,
                "started": self.started}

    @classmethod
    def from_header(cls, d: dict) -> "RunRecord":
        return cls(from_stored(d["config"]), label=d.get("label", ""), machine=d.get("machine", {}),
                   code_version=d.get("code_version", ""), started=d.get("started"))

    def _with(self, epochs: list[EpochRecord], status: str) -> "RunRecord":
        return replace(self, epochs=list(epochs), status=status)

    # --- what the reports read ---------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def final(self) -> EpochRecord | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def diverged_reason(self) -> str:
        """Why a diverged run diverged: its last epoch's reason (``lowbit_rbp.learning.trainer``: the
        rule); runs recorded before reasons were kept diverged on NaN/inf, the one rule then."""
        if self.status != "diverged":
            return ""
        return (self.final.reason if self.final else "") or "non-finite loss or weights (NaN/inf)"

    @property
    def test_acc(self) -> float | None:
        return self.final.test_acc if self.final else None

    @property
    def train_acc(self) -> float | None:
        return self.final.train_acc if self.final else None

    @property
    def seconds(self) -> float:
        return sum(e.seconds or 0.0 for e in self.epochs)

    @property
    def curve(self) -> list[tuple[int, float]]:
        return [(e.epoch, e.test_acc) for e in self.epochs]

    @property
    def row(self) -> str:
        return self.tags.get("row", "")

    @property
    def sweep(self) -> str:
        return self.tags.get("sweep", "")

    @property
    def seed(self) -> int:
        return self.config.train.seed

    @property
    def algorithm(self) -> str:
        return self.config.channel.algorithm

    @property
    def epochs_planned(self) -> int:
        return self.config.train.epochs

    @property
    def epochs_done(self) -> int:
        return len(self.epochs)

    # The axes a sweep varies (reports and plots).
    @property
    def fprime(self) -> bool:
        return self.config.channel.fprime

    @property
    def feedback(self) -> str:
        return self.config.channel.feedback.spec

    @property
    def error_bits(self) -> int:
        return self.config.formats.error.bits

    @property
    def signal_bits(self) -> int:
        return self.config.formats.signal.bits

    @property
    def update_bits(self) -> int:
        return self.config.formats.update.bits

    @property
    def sparsity_n(self) -> int | None:
        fb = self.config.channel.feedback
        return fb.n if fb.kind == "sparse" else None

    @property
    def rank(self) -> int | None:
        fb = self.config.channel.feedback
        return fb.r if fb.kind == "lowrank" else None

    @property
    def dropout(self) -> float:
        return self.config.channel.dropout

    def variant_key(self) -> str:
        """What identifies the run's variant: its config without the seed and the display name."""
        d = self.config.to_dict()
        d.pop("name")
        d["train"].pop("seed")
        return json.dumps(d, sort_keys=True)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        d["config_hash"] = self.config_hash
        return d


@dataclass
class Group:
    """The runs of one variant over seeds. ``x``: its value along a report axis; ``shown``: table
    cells that differ from the runs' own values (a reference row's axis label)."""

    runs: list[RunRecord]
    label: str
    x: float | None = None
    shown: dict = field(default_factory=dict)

    @property
    def first(self) -> RunRecord:
        return self.runs[0]

    @property
    def config(self) -> RunConfig:
        return self.first.config

    @property
    def row(self) -> str:
        return self.first.row

    @property
    def algorithm(self) -> str:
        return self.first.algorithm

    @property
    def cost(self) -> dict | None:
        return self.first.cost

    @property
    def finished(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status == "finished" and r.test_acc is not None]

    @property
    def accuracies(self) -> list[float]:
        """Final test accuracy % of every finished run, in run order."""
        return [100.0 * r.test_acc for r in self.finished]

    @property
    def mean(self) -> float:
        acc = self.accuracies
        return statistics.fmean(acc) if acc else math.nan

    @property
    def sd(self) -> float:
        acc = self.accuracies
        return statistics.stdev(acc) if len(acc) > 1 else math.nan

    @property
    def n(self) -> int:
        return sum(r.done for r in self.runs)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs if r.done)

    @property
    def diverged(self) -> int:
        return sum(r.status == "diverged" for r in self.runs)

    @property
    def unfinished(self) -> int:
        return sum(not r.done for r in self.runs)

    @property
    def curves(self) -> list[list[tuple[int, float]]]:
        return [r.curve for r in self.runs if r.done]

    @property
    def config_hashes(self) -> list[str]:
        return [r.config_hash for r in self.runs]

    def cost_of(self, key: str):
        return None if self.cost is None else self.cost.get(key)

    def column(self, name: str):
        """A table cell: ``shown``, else the group's own value, else its first run's, else its cost."""
        if name in self.shown:
            return self.shown[name]
        for obj in (self, self.first):
            if hasattr(type(obj), name) or name in getattr(obj, "__dataclass_fields__", {}):
                return getattr(obj, name)
        return self.cost_of(name)
