"""The learning algorithms, described once: what each one's learning channel is.

Every algorithm trains the top layer like BP; they differ only in where a hidden layer's received
signal ``J^k`` comes from (its *link*: the sending layer and the matrix it passes through) and in
whether that matrix learns. This module is the one place that knows it. The training channel
(``lowbit_rbp.learning.channel``), config validation, the cost model (``lowbit_rbp.cost``) and
the reports read these descriptors; no other list of algorithm names exists.

Indexing: weight layer k = 0..L-1 maps ``O[k]`` to ``O[k+1]``; hidden layers are k = 0..L-2. A
link into hidden layer k has a ``sender`` (the weight layer whose signal ``R[sender]`` it carries)
and a ``source`` of its matrix:

    forward          BP: the forward weights W[k+1], used transposed
    random           RBP, SRBP (and the adaptive ones): a fixed random C^k from the feedback factory
    forward_product  SBP: the product of the forward matrices above k (recomputed as they change)
"""
from __future__ import annotations

from dataclasses import dataclass

from hw_models.records import Link   # (receiver, sender, source): what the hardware schedule reads too

from ..errors import ConfigError, bad_value

SOURCES = ("forward", "random", "forward_product")


@dataclass(frozen=True)
class Algorithm:
    name: str            # config value, e.g. "srbp"
    label: str           # display name, e.g. "SRBP"
    description: str
    source: str | None   # matrix of its links (SOURCES), None: no learning channel
    skipped: bool        # every hidden layer hears the output layer directly
    adaptive: bool = False   # the feedback matrices learn: dC = eta_c O^{k+1} R_sender^T
    column: str = ""     # the paper's Table 1 column it belongs to (ARBP sits in RBP's)
    family: str = ""     # the base algorithm it is a variant of (reports list families together)

    @property
    def trains_hidden(self) -> bool:
        return self.source is not None

    @property
    def random_feedback(self) -> bool:
        """Its links use matrices drawn by the feedback factory (``channel.feedback`` applies)."""
        return self.source == "random"

    @property
    def layer_to_layer(self) -> bool:
        return self.trains_hidden and not self.skipped

    def sender(self, k: int, n_layers: int) -> int:
        """The weight layer whose signal hidden layer k receives."""
        return n_layers - 1 if self.skipped else k + 1

    def links(self, n_layers: int) -> list[Link]:
        """One link per hidden layer (none when the hidden layers are not trained), top-down order
        not implied: sort by ``-receiver`` to compute senders first."""
        if not self.trains_hidden:
            return []
        return [Link(k, self.sender(k, n_layers), self.source) for k in range(n_layers - 1)]

    def trains(self, k: int, n_layers: int, fixed_top: int = 0) -> bool:
        """Whether weight layer k is updated: the top layer always (unless held fixed), hidden
        layers when the algorithm has a learning channel."""
        if k >= n_layers - fixed_top:
            return False
        return k == n_layers - 1 or self.trains_hidden


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("bp", "BP", "backpropagation: the forward weights carry the signal down, layer to layer",
              "forward", skipped=False, column="bp", family="bp"),
    Algorithm("rbp", "RBP", "random backpropagation: fixed random matrices, layer to layer",
              "random", skipped=False, column="rbp", family="rbp"),
    Algorithm("srbp", "SRBP", "skipped RBP: the output error straight to every hidden layer through fixed "
              "random matrices", "random", skipped=True, column="srbp", family="srbp"),
    Algorithm("sbp", "SBP", "skipped BP: the output error to every hidden layer through the product of the "
              "forward matrices above it", "forward_product", skipped=True, column="sbp", family="bp"),
    Algorithm("top", "Top only", "top layer only: hidden layers stay at their initial values", None,
              skipped=False, column="top", family="top"),
    Algorithm("arbp", "ARBP", "adaptive RBP: RBP whose random matrices learn", "random", skipped=False,
              adaptive=True, column="rbp", family="rbp"),
    Algorithm("asrbp", "ASRBP", "adaptive SRBP: SRBP whose random matrices learn", "random", skipped=True,
              adaptive=True, column="srbp", family="srbp"),
)}

NAMES = tuple(ALGORITHMS)
# The order reports list algorithms in: each base algorithm, then its variants (BP, SBP, RBP, ARBP, ...).
REPORT_ORDER = tuple(sorted(NAMES, key=lambda n: (NAMES.index(ALGORITHMS[n].family), ALGORITHMS[n].adaptive,
                                                 ALGORITHMS[n].skipped)))


def algorithm(name) -> Algorithm:
    """The descriptor of an algorithm name (or the descriptor itself)."""
    if isinstance(name, Algorithm):
        return name
    if name not in ALGORITHMS:
        raise bad_value("channel.algorithm", name, ", ".join(NAMES))
    return ALGORITHMS[name]


def names_where(**props) -> tuple[str, ...]:
    """Names of the algorithms whose properties equal ``props`` (for messages: 'rbp, arbp')."""
    return tuple(a.name for a in ALGORITHMS.values() if all(getattr(a, k) == v for k, v in props.items()))


def check_combination(cfg, layer_kinds) -> None:
    """Refuse the combinations no learning channel defines, with the reason; ``layer_kinds`` are the
    net's weight layers ("dense" or "conv"). Training and the cost model both call this, so they
    accept and refuse the same configurations with the same message."""
    c, f = cfg.channel, cfg.formats
    alg = algorithm(c.algorithm)
    fb = c.feedback
    if fb.needs_forward_sign and not (alg.random_feedback and alg.layer_to_layer):
        raise ConfigError(f"channel.feedback: sign_concordant needs a layer-to-layer random channel "
                          f"({', '.join(names_where(source='random', skipped=False))}); got algorithm {alg.name!r}")
    if c.per_weight and not (alg.random_feedback and alg.skipped):
        # Per-weight signals leave no per-neuron signal to pass on layer to layer, so only the
        # skipped channel (every layer fed from the output error) is defined.
        raise ConfigError(f"channel.per_weight needs a skipped random channel "
                          f"({', '.join(names_where(source='random', skipped=True))}); got {alg.name!r}")
    if "conv" in layer_kinds:
        quantized_update = f.update.kind != "float" or f.accumulator.kind != "float"
        what = ("channel.per_weight" if c.per_weight else
                "formats.update/accumulator" if quantized_update else
                "channel.algorithm=sbp" if alg.source == "forward_product" else None)
        if what:
            raise ConfigError(f"{what} is defined for MLP models only (model.conv = {list(cfg.model.conv)}); conv "
                              f"nets support {', '.join(n for n in NAMES if ALGORITHMS[n].source != 'forward_product')} "
                              "with any feedback, f', dropout, update mode and error/signal/feedback formats")
        if fb.kind == "lowrank" and alg.random_feedback and alg.layer_to_layer and \
                any(kind == "conv" for kind in layer_kinds[1:]):
            raise ConfigError(f"channel.feedback {fb.spec!r}: low-rank feedback is defined for dense maps; "
                              f"{alg.name} sends signals down through the random kernels of the conv blocks "
                              "(use srbp, whose maps are dense, or another feedback)")
