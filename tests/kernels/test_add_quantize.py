"""The stored-weight update kernel: ``w = Q(w + scale * g)``, the sum exact and rounded once into
the weights' format, bit for bit the same on the Numba backend as in the NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kcases import FIXED_FORMATS, FORMATS, awkward_values, same_bits
from kernels import dispatch, reference
from lowbit_rbp.core.formats import FixedPoint


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.spec)
@pytest.mark.parametrize("n", [7, 5000, 70_000])     # serial and parallel paths
def test_numba_equals_reference(fmt, n):
    rng = np.random.default_rng(n)
    w = reference.quantize(rng.normal(0, 0.5, n).astype(np.float32), fmt)
    g = awkward_values(n, rng, scale=1.5)
    want = reference.add_quantize(w, g, 0.01, fmt, seed=3, counter=123)
    got = w.copy()
    dispatch.add_quantize_(got, g, 0.01, fmt, seed=3, counter=123, backend="numba")
    assert same_bits(got, want)
    t = torch.from_numpy(w.copy())                      # a torch tensor in place, like the trainer's weights
    dispatch.add_quantize_(t, torch.from_numpy(g), 0.01, fmt, seed=3, counter=123, backend="auto")
    assert same_bits(t.numpy(), want)


def test_sum_is_exact_before_the_one_rounding():
    """w + scale g rounded once: a float32 sum first would round 0.5 + (2^-24 + 2^-26) to 0.5 + 2^-24
    (a tie at 2^-23 resolution), then nearest-even to 0.5; the exact sum is above the tie."""
    fmt = FixedPoint(32, 23)                            # LSB 2^-23
    w = np.array([0.5], np.float32)
    g = np.array([2.0 ** -24 + 2.0 ** -26], np.float32)
    assert np.float32(w[0] + g[0]) == np.float32(0.5 + 2.0 ** -24)      # the float32 sum loses 2^-26
    got = reference.add_quantize(w, g, 1.0, fmt)
    assert got[0] == np.float32(0.5 + 2.0 ** -23)       # the exact sum is past the midpoint
    dispatch.add_quantize_(w, g, 1.0, fmt, backend="numba")
    assert w[0] == got[0]


def test_saturates_and_wraps_at_the_format_range():
    sat, wrap = FixedPoint(4, 2), FixedPoint(4, 2, overflow="wrap")   # codes -8..7, values -2..1.75
    w = np.array([1.75, -2.0, 1.0], np.float32)
    g = np.array([1.0, -1.0, 0.25], np.float32)
    assert reference.add_quantize(w, g, 1.0, sat).tolist() == [1.75, -2.0, 1.25]
    assert reference.add_quantize(w, g, 1.0, wrap).tolist() == [-1.25, 1.0, 1.25]   # 11 -> -5, -12 -> 4


def test_stochastic_rounding_is_unbiased_and_seeded():
    fmt = FixedPoint(8, 2, rounding="stochastic")       # LSB 0.25
    w = np.zeros(20_000, np.float32)
    g = np.full(20_000, 0.1, np.float32)
    out = reference.add_quantize(w, g, 1.0, fmt, seed=7)
    assert set(np.unique(out).tolist()) == {0.0, 0.25}
    assert abs(out.mean() - 0.1) < 0.01                   # 0.1 = 0.4 LSB: up with probability 0.4
    assert same_bits(out, reference.add_quantize(w, g, 1.0, fmt, seed=7))
    assert not same_bits(out, reference.add_quantize(w, g, 1.0, fmt, seed=8))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"w has shape \(3,\) and g \(4,\)"):
        dispatch.add_quantize_(np.zeros(3, np.float32), np.zeros(4, np.float32), 1.0, FIXED_FORMATS[0],
                               backend="numba")
