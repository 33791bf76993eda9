"""Number formats of the learning channel, as small value objects.

One format object means the same thing everywhere: the kernels quantize with it, the training
loop places it at a quantization point, and the cost model reads its bit width and kind of
arithmetic from it. Spec strings parse to these objects and each object prints back its spec:

    float32
    log:alpha=2,bits=3[,underflow=stochastic|clip|flush][,levels=paper|full]
    fixed:w=8,f=6[,signed=1][,round=nearest_even|nearest_away|truncate|stochastic][,overflow=saturate|wrap]

The arithmetic lives in ``kernels`` (NumPy reference, Numba CPU, Numba CUDA); a format only
describes the grid and the rounding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError, bad_value

ROUNDINGS = ("nearest_even", "nearest_away", "truncate", "stochastic")
OVERFLOWS = ("saturate", "wrap")
UNDERFLOWS = ("clip", "flush", "stochastic")
LEVELS = ("paper", "full")
# Random bits per stochastic rounding: the kernels draw one uniform on a 2^-24 grid per rounded value
# (kernels/reference/rng.py uniform_counter); the cost model prices them as random bits.
UNIFORM_BITS = 24


@dataclass(frozen=True)
class Float32:
    """No quantization: the signal is carried as an IEEE single."""

    @property
    def bits(self) -> int:
        return 32

    @property
    def kind(self) -> str:
        return "float"

    @property
    def spec(self) -> str:
        return "float32"

    @property
    def random_bits(self) -> int:
        """Random bits one rounding into this format draws (none: nothing is rounded)."""
        return 0

    def quantize(self, x, *, seed: int = 0, counter: int = 0):
        from kernels import reference
        return reference.passthrough(x)


@dataclass(frozen=True)
class LogQuant:
    """Log-scale quantizer of the paper (eq. 19): ``alpha * sign(x) * 2^round(clip(log2(|x|/alpha), -E, 0))``.

    ``bits`` counts the sign bit. With ``levels="paper"`` the exponent runs over -(bits-1)..0
    (eq. 19 as printed: ``bits`` magnitudes); with ``levels="full"`` it runs over
    -(2^(bits-1)-1)..0 (2^(bits-1) magnitudes, the text's "2^bits values"). One bit is the sign.

    Underflow (``|x| < alpha * 2^-E``, rounded in the log domain below the smallest level):
    ``clip`` maps it up to the smallest level (eq. 19 as printed: no zero except for exact 0),
    ``flush`` maps it to 0, ``stochastic`` maps it to the smallest level with probability
    ``|x| / smallest`` and to 0 otherwise (unbiased). Exact zeros always stay zero.

    The default, ``underflow="stochastic"`` with ``levels="paper"`` and the quantizer placed before
    f', is the reading that best reproduces the paper's quantized rows of Table 1 in our study
    (reports/quantization_semantics.md). Spec strings always name both options, so a stored result
    keeps its meaning if a default ever changes.
    """

    alpha: float
    bits: int
    underflow: str = "stochastic"
    levels: str = "paper"

    def __post_init__(self):
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha > 0):
            raise bad_value("LogQuant alpha", self.alpha, "a finite number > 0")
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or self.bits < 1:
            raise bad_value("LogQuant bits", self.bits, "an integer >= 1")
        if self.bits > 24:
            raise bad_value("LogQuant bits", self.bits, "1..24 (wider log formats exceed float32 range)")
        if self.underflow not in UNDERFLOWS:
            raise bad_value("LogQuant underflow", self.underflow, ", ".join(UNDERFLOWS))
        if self.levels not in LEVELS:
            raise bad_value("LogQuant levels", self.levels, ", ".join(LEVELS))

    @property
    def kind(self) -> str:
        return "log"

    @property
    def random_bits(self) -> int:
        """Random bits one rounding draws: a 24-bit uniform for the stochastic underflow (the
        kernels' counter-based uniforms are on a 2^-24 grid), none for flush."""
        return UNIFORM_BITS if self.underflow == "stochastic" else 0

    @property
    def min_exponent(self) -> int:
        """The smallest exponent E_min (<= 0): levels are alpha * 2^e for e in E_min..0."""
        if self.bits == 1:
            return 0
        return -(self.bits - 1) if self.levels == "paper" else -(2 ** (self.bits - 1) - 1)

    def magnitudes(self):
        """The non-zero magnitudes of the grid, smallest first."""
        return [self.alpha * 2.0 ** e for e in range(self.min_exponent, 1)]

    @property
    def spec(self) -> str:
        return f"log:alpha={_num(self.alpha)},bits={self.bits},underflow={self.underflow},levels={self.levels}"

    def quantize(self, x, *, seed: int = 0, counter: int = 0):
        from kernels import reference
        return reference.quantize_log(x, self, seed=seed, counter=counter)


@dataclass(frozen=True)
class FixedPoint:
    """Two's-complement (or unsigned) fixed point: ``word`` bits of which ``frac`` are fraction bits.

    Values are ``k * 2^-frac`` with k in [-2^(word-1), 2^(word-1)-1] (signed) or [0, 2^word-1].
    Rounding: ``nearest_even``, ``nearest_away`` (ties away from zero), ``truncate`` (drop the
    fraction bits of the two's-complement word, i.e. floor, what a hardware bit-slice does),
    ``stochastic`` (floor(x*2^frac + u), u uniform from a counter-based RNG: unbiased).
    Overflow: ``saturate`` to the end of the range or ``wrap`` modulo 2^word.
    """

    word: int
    frac: int
    signed: bool = True
    rounding: str = "nearest_even"
    overflow: str = "saturate"

    def __post_init__(self):
        if not isinstance(self.word, int) or isinstance(self.word, bool) or self.word < 1:
            raise bad_value("FixedPoint word", self.word, "an integer >= 1")
        if self.word > 32:
            raise bad_value("FixedPoint word", self.word, "1..32")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool) or self.frac < 0:
            raise bad_value("FixedPoint frac", self.frac, "an integer >= 0")
        if self.frac > self.word:
            raise ConfigError(f"FixedPoint: frac={self.frac} exceeds word={self.word}; allowed: 0 <= frac <= word")
        if self.signed and self.word < 2:
            raise bad_value("FixedPoint word (signed)", self.word, "an integer >= 2 for a signed format")
        if self.rounding not in ROUNDINGS:
            raise bad_value("FixedPoint rounding", self.rounding, ", ".join(ROUNDINGS))
        if self.overflow not in OVERFLOWS:
            raise bad_value("FixedPoint overflow", self.overflow, ", ".join(OVERFLOWS))

    @property
    def bits(self) -> int:
        return self.word

    @property
    def kind(self) -> str:
        return "fixed"

    @property
    def random_bits(self) -> int:
        """Random bits one rounding draws: a 24-bit uniform for stochastic rounding, none otherwise."""
        return UNIFORM_BITS if self.rounding == "stochastic" else 0

    @property
    def int_min(self) -> int:
        return -(2 ** (self.word - 1)) if self.signed else 0

    @property
    def int_max(self) -> int:
        return 2 ** (self.word - 1) - 1 if self.signed else 2 ** self.word - 1

    @property
    def scale(self) -> float:
        """Value of one least-significant bit."""
        return 2.0 ** -self.frac

    @property
    def spec(self) -> str:
        s = f"fixed:w={self.word},f={self.frac}"
        if not self.signed:
            s += ",signed=0"
        if self.rounding != "nearest_even":
            s += f",round={self.rounding}"
        if self.overflow != "saturate":
            s += f",overflow={self.overflow}"
        return s

    def quantize(self, x, *, seed: int = 0, counter: int = 0):
        from kernels import reference
        return reference.quantize_fixed(x, self, seed=seed, counter=counter)


Format = Float32 | LogQuant | FixedPoint

_KEYS = {
    "log": {"alpha": "alpha", "bits": "bits", "underflow": "underflow", "levels": "levels"},
    "fixed": {"w": "word", "word": "word", "f": "frac", "frac": "frac", "signed": "signed",
              "round": "rounding", "rounding": "rounding", "overflow": "overflow"},
}


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _parse_value(kind: str, key: str, raw: str):
    name = _KEYS[kind][key]
    try:
        if name in ("bits", "word", "frac"):
            return name, int(raw)
        if name == "alpha":
            return name, float(raw)
        if name == "signed":
            if raw.lower() not in ("0", "1", "true", "false"):
                raise ValueError
            return name, raw.lower() in ("1", "true")
    except ValueError:
        raise ConfigError(f"number format: {key}={raw!r} is not a valid value for '{kind}'") from None
    return name, raw


def parse_format(spec) -> Format:
    """Parse a spec string (or pass a format object through)."""
    if isinstance(spec, (Float32, LogQuant, FixedPoint)):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise bad_value("number format", spec, "'float32', 'log:alpha=A,bits=B', 'fixed:w=W,f=F'")
    text = spec.strip().lower()
    if text in ("float32", "float", "fp32", "none"):
        return Float32()
    kind, _, rest = text.partition(":")
    if kind not in _KEYS:
        raise bad_value("number format kind", kind, "float32, log, fixed")
    fields = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or key not in _KEYS[kind]:
            raise ConfigError(f"number format {spec!r}: unknown field {key!r}; allowed for '{kind}': "
                              f"{', '.join(sorted(_KEYS[kind]))}")
        name, value = _parse_value(kind, key, raw.strip())
        fields[name] = value
    try:
        return LogQuant(**fields) if kind == "log" else FixedPoint(**fields)
    except TypeError as exc:
        need = "alpha, bits" if kind == "log" else "w, f"
        raise ConfigError(f"number format {spec!r}: missing fields ({need} are required)") from exc
