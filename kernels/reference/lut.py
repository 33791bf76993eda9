"""f' as a lookup table over the forward output, and the fused scale-and-round of the bit-true
learning channel.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .quantize import _f32, quantize_f64

#: The forward-output interval a table covers, per activation (bounded outputs only).
FPRIME_DOMAINS = {"tanh": (-1.0, 1.0), "logistic": (0.0, 1.0)}
FPRIME_MAX_ENTRIES = 1 << 16


class FprimeTable(NamedTuple):
    """f' as a lookup table over the forward output o in [lo, hi]: ``entries`` uniform bins.

    Bin i covers [lo + i*w, lo + (i+1)*w) with w = (hi - lo) / entries (the last bin includes hi);
    its entry is f' at the bin's centre, quantized to ``fmt``. o below lo (above hi) takes the
    first (last) bin; NaN gives NaN. lo and hi are integers with hi - lo a power of two (tanh:
    [-1, 1], logistic: [0, 1]), so that every float32 o finds its bin exactly (``fprime_index``).
    """

    values: np.ndarray   # float32, (entries,)
    lo: float
    hi: float
    activation: str
    fmt_spec: str

    def index_params(self) -> tuple:
        """``(lo * entries, 1 / (hi - lo), entries)`` as floats: the kernels' indexing constants."""
        k = float(np.size(self.values))
        return float(self.lo) * k, 1.0 / (float(self.hi) - float(self.lo)), k


def _fprime_of_output(activation: str, o: np.ndarray) -> np.ndarray:
    if activation == "tanh":
        return 1.0 - o * o
    return o * (1.0 - o)                            # logistic


def fprime_table(activation: str, entries: int, fmt=None) -> FprimeTable:
    """The lookup table of f' for ``activation`` (tanh: o in [-1, 1], f' = 1 - o^2; logistic:
    o in [0, 1], f' = o (1 - o)) with ``entries`` bins, each entry f'(bin centre) computed in
    float64 and quantized to ``fmt`` (None: float32; a stochastic format draws entry i with
    seed 0, counter i, so a table is a fixed function of its arguments)."""
    if activation not in FPRIME_DOMAINS:
        raise ValueError(f"fprime_table: activation {activation!r}; allowed: {', '.join(FPRIME_DOMAINS)} "
                         f"(a table needs a bounded output)")
    if not isinstance(entries, (int, np.integer)) or isinstance(entries, bool) \
            or not 2 <= entries <= FPRIME_MAX_ENTRIES:
        raise ValueError(f"fprime_table: entries={entries!r}; allowed: an integer in 2..{FPRIME_MAX_ENTRIES}")
    lo, hi = FPRIME_DOMAINS[activation]
    centres = lo + (np.arange(entries, dtype=np.float64) + 0.5) * ((hi - lo) / entries)
    exact = _fprime_of_output(activation, centres)
    values = _f32(exact) if fmt is None else quantize_f64(exact, fmt)
    return FprimeTable(values, lo, hi, activation, getattr(fmt, "spec", "float32"))


def check_fprime_table(table, what: str = "fprime_lut") -> None:
    values = getattr(table, "values", None)
    if values is None or np.ndim(values) != 1 or not 2 <= np.size(values) <= FPRIME_MAX_ENTRIES:
        size = None if values is None else np.shape(values)
        raise ValueError(f"{what}: f' table has values of shape {size}; allowed: a table from fprime_table "
                         f"with 2..{FPRIME_MAX_ENTRIES} entries")
    lo, hi = table.lo, table.hi
    span = hi - lo if np.isfinite(lo) and np.isfinite(hi) else 0
    if not (float(lo).is_integer() and float(hi).is_integer() and span >= 1 and math.frexp(span)[0] == 0.5):
        raise ValueError(f"{what}: f' table interval [{lo}, {hi}]; allowed: integers lo < hi with hi - lo a power "
                         f"of two (as fprime_table builds)")


def fprime_index(o, table: FprimeTable) -> np.ndarray:
    """int64 bin of each forward output: floor((o - lo) * k / (hi - lo)) in exact arithmetic
    (k entries), clamped to 0..k-1; -1 where o is NaN.

    Computed exactly as floor((floor(o * k) - lo * k) / (hi - lo)): o * k is exact in float64
    (24 + 17 bits), and floor((floor(x) + c) / s) = floor((x + c) / s) for integers c and s > 0.
    (The direct (o - lo) * k / (hi - lo) in float64 would round a tiny negative o up across the
    middle edge of a tanh table.)
    """
    lo_k, inv_span, k = table.index_params()
    od = np.asarray(o, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        t = np.clip(np.floor((np.floor(od * k) - lo_k) * inv_span), 0, k - 1)
    t[np.isnan(od)] = -1
    return t.astype(np.int64)


def fprime_lut(o, table: FprimeTable) -> np.ndarray:
    """f' of float32 forward outputs ``o`` by table lookup (``fprime_index``); float32, NaN for NaN."""
    check_fprime_table(table)
    idx = fprime_index(o, table)
    out = np.asarray(table.values, np.float32)[np.maximum(idx, 0)]
    out[idx < 0] = np.nan
    return out


def fixed_scale_round(J, fp, out_fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``Q_out(J * fp)``: the received signal times f', rounded once to the signal format.

    J and fp are float32 of one shape; their product is exact in float64 and quantized directly
    (no float32 step) with ``out_fmt``'s rounding; element i (flat, C order) uses counter
    ``counter + i``. With Float32 (or None) the result is the float32 product.
    """
    J = np.asarray(J, dtype=np.float32)
    fp = np.asarray(fp, dtype=np.float32)
    if J.shape != fp.shape:
        raise ValueError(f"fixed_scale_round: J has shape {J.shape} and fp {fp.shape}; they must match")
    prod = J.astype(np.float64) * fp.astype(np.float64)
    if out_fmt is None:
        return _f32(prod)
    return quantize_f64(prod, out_fmt, seed=seed, counter=counter)
