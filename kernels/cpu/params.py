"""Kernel arguments from formats: a format packed as the kernels' float64 tuple
(``format_params``, layout ``KIND`` .. ``SPAN``), RNG counters as uint64 (``u64``), and the loop
variant and level table a format takes (``kernel_mode``; the threshold tables of small log formats,
``log_table``, derived from the reference's own exponent rule)."""
from __future__ import annotations

import numpy as np

_MOD64 = 2 ** 64

# Format parameter tuple layout (all float64).
KIND, ALPHA, EMIN, UNDERFLOW, SMALLEST, ROUNDING, OVERFLOW, SCALE_IN, SCALE_OUT, INT_MIN, INT_MAX, SPAN = range(12)
PARAMS = 12
_ROUNDING = {"nearest_even": 0.0, "nearest_away": 1.0, "truncate": 2.0, "stochastic": 3.0}
_UNDERFLOW = {"clip": 0.0, "flush": 1.0, "stochastic": 2.0}


def format_params(fmt) -> tuple:
    """A format (Float32 / LogQuant / FixedPoint, or None for Float32) as the kernels' float tuple."""
    p = [0.0] * PARAMS
    kind = "float" if fmt is None else getattr(fmt, "kind", None)
    if kind == "log":
        p[KIND], p[ALPHA], p[EMIN] = 1.0, float(fmt.alpha), float(fmt.min_exponent)
        p[UNDERFLOW] = _UNDERFLOW[fmt.underflow] if fmt.bits > 1 else 0.0
        p[SMALLEST] = fmt.alpha * 2.0 ** fmt.min_exponent
    elif kind == "fixed":
        p[KIND] = 2.0
        p[ROUNDING] = _ROUNDING[fmt.rounding]
        p[OVERFLOW] = 0.0 if fmt.overflow == "saturate" else 1.0
        p[SCALE_IN], p[SCALE_OUT] = 2.0 ** fmt.frac, 2.0 ** -fmt.frac
        p[INT_MIN], p[INT_MAX], p[SPAN] = float(fmt.int_min), float(fmt.int_max), 2.0 ** fmt.word
    elif kind != "float":
        raise ValueError(f"number format: got {fmt!r}; allowed: Float32, LogQuant, FixedPoint")
    return tuple(p)


def u64(counter: int) -> np.uint64:
    return np.uint64(int(counter) % _MOD64)


# Loop variants of ``quantize_flat``, ``per_example_update``, ``add_quantize_flat`` and
# ``fixed_scale_round`` (``kernel_mode``). All return the bits of ``quant_value``; the specialised
# ones are branch-free over the data (they vectorize). The log variants come last: the kernels
# test ``mode >= LOG_BITS`` for "a log loop".
(GENERAL, FIXED_NE_SAT, FIXED_SR_SAT, FIXED_SR_WRAP,
 LOG_BITS, LOG_TABLE, LOG_TABLE_STOCH, LOG_BITS_STOCH) = range(8)
#: Log formats with at most this many levels take the threshold-table loops.
TABLE_LEVELS = 8
TABLE_SIZE = 2 * TABLE_LEVELS + 1
NO_TABLE = np.zeros(TABLE_SIZE, np.float32)


def bucket_edges(fmt) -> np.ndarray:
    """The float32 thresholds ``T[0..n-1]`` of a log format with ``n = 1 - E_min`` levels.

    The format maps a float32 magnitude ``m`` to bucket ``b(m)`` = 0 (below the smallest level:
    underflow) or ``1 + e - E_min`` (level ``e = min(round(log2(m/alpha)), 0)`` as
    ``reference.log_exponent`` computes it). ``b`` is non-decreasing in ``m``, so ``b(m) >= k``
    exactly when ``m >= T[k-1]``, with ``T[k-1]`` the smallest float32 having ``b >= k``: found
    here by bisection over float32 bit patterns with the reference's own exponent function.
    """
    from ..reference import log_exponent
    e_min = int(fmt.min_exponent)
    n = 1 - e_min
    ks = np.arange(1, n + 1)

    def bucket(bits):
        e = log_exponent(bits.astype(np.uint32).view(np.float32).astype(np.float64), float(fmt.alpha))
        return np.where(e < e_min, 0.0, e - e_min + 1)

    lo = np.zeros(n, np.int64)                      # +0.0: below every threshold (never evaluated)
    hi = np.full(n, 0x7F800000, np.int64)           # +inf: the top level, b = n
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = bucket(mid) >= ks
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return hi.astype(np.uint32).view(np.float32)


def log_levels(fmt) -> np.ndarray:
    """The float32 levels ``alpha * 2^e``, e = E_min..0 (beyond float32's range: inf, as the reference)."""
    with np.errstate(over="ignore"):
        return np.ldexp(float(fmt.alpha), np.arange(int(fmt.min_exponent), 1, dtype=np.int32)).astype(np.float32)


def log_table(fmt):
    """Thresholds and levels that give a small log format's float32 results by comparisons only.

    For a log format with ``n = 1 - E_min <= TABLE_LEVELS`` levels: a float32 array
    ``[T[0..7], L[0..8]]`` with ``T`` the ``bucket_edges`` (unused thresholds NaN: never reached),
    ``L[k] = float32(alpha * 2^(E_min + k - 1))`` and ``L[0]`` the underflow value before any
    stochastic zeroing (0 for flush, else ``L[1]``); None when the format has more levels or a
    level is 0 in float32 (its sign would matter).
    """
    if getattr(fmt, "kind", None) != "log":
        return None
    n = 1 - int(fmt.min_exponent)
    if n > TABLE_LEVELS:
        return None
    levels = log_levels(fmt)
    if not levels[0] > 0:
        return None
    table = np.full(TABLE_SIZE, np.nan, np.float32)
    table[:n] = bucket_edges(fmt)
    table[TABLE_LEVELS:] = levels[-1]               # unused levels: never selected
    table[TABLE_LEVELS + 1:TABLE_LEVELS + 1 + n] = levels
    flush = format_params(fmt)[UNDERFLOW] == 1.0
    table[TABLE_LEVELS] = 0.0 if flush else levels[0]
    return table


def kernel_mode(fmt, P=None) -> tuple:
    """``(mode, table)`` for ``quantize_flat`` / ``per_example_update`` (float accumulation)."""
    P = format_params(fmt) if P is None else P
    if P[KIND] == 2.0 and P[ROUNDING] == 0.0 and P[OVERFLOW] == 0.0:
        return FIXED_NE_SAT, NO_TABLE
    if P[KIND] == 2.0 and P[ROUNDING] == 3.0:
        return (FIXED_SR_SAT if P[OVERFLOW] == 0.0 else FIXED_SR_WRAP), NO_TABLE
    if P[KIND] == 1.0:
        stoch = P[UNDERFLOW] == 2.0
        table = log_table(fmt)
        if table is not None:
            return (LOG_TABLE_STOCH if stoch else LOG_TABLE), table
        if P[EMIN] > -1022.0:
            return (LOG_BITS_STOCH if stoch else LOG_BITS), NO_TABLE
    return GENERAL, NO_TABLE
