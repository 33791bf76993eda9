"""NumPy reference kernels: the definition of what every faster kernel must return.

All functions are pure: arrays in, new arrays out. Quantizers compute in float64 and return
float32 (the grid values of every supported format are exact in float32).
"""
from __future__ import annotations

import numpy as np

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic): the counter-based RNG's mixer."""
    z = z.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def uniform_counter(n: int, seed: int, counter: int) -> np.ndarray:
    """n uniforms in [0, 1) on a 2^-24 grid, element i drawn from hash(seed, counter + i).

    Counter based, so any backend reproduces the same stream from (seed, counter) alone,
    whatever the order in which elements are processed.
    """
    idx = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = splitmix64(np.array([seed], dtype=np.uint64))[0]
        z = splitmix64((idx + np.uint64(counter)) ^ key)
    return (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24


def passthrough(x):
    return np.asarray(x, dtype=np.float32).copy()


def quantize_log(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``alpha * sign(x) * 2^round(clip(log2(|x|/alpha), E_min, 0))`` with the format's underflow rule."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64).ravel()
    mag = np.abs(xd)
    out = np.zeros_like(xd)
    nz = mag > 0
    with np.errstate(divide="ignore"):
        e = np.rint(np.log2(mag[nz] / fmt.alpha))
    e_min = fmt.min_exponent
    q = fmt.alpha * np.exp2(np.clip(e, e_min, 0))
    if fmt.underflow != "clip" and fmt.bits > 1:
        under = e < e_min
        if fmt.underflow == "flush":
            q[under] = 0.0
        else:  # stochastic: smallest level with probability |x| / smallest, else 0 (unbiased)
            smallest = fmt.alpha * 2.0 ** e_min
            u = uniform_counter(xd.size, seed, counter)[nz]
            q[under & (u * smallest >= mag[nz])] = 0.0
    out[nz] = np.sign(xd[nz]) * q
    return out.astype(np.float32).reshape(x.shape)


def quantize_fixed(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Round ``x * 2^frac`` to an integer with the format's rounding, then saturate or wrap."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64).ravel() * 2.0 ** fmt.frac
    if fmt.rounding == "nearest_even":
        k = np.rint(xd)
    elif fmt.rounding == "nearest_away":
        k = np.sign(xd) * np.floor(np.abs(xd) + 0.5)
    elif fmt.rounding == "truncate":
        k = np.floor(xd)
    else:
        k = np.floor(xd + uniform_counter(xd.size, seed, counter))
    if fmt.overflow == "saturate":
        k = np.clip(k, fmt.int_min, fmt.int_max)
    else:
        span = 2.0 ** fmt.word
        k = np.mod(k - fmt.int_min, span) + fmt.int_min
    return (k * 2.0 ** -fmt.frac).astype(np.float32).reshape(x.shape)
