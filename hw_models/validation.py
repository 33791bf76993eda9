"""Published on-chip-learning chips as data, and the comparison of their published ratios with the
model's predictions (pure functions; ``lowbit_rbp.hw_budget`` builds the budgets and the report).

Each chip lists what was published (with the source), the network, precision and node the model uses
for it, every assumption the model had to make (what the sources available here did not give), and its
scenarios: named variants (config overrides, inference only or not, feedback storage, architecture and
dataflow choices), and claims comparing two variants on one metric (energy, area, DRAM bits or time per
training example) as an overhead (other / base - 1) or a reduction (1 - other / base).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .layers import Conv2d, Dense

METRICS = {"energy": "energy per example (total, with leakage)", "area": "chip area",
           "dram_bits": "DRAM bits per example", "time": "time per training example"}
KINDS = ("overhead", "reduction")


@dataclass(frozen=True)
class Variant:
    overrides: tuple = ()                 # RunConfig overrides beyond the chip's base
    inference: bool = False               # forward pass only (an inference chip)
    feedback_storage: str = "stored"      # stored | regenerated
    arch_overrides: tuple = ()            # (("schedule.pipeline", "examples"), ...)


@dataclass(frozen=True)
class Claim:
    key: str
    quantity: str
    metric: str                           # a METRICS key
    kind: str                             # overhead | reduction
    base: str                             # variant names
    other: str
    published: tuple                      # (value,) or (low, high), fractions
    source: str


@dataclass(frozen=True)
class Chip:
    key: str
    name: str
    citation: str
    node_nm: float
    vdd_v: float
    facts: tuple                          # published facts (text, each with its source)
    network: tuple                        # Dense / Conv2d layers the model counts
    base_overrides: tuple                 # RunConfig overrides: algorithm, formats, batch
    weight_format: str
    activation_format: str
    dataflow: str
    arch_overrides: tuple                 # (("sram.capacity", "256 KiB"), ...)
    variants: dict = field(default_factory=dict)
    claims: tuple = ()
    assumptions: tuple = ()


def _fixed(bits: int, frac: int) -> str:
    return f"fixed:w={bits},f={frac}"


def _formats(bits: int, frac: int, acc_bits: int, acc_frac: int, **special: str) -> tuple:
    """Config overrides giving every quantization point ``fixed:w=bits,f=frac`` (accumulator: its own width),
    except the points named in ``special`` (e.g. ``error="log:alpha=2,bits=1"``)."""
    points = {p: _fixed(bits, frac) for p in ("error", "signal", "feedback", "update")}
    points["accumulator"] = _fixed(acc_bits, acc_frac)
    points.update(special)
    return tuple(f"formats.{p}={v}" for p, v in points.items())


SPOON_SOURCE = ("C. Frenkel, J.-D. Legat, D. Bol, 'A 28-nm convolutional neuromorphic processor enabling online "
                "learning with spike-based retinas', ISCAS 2020 (arXiv:2005.06318), abstract")
PARK_SOURCE = ("J. Park, J. Lee, D. Jeon, 'A 65-nm neuromorphic image classification processor with energy-efficient "
               "training through direct spike-only feedback', IEEE JSSC 55(1), pp. 108-119, 2020, abstract")
DFLNPU_SOURCE = ("D. Han, J. Lee, H.-J. Yoo, 'DF-LNPU: a pipelined direct feedback alignment-based deep neural "
                 "network learning processor for fast online learning', IEEE JSSC 56(5), 2021, "
                 "doi:10.1109/JSSC.2020.3042978, abstract")

_SPOON_COMMON = dict(
    citation=SPOON_SOURCE, node_nm=28, vdd_v=0.6,
    facts=("28 nm FDSOI; 313 nJ per classification at 0.6 V; 0.32 mm2; MNIST 95.3 % (on-chip training), 97.5 % "
           "(off-chip training); on-chip DRTP learning adds 16.8 % power and 11.8 % area [" + SPOON_SOURCE + "]",),
    weight_format=_fixed(8, 6), activation_format=_fixed(8, 6), dataflow="online",
    arch_overrides=(("pe.per_layer", 8),),
    variants={"inference": Variant(inference=True), "training": Variant()},
    claims=(Claim("power", "power overhead of on-chip learning", "energy", "overhead", "inference", "training",
                  (0.168,), SPOON_SOURCE),
            Claim("area", "area overhead of on-chip learning", "area", "overhead", "inference", "training",
                  (0.118,), SPOON_SOURCE)),
)
_SPOON_ASSUMPTIONS = (
    "Topology not in the sources available here: modelled as the eCNN the paper describes, one convolutional layer "
    "(assumed 8 kernels of 5x5, stride 2, no padding, on the 28x28 input: 12x12x8) and a fully connected output layer.",
    "Precision not in the sources available here: 8-bit fixed-point weights, activations, errors and updates "
    "(w=8, f=6), 16-bit accumulators.",
    "Event-driven (spike) sparsity is not modelled: every MAC of the equivalent ANN is counted, for inference and "
    "training alike.",
    "Online learning, batch 1, updates added into the weights (dataflow 'online').",
    "Power overhead read as the ratio of energy per example at the same example rate (training energy / inference "
    "energy - 1); area overhead as the area of the training chip over the inference chip (same template, PEs sized "
    "to each chip's widest operation, one bus wire per sending neuron).",
    "8 PEs per layer tile (a small event-driven core).",
)

CHIPS = (
    Chip(key="spoon", name="SPOON (conv + FC output, DRTP on the output layer)",
         network=(Conv2d(1, 8, 5, 28, 28, stride=2, padding="valid", name="conv1"), Dense(1152, 10, name="fc_out")),
         base_overrides=("channel.algorithm=top", "train.batch_size=1", *_formats(8, 6, 16, 12)),
         assumptions=_SPOON_ASSUMPTIONS + (
             "Only the output layer learns (the convolution is trained off chip and fixed): algorithm 'top', the "
             "output layer's update from its error; DRTP's random projection is not needed for a single trained "
             "layer.",), **_SPOON_COMMON),
    Chip(key="spoon_hidden", name="SPOON, sensitivity: conv + FC 100 (DRTP) + FC output",
         network=(Conv2d(1, 8, 5, 28, 28, stride=2, padding="valid", name="conv1"), Dense(1152, 100, name="fc1"),
                  Dense(100, 10, name="fc_out")),
         base_overrides=("channel.algorithm=srbp", "channel.fixed_top=0", "train.batch_size=1",
                         *_formats(8, 6, 16, 12, error="log:alpha=2,bits=1"), "formats.quantize_at=after_fprime"),
         assumptions=_SPOON_ASSUMPTIONS + (
             "Sensitivity variant: a 100-neuron hidden FC layer trained by DRTP, modelled as SRBP with a 1-bit error "
             "(standing for the random projection of the one-hot target). The cost model trains every hidden layer it "
             "is given, so the convolution's channel and update are counted too: an upper bound on the overhead.",), **_SPOON_COMMON),
    Chip(key="park", name="Park, Lee and Jeon (JSSC 2020)", citation=PARK_SOURCE, node_nm=65, vdd_v=1.0,
         facts=("65 nm; inference 236 nJ per MNIST image; training costs 7.5 % more energy than inference; 97.83 % "
                "MNIST accuracy [" + PARK_SOURCE + "]",),
         network=(Dense(784, 200), Dense(200, 200), Dense(200, 10)),
         base_overrides=("channel.algorithm=srbp", "train.batch_size=1",
                         *_formats(8, 6, 16, 12, error="log:alpha=2,bits=1"), "formats.quantize_at=after_fprime"),
         weight_format=_fixed(8, 6), activation_format=_fixed(8, 6), dataflow="online",
         arch_overrides=(("pe.per_layer", 16),),
         variants={"inference": Variant(inference=True), "training": Variant()},
         claims=(Claim("energy", "training energy over inference energy per image", "energy", "overhead",
                       "inference", "training", (0.075,), PARK_SOURCE),),
         assumptions=(
             "Topology not in the sources available here: a 784-200-200-10 network (assumed).",
             "Direct spike-only feedback modelled as SRBP (the output layer's error straight to each hidden layer) "
             "with a 1-bit (sign) error; spikes as 8-bit fixed-point activations; event sparsity not modelled.",
             "8-bit fixed-point weights, updates and feedback, 16-bit accumulators (assumed).",
             "Online learning, batch 1 (dataflow 'online'); 16 PEs per layer tile; supply 1.0 V (assumed).",
         )),
    Chip(key="dflnpu", name="DF-LNPU (JSSC 2021)", citation=DFLNPU_SOURCE, node_nm=65, vdd_v=1.1,
         facts=("65 nm, 0.7-1.1 V, up to 200 MHz; pseudo-random generation of the backward weights cuts external "
                "memory access by 42.8 %; inter- and intra-core pipelining cut processing time by 42.8-68.4 %; "
                "binarized DFA; MDNet-based object tracking [" + DFLNPU_SOURCE + "]",),
         network=(Conv2d(3, 96, 7, 107, 107, stride=2, padding="valid", pool=(3, 2), pool_padding="valid", name="conv1"),
                  Conv2d(96, 256, 5, 25, 25, stride=2, padding="valid", pool=(3, 2), pool_padding="valid", name="conv2"),
                  Conv2d(256, 512, 3, 5, 5, stride=1, padding="valid", name="conv3"),
                  Dense(4608, 512, name="fc4"), Dense(512, 512, name="fc5"), Dense(512, 2, name="fc6")),
         base_overrides=("channel.algorithm=srbp", "train.batch_size=32",
                         *_formats(16, 12, 32, 24, feedback="log:alpha=1,bits=1")),
         weight_format=_fixed(16, 12), activation_format=_fixed(16, 12), dataflow="per_example",
         arch_overrides=(("sram.capacity", "256 KiB"),),
         variants={"stored": Variant(), "prng": Variant(feedback_storage="regenerated"),
                   "sequential_onchip": Variant(arch_overrides=(("sram.capacity", "auto"),)),
                   "pipelined_onchip": Variant(arch_overrides=(("sram.capacity", "auto"),
                                                               ("schedule.pipeline", "examples")))},
         claims=(Claim("ema", "external memory access saved by generating the feedback on chip", "dram_bits",
                       "reduction", "stored", "prng", (0.428,), DFLNPU_SOURCE),
                 Claim("time", "processing time saved by pipelining (DFA)", "time", "reduction", "sequential_onchip",
                       "pipelined_onchip", (0.428, 0.684), DFLNPU_SOURCE)),
         assumptions=(
             "Network: MDNet (Nam and Han, CVPR 2016): VGG-M conv1-3 on a 107x107x3 input (96 7x7/2 + 3x3/2 max-pool, "
             "256 5x5/2 + 3x3/2 max-pool, 512 3x3/1) and fc4 4608-512, fc5 512-512, fc6 512-2; LRN not counted. "
             "Which layers DF-LNPU trains is not in the sources here: all layers are trained (DFA into every layer).",
             "Precision not in the sources here: 16-bit fixed-point weights, activations and errors (w=16, f=12), "
             "32-bit accumulators; binarized feedback = 1-bit sign feedback entries.",
             "On-chip SRAM not in the sources here: 256 KiB, so the weights live in DRAM (EMA claim); the time claim "
             "compares schedules with the state on chip, to isolate the pipeline.",
             "Minibatch 32 (MDNet fine-tunes on small batches), per-example accumulation.",
             "The pipeline claim is read as DFA with and without pipelining (the abstract's 'inter-core and intra-core "
             "pipeline'); our pipeline streams examples through per-layer tiles (ideal, no stalls).",
         )),
)


def metric(budget, name: str) -> float:
    s = budget.summary
    if name == "energy":
        return s["energy_per_example_pj"]["total"]
    if name == "area":
        return s["area"]["total_mm2"]
    if name == "dram_bits":
        return s["dram"]["bits_per_example"]
    if name == "time":
        return s["latency"]["time_per_example_s"]
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


def predicted(claim: Claim, budgets: dict) -> float:
    base, other = metric(budgets[claim.base], claim.metric), metric(budgets[claim.other], claim.metric)
    if base == 0:
        return float("nan")
    return other / base - 1.0 if claim.kind == "overhead" else 1.0 - other / base


def compare(pred: float, published: tuple) -> dict:
    """Predicted beside published: ratio to the published value (to the middle of a range) and whether the
    prediction is within a factor 2 of it (of the range's ends)."""
    low, high = (published[0], published[0]) if len(published) == 1 else published
    mid = (low + high) / 2.0
    within = low / 2.0 <= pred <= high * 2.0 if pred == pred else False
    return {"published_low": low, "published_high": high, "predicted": pred,
            "ratio": pred / mid if mid else float("nan"), "within_2x": within}


def evaluate(chip: Chip, budgets: dict) -> list[dict]:
    """One row per claim of ``chip``, from its variants' budgets {variant name: HardwareBudget}."""
    rows = []
    for c in chip.claims:
        rows.append({"chip": chip.name, "claim": c.quantity, "metric": c.metric, "kind": c.kind,
                     "base": metric(budgets[c.base], c.metric), "other": metric(budgets[c.other], c.metric),
                     **compare(predicted(c, budgets), c.published), "source": c.source})
    return rows


def why_off(chip: Chip, budgets: dict) -> dict:
    """Reasons, per claim key, why the prediction can differ from the published figure (shown in the report
    only where the prediction is off by more than 2x); shares are computed from the budgets."""
    notes = {}
    if chip.key.startswith("spoon"):
        t = budgets["training"].summary["energy_per_example_pj"]
        learn = (t["error_projection"] + t["weight_gradient"] + t["weight_update"]) / t["total"]
        notes["power"] = (f"the model counts every MAC of the equivalent ANN for inference and for learning; learning "
                          f"adds a full weight-gradient pass (one product per weight) and a read-modify-write of every "
                          f"trained weight for every example ({100 * learn:.0f}% of the modelled training energy), "
                          f"whereas SPOON is event-driven (work scales with input spikes, not with MACs), and its "
                          f"16.8% is measured power, which also includes the fixed clock and control power both modes "
                          f"share; both push the published overhead below the modelled one.")
        inf, tr = budgets["inference"].area.by_component_mm2(), budgets["training"].area.by_component_mm2()
        grown = sorted(((k, tr.get(k, 0.0) - inf.get(k, 0.0)) for k in set(tr) | set(inf)), key=lambda kv: -kv[1])
        added = ", ".join(f"{k} {1e3 * d:.3g}" for k, d in grown if d > 0)
        notes["area"] = (f"learning adds {added} (10^-3 mm2) to a modelled inference chip of "
                         f"{budgets['inference'].area.total_mm2:.3g} mm2: only the storage the update needs and the "
                         f"PEs widened to the update's operands. SPOON's learning area (11.8% of 0.32 mm2) also holds "
                         f"its DRTP control and target logic, and its inference area holds neuron state, event "
                         f"routing, control and I/O the model does not have; the modelled overhead moves with the "
                         f"assumed topology (compare the two SPOON rows).")
    if chip.key == "park":
        notes["energy"] = ("the 7.5% comes from a spiking design where feedback is spike-only and updates are sparse "
                           "(few neurons spike, few weights change per image); the model updates every weight of every "
                           "layer for every image with a full product and a weight read-modify-write, so its learning "
                           "energy is of the order of the forward pass itself.")
    if chip.key == "dflnpu":
        s = budgets["stored"]
        fb = sum(r.count for r in s.rows if r.dtype == "dram" and r.what == "feedback_matrix")
        tot = s.summary["dram"]["bits_per_example"] or 1.0
        notes["ema"] = (f"in the model the feedback matrices are {100 * fb / tot:.2g}% of the DRAM traffic: with "
                        f"binarized (1-bit) feedback and 2 outputs they are tiny beside the 16-bit weights, which the "
                        f"model re-reads from DRAM for every example (no reuse across a minibatch). A 42.8% saving "
                        f"means the feedback traffic was comparable to the rest, i.e. DF-LNPU reuses its weights "
                        f"across examples or keeps them on chip, or streams wider (or per-sample) feedback.")
        notes["time"] = ("the model's ideal pipeline streams examples through per-layer tiles; its gain is limited by "
                         "the busiest tile (the largest layer's forward and update) versus the whole example's path, "
                         "while DF-LNPU also pipelines inside the cores and overlaps the three learning stages of "
                         "different layers, which our per-tile serial steps do not.")
    return notes
