"""Shared inputs for the kernel tests: formats, shapes, awkward values, a bit-exact comparison.

Imported by the test modules (pytest puts this folder on sys.path) and by ``cudasim_check.py``.
"""
from __future__ import annotations

import numpy as np

from lowbit_rbp.core.formats import FixedPoint, Float32, LogQuant

# The Numba kernels pick a loop per format (kernels.cpu.kernel_mode): threshold tables for log
# formats with <= 8 levels (LOG_TABLE[_STOCH]), exponent bits for more levels with e_min > -1022
# (LOG_BITS[_STOCH]), fixed nearest-even/saturate (FIXED_NE_SAT), fixed stochastic rounding with
# saturation or wrap (FIXED_SR_SAT / FIXED_SR_WRAP), the general loop otherwise; every one of them
# appears here.
LOG_FORMATS = [
    LogQuant(2, 3, "clip"),
    LogQuant(2, 1),                                 # 1 bit: sign only, underflow irrelevant
    LogQuant(0.1, 5, "flush"),                       # alpha not a float32 value
    LogQuant(2.0 ** -6, 7, "stochastic"),
    LogQuant(2, 4, "stochastic", "full"),
    LogQuant(2.0 ** 1000, 12, "flush", "full"),       # e_min = -2047, quotients go subnormal
    LogQuant(1e-30, 12, "stochastic", "full"),
    LogQuant(0.1, 3),                                # the default underflow (stochastic), table loop
    LogQuant(2, 10, "clip"),                         # 10 levels: exponent-bits loops
    LogQuant(0.1, 9, "stochastic"),
    LogQuant(2, 5, "flush", "full"),                 # 16 levels
    LogQuant(1e-40, 3, "stochastic"),                # levels are float32 subnormals
    LogQuant(1e-45, 3, "clip"),                      # smallest level is 0 in float32: no table
    LogQuant(2.0 ** 130, 3, "stochastic"),           # levels beyond float32's range (inf)
]
FIXED_FORMATS = [
    FixedPoint(8, 6),
    FixedPoint(4, 3, rounding="stochastic"),         # the bit-true channel's signals and errors
    FixedPoint(8, 4, rounding="nearest_away"),
    FixedPoint(6, 3, signed=False, rounding="truncate"),
    FixedPoint(12, 8, rounding="stochastic", overflow="wrap"),
    FixedPoint(16, 12, rounding="stochastic"),
    FixedPoint(5, 2, overflow="wrap"),
    FixedPoint(32, 3, overflow="wrap"),
    FixedPoint(8, 8, signed=False, overflow="wrap"),
]
FORMATS = [Float32()] + LOG_FORMATS + FIXED_FORMATS

# Per-example update: formats that take each inner loop (fixed nearest-even/saturate and log
# formats run SIMD loops, stochastic underflow included; the rest the general one) and accumulators.
UPDATE_FORMATS = [
    FixedPoint(8, 8),
    FixedPoint(10, 8, rounding="stochastic"),
    FixedPoint(8, 6, rounding="nearest_away", overflow="wrap"),
    LogQuant(2.0 ** -4, 5, "clip"),
    LogQuant(0.1, 4, "flush"),
    LogQuant(2.0 ** -4, 5, "stochastic"),
    LogQuant(0.1, 9, "stochastic"),
    LogQuant(2, 10, "clip"),
    LogQuant(2.0 ** 1000, 12, "flush", "full"),
    Float32(),
]
ACCUMULATORS = [None, FixedPoint(16, 10), FixedPoint(10, 8, rounding="stochastic", overflow="wrap"),
                FixedPoint(6, 4)]

SHAPES = [(0,), (1,), (7, 13), (3, 5, 2), (257,)]


def awkward_values(n: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """float32 values with every awkward case present once n is large enough, then random."""
    special = np.array([
        0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, 3.4e38, -3.4e38,
        0.5, -0.5, 1.5, -2.5, 0.125, 0.1875, -0.1875,          # fixed-point ties
        2.0 ** 0.5, 2.0 ** -0.5, 2.0 ** -2.5, -(2.0 ** -3.5),   # log thresholds (rounded)
        1.9999999, 2.0, 2.0000002, 1e-3, -7e-4,
    ], dtype=np.float32)
    # float32 neighbours of the log thresholds alpha * 2^(k + 1/2)
    thr = (2.0 ** (np.arange(-12, 2) + 0.5)).astype(np.float32)
    special = np.concatenate([special, thr, np.nextafter(thr, np.float32(0)), np.nextafter(thr, np.float32(10))])
    body = np.concatenate([rng.normal(0, scale, n), rng.normal(0, scale * 1e-3, n),
                           scale * rng.standard_cauchy(n)]).astype(np.float32)
    rng.shuffle(body)
    out = np.concatenate([special, body])[:n]
    rng.shuffle(out)
    return out


def fixed_edge_values(fmt) -> np.ndarray:
    """float32 values at a FixedPoint format's awkward points: the codes at and next to both range
    ends and around zero, each exactly on the grid, half an LSB off (ties), a small fraction of an
    LSB off and just short of the next code; the float32 neighbours of the range ends; signed zeros,
    NaN, infinities and the largest float32 values."""
    lsb = 2.0 ** -fmt.frac
    lo, hi = float(fmt.int_min), float(fmt.int_max)
    codes = np.array([lo - 2, lo - 1, lo, lo + 1, -2.0, -1.0, 0.0, 1.0, 2.0, hi - 1, hi, hi + 1, hi + 2])
    offsets = np.array([0.0, 0.5, -0.5, 2.0 ** -10, -(2.0 ** -10), 1.0 - 2.0 ** -12])
    grid = ((codes[:, None] + offsets[None, :]) * lsb).ravel().astype(np.float32)
    ends = np.array([lo * lsb, hi * lsb], np.float32)
    neighbours = np.concatenate([np.nextafter(ends, np.float32(-np.inf)), np.nextafter(ends, np.float32(np.inf))])
    special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, -1e-45], np.float32)
    return np.concatenate([grid, neighbours, special])


def same_bits(a, b) -> bool:
    """Equal shapes, NaN in the same places, every other float32 bit-identical (+0 != -0)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return np.array_equal(a, b)
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return False
    ia = a[~na].view(np.uint32 if a.dtype == np.float32 else np.uint64)
    ib = b[~nb].view(np.uint32 if b.dtype == np.float32 else np.uint64)
    return np.array_equal(ia, ib)


def describe_diff(a, b) -> str:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    bad = np.nonzero(~((a == b) | (np.isnan(a) & np.isnan(b))) | (np.signbit(a) != np.signbit(b)))
    idx = tuple(i[:5] for i in bad)
    return f"{len(bad[0])} differ, e.g. at {idx}: {a[idx]} vs {b[idx]}"


class BitChecks:
    """The CUDA simulator scripts' checks: ``check(name, got, want)`` prints ok / FAIL per case and
    keeps each failure's difference; ``exit_status()`` prints them (or ALL OK) and gives 1 / 0."""

    def __init__(self):
        self.failures: list[str] = []

    def check(self, name, got, want) -> None:
        ok = same_bits(np.asarray(got), np.asarray(want))
        print(("ok   " if ok else "FAIL ") + name, flush=True)
        if not ok:
            self.failures.append(f"{name}: {describe_diff(got, want)}")

    def exit_status(self) -> int:
        if self.failures:
            print("\n".join(self.failures))
            return 1
        print("ALL OK")
        return 0


def run_cudasim_script(path) -> None:
    """Run a check script under the Numba CUDA simulator (a subprocess: the simulator is chosen at
    import); it must print ALL OK and no FAIL."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(root))
    res = subprocess.run([sys.executable, str(path)], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "ALL OK" in res.stdout, out[-4000:]
    assert "FAIL" not in res.stdout
