"""Property tests of the quantizers (hypothesis): grid and range, idempotence, sign symmetry,
monotonicity, unbiased stochastic rounding; and Numba == reference on random formats."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kcases import same_bits
from kernels import dispatch, reference
from lowbit_rbp.core.formats import FixedPoint, LogQuant

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALPHAS = st.sampled_from([2.0, 1.0, 0.5, 2.0 ** -6, 0.1, 3.0, 1e-3])
log_formats = st.builds(LogQuant, alpha=ALPHAS, bits=st.integers(1, 10),
                        underflow=st.sampled_from(["clip", "flush", "stochastic"]),
                        levels=st.sampled_from(["paper", "full"]))
det_log_formats = st.builds(LogQuant, alpha=ALPHAS, bits=st.integers(1, 10),
                            underflow=st.sampled_from(["clip", "flush"]), levels=st.sampled_from(["paper", "full"]))


@st.composite
def fixed_formats(draw, roundings=("nearest_even", "nearest_away", "truncate", "stochastic"),
                  overflows=("saturate", "wrap"), signed=(True, False)):
    word = draw(st.integers(2, 24))              # word <= 24: every code is exact in float32
    return FixedPoint(word, draw(st.integers(0, word)), draw(st.sampled_from(signed)),
                      draw(st.sampled_from(roundings)), draw(st.sampled_from(overflows)))


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
values = arrays(np.float32, st.integers(1, 40), elements=finite32)


def q(x, fmt, counter=0):
    return reference.quantize(np.asarray(x, np.float32), fmt, seed=5, counter=counter)


# --- grid and range -----------------------------------------------------------------------------

@SETTINGS
@given(log_formats, values, st.integers(0, 2 ** 40))
def test_log_output_on_grid_and_in_range(fmt, x, counter):
    y = q(x, fmt, counter)
    levels = set(np.float32(m) for m in fmt.magnitudes())
    assert all(v == 0 or abs(v) in levels for v in y)
    assert np.all(np.abs(y) <= np.float32(fmt.alpha))
    nz = y != 0
    assert np.all(np.sign(y[nz]) == np.sign(x[nz]))
    assert np.all(y[x == 0] == 0) and not np.any(np.signbit(y[y == 0]))   # zeros are +0
    if fmt.underflow == "clip" or fmt.bits == 1:
        assert np.all(nz == (x != 0))                    # no zero except for exact zeros


@SETTINGS
@given(fixed_formats(), values, st.integers(0, 2 ** 40))
def test_fixed_output_on_grid_and_in_range(fmt, x, counter):
    y = q(x, fmt, counter).astype(np.float64)
    k = y * 2.0 ** fmt.frac
    assert np.all(k == np.round(k))
    assert np.all((k >= fmt.int_min) & (k <= fmt.int_max))


# --- idempotence, symmetry, monotonicity --------------------------------------------------------

# Levels that are float32 subnormals (or 0) are stored with a large relative error, so their
# exponent can read back differently: idempotence holds for formats whose smallest level is normal.
normal_log_formats = det_log_formats.filter(lambda f: f.magnitudes()[0] >= 2.0 ** -126)


@SETTINGS
@given(st.one_of(normal_log_formats, fixed_formats()), values)
def test_idempotent(fmt, x):
    """Q(Q(x)) == Q(x); for stochastic fixed rounding too (grid values have nothing to round)."""
    y = q(x, fmt)
    assert same_bits(q(y, fmt, counter=999), y)


@SETTINGS
@given(det_log_formats, values)
def test_log_sign_symmetric(fmt, x):
    assert same_bits(q(-x, fmt), -q(x, fmt) + np.float32(0))


@SETTINGS
@given(fixed_formats(roundings=("nearest_even", "nearest_away"), overflows=("saturate",), signed=(True,)), values)
def test_fixed_sign_symmetric_up_to_twos_complement_asymmetry(fmt, x):
    """Signed saturating nearest rounding is symmetric, except that -int_min has no code: the
    negative end is one step further out, so Q(-x) = -Q(x) or the pair is (int_max, int_min)."""
    a, b = q(x, fmt).astype(np.float64), q(-x, fmt).astype(np.float64)
    lo, hi = fmt.int_min * fmt.scale, fmt.int_max * fmt.scale
    ok = (b == -a) | ((a == hi) & (b == lo)) | ((a == lo) & (b == hi))
    assert np.all(ok)


@SETTINGS
@given(fixed_formats(roundings=("truncate",), overflows=("saturate",), signed=(True,)), values)
def test_fixed_truncate_is_floor_not_symmetric(fmt, x):
    """Truncation drops bits of the two's-complement word: floor, so Q(x) <= x and
    Q(-x) is -Q(x) (on the grid) or -Q(x) - lsb (off the grid), inside the range."""
    a, b = q(x, fmt).astype(np.float64), q(-x, fmt).astype(np.float64)
    lo, hi = fmt.int_min * fmt.scale, fmt.int_max * fmt.scale
    xd = x.astype(np.float64)
    inside = (xd >= lo) & (xd <= hi) & (-xd >= lo) & (-xd <= hi)
    assert np.all(a[inside] <= xd[inside])
    assert np.all((b[inside] == -a[inside]) | (b[inside] == -a[inside] - fmt.scale))


@SETTINGS
@given(st.one_of(det_log_formats, fixed_formats(roundings=("nearest_even", "nearest_away", "truncate"),
                                                overflows=("saturate",))), values)
def test_monotone(fmt, x):
    xs = np.sort(x)
    y = q(xs, fmt)
    assert np.all(np.diff(y.astype(np.float64)) >= 0)


def test_unsigned_saturate_maps_negatives_to_zero():
    fmt = FixedPoint(6, 3, signed=False)
    assert np.all(q([-1.0, -0.01, -100.0], fmt) == 0)


# --- stochastic rounding is unbiased ------------------------------------------------------------

N_DRAWS = 20000


@settings(max_examples=40, deadline=None)
@given(fixed_formats(roundings=("stochastic",), overflows=("saturate",), signed=(True,)),
       st.floats(-0.999, 0.999), st.integers(0, 2 ** 40))
def test_fixed_stochastic_rounding_unbiased(fmt, frac_of_range, counter):
    x = np.float32(frac_of_range * (fmt.int_max - 1) * fmt.scale)   # inside the range
    y = q(np.full(N_DRAWS, x), fmt, counter).astype(np.float64)      # counters counter..counter+N-1
    lo = np.floor(np.float64(x) * 2.0 ** fmt.frac) * fmt.scale
    p = (np.float64(x) - lo) / fmt.scale
    assert set(np.unique(y)) <= {lo, lo + fmt.scale}
    se = fmt.scale * np.sqrt(p * (1 - p) / N_DRAWS) + fmt.scale * 2.0 ** -24
    assert abs(y.mean() - np.float64(x)) <= 5 * se


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([LogQuant(2.0, 4, "stochastic"), LogQuant(0.1, 3, "stochastic"),
                        LogQuant(2.0 ** -6, 5, "stochastic", "full")]),
       st.floats(0.01, 0.7), st.booleans(), st.integers(0, 2 ** 40))
def test_log_stochastic_underflow_unbiased(fmt, rel, negative, counter):
    """Below smallest / sqrt(2) (rounded in the log domain below the smallest level) the value
    becomes the smallest level with probability |x| / smallest, else 0: unbiased."""
    smallest = fmt.magnitudes()[0]
    x = np.float32(rel * smallest * (-1 if negative else 1))
    y = q(np.full(N_DRAWS, x), fmt, counter).astype(np.float64)
    s32 = np.float64(np.float32(smallest))
    assert set(np.unique(np.abs(y))) <= {0.0, s32}
    p = abs(np.float64(x)) / smallest
    se = s32 * np.sqrt(p * (1 - p) / N_DRAWS) + s32 * 2.0 ** -24
    assert abs(y.mean() - np.float64(x) * s32 / smallest) <= 5 * se


# --- Numba == reference on random formats and data ----------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.one_of(log_formats, fixed_formats()), values, st.integers(0, 2 ** 63), st.integers(0, 2 ** 63))
def test_numba_equals_reference_random(fmt, x, seed, counter):
    want = reference.quantize(x, fmt, seed=seed, counter=counter)
    assert same_bits(dispatch.quantize(x, fmt, seed=seed, counter=counter, backend="numba"), want)
