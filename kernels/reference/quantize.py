"""Quantizers on float32 and exact float64 values, fixed-point codes and the stored weights' update.

The cores work on flat float64 values and return float64 grid values; the public quantizers
round their result to float32 once (``_f32``).
"""
from __future__ import annotations

import numpy as np

from .rng import uniform_counter

#: float64 nearest to sqrt(1/2); it lies above sqrt(1/2), so ``m >= SQRT_HALF`` <=> ``m > sqrt(1/2)``.
SQRT_HALF = 0.7071067811865476


def passthrough(x):
    return np.asarray(x, dtype=np.float32).copy()


def _f32(v: np.ndarray) -> np.ndarray:
    """Round float64 results to float32 (values beyond float32's range become +-inf, silently)."""
    with np.errstate(over="ignore"):
        return v.astype(np.float32)


# --- quantizer cores on float64 values ----------------------------------------------------------

def log_exponent(mag: np.ndarray, alpha: float) -> np.ndarray:
    """``min(round(log2(mag/alpha)), 0)`` (float64) for float64 magnitudes ``mag > 0`` (inf included);
    ``-inf`` where ``mag/alpha`` underflows float64. Non-decreasing in ``mag``."""
    v = mag / alpha
    m, E = np.frexp(v)
    e = np.where(m >= SQRT_HALF, E, E - 1).astype(np.float64)
    e[v >= 1.0] = 0.0                             # at or above alpha: the top level (also inf)
    e[v == 0.0] = -np.inf                         # |x|/alpha underflowed float64
    return e


def _log_core(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    """Log quantizer on flat float64 values; returns float64 grid values (before the float32 cast)."""
    mag = np.abs(xd)
    out = np.zeros_like(xd)
    nz = mag > 0                                  # exact zeros (and NaN) give 0
    e = log_exponent(mag[nz], fmt.alpha)
    e_min = fmt.min_exponent
    q = np.ldexp(fmt.alpha, np.maximum(e, e_min).astype(np.int32))
    if fmt.underflow != "clip" and fmt.bits > 1:
        under = e < e_min
        if fmt.underflow == "flush":
            q[under] = 0.0
        else:  # stochastic: smallest level with probability |x| / smallest, else 0 (unbiased)
            smallest = fmt.alpha * 2.0 ** e_min
            u = uniform_counter(xd.size, seed, counter)[nz]
            q[under & (u * smallest >= mag[nz])] = 0.0
    out[nz] = np.where(xd[nz] > 0, q, -q)
    return out + 0.0


def _round_fixed(y: np.ndarray, rounding: str, seed: int, counter: int) -> np.ndarray:
    """Round scaled values ``y = x * 2^frac`` to integers (as float64)."""
    if rounding == "nearest_even":
        return np.rint(y)
    if rounding == "nearest_away":
        return np.sign(y) * np.floor(np.abs(y) + 0.5)
    if rounding == "truncate":
        return np.floor(y)
    return np.floor(y + uniform_counter(y.size, seed, counter))


def _overflow(k: np.ndarray, fmt) -> np.ndarray:
    """Saturate or wrap integer codes (float64) into the format's range."""
    if fmt.overflow == "saturate":
        return np.clip(k, fmt.int_min, fmt.int_max)
    with np.errstate(invalid="ignore"):
        return np.mod(k - fmt.int_min, 2.0 ** fmt.word) + fmt.int_min


def _fixed_codes_f64(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    return _overflow(_round_fixed(xd * 2.0 ** fmt.frac, fmt.rounding, seed, counter), fmt)


def _fixed_core(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    return _fixed_codes_f64(xd, fmt, seed, counter) * 2.0 ** -fmt.frac + 0.0


def _core(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    kind = getattr(fmt, "kind", None)
    if kind == "float":
        return xd
    if kind == "log":
        return _log_core(xd, fmt, seed, counter)
    if kind == "fixed":
        return _fixed_core(xd, fmt, seed, counter)
    raise ValueError(f"number format: got {fmt!r}; allowed: Float32, LogQuant, FixedPoint")


# --- public quantizers --------------------------------------------------------------------------

def quantize_log(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``alpha * sign(x) * 2^round(clip(log2(|x|/alpha), E_min, 0))`` with the format's underflow rule."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64).ravel()
    return _f32(_log_core(xd, fmt, seed, counter)).reshape(x.shape)


def quantize_fixed(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Round ``x * 2^frac`` to an integer with the format's rounding, then saturate or wrap."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64).ravel()
    return _f32(_fixed_core(xd, fmt, seed, counter)).reshape(x.shape)


def quantize(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Any format (Float32, LogQuant, FixedPoint) on float32 values."""
    x = np.asarray(x, dtype=np.float32)
    return _f32(_core(x.astype(np.float64).ravel(), fmt, seed, counter)).reshape(x.shape)


def quantize_f64(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Quantize float64 values directly (no float32 step before the quantizer); float32 out."""
    x = np.asarray(x, dtype=np.float64)
    return _f32(_core(x.ravel(), fmt, seed, counter)).reshape(x.shape)


def fixed_codes(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """The int64 codes ``k`` (value ``k * 2^-frac``) of float32 ``x`` in FixedPoint ``fmt``; NaN -> 0."""
    x = np.asarray(x, dtype=np.float32)
    k = _fixed_codes_f64(x.astype(np.float64).ravel(), fmt, seed, counter)
    k[np.isnan(k)] = 0.0
    return k.astype(np.int64).reshape(x.shape)


# --- stored weights -------------------------------------------------------------------------------

def add_quantize(w, g, scale: float, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """A stored weight update: ``Q(w + scale * g)`` rounded once, by ``fmt``'s rounding and
    overflow, into its grid (``w`` float32 on that grid, ``g`` float32, ``scale`` taken as float32,
    as torch applies a learning rate to float32 tensors). The product of two float32 values is exact
    in float64 and the sum is rounded once there, so a fused multiply-add (as NVVM emits) gives the
    same bits. Element ``i`` (flat, C order) draws with counter ``counter + i``."""
    w, g = np.asarray(w, dtype=np.float32), np.asarray(g, dtype=np.float32)
    if w.shape != g.shape:
        raise ValueError(f"add_quantize: w has shape {w.shape} and g {g.shape}; they must match")
    s = w.astype(np.float64).ravel() + np.float64(np.float32(scale)) * g.astype(np.float64).ravel()
    return _f32(_core(s, fmt, seed, counter)).reshape(w.shape)
