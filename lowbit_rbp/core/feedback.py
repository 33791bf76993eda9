"""Feedback matrices of the learning channel, built by one factory from a spec string.

A feedback matrix ``B`` has shape ``(sender, receiver)``: the receiving layer gets
``J = R_sender @ B`` (so for RBP ``B^h`` sits where BP would use ``W^{h+1}``, and for SRBP the
sender is the output layer). The *fan-in* of a receiving neuron is ``sender``.

Specs:
    glorot_normal[:mean=M]      N(M, 2/(fan_in+fan_out))           (default)
    glorot_uniform[:mean=M]     U(M-a, M+a), a = sqrt(6/(fan_in+fan_out))
    sparse:n=K[,scale=auto|one|inv_n][,per=receiver|sender]
                                Bernoulli {0,1} with p = K / fan_in: K expected non-zeros per
                                receiving neuron (``per=receiver``, fan_in = sender); with
                                ``per=sender``, K expected non-zeros per sending neuron
                                (p = K / receiver), the reading of the paper's Figure 5, where
                                n = 100 sets every SRBP feedback weight of a 100-unit layer to 1.
                                The two agree for equal layer widths (RBP on the paper's net).
                                Scale ``auto`` is 1/K for layer-to-layer channels (RBP, where the
                                paper scales to stop error growth) and 1 for skipped ones (SRBP)
    lowrank:r=R                 rank-R truncated SVD of a glorot_uniform matrix
    sign_concordant             |glorot_normal| magnitudes; the sign is taken from the current
                                forward weights at every step (RBP-type channels only)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, bad_value

KINDS = ("glorot_normal", "glorot_uniform", "sparse", "lowrank", "sign_concordant")
SPARSE_SCALES = ("auto", "one", "inv_n")
SPARSE_PER = ("receiver", "sender")
_PARAMS = {
    "glorot_normal": {"mean": float},
    "glorot_uniform": {"mean": float},
    "sparse": {"n": int, "scale": str, "per": str},
    "lowrank": {"r": int},
    "sign_concordant": {},
}
_FIELD = {"scale": "scale_rule"}    # spec key -> FeedbackSpec field where they differ


@dataclass(frozen=True)
class FeedbackSpec:
    kind: str = "glorot_normal"
    mean: float = 0.0
    n: int = 0
    scale_rule: str = "auto"     # the spec's ``scale=``; ``scale(skipped)`` gives the value
    per: str = "receiver"
    r: int = 0

    @property
    def spec(self) -> str:
        if self.kind in ("glorot_normal", "glorot_uniform"):
            return self.kind + (f":mean={self.mean}" if self.mean else "")
        if self.kind == "sparse":
            return (f"sparse:n={self.n}" + (f",scale={self.scale_rule}" if self.scale_rule != "auto" else "")
                    + (f",per={self.per}" if self.per != "receiver" else ""))
        if self.kind == "lowrank":
            return f"lowrank:r={self.r}"
        return self.kind

    @property
    def needs_forward_sign(self) -> bool:
        return self.kind == "sign_concordant"

    def density(self, sender: int, receiver: int) -> float:
        """Probability that an entry of a ``(sender, receiver)`` matrix is non-zero (1 but for sparse):
        ``n / sender`` (``per=receiver``: n non-zeros per receiving neuron, whose fan-in is ``sender``)
        or ``n / receiver`` (``per=sender``), at most 1."""
        if self.kind != "sparse":
            return 1.0
        return min(1.0, self.n / (sender if self.per == "receiver" else receiver))

    def scale(self, skipped: bool) -> float:
        """The value of a sparse matrix's non-zeros: ``auto`` is 1/n for layer-to-layer channels (RBP,
        where the paper scales to stop error growth) and 1 for skipped ones (SRBP)."""
        if self.kind != "sparse":
            return 1.0
        scale = self.scale_rule if self.scale_rule != "auto" else ("one" if skipped else "inv_n")
        return 1.0 / self.n if scale == "inv_n" and self.n > 0 else 1.0

    def two_factors(self, shape: tuple[int, int]) -> bool:
        """A low-rank matrix is applied as its two factors (sender x r, then r x receiver) when that
        is the cheaper circuit: fewer products, r (sender + receiver) < sender receiver."""
        return self.kind == "lowrank" and self.r * (shape[0] + shape[1]) < shape[0] * shape[1]

    def check_shape(self, shape: tuple[int, int], where: str = "") -> None:
        """Refuse a matrix shape this spec cannot fill (a rank above the matrix's)."""
        if self.kind == "lowrank" and self.r > min(shape):
            raise bad_value(f"feedback lowrank r{where}", self.r,
                            f"1..{min(shape)} for a {shape[0]}x{shape[1]} matrix")


def parse_feedback_spec(spec) -> FeedbackSpec:
    if isinstance(spec, FeedbackSpec):
        return spec
    if not isinstance(spec, str):
        raise bad_value("feedback spec", spec, "a string such as " + ", ".join(KINDS))
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise bad_value("feedback spec kind", kind, ", ".join(KINDS))
    values = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq or key not in _PARAMS[kind]:
            allowed = ", ".join(_PARAMS[kind]) or "no parameters"
            raise ConfigError(f"feedback spec {spec!r}: unknown parameter {key!r}; allowed for '{kind}': {allowed}")
        try:
            values[_FIELD.get(key, key)] = _PARAMS[kind][key](raw)
        except ValueError:
            raise ConfigError(f"feedback spec {spec!r}: {key}={raw!r} is not a valid {_PARAMS[kind][key].__name__}") from None
    fs = FeedbackSpec(kind=kind, **values)
    if kind == "sparse" and fs.n < 0:
        raise bad_value("feedback sparse n", fs.n, "an integer >= 0 (expected non-zeros per receiving neuron)")
    if kind == "sparse" and "n" not in values:
        raise ConfigError(f"feedback spec {spec!r}: sparse needs n=K (expected non-zeros per receiving neuron)")
    if kind == "sparse" and fs.scale_rule not in SPARSE_SCALES:
        raise bad_value("feedback sparse scale", fs.scale_rule, ", ".join(SPARSE_SCALES))
    if kind == "sparse" and fs.per not in SPARSE_PER:
        raise bad_value("feedback sparse per", fs.per, ", ".join(SPARSE_PER))
    if kind == "lowrank" and fs.r < 1:
        raise bad_value("feedback lowrank r", fs.r, "an integer >= 1")
    return fs


def glorot_std(fan_in: int, fan_out: int) -> float:
    return float(np.sqrt(2.0 / (fan_in + fan_out)))


def build_feedback(spec, shape: tuple[int, int], rng: np.random.Generator, *, skipped: bool = False,
                   fans: tuple[int, int] | None = None) -> np.ndarray:
    """Draw one feedback matrix of ``shape = (sender, receiver)`` as float32.

    ``skipped`` says the channel skips layers (SRBP-type); it only changes the automatic scale
    of sparse matrices. For ``sign_concordant`` the magnitudes are returned; the channel applies
    the forward weights' signs. ``fans`` (fan_in, fan_out) sets the Glorot scale when it differs
    from the shape's (a random conv kernel: the forward kernel's fans, Cin*k*k and Cout*k*k).
    """
    fs = parse_feedback_spec(spec)
    sender, receiver = shape
    if sender < 1 or receiver < 1:
        raise bad_value("feedback matrix shape", shape, "two sizes >= 1")
    fan_a, fan_b = fans if fans is not None else shape
    if fs.kind in ("glorot_normal", "sign_concordant"):
        m = rng.normal(fs.mean, glorot_std(fan_a, fan_b), size=shape)
        if fs.kind == "sign_concordant":
            m = np.abs(m)
    elif fs.kind == "glorot_uniform":
        a = np.sqrt(6.0 / (fan_a + fan_b))
        m = rng.uniform(fs.mean - a, fs.mean + a, size=shape)
    elif fs.kind == "sparse":
        m = (rng.random(size=shape) < fs.density(sender, receiver)).astype(np.float64)
        m *= fs.scale(skipped)
    else:  # lowrank
        left, right = _lowrank_factors(fs, shape, rng, fan_a, fan_b)
        m = left @ right
    return np.ascontiguousarray(m, dtype=np.float32)


def build_feedback_factors(spec, shape: tuple[int, int], rng: np.random.Generator, *,
                           fans: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A low-rank feedback matrix as its two float32 factors, ``(sender, r)`` and ``(r, receiver)``,
    from the same draws ``build_feedback`` makes its product of."""
    fs = parse_feedback_spec(spec)
    if fs.kind != "lowrank":
        raise bad_value("feedback factors of spec", fs.spec, "a lowrank:r=R spec")
    fan_a, fan_b = fans if fans is not None else shape
    left, right = _lowrank_factors(fs, shape, rng, fan_a, fan_b)
    return np.ascontiguousarray(left, dtype=np.float32), np.ascontiguousarray(right, dtype=np.float32)


def _lowrank_factors(fs: FeedbackSpec, shape, rng, fan_a, fan_b):
    """The rank-r truncated SVD of a Glorot-uniform matrix, as (U S, V^T) in float64."""
    fs.check_shape(shape)
    a = np.sqrt(6.0 / (fan_a + fan_b))
    full = rng.uniform(-a, a, size=shape)
    u, s, vt = np.linalg.svd(full, full_matrices=False)
    return u[:, : fs.r] * s[: fs.r], vt[: fs.r]
