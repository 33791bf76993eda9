"""Run configuration: a frozen dataclass tree read from TOML and overridden by ``section.key=value``.

The config holds parsed objects, not spec strings: number formats (``lowbit_rbp.core.formats``) and
the feedback spec (``lowbit_rbp.core.feedback``); ``channel.rule`` is the algorithm's descriptor
(``lowbit_rbp.core.algorithms``). Spec strings are parsed once, where a config is built, and
written back in their canonical form by ``to_dict``, so two specs that mean the same thing hash the
same. ``RunConfig.validate()`` (called by every constructor here) raises one ``ConfigError``
naming the bad field, its value and what is allowed. ``config_hash()`` keys results in the store.

How a run is executed (threads, kernel backend, worker processes) is not part of the config: see
``lowbit_rbp.core.runtime``.
"""
from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..errors import ConfigError, bad_value
from .algorithms import NAMES as ALGORITHMS, Algorithm, algorithm as algorithm_descriptor, check_combination
from .datapath import check_datapath
from .feedback import FeedbackSpec, parse_feedback_spec
from .formats import Float32, Format, parse_format

ACTIVATIONS = ("tanh", "relu", "logistic", "linear")
DATASETS = ("mnist", "cifar10", "cifar10-subset")
UPDATE_MODES = ("full", "sign", "magnitude")
QUANTIZE_AT = ("before_fprime", "after_fprime")
INITS = ("glorot_normal", "glorot_uniform")
FORMAT_FIELDS = ("error", "signal", "feedback", "update", "accumulator", "weights", "activations",
                 "channel_accumulator", "fprime", "momentum")
# Settings that moved out of the run config into the runtime: stored configs written before the
# move still carry them (dropped when read back); in a run file they are an error that says where
# they went.
RUNTIME_KEYS = ("threads", "parallel", "backend")
# Fields a stored config may carry from older versions, with the one value it can have been run
# with (the Brevitas forward, model.weight_bits/act_bits, gave way to formats.weights/activations).
RETIRED = {("model", "weight_bits"): 0, ("model", "act_bits"): 0}
# Fields added after results were first stored carry ``LATER``: at their default they are left out
# of the hash, so every stored run keeps its key.
LATER = {"later": True}


def _later(default):
    return field(default=default, metadata=LATER)


@dataclass(frozen=True)
class ModelConfig:
    dataset: str = "mnist"
    # Hidden layer sizes; input and output sizes come from the dataset.
    hidden: tuple[int, ...] = (100, 100, 100, 100)
    activation: str = "tanh"
    init: str = "glorot_normal"
    # Conv blocks before the hidden dense layers: output channels of each (empty = an MLP). Each
    # block: conv conv_kernel x conv_kernel, stride 1, same padding, activation, max-pool
    # pool x pool with stride pool_stride (the paper's CIFAR-10 net: [64, 64, 64], 5, 3, 2).
    conv: tuple[int, ...] = _later(())
    conv_kernel: int = _later(5)
    pool: int = _later(3)
    pool_stride: int = _later(2)


@dataclass(frozen=True)
class ChannelConfig:
    algorithm: str = "bp"
    # Multiply the received signal by f'(S^h) (the paper's "with f'"); False gives the no-f' variants.
    fprime: bool = True
    # Feedback-matrix spec for the random algorithms (see lowbit_rbp.core.feedback).
    feedback: FeedbackSpec = FeedbackSpec()
    # Draw fresh feedback matrices every minibatch (the paper's "stochasticity" ablation).
    resample: bool = False
    # Learning-channel dropout probability, surviving signals scaled by 1/(1-p).
    dropout: float = 0.0
    # Hidden-layer updates: full, sign only, or magnitude only.
    update: str = "full"
    # A different random feedback weight for every forward weight instead of every neuron.
    per_weight: bool = False
    # Number of top layers held fixed at their initial values.
    fixed_top: int = 0
    # Learning rate of the adaptive channel (ARBP/ASRBP) as a multiple of the forward rate.
    adaptive_lr_scale: float = 1.0

    def __post_init__(self):
        # A spec string (as TOML or a caller gives it) becomes the spec object.
        object.__setattr__(self, "feedback", _parsed("channel.feedback", self.feedback, parse_feedback_spec))

    @property
    def rule(self) -> Algorithm:
        """The descriptor of ``algorithm`` (lowbit_rbp.core.algorithms)."""
        return algorithm_descriptor(self.algorithm)


@dataclass(frozen=True)
class FormatsConfig:
    # T - O^L as it enters the channel.
    error: Format = Float32()
    # Every signal a layer sends on (BP/RBP quantize before propagating, so errors accumulate).
    signal: Format = Float32()
    # The feedback weights C^h.
    feedback: Format = Float32()
    # The per-example weight update, before it is summed over the minibatch.
    update: Format = Float32()
    # The accumulator of the update.
    accumulator: Format = Float32()
    # Quantize the received signal J^h before multiplying by f' or the product after.
    quantize_at: str = "before_fprime"
    # The weights (and biases) as stored: every update is added and rounded into this format (its
    # rounding, saturation or wrap) and the forward pass reads them as stored.
    weights: Format = _later(Float32())
    # Keep float32 master weights that the updates go to, and let the forward read them rounded into
    # ``weights`` (the straight-through shadow of quantization-aware training) instead.
    weight_shadow: bool = _later(False)
    # Every hidden activation O^h = f(S^h) as the next layer, f' and the update read it.
    activations: Format = _later(Float32())
    # The accumulator of the channel's products J = R @ B: float32 (a float matrix product) or a
    # fixed-point accumulator that saturates (or wraps) at every add, summing in ascending sender
    # order: the bit-true channel (lowbit_rbp.core.datapath).
    channel_accumulator: Format = _later(Float32())
    # f' as the channel multiplies by it: float32, or rounded into a fixed-point format ...
    fprime: Format = _later(Float32())
    # ... and read from a lookup table of this many entries indexed by the forward output (0: computed).
    fprime_lut: int = _later(0)
    # The momentum state (velocity) as stored, when train.momentum is on.
    momentum: Format = _later(Float32())

    def __post_init__(self):
        # Spec strings become format objects; their canonical spec (every option named) is what
        # ``to_dict`` writes, so a stored config keeps its meaning if a format default changes.
        for name in FORMAT_FIELDS:
            object.__setattr__(self, name, _parsed(f"formats.{name}", getattr(self, name), parse_format))

    @property
    def quantized_update(self) -> bool:
        """Each example's update is quantized (or accumulated in a fixed-point accumulator) before
        the minibatch sum: the fused per-example kernel runs instead of one matrix product."""
        return self.update.kind != "float" or self.accumulator.kind != "float"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 100
    lr: float = 0.1
    # Keras-style time decay: lr_t = lr / (1 + lr_decay * t), t = updates so far.
    lr_decay: float = 1e-6
    momentum: float = 0.0
    seed: int = 0
    # Use only the first N training examples (0 = all); for quick runs and tests.
    train_subset: int = 0
    test_subset: int = 0
    # Image augmentation (conv nets): random translation up to this fraction of the size each way
    # (edge pixels repeated), horizontal flip with this probability.
    translate: float = _later(0.0)
    hflip: float = _later(0.0)


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    formats: FormatsConfig = field(default_factory=FormatsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""

    def validate(self) -> "RunConfig":
        _validate(self)
        return self

    def to_dict(self) -> dict:
        """Plain data (TOML/JSON-ready): format and feedback objects as their canonical specs."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = {g.name: _plain(getattr(value, g.name)) for g in fields(value)} \
                if f.name in SECTIONS else value
        return out

    def config_hash(self) -> str:
        """Hash of everything that changes a result (the display name does not)."""
        d = self.to_dict()
        d.pop("name")
        for section, cls in SECTIONS.items():
            for f in fields(cls):
                if f.metadata.get("later") and getattr(getattr(self, section), f.name) == f.default:
                    del d[section][f.name]
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        return self.name or describe(self)


SECTIONS = {"model": ModelConfig, "channel": ChannelConfig, "formats": FormatsConfig, "train": TrainConfig}
TOP_LEVEL = ("name",)


def _parsed(where: str, value, parse):
    """``parse(value)`` (an object passes through), a failure named by its field."""
    try:
        return parse(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    return value.spec if hasattr(value, "spec") else value


def describe(cfg: RunConfig) -> str:
    c = cfg.channel
    parts = [c.algorithm]
    if not c.fprime:
        parts.append("nofprime")
    if c.feedback != FeedbackSpec() and c.rule.random_feedback:
        parts.append(c.feedback.spec)
    for name in ("error", "signal", "feedback", "update", "accumulator", "channel_accumulator", "fprime",
                 "weights", "activations", "momentum"):
        fmt = getattr(cfg.formats, name)
        if fmt.kind != "float":
            parts.append(f"{name}={fmt.spec}")
    if cfg.formats.fprime_lut:
        parts.append(f"fprime_lut={cfg.formats.fprime_lut}")
    if c.dropout:
        parts.append(f"dropout={c.dropout}")
    return " ".join(parts)


def _type_of(cls, name):
    return {f.name: f.type for f in fields(cls)}[name]


def _coerce(where: str, annot: str, value):
    """Coerce a TOML or command-line value to the field's declared type, or say why not."""
    try:
        if annot == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
                return value.lower() in ("1", "true", "yes")
            raise ValueError
        if annot == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if annot == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if annot in ("str", "Format", "FeedbackSpec"):
            # Specs stay strings here; the section parses them into objects (naming the field).
            if not isinstance(value, str):
                raise ValueError
            return value
        if annot.startswith("tuple"):
            if isinstance(value, str):
                value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
            return tuple(_coerce(where, "int", float(v) if isinstance(v, str) else v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: got {value!r}; expected a value of type {annot}") from None
    raise AssertionError(annot)


def from_dict(data: dict) -> RunConfig:
    """Build a validated RunConfig from nested dicts (as TOML gives), rejecting unknown keys."""
    kwargs = {}
    for key, value in data.items():
        if key in RUNTIME_KEYS:
            raise ConfigError(f"{key!r} is not part of a run config any more: it says how a run is executed, "
                              f"not what it computes; give it on the command line (--{key}) instead")
        if key in SECTIONS:
            cls = SECTIONS[key]
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table of settings, got {value!r}")
            known = [f.name for f in fields(cls)]
            sub = {}
            for k, v in value.items():
                if k not in known:
                    raise bad_value(f"unknown config key '{key}.{k}'", k, ", ".join(f"{key}.{n}" for n in known))
                sub[k] = _coerce(f"{key}.{k}", _type_of(cls, k), v)
            kwargs[key] = cls(**sub)
        elif key in TOP_LEVEL:
            kwargs[key] = _coerce(key, _type_of(RunConfig, key), value)
        else:
            allowed = ", ".join([*SECTIONS, *TOP_LEVEL])
            raise bad_value("unknown config section or key", key, allowed)
    return RunConfig(**kwargs).validate()


def from_stored(data: dict) -> RunConfig:
    """A config as a results store or run file recorded it (older records also carry the runtime
    settings, which never changed a result, and retired fields at the value they must have had)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items() if k not in RUNTIME_KEYS}
    for (section, key), value in RETIRED.items():
        if section in data and key in data[section]:
            if data[section].pop(key) != value:
                raise ConfigError(f"stored config sets {section}.{key}, which this version no longer supports "
                                  "(the forward precision is formats.weights / formats.activations)")
    return from_dict(data)


def apply_overrides(cfg: RunConfig, overrides) -> RunConfig:
    """Apply ``section.key=value`` strings (command-line overrides) to a config."""
    data = cfg.to_dict()
    for item in overrides or ():
        key, eq, raw = item.partition("=")
        if not eq:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. channel.algorithm=srbp")
        path = key.strip().split(".")
        if len(path) == 1 and path[0] in RUNTIME_KEYS:
            raise ConfigError(f"override {item!r}: {path[0]} is a runtime setting, not part of the run config; "
                              f"use --{path[0]}")
        if len(path) == 1 and path[0] in TOP_LEVEL:
            data[path[0]] = _parse_scalar(raw)
            continue
        if len(path) != 2 or path[0] not in SECTIONS:
            raise bad_value("override key", key, "section.key with section in " + ", ".join(SECTIONS)
                            + " or one of " + ", ".join(TOP_LEVEL))
        if path[1] not in data[path[0]]:
            known = ", ".join(f"{path[0]}.{f.name}" for f in fields(SECTIONS[path[0]]))
            raise bad_value(f"unknown config key '{key}'", key, known)
        data[path[0]][path[1]] = _parse_scalar(raw)
    return from_dict(data)


def _parse_scalar(raw: str):
    raw = raw.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare string such as srbp or sparse:n=2


def read_toml(path, what: str = "config file") -> dict:
    """Read a TOML file, or raise one ConfigError saying it is missing or invalid."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {str(p)!r} does not exist")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {str(p)!r} is not valid TOML: {exc}") from None


def load_config(path=None, overrides=()) -> RunConfig:
    """Read a TOML run file (or start from defaults) and apply overrides."""
    data = read_toml(path) if path is not None else {}
    return apply_overrides(from_dict(data), overrides)


def with_changes(cfg: RunConfig, **sections) -> RunConfig:
    """``with_changes(cfg, channel={"algorithm": "srbp"})``: a validated modified copy."""
    updated = {k: replace(getattr(cfg, k), **v) if isinstance(v, dict) else v for k, v in sections.items()}
    return replace(cfg, **updated).validate()


def _validate(cfg: RunConfig) -> None:
    m, c, f, t = cfg.model, cfg.channel, cfg.formats, cfg.train
    if m.dataset not in DATASETS:
        raise bad_value("model.dataset", m.dataset, ", ".join(DATASETS))
    if any((not isinstance(n, int)) or n < 1 for n in m.hidden):
        raise bad_value("model.hidden", list(m.hidden), "a list of layer sizes, each an integer >= 1")
    if any((not isinstance(n, int)) or n < 1 for n in m.conv):
        raise bad_value("model.conv", list(m.conv), "a list of conv output channel counts, each an integer >= 1")
    if m.conv and m.dataset == "mnist":
        raise bad_value("model.conv", list(m.conv), "[] for mnist (conv nets are for the image data sets "
                        "cifar10, cifar10-subset)")
    if m.conv_kernel < 1 or m.conv_kernel % 2 == 0:
        raise bad_value("model.conv_kernel", m.conv_kernel, "an odd integer >= 1 (same padding)")
    if m.pool < 1 or m.pool_stride < 1:
        raise bad_value("model.pool/pool_stride", (m.pool, m.pool_stride), "integers >= 1")
    if m.activation not in ACTIVATIONS:
        raise bad_value("model.activation", m.activation, ", ".join(ACTIVATIONS))
    if m.init not in INITS:
        raise bad_value("model.init", m.init, ", ".join(INITS))
    if c.algorithm not in ALGORITHMS:
        raise bad_value("channel.algorithm", c.algorithm, ", ".join(ALGORITHMS))
    if not 0.0 <= c.dropout < 1.0:
        raise bad_value("channel.dropout", c.dropout, "a probability in [0, 1)")
    if c.update not in UPDATE_MODES:
        raise bad_value("channel.update", c.update, ", ".join(UPDATE_MODES))
    n_layers = len(m.conv) + len(m.hidden) + 1
    if not 0 <= c.fixed_top < n_layers:
        raise bad_value("channel.fixed_top", c.fixed_top, f"0..{n_layers - 1} (the net has {n_layers} weight layers)")
    if not (math.isfinite(c.adaptive_lr_scale) and c.adaptive_lr_scale >= 0):
        raise bad_value("channel.adaptive_lr_scale", c.adaptive_lr_scale, "a finite number >= 0")
    for name in ("accumulator", "weights", "channel_accumulator", "fprime", "momentum"):
        fmt = getattr(f, name)
        if fmt.kind not in ("float", "fixed"):
            raise bad_value(f"formats.{name}", fmt.spec, "float32 or a fixed-point format fixed:w=W,f=F "
                            "(a log format cannot accumulate)")
    if f.weight_shadow and f.weights.kind == "float":
        raise bad_value("formats.weight_shadow", True, "false unless formats.weights is a fixed-point format "
                        "(the shadow is the float32 copy of quantized weights)")
    if f.quantize_at not in QUANTIZE_AT:
        raise bad_value("formats.quantize_at", f.quantize_at, ", ".join(QUANTIZE_AT))
    if t.epochs < 1:
        raise bad_value("train.epochs", t.epochs, "an integer >= 1")
    if t.batch_size < 1:
        raise bad_value("train.batch_size", t.batch_size, "an integer >= 1")
    if not (math.isfinite(t.lr) and t.lr > 0):
        raise bad_value("train.lr", t.lr, "a finite number > 0")
    if not (math.isfinite(t.lr_decay) and t.lr_decay >= 0):
        raise bad_value("train.lr_decay", t.lr_decay, "a finite number >= 0")
    if not 0 <= t.momentum < 1:
        raise bad_value("train.momentum", t.momentum, "a number in [0, 1)")
    if t.seed < 0:
        raise bad_value("train.seed", t.seed, "an integer >= 0")
    if not 0.0 <= t.translate < 0.5:
        raise bad_value("train.translate", t.translate, "a fraction in [0, 0.5)")
    if not 0.0 <= t.hflip <= 1.0:
        raise bad_value("train.hflip", t.hflip, "a probability in [0, 1]")
    if t.train_subset < 0 or t.test_subset < 0:
        raise bad_value("train.train_subset/test_subset", (t.train_subset, t.test_subset), "integers >= 0 (0 = all)")
    check_combination(cfg, layer_kinds(m))
    check_datapath(cfg, layer_kinds(m))


def layer_kinds(m: ModelConfig) -> list[str]:
    """The kind of every weight layer of the net ``m`` describes: conv blocks, then dense layers."""
    return ["conv"] * len(m.conv) + ["dense"] * (len(m.hidden) + 1)
