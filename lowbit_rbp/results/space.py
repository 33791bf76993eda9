"""Space files: a base run and the knobs a design-space search turns (``lowbit-rbp search``).

    name = "srbp_formats"              # optional; default: the file's stem
    description = "..."                # optional

    [base]                             # a partial run config (same sections as run files)
    channel.algorithm = "srbp"
    train.epochs = 3

    [knobs]                            # dotted config fields -> candidates or a range
    "formats.error" = ["log:alpha=2,bits=2", "log:alpha=2,bits=3", "float32"]   # candidate values
    "formats.signal" = { template = "log:alpha=2,bits={}", low = 2, high = 6 }  # integers 2..6 in a spec
    "channel.feedback" = { template = "sparse:n={}", low = 1, high = 16, log = true }
    "train.lr" = { low = 0.01, high = 0.3, log = true }                          # a float range

    [search]                           # optional defaults of the command line (lowbit_rbp.results.search)

A configuration is base + one value per knob, built by ``RunConfig``'s own constructor, so its
config hash is the one a sweep of the same settings gives (``Space.grid`` is that sweep).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import RunConfig, from_dict, read_toml
from ..errors import ConfigError, bad_value
from .sweep import Sweep, _check_key, _set, base_table, expand_sweep

SPACE_KEYS = ("name", "description", "base", "knobs", "search")
# The [search] table's keys and the type of each value (what they mean: lowbit_rbp.results.search).
SEARCH_TYPES = {"objectives": (list, "a list of KEY:max|min strings"), "trials": (int, "an integer >= 1"),
                "sampler": (str, "tpe, nsga2 or random"), "seed": (int, "an integer"),
                "eta": (int, "an integer >= 2"), "min_epochs": (int, "an integer >= 1"), "prune": (bool, "true or false")}
SEARCH_KEYS = tuple(SEARCH_TYPES)
RANGE_KEYS = ("low", "high", "step", "log", "template")


@dataclass(frozen=True)
class Knob:
    """One config field the search turns: candidate ``values``, or a range ``low..high`` (ints
    when both ends are integers; ``step``, ``log``), optionally written into a spec ``template``
    (``"log:alpha=2,bits={}"``)."""

    key: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    template: str | None = None

    @property
    def is_range(self) -> bool:
        return not self.values

    @property
    def integer(self) -> bool:
        return self.is_range and all(isinstance(v, int) and not isinstance(v, bool)
                                     for v in (self.low, self.high, self.step or 1))

    def value(self, raw):
        """The config value of a sampled ``raw`` value (a range value put into its template)."""
        return self.template.format(raw) if self.template else raw

    def suggest(self, trial):
        """Ask an Optuna trial for this knob's raw value (the parameter is named by the key)."""
        if self.values:
            return trial.suggest_categorical(self.key, list(self.values))
        if self.integer:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list:
        """Every raw value of a grid over this knob (candidates, or an integer range step by step)."""
        if self.values:
            return list(self.values)
        if not self.integer:
            raise ConfigError(f"knob {self.key}: a float range has no grid; give candidate values "
                              "(a list) or an integer range to train the grid")
        return list(range(self.low, self.high + 1, self.step or 1))

    @property
    def size(self) -> float:
        try:
            return len(self.grid_values())
        except ConfigError:
            return math.inf


def _parse_knob(where: str, key: str, spec) -> Knob:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where} knob {key}: empty list of candidates; give at least one value")
        if not all(isinstance(v, (str, int, float, bool)) for v in spec):
            raise bad_value(f"{where} knob {key}", spec, "a list of strings or numbers")
        if len(set(map(repr, spec))) != len(spec):
            raise bad_value(f"{where} knob {key}: repeated candidates", spec, "distinct values")
        return Knob(key, tuple(spec))
    if not isinstance(spec, dict):
        raise bad_value(f"{where} knob {key}", spec, "a list of candidate values or a range table "
                        "{ low = L, high = H[, step = S][, log = true][, template = \"...{}...\"] }")
    unknown = [k for k in spec if k not in RANGE_KEYS]
    if unknown:
        raise bad_value(f"{where} knob {key}: unknown range key", unknown[0], ", ".join(RANGE_KEYS))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where} knob {key}: a range needs low and high, e.g. {{ low = 2, high = 8 }}")
    low, high, step = spec["low"], spec["high"], spec.get("step")
    for name, v in (("low", low), ("high", high), ("step", step)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise bad_value(f"{where} knob {key} {name}", v, "a finite number")
    if low > high:
        raise ConfigError(f"{where} knob {key}: empty range: low {low!r} > high {high!r}")
    if step is not None and step <= 0:
        raise bad_value(f"{where} knob {key} step", step, "a number > 0")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise bad_value(f"{where} knob {key} log", log, "true or false")
    if log and low <= 0:
        raise bad_value(f"{where} knob {key} low", low, "a number > 0 with log = true")
    template = spec.get("template")
    if template is not None and (not isinstance(template, str) or template.count("{}") != 1):
        raise bad_value(f"{where} knob {key} template", template, "a string with one {} where the value goes")
    return Knob(key, (), low, high, step, log, template)


@dataclass
class Space:
    """A parsed space file: ``base`` (nested, as TOML gives it) and its knobs."""

    name: str
    base: dict
    knobs: list[Knob]
    defaults: dict = field(default_factory=dict)
    description: str = ""
    source: str = ""

    def config(self, raw: dict) -> RunConfig:
        """The run config of knob raw values ``raw`` (by knob key)."""
        d = copy.deepcopy(self.base)
        for k in self.knobs:
            _set(d, k.key, k.value(raw[k.key]))
        return from_dict(d)

    def first(self) -> dict:
        """Raw values of a first configuration: every knob's first candidate or its range's low end."""
        return {k.key: (k.values[0] if k.values else k.low) for k in self.knobs}

    @property
    def size(self) -> float:
        return math.prod(k.size for k in self.knobs)

    def grid(self) -> Sweep:
        """The full grid of the space as a sweep (the same config hashes as the search's trials)."""
        grid = {k.key: [k.value(v) for v in k.grid_values()] for k in self.knobs}
        return expand_sweep({"name": f"{self.name}-grid", "base": self.base, "grid": grid}, source=self.source)


def parse_space(data: dict, name: str = "space", source: str = "") -> Space:
    """Validate a parsed space table: keys, knobs (known fields, non-empty candidates and ranges,
    every candidate and range end a valid config on the base), defaults."""
    where = f"space {source or name}"
    for k in data:
        if k not in SPACE_KEYS:
            raise bad_value(f"{where}: unknown key", k, ", ".join(SPACE_KEYS))
    base_keys = base_table(data, where)
    base = data.get("base", {})
    knobs_table = data.get("knobs")
    if not isinstance(knobs_table, dict) or not knobs_table:
        raise ConfigError(f"{where}: [knobs] must be a non-empty table of dotted config fields -> candidate "
                          "lists or ranges")
    knobs = []
    for key, spec in _knob_items(knobs_table):
        _check_key(f"{where} [knobs]", key)
        if key in base_keys:
            raise ConfigError(f"{where}: {key} is set in [base] and is a knob; keep it in one of them")
        knobs.append(_parse_knob(where, key, spec))
    defaults = data.get("search", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: [search] must be a table with keys " + ", ".join(SEARCH_KEYS))
    for k, v in defaults.items():
        if k not in SEARCH_KEYS:
            raise bad_value(f"{where} [search]: unknown key", k, ", ".join(SEARCH_KEYS))
        kind, allowed = SEARCH_TYPES[k]
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise bad_value(f"{where} [search] {k}", v, allowed)
    space = Space(str(data.get("name", name)), base, knobs, defaults, str(data.get("description", "")), source)
    _check_candidates(where, space)
    return space


def _knob_items(table: dict):
    """Knob keys and specs: a quoted dotted key, or a section table of them (``[knobs.formats]``)."""
    for key, spec in table.items():
        if isinstance(spec, dict) and not any(k in RANGE_KEYS for k in spec):
            for sub, sub_spec in spec.items():
                yield f"{key}.{sub}", sub_spec
        else:
            yield key, spec


def _check_candidates(where: str, space: Space) -> None:
    """Every candidate (every end of a range) of each knob makes a valid config with the base and
    the first candidate of the other knobs: an error names the knob and the value."""
    first = space.first()
    for k in space.knobs:
        for raw in (k.values or (k.low, k.high)):
            try:
                space.config({**first, k.key: raw})
            except (ConfigError, KeyError, IndexError, ValueError) as exc:
                raise ConfigError(f"{where} knob {k.key} = {k.value(raw)!r}: {exc}") from None


def load_space(path) -> Space:
    p = Path(path)
    return parse_space(read_toml(p, "space file"), name=p.stem, source=str(p))
