"""The per-example update on integer codes (``update_codes``): the reference's float64 sums
reproduced bit for bit as exact sums of small integer codes, for the formats ``code_plan`` takes."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .params import (KIND, OVERFLOW, ROUNDING, SCALE_IN, SCALE_OUT, SMALLEST, UNDERFLOW, bucket_edges, format_params,
                     log_levels)
from .scalar import draw24


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
