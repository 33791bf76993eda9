"""The stored-weight update kernel: ``w = Q(w + scale * g)``, the sum exact and rounded once into
the weights' format, bit for bit the same on the Numba backend as in the NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kcases import FIXED_FORMATS, FORMATS, awkward_values, describe_diff, fixed_edge_values, same_bits
from kernels import cpu, dispatch, reference
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


@pytest.mark.parametrize("fmt", [FixedPoint(8, 0, rounding="stochastic"),
                                 FixedPoint(8, 0, rounding="stochastic", overflow="wrap")], ids=lambda f: f.spec)
def test_stochastic_rounding_floors_the_float64_sum_with_the_uniform(fmt):
    """The code is floor(fl(y + u)), the reference's float64 add of the uniform, not the exact
    floor(y + u): with u_i the uniform of element i, w = 1 - u_i and scale * g = -2^-55 give
    y = 1 - u_i - 2^-55 exactly; for u_i in (0.75, 0.875] the sum y + u_i = 1 - 2^-55 rounds to 1
    in float64 (the float64 below 1 are 2^-53 apart), so the code is 1 where the exact floor is 0.
    Counters wrap mod 2^64 inside the call; serial and parallel kernels, both loops."""
    n = 3000
    seed, counter = 5, 2 ** 64 - 1000
    u = reference.uniform_counter(n, seed, counter)
    w = (1.0 - u).astype(np.float32)                     # exact: u is on the 2^-24 grid
    g = np.full(n, -(2.0 ** -25), np.float32)
    scale = 2.0 ** -30
    y = w.astype(np.float64) + scale * g.astype(np.float64)
    near = (u > 0.75) & (u <= 0.875)
    assert near.sum() > 200 and np.all(y[near] < 1.0 - u[near])   # exactly: floor(y + u) = 0 there
    want = reference.add_quantize(w, g, scale, fmt, seed=seed, counter=counter)
    assert np.all(want[near] == 1.0)
    P, mode, _ = dispatch._prep(fmt)
    key, c = dispatch._keys(seed, counter)
    for m in (cpu.F64_MODE[mode], cpu.GENERAL):
        for kern in (cpu.add_quantize_flat, cpu.add_quantize_flat_serial):
            got = w.copy()
            kern(got, g, np.float32(scale), P, m, key, c)
            assert same_bits(got, want), describe_diff(got, want)


@pytest.mark.parametrize("fmt", [f for f in FIXED_FORMATS if f.rounding == "stochastic"], ids=lambda f: f.spec)
def test_stochastic_fixed_range_ends_grid_points_and_ties(fmt):
    """Stored weights at and next to the range ends, on grid points, half an LSB off, plus NaN,
    inf and -0, moved by gradients of zero, +-half an LSB and +-one LSB; through the dispatch API
    (torch tensors, the short path) and the kernels in the format's loop."""
    edge = fixed_edge_values(fmt)
    lsb = np.float32(2.0 ** -fmt.frac)
    steps = np.array([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0 ** -20], np.float32) * lsb
    w = np.repeat(edge, steps.size)
    g = np.tile(steps, edge.size)
    want = reference.add_quantize(w, g, 1.0, fmt, seed=11, counter=2 ** 64 - 3)
    t = torch.from_numpy(w.copy())
    assert dispatch.add_quantize_(t, torch.from_numpy(g), 1.0, fmt, seed=11, counter=2 ** 64 - 3,
                                  backend="auto") is t
    assert same_bits(t.numpy(), want), describe_diff(t.numpy(), want)
    P, mode, _ = dispatch._prep(fmt)
    key, c = dispatch._keys(11, 2 ** 64 - 3)
    for kern in (cpu.add_quantize_flat, cpu.add_quantize_flat_serial):
        got = w.copy()
        kern(got, g, np.float32(1.0), P, cpu.F64_MODE[mode], key, c)
        assert same_bits(got, want), describe_diff(got, want)


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
