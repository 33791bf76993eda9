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
    "channel.feedback" = "sparse:n=8"
    grid."channel.algorithm" = ["rbp", "srbp"]   # optional per-run grid replacing [grid] keys

Runs = (each ``[[runs]]`` entry, or one empty entry) x grid product x seeds, on top of ``base``.
Runs with the same config hash are trained once (the first label wins).

Each run is trained by ``run_one`` in a worker that writes its epochs to the SQLite store itself
(see ``lowbit_rbp.results.store`` for claims and restarts); only the store path travels to workers.
"""
from __future__ import annotations

import copy
import itertools
import os
import subprocess
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import RunConfig, from_dict, read_toml
from ..errors import ConfigError, bad_value

SWEEP_KEYS = ("name", "description", "seeds", "base", "grid", "runs")
RUN_TAG_KEYS = ("row", "grid")
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

    @property
    def configs(self) -> list[RunConfig]:
        return [r.config for r in self.runs]


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


def expand_sweep(data: dict, name: str = "sweep", source: str = "") -> Sweep:
    """Expand a parsed sweep table into validated run configs."""
    where = source or name
    for k in data:
        if k not in SWEEP_KEYS:
            raise bad_value(f"sweep {where}: unknown key", k, ", ".join(SWEEP_KEYS))
    name = str(data.get("name", name))
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"sweep {where}: [base] must be a table of run settings")
    base_flat = _flatten(base)
    for k in base_flat:
        _check_key(f"sweep {where} [base]", k)
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
                try:
                    cfg = from_dict(d)
                except ConfigError as exc:
                    raise ConfigError(f"sweep {where} runs[{i}] {dict(zip(keys, combo))}: {exc}") from None
                h = cfg.config_hash()
                if h in seen:
                    continue
                seen.add(h)
                out.append(SweepRun(cfg, dict(tags)))
    return Sweep(name, out, source)


def load_sweep(path) -> Sweep:
    p = Path(path)
    return expand_sweep(read_toml(p, "sweep file"), name=p.stem, source=str(p))


# --- running one run (in a worker) ------------------------------------------------------------
_DATA_CACHE: dict = {}


def _load_data(spec, cfg: RunConfig):
    """``spec``: None (``load_dataset(cfg.model.dataset)``), a callable ``f(cfg)``, or a string
    ``"package.module:function"`` / ``"/path/file.py:function"`` naming one."""
    key = (spec if isinstance(spec, str) or spec is None else id(spec), cfg.model.dataset)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if spec is None:
        from ..data import load_dataset
        data = load_dataset(cfg.model.dataset)
    else:
        fn = _resolve(spec) if isinstance(spec, str) else spec
        data = fn(cfg)
    _DATA_CACHE[key] = data
    return data


def _resolve(spec: str):
    mod, sep, attr = spec.rpartition(":")
    if not sep or not mod or not attr:
        raise bad_value("data provider", spec, "'package.module:function' or '/path/file.py:function'")
    if mod.endswith(".py"):
        import importlib.util
        s = importlib.util.spec_from_file_location(f"_lowbit_sweep_data_{abs(hash(mod))}", mod)
        module = importlib.util.module_from_spec(s)
        s.loader.exec_module(module)
    else:
        import importlib
        module = importlib.import_module(mod)
    return getattr(module, attr)


def run_one(store_path: str, cfg_dict: dict, tags: dict | None = None, data=None, threads: int = 0,
            code_version: str = "") -> tuple[str, str]:
    """Train one run into the store at ``store_path``; returns (config_hash, outcome) with outcome
    finished | diverged | failed | done (already done: skipped) | busy (another sweep has it)."""
    from .store import Store, new_owner
    from ..learning.trainer import Trainer, machine_info
    cfg = from_dict(cfg_dict)
    if threads or cfg.threads:
        import torch
        torch.set_num_threads(cfg.threads or threads)
    h = cfg.config_hash()
    owner = new_owner()
    with Store(store_path) as store:
        state = store.claim(cfg, owner, machine=machine_info(), code_version=code_version, tags=tags)
        if state != "claimed":
            return h, state
        try:
            data_obj = _load_data(data, cfg)
            trainer = Trainer(cfg, data_obj)
            status = "finished"
            for rec in trainer.run(progress=False):
                store.record_epoch(h, owner, rec)
                if rec.status == "diverged":
                    status = "diverged"
            store.finish(h, owner, status)
            return h, status
        except Exception as exc:  # recorded as failed; the sweep goes on
            from .store import StoreError
            if isinstance(exc, StoreError):
                return h, "busy"
            err = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            try:
                store.finish(h, owner, "failed", error=err + "\n" + traceback.format_exc()[-4000:])
            except Exception:
                pass
            return h, "failed"


def _run_one_args(args):
    return run_one(*args)


def code_version() -> str:
    """``git describe --always --dirty`` of the source tree, else the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import version
        return "lowbit-rbp " + version("lowbit-rbp")
    except Exception:
        return "unknown"


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


# --- executors --------------------------------------------------------------------------------
def run_sweep(sweep, store_path, *, workers: int = 1, executor: str = "local", scheduler=None, client=None,
              data=None, threads: int | None = None, progress: bool = True) -> SweepSummary:
    """Train every run of ``sweep`` (a Sweep, a path to a sweep file, or a list of RunConfigs) not yet
    done in the store at ``store_path``.

    ``executor="local"``: ``workers`` spawned processes (1: in this process), each with
    ``threads`` torch threads (default ``cpu_count // workers``, so workers*threads <= cores).
    ``executor="dask"``: ``client`` (a ``distributed.Client``), else ``scheduler`` (an address
    string or a cluster object such as a ``LocalCluster``); each task runs ``run_one`` on a worker
    with 1 torch thread unless ``threads`` says otherwise. ``data``: see ``_load_data``; must be
    picklable (a string spec travels best).
    """
    from tqdm.auto import tqdm
    from .store import Store
    if isinstance(sweep, (str, Path)):
        sweep = load_sweep(sweep)
    elif not isinstance(sweep, Sweep):
        sweep = Sweep("adhoc", [r if isinstance(r, SweepRun) else SweepRun(r, {"sweep": "adhoc"}) for r in sweep])
    if executor not in EXECUTORS:
        raise bad_value("executor", executor, ", ".join(EXECUTORS))
    if not isinstance(workers, int) or workers < 1:
        raise bad_value("workers", workers, "an integer >= 1")
    store_path = str(Path(store_path).resolve())
    version = code_version()
    with Store(store_path) as store:   # creates the file and schema once, checks the version
        for r in sweep.runs:
            store.add_pending(r.config, r.tags)
        done = {x["config_hash"] for x in store.runs() if x["status"] in ("finished", "diverged")}
    # Seed-major: every row's first seed before any row's second, so a sweep stopped part-way
    # still covers the whole grid.
    todo = sorted((r for r in sweep.runs if r.config.config_hash() not in done), key=lambda r: r.config.train.seed)
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
        nthreads = threads or max(1, cores // workers)
        jobs = [(store_path, r.config.to_dict(), r.tags, data, nthreads, version) for r in todo]
        if workers == 1:
            for job in jobs:
                note(run_one(*job))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                     initargs=(nthreads,)) as pool:
                futs = [pool.submit(run_one, *job) for job in jobs]
                try:
                    for f in as_completed(futs):
                        note(f.result())
                except KeyboardInterrupt:
                    # Queued runs must not start while the pool winds down; the running ones were
                    # interrupted too (the terminal signals the whole process group) and stay
                    # 'running' in the store, to be redone by the next sweep.
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    else:
        from distributed import Client, as_completed
        own = None
        if client is None:
            if scheduler is None:
                raise ConfigError("executor 'dask' needs a scheduler address (--scheduler tcp://HOST:PORT) "
                                  "or a client/cluster")
            client = own = Client(scheduler)
        try:
            jobs = [(store_path, r.config.to_dict(), r.tags, data, threads or 1, version) for r in todo]
            futs = [client.submit(run_one, *job, pure=False, key=f"lowbit-run-{job[1]['train']['seed']}-"
                                  f"{from_dict(job[1]).config_hash()}") for job in jobs]
            for f in as_completed(futs):
                note(f.result())
        finally:
            if own is not None:
                own.close()
    bar.close()
    return summary


def _tally(s: SweepSummary) -> dict:
    out: dict = {}
    for v in s.ran.values():
        out[v] = out.get(v, 0) + 1
    if s.skipped:
        out["skipped"] = len(s.skipped)
    if s.busy:
        out["busy"] = len(s.busy)
    return out
