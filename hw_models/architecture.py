"""Architecture templates as data (``arch/*.toml``): clock, processing elements, SRAM banks, registers,
LFSRs, leakage, wires, DRAM, the schedule and node scaling, each figure with its source.

    arch = load_architecture("default45nm")                      # or a TOML path, a dict, an Architecture
    arch = load_architecture("default45nm", {"sram.capacity": "256 KiB", "schedule.pipeline": "examples"})
    arch.at_node(65)                                              # areas and leakage moved to 65 nm

Quantities are strings with a unit ("200 MHz", "8 KiB", "0.45 um2/bit"); ``UNITS`` lists the units each
kind of field accepts. A missing field, a negative or zero size, an unknown unit or an unknown choice is
an ``ArchitectureError`` naming the field, the value and what is allowed. Format: SCHEMA.md.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import CostModelError

ARCH_DIR = Path(__file__).parent / "arch"
DEFAULT_ARCH = "default45nm"
DATAFLOWS = ("per_example", "minibatch_tiled", "online")
PIPELINES = ("none", "examples")

# Units each kind of quantity accepts, as factors to the canonical unit (first comment).
UNITS = {
    "frequency": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},                       # Hz
    "size": {"bit": 1.0, "Kibit": 1024.0, "Mibit": 1024.0 ** 2, "B": 8.0, "KiB": 8.0 * 1024,
             "MiB": 8.0 * 1024 ** 2, "GiB": 8.0 * 1024 ** 3, "kB": 8e3, "KB": 8e3, "MB": 8e6, "GB": 8e9},  # bits
    "area": {"nm2": 1e-6, "um2": 1.0, "mm2": 1e6},                                      # um^2
    "area_per_bit": {"nm2/bit": 1e-6, "um2/bit": 1.0},                                  # um^2 per bit
    "power_per_bit": {"pW/bit": 1e-3, "nW/bit": 1.0, "uW/bit": 1e3},                    # nW per bit
    "power_per_area": {"pW/um2": 1e-3, "nW/um2": 1.0, "uW/um2": 1e3, "uW/mm2": 1e-3, "mW/mm2": 1.0},  # nW/um^2
    "energy_per_bit": {"fJ/bit": 1e-3, "pJ/bit": 1.0, "nJ/bit": 1e3},                   # pJ per bit
    "bandwidth": {"bit/s": 1.0, "Mbit/s": 1e6, "Gbit/s": 1e9, "B/s": 8.0, "MB/s": 8e6, "GB/s": 8e9},  # bit/s
    "length": {"nm": 1e-3, "um": 1.0, "mm": 1e3},                                       # um
}

# section -> {field: kind}; kinds: a UNITS key, "int" (integer >= 1), "int0" (>= 0), "number" (> 0),
# "text", "bool", "auto_int" ("auto" or an integer >= 1), "auto_size" ("auto" or a size), "pe_count"
# (an integer >= 1 or a list of them), "choice:<a>|<b>", "factors" (table of node nm = factor > 0).
FIELDS = {
    "meta": {"name": "text", "version": "text", "node_nm": "number", "vdd_v": "number", "source": "text"},
    "clock": {"frequency": "frequency", "source": "text"},
    "pe": {"per_layer": "pe_count", "ops_per_cycle": "int", "mult_bits": "auto_int", "add_bits": "auto_int",
           "source": "text"},
    "area": {"node_nm": "number", "int_add_32b": "area", "int_mult_32x32": "area", "register_bit": "area",
             "source": "text"},
    "sram": {"capacity": "auto_size", "bank_size": "size", "bank_width_bits": "int", "ports": "int",
             "area_per_bit": "area_per_bit", "leakage_per_bit": "power_per_bit", "node_nm": "number",
             "source": "text"},
    "registers": {"accumulators_per_pe": "int", "source": "text"},
    "lfsr": {"state_bits": "int", "taps": "int0", "bits_per_cycle": "int", "source": "text"},
    "leakage": {"logic_per_area": "power_per_area", "node_nm": "number", "source": "text"},
    "wires": {"pitch": "length", "layers": "int", "source": "text"},
    "dram": {"enabled": "bool", "energy_per_bit": "energy_per_bit", "bandwidth": "bandwidth", "source": "text"},
    "schedule": {"dataflow": "choice:" + "|".join(DATAFLOWS), "pipeline": "choice:" + "|".join(PIPELINES),
                 "overlap_update": "bool", "source": "text"},
    "node_scaling": {"area": "factors", "energy": "factors", "source": "text"},
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z][A-Za-z0-9/]*)\s*$")


class ArchitectureError(CostModelError):
    """An architecture template (or an override of one) is invalid."""


def known_architectures() -> list[str]:
    return sorted(p.stem for p in ARCH_DIR.glob("*.toml"))


def parse_quantity(value, kind: str, where: str) -> float:
    """``"200 MHz"`` -> 2e8 (the canonical unit of ``kind``); a clear error for anything else."""
    units = UNITS[kind]
    allowed = ", ".join(units)
    if not isinstance(value, str):
        raise ArchitectureError(f"architecture {where}: got {value!r}; give a number with its unit, one of: {allowed}")
    m = _QUANTITY.match(value)
    if not m:
        raise ArchitectureError(f"architecture {where}: {value!r} is not '<number> <unit>'; units: {allowed}")
    number, unit = float(m.group(1)), m.group(2)
    if unit not in units:
        raise ArchitectureError(f"architecture {where}: unknown unit {unit!r} in {value!r}; allowed: {allowed}")
    if not math.isfinite(number) or number <= 0:
        raise ArchitectureError(f"architecture {where}: {value!r} must be > 0 (a negative or zero {kind} is meaningless)")
    return number * units[unit]


def _check_field(section: str, name: str, kind: str, value, where: str):
    """Validated value of one field (canonical units for quantities)."""
    at = f"{where} field '{section}.{name}'"
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise ArchitectureError(f"architecture {at}: got {value!r}; allowed: a non-empty string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ArchitectureError(f"architecture {at}: got {value!r}; allowed: true or false")
        return value
    if kind.startswith("choice:"):
        options = kind.split(":", 1)[1].split("|")
        if value not in options:
            raise ArchitectureError(f"architecture {at}: got {value!r}; allowed: {', '.join(options)}")
        return value
    if kind in ("int", "int0"):
        low = 1 if kind == "int" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ArchitectureError(f"architecture {at}: got {value!r}; allowed: an integer >= {low}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ArchitectureError(f"architecture {at}: got {value!r}; allowed: a finite number > 0")
        return float(value)
    if kind == "auto_int":
        return None if value == "auto" else _check_field(section, name, "int", value, where)
    if kind == "auto_size":
        return None if value == "auto" else parse_quantity(value, "size", at)
    if kind == "pe_count":
        if isinstance(value, list):
            if not value:
                raise ArchitectureError(f"architecture {at}: an empty list; give an integer or one integer per layer")
            return tuple(_check_field(section, f"{name}[{i}]", "int", v, where) for i, v in enumerate(value))
        return _check_field(section, name, "int", value, where)
    if kind == "factors":
        if not isinstance(value, dict) or not value:
            raise ArchitectureError(f"architecture {at}: got {value!r}; allowed: a table of node nm = factor")
        out = {}
        for k, v in value.items():
            try:
                node = float(k)
            except ValueError:
                raise ArchitectureError(f"architecture {at}: key {k!r} is not a node in nm") from None
            out[node] = _check_field(section, f"{name}.{k}", "number", v, where)
        return out
    return parse_quantity(value, kind, at)


def _node_factor(table: dict, node: float, what: str, name: str) -> float:
    if float(node) not in table:
        raise ArchitectureError(f"architecture {name!r}: no node_scaling.{what} factor for {node:g} nm; the table "
                                f"has {', '.join(f'{k:g}' for k in sorted(table))} nm")
    return table[float(node)]


@dataclass(frozen=True)
class Architecture:
    """A validated template in canonical units: Hz, bits, um^2, nW, pJ, bit/s, um."""

    name: str
    version: str
    node_nm: float
    vdd_v: float
    clock_hz: float
    pe_per_layer: object           # int, or a tuple with one entry per weight layer
    ops_per_cycle: int
    mult_bits: int | None          # None: sized per tile to its widest multiply
    add_bits: int | None
    int_add_um2_per_bit: float
    int_mult_um2_per_bit2: float
    register_um2_per_bit: float
    sram_capacity_bits: float | None   # None: sized to the state
    bank_bits: float
    bank_width_bits: int
    ports: int
    sram_um2_per_bit: float
    sram_leak_nw_per_bit: float
    accumulators_per_pe: int
    lfsr_state_bits: int
    lfsr_taps: int
    lfsr_bits_per_cycle: int
    logic_leak_nw_per_um2: float
    wire_pitch_um: float
    wire_layers: int
    dram_enabled: bool
    dram_pj_per_bit: float
    dram_bits_per_s: float
    dataflow: str
    pipeline: str
    overlap_update: bool
    area_factors: dict
    energy_factors: dict
    sources: dict
    path: str = ""
    notes: tuple = field(default_factory=tuple)

    # --- derived -----------------------------------------------------------------------------
    def pes(self, j: int, n_layers: int) -> int:
        """Processing elements of weight layer ``j`` (0-based)."""
        if isinstance(self.pe_per_layer, tuple):
            if len(self.pe_per_layer) != n_layers:
                raise ArchitectureError(f"architecture {self.name!r}: pe.per_layer lists {len(self.pe_per_layer)} "
                                        f"entries for a network of {n_layers} weight layers; give one per layer")
            return self.pe_per_layer[j]
        return self.pe_per_layer

    @property
    def dram_bits_per_cycle(self) -> float:
        return self.dram_bits_per_s / self.clock_hz

    @property
    def cycle_s(self) -> float:
        return 1.0 / self.clock_hz

    # --- variants ----------------------------------------------------------------------------
    def at_node(self, node_nm: float) -> "Architecture":
        """Areas scaled by the area factors, leakage power by the energy factors (hwcomponents scales
        leakage like energy); the clock and the organisation stay as they are (state them)."""
        a = _node_factor(self.area_factors, node_nm, "area", self.name) / _node_factor(
            self.area_factors, self.node_nm, "area", self.name)
        e = _node_factor(self.energy_factors, node_nm, "energy", self.name) / _node_factor(
            self.energy_factors, self.node_nm, "energy", self.name)
        note = (f"node scaling {self.node_nm:g} -> {float(node_nm):g} nm: areas x {a:.4g}, leakage power x {e:.4g} "
                f"(Stillmaker-Baas); clock and organisation unchanged")
        return replace(self, node_nm=float(node_nm), int_add_um2_per_bit=self.int_add_um2_per_bit * a,
                       int_mult_um2_per_bit2=self.int_mult_um2_per_bit2 * a,
                       register_um2_per_bit=self.register_um2_per_bit * a, sram_um2_per_bit=self.sram_um2_per_bit * a,
                       sram_leak_nw_per_bit=self.sram_leak_nw_per_bit * e,
                       logic_leak_nw_per_um2=self.logic_leak_nw_per_um2 * e / a, notes=self.notes + (note,))

    def energy_factor(self, node_nm: float) -> float:
        """Energy (and leakage) factor of ``node_nm`` versus this template's node."""
        return (_node_factor(self.energy_factors, node_nm, "energy", self.name)
                / _node_factor(self.energy_factors, self.node_nm, "energy", self.name))

    def metadata(self) -> dict:
        return {
            "name": self.name, "version": self.version, "path": self.path, "node_nm": self.node_nm, "vdd_v": self.vdd_v,
            "clock_hz": self.clock_hz,
            "pe": {"per_layer": list(self.pe_per_layer) if isinstance(self.pe_per_layer, tuple) else self.pe_per_layer,
                   "ops_per_cycle": self.ops_per_cycle, "mult_bits": self.mult_bits or "auto",
                   "add_bits": self.add_bits or "auto"},
            "sram": {"capacity_bits": self.sram_capacity_bits if self.sram_capacity_bits is not None else "auto",
                     "bank_bits": self.bank_bits, "bank_width_bits": self.bank_width_bits, "ports": self.ports,
                     "um2_per_bit": self.sram_um2_per_bit, "leakage_nw_per_bit": self.sram_leak_nw_per_bit},
            "area_um2": {"int_add_per_bit": self.int_add_um2_per_bit, "int_mult_per_bit2": self.int_mult_um2_per_bit2,
                         "register_per_bit": self.register_um2_per_bit},
            "registers": {"accumulators_per_pe": self.accumulators_per_pe},
            "lfsr": {"state_bits": self.lfsr_state_bits, "taps": self.lfsr_taps, "bits_per_cycle": self.lfsr_bits_per_cycle},
            "leakage_logic_nw_per_um2": self.logic_leak_nw_per_um2,
            "wires": {"pitch_um": self.wire_pitch_um, "layers": self.wire_layers},
            "dram": {"enabled": self.dram_enabled, "pj_per_bit": self.dram_pj_per_bit, "bits_per_s": self.dram_bits_per_s},
            "schedule": {"dataflow": self.dataflow, "pipeline": self.pipeline, "overlap_update": self.overlap_update},
            "sources": dict(self.sources), "node_scaling": list(self.notes),
        }


def _apply_overrides(data: dict, overrides: dict | None, where: str) -> dict:
    """``{"section.field": value}`` replaces one field (the raw TOML value: "256 KiB", 16, "auto" ...)."""
    if not overrides:
        return data
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for key, value in overrides.items():
        if not isinstance(key, str) or key.count(".") != 1:
            raise ArchitectureError(f"architecture override {key!r}: give 'section.field' (e.g. 'sram.capacity')")
        section, name = key.split(".")
        if section not in FIELDS or name not in FIELDS[section]:
            known = ", ".join(f"{s}.{f}" for s, fs in FIELDS.items() for f in fs if f != "source")
            raise ArchitectureError(f"architecture override {key!r} of {where}: unknown field; known fields: {known}")
        out.setdefault(section, {})[name] = value
    return out


def validate_architecture(data: dict, where: str, path: str = "") -> Architecture:
    """Check every required section and field; convert quantities; scale the logic figures to the node."""
    if not isinstance(data, dict):
        raise ArchitectureError(f"architecture {where}: not a TOML table")
    v = {}
    for section, names in FIELDS.items():
        sec = data.get(section)
        if not isinstance(sec, dict):
            raise ArchitectureError(f"architecture {where}: missing section [{section}] "
                                    f"(required sections: {', '.join(FIELDS)})")
        for name, kind in names.items():
            if name not in sec:
                raise ArchitectureError(f"architecture {where}: missing field '{section}.{name}' "
                                        f"(required in [{section}]: {', '.join(names)})")
            v[(section, name)] = _check_field(section, name, kind, sec[name], where)
    name = v[("meta", "name")]
    area_f, energy_f = v[("node_scaling", "area")], v[("node_scaling", "energy")]
    node = v[("meta", "node_nm")]

    def area_scale(from_node):
        return _node_factor(area_f, node, "area", name) / _node_factor(area_f, from_node, "area", name)

    def energy_scale(from_node):
        return _node_factor(energy_f, node, "energy", name) / _node_factor(energy_f, from_node, "energy", name)

    logic_a = area_scale(v[("area", "node_nm")])
    sram_a, sram_e = area_scale(v[("sram", "node_nm")]), energy_scale(v[("sram", "node_nm")])
    leak_node = v[("leakage", "node_nm")]
    bank_bits = v[("sram", "bank_size")]
    if bank_bits < v[("sram", "bank_width_bits")]:
        raise ArchitectureError(f"architecture {where}: sram.bank_size ({bank_bits:g} bits) is smaller than one "
                                f"access of sram.bank_width_bits = {v[('sram', 'bank_width_bits')]}")
    notes = []
    if logic_a != 1.0:
        notes.append(f"[area] figures scaled {v[('area', 'node_nm')]:g} -> {node:g} nm: x {logic_a:.4g}")
    return Architecture(
        name=name, version=str(v[("meta", "version")]), node_nm=node, vdd_v=v[("meta", "vdd_v")],
        clock_hz=v[("clock", "frequency")], pe_per_layer=v[("pe", "per_layer")], ops_per_cycle=v[("pe", "ops_per_cycle")],
        mult_bits=v[("pe", "mult_bits")], add_bits=v[("pe", "add_bits")],
        int_add_um2_per_bit=v[("area", "int_add_32b")] / 32.0 * logic_a,
        int_mult_um2_per_bit2=v[("area", "int_mult_32x32")] / 1024.0 * logic_a,
        register_um2_per_bit=v[("area", "register_bit")] * logic_a,
        sram_capacity_bits=v[("sram", "capacity")], bank_bits=bank_bits, bank_width_bits=v[("sram", "bank_width_bits")],
        ports=v[("sram", "ports")], sram_um2_per_bit=v[("sram", "area_per_bit")] * sram_a,
        sram_leak_nw_per_bit=v[("sram", "leakage_per_bit")] * sram_e,
        accumulators_per_pe=v[("registers", "accumulators_per_pe")],
        lfsr_state_bits=v[("lfsr", "state_bits")], lfsr_taps=v[("lfsr", "taps")],
        lfsr_bits_per_cycle=v[("lfsr", "bits_per_cycle")],
        logic_leak_nw_per_um2=v[("leakage", "logic_per_area")] * energy_scale(leak_node) / area_scale(leak_node),
        wire_pitch_um=v[("wires", "pitch")], wire_layers=v[("wires", "layers")],
        dram_enabled=v[("dram", "enabled")], dram_pj_per_bit=v[("dram", "energy_per_bit")],
        dram_bits_per_s=v[("dram", "bandwidth")],
        dataflow=v[("schedule", "dataflow")], pipeline=v[("schedule", "pipeline")],
        overlap_update=v[("schedule", "overlap_update")],
        area_factors=area_f, energy_factors=energy_f,
        sources={s: data[s]["source"] for s in FIELDS}, path=path, notes=tuple(notes))


def load_architecture(spec=DEFAULT_ARCH, overrides: dict | None = None) -> Architecture:
    """A template by name (``arch/<name>.toml``), by TOML path, as a dict, or an ``Architecture`` (passed
    through when there are no overrides); ``overrides`` replace single fields before validation."""
    if isinstance(spec, Architecture):
        if overrides:
            raise ArchitectureError("overrides apply to a template's TOML data; load the template by name or path")
        return spec
    if isinstance(spec, dict):
        return validate_architecture(_apply_overrides(spec, overrides, "(dict)"), "(given as a dict)")
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise ArchitectureError(f"architecture: got {spec!r}; allowed: a template name "
                                f"({', '.join(known_architectures())}) or a TOML file path")
    text = str(spec).strip()
    p = Path(text)
    if p.suffix == ".toml" or "/" in text or "\\" in text or p.is_file():
        if not p.is_file():
            raise ArchitectureError(f"architecture file {text!r} does not exist")
    else:
        p = ARCH_DIR / f"{text}.toml"
        if not p.is_file():
            raise ArchitectureError(f"architecture: got {text!r}; known templates: {', '.join(known_architectures())} "
                                    f"(or the path of a TOML file)")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ArchitectureError(f"architecture {text!r} is not valid TOML: {exc}") from None
    return validate_architecture(_apply_overrides(data, overrides, repr(text)), repr(text), str(p))
