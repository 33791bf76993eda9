"""Latency per example and per minibatch, per layer and phase, from the action list and a schedule model.

Step time. Each (tile, phase) step runs on its tile's P processing elements and SRAM arrays; its cycles
are the slowest of four bounds (the ``bound`` it reports):

- compute: ceil(max(multiplier cycles, adder cycles) / (P x pe.ops_per_cycle)). A PE has one multiplier
  and one adder working in parallel (a MAC unit). Multiplies use the multiplier, adds, sign flips,
  shifts and compares the adder, an activation function one cycle of each (the energy table charges it
  as one multiply and one add). With ``pe.mult_bits = "auto"`` (PEs sized to the widest operation of the
  tile) every operation takes one cycle; with a fixed width m an integer a x b multiply takes
  ceil(a/m) x ceil(b/m) cycles (decomposed into m-bit partial products, Bit Fusion style) and a float
  multiply ceil(s/m)^2 for its s-bit significand (24 for fp32, 11 for fp16); an add of w bits takes
  ceil(w / add_bits) cycles.
- SRAM: each data structure of a tile is its own array of ceil(capacity / bank_size) banks, each moving
  ``bank_width_bits x ports`` bits per cycle; arrays work in parallel, reads and writes of one array share
  its ports: ceil(bits / bandwidth) for the busiest array. Registers (dtype ``reg``) cost no SRAM cycles.
- random bits: ceil(bits / lfsr.bits_per_cycle) (one LFSR per tile).
- DRAM: ceil(bits / (dram bandwidth / clock)); all tiles share the one channel, which also bounds the
  minibatch as a whole (below).
Wires are pipelined point to point links and add no cycles (stated, not modelled).

Schedule of one example (tile h = weight layer h, L tiles; times in cycles):
- forward is sequential over layers: FW(h) starts when FW(h-1) ends;
- the output error (the error_projection step of tile L) starts when FW(L) ends and makes R^L;
- the channel into hidden layer h (its error_projection step) starts when its sender's signal exists:
  BP and RBP (sender h+1) one after another down the layers, SRBP (sender L) all together once T - O
  exists; the links give the senders;
- with per-example accumulation the weight gradient WG(h) follows tile h's channel step, then the
  per-example part of any channel update; the example ends when the last tile ends.
Per minibatch of B examples: examples run one after another (``pipeline = none``: initiation interval
II = the example latency) or stream through the tiles (``examples``: II = the busiest tile's per-example
work, an ideal pipeline without stalls, the activations of several examples in flight). After the last
example each tile runs its per-minibatch tail: the weight update (and, with minibatch tiling, the whole
minibatch's weight gradient first). The next minibatch's first example may start when every tile has
finished its tail, or, with ``overlap_update = true``, when each tile finishes its tail before that
example's forward reaches it:
    T_mb = max(B x II, (B - 1) x II + max_h(end_h + tail_h - offset_h)), offset_h = forward start of
    tile h with overlap, else 0; and T_mb >= the minibatch's DRAM bits / DRAM bandwidth.
Throughput = B / T_mb examples per second.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .architecture import Architecture, ArchitectureError
from .dataflow import per_minibatch_phases
from .records import ARITH_OPS, PHASES

PER_EXAMPLE_CHANNEL_UPDATE = frozenset({"channel_outer_product", "channel_accumulate", "channel_accumulator"})
SIGNIFICAND_BITS = {16: 11, 32: 24, 64: 53}
ADDER_OPS = ("add", "sign_flip", "shift", "compare")
FLOAT_ADDER_WIDTH = {"sign_flip": 1, "shift": 8, "compare": 32}   # as the energy table charges float ops


def scope_of(a, minibatch_phases) -> str:
    """``example`` (runs for every example) or ``minibatch`` (once per minibatch, counted / batch)."""
    if a.phase in minibatch_phases:
        return "minibatch"
    if a.phase == "channel_update" and a.what not in PER_EXAMPLE_CHANNEL_UPDATE:
        return "minibatch"
    return "example"


def mult_cycles(a, arch: Architecture) -> int:
    if arch.mult_bits is None:
        return 1
    m = arch.mult_bits
    if a.dtype == "float":
        s = SIGNIFICAND_BITS.get(max(a.bits_a, a.bits_b))
        if s is None:
            raise ArchitectureError(f"no significand width for a {max(a.bits_a, a.bits_b)}-bit float multiply")
        return math.ceil(s / m) ** 2
    return math.ceil(a.bits_a / m) * math.ceil(max(a.bits_b, 1) / m)


def add_cycles(a, arch: Architecture) -> int:
    if arch.add_bits is None:
        return 1
    width = FLOAT_ADDER_WIDTH.get(a.op, a.bits_a) if a.dtype == "float" and a.op != "add" else a.bits_a
    return math.ceil(max(width, 1) / arch.add_bits)


@dataclass(frozen=True)
class StepTime:
    layer: int
    phase: str
    scope: str              # example | minibatch
    mult_cycles: float      # multiplier cycles of the whole step (all PEs together)
    add_cycles: float
    compute_cycles: int
    sram_cycles: int
    rng_cycles: int
    dram_cycles: int
    cycles: int
    bound: str              # compute | sram | rng | dram | none
    seconds: float


def step_time(actions, layer: int, phase: str, scope: str, pes: int, arch: Architecture, scale: float) -> StepTime:
    """Cycles of one step; ``scale`` turns per-example counts into the step's counts (batch for a
    per-minibatch step, 1 otherwise)."""
    mult = add = rng = dram = 0.0
    arrays = {}
    for a in actions:
        n = a.count * scale
        if a.op == "mult":
            mult += n * mult_cycles(a, arch)
        elif a.op in ADDER_OPS:
            add += n * add_cycles(a, arch)
        elif a.op == "activation_fn":
            mult += n
            add += n
        elif a.dtype == "sram":
            key = (a.what, a.capacity_bytes)
            arrays[key] = arrays.get(key, 0.0) + n
        elif a.dtype == "dram":
            dram += n
        elif a.op == "rng_bit":
            rng += n
    compute = math.ceil(max(mult, add) / (pes * arch.ops_per_cycle) - 1e-9) if (mult or add) else 0
    sram = 0
    for (_, cap_bytes), bits in arrays.items():
        banks = max(1, math.ceil(cap_bytes * 8.0 / arch.bank_bits - 1e-9))
        sram = max(sram, math.ceil(bits / (banks * arch.bank_width_bits * arch.ports) - 1e-9))
    rng_c = math.ceil(rng / arch.lfsr_bits_per_cycle - 1e-9) if rng else 0
    dram_c = math.ceil(dram / arch.dram_bits_per_cycle - 1e-9) if dram else 0
    bounds = {"compute": compute, "sram": sram, "rng": rng_c, "dram": dram_c}
    cycles = max(bounds.values())
    bound = max(bounds, key=lambda k: bounds[k]) if cycles else "none"
    return StepTime(layer, phase, scope, mult, add, compute, sram, rng_c, dram_c, cycles, bound, cycles / arch.clock_hz)


def step_times(actions, n_layers: int, batch: int, arch: Architecture, dataflow: str) -> dict:
    """{(layer, phase, scope): StepTime} for every step that has actions."""
    mb = per_minibatch_phases(dataflow)
    groups = {}
    for a in actions:
        if a.layer < 1:
            continue
        groups.setdefault((a.layer, a.phase, scope_of(a, mb)), []).append(a)
    out = {}
    for (h, phase, scope), acts in groups.items():
        if h > n_layers:
            raise ArchitectureError(f"an action of layer {h} in a network of {n_layers} weight layers")
        out[(h, phase, scope)] = step_time(acts, h, phase, scope, arch.pes(h - 1, n_layers), arch,
                                           float(batch) if scope == "minibatch" else 1.0)
    return out


@dataclass
class TileTimes:
    layer: int
    fw_start: int
    fw_end: int
    ag_start: int | None
    ag_end: int | None
    end: int                # end of the tile's per-example work
    busy: int               # cycles of per-example work
    tail: int               # cycles of per-minibatch work after the last example
    sender: int | None      # tile whose signal started this tile's channel step


@dataclass
class LatencyReport:
    clock_hz: float
    batch: int
    dataflow: str
    pipeline: str
    overlap_update: bool
    steps: list
    tiles: list
    example_cycles: int
    interval_cycles: int
    minibatch_cycles: int
    minibatch_bound: str            # schedule | dram
    critical_path: list
    in_flight: dict                 # tile -> examples whose activations it holds at once
    notes: list = field(default_factory=list)

    @property
    def example_latency_s(self) -> float:
        return self.example_cycles / self.clock_hz

    @property
    def minibatch_latency_s(self) -> float:
        return self.minibatch_cycles / self.clock_hz

    @property
    def time_per_example_s(self) -> float:
        return self.minibatch_latency_s / self.batch

    @property
    def throughput_eps(self) -> float:
        return self.batch / self.minibatch_latency_s if self.minibatch_cycles else math.inf

    def phase_seconds(self, layer: int, phase: str) -> float:
        """Seconds of ``phase`` in tile ``layer`` per example (a per-minibatch step divided by the batch)."""
        return sum(s.seconds / (self.batch if s.scope == "minibatch" else 1) for s in self.steps
                   if s.layer == layer and s.phase == phase)

    def to_dict(self) -> dict:
        return {"clock_hz": self.clock_hz, "batch": self.batch, "dataflow": self.dataflow, "pipeline": self.pipeline,
                "overlap_update": self.overlap_update, "example_latency_s": self.example_latency_s,
                "minibatch_latency_s": self.minibatch_latency_s, "time_per_example_s": self.time_per_example_s,
                "throughput_examples_per_s": self.throughput_eps, "example_cycles": self.example_cycles,
                "interval_cycles": self.interval_cycles, "minibatch_cycles": self.minibatch_cycles,
                "minibatch_bound": self.minibatch_bound, "critical_path": self.critical_path,
                "in_flight": self.in_flight, "steps": [asdict(s) for s in self.steps],
                "tiles": [asdict(t) for t in self.tiles], "notes": self.notes}


def _pairs(links) -> list[tuple[int, int]]:
    out = []
    for lk in links:
        r, s = (lk.receiver, lk.sender) if hasattr(lk, "receiver") else lk
        out.append((int(r), int(s)))
    return out


def schedule(actions, n_layers: int, links, batch: int, arch: Architecture, dataflow: str | None = None) -> LatencyReport:
    """Per-example and per-minibatch latency of ``actions`` (one example's counts, per-minibatch work / batch)
    on ``arch``; ``links``: (receiver, sender) 0-based weight-layer pairs of the learning channel."""
    dataflow = dataflow or arch.dataflow
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ArchitectureError(f"batch size: got {batch!r}; allowed: an integer >= 1")
    steps = step_times(actions, n_layers, batch, arch, dataflow)

    def cyc(h, phase, scope="example"):
        s = steps.get((h, phase, scope))
        return s.cycles if s else 0

    L = n_layers
    fw_start, fw_end, t = {}, {}, 0
    for h in range(1, L + 1):
        fw_start[h] = t
        t += cyc(h, "forward")
        fw_end[h] = t
    ag_start, ready, sender_of = {L: fw_end[L]}, {L: fw_end[L] + cyc(L, "error_projection")}, {L: None}
    for r, s in sorted(_pairs(links), key=lambda p: -p[0]):
        h, src = r + 1, s + 1
        if not 1 <= h <= L or not 1 <= src <= L:
            raise ArchitectureError(f"link ({r}, {s}) outside the network's weight layers 0..{L - 1}")
        if src not in ready:
            raise ArchitectureError(f"link into layer {h}: its sender, layer {src}, has no signal yet (links must "
                                    f"run from upper to lower layers)")
        ag_start[h] = max(ready[src], fw_end[h])
        ready[h] = ag_start[h] + cyc(h, "error_projection")
        sender_of[h] = src
    tiles = []
    mb_phases = per_minibatch_phases(dataflow)
    for h in range(1, L + 1):
        after = ready.get(h, fw_end[h])
        end = after + cyc(h, "weight_gradient") + cyc(h, "channel_update")
        busy = (cyc(h, "forward") + cyc(h, "error_projection") + cyc(h, "weight_gradient")
                + cyc(h, "channel_update"))
        tail = sum(cyc(h, p, "minibatch") for p in PHASES)
        tiles.append(TileTimes(h, fw_start[h], fw_end[h], ag_start.get(h), ready.get(h), end, busy, tail,
                               sender_of.get(h)))
    example = max(tt.end for tt in tiles)
    interval = example if arch.pipeline == "none" else max(tt.busy for tt in tiles)
    offset = {tt.layer: (tt.fw_start if arch.overlap_update else 0) for tt in tiles}
    mb = max(batch * interval, (batch - 1) * interval + max(tt.end + tt.tail - offset[tt.layer] for tt in tiles))
    dram_bits = sum(a.count * batch for a in actions if a.dtype == "dram")
    dram_mb = math.ceil(dram_bits / arch.dram_bits_per_cycle - 1e-9) if dram_bits else 0
    bound = "schedule"
    if dram_mb > mb:
        mb, bound = dram_mb, "dram"
    in_flight = {tt.layer: (max(1, math.ceil((tt.end - tt.fw_start) / interval - 1e-9)) if arch.pipeline == "examples"
                            and interval else 1) for tt in tiles}
    notes = [f"schedule: pipeline {arch.pipeline}, overlap_update {str(arch.overlap_update).lower()}, dataflow "
             f"{dataflow} (per-minibatch phases: {', '.join(sorted(mb_phases))})"]
    return LatencyReport(arch.clock_hz, batch, dataflow, arch.pipeline, arch.overlap_update,
                         sorted(steps.values(), key=lambda s: (s.layer, PHASES.index(s.phase), s.scope)),
                         tiles, example, interval, mb, bound, _critical_path(tiles, steps), in_flight, notes)


def _critical_path(tiles, steps) -> list[str]:
    """Steps on the path to the tile that ends an example last, first step first."""
    by = {tt.layer: tt for tt in tiles}
    last = max(tiles, key=lambda tt: (tt.end, -tt.layer))
    path = []
    if (last.layer, "channel_update", "example") in steps:
        path.append(f"CU{last.layer}")
    if (last.layer, "weight_gradient", "example") in steps:
        path.append(f"WG{last.layer}")
    h = last.layer if last.ag_end is not None else None
    while h is not None:
        path.append(f"AG{h}")
        h = by[h].sender
    top = max(by)
    path += [f"FW{k}" for k in range(top if last.ag_end is not None else last.layer, 0, -1)]
    return path[::-1]


def arithmetic_ops(actions) -> float:
    """Arithmetic operations per example (each multiply, add, sign flip, shift, compare, activation)."""
    return sum(a.count for a in actions if a.op in ARITH_OPS)
