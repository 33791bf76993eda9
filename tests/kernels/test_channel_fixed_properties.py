"""Property tests (hypothesis) of the bit-true channel kernels against an independent model: the
accumulator as a circuit in exact rational arithmetic (Python Fractions and ints), one add at a
time. Also: Numba == reference on random formats and data, wrap == exact sum mod 2^word in any
order, the sparse product == the dense one with a {0, +-1} matrix."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kcases import describe_diff, same_bits
from kernels import dispatch, reference
from lowbit_rbp.core.formats import FixedPoint, LogQuant

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def accumulators(draw, overflows=("saturate", "wrap")):
    word = draw(st.integers(2, 32))
    return FixedPoint(word, draw(st.integers(0, word)), draw(st.booleans()), "nearest_even",
                      draw(st.sampled_from(overflows)))


grid_formats = st.one_of(
    st.builds(FixedPoint, word=st.integers(2, 12), frac=st.integers(0, 2), signed=st.just(True)),
    st.builds(LogQuant, alpha=st.sampled_from([1.0, 2.0, 0.5, 8.0]), bits=st.integers(1, 5),
              underflow=st.sampled_from(["clip", "flush"])))


@st.composite
def operands(draw, max_b=5, max_s=8, max_n=5, off_grid=True):
    """R (b, s) and B (s, n): float32 values on drawn grids, some left off the grid (then products
    can fall between the accumulator's codes and are rounded half to even)."""
    b, s, n = draw(st.integers(0, max_b)), draw(st.integers(0, max_s)), draw(st.integers(0, max_n))
    fr, fb = draw(grid_formats), draw(grid_formats)
    vals = st.floats(-40, 40, width=32)
    R = reference.quantize(draw(arrays(np.float32, (b, s), elements=vals)), fr)
    B = reference.quantize(draw(arrays(np.float32, (s, n), elements=vals)), fb)
    if off_grid and draw(st.booleans()) and R.size:
        R.flat[0] = draw(st.floats(-3, 3, width=32))
    return R, B


def _code_step(code: int, k: int, acc) -> int:
    if acc.overflow == "saturate":
        return min(max(code + k, acc.int_min), acc.int_max)
    return (code + k - acc.int_min) % 2 ** acc.word + acc.int_min


def circuit_product(R, B, acc, signs=None):
    """The definition, one add at a time in exact arithmetic: code = 0; for s ascending (R[b, s] != 0):
    code = overflow(code + round_half_even(R[b, s] * B[s, n] * 2^frac)); value = float32(code / 2^frac)."""
    nb, ns = R.shape
    out = np.zeros((nb, B.shape[1]), np.float32)
    for b in range(nb):
        for n in range(B.shape[1]):
            code = 0
            for s in range(ns):
                if R[b, s] == 0:
                    continue
                k = round(Fraction(float(R[b, s])) * Fraction(float(B[s, n])) * 2 ** acc.frac)  # half to even
                code = _code_step(code, k, acc)
            out[b, n] = np.float32(Fraction(code, 2 ** acc.frac))
    return out


@SETTINGS
@given(operands(), accumulators())
def test_fixed_product_is_the_circuit(ops, acc):
    R, B = ops
    want = circuit_product(R, B, acc)
    ref = reference.fixed_product(R, B, acc)
    assert same_bits(ref, want), describe_diff(ref, want)
    got = dispatch.fixed_product(R, B, acc, backend="numba")
    assert same_bits(got, want), describe_diff(got, want)


@SETTINGS
@given(operands(off_grid=False), accumulators(overflows=("wrap",)), st.randoms(use_true_random=False))
def test_wrap_result_is_order_free_and_the_exact_sum_mod_2_word(ops, acc, rnd):
    R, B = ops
    perm = list(range(R.shape[1]))
    rnd.shuffle(perm)
    got = dispatch.fixed_product(R, B, acc, backend="numba")
    permuted = dispatch.fixed_product(np.ascontiguousarray(R[:, perm]), np.ascontiguousarray(B[perm]), acc,
                                      backend="numba")
    assert same_bits(got, permuted)
    exact = [[sum(round(Fraction(float(R[b, s])) * Fraction(float(B[s, n])) * 2 ** acc.frac)
                  for s in range(R.shape[1])) for n in range(B.shape[1])] for b in range(R.shape[0])]
    wrapped = np.array([[np.float32(Fraction((k - acc.int_min) % 2 ** acc.word + acc.int_min, 2 ** acc.frac))
                         for k in row] for row in exact], np.float32).reshape(got.shape)
    assert same_bits(got, wrapped)


@SETTINGS
@given(operands(max_s=10, max_n=8), accumulators(overflows=("saturate",)))
def test_saturated_result_stays_in_range(ops, acc):
    """Inside the accumulator's range, as float32 represents its ends (for word > 24 the largest
    code rounds up: 2^25 - 1 becomes 2^25 in float32)."""
    R, B = ops
    got = dispatch.fixed_product(R, B, acc, backend="numba")
    assert np.all(got >= np.float32(acc.int_min * acc.scale)) and np.all(got <= np.float32(acc.int_max * acc.scale))


@st.composite
def sparse_operands(draw):
    R, _ = draw(operands(max_b=4, max_s=7, max_n=1))
    n = draw(st.integers(0, 6))
    pattern = draw(arrays(np.int8, (R.shape[1], n), elements=st.sampled_from([-1, 0, 0, 1])))
    return R, pattern.astype(np.float32), draw(st.booleans())


@SETTINGS
@given(sparse_operands(), accumulators())
def test_sparse_product_is_the_dense_circuit(ops, acc):
    R, M, ternary = ops
    if not ternary:
        M = np.abs(M)
    lists, signs = dispatch.ternary_to_index_lists(M) if ternary else (dispatch.binary_to_index_lists(M), None)
    want = circuit_product(R, M, acc)
    for backend in ("numpy", "numba"):
        got = dispatch.fixed_sparse_product(R, lists, acc, signs, backend=backend)
        assert same_bits(got, want), describe_diff(got, want)


@SETTINGS
@given(st.sampled_from(["tanh", "logistic"]), st.integers(2, 300),
       arrays(np.float32, st.integers(1, 50), elements=st.floats(-1.5, 1.5, width=32)))
def test_lut_picks_the_bin_containing_o(activation, entries, o):
    """The bin i returned satisfies lo + i w <= o < lo + (i+1) w in exact arithmetic (o inside the
    table), i.e. the float64 index computation never lands in a neighbouring bin."""
    t = dispatch.fprime_table(activation, entries)
    idx = reference.fprime_index(o, t)
    lo, width = Fraction(t.lo), Fraction(t.hi - t.lo) / entries
    for v, i in zip(o.tolist(), idx.tolist()):
        x = Fraction(v)
        if Fraction(t.lo) <= x < Fraction(t.hi):
            assert lo + i * width <= x < lo + (i + 1) * width, (v, i)
    assert same_bits(dispatch.fprime_lut(o, t, backend="numba"), t.values[idx])


@SETTINGS
@given(arrays(np.float32, st.integers(1, 60), elements=st.floats(-4, 4, width=32)),
       arrays(np.float32, st.integers(1, 60), elements=st.floats(0, 1, width=32)),
       accumulators(), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1))
def test_scale_round_numba_equals_reference(J, fp, fmt, seed, counter):
    n = min(J.size, fp.size)
    J, fp = J[:n], fp[:n]
    fmt = FixedPoint(fmt.word, fmt.frac, fmt.signed, "stochastic", fmt.overflow)
    want = reference.fixed_scale_round(J, fp, fmt, seed=seed, counter=counter)
    assert same_bits(dispatch.fixed_scale_round(J, fp, fmt, seed=seed, counter=counter, backend="numba"), want)
