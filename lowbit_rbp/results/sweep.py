"""Sweeps: a TOML file expanded into many run configs, trained by local processes or Dask, into a store.

Sweep file::

    name = "mnist_table1"          # optional; default: the file's stem
    seeds = [0, 1, 2]              # optional; sets train.seed of every run (default: base's seed)

    [base]                         # a partial run config (same sections as run files)
    train.epochs = 20

    [grid]                         # dotted keys -> lists; the cartesian product
    "channel.algorithm" = ["bp", "rbp", "srbp"]

    [[runs]]                       # optional explicit runs: override tables, each x grid x seeds
    row = "sparse_8"               # optional tag (kept in the store, used by reports)
    name = "RBP sparse-8"          # optional label (not part of the config hash)
    "channel.feedback" = "sparse:n=8"
    grid."channel.algorithm" = ["rbp", "srbp"]   # optional per-run grid replacing [grid] keys
    cost.feedback_seed = 0         # optional options of the cost model (lowbit-rbp cost --sweep)

Runs = (each ``[[runs]]`` entry, or one empty entry) x grid product x seeds, on top of ``base``.
Runs with the same config hash are listed once (the first label wins), unless their cost options
differ (one config priced two ways); training trains each config once.

Local executor: each run is trained by ``run_one`` in a worker that writes its epochs to the SQLite
store itself (see ``lowbit_rbp.results.store`` for claims and restarts); only the store path
travels to workers. Dask executor: workers send each epoch back and the sweep's own process writes
the store (``lowbit_rbp.results.remote``): no shared disk.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
import sqlite3
import subprocess
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import RunConfig, from_dict, from_stored, read_toml
from ..core.runtime import Runtime
from ..errors import ConfigError, bad_value
from .providers import load_data as _load_data

SWEEP_KEYS = ("name", "description", "seeds", "base", "grid", "runs", "report")
REPORT_KEYS = ("title", "store", "stem", "paper_table")
SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"
RUN_TAG_KEYS = ("row", "grid", "cost")
EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class SweepRun:
    config: RunConfig
    tags: dict = field(default_factory=dict)


@dataclass
class Sweep:
    name: str
    runs: list[SweepRun]
    source: str = ""
    report: dict = field(default_factory=dict)   # how a named experiment is reported ([report])

    @property
    def configs(self) -> list[RunConfig]:
        return [r.config for r in self.runs]

    def select(self, labels) -> "Sweep":
        """The runs labelled ``labels`` (in the sweep's order)."""
        known = {r.config.label() for r in self.runs}
        missing = [x for x in labels if x not in known]
        if missing:
            raise bad_value(f"sweep {self.name}: run labels", missing, ", ".join(sorted(known)))
        return Sweep(self.name, [r for r in self.runs if r.config.label() in labels], self.source, self.report)


@dataclass
class SweepSummary:
    total: int
    ran: dict            # config_hash -> finished | diverged | failed
    skipped: list        # already done
    busy: list           # running under another live sweep

    @property
    def failed(self) -> list:
        return [h for h, s in self.ran.items() if s == "failed"]


# --- expansion --------------------------------------------------------------------------------
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set(data: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {p!r} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def _check_key(where: str, dotted: str) -> None:
    """Validate one dotted key against RunConfig's fields (ConfigError names the allowed ones)."""
    from dataclasses import fields
    from ..core.config import SECTIONS, TOP_LEVEL
    parts = dotted.split(".")
    if len(parts) == 1 and parts[0] in TOP_LEVEL:
        return
    if len(parts) != 2 or parts[0] not in SECTIONS:
        allowed = ", ".join([*(f"{s}.<field>" for s in SECTIONS), *TOP_LEVEL])
        raise bad_value(f"{where}: unknown config field", dotted, allowed)
    known = [f.name for f in fields(SECTIONS[parts[0]])]
    if parts[1] not in known:
        raise bad_value(f"{where}: unknown config field", dotted, ", ".join(f"{parts[0]}.{n}" for n in known))


def base_table(data: dict, where: str) -> dict:
    """The ``[base]`` table of a sweep or space file, flattened to dotted keys, each a known config
    field (``where`` names the file in the errors)."""
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"{where}: [base] must be a table of run settings")
    flat = _flatten(base)
    for k in flat:
        _check_key(f"{where} [base]", k)
    return flat


def expand_sweep(data: dict, name: str = "sweep", source: str = "", *, seeds=None, overrides=()) -> Sweep:
    """Expand a parsed sweep table into validated run configs. ``seeds`` replaces the file's
    seeds; ``overrides`` (``section.key=value``) are set on every run, over everything else."""
    from ..core.config import _parse_scalar
    where = source or name
    for k in data:
        if k not in SWEEP_KEYS:
            raise bad_value(f"sweep {where}: unknown key", k, ", ".join(SWEEP_KEYS))
    name = str(data.get("name", name))
    report = data.get("report", {})
    if not isinstance(report, dict) or any(k not in REPORT_KEYS for k in report):
        raise bad_value(f"sweep {where}: [report]", report, "a table with keys " + ", ".join(REPORT_KEYS))
    extra = {}
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.epochs=100")
        _check_key(f"sweep {where} override", key.strip())
        extra[key.strip()] = _parse_scalar(raw)
    if seeds is not None:
        data = {**data, "seeds": list(seeds)}
    base_flat = base_table(data, f"sweep {where}")
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise ConfigError(f"sweep {where}: [grid] must be a table of dotted keys -> lists")
    grid = _flatten(grid)
    runs = data.get("runs", [{}])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ConfigError(f"sweep {where}: runs must be an array of tables ([[runs]])")
    if not runs:
        raise ConfigError(f"sweep {where}: [[runs]] is empty; give at least one run or leave it out")
    seeds = data.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                 and s >= 0 for s in seeds):
            raise bad_value(f"sweep {where}: seeds", seeds, "a non-empty list of integers >= 0, e.g. [0, 1, 2]")

    out: list[SweepRun] = []
    seen: set[str] = set()
    for i, entry in enumerate(runs):
        entry = dict(entry)
        tags = {"sweep": name}
        if "row" in entry:
            tags["row"] = str(entry.pop("row"))
        if "cost" in entry:
            cost = entry.pop("cost")
            if not isinstance(cost, dict):
                raise ConfigError(f"sweep {where}: runs[{i}].cost must be a table of cost-model options")
            tags["cost"] = cost
        run_grid = dict(grid)
        if "grid" in entry:
            g = entry.pop("grid")
            if not isinstance(g, dict):
                raise ConfigError(f"sweep {where}: runs[{i}].grid must be a table of dotted keys -> lists")
            run_grid.update(_flatten(g))
        overrides = _flatten(entry)
        for k in overrides:
            _check_key(f"sweep {where} runs[{i}]", k)
        for k, values in run_grid.items():
            _check_key(f"sweep {where} [grid]", k)
            if not isinstance(values, list):
                raise bad_value(f"sweep {where} [grid] {k}", values, "a list of values, e.g. [1, 2, 3]")
            if not values:
                raise ConfigError(f"sweep {where} [grid] {k}: empty list; give at least one value "
                                  "(or remove the key)")
        if seeds is not None and ("train.seed" in run_grid or "train.seed" in overrides):
            raise ConfigError(f"sweep {where}: train.seed is set both by 'seeds' and in grid/runs; use one")
        keys = list(run_grid)
        for combo in itertools.product(*(run_grid[k] for k in keys)):
            for seed in (seeds if seeds is not None else [None]):
                d: dict = {}
                for k, v in base_flat.items():
                    _set(d, k, copy.deepcopy(v))
                for k, v in overrides.items():
                    _set(d, k, copy.deepcopy(v))
                for k, v in zip(keys, combo):
                    _set(d, k, copy.deepcopy(v))
                if seed is not None:
                    _set(d, "train.seed", seed)
                for k, v in extra.items():
                    _set(d, k, copy.deepcopy(v))
                try:
                    cfg = from_dict(d)
                except ConfigError as exc:
                    raise ConfigError(f"sweep {where} runs[{i}] {dict(zip(keys, combo))}: {exc}") from None
                h = (cfg.config_hash(), json.dumps(tags.get("cost", {}), sort_keys=True))
                if h in seen:
                    continue
                seen.add(h)
                out.append(SweepRun(cfg, dict(tags)))
    return Sweep(name, out, source, report)


def sweep_path(name_or_path) -> Path:
    """A sweep file given by path, or by name from the package's sweep files (``foundation``)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    named = SWEEPS_DIR / f"{p.name}.toml"
    if not named.is_file():
        known = ", ".join(sorted(q.stem for q in SWEEPS_DIR.glob("*.toml")))
        raise bad_value("sweep", str(name_or_path), f"a sweep file path or one of {known}")
    return named


def load_sweep(path, *, seeds=None, overrides=()) -> Sweep:
    p = sweep_path(path)
    return expand_sweep(read_toml(p, "sweep file"), name=p.stem, source=str(p), seeds=seeds, overrides=overrides)


# --- running one run (in a worker) ------------------------------------------------------------
def run_one(store_path: str, cfg_dict: dict, tags: dict | None = None, data=None, runtime: Runtime | None = None,
            code_version: str = "") -> tuple[str, str]:
    """Train one run into the store at ``store_path`` under ``runtime`` (applied to this process);
    returns (config_hash, outcome) with outcome finished | diverged | failed | done (already done:
    skipped) | busy (another sweep has it)."""
    from .store import Store, StoreError, new_owner
    from ..learning.trainer import Trainer, machine_info
    runtime = (runtime or Runtime()).apply()
    cfg = from_stored(cfg_dict)
    h = cfg.config_hash()
    owner = new_owner()
    with Store(store_path) as store:
        state = store.claim(cfg, owner, machine=machine_info(), code_version=code_version, tags=tags)
        if state != "claimed":
            return h, state
        try:
            data_obj = _load_data(data, cfg)
            trainer = Trainer(cfg, data_obj, runtime)
            status = "finished"
            with store.heartbeat(h, owner):
                for rec in trainer.run(progress=False):
                    store.record_epoch(h, owner, rec)
                    if trainer.diagnostics is not None:
                        store.record_diagnostics(h, owner, rec.epoch, trainer.diagnostics.last)
                    if rec.status == "diverged":
                        status = "diverged"
            store.finish(h, owner, status)
            return h, status
        except StoreError:   # another sweep took the run over
            return h, "busy"
        except Exception as exc:  # any failure of this one run is recorded; the sweep goes on (not Ctrl-C/exit)
            err = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            try:
                store.finish(h, owner, "failed", error=err + "\n" + traceback.format_exc()[-4000:])
            except (StoreError, sqlite3.Error):   # lost the run or the store meanwhile: the next claim redoes it
                pass
            return h, "failed"


def _run_one_args(args):
    return run_one(*args)


def code_version() -> str:
    """The commit of the source tree (``git describe --always --tags``), with ``-dirty`` when a
    tracked file outside ``reports/`` differs from it (generated reports change no code, so
    writing them keeps the next report's version clean); else the package version."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--tags"], cwd=root, capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                      ":(exclude)reports"], cwd=root, capture_output=True, text=True, timeout=10)
            dirty = changed.returncode != 0 or bool(changed.stdout.strip())
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version
    try:
        return "lowbit-rbp " + version("lowbit-rbp")
    except PackageNotFoundError:
        return "unknown"


# --- executors --------------------------------------------------------------------------------
def run_sweep(sweep, store_path, *, runtime: Runtime | None = None, executor: str = "local", scheduler=None,
              client=None, data=None, progress: bool = True, reclaim: bool = False,
              retrain: str | None = None) -> SweepSummary:
    """Train every run of ``sweep`` (a Sweep, a path to a sweep file, or a list of RunConfigs) not yet
    done in the store at ``store_path``.

    ``executor="local"``: ``runtime.workers`` spawned processes (1: in this process), each with
    ``runtime.threads`` torch threads (default ``cpu_count // workers``, so workers*threads <= cores),
    tied to this process's life (``lowbit_rbp.results.workers``).
    ``executor="dask"``: ``client`` (a ``distributed.Client``), else ``scheduler`` (an address
    string or a cluster object such as a ``LocalCluster``); each task trains one run on a worker
    with 1 torch thread unless ``runtime.threads`` says otherwise and streams its epochs back:
    this process alone writes the store (``lowbit_rbp.results.remote``). ``data``: a data
    provider (``lowbit_rbp.results.providers``); for Dask a string (or None: each worker's own
    data folder). ``reclaim``: first take over the runs left ``running`` by owners silent for
    ``store.RECLAIM_AFTER`` seconds (``Store.reclaim``). ``retrain``: ``"all"`` retrains the
    sweep's done runs (after a change that alters their results), ``"dirty"`` those recorded from
    uncommitted code (code version ``...-dirty``), from scratch.
    """
    from tqdm.auto import tqdm
    from .store import Store
    if isinstance(sweep, (str, Path)):
        sweep = load_sweep(sweep)
    elif not isinstance(sweep, Sweep):
        sweep = Sweep("adhoc", [r if isinstance(r, SweepRun) else SweepRun(r, {"sweep": "adhoc"}) for r in sweep])
    if executor not in EXECUTORS:
        raise bad_value("executor", executor, ", ".join(EXECUTORS))
    runtime = runtime or Runtime()
    store_path = str(Path(store_path).resolve())
    version = code_version()
    with Store(store_path) as store:   # creates the file and schema once, checks the version
        for r in sweep.runs:
            store.add_pending(r.config, r.tags)
        if reclaim:
            store.reclaim()
        if retrain is not None:
            _mark_retrain(store, sweep, retrain, version)
        done = store.done_hashes()
    # Seed-major: every row's first seed before any row's second, so a sweep stopped part-way
    # still covers the whole grid.
    unique = {}
    for r in sweep.runs:          # one training per config (a config may be listed twice, priced two ways)
        unique.setdefault(r.config.config_hash(), r)
    todo = sorted((r for h, r in unique.items() if h not in done), key=lambda r: r.config.train.seed)
    summary = SweepSummary(len(sweep.runs), {}, [r.config.config_hash() for r in sweep.runs
                                                 if r.config.config_hash() in done], [])
    bar = tqdm(total=len(sweep.runs), initial=len(summary.skipped), desc=f"{sweep.name}: runs", disable=not progress,
               unit="run")

    def note(result):
        h, outcome = result
        if outcome == "done":
            summary.skipped.append(h)
        elif outcome == "busy":
            summary.busy.append(h)
        else:
            summary.ran[h] = outcome
        bar.update(1)
        bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in _tally(summary).items()), refresh=False)

    cores = os.cpu_count() or 1
    if executor == "local":
        worker_runtime = runtime.per_worker(cores)
        jobs = [(store_path, r.config.to_dict(), r.tags, data, worker_runtime, version) for r in todo]
        if runtime.workers == 1:
            for job in jobs:
                note(run_one(*job))
        else:
            from ..core.runtime import check_backend
            from .workers import run_local
            check_backend(runtime.backend)   # here, once, rather than in every worker
            run_local([(r.config.config_hash(), job) for r, job in zip(todo, jobs)], run_one, runtime.workers,
                      store_path, note)
    else:
        # The store stays here: workers stream their epochs back and this process writes them
        # (lowbit_rbp.results.remote), so Dask workers need no shared disk.
        from .remote import DaskBackend, RunJob, run_streamed
        task_runtime = Runtime(runtime.threads or 1, runtime.backend, diagnostics=runtime.diagnostics)
        jobs = [RunJob(r.config.config_hash(), r.config.to_dict(), r.tags, data, task_runtime) for r in todo]
        run_streamed(jobs, DaskBackend(client=client, scheduler=scheduler), store_path, code_version=version,
                     note=note)
    bar.close()
    return summary


RETRAIN = ("all", "dirty")


def _mark_retrain(store, sweep: Sweep, which: str, version: str) -> list[str]:
    """Mark the sweep's done runs for retraining: all of them, or those recorded from uncommitted
    code. Refused from uncommitted code itself (the retrained runs would be dirty again)."""
    if which not in RETRAIN:
        raise bad_value("retrain", which, ", ".join(RETRAIN))
    if which == "dirty" and version.endswith("-dirty"):
        raise ConfigError(f"--retrain dirty from uncommitted code ({version}) would record dirty runs again; "
                          "commit first")
    hashes = {r.config.config_hash() for r in sweep.runs}
    if which == "dirty":
        hashes = {r.config_hash for r in store.runs() if r.config_hash in hashes and r.code_version.endswith("-dirty")}
    return store.mark_for_retraining(sorted(hashes), f"--retrain {which} (code {version})")


def _tally(s: SweepSummary) -> dict:
    out: dict = {}
    for v in s.ran.values():
        out[v] = out.get(v, 0) + 1
    if s.skipped:
        out["skipped"] = len(s.skipped)
    if s.busy:
        out["busy"] = len(s.busy)
    return out
