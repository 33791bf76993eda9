"""Wires from a simple floorplan: one tile per neuron layer on a 2-D grid, Manhattan routing.

Layout model (see SCHEMA.md, "Floorplan"):
- Neuron layer ``h = 0..L`` (0 = input buffer, L = output) is one square tile. A weight layer's
  synapses and its learning-channel arithmetic sit in the tile of the neurons they feed, so the
  channel into hidden layer h is computed in tile h, and its signals come from the sender's tile.
- ``layout="row"`` (default): tile h at (h * pitch, 0). ``layout="snake"``: rows of ``columns``
  tiles, every other row reversed, so consecutive layers stay adjacent. ``positions``: explicit
  (x, y) grid coordinates per tile (in units of the pitch).
- A wire between two tiles is as long as the Manhattan distance between their centres, in mm.
- ``wire_model="point_to_point"`` (default, the paper's view): one wire per connection (per non-zero
  sender->receiver feedback entry, or per forward synapse), each carrying the sender's value once
  per example. ``"broadcast"``: one wire per sender neuron per receiving tile, fanned out inside the
  tile at no length (a bus), carrying the value once per example.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import CostModelError, bad

LAYOUTS = ("row", "snake")
WIRE_MODELS = ("point_to_point", "broadcast")


@dataclass(frozen=True)
class Floorplan:
    pitch_mm: float = 1.0
    layout: str = "row"
    columns: int = 4
    positions: tuple[tuple[float, float], ...] | None = None
    wire_model: str = "point_to_point"

    def __post_init__(self):
        if isinstance(self.pitch_mm, bool) or not isinstance(self.pitch_mm, (int, float)) \
                or not math.isfinite(self.pitch_mm) or self.pitch_mm <= 0:
            raise bad("floorplan pitch_mm", self.pitch_mm, "a finite number of mm > 0")
        if self.layout not in LAYOUTS:
            raise bad("floorplan layout", self.layout, ", ".join(LAYOUTS))
        if isinstance(self.columns, bool) or not isinstance(self.columns, int) or self.columns < 1:
            raise bad("floorplan columns", self.columns, "an integer >= 1")
        if self.wire_model not in WIRE_MODELS:
            raise bad("floorplan wire_model", self.wire_model, ", ".join(WIRE_MODELS))
        if self.positions is not None:
            pos = tuple(tuple(float(c) for c in p) for p in self.positions)
            if any(len(p) != 2 or not all(math.isfinite(c) for c in p) for p in pos):
                raise bad("floorplan positions", self.positions, "a list of (x, y) pairs of finite numbers")
            object.__setattr__(self, "positions", pos)

    def tile(self, h: int, n_tiles: int) -> tuple[float, float]:
        """Grid coordinates (units of the pitch) of neuron layer h's tile."""
        if self.positions is not None:
            if len(self.positions) != n_tiles:
                raise CostModelError(f"floorplan positions: {len(self.positions)} given for a network of "
                                     f"{n_tiles} neuron layers (input, hidden layers and output); give one each")
            return self.positions[h]
        if self.layout == "row":
            return float(h), 0.0
        row, col = divmod(h, self.columns)
        if row % 2:
            col = self.columns - 1 - col
        return float(col), float(row)

    def distance_mm(self, a: int, b: int, n_tiles: int) -> float:
        (xa, ya), (xb, yb) = self.tile(a, n_tiles), self.tile(b, n_tiles)
        return (abs(xa - xb) + abs(ya - yb)) * self.pitch_mm

    def describe(self) -> str:
        if self.positions is not None:
            where = f"explicit tile positions {list(self.positions)}"
        elif self.layout == "row":
            where = "one tile per neuron layer in a row (input at x=0, output last)"
        else:
            where = f"one tile per neuron layer, snake rows of {self.columns}"
        return f"{where}; pitch {self.pitch_mm:g} mm; Manhattan distance between tile centres; {self.wire_model} wires"

    def metadata(self) -> dict:
        return {"pitch_mm": self.pitch_mm, "layout": self.layout, "columns": self.columns,
                "positions": [list(p) for p in self.positions] if self.positions is not None else None,
                "wire_model": self.wire_model, "description": self.describe()}


@dataclass(frozen=True)
class WireGroup:
    """Wires of one kind between two tiles, per example.

    ``connections``: point-to-point connections (the paper's count); ``links``: the wires of the
    chosen model (= connections for point_to_point, = sending neurons for broadcast);
    ``traversals``: expected link traversals per example; ``bits``: bits per traversal.
    """

    phase: str
    sender: int       # neuron layer (tile) sending
    receiver: int     # neuron layer (tile) receiving
    connections: float
    links: float
    length_mm: float
    traversals: float
    bits: int

    @property
    def total_length_mm(self) -> float:
        return self.links * self.length_mm

    @property
    def bits_moved(self) -> float:
        return self.traversals * self.bits

    @property
    def bit_mm(self) -> float:
        return self.traversals * self.bits * self.length_mm


def summarize(groups, phase: str) -> dict:
    """Count, total/mean/max length, bits moved and bit*mm of the wires of one phase."""
    gs = [g for g in groups if g.phase == phase]
    conns = sum(g.connections for g in gs)
    links = sum(g.links for g in gs)
    conn_len = sum(g.connections * g.length_mm for g in gs)
    total = sum(g.total_length_mm for g in gs)
    return {
        "connections": conns,
        "connection_length_mm": conn_len,
        "links": links,
        "total_length_mm": total,
        "mean_length_mm": (conn_len / conns) if conns else 0.0,
        "max_length_mm": max((g.length_mm for g in gs if g.connections > 0), default=0.0),
        "bits_moved": sum(g.bits_moved for g in gs),
        "bit_mm": sum(g.bit_mm for g in gs),
    }
