"""Published energy figures printed beside our results as sanity anchors (not used in any sum).

Each carries its scope (what the price covers) and evidence (simulated or measured), as HW_COSTS.md asks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Anchor:
    key: str
    name: str
    value: float
    unit: str
    scope: str
    evidence: str
    node: str
    source: str
    compare_with: str   # which of our summary figures it is set beside

    def to_dict(self) -> dict:
        return asdict(self)


ANCHORS = (
    Anchor("loihi_sop", "Loihi synaptic op", 23.6, "pJ per synaptic op",
           "per-term (one synaptic spike operation, minimum)", "simulated (pre-silicon, minimum)", "14 nm",
           "M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', IEEE Micro 38(1), 2018",
           "forward_pj_per_mac"),
    Anchor("truenorth_event", "TrueNorth synaptic event", 26.0, "pJ per synaptic event",
           "all-in (chip energy per synaptic event)", "measured", "28 nm",
           "P. A. Merolla et al., 'A million spiking-neuron integrated circuit with a scalable communication network "
           "and interface', Science 345(6197), 2014", "forward_pj_per_mac"),
    Anchor("spoon_mnist", "SPOON MNIST classification", 313.0, "nJ per classification",
           "all-in per MNIST inference", "measured", "28 nm",
           "C. Frenkel, J.-D. Legat, D. Bol, 'A 28-nm convolutional neuromorphic processor enabling online learning "
           "with spike-based retinas', ISCAS 2020", "forward_nj_per_example"),
    Anchor("loihi_stdp", "Loihi synaptic update (STDP)", 120.0, "pJ per synaptic update",
           "per-term (one learning-rule update of a synapse)", "simulated (pre-silicon)", "14 nm",
           "M. Davies et al., IEEE Micro 38(1), 2018", "update_pj_per_weight"),
    Anchor("odin_sop", "ODIN synaptic op", 12.7, "pJ per synaptic op", "per-term", "measured", "28 nm",
           "C. Frenkel, M. Lefebvre, J.-D. Legat, D. Bol, 'A 0.086-mm^2 12.7-pJ/SOP 64k-synapse 256-neuron online-"
           "learning digital spiking neuromorphic processor in 28-nm CMOS', IEEE TBioCAS 13(1), 2019",
           "forward_pj_per_mac"),
)
