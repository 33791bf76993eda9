"""Scalar arithmetic of the kernels (RNG, rounding, saturation, the quantizers), written once as
``register_jitable`` functions that the njit kernels of ``kernels.cpu`` and the CUDA kernels of
``kernels.cuda`` both inline.

Only operations that IEEE 754 specifies exactly (+, -, *, /, comparisons, copysign, floor,
float <-> int conversion, reading and building float64 bit patterns), never a math-library function
such as log2 or exp2, and results rounded to float32 where the reference rounds, so every backend
returns the same bits. A format is its ``format_params`` tuple ``P`` (indexed by position here:
``kernels.cpu.params`` names the fields)."""
from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable

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
def draw24(key, c):
    """The reference's uniform at counter ``c`` times 2^24: its top 24 hash bits (an integer)."""
    return mix64(c ^ key) >> _S40


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
    with ``a = k - lo`` is exact (``reference.quantize._overflow``'s ``np.mod``). Branch-free."""
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
