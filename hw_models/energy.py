"""Energy tables: energy per action as data (``tables/*.toml``), with sources, and the pricing rules.

``energy = sum(count x price)``: every counted action (an operation of a given width, a bit read
from or written to an SRAM array of a given size, a bit moved one millimetre, a random bit) is
priced by ``EnergyTable.price``; the rule that set each price is reported with it.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import CostModelError, bad

TABLES_DIR = Path(__file__).parent / "tables"
DEFAULT_TABLE = "horowitz45nm"

# Required fields of every table: section -> fields (``values`` is a table of width -> pJ).
REQUIRED = {
    "meta": ("name", "version", "node_nm", "vdd_v", "source"),
    "int_add": ("values", "ref_bits", "source"),
    "int_mult": ("values", "ref_bits", "source"),
    "fp_add": ("values", "source"),
    "fp_mult": ("values", "source"),
    "activation_fn": ("value", "source"),
    "sram": ("pj_per_bit_ref", "ref_bytes", "exponent", "min_bytes", "write_factor", "source"),
    "wire": ("pj_per_bit_mm", "activity_ref", "activity_default", "source"),
    "lfsr": ("pj_per_bit", "source"),
}
TEXT_FIELDS = ("name", "version", "source")
# Numbers that must be > 0 (not merely >= 0) because they divide or anchor a scaling rule.
POSITIVE = {("int_add", "ref_bits"), ("int_mult", "ref_bits"), ("sram", "ref_bytes"), ("wire", "activity_ref"),
            ("meta", "node_nm"), ("meta", "vdd_v")}


def known_tables() -> list[str]:
    return sorted(p.stem for p in TABLES_DIR.glob("*.toml"))


@dataclass(frozen=True)
class EnergyTable:
    name: str
    data: dict
    path: str = ""
    scale_logic: float = 1.0   # node scaling applied to logic and SRAM
    scale_wire: float = 1.0    # Vdd^2 scaling applied to wires
    node_nm: float = 45
    vdd_v: float = 0.9
    notes: tuple = field(default_factory=tuple)

    # --- arithmetic ---------------------------------------------------------------------------
    def int_add(self, bits: int) -> tuple[float, str]:
        sec = self.data["int_add"]
        vals = sec["values"]
        key = str(int(bits))
        if key in vals:
            return vals[key] * self.scale_logic, f"int_add {bits} b: table value"
        ref = int(sec["ref_bits"])
        e = vals[str(ref)] * bits / ref
        return e * self.scale_logic, f"int_add {bits} b: linear scaling E_add({ref}) x {bits}/{ref}"

    def int_mult(self, a: int, b: int) -> tuple[float, str]:
        sec = self.data["int_mult"]
        vals = sec["values"]
        for key in (f"{a}x{b}", f"{b}x{a}"):
            if key in vals:
                return vals[key] * self.scale_logic, f"int_mult {a}x{b} b: table value"
        ref = int(sec["ref_bits"])
        e = vals[f"{ref}x{ref}"] * (a * b) / (ref * ref)
        return e * self.scale_logic, f"int_mult {a}x{b} b: quadratic scaling E_mul({ref}x{ref}) x {a}*{b}/{ref * ref}"

    def _fp(self, section: str, bits: int) -> tuple[float, str]:
        vals = self.data[section]["values"]
        key = str(int(bits))
        if key not in vals:
            raise CostModelError(f"energy table {self.name!r}: no {section} entry for {bits}-bit floats; "
                                 f"the table has {', '.join(sorted(vals, key=int))}")
        return vals[key] * self.scale_logic, f"{section} {bits} b: table value"

    def price(self, op: str, dtype: str, bits_a: int = 0, bits_b: int = 0, capacity_bytes: float = 0.0,
              activity: float | None = None) -> tuple[float, str]:
        """Energy (pJ) of one unit of an action, and the rule that set it.

        Units: one operation for arithmetic; one bit for ``sram_read``/``sram_write``/``rng_bit``;
        one bit moved one millimetre for ``wire``.
        """
        if op == "mult":
            if dtype == "float":
                return self._fp("fp_mult", max(bits_a, bits_b))
            return self.int_mult(bits_a, bits_b)
        if op == "add":
            if dtype == "float":
                return self._fp("fp_add", bits_a)
            return self.int_add(bits_a)
        if op in ("sign_flip", "shift", "compare"):
            if dtype == "float":
                width = {"sign_flip": 1, "shift": 8, "compare": 32}[op]
            else:
                width = bits_a
            e, _ = self.int_add(width)
            return e, f"{op} ({dtype} {bits_a} b): charged as a {width}-b int add"
        if op == "activation_fn":
            return self.data["activation_fn"]["value"] * self.scale_logic, "activation_fn: table value"
        if op in ("sram_read", "sram_write"):
            s = self.data["sram"]
            c = max(float(capacity_bytes), float(s["min_bytes"]))
            e = s["pj_per_bit_ref"] * (c / s["ref_bytes"]) ** s["exponent"]
            if op == "sram_write":
                e *= s["write_factor"]
            return e * self.scale_logic, (f"{op}: per-bit SRAM rule E = {s['pj_per_bit_ref']} x (C/{s['ref_bytes']} B)"
                                          f"^{s['exponent']}, C floored at {s['min_bytes']} B"
                                          + (f", write x {s['write_factor']}" if op == "sram_write" else ""))
        if op == "wire":
            w = self.data["wire"]
            act = w["activity_default"] if activity is None else activity
            return (w["pj_per_bit_mm"] * act / w["activity_ref"] * self.scale_wire,
                    f"wire: {w['pj_per_bit_mm']} pJ/bit/mm x activity {act}/{w['activity_ref']}")
        if op == "rng_bit":
            return self.data["lfsr"]["pj_per_bit"] * self.scale_logic, "rng_bit: LFSR table value"
        raise CostModelError(f"energy table {self.name!r}: no price for action {op!r}")

    # --- node scaling -------------------------------------------------------------------------
    def at_node(self, node_nm: float, vdd_v: float | None = None) -> "EnergyTable":
        """This table moved to another technology node (logic and SRAM) and supply (wires, Vdd^2)."""
        sec = self.data.get("node_scaling")
        if not sec or "factors" not in sec:
            raise CostModelError(f"energy table {self.name!r} has no [node_scaling] factors")
        factors = {float(k): float(v) for k, v in sec["factors"].items()}
        base = float(self.data["meta"]["node_nm"])
        if float(node_nm) not in factors:
            raise bad(f"technology node for table {self.name!r}", node_nm,
                      ", ".join(f"{k:g}" for k in sorted(factors)) + " nm")
        if base not in factors:
            raise CostModelError(f"energy table {self.name!r}: its own node {base:g} nm has no scaling factor")
        logic = factors[float(node_nm)] / factors[base]
        v0 = float(self.data["meta"]["vdd_v"])
        v = v0 if vdd_v is None else float(vdd_v)
        if not v > 0:
            raise bad("supply voltage vdd_v", vdd_v, "a number > 0")
        note = (f"node scaling: logic and SRAM x {logic:.4g} ({base:g} -> {float(node_nm):g} nm, Stillmaker-Baas); "
                f"wires x {(v / v0) ** 2:.4g} (Vdd {v0:g} -> {v:g} V, squared)")
        return replace(self, scale_logic=self.scale_logic * logic, scale_wire=self.scale_wire * (v / v0) ** 2,
                       node_nm=float(node_nm), vdd_v=v, notes=self.notes + (note,))

    def metadata(self) -> dict:
        m = self.data["meta"]
        return {
            "name": self.name, "version": str(m["version"]), "path": self.path,
            "node_nm": self.node_nm, "vdd_v": self.vdd_v, "table_node_nm": m["node_nm"], "table_vdd_v": m["vdd_v"],
            "description": m.get("description", ""), "leakage": m.get("leakage", "not modelled"),
            "units": "pJ", "source": m["source"],
            "sources": {k: v["source"] for k, v in self.data.items() if isinstance(v, dict) and "source" in v},
            "rules": {k: v["rule"] for k, v in self.data.items() if isinstance(v, dict) and "rule" in v},
            "derived": {k: v for k, v in self.data.get("derived", {}).items() if k != "source"},
            "node_scaling": list(self.notes),
        }


def _check_number(where: str, key: str, value, section: str, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CostModelError(f"energy table {where}: {key} = {value!r} is not a finite number")
    if value < 0:
        raise CostModelError(f"energy table {where}: {key} = {value!r} is negative; energies and "
                             f"parameters must be >= 0")
    if (section, name) in POSITIVE and value <= 0:
        raise CostModelError(f"energy table {where}: {key} = {value!r} must be > 0")


def validate_table(data: dict, where: str) -> dict:
    """Check that every required section and field is there and every number is finite and >= 0."""
    if not isinstance(data, dict):
        raise CostModelError(f"energy table {where}: not a TOML table")
    for section, names in REQUIRED.items():
        sec = data.get(section)
        if not isinstance(sec, dict):
            raise CostModelError(f"energy table {where}: missing section [{section}] "
                                 f"(required sections: {', '.join(REQUIRED)})")
        for name in names:
            if name not in sec:
                raise CostModelError(f"energy table {where}: missing field '{section}.{name}' "
                                     f"(required in [{section}]: {', '.join(names)})")
    # Required numeric fields must be numbers (not strings), and so must every width in a values table.
    for section, names in REQUIRED.items():
        for name in names:
            v = data[section][name]
            if name in TEXT_FIELDS:
                continue
            if name == "values":
                if not isinstance(v, dict) or not v:
                    raise CostModelError(f"energy table {where}: {section}.values must be a table of width = pJ")
                for k, x in v.items():
                    _check_number(where, f"{section}.values.{k}", x, section, str(k))
            else:
                _check_number(where, f"{section}.{name}", v, section, name)
    # Every number anywhere in the table: finite and >= 0 (recursively, values tables included).
    def walk(obj, path, section):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}" if path else str(k), section or str(k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]", section)
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            _check_number(where, path, obj, section, path.rsplit(".", 1)[-1])
    walk(data, "", "")
    if not isinstance(data["meta"]["name"], str) or not data["meta"]["name"]:
        raise CostModelError(f"energy table {where}: meta.name must be a non-empty string")
    for section in ("int_add", "int_mult", "fp_add", "fp_mult"):
        vals = data[section]["values"]
        if not isinstance(vals, dict) or not vals:
            raise CostModelError(f"energy table {where}: {section}.values must be a table of width = pJ")
    for section, key in (("int_add", str(int(data["int_add"]["ref_bits"]))),
                         ("int_mult", "{0}x{0}".format(int(data["int_mult"]["ref_bits"])))):
        if key not in data[section]["values"]:
            raise CostModelError(f"energy table {where}: {section}.values has no entry for its reference width "
                                 f"{key!r} (ref_bits = {data[section]['ref_bits']})")
    for section in ("fp_add", "fp_mult"):
        if "32" not in data[section]["values"]:
            raise CostModelError(f"energy table {where}: {section}.values needs a '32' (fp32) entry")
    return data


def load_energy_table(spec=DEFAULT_TABLE) -> EnergyTable:
    """A table by name (``tables/<name>.toml``), by TOML file path, or an ``EnergyTable`` passed through."""
    if isinstance(spec, EnergyTable):
        return spec
    if isinstance(spec, dict):
        data = validate_table(spec, "(given as a dict)")
        return _make(data, "")
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise bad("energy table", spec, "a table name (" + ", ".join(known_tables()) + ") or a TOML file path")
    text = str(spec).strip()
    p = Path(text)
    looks_like_file = p.suffix == ".toml" or "/" in text or "\\" in text or p.is_file()
    if looks_like_file:
        if not p.is_file():
            raise CostModelError(f"energy table file {text!r} does not exist")
        where = repr(text)
    else:
        p = TABLES_DIR / f"{text}.toml"
        if not p.is_file():
            raise bad("energy table", text, "known tables: " + ", ".join(known_tables())
                      + " (or the path of a TOML file)")
        where = repr(text)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CostModelError(f"energy table {where} is not valid TOML: {exc}") from None
    validate_table(data, where)
    return _make(data, str(p))


def _make(data: dict, path: str) -> EnergyTable:
    m = data["meta"]
    return EnergyTable(name=m["name"], data=data, path=path, node_nm=float(m["node_nm"]), vdd_v=float(m["vdd_v"]))
