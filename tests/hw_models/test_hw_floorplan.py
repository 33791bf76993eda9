"""Wires from the floorplan: counts, lengths, bits moved."""
import pytest

from lowbit_rbp.core.config import load_config
from hw_models import Floorplan
from lowbit_rbp.cost import cost_report, render_markdown


def wires(algo, **kw):
    return cost_report(load_config(None, [f"channel.algorithm={algo}"]), **kw).summary["wires_backward"]


def test_srbp_fewer_but_longer_backward_wires():
    bp, srbp = wires("bp"), wires("srbp")
    assert bp["connections"] == 31_000 and srbp["connections"] == 4_000
    # default: a row of tiles 1 mm apart; BP/RBP wires span one pitch, SRBP's run from tile 5 to tiles 1..4
    assert bp["mean_length_mm"] == 1.0 and bp["max_length_mm"] == 1.0
    assert srbp["mean_length_mm"] == pytest.approx((4 + 3 + 2 + 1) / 4) and srbp["max_length_mm"] == 4.0
    assert srbp["mean_length_mm"] > bp["mean_length_mm"] and srbp["max_length_mm"] > bp["max_length_mm"]
    assert bp["connection_length_mm"] == 31_000 and srbp["connection_length_mm"] == 10_000
    assert bp["bits_moved"] == 31_000 * 32 and srbp["bits_moved"] == 4_000 * 32
    assert srbp["bit_mm"] == 10_000 * 32


def test_report_markdown_shows_both_totals():
    r = cost_report(load_config(None, ["channel.algorithm=srbp"]))
    md = render_markdown(r)
    assert "| backward (channel) | 4,000 | 10,000 | 2.5 | 4 |" in md
    assert "| forward | 109,400 | 109,400 | 1 | 1 |" in md


def test_pitch_scales_lengths():
    w = wires("srbp", floorplan=Floorplan(pitch_mm=0.5))
    assert w["mean_length_mm"] == pytest.approx(1.25) and w["max_length_mm"] == 2.0


def test_snake_layout_and_positions():
    fp = Floorplan(layout="snake", columns=3)
    # tiles 0 1 2 / 5 4 3 : tile 5 sits below tile 0
    assert [fp.tile(h, 6) for h in range(6)] == [(0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (0, 1)]
    w = wires("srbp", floorplan=fp)
    # output tile 5 at (0,1) to tiles 1..4: distances 2, 3, 2, 1
    assert w["max_length_mm"] == 3.0 and w["mean_length_mm"] == pytest.approx(2.0)
    pos = [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (3, 4)]
    assert wires("rbp", floorplan=Floorplan(positions=pos))["max_length_mm"] == 3.0


def test_broadcast_wire_model():
    w = wires("bp", floorplan=Floorplan(wire_model="broadcast"))
    assert w["connections"] == 31_000                  # connections are still reported
    assert w["links"] == 100 + 100 + 100 + 10          # one wire per sending neuron per receiving tile
    assert w["bits_moved"] == 310 * 32
    w = wires("srbp", floorplan=Floorplan(wire_model="broadcast"))
    assert w["links"] == 40 and w["bit_mm"] == 10 * 32 * (4 + 3 + 2 + 1)
