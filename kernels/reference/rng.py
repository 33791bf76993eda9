"""The counter-based random numbers of the stochastic modes: SplitMix64, the seed key and the
uniforms drawn from (seed, counter).
"""
from __future__ import annotations

import numpy as np

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_MOD64 = 2 ** 64


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic): the counter-based RNG's mixer."""
    z = z.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def seed_key(seed: int) -> np.uint64:
    """``splitmix64(seed)``: the key every element's counter is xor-ed with."""
    return splitmix64(np.array([int(seed) % _MOD64], dtype=np.uint64))[0]


def uniform_counter(n: int, seed: int, counter: int) -> np.ndarray:
    """n uniforms in [0, 1) on a 2^-24 grid, element i drawn from hash(seed, counter + i).

    ``u_i = (splitmix64((counter + i) xor splitmix64(seed)) >> 40) * 2^-24`` (uint64 wrapping).
    Counter based, so any backend reproduces the same stream from (seed, counter) alone,
    whatever the order in which elements are processed.
    """
    idx = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = seed_key(seed)
        z = splitmix64((idx + np.uint64(int(counter) % _MOD64)) ^ key)
    return (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24
