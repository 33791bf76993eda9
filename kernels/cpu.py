"""Numba CPU kernels: bit-exact twins of ``kernels.reference``.

The scalar arithmetic (RNG, rounding, the quantizers) is written once as ``register_jitable``
functions, which the njit kernels here and the CUDA kernels in ``kernels.cuda`` both inline. It
uses only operations that IEEE 754 specifies exactly (+, -, *, /, comparisons, copysign, float <->
int conversion, reading and building float64 bit patterns), never a math-library function such
as log2 or exp2, and rounds to float32 where the reference does, so every backend returns the same
bits. Loops over the common deterministic formats are branch-free (selects) and vectorize.
Nothing compiles at import: the njit decorators are lazy (``cache=True``).

Kernel arguments are C-contiguous arrays, a format as a ``PARAMS``-long tuple of float64
(``format_params``), the RNG key ``splitmix64(seed)`` and counters as uint64.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .reference import SQRT_HALF, seed_key  # noqa: F401  (seed_key re-exported for callers)

_MOD64 = 2 ** 64
_TWO52 = 4503599627370496.0
_U24 = 1.0 / 16777216.0
_TINY = 2.2250738585072014e-308              # smallest normal float64, 2^-1022
_TWO64 = 18446744073709551616.0
_MANT = np.int64((1 << 52) - 1)
_SQRT2_MANT = np.int64(0x6A09E667F3BCD)      # significand bits of fl(sqrt(2)) = 2 * SQRT_HALF
_I0, _IM1022 = np.int64(0), np.int64(-1022)  # (Numba CUDA's min/max reject int64 with int literals)
_E_ZERO = np.int64(-(1 << 40))               # exponent standing for log2(0): below every e_min
_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)

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
    """``reference.uniform_counter`` element at counter ``c``: top 24 bits of the hash / 2^24."""
    return np.float64(mix64(c ^ key) >> _S40) * _U24


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
def overflow(k, P):
    """Saturate, or wrap modulo 2^word (``a - span*floor(a/span)`` is exact), an integer code."""
    if P[6] == 0.0:
        return saturate(k, P[9], P[10])
    a = k - P[9]
    return (a - P[11] * ffloor(a / P[11])) + P[9]


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


# --- kernels ------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def quantize_flat(x, P, key, counter, out):
    """out[i] = Q(x[i]) with counter + i; ``out`` may be ``x`` (in place). 1-D float32.

    Fixed nearest-even/saturate and deterministic log formats (e_min > -1022) take branch-free
    loops; the rest the general one."""
    n = x.size
    if P[0] == 2.0 and P[5] == 0.0 and P[6] == 0.0:
        sin, sout, lo, hi = P[7], P[8], P[9], P[10]
        for i in prange(n):
            out[i] = np.float32(fixed_ne_sat(np.float64(x[i]), sin, sout, lo, hi))
    elif P[0] == 1.0 and P[3] != 2.0 and P[2] > -1022.0:
        alpha, e_min, flush = P[1], np.int64(P[2]), P[3] == 1.0
        for i in prange(n):
            q, under = log_level_fast(np.float64(x[i]), alpha, e_min)
            out[i] = np.float32((0.0 if (under and flush) else q) + 0.0)
    else:
        for i in prange(n):
            out[i] = np.float32(quant_value(np.float64(x[i]), P, key, counter + np.uint64(i)))


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
def sparse_product(R, indptr, indices, scale, out):
    """out[b, r] = scale * sum_{p in indptr[r]..indptr[r+1]} R[b, indices[p]] (float64 sum)."""
    B = R.shape[0]
    NR = indptr.size - 1
    for b in prange(B):
        for r in range(NR):
            acc = 0.0
            for p in range(indptr[r], indptr[r + 1]):
                acc += np.float64(R[b, indices[p]])
            out[b, r] = np.float32(acc * scale)


@njit(parallel=True, cache=True)
def per_example_update(R, O, P, PA, key, counter, counter_a, out):
    """Fused ``out[i, j] = sum_b Q(R[b, i] * O[b, j])`` without the (batch, out, in) tensor.

    One output row per parallel task; the batch is summed in order for every (i, j), so the
    result equals ``reference.per_example_update`` bit for bit. PA[0] == 2: fixed accumulator.
    Float accumulation with fixed nearest-even/saturate or deterministic log formats (with
    e_min > -1022) runs a branch-free inner loop (SIMD); everything else the general one.
    """
    B, NO = R.shape
    NI = O.shape[1]
    fixed_acc = PA[0] == 2.0
    mode = 0
    if not fixed_acc and P[0] == 2.0 and P[5] == 0.0 and P[6] == 0.0:
        mode = 1
    elif not fixed_acc and P[0] == 1.0 and P[3] != 2.0 and P[2] > -1022.0:
        mode = 2
    sin, sout, lo, hi = P[7], P[8], P[9], P[10]
    alpha, e_min, flush = P[1], np.int64(P[2]), P[3] == 1.0
    for i in prange(NO):
        acc = np.zeros(NI, np.float64)
        for b in range(B):
            r = R[b, i]
            if mode == 1:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_ne_sat(np.float64(r * O[b, j]), sin, sout, lo, hi)))
            elif mode == 2:
                for j in range(NI):
                    q, under = log_level_fast(np.float64(r * O[b, j]), alpha, e_min)
                    q = 0.0 if (under and flush) else q
                    acc[j] += np.float64(np.float32(q + 0.0))
            else:
                base = np.uint64((b * NO + i) * NI)
                c0 = counter + base
                ca = counter_a + base
                for j in range(NI):
                    q = np.float64(np.float32(quant_value(np.float64(r * O[b, j]), P, key, c0 + np.uint64(j))))
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
def accumulate_fixed(X, PA, key, counter, out):
    """out[j] = saturating sum over t of X[t, j] in fixed format PA (counter + t*m + j)."""
    n, m = X.shape
    for j in prange(m):
        acc = 0.0
        for t in range(n):
            acc = acc_add(acc, np.float64(X[t, j]), PA, key, counter + np.uint64(t * m + j))
        out[j] = np.float32(acc * PA[8] + 0.0)
