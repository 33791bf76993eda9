"""Numba CPU kernels: bit-exact twins of ``kernels.reference``.

The scalar arithmetic (RNG, rounding, the quantizers) is written once as ``register_jitable``
functions, which the njit kernels here and the CUDA kernels in ``kernels.cuda`` both inline. It
uses only operations that IEEE 754 specifies exactly (+, -, *, /, comparisons, copysign, floor,
float <-> int conversion, reading and building float64 bit patterns), never a math-library
function such as log2 or exp2, and rounds to float32 where the reference does, so every backend
returns the same bits. Nothing compiles at import: the njit decorators are lazy (``cache=True``).

Speed: ``quantize_flat``, ``per_example_update``, ``fixed_scale_round`` and ``add_quantize_flat``
pick a loop per format (``kernel_mode``). Fixed nearest-even/saturate, fixed stochastic rounding
(saturate or wrap: the bit-true channel's signals and stored weights) and log formats, stochastic
underflow included, run branch-free loops (selects; the uniform is drawn for every element, from
integer operations only), which vectorize: about 10x faster than the general loop. Log formats
with at most ``TABLE_LEVELS`` levels (every paper format) need no division: their float32 results
follow from comparisons with float32 thresholds that ``log_table`` derives from the reference's
own exponent rule. Each kernel has a serial twin for small arrays, and the per-example update
skips the zero inputs (MNIST pixels) that cannot change its sum.
With float accumulation, ``update_codes`` computes the same per-example update 3-6x faster for
the formats ``code_plan`` accepts (log formats with normal float32 levels, every paper format;
fixed nearest-even/saturate): it sums small integer codes, which is exact, so that the float64
sum of the reference is reproduced bit for bit from 32-bit integer operations on the float32
product (16 lanes to an AVX-512 vector) and one multiplication at the end.
The sparse products (``sparse_product``) compute one row per distinct index list over the batch
and store J through a transposing gather of 4 x 4 blocks, written as an LLVM ``shufflevector``
intrinsic (``store_transposed4``): writing J column by column cost more than all the adds.

Kernel arguments are C-contiguous arrays, a format as a ``PARAMS``-long tuple of float64
(``format_params``; the sparse kernel: a float64 array, ``sparse_params``), the RNG key
``splitmix64(seed)`` and counters as uint64.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange  # noqa: F401  (get_num_threads: for dispatch)
from numba.core import types
from numba.extending import intrinsic, register_jitable

from .reference import SQRT_HALF, TANH_CLAMP, TANH_P, TANH_Q, seed_key  # noqa: F401  (seed_key re-exported)

_MOD64 = 2 ** 64
_TWO52 = 4503599627370496.0
_TINY = 2.2250738585072014e-308              # smallest normal float64, 2^-1022
_TWO64 = 18446744073709551616.0
_MANT = np.int64((1 << 52) - 1)
_SQRT2_MANT = np.int64(0x6A09E667F3BCD)      # significand bits of fl(sqrt(2)) = 2 * SQRT_HALF
_I0, _IM1022 = np.int64(0), np.int64(-1022)  # (Numba CUDA's min/max reject int64 with int literals)
_E_ZERO = np.int64(-(1 << 40))               # exponent standing for log2(0): below every e_min
_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40, _S28 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40), np.uint64(28)
_ONE_BITS = np.uint64(0x3FF0000000000000)    # bits of 1.0

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
    from .reference import log_exponent
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


# --- scalar arithmetic, shared with kernels.cuda ------------------------------------------------

@register_jitable
def mix64(z):
    """SplitMix64 finaliser (uint64, wrapping)."""
    z = z + _G
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@register_jitable
def uniform(key, c):
    """``reference.uniform_counter`` element at counter ``c``: top 24 bits ``k`` of the hash / 2^24.

    Formed as ``(1 + k * 2^-24) - 1`` from bits (both steps exact): integer operations only, which
    vectorize (AVX2 has no uint64 -> float64 conversion)."""
    return np.uint64(((mix64(c ^ key) >> _S40) << _S28) | _ONE_BITS).view(np.float64) - 1.0


@register_jitable
def frint(x):
    """Round half to even (``np.rint``), up to the sign of a zero result: adding and subtracting
    2^52 (with x's sign) makes the IEEE adder round a |x| < 2^52 to an integer, ties to even.
    Non-finite values and |x| >= 2^52 (already integers) pass through. Branch-free."""
    c = math.copysign(_TWO52, x)
    r = (x + c) - c
    return r if abs(x) < _TWO52 else x


@register_jitable
def ffloor(x):
    """floor on float64 (exact; non-finite and |x| >= 2^52 pass through). Branch-free."""
    r = frint(x)
    return r - 1.0 if r > x else r


@register_jitable
def round_fixed(y, rmode, key, c):
    """The reference's ``_round_fixed`` on one scaled value ``y = x * 2^frac``."""
    if rmode == 0.0:
        return frint(y)
    if rmode == 1.0:
        return math.copysign(ffloor(abs(y) + 0.5), y)
    if rmode == 2.0:
        return ffloor(y)
    return ffloor(y + uniform(key, c))


@register_jitable
def saturate(k, lo, hi):
    """Clamp to [lo, hi]; NaN passes through (as ``np.clip``)."""
    k = lo if k < lo else k
    return hi if k > hi else k


@register_jitable
def wrap_range(k, lo, span):
    """An integer code wrapped modulo ``span`` = 2^word into [lo, lo + span): ``a - span*floor(a/span)``
    with ``a = k - lo`` is exact (``reference._overflow``'s ``np.mod``). Branch-free."""
    a = k - lo
    return (a - span * ffloor(a / span)) + lo


@register_jitable
def overflow(k, P):
    """Saturate, or wrap modulo 2^word, an integer code."""
    if P[6] == 0.0:
        return saturate(k, P[9], P[10])
    return wrap_range(k, P[9], P[11])


@register_jitable
def fixed_code(xd, P, key, c):
    """Integer code (as float64) of a float64 value in the fixed format P."""
    return overflow(round_fixed(xd * P[7], P[5], key, c), P)


@register_jitable
def pow2i(e):
    """2^e for an int64 e in [-1022, 1023], built from its bits (exact)."""
    return np.int64((e + 1023) << 52).view(np.float64)


@register_jitable
def log_level_fast(xd, alpha, e_min):
    """``log_level`` for ``e_min > -1022`` (every paper format and full ones up to 11 bits).

    Then every quotient below 2^-1022 (subnormal or 0) is an underflow whatever its exact
    exponent, and every level ``alpha * 2^ec`` is ``alpha`` times a normal power of two. Selects
    only, so loops over it vectorize.
    """
    mag = abs(xd)
    b = np.float64(mag / alpha).view(np.int64)
    e = (b >> 52) - 1023
    e = e + 1 if (b & _MANT) >= _SQRT2_MANT else e
    e = e if e < 0 else _I0                     # v >= 1 (also inf): the top level
    q = math.copysign(alpha * pow2i(e if e > e_min else e_min), xd)
    q = q if mag > 0.0 else 0.0                 # zeros and NaN give 0
    return q, e < e_min


@register_jitable
def log_level(xd, alpha, e_min):
    """The clipped log level of one float64 value: ``(q, under)``.

    ``q = sign(x) * alpha * 2^max(min(e, 0), e_min)`` with ``e = round(log2(|x|/alpha))``
    computed exactly from the bits of ``v = |x|/alpha``: its exponent, plus one when the
    significand is at least fl(sqrt(2)), i.e. above sqrt(2) (see ``reference.SQRT_HALF``);
    ``q = 0`` for zeros and NaN; ``under = e < e_min`` (int64 ``e_min``). ``alpha * 2^e`` is
    formed with exact powers of two and equals ``ldexp(alpha, e)`` whenever that is >= 2^-1022
    (anything smaller is 0 in float32).
    """
    if e_min > -1022:
        return log_level_fast(xd, alpha, e_min)
    mag = abs(xd)
    v = mag / alpha
    if v == 0.0:                                # |x|/alpha underflowed float64
        e = _E_ZERO
    else:
        tiny = v < _TINY                        # subnormal quotient: scale up by 2^64 (exact)
        b = np.float64(v * _TWO64 if tiny else v).view(np.int64)
        e = (b >> 52) - 1087 if tiny else (b >> 52) - 1023
        e = e + 1 if (b & _MANT) >= _SQRT2_MANT else e
        e = e if e < 0 else _I0
    ec = e if e > e_min else e_min
    if ec >= -1022:
        q = alpha * pow2i(ec)
    else:
        q = (alpha * pow2i(_IM1022)) * pow2i(ec + 1022 if ec + 1022 > -1022 else _IM1022)
    q = math.copysign(q, xd)
    q = q if mag > 0.0 else 0.0
    return q, e < e_min


@register_jitable
def log_value(xd, P, key, c):
    """Log quantizer of one float64 value (float64 grid value, before the float32 cast)."""
    q, under = log_level(xd, P[1], np.int64(P[2]))
    if under:
        if P[3] == 1.0:
            q = 0.0
        elif P[3] == 2.0:
            if uniform(key, c) * P[4] >= abs(xd):
                q = 0.0
    return q


@register_jitable
def quant_value(xd, P, key, c):
    """Any format on one float64 value; float64 result, zeros canonical (+0.0) except pass-through."""
    kind = P[0]
    if kind == 1.0:
        return log_value(xd, P, key, c) + 0.0
    if kind == 2.0:
        return fixed_code(xd, P, key, c) * P[8] + 0.0
    return xd


@register_jitable
def acc_add(acc, q, PA, key, c):
    """One add into fixed accumulator PA: ``acc`` is an integer code (float64)."""
    return overflow(acc + round_fixed(q * PA[7], PA[5], key, c), PA)


@register_jitable
def fixed_ne_sat(xd, sin, sout, lo, hi):
    """Fixed point, nearest-even rounding, saturation: ``quant_value`` for that case (branch-free)."""
    return saturate(frint(xd * sin), lo, hi) * sout + 0.0


@register_jitable
def sr_code(xd, sin, key, c):
    """Stochastic rounding's integer code ``floor(x 2^frac + u)`` (float64), u the uniform at counter
    ``c``: the reference's operations in its order (the add of u rounded in float64, then floor).

    CPU loops only: ``np.floor`` is one SIMD instruction (roundpd), exact like ``ffloor``; the two
    differ only on -0, which never reaches it (y + u with u >= 0 is -0 for no y)."""
    return np.floor(xd * sin + uniform(key, c))


@register_jitable
def fixed_sr_sat(xd, sin, sout, lo, hi, key, c):
    """Fixed point, stochastic rounding, saturation: ``quant_value`` for that case (clip, then
    ``* 2^-frac + 0``). Branch-free: the uniform comes from integer operations only."""
    return saturate(sr_code(xd, sin, key, c), lo, hi) * sout + 0.0


@register_jitable
def fixed_sr_wrap(xd, sin, sout, lo, span, key, c):
    """Fixed point, stochastic rounding, wrap-around (``fixed_sr_sat`` with ``wrap_range``)."""
    return wrap_range(sr_code(xd, sin, key, c), lo, span) * sout + 0.0


@register_jitable
def table_tuples(TL):
    """The thresholds and levels of a ``log_table`` array as tuples (registers, not memory)."""
    T = (TL[0], TL[1], TL[2], TL[3], TL[4], TL[5], TL[6], TL[7])
    L = (TL[8], TL[9], TL[10], TL[11], TL[12], TL[13], TL[14], TL[15], TL[16])
    return T, L


@register_jitable
def table_level(mag, T, L):
    """The level of float32 magnitude ``mag`` from ``log_table``'s thresholds (selects only)."""
    v = L[0]
    v = L[1] if mag >= T[0] else v
    v = L[2] if mag >= T[1] else v
    v = L[3] if mag >= T[2] else v
    v = L[4] if mag >= T[3] else v
    v = L[5] if mag >= T[4] else v
    v = L[6] if mag >= T[5] else v
    v = L[7] if mag >= T[6] else v
    return L[8] if mag >= T[7] else v


@register_jitable
def table_value(x, T, L):
    """A small deterministic log format on float32 ``x``: ``np.float32(quant_value(x))``.

    The sign is applied to the float32 level (rounding is symmetric, and no level is 0 in
    float32); ``+ 0`` turns a flushed ``-0`` into ``+0``; zeros and NaN give ``+0``."""
    z = np.float32(0.0)
    mag = abs(x)
    v = table_level(mag, T, L)
    v = (-v if x < z else v) + z
    return v if mag > z else z


@register_jitable
def table_value_stoch(x, T, L, smallest, key, c):
    """``table_value`` with stochastic underflow: below ``T[0]`` the smallest level survives
    unless ``u * smallest >= |x|`` (the reference's rule, in float64). The uniform is drawn for
    every element (no branch), so loops over it vectorize."""
    z = np.float32(0.0)
    mag = abs(x)
    v = table_level(mag, T, L)
    keep = (mag > z) & ((mag >= T[0]) | (uniform(key, c) * smallest < np.float64(mag)))
    v = -v if x < z else v
    return v if keep else z


@register_jitable
def bits_value(xd, alpha, e_min, flush):
    """Deterministic log format with ``e_min > -1022`` on float64 ``xd`` (float64 result)."""
    q, under = log_level_fast(xd, alpha, e_min)
    return (0.0 if (under and flush) else q) + 0.0


@register_jitable
def bits_value_stoch(xd, alpha, e_min, smallest, key, c):
    """Stochastic-underflow log format with ``e_min > -1022``; the uniform is drawn unconditionally."""
    q, under = log_level_fast(xd, alpha, e_min)
    drop = under & (uniform(key, c) * smallest >= abs(xd))
    return (0.0 if drop else q) + 0.0


# --- kernels ------------------------------------------------------------------------------------
#
# ``quantize_flat`` / ``per_example_update`` take the loop variant ``mode`` and table ``TL`` of
# ``kernel_mode``. Each has a parallel version (prange over chunks / output rows) and a serial
# twin (``*_serial``: no thread-pool launch, for small arrays); both run the same
# ``register_jitable`` loops, so they return the same bits.

#: Elements per parallel task of ``quantize_flat``.
QUANTIZE_CHUNK = 1 << 14


@register_jitable
def quantize_span(x, P, TL, mode, key, counter):
    """x[i] = float32(Q(x[i])) in place, with counter + i, in the loop variant ``mode``.

    In place on one array, and from index 0 over the whole array (the parallel kernel passes
    slices): LLVM then needs no overlap check between an input and an output, and Numba knows
    the indices are non-negative (no wraparound checks), so the branch-free loops vectorize."""
    n = x.size
    if mode == FIXED_NE_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            x[i] = np.float32(fixed_ne_sat(np.float64(x[i]), sin, sout, qlo, qhi))
    elif mode == FIXED_SR_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            x[i] = np.float32(fixed_sr_sat(np.float64(x[i]), sin, sout, qlo, qhi, key, counter + np.uint64(i)))
    elif mode == FIXED_SR_WRAP:
        sin, sout, qlo, span = P[7], P[8], P[9], P[11]
        for i in range(n):
            x[i] = np.float32(fixed_sr_wrap(np.float64(x[i]), sin, sout, qlo, span, key, counter + np.uint64(i)))
    elif mode == LOG_TABLE:
        T, L = table_tuples(TL)
        for i in range(n):
            x[i] = table_value(x[i], T, L)
    elif mode == LOG_TABLE_STOCH:
        T, L = table_tuples(TL)
        smallest = P[4]
        for i in range(n):
            x[i] = table_value_stoch(x[i], T, L, smallest, key, counter + np.uint64(i))
    elif mode == LOG_BITS:
        alpha, e_min, flush = P[1], np.int64(P[2]), P[3] == 1.0
        for i in range(n):
            x[i] = np.float32(bits_value(np.float64(x[i]), alpha, e_min, flush))
    elif mode == LOG_BITS_STOCH:
        alpha, e_min, smallest = P[1], np.int64(P[2]), P[4]
        for i in range(n):
            x[i] = np.float32(bits_value_stoch(np.float64(x[i]), alpha, e_min, smallest, key,
                                               counter + np.uint64(i)))
    else:
        for i in range(n):
            x[i] = np.float32(quant_value(np.float64(x[i]), P, key, counter + np.uint64(i)))


@njit(parallel=True, cache=True)
def quantize_flat(x, P, TL, mode, key, counter):
    """x[i] = Q(x[i]) in place with counter + i (1-D float32; out-of-place callers copy first).

    ``P`` = ``format_params``, ``(mode, TL)`` = ``kernel_mode`` (``GENERAL, NO_TABLE`` is always
    valid). Parallel over chunks of ``QUANTIZE_CHUNK`` elements."""
    n = x.size
    nchunks = (n + QUANTIZE_CHUNK - 1) // QUANTIZE_CHUNK
    for t in prange(nchunks):
        lo = t * QUANTIZE_CHUNK
        quantize_span(x[lo:min(n, lo + QUANTIZE_CHUNK)], P, TL, mode, key, counter + np.uint64(lo))


@njit(cache=True)
def quantize_flat_serial(x, P, TL, mode, key, counter):
    """``quantize_flat`` on the calling thread only."""
    quantize_span(x, P, TL, mode, key, counter)


#: ``kernel_mode`` loop variants of a format on float64 values (``quantize_f64_span``), by mode:
#: the threshold tables compare float32 inputs, so their formats (<= 8 levels, e_min > -1022)
#: take the exponent-bits loops instead.
F64_MODE = (GENERAL, FIXED_NE_SAT, FIXED_SR_SAT, FIXED_SR_WRAP, LOG_BITS, LOG_BITS, LOG_BITS_STOCH, LOG_BITS_STOCH)
#: Values per block of the kernels that form exact float64 values and quantize them
#: (``fixed_scale_round``, ``add_quantize_flat``): one pass forms a block, one quantizes it; the
#: block stays in L1 and each pass is a plain loop that vectorizes.
F64_BLOCK = 1024


@register_jitable
def quantize_f64_span(v, P, mode, key, counter, out):
    """out[i] = float32(Q(v[i])) for float64 ``v`` with counter + i, in the loop variant ``mode``
    (from ``F64_MODE``); ``out`` float32 of v's size."""
    n = v.size
    if mode == FIXED_NE_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            out[i] = np.float32(fixed_ne_sat(v[i], sin, sout, qlo, qhi))
    elif mode == FIXED_SR_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            out[i] = np.float32(fixed_sr_sat(v[i], sin, sout, qlo, qhi, key, counter + np.uint64(i)))
    elif mode == FIXED_SR_WRAP:
        sin, sout, qlo, span = P[7], P[8], P[9], P[11]
        for i in range(n):
            out[i] = np.float32(fixed_sr_wrap(v[i], sin, sout, qlo, span, key, counter + np.uint64(i)))
    elif mode == LOG_BITS:
        alpha, e_min, flush = P[1], np.int64(P[2]), P[3] == 1.0
        for i in range(n):
            out[i] = np.float32(bits_value(v[i], alpha, e_min, flush))
    elif mode == LOG_BITS_STOCH:
        alpha, e_min, smallest = P[1], np.int64(P[2]), P[4]
        for i in range(n):
            out[i] = np.float32(bits_value_stoch(v[i], alpha, e_min, smallest, key, counter + np.uint64(i)))
    else:
        for i in range(n):
            out[i] = np.float32(quant_value(v[i], P, key, counter + np.uint64(i)))


@register_jitable
def nonzero_columns(O, use):
    """Per batch row of O: the columns with O[b, j] != 0 (NaN included) and their values.

    Only computed where ``use`` (else empty, count 0). In the log modes a zero O[b, j] makes the
    product +-0 or NaN, whose quantized value is +0, and adding +0 leaves a float64 sum that started
    at +0 unchanged (it is never -0), so those columns can be skipped."""
    B, NI = O.shape
    m = NI if use else 0
    idx = np.empty((B, m), np.int64)
    val = np.empty((B, m), np.float32)
    cnt = np.zeros(B, np.int64)
    if use:
        for b in range(B):
            k = 0
            for j in range(NI):
                o = O[b, j]
                if o != 0:
                    idx[b, k] = j
                    val[b, k] = o
                    k += 1
            cnt[b] = k
    return idx, val, cnt


@register_jitable
def update_rows(R, O, P, PA, TL, mode, key, counter, counter_a, out, i0, i1, idx, val, cnt):
    """Rows i0..i1-1 of ``per_example_update``: for each (i, j) the batch summed in order.

    In the log modes a zero ``R[b, i]`` skips the example, and a batch row of O with at most half
    its entries non-zero (``cnt``) runs over those columns only: the quantized values in a
    vectorized loop, then a scalar scatter-add in column order."""
    B, NO = R.shape
    NI = O.shape[1]
    fixed_acc = PA[0] == 2.0
    if fixed_acc:
        mode = GENERAL
    log_mode = mode >= LOG_BITS
    sin, sout, qlo, qhi, span = P[7], P[8], P[9], P[10], P[11]
    alpha, e_min, flush, smallest = P[1], np.int64(P[2]), P[3] == 1.0, P[4]
    T, L = table_tuples(TL)
    acc = np.zeros(NI, np.float64)
    tmp = np.empty(NI, np.float32)
    for i in range(i0, i1):
        acc[:] = 0.0
        for b in range(B):
            r = R[b, i]
            if log_mode and r == 0:
                continue
            base = np.uint64((b * NO + i) * NI)
            c0 = counter + base
            m = cnt[b]
            if log_mode and 2 * m <= NI:
                ib = idx[b]
                vb = val[b]
                if mode == LOG_TABLE:
                    for t in range(m):
                        tmp[t] = table_value(r * vb[t], T, L)
                elif mode == LOG_TABLE_STOCH:
                    for t in range(m):
                        tmp[t] = table_value_stoch(r * vb[t], T, L, smallest, key, c0 + np.uint64(ib[t]))
                elif mode == LOG_BITS:
                    for t in range(m):
                        tmp[t] = np.float32(bits_value(np.float64(r * vb[t]), alpha, e_min, flush))
                else:
                    for t in range(m):
                        tmp[t] = np.float32(bits_value_stoch(np.float64(r * vb[t]), alpha, e_min, smallest,
                                                             key, c0 + np.uint64(ib[t])))
                for t in range(m):
                    acc[ib[t]] += np.float64(tmp[t])
                continue
            ob = O[b]
            if mode == FIXED_NE_SAT:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_ne_sat(np.float64(r * ob[j]), sin, sout, qlo, qhi)))
            elif mode == FIXED_SR_SAT:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_sr_sat(np.float64(r * ob[j]), sin, sout, qlo, qhi,
                                                                 key, c0 + np.uint64(j))))
            elif mode == FIXED_SR_WRAP:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_sr_wrap(np.float64(r * ob[j]), sin, sout, qlo, span,
                                                                  key, c0 + np.uint64(j))))
            elif mode == LOG_TABLE:
                for j in range(NI):
                    acc[j] += np.float64(table_value(r * ob[j], T, L))
            elif mode == LOG_TABLE_STOCH:
                for j in range(NI):
                    acc[j] += np.float64(table_value_stoch(r * ob[j], T, L, smallest, key, c0 + np.uint64(j)))
            elif mode == LOG_BITS:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(bits_value(np.float64(r * ob[j]), alpha, e_min, flush)))
            elif mode == LOG_BITS_STOCH:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(bits_value_stoch(np.float64(r * ob[j]), alpha, e_min,
                                                                     smallest, key, c0 + np.uint64(j))))
            else:
                ca = counter_a + base
                for j in range(NI):
                    q = np.float64(np.float32(quant_value(np.float64(r * ob[j]), P, key, c0 + np.uint64(j))))
                    if fixed_acc:
                        acc[j] = acc_add(acc[j], q, PA, key, ca + np.uint64(j))
                    else:
                        acc[j] += q
        if fixed_acc:
            for j in range(NI):
                out[i, j] = np.float32(acc[j] * PA[8] + 0.0)
        else:
            for j in range(NI):
                out[i, j] = np.float32(acc[j])


@njit(parallel=True, cache=True)
def per_example_update(R, O, P, PA, TL, mode, key, counter, counter_a, out):
    """Fused ``out[i, j] = sum_b Q(R[b, i] * O[b, j])`` without the (batch, out, in) tensor.

    One output row per parallel task; the batch is summed in order for every (i, j), so the
    result equals ``reference.per_example_update`` bit for bit. PA[0] == 2: fixed accumulator
    (then the general loop). ``(mode, TL)`` from ``kernel_mode`` of the update format: with float
    accumulation, fixed nearest-even/saturate, fixed stochastic rounding and the log formats run
    branch-free inner loops (SIMD), stochastic underflow included; everything else the general one.
    """
    NO = R.shape[1]
    idx, val, cnt = nonzero_columns(O, mode >= LOG_BITS and PA[0] != 2.0)
    for i in prange(NO):
        update_rows(R, O, P, PA, TL, mode, key, counter, counter_a, out, i, i + 1, idx, val, cnt)


@njit(cache=True)
def per_example_update_serial(R, O, P, PA, TL, mode, key, counter, counter_a, out):
    """``per_example_update`` on the calling thread only."""
    idx, val, cnt = nonzero_columns(O, mode >= LOG_BITS and PA[0] != 2.0)
    update_rows(R, O, P, PA, TL, mode, key, counter, counter_a, out, 0, R.shape[1], idx, val, cnt)


# --- per-example update on integer codes --------------------------------------------------------
#
# With float accumulation, every quantized product of a log format with levels
# ``L[k] = L[1] * 2^(k-1)`` is ``code * L[1]`` with an integer ``code`` = 0, +-1, +-2, ...,
# +-2^(n-1), and every product of a fixed nearest-even/saturate format is ``code * 2^-frac``.
# While ``batch * max|code| <= 2^24`` every partial sum of the reference's float64 accumulation is
# an integer multiple of that unit, exactly representable (|code sum| * 24-bit unit < 2^53), so the
# reference's sum is exact, equal to ``(sum of codes) * unit`` whatever the order of the additions.
# These kernels add the codes as float32 (exact below 2^24) and multiply by the unit once: the
# same bits, and each code comes from a few 32-bit integer operations on the float32 product,
# 16 lanes to an AVX-512 vector. ``code_plan`` says when a format qualifies; inputs with NaN or
# inf are left to ``per_example_update`` (a NaN product must make a fixed sum NaN, and an inf * 0
# product is NaN).

#: Code kinds of ``code_plan``: log stochastic underflow with a power-of-two smallest level
#: (float32 draw test) or any smallest level (float64 test), log clip, log flush, fixed.
CODE_LOG_STOCH32, CODE_LOG_STOCH64, CODE_LOG_CLIP, CODE_LOG_FLUSH, CODE_FIXED = range(5)
#: Code plan tuple layout (all float64): kind, the two 32-bit integer patterns ``T0`` (bits of the
#: smallest threshold) and ``TOP`` ((n - 1) << 23), or the fixed scale / code range; the draw
#: scale; the unit; the largest |code|.
C_KIND, C_T0, C_TOP, C_DRAW, C_LO, C_HI, C_UNIT, C_MAXCODE = range(8)
#: The largest sum of |codes| that float32 adds exactly.
CODE_SUM_LIMIT = 2 ** 24
_ABS32 = np.int32(0x7FFFFFFF)
_SIGN32 = np.int32(-0x80000000)
_EXP32 = np.int32(-0x800000)                 # 0xFF800000: the sign and exponent fields
_ONE32_BITS = np.int32(127 << 23)            # bits of 1.0f
_TWO23F = np.float32(8388608.0)
_ZERO32, _ONE32 = np.float32(0.0), np.float32(1.0)


def _is_pow2(x: float) -> bool:
    return x > 0 and math.frexp(x)[0] == 0.5


def code_plan(fmt):
    """The ``update_codes`` plan of a format (a float64 tuple, layout ``C_*``), or None.

    Log formats qualify when their thresholds and float32 levels are normal powers-of-two
    multiples of the first (``T[k] = T[0] 2^k``, ``L[k] = L[0] 2^k``: every format whose levels
    are normal float32) and ``2^(n-1) <= 2^23``; fixed formats with nearest-even rounding,
    saturation and ``word <= 24``."""
    P = format_params(fmt)
    if P[KIND] == 2.0:
        if P[ROUNDING] != 0.0 or P[OVERFLOW] != 0.0 or fmt.word > 24:
            return None
        lo, hi = float(fmt.int_min), float(fmt.int_max)
        return (float(CODE_FIXED), 0.0, 0.0, P[SCALE_IN], lo, hi, P[SCALE_OUT], max(-lo, hi))
    if P[KIND] != 1.0:
        return None
    n = 1 - int(fmt.min_exponent)
    if n > 24:
        return None
    levels = log_levels(fmt).astype(np.float64)
    edges = bucket_edges(fmt).astype(np.float64)
    powers = 2.0 ** np.arange(n)
    tiny = float(np.finfo(np.float32).tiny)
    if not (levels[0] >= tiny and np.isfinite(levels[-1]) and edges[0] >= tiny
            and np.array_equal(levels, levels[0] * powers) and np.array_equal(edges, edges[0] * powers)):
        return None
    t0 = float(np.float32(edges[0]).view(np.int32))
    top = float((n - 1) << 23)
    under, smallest = P[UNDERFLOW], P[SMALLEST]
    if under == 2.0:
        if _is_pow2(smallest) and 2.0 ** -103 <= smallest <= 2.0 ** 24:
            # u * smallest < |x|  <=>  k < |x| * 2^24 / smallest, a float32 product that is exact
            # for every |x| below the smallest level (a power of two >= 1 times a float32 < 2^24)
            kind, draw = CODE_LOG_STOCH32, 2.0 ** 24 / smallest
        else:
            # k * (smallest 2^-24) and (k 2^-24) * smallest are one rounding of the same product
            kind, draw = CODE_LOG_STOCH64, smallest * 2.0 ** -24
            if draw * 2.0 ** 24 != smallest:
                return None
    else:
        kind, draw = (CODE_LOG_FLUSH if under == 1.0 else CODE_LOG_CLIP), 0.0
    return (float(kind), t0, top, draw, 0.0, 0.0, float(levels[0]), float(2 ** (n - 1)))


@register_jitable
def log_code_level(bits, t0b, topb):
    """The level code 2^(k-1) (float32) of bucket k >= 1 and ``d`` (< 0: underflow, bucket 0).

    ``d = bits(|x|) - bits(T0)``: the float32 patterns of positive numbers are ordered like the
    numbers, and with ``T[k] = T0 * 2^k`` the exponent field of ``d >= 0`` is ``k - 1``: rebased
    on 1.0's exponent it is the level code. Clipped at the top level."""
    d = np.int32(np.int32(bits & _ABS32) - t0b)
    e = np.int32(d & _EXP32)
    e = e if e < topb else topb
    return np.int32(e + _ONE32_BITS).view(np.float32), d


@register_jitable
def with_sign(v, bits):
    """float32 ``v >= 0`` with the sign bit of the float32 pattern ``bits``."""
    return np.int32(np.float32(v).view(np.int32) | (bits & _SIGN32)).view(np.float32)


@register_jitable
def draw24(key, c):
    """The reference's uniform at counter ``c`` times 2^24: its top 24 hash bits (an integer)."""
    return mix64(c ^ key) >> _S40


@register_jitable
def code_log_stoch32(x, t0b, topb, draw, key, c):
    """Stochastic underflow: the smallest level survives when ``k < |x| * 2^24 / smallest``."""
    bits = np.float32(x).view(np.int32)
    lvl, d = log_code_level(bits, t0b, topb)
    keep = np.float32(np.uint32(draw24(key, c))) < abs(x) * draw
    return with_sign(lvl if d >= 0 else (_ONE32 if keep else _ZERO32), bits)


@register_jitable
def code_log_stoch64(x, t0b, topb, draw, key, c):
    """Stochastic underflow, any smallest level: ``k * (smallest 2^-24) < |x|`` in float64."""
    bits = np.float32(x).view(np.int32)
    lvl, d = log_code_level(bits, t0b, topb)
    keep = np.float64(draw24(key, c)) * draw < np.float64(abs(x))
    return with_sign(lvl if d >= 0 else (_ONE32 if keep else _ZERO32), bits)


@register_jitable
def code_log_clip(x, t0b, topb):
    """Clip: below the smallest level is the smallest level, except exact zeros."""
    bits = np.float32(x).view(np.int32)
    lvl, d = log_code_level(bits, t0b, topb)
    return with_sign(lvl if d >= 0 else (_ONE32 if x != _ZERO32 else _ZERO32), bits)


@register_jitable
def code_log_flush(x, t0b, topb):
    bits = np.float32(x).view(np.int32)
    lvl, d = log_code_level(bits, t0b, topb)
    return with_sign(lvl if d >= 0 else _ZERO32, bits)


@register_jitable
def code_fixed(x, scale, lo, hi):
    """Nearest-even code, saturated (float32: ``x * 2^frac`` is exact, or overflows to +-inf
    and saturates as the float64 reference's huge value does)."""
    y = x * scale
    c = _TWO23F if y >= _ZERO32 else -_TWO23F
    r = (y + c) - c if abs(y) < _TWO23F else y
    r = lo if r < lo else r
    return hi if r > hi else r


@register_jitable
def add_codes(acc, a0, a1, a, bi, s0, s1, C, key, c0, c1, stride):
    """``acc[a0, t] += code(a[bi, t] * s0)`` and ``acc[a1, t] += code(a[bi, t] * s1)`` for every
    t (rows a0 != a1), element t of the two at counters ``c0 + t * stride``, ``c1 + t * stride``.

    Two products per element of ``a``: the loads and the loop's fixed costs are shared. One
    branch-free loop per code kind (they vectorize: 16 float32 lanes, the hash on 8 uint64).
    Rows are addressed by index, not as views: a view costs reference counting on every call."""
    kind = C[0]
    t0b, topb = np.int32(C[1]), np.int32(C[2])
    n = acc.shape[1]
    if kind == CODE_LOG_STOCH32:
        draw = np.float32(C[3])
        for t in range(n):
            x = a[bi, t]
            acc[a0, t] += code_log_stoch32(x * s0, t0b, topb, draw, key, c0)
            acc[a1, t] += code_log_stoch32(x * s1, t0b, topb, draw, key, c1)
            c0 += stride
            c1 += stride
    elif kind == CODE_LOG_STOCH64:
        draw = C[3]
        for t in range(n):
            x = a[bi, t]
            acc[a0, t] += code_log_stoch64(x * s0, t0b, topb, draw, key, c0)
            acc[a1, t] += code_log_stoch64(x * s1, t0b, topb, draw, key, c1)
            c0 += stride
            c1 += stride
    elif kind == CODE_LOG_CLIP:
        for t in range(n):
            x = a[bi, t]
            acc[a0, t] += code_log_clip(x * s0, t0b, topb)
            acc[a1, t] += code_log_clip(x * s1, t0b, topb)
    elif kind == CODE_LOG_FLUSH:
        for t in range(n):
            x = a[bi, t]
            acc[a0, t] += code_log_flush(x * s0, t0b, topb)
            acc[a1, t] += code_log_flush(x * s1, t0b, topb)
    else:
        scale, lo, hi = np.float32(C[3]), np.float32(C[4]), np.float32(C[5])
        for t in range(n):
            x = a[bi, t]
            acc[a0, t] += code_fixed(x * s0, scale, lo, hi)
            acc[a1, t] += code_fixed(x * s1, scale, lo, hi)


@register_jitable
def finite_and_nonzeros(R, O):
    """(every element of R and O finite, the number of non-zero elements of O)."""
    bad = 0
    for b in range(R.shape[0]):
        for i in range(R.shape[1]):
            bad += 0 if abs(R[b, i]) < np.inf else 1
    nnz = 0
    for b in range(O.shape[0]):
        for j in range(O.shape[1]):
            v = O[b, j]
            bad += 0 if abs(v) < np.inf else 1
            nnz += 1 if v != 0 else 0
    return bad == 0, nnz


#: Vector lanes of the code loops: rows are padded with zeros to a multiple of this, so that every
#: pass over a row runs whole vectors (a scalar remainder of a 100-wide row costs as much as the
#: vectors before it).
CODE_LANES = 16


#: Columns per tile of the column loop's transposed output.
CODE_TILE = 64


@register_jitable
def padded(a, width):
    """``a`` (2-D) with zero columns appended up to ``width`` (``a`` itself if already that wide)."""
    if a.shape[1] == width:
        return a
    p = np.zeros((a.shape[0], width), np.float32)
    for b in range(a.shape[0]):
        for j in range(a.shape[1]):
            p[b, j] = a[b, j]
    return p


@register_jitable
def lanes(n):
    return (n + CODE_LANES - 1) // CODE_LANES * CODE_LANES


@register_jitable
def code_rows(R, Op, NI, C, key, counter, out, i0, i1):
    """Rows i0..i1-1 of ``update_codes`` by output row, two at a time: for each example, one pass
    over O's row (``Op``: O padded with zero columns; element (b, i, j) at counter
    ``(b*NO + i)*NI + j``; the padding's codes land in accumulator slots that are never read).

    Examples with R[b, i] = R[b, i+1] = 0 are skipped (products +-0, whose code is 0); an odd
    last row is paired with a zero multiplier whose (zero) codes are not written out."""
    B, NO = R.shape
    acc = np.empty((2, Op.shape[1]), np.float32)
    zero = np.float32(0.0)
    one = np.uint64(1)
    for i in range(i0, i1, 2):
        pair = i + 1 < i1
        acc[:, :] = 0.0
        for b in range(B):
            r0 = R[b, i]
            r1 = R[b, i + 1] if pair else zero
            if r0 != 0 or r1 != 0:
                c = counter + np.uint64((b * NO + i) * NI)
                add_codes(acc, 0, 1, Op, b, r0, r1, C, key, c, c + np.uint64(NI), one)
        for j in range(NI):
            out[i, j] = np.float32(np.float64(acc[0, j]) * C[6])
        if pair:
            for j in range(NI):
                out[i + 1, j] = np.float32(np.float64(acc[1, j]) * C[6])


@register_jitable
def code_columns(Rp, O, NO, C, key, counter, out, accT, j0, j1, scratch):
    """Columns j0..j1-1 of ``update_codes`` by input column, for a mostly-zero O (MNIST pixels):
    each non-zero O[b, j] adds the codes of R[b, :] * O[b, j] into ``accT[j, :]``, two columns
    per pass over R's row (``Rp``: R padded with zero columns); a zero O[b, j] is skipped (its
    products are +-0, whose code is 0). An odd last column is paired with a zero multiplier into
    the row ``accT[scratch]`` (>= NI, one per parallel task), never read."""
    B, NI = O.shape
    cols = np.empty(j1 - j0 + 1, np.int64)
    stride = np.uint64(NI)
    zero = np.float32(0.0)
    for j in range(j0, j1):
        accT[j, :] = 0.0
    for b in range(B):
        m = 0
        for j in range(j0, j1):                     # the non-zero columns, without a branch
            cols[m] = j
            m += 1 if O[b, j] != 0 else 0
        cb = counter + np.uint64(b * NO * NI)
        for t in range(0, m, 2):
            ja = cols[t]
            jb = cols[t + 1] if t + 1 < m else scratch
            ob = O[b, jb] if jb < NI else zero
            add_codes(accT, ja, jb, Rp, b, O[b, ja], ob, C, key, cb + np.uint64(ja), cb + np.uint64(jb), stride)
    for jb in range(j0, j1, CODE_TILE):               # transposed, in tiles whose rows stay in L1
        for i in range(NO):
            for j in range(jb, min(j1, jb + CODE_TILE)):
                out[i, j] = np.float32(np.float64(accT[j, i]) * C[6])


@register_jitable
def by_columns(B, NO, NI, nnz):
    """Whether the column loop does less work: it runs over non-zero O entries times NO (in
    vectors of 16 or more lanes), the row loop over all B * NI * NO products."""
    return 2 * nnz * max(NO, 32) <= B * NI * NO


#: Columns per parallel task of the column loop (at least).
CODE_COLUMNS_CHUNK = 32


@njit(parallel=True, cache=True)
def update_codes(R, O, C, key, counter, out, tasks):
    """``per_example_update`` for a ``code_plan`` format with float accumulation, as code sums.

    Returns False, leaving ``out`` untouched, when R or O holds NaN or inf (then use
    ``per_example_update``). The caller checks ``batch * C[C_MAXCODE] <= CODE_SUM_LIMIT``.
    Parallel over output rows (or input columns for a mostly-zero O) in about ``tasks`` parts
    (the thread count)."""
    finite, nnz = finite_and_nonzeros(R, O)
    if not finite:
        return False
    B, NO = R.shape
    NI = O.shape[1]
    if by_columns(B, NO, NI, nnz):
        Rp = padded(R, lanes(NO))
        chunk = max(CODE_COLUMNS_CHUNK, (NI + 4 * tasks - 1) // (4 * tasks))
        nchunks = (NI + chunk - 1) // chunk
        accT = np.empty((NI + nchunks, Rp.shape[1]), np.float32)    # + a scratch row per task
        for t in prange(nchunks):
            code_columns(Rp, O, NO, C, key, counter, out, accT, t * chunk, min(NI, (t + 1) * chunk), NI + t)
    else:
        Op = padded(O, lanes(NI))
        rows = (NO + tasks - 1) // tasks
        for t in prange(tasks):
            code_rows(R, Op, NI, C, key, counter, out, min(NO, t * rows), min(NO, (t + 1) * rows))
    return True


@njit(cache=True)
def update_codes_serial(R, O, C, key, counter, out, tasks=1):
    """``update_codes`` on the calling thread only (``tasks`` is ignored)."""
    finite, nnz = finite_and_nonzeros(R, O)
    if not finite:
        return False
    B, NO = R.shape
    NI = O.shape[1]
    if by_columns(B, NO, NI, nnz):
        Rp = padded(R, lanes(NO))
        code_columns(Rp, O, NO, C, key, counter, out, np.empty((NI + 1, Rp.shape[1]), np.float32), 0, NI, NI)
    else:
        code_rows(R, padded(O, lanes(NI)), NI, C, key, counter, out, 0, NO)
    return True


@njit(parallel=True, cache=True)
def fixed_codes(x, P, key, counter, out):
    """int64 codes of float32 x (1-D) in fixed format P; NaN -> 0."""
    for i in prange(x.size):
        k = fixed_code(np.float64(x[i]), P, key, counter + np.uint64(i))
        if k != k:
            k = 0.0
        out[i] = np.int64(k)


@njit(parallel=True, cache=True)
def lowbit_matmul(kR, kC, scale, P, key, counter, out):
    """out = Q_P((kR @ kC) * scale) with int64 accumulation; output counter + b*N + n."""
    B, K = kR.shape
    N = kC.shape[1]
    for b in prange(B):
        acc = np.zeros(N, np.int64)
        for k in range(K):
            a = kR[b, k]
            if a != 0:
                for n in range(N):
                    acc[n] += a * kC[k, n]
        for n in range(N):
            v = np.float64(acc[n]) * scale
            out[b, n] = np.float32(quant_value(v, P, key, counter + np.uint64(b * N + n)))


@njit(parallel=True, cache=True)
def accumulate_fixed(X, PA, key, counter, out):
    """out[j] = saturating sum over t of X[t, j] in fixed format PA (counter + t*m + j)."""
    n, m = X.shape
    for j in prange(m):
        acc = 0.0
        for t in range(n):
            acc = acc_add(acc, np.float64(X[t, j]), PA, key, counter + np.uint64(t * m + j))
        out[j] = np.float32(acc * PA[8] + 0.0)


# --- forward activation (twins of reference.tanh and reference.tanh_fprime_mul) -----------------
# error_model="numpy": a float division by zero gives inf/NaN instead of raising, which is what
# lets LLVM vectorize the division (8 float32 lanes); no fastmath, so no FMA contraction and the
# bits stay the reference's. The serial spans release the GIL (the split minibatch runs two at once).

_TC = TANH_CLAMP
_TP0, _TP1, _TP2, _TP3, _TP4, _TP5, _TP6 = TANH_P
_TQ0, _TQ1, _TQ2, _TQ3 = TANH_Q
ACTIVATION_CHUNK = 1 << 14


@njit(cache=True, nogil=True, error_model="numpy")
def tanh_span(x):
    """x[i] = tanh(x[i]) in place (1-D float32), reference.tanh's arithmetic."""
    for i in range(x.shape[0]):
        v = x[i]
        c = _TC if v > _TC else v          # NaN compares false: kept, and propagates
        c = -_TC if c < -_TC else c
        x2 = c * c
        p = _TP0 * x2 + _TP1
        p = p * x2 + _TP2
        p = p * x2 + _TP3
        p = p * x2 + _TP4
        p = p * x2 + _TP5
        p = p * x2 + _TP6
        q = _TQ0 * x2 + _TQ1
        q = q * x2 + _TQ2
        q = q * x2 + _TQ3
        x[i] = (c * p) / q


@njit(parallel=True, cache=True, error_model="numpy")
def tanh_flat(x):
    """``tanh_span`` in parallel over chunks of ``ACTIVATION_CHUNK`` elements."""
    n = x.size
    for t in prange((n + ACTIVATION_CHUNK - 1) // ACTIVATION_CHUNK):
        lo = t * ACTIVATION_CHUNK
        tanh_span(x[lo:min(n, lo + ACTIVATION_CHUNK)])


@njit(cache=True, nogil=True)
def tanh_fprime_mul_span(r, o):
    """r[i] = r[i] - (r[i] o[i]) o[i] in place (1-D float32): r times tanh'(S) from o = tanh(S)."""
    for i in range(r.shape[0]):
        ri = r[i]
        oi = o[i]
        r[i] = ri - (ri * oi) * oi


@njit(parallel=True, cache=True)
def tanh_fprime_mul_flat(r, o):
    """``tanh_fprime_mul_span`` in parallel over chunks of ``ACTIVATION_CHUNK`` elements."""
    n = r.size
    for t in prange((n + ACTIVATION_CHUNK - 1) // ACTIVATION_CHUNK):
        lo = t * ACTIVATION_CHUNK
        hi = min(n, lo + ACTIVATION_CHUNK)
        tanh_fprime_mul_span(r[lo:hi], o[lo:hi])


# --- stored weights -------------------------------------------------------------------------------

@register_jitable
def add_quantize_span(w, g, scale, P, mode, key, counter):
    """w[i] = float32(Q(w[i] + scale * g[i])) in place (``scale`` float32: an exact float64
    product), the sum rounded once in float64, counter + i; ``mode`` from ``F64_MODE``."""
    n = w.size
    s = np.float64(scale)
    v = np.empty(F64_BLOCK, np.float64)
    for b0 in range(0, n, F64_BLOCK):
        m = min(F64_BLOCK, n - b0)
        wb, gb = w[b0:b0 + m], g[b0:b0 + m]
        for i in range(m):
            v[i] = np.float64(wb[i]) + s * np.float64(gb[i])
        quantize_f64_span(v[:m], P, mode, key, counter + np.uint64(b0), wb)


@njit(parallel=True, cache=True)
def add_quantize_flat(w, g, scale, P, mode, key, counter):
    """``reference.add_quantize`` in place on flat float32 ``w`` (parallel over chunks)."""
    n = w.size
    nchunks = (n + QUANTIZE_CHUNK - 1) // QUANTIZE_CHUNK
    for t in prange(nchunks):
        lo = t * QUANTIZE_CHUNK
        hi = min(n, lo + QUANTIZE_CHUNK)
        add_quantize_span(w[lo:hi], g[lo:hi], scale, P, mode, key, counter + np.uint64(lo))


@njit(cache=True, nogil=True)
def add_quantize_flat_serial(w, g, scale, P, mode, key, counter):
    """``add_quantize_flat`` on the calling thread only."""
    add_quantize_span(w, g, scale, P, mode, key, counter)


# --- bit-true learning channel: fixed-point accumulator products, f' table, scale and round -----
# Twins of the reference's section of the same name (see there for the arithmetic). Accumulators
# are format tuples ``PA`` (``format_params`` of a FixedPoint). Each kernel has a parallel version
# and a serial twin for small calls; both run the same ``register_jitable`` loops.

@register_jitable
def wrap_code(k, PA):
    """An integer code k (float64) modulo 2^word, into [int_min, int_max]: ``reference._wrap_codes``.
    Exact for every k: k / span and the floor are exact, and k - span * floor(k / span) is a
    representable number in [0, span) (0 once k is a multiple of span)."""
    m = k - PA[11] * ffloor(k / PA[11])
    return m - PA[11] if m > PA[10] else m


@register_jitable
def acc_in(y, PA):
    """Accumulator code of an exact scaled value ``y = v * 2^frac``: rounded half to even; with
    wrap, reduced into the range first (the sum modulo 2^word is unchanged, the add stays exact)."""
    k = frint(y)
    return wrap_code(k, PA) if PA[6] != 0.0 else k


@register_jitable
def fixed_product_rows(R, B, PA, out, b0, b1):
    """Rows b0..b1-1 of ``fixed_product``: per row, the codes of all N outputs are updated sender
    by sender (ascending s) in one loop over n, which vectorizes; zero R[b, s] are skipped.

    The saturating loop rounds with ``np.rint`` (one SIMD instruction; it needs no range check)
    where ``acc_in`` uses ``frint``: both round half to even exactly and differ at most in the sign
    of a zero, which the add into a code that is never -0 erases. The CUDA twin uses ``acc_in``."""
    NS = R.shape[1]
    NN = B.shape[1]
    sin, sout, lo, hi = PA[7], PA[8], PA[9], PA[10]
    sat = PA[6] == 0.0
    acc = np.empty(NN, np.float64)
    for b in range(b0, b1):
        acc[:] = 0.0
        for s in range(NS):
            r = R[b, s]
            if r == 0:
                continue
            rs = np.float64(r) * sin
            Bs = B[s]
            if sat:
                for n in range(NN):
                    acc[n] = saturate(acc[n] + np.rint(rs * np.float64(Bs[n])), lo, hi)
            else:
                for n in range(NN):
                    acc[n] = overflow(acc[n] + acc_in(rs * np.float64(Bs[n]), PA), PA)
        for n in range(NN):
            out[b, n] = np.float32(acc[n] * sout + 0.0)


@njit(parallel=True, cache=True)
def fixed_product(R, B, PA, out):
    """out = R @ B in the fixed accumulator PA, saturating (wrapping) at every add (float32 2-D
    C-contiguous arrays). Parallel over batch rows."""
    for b in prange(R.shape[0]):
        fixed_product_rows(R, B, PA, out, b, b + 1)


@njit(cache=True)
def fixed_product_serial(R, B, PA, out):
    """``fixed_product`` on the calling thread only."""
    fixed_product_rows(R, B, PA, out, 0, R.shape[0])


# --- sparse products through index lists ---------------------------------------------------------
# One kernel for ``reference.sparse_feedback_product`` (float parameters) and
# ``reference.fixed_sparse_product`` (a fixed accumulator), in three passes that each run over
# contiguous memory (at the MNIST SRBP shape, 100 x 10 through 100 receivers, writing J column by
# column cost more than all the adds):
#   1. codes: R (batch, sender) transposed to (sender, batch), each value as its addend;
#   2. rows: one float32 row over the batch per *distinct* list (receivers with the same list and
#      signs share it: most sparse-1 receivers have one sender or none), the list's entries added
#      in order, two entries per vectorized pass over the batch;
#   3. J[b, r] = the row of r's list at b: a transposing gather, 4 x 4 blocks at a time.
# Each receiver's arithmetic is the reference's (``sparse_rows``); only identical work is shared.

#: Distinct lists per parallel task (pass 2); batch rows or receivers per parallel task (1, 3).
SPARSE_CHUNK = 16
SPARSE_COLUMNS = 64
#: Where the output scale sits in a sparse kernel's parameters, after a format's ``PARAMS``.
OSCALE = PARAMS


def sparse_params(PA, oscale) -> np.ndarray:
    """A sparse kernel's float64 parameters: the accumulator's ``PA`` (``format_params(None)`` for
    the float product), then the output scale (2^-frac * scale; the float product: scale). An array,
    not a tuple: a tuple argument costs a Numba call ~0.2 us to type, an array ~0.07 us."""
    return np.array(tuple(PA) + (float(oscale),), np.float64)


def sparse_plan(indptr, indices, n_senders: int, signs=None) -> np.ndarray:
    """The distinct lists of index lists (receiver r's senders ``indices[indptr[r]:indptr[r+1]]``,
    in that order, with int8 +-1 ``signs`` per entry or None) as the sparse kernels' ``plan``, one
    int64 array (one argument, not four): ``[U, NR, nnz, signed, lptr (U + 1), lidx (nnz),
    row_of (NR)]``, unpacked by ``plan_parts``.

    List u's entries are ``lidx[lptr[u]:lptr[u+1]]``, rows of the kernel's code table: sender s
    (sign +1) is row s, sender s with sign -1 row ``n_senders + 1 + s`` (its negated codes, made
    when ``signed``), and row ``n_senders`` holds zeros, which pads every list to an even length
    (see ``sparse_rows``). Receiver r's list is ``row_of[r]``. Lists are ordered by length (stable),
    which keeps the kernel's trip counts predictable. Built once per matrix."""
    indptr = np.asarray(indptr, np.int64)
    indices = np.asarray(indices, np.int64)
    nr = indptr.size - 1
    signed = signs is not None and np.size(signs) > 0
    rows = indices.copy()                            # each entry's code row
    if signed:
        rows[np.asarray(signs) < 0] += n_senders + 1
    list_of: dict = {}
    first = []                                       # the first receiver of each list
    row_of = np.empty(nr, np.int64)
    for r in range(nr):
        key = rows[indptr[r]:indptr[r + 1]].tobytes()
        if key not in list_of:
            list_of[key] = len(first)
            first.append(r)
        row_of[r] = list_of[key]
    first = np.array(first, np.int64)
    order = np.argsort(indptr[first + 1] - indptr[first], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    lists = [rows[indptr[r]:indptr[r + 1]] for r in first[order]]
    lists = [np.append(e, [n_senders] * (e.size % 2)) for e in lists]
    lptr = np.zeros(order.size + 1, np.int64)
    np.cumsum([e.size for e in lists], out=lptr[1:])
    lidx = np.concatenate(lists + [np.zeros(0, np.int64)])
    return np.concatenate(([order.size, nr, lidx.size, int(signed)], lptr, lidx, rank[row_of])).astype(np.int64)


@register_jitable
def plan_parts(plan):
    """``(lptr, lidx, row_of, signed)``: views of a ``sparse_plan`` and its flag."""
    U, NR, nnz = plan[0], plan[1], plan[2]
    o = 4 + U + 1
    return plan[4:o], plan[o:o + nnz], plan[o + nnz:o + nnz + NR], plan[3] != 0


@intrinsic
def store_transposed4(typingctx, X, a0, a1, a2, a3, Y, q, step):
    """``Y.flat[q + k * step + j] = X.flat[a_j + k]`` for j, k = 0..3 (C-contiguous arrays, X
    float32, Y float32 or float64: converted, exactly): the 4 x 4 block whose rows start at X's flat
    offsets a0..a3, stored transposed as four runs of four, ``step`` apart. Four vector loads, eight
    shuffles (LLVM ``shufflevector``, which plain Numba code cannot ask for), four vector stores.
    No bounds checks: callers keep offsets in range."""
    ints = (a0, a1, a2, a3, q, step)
    if not (isinstance(X, types.Array) and X.dtype == types.float32 and X.layout == "C"
            and isinstance(Y, types.Array) and Y.dtype in (types.float32, types.float64) and Y.layout == "C"
            and all(isinstance(t, types.Integer) for t in ints)):
        return None
    wide = Y.dtype == types.float64

    def codegen(context, builder, sig, args):
        x = context.make_array(sig.args[0])(context, builder, args[0]).data
        y = context.make_array(sig.args[5])(context, builder, args[5]).data
        off = [context.cast(builder, v, t, types.intp) for v, t in zip(args, sig.args) if isinstance(t, types.Integer)]
        vec = ir.VectorType(ir.FloatType(), 4).as_pointer()
        rows = [builder.load(builder.bitcast(builder.gep(x, [a]), vec), align=4) for a in off[:4]]

        def mix(u, v, lanes):
            return builder.shuffle_vector(u, v, ir.Constant(ir.VectorType(ir.IntType(32), 4), lanes))
        lo01, hi01 = mix(rows[0], rows[1], [0, 4, 1, 5]), mix(rows[0], rows[1], [2, 6, 3, 7])
        lo23, hi23 = mix(rows[2], rows[3], [0, 4, 1, 5]), mix(rows[2], rows[3], [2, 6, 3, 7])
        cols = [mix(lo01, lo23, [0, 1, 4, 5]), mix(lo01, lo23, [2, 3, 6, 7]),
                mix(hi01, hi23, [0, 1, 4, 5]), mix(hi01, hi23, [2, 3, 6, 7])]
        out = ir.VectorType(ir.DoubleType() if wide else ir.FloatType(), 4)
        at = off[4]
        for col in cols:
            if wide:
                col = builder.fpext(col, out)
            builder.store(col, builder.bitcast(builder.gep(y, [at]), out.as_pointer()), align=8 if wide else 4)
            at = builder.add(at, off[5])
        return context.get_dummy_value()
    return types.void(X, a0, a1, a2, a3, Y, q, step), codegen


@register_jitable
def gather_transposed(X, rows, Y, j0, j1):
    """``Y[i, j] = X[rows[j], i]`` (``rows`` None: ``X[j, i]``) for columns j0..j1-1 of Y and all
    its rows (C-contiguous X (., >= I) float32, Y (I, .) float32 or float64): Y's columns gathered
    from X's rows, 4 x 4 blocks through ``store_transposed4``, the ragged edges one at a time."""
    I, J, K = Y.shape[0], Y.shape[1], X.shape[1]
    Xf, Yf = X.reshape(-1), Y.reshape(-1)
    i4 = I - I % 4
    j = j0
    while j <= j1 - 4:
        if rows is None:
            a0, a1, a2, a3 = j * K, (j + 1) * K, (j + 2) * K, (j + 3) * K
        else:
            a0, a1, a2, a3 = rows[j] * K, rows[j + 1] * K, rows[j + 2] * K, rows[j + 3] * K
        for i in range(0, i4, 4):
            store_transposed4(Xf, a0 + i, a1 + i, a2 + i, a3 + i, Yf, i * J + j, J)
        for i in range(i4, I):
            for jj, a in enumerate((a0, a1, a2, a3)):
                Yf[i * J + j + jj] = Xf[a + i]
        j += 4
    for jj in range(j, j1):
        a = jj * K if rows is None else rows[jj] * K
        for i in range(I):
            Yf[i * J + jj] = Xf[a + i]


@register_jitable
def sparse_codes(R, PA, signed, codes, b0, b1):
    """Pass 1, batch rows b0..b1-1 of the code table (see ``sparse_plan``): ``codes[s, b]`` = the
    addend of R[b, s]: its accumulator code (``acc_in``; saturating: ``np.rint``, see
    ``fixed_product_rows``) for a fixed PA, else R[b, s] in float64; with ``signed``, row
    NS + 1 + s = -codes[s] (exact: the reference's code * -1). R is transposed into the table first,
    then converted in place. The loops index slices from 0: over ``range(b0, b1)`` Numba's
    wraparound of a possibly negative index stays in the loop and keeps LLVM from vectorizing it."""
    NS = R.shape[1]
    gather_transposed(R, None, codes[:NS], b0, b1)
    fixed = PA[0] == 2.0
    wrap = fixed and PA[6] != 0.0
    sin = PA[7]
    if fixed:
        for s in range(NS):
            row = codes[s, b0:b1]
            if wrap:
                for b in range(row.size):
                    row[b] = acc_in(row[b] * sin, PA)
            else:                                    # acc_in's rounding, as one SIMD instruction
                for b in range(row.size):
                    row[b] = np.rint(row[b] * sin)
    if signed:                                       # a loop of its own: inside the one above it
        for s in range(NS):                          # keeps LLVM from vectorizing that (3x slower)
            row, neg = codes[s, b0:b1], codes[NS + 1 + s, b0:b1]
            for b in range(row.size):
                neg[b] = -row[b]


@register_jitable
def sparse_rows(codes, lptr, lidx, PA, oscale, S, u0, u1, work):
    """Pass 2, lists u0..u1-1: ``S[u]`` = list u's value at every batch position: its entries (rows
    of ``codes``) added in order, the first to 0.0; an empty list is 0.0.

    Fixed PA: each code added and saturated (wrapped) after every add, S = float32(code * oscale +
    0.0). Float PA (``sparse_feedback_product``): the same loop with bounds -inf..inf, a plain
    float64 sum, S = float32(sum * oscale + -0.0); adding -0.0 changes no value (and keeps the sign
    of a zero), adding +0.0 turns -0 into +0 as the fixed reference does.

    Two entries per vectorized pass over the batch (each pass costs ~40 cycles beyond its adds at
    batch 100), the last pass storing S itself. Lists are padded to an even length with the zero
    row: adding 0 to a saturated (wrapped) code, or to a float sum, which is never -0 (it starts as
    0.0 + x), changes nothing. ``work`` (2, NB): row 0 zeros, the 0.0 a list starts from; row 1 the
    running code."""
    NB = codes.shape[1]
    fixed = PA[0] == 2.0
    wrap = fixed and PA[6] != 0.0
    lo, hi = (PA[9], PA[10]) if fixed else (-np.inf, np.inf)
    zero = 0.0 if fixed else -0.0
    for u in range(u0, u1):
        p0, p1 = lptr[u], lptr[u + 1]
        if p0 == p1:
            for b in range(NB):
                S[u, b] = np.float32(0.0 * oscale + zero)
        for p in range(p0, p1, 2):
            s, t = lidx[p], lidx[p + 1]
            w = 0 if p == p0 else 1
            if wrap and p + 2 == p1:
                for b in range(NB):
                    a = overflow(work[w, b] + codes[s, b], PA)
                    S[u, b] = np.float32(overflow(a + codes[t, b], PA) * oscale + zero)
            elif wrap:
                for b in range(NB):
                    work[1, b] = overflow(overflow(work[w, b] + codes[s, b], PA) + codes[t, b], PA)
            elif p + 2 == p1:
                for b in range(NB):
                    a = saturate(work[w, b] + codes[s, b], lo, hi)
                    S[u, b] = np.float32(saturate(a + codes[t, b], lo, hi) * oscale + zero)
            else:
                for b in range(NB):
                    work[1, b] = saturate(saturate(work[w, b] + codes[s, b], lo, hi) + codes[t, b], lo, hi)


@register_jitable
def sparse_tables(NS, NB, U, signed):
    """``(codes, work, S)`` of one call, from one allocation (each costs a call ~60 ns): the code
    table of ``sparse_plan``'s layout, its zero row filled; ``sparse_rows``' work rows, row 0
    zero; the float32 rows S (U, NB)."""
    rows = 2 * NS + 1 if signed else NS + 1
    n_codes, n_work = rows * NB, 2 * NB
    buf = np.empty(n_codes + n_work + (U * NB + 1) // 2, np.float64)
    codes = buf[:n_codes].reshape((rows, NB))
    codes[NS] = 0.0
    work = buf[n_codes:n_codes + n_work].reshape((2, NB))
    work[0] = 0.0
    return codes, work, buf[n_codes + n_work:].view(np.float32)[:U * NB].reshape((U, NB))


@njit(parallel=True, cache=True)
def sparse_product(R, plan, params, out):
    """``out[b, r] = float32(acc * oscale)``, acc the sum of sign_p * R[b, indices[p]] over r's list
    in order, saturating (wrapping) at every add in a fixed accumulator, or a float64 sum with
    float parameters (see ``sparse_rows``). R (batch, sender) and out (batch, receiver) float32
    C-contiguous; ``plan`` from ``sparse_plan``, ``params`` from ``sparse_params``. Each pass is
    parallel over chunks: ``SPARSE_COLUMNS`` batch rows, ``SPARSE_CHUNK`` lists,
    ``SPARSE_COLUMNS`` receivers."""
    lptr, lidx, row_of, signed = plan_parts(plan)
    NB, NS = R.shape
    U, NR = lptr.size - 1, row_of.size
    codes, _, S = sparse_tables(NS, NB, U, signed)
    for t in prange((NB + SPARSE_COLUMNS - 1) // SPARSE_COLUMNS):
        b0 = t * SPARSE_COLUMNS
        sparse_codes(R, params, signed, codes, b0, min(NB, b0 + SPARSE_COLUMNS))
    for t in prange((U + SPARSE_CHUNK - 1) // SPARSE_CHUNK):
        u0 = t * SPARSE_CHUNK
        sparse_rows(codes, lptr, lidx, params, params[OSCALE], S, u0, min(U, u0 + SPARSE_CHUNK),
                    np.zeros((2, NB), np.float64))
    for t in prange((NR + SPARSE_COLUMNS - 1) // SPARSE_COLUMNS):
        r0 = t * SPARSE_COLUMNS
        gather_transposed(S, row_of, out, r0, min(NR, r0 + SPARSE_COLUMNS))


@njit(cache=True)
def sparse_product_serial(R, plan, params, out):
    """``sparse_product`` on the calling thread only."""
    lptr, lidx, row_of, signed = plan_parts(plan)
    NB, NS = R.shape
    codes, work, S = sparse_tables(NS, NB, lptr.size - 1, signed)
    sparse_codes(R, params, signed, codes, 0, NB)
    sparse_rows(codes, lptr, lidx, params, params[OSCALE], S, 0, lptr.size - 1, work)
    gather_transposed(S, row_of, out, 0, row_of.size)


@register_jitable
def lut_value(o, values, lo_k, inv_span, k, last):
    """f' of one float32 forward output from the table ``values``: bin floor((floor(o * k) - lo_k)
    * inv_span), exact (``reference.fprime_index``), clamped to 0..last (``last`` = k - 1, float64);
    NaN for NaN. ``(lo_k, inv_span, k)`` = ``FprimeTable.index_params()``."""
    if o != o:
        return np.float32(np.nan)
    t = ffloor((ffloor(np.float64(o) * k) - lo_k) * inv_span)
    t = 0.0 if t < 0.0 else t
    t = last if t > last else t
    return values[np.int64(t)]


@njit(cache=True, nogil=True)
def fprime_lut_span(o, values, lo_k, inv_span, k, out):
    """out[i] = table f' of o[i] (1-D float32)."""
    last = np.float64(values.size - 1)
    for i in range(o.size):
        out[i] = lut_value(o[i], values, lo_k, inv_span, k, last)


@njit(parallel=True, cache=True)
def fprime_lut_flat(o, values, lo_k, inv_span, k, out):
    """``fprime_lut_span`` in parallel over chunks of ``ACTIVATION_CHUNK`` elements."""
    n = o.size
    for t in prange((n + ACTIVATION_CHUNK - 1) // ACTIVATION_CHUNK):
        lo = t * ACTIVATION_CHUNK
        hi = min(n, lo + ACTIVATION_CHUNK)
        fprime_lut_span(o[lo:hi], values, lo_k, inv_span, k, out[lo:hi])


@register_jitable
def scale_round_span(J, fp, P, mode, key, counter, out):
    """out[i] = float32(Q(float64(J[i]) * float64(fp[i]))) with counter + i; ``mode`` from
    ``F64_MODE`` (out may be J itself: a block is read whole before it is written)."""
    n = J.size
    v = np.empty(F64_BLOCK, np.float64)
    for b0 in range(0, n, F64_BLOCK):
        m = min(F64_BLOCK, n - b0)
        Jb, fb = J[b0:b0 + m], fp[b0:b0 + m]
        for i in range(m):
            v[i] = np.float64(Jb[i]) * np.float64(fb[i])
        quantize_f64_span(v[:m], P, mode, key, counter + np.uint64(b0), out[b0:b0 + m])


@njit(cache=True, nogil=True)
def fixed_scale_round_serial(J, fp, P, mode, key, counter, out):
    """``scale_round_span`` on the calling thread (1-D float32 arrays)."""
    scale_round_span(J, fp, P, mode, key, counter, out)


@njit(parallel=True, cache=True)
def fixed_scale_round(J, fp, P, mode, key, counter, out):
    """``scale_round_span`` in parallel over chunks of ``QUANTIZE_CHUNK`` elements."""
    n = J.size
    for t in prange((n + QUANTIZE_CHUNK - 1) // QUANTIZE_CHUNK):
        lo = t * QUANTIZE_CHUNK
        hi = min(n, lo + QUANTIZE_CHUNK)
        scale_round_span(J[lo:hi], fp[lo:hi], P, mode, key, counter + np.uint64(lo), out[lo:hi])
