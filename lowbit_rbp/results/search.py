"""A design-space search with Optuna instead of a grid: ``lowbit-rbp search SPACE.toml``.

A space file (``lowbit_rbp.results.space``: ``[base]`` and ``[knobs]``, the sweep file's style)
may carry the command line's defaults::

    [search]
    objectives = ["accuracy:max", "energy_pj:min"]
    trials = 81
    sampler = "tpe"                    # tpe (multi-objective TPE), nsga2, random
    seed = 0                           # the sampler's seed
    eta = 3                            # pruning: keep the best 1/eta of the runs at each rung
    min_epochs = 1                     # the first rung; then min_epochs * eta^k below train.epochs
    prune = true

Every trial is a run of this package: base + the trial's knob values, keyed in the results store
by its normal config hash, so a search and a sweep share results. A trial whose configuration is
already finished in the store is answered from it, never retrained. ``--trials N`` is the size of
the study: the number of distinct configurations it evaluates (a proposal repeating one already
evaluated is answered again and not counted); a rerun continues a study up to N.

Objectives: ``accuracy`` (final test accuracy %, maximised; a diverged run counts as 0) and any
cost per training example of ``lowbit_rbp.cost.per_example.default_cost`` (``energy_pj``,
``area_mm2``, ``latency_s``, ...; minimised by default, ``throughput_eps`` maximised).

Pruning (asynchronous successive halving for several objectives, after Schmucker et al.,
"Multi-objective asynchronous successive halving", arXiv:2106.12639, 2021): at each rung epoch a
run reports its test accuracy; its objective vector there (accuracy at the rung, its costs, which
are known before training) is ranked by non-dominated sorting among every run of the study that
reached the rung, and it goes on only if its rank is within the best ``floor(n / eta)`` (at least
one). Optuna's own pruners take one objective (``Trial.report`` refuses multi-objective studies),
hence this rule. A pruned run keeps its epochs in the store with status ``failed`` and the tag
``pruned`` (``Store.record_pruned``), so reports of finished runs leave it out and a sweep that
wants it trains it in full; its Optuna trial is PRUNED.

Optuna's storage is a journal file beside the store (``STORE.optuna.log``; ``--journal``). The
study is named by the space and its objectives. A killed search leaves trials RUNNING in the
journal: the next run marks them FAIL and asks their configurations again first (runs finished
in the store by then are not retrained). One search at a time per journal (an flock on it).

``lowbit-rbp search SPACE --grid`` trains the space's full grid instead (every knob's candidates;
integer ranges step by step) as a sweep, with the same config hashes, for comparison
(``lowbit_rbp.report.search_report``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import RunConfig
from ..core.runtime import Runtime
from ..errors import ConfigError, bad_value
from ..cost.per_example import COST_KEYS, MAXIMIZED, default_cost
from .pareto import nondominated_ranks
from .store import PRUNED_TAG, Store
from .space import Space, load_space

OBJECTIVE_KEYS = ("accuracy", *COST_KEYS)
SAMPLERS = ("tpe", "nsga2", "random")
DEFAULTS = {"objectives": ["accuracy:max", "energy_pj:min"], "trials": 50, "sampler": "tpe", "seed": 0, "eta": 3,
            "min_epochs": 1, "prune": True}


# --- objectives -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    """``key`` (accuracy or a cost key) and ``direction`` (max or min)."""

    key: str
    direction: str

    @property
    def spec(self) -> str:
        return f"{self.key}:{self.direction}"

    def loss(self, value: float) -> float:
        """The value as a quantity to minimise (maximised ones negated)."""
        return -value if self.direction == "max" else value


def parse_objective(text: str) -> Objective:
    key, _, direction = str(text).partition(":")
    if key not in OBJECTIVE_KEYS:
        raise bad_value("objective", text, "KEY[:max|min] with KEY in " + ", ".join(OBJECTIVE_KEYS))
    natural = "max" if key == "accuracy" or key in MAXIMIZED else "min"
    direction = direction or natural
    if direction not in ("max", "min"):
        raise bad_value(f"objective {key} direction", direction, "max, min")
    return Objective(key, direction)


def parse_objectives(items) -> list[Objective]:
    """Objectives from specs (or Objective objects): at least one, each key once."""
    objectives = [x if isinstance(x, Objective) else parse_objective(x) for x in items]
    if not objectives:
        raise ConfigError("a search needs at least one objective, e.g. --objective accuracy:max")
    keys = [o.key for o in objectives]
    if len(set(keys)) != len(keys):
        raise bad_value("objectives", [o.spec for o in objectives], "each key at most once")
    return objectives


def objective_values(objectives, accuracy: float, cost: dict) -> list[float]:
    """The objective values of a run: accuracy in % (NaN: 0) and its costs."""
    acc = 0.0 if accuracy is None or not math.isfinite(accuracy) else accuracy
    return [acc if o.key == "accuracy" else float(cost[o.key]) for o in objectives]


def study_name(space: Space, objectives) -> str:
    return f"{space.name}[{','.join(o.spec for o in objectives)}]"


def journal_path(store_path) -> Path:
    """Optuna's journal of the searches writing the store at ``store_path``."""
    p = Path(store_path)
    return p.with_name(p.stem + ".optuna.log")


# --- pruning ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pruner:
    """Asynchronous successive halving over several objectives (see the module docstring)."""

    eta: int = 3
    min_epochs: int = 1

    def __post_init__(self):
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise bad_value("eta", self.eta, "an integer >= 2")
        if isinstance(self.min_epochs, bool) or not isinstance(self.min_epochs, int) or self.min_epochs < 1:
            raise bad_value("min_epochs", self.min_epochs, "an integer >= 1")

    def rungs(self, epochs: int) -> tuple[int, ...]:
        """The epochs where runs of ``epochs`` epochs are compared (the last epoch is not one)."""
        out, e = [], self.min_epochs
        while e < epochs:
            out.append(e)
            e *= self.eta
        return tuple(out)

    def is_rung(self, epoch: int) -> bool:
        e = self.min_epochs
        while e < epoch:
            e *= self.eta
        return e == epoch

    def judge(self, key: str, points: dict) -> dict | None:
        """None if run ``key`` goes on at this rung, else why not. ``points``: objective vectors to
        minimise at the rung, by run, ``key``'s included."""
        keys = list(points)
        ranks = dict(zip(keys, nondominated_ranks([points[k] for k in keys])))
        keep = max(1, len(keys) // self.eta)
        threshold = sorted(ranks.values())[keep - 1]
        if ranks[key] <= threshold:
            return None
        return {"rank": ranks[key], "kept_ranks": threshold, "peers": len(keys), "eta": self.eta}


# --- the search -------------------------------------------------------------------------------
@dataclass
class SearchSummary:
    study: str
    journal: str
    size: int                                        # distinct configurations the study has evaluated
    trained: dict = field(default_factory=dict)      # config hash -> finished | diverged | failed | pruned
    reused: list = field(default_factory=list)       # answered from the store, not retrained
    repeats: int = 0                                 # proposals of an already evaluated configuration
    busy: list = field(default_factory=list)         # held by another live sweep (not counted)
    note: str = ""


class _Lock:
    """An exclusive advisory lock (flock) on the journal file itself: one search client per journal.
    Optuna's own lock for its writes is a separate symlink (``JOURNAL.lock``)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise ConfigError(f"another search is using the journal {str(self.path)!r}: one search at a time per "
                              "journal (wait for it to end, or give --journal another file)") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("lowbit-rbp search needs Optuna: pip install 'lowbit-rbp[search]' (make install "
                          "installs it)") from None
    return optuna


def make_sampler(name: str, seed: int):
    optuna = _optuna()
    if name == "tpe":
        import warnings
        with warnings.catch_warnings():    # multivariate TPE is marked experimental; it models knobs jointly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise bad_value("sampler", name, ", ".join(SAMPLERS))


def open_study(space: Space, objectives, journal, sampler=None, *, create: bool = True):
    """The Optuna study of ``space`` and ``objectives`` in the journal file ``journal``."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    storage = JournalStorage(JournalFileBackend(str(journal)))
    name = study_name(space, objectives)
    if create:
        return optuna.create_study(storage=storage, sampler=sampler, study_name=name, load_if_exists=True,
                                   directions=["maximize" if o.direction == "max" else "minimize"
                                               for o in objectives])
    try:
        return optuna.load_study(storage=storage, study_name=name, sampler=sampler)
    except KeyError:
        raise ConfigError(f"journal {str(journal)!r} has no study {name!r}: run `lowbit-rbp search` with these "
                          "objectives first") from None


class Search:
    """One client driving a study: asks trials, trains them on a backend through a
    ``StreamDriver`` (which writes the store), prunes at rungs, tells Optuna the results."""

    def __init__(self, space: Space, objectives, study, store: Store, backend, *, pruner: Pruner | None,
                 runtime: Runtime, data=None, code_version: str = "", cost_fn=default_cost):
        from .remote import StreamDriver
        self.space, self.objectives, self.study, self.store = space, objectives, study, store
        self.pruner, self.runtime, self.data, self.cost_fn = pruner, runtime, data, cost_fn
        self.driver = StreamDriver(store, backend, code_version=code_version, on_epoch=self._on_epoch)
        self.backend = backend
        self.costs: dict = {}                 # config hash -> cost dict
        self.checkpoints: dict = {}           # config hash -> its rung epochs (where it may be pruned)
        self.rung_points: dict = {}           # rung epoch -> {config hash: objective losses there}
        self.evaluated: dict = {}             # config hash -> (state, values) told to a trial
        self.running: dict = {}               # config hash -> [trials waiting for that run]
        self.summary = SearchSummary(study.study_name, "", 0)

    # --- costs and objective vectors ----------------------------------------------------------
    def cost(self, cfg: RunConfig) -> dict:
        h = cfg.config_hash()
        if h not in self.costs:
            self.costs[h] = self.cost_fn(cfg)
        return self.costs[h]

    def losses(self, h: str, accuracy: float) -> tuple:
        values = objective_values(self.objectives, accuracy, self.costs[h])
        return tuple(o.loss(v) for o, v in zip(self.objectives, values))

    def _note_epoch(self, h: str, epoch: int, test_acc: float) -> None:
        if self.pruner is not None and self.pruner.is_rung(epoch):
            self.rung_points.setdefault(epoch, {})[h] = self.losses(h, 100.0 * test_acc)

    def _on_epoch(self, h: str, rec):
        """Per epoch of a run in flight: record its accuracy with its trials; at a rung, judge it."""
        for trial in self.running.get(h, []):
            trial.set_user_attr(f"accuracy_epoch_{rec.epoch}", 100.0 * rec.test_acc
                                if math.isfinite(rec.test_acc) else None)
        self._note_epoch(h, rec.epoch, rec.test_acc)
        if rec.epoch not in self.checkpoints.get(h, ()):
            return None
        why = self.pruner.judge(h, self.rung_points[rec.epoch])
        return None if why is None else {"search": self.study.study_name, "epoch": rec.epoch, **why}

    # --- resuming -----------------------------------------------------------------------------
    def resume(self) -> None:
        """Learn what the study has evaluated (and the rung accuracies of its runs); trials a killed
        client left RUNNING are marked FAIL and their configurations asked again first."""
        from optuna.trial import TrialState
        for t in self.study.get_trials(deepcopy=False):
            h = t.user_attrs.get("config_hash")
            if t.state == TrialState.RUNNING:
                self.study.tell(t.number, state=TrialState.FAIL)
                self.study.enqueue_trial(t.params, skip_if_exists=True)
            elif h and t.state in (TrialState.COMPLETE, TrialState.PRUNED) and h not in self.evaluated:
                self.evaluated[h] = (t.state, t.values)
                cfg = self.space.config({k.key: t.params[k.key] for k in self.space.knobs})
                self.cost(cfg)
                for e in self.store.epochs(h):
                    self._note_epoch(h, e.epoch, e.test_acc)

    # --- asking and telling -------------------------------------------------------------------
    def _answer(self, trial, h: str, state, values, source: str) -> None:
        from optuna.trial import TrialState
        trial.set_user_attr("config_hash", h)
        trial.set_user_attr("source", source)
        for k in COST_KEYS:
            trial.set_user_attr(k, self.costs[h][k])
        if state == TrialState.COMPLETE:
            self.study.tell(trial, values=values)
        else:
            self.study.tell(trial, state=state)

    def _stored_answer(self, h: str):
        """(state, values) of a configuration the store has done or pruned, else None."""
        from optuna.trial import TrialState
        rec = self.store.run(h)
        if rec is None:
            return None
        if rec.done:
            acc = 100.0 * rec.test_acc if rec.status == "finished" and rec.test_acc is not None else 0.0
            return TrialState.COMPLETE, objective_values(self.objectives, acc, self.costs[h])
        if rec.status == "failed" and PRUNED_TAG in rec.tags:
            return TrialState.PRUNED, None
        return None

    def ask(self) -> bool:
        """Ask one trial; train it, or answer it at once. True if it counts toward the study's size."""
        from .remote import RunJob
        trial = self.study.ask()
        raw = {k.key: k.suggest(trial) for k in self.space.knobs}
        cfg = self.space.config(raw)
        h = cfg.config_hash()
        self.cost(cfg)
        if h in self.evaluated:                       # proposed again: same answer, not counted
            state, values = self.evaluated[h]
            self._answer(trial, h, state, values, "repeat")
            self.summary.repeats += 1
            return False
        if h in self.running:                         # being trained for another trial: wait for it
            self.running[h].append(trial)
            self.summary.repeats += 1
            return False
        stored = self._stored_answer(h)
        if stored is not None:
            self.evaluated[h] = stored
            self._answer(trial, h, *stored, "store")
            for e in self.store.epochs(h):
                self._note_epoch(h, e.epoch, e.test_acc)
            self.summary.reused.append(h)
            return True
        tags = {"sweep": self.space.name, "search": self.study.study_name, "trial": trial.number}
        self.checkpoints[h] = self.pruner.rungs(cfg.train.epochs) if self.pruner is not None else ()
        self.running[h] = [trial]
        self.driver.submit(RunJob(h, cfg.to_dict(), tags, self.data, self.runtime, self.checkpoints[h]))
        return True

    def _settled(self, h: str, outcome: str) -> None:
        from optuna.trial import TrialState
        trials = self.running.pop(h)
        if outcome in ("busy", "done"):
            stored = self._stored_answer(h) if outcome == "done" else None
            if stored is None:                        # another sweep holds it: not evaluated here
                self.summary.busy.append(h)
                for t in trials:
                    self.study.tell(t, state=TrialState.FAIL)
                return
            state, values, source = *stored, "store"
        elif outcome == "pruned":
            state, values, source = TrialState.PRUNED, None, "trained"
        elif outcome == "failed":
            state, values, source = TrialState.FAIL, None, "trained"
        else:
            rec = self.store.run(h)
            acc = 100.0 * rec.test_acc if outcome == "finished" and rec.test_acc is not None else 0.0
            state, values, source = TrialState.COMPLETE, objective_values(self.objectives, acc, self.costs[h]), \
                "trained"
        self.evaluated[h] = (state, values)
        if source == "trained":
            self.summary.trained[h] = outcome
        for t in trials:
            self._answer(t, h, state, values, source)

    def size(self) -> int:
        return len(self.evaluated)

    def run(self, trials: int, progress: bool = True) -> SearchSummary:
        from tqdm.auto import tqdm
        self.resume()
        target = min(trials, self.space.size)
        if target < trials:
            self.summary.note = f"the space has only {int(self.space.size)} configurations"
        bar = tqdm(total=target, initial=min(self.size(), target), desc=f"{self.space.name}: trials",
                   disable=not progress, unit="trial")
        idle_proposals = 0
        limit = max(200, 20 * target)   # proposals in a row that add nothing: the sampler is stuck
        try:
            while self.size() < target:
                while self.size() + self.driver.in_flight < target and \
                        self.driver.in_flight < self.backend.slots() and idle_proposals < limit:
                    before = self.size()
                    if self.ask():
                        idle_proposals = 0
                    else:
                        idle_proposals += 1
                    bar.update(self.size() - before)
                if not self.driver.in_flight:
                    if idle_proposals >= limit:
                        self.summary.note = f"stopped after {limit} proposals in a row of configurations " \
                                            "already evaluated"
                        break
                    continue
                for h, outcome in self.driver.poll(timeout=1.0):
                    before = self.size()
                    self._settled(h, outcome)
                    bar.update(self.size() - before)
        finally:
            bar.close()
            self.backend.close()
        self.summary.size = self.size()
        return self.summary


def run_search(space, store_path, objectives, trials: int, *, runtime: Runtime | None = None,
               executor: str = "local", scheduler=None, client=None, data=None, sampler: str = "tpe",
               seed: int = 0, pruner: Pruner | None = Pruner(), journal=None, progress: bool = True,
               cost_fn=default_cost) -> SearchSummary:
    """Search ``space`` (a Space or a space file) for the front of ``objectives`` with ``trials``
    distinct configurations, training into the store at ``store_path``; resumable."""
    from .remote import make_backend
    from .sweep import code_version
    if not isinstance(space, Space):
        space = load_space(space)
    objectives = parse_objectives(objectives)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise bad_value("trials", trials, "an integer >= 1")
    if sampler not in SAMPLERS:
        raise bad_value("sampler", sampler, ", ".join(SAMPLERS))
    runtime = runtime or Runtime()
    if executor == "dask":
        worker_runtime = Runtime(runtime.threads or 1, runtime.backend)
    elif executor == "local":
        worker_runtime = runtime.per_worker(os.cpu_count() or 1) if runtime.workers > 1 else runtime
    else:
        raise bad_value("executor", executor, "local, dask")
    store_path = Path(store_path).resolve()
    journal = Path(journal) if journal else journal_path(store_path)
    _check_cost(space, cost_fn)
    with _Lock(journal):
        study = open_study(space, objectives, journal, make_sampler(sampler, seed))
        # How this study is searched (the report names it; a rerun with other settings records its own).
        study.set_user_attr("sampler", f"{sampler} (seed {seed})")
        study.set_user_attr("pruning", f"asynchronous successive halving, eta {pruner.eta}, first rung at epoch "
                                       f"{pruner.min_epochs}" if pruner is not None else "off")
        with Store(store_path) as store:
            backend = make_backend(executor, runtime, client=client, scheduler=scheduler)
            search = Search(space, objectives, study, store, backend, pruner=pruner, runtime=worker_runtime,
                            data=data, code_version=code_version(), cost_fn=cost_fn)
            summary = search.run(trials, progress=progress)
    summary.journal = str(journal)
    return summary


def _check_cost(space: Space, cost_fn) -> None:
    """The cost model prices the space's first configuration (else one clear error now)."""
    from hw_models.errors import CostModelError
    from ..errors import LowbitError
    cfg = space.config(space.first())
    try:
        cost_fn(cfg)
    except (LowbitError, CostModelError) as exc:
        raise ConfigError(f"space {space.name}: the cost model cannot price its runs ({exc})") from None


def train_grid(space, store_path, *, runtime: Runtime | None = None, executor: str = "local", scheduler=None,
               client=None, data=None, progress: bool = True):
    """Train the space's full grid into the store (a resumable sweep)."""
    from .sweep import run_sweep
    if not isinstance(space, Space):
        space = load_space(space)
    return run_sweep(space.grid(), store_path, runtime=runtime, executor=executor, scheduler=scheduler,
                     client=client, data=data, progress=progress)
