"""The fixed-point accumulator of the bit-true learning channel: its codes, one saturating (or
wrapping) add, and the width check ``check_accumulator_holds``.

A circuit forms J = R @ B with every product added into a fixed-point accumulator that saturates
(or wraps) after every add, in a fixed order. The accumulator products (``products.fixed_product``,
``sparse.fixed_sparse_product``) are that circuit, bit for bit:

* Products. R and B hold float32 values (on fixed-point or log grids); R[b, s] * B[s, n] is
  formed in float64, where the product of two float32 values is always exact.
* Accumulator codes. A product p enters the accumulator A = FixedPoint(word, frac) as the integer
  code k = rint(p * 2^frac) (round half to even). When R's and B's formats pass
  ``check_accumulator_holds`` no product needs rounding; the rounding only defines what the
  kernels do otherwise, so they never fail mid-run. A's own ``rounding`` field is not used.
  With ``overflow="wrap"`` k is first reduced into A's range (mod 2^word, exactly: the same sum
  modulo 2^word, and every add below stays exact in float64).
* Adds. code <- overflow(code + k) after every add, senders in ascending order; the running code
  starts at 0. Saturation makes the order observable (+max, +1, -1 ends at max - 1; saturating
  only at the end would give max); wrap-around is arithmetic modulo 2^word, so with wrap the
  result is the exact sum modulo 2^word whatever the order.
* Output. float32(code * 2^-frac): exact for word <= 24; for word > 24 a code with more than
  24 significant bits is rounded to float32's 24-bit significand (half to even). Zeros are +0.0.
  NaN inputs give NaN; an infinite product saturates (or, wrapped, gives NaN).
"""
from __future__ import annotations

import math

import numpy as np

from .checks import require_accumulator
from .quantize import _overflow, _round_fixed


#: ``b_fmt`` of ``check_accumulator_holds`` for the sparse product: a {0, 1} matrix, or a
#: {-1, 0, +1} one (index lists with signs); the products are then R's values (or their negatives).
BINARY = "binary"
TERNARY = "ternary"


def _acc_add(acc: np.ndarray, q: np.ndarray, A, seed: int, counter: int) -> np.ndarray:
    """One saturating (or wrapping) add in accumulator format A: ``acc`` holds integer codes."""
    k = _round_fixed(q.ravel() * 2.0 ** A.frac, A.rounding, seed, counter).reshape(q.shape)
    return _overflow(acc + k, A)


def _wrap_codes(k: np.ndarray, A) -> np.ndarray:
    """Integer codes k (float64) modulo 2^word, into [int_min, int_max]; exact for every k
    (``np.mod`` by a power of two is), even where k - int_min would round in float64."""
    span = 2.0 ** A.word
    with np.errstate(invalid="ignore"):
        m = np.mod(k, span)
    return np.where(m > A.int_max, m - span, m)


def _acc_codes(y: np.ndarray, A) -> np.ndarray:
    """Accumulator codes (float64) of exact scaled values ``y = value * 2^frac``: rounded half to
    even (``np.rint``); with wrap, reduced into A's range so that the next add is exact."""
    k = np.rint(y)
    return _wrap_codes(k, A) if A.overflow == "wrap" else k


# --- bit-true learning channel: accumulator width check -----------------------------------------

def _frac_bits(v: float) -> int:
    """The smallest f with v a multiple of 2^-f (negative for multiples of 2, 4, ...); v != 0."""
    num, den = float(v).as_integer_ratio()
    if den > 1:
        return den.bit_length() - 1
    return -((abs(num) & -abs(num)).bit_length() - 1)


def _log_levels(fmt) -> np.ndarray:
    """The non-zero float32 magnitudes a log format produces (levels below float32's range are 0
    and left out), as float64."""
    e_min = int(fmt.min_exponent)
    e_low = max(e_min, -152 - math.frexp(float(fmt.alpha))[1])   # alpha * 2^e < 2^-150 below: 0
    with np.errstate(over="ignore"):
        levels = np.ldexp(float(fmt.alpha), np.arange(e_low, 1)).astype(np.float32).astype(np.float64)
    return levels[levels > 0]


def _value_grid(fmt, role: str):
    """``(frac_bits, vmin, vmax)`` of the values a format produces: every one is a multiple of
    2^-frac_bits and lies in [vmin, vmax] (both ends attained)."""
    if role == "B" and fmt == BINARY:
        return 0, 0.0, 1.0
    if role == "B" and fmt == TERNARY:
        return 0, -1.0, 1.0
    kind = getattr(fmt, "kind", None)
    if kind == "fixed":
        lsb = 2.0 ** -fmt.frac
        return int(fmt.frac), fmt.int_min * lsb, fmt.int_max * lsb
    if kind == "log":
        levels = _log_levels(fmt)
        if not np.all(np.isfinite(levels)):
            raise ValueError(f"check_accumulator_holds: {role} format {fmt.spec} has levels beyond float32's range; "
                             f"allowed: alpha <= 3.4e38")
        return max(_frac_bits(v) for v in levels), -float(levels.max()), float(levels.max())
    allowed = "FixedPoint or LogQuant (values on a binary grid)"
    if role == "B":
        allowed += f", or {BINARY!r} / {TERNARY!r} for index lists"
    raise ValueError(f"check_accumulator_holds: {role} format {getattr(fmt, 'spec', fmt)!r} has no fixed grid; "
                     f"allowed: {allowed}")


def _smallest_word(lo: float, hi: float, frac: int, signed: bool) -> int:
    """The narrowest word holding [lo, hi] at ``frac`` fraction bits (signed or not)."""
    for word in range(1, 200):
        span = 2.0 ** (word - 1) if signed else 2.0 ** word
        kmin, kmax = (-span, span - 1) if signed else (0.0, span - 1)
        if kmin * 2.0 ** -frac <= lo and hi <= kmax * 2.0 ** -frac:
            return word
    return 200


def check_accumulator_holds(r_fmt, b_fmt, acc) -> None:
    """Raise ValueError unless the accumulator ``acc`` holds every single product of an R value in
    ``r_fmt`` and a B value in ``b_fmt`` exactly: as a multiple of its LSB 2^-frac, inside its range.

    Call it once when the channel is configured: with it passed, ``fixed_product`` /
    ``fixed_sparse_product`` never round a product (their nearest-even rounding stays unused), and
    only sums can saturate or wrap. Formats: FixedPoint or LogQuant for R; for B also ``BINARY`` /
    ``TERNARY`` (the sparse product's index lists, unsigned / signed). The test is exact: the
    finest values of both grids (fixed: code 1; log: the smallest level, an odd multiple of its
    LSB) multiply to an odd multiple of 2^-(f_R + f_B), and the range ends of the products are
    attained.
    """
    A = require_accumulator(acc, "check_accumulator_holds")
    fr, rmin, rmax = _value_grid(r_fmt, "R")
    fb, bmin, bmax = _value_grid(b_fmt, "B")
    corners = (rmin * bmin, rmin * bmax, rmax * bmin, rmax * bmax)
    pmin, pmax = min(corners), max(corners)
    need_frac = max(fr + fb, 0)
    signed = A.int_min < 0
    lsb = 2.0 ** -A.frac
    fits = A.int_min * lsb <= pmin and pmax <= A.int_max * lsb
    if fr + fb <= A.frac and fits:
        return
    frac = max(need_frac, A.frac)
    word = max(_smallest_word(pmin, pmax, frac, signed or pmin < 0), frac)
    fix = (f"e.g. fixed:w={word},f={frac}" + ("" if signed or pmin < 0 else ",signed=0") if word <= 32 else
           f"but that needs word={word} and FixedPoint allows 1..32: put R or B on a coarser grid")
    b_name = b_fmt if isinstance(b_fmt, str) else getattr(b_fmt, "spec", b_fmt)
    problem = (f"products are multiples of 2^-{need_frac} but its LSB is 2^-{A.frac}" if fr + fb > A.frac else
               f"products span [{pmin:g}, {pmax:g}] but it holds [{A.int_min * lsb:g}, {A.int_max * lsb:g}]")
    raise ValueError(f"check_accumulator_holds: accumulator {A.spec} is narrower than the product it must hold "
                     f"(R {getattr(r_fmt, 'spec', r_fmt)} x B {b_name}): {problem}; allowed: frac >= {need_frac} "
                     f"and a range covering the products, {fix}")
