"""Bit-true learning-channel kernels: fixed-point accumulator products, the f' lookup table and the
fused scale-and-round. Numba == reference bit for bit, hand-computed cases, saturation and
wrap-around that actually happen, the per-add order, and the accumulator width check."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kcases import awkward_values, describe_diff, fixed_edge_values, same_bits
from kernels import cpu, dispatch, reference
from lowbit_rbp.core.formats import FixedPoint, Float32, LogQuant

ACCS = [FixedPoint(12, 6), FixedPoint(12, 6, overflow="wrap"), FixedPoint(8, 4, signed=False),
        FixedPoint(32, 10), FixedPoint(24, 12, overflow="wrap"), FixedPoint(4, 2),
        FixedPoint(6, 3, rounding="stochastic", overflow="wrap")]    # the rounding field is not used
SHAPES = [(0, 3, 4), (1, 1, 1), (7, 13, 5), (4, 0, 3), (3, 100, 10), (5, 3, 0), (100, 10, 100)]


def check(a, b):
    assert same_bits(np.asarray(a), np.asarray(b)), describe_diff(a, b)


def _ids(xs):
    return [getattr(x, "spec", str(x)) for x in xs]


def grid_operands(rng, B, S, N, awkward=False):
    """R on a 3-bit log grid (alpha 2) and B on fixed:w=6,f=4; optionally with awkward values
    (NaN, inf, -0, huge, off-grid) mixed in."""
    R = reference.quantize(rng.normal(0, 0.8, (B, S)).astype(np.float32), LogQuant(2, 3))
    C = reference.quantize(rng.normal(0, 0.8, (S, N)).astype(np.float32), FixedPoint(6, 4))
    if awkward and R.size and C.size:
        R.flat[::7] = awkward_values(R.size, rng)[::7]
        C.flat[::5] = awkward_values(C.size, rng)[::5]
    return R, C


# --- fixed_product: Numba == reference ----------------------------------------------------------

@pytest.mark.parametrize("acc", ACCS, ids=_ids(ACCS))
@pytest.mark.parametrize("awkward", [False, True], ids=["grid", "awkward"])
def test_fixed_product_numba_equals_reference(acc, awkward):
    for B, S, N in SHAPES:
        rng = np.random.default_rng(B * 1000 + S * 10 + N)
        R, C = grid_operands(rng, B, S, N, awkward)
        want = reference.fixed_product(R, C, acc)
        got = dispatch.fixed_product(R, C, acc, backend="numba")
        assert same_bits(got, want), f"shape {(B, S, N)}: {describe_diff(got, want)}"
        assert same_bits(dispatch.fixed_product(R, C, acc, backend="numpy"), want)


def test_fixed_product_parallel_kernel_equals_serial():
    """Above SERIAL_MAX_PRODUCT (with more than one Numba thread) the dispatcher takes the prange
    kernel: same bits. The kernel is also called directly, whatever the thread count."""
    from kernels import cpu
    rng = np.random.default_rng(3)
    R, C = grid_operands(rng, 300, 40, 30)
    assert R.shape[0] * R.shape[1] * C.shape[1] >= dispatch.SERIAL_MAX_PRODUCT
    for acc in (FixedPoint(10, 4), FixedPoint(10, 4, overflow="wrap")):
        want = reference.fixed_product(R, C, acc)
        check(dispatch.fixed_product(R, C, acc, backend="numba"), want)
        out = np.empty_like(want)
        cpu.fixed_product(R, C, cpu.format_params(acc), out)
        check(out, want)


def test_fixed_product_torch_in_out_and_strided_inputs():
    rng = np.random.default_rng(4)
    R, C = grid_operands(rng, 9, 6, 11)
    acc = FixedPoint(12, 6)
    want = reference.fixed_product(R, C, acc)
    Rt, Ct = torch.from_numpy(R), torch.from_numpy(C)
    res = dispatch.fixed_product(Rt, Ct, acc, backend="numba")
    assert isinstance(res, torch.Tensor)
    check(res.numpy(), want)
    out = torch.full((9, 11), 7.0)
    assert dispatch.fixed_product(Rt, Ct, acc, out=out, backend="auto") is out
    check(out.numpy(), want)
    strided = torch.from_numpy(np.ascontiguousarray(C.T)).T       # non-contiguous: general path
    check(dispatch.fixed_product(Rt, strided, acc, backend="numba").numpy(), want)
    out_nc = torch.zeros(11, 9).T
    dispatch.fixed_product(Rt, Ct, acc, out=out_nc, backend="numba")
    check(out_nc.contiguous().numpy(), want)
    check(dispatch.fixed_product(R.astype(np.float64), C, acc, backend="numba"), want)   # converted input


# --- fixed_product: hand-computed cases ----------------------------------------------------------

def test_fixed_product_hand_computed():
    """acc fixed:w=6,f=2 holds [-8, 7.75] in steps of 0.25.
    J[0,0] = 0.5*1 + (-0.25)*2 + 1*(-1) = -1.
    J[0,1] = 0.5*2 + (-0.25)*0.5 + 1*0.75: the middle product -0.125 is half an LSB: its code
    -0.5 rounds half to even to 0, so 1 + 0 + 0.75 = 1.75 (the exact sum would be 1.625).
    J[1,0] = 4*1 + 3*2 + ... saturates: 4 -> 7.75 (4 + 6 = 10 > 7.75) -> 7.75 - 1 = 6.75."""
    R = np.array([[0.5, -0.25, 1.0], [4.0, 3.0, 1.0]], np.float32)
    B = np.array([[1.0, 2.0], [2.0, 0.5], [-1.0, 0.75]], np.float32)
    want = np.array([[-1.0, 1.75], [6.75, 7.75]], np.float32)    # J[1,1] = 8 -> 7.75 -> 7.75 + 0.75 -> 7.75
    for backend in ("numpy", "numba"):
        check(dispatch.fixed_product(R, B, FixedPoint(6, 2), backend=backend), want)


def test_saturating_at_every_add_differs_from_saturating_at_the_end():
    """+max, +1, -1 in a 4-bit integer accumulator: 7 -> 7 (saturated) -> 6; saturating only the
    final sum would give 7. Reversed (-1, +1, +max) nothing saturates: 7. The order is observable."""
    A = FixedPoint(4, 0)
    R = np.array([[7.0, 1.0, -1.0]], np.float32)
    B = np.ones((3, 1), np.float32)
    for backend in ("numpy", "numba"):
        assert float(dispatch.fixed_product(R, B, A, backend=backend)[0, 0]) == 6.0
        assert float(dispatch.fixed_product(R[:, ::-1].copy(), B, A, backend=backend)[0, 0]) == 7.0
    assert float(np.clip(R.sum(), A.int_min, A.int_max)) == 7.0              # saturate once at the end


def test_saturation_both_ends_and_negative_start():
    A = FixedPoint(5, 1)                                   # [-8, 7.5]
    R = np.array([[-6.0, -6.0, 3.0, 20.0, -2.5]], np.float32)
    B = np.ones((5, 1), np.float32)
    # -6 -> -8 (saturated low) -> -5 -> 7.5 (saturated high) -> 5
    for backend in ("numpy", "numba"):
        assert float(dispatch.fixed_product(R, B, A, backend=backend)[0, 0]) == 5.0


def test_wrap_is_the_exact_sum_modulo_2_word_in_any_order():
    """Wrap-around is arithmetic modulo 2^word, so its result is the exact sum wrapped, whatever
    the order (saturation is what makes the order observable)."""
    A = FixedPoint(4, 0, overflow="wrap")                  # [-8, 7]
    R = np.array([[7.0, 1.0, -1.0, 5.0, 6.0]], np.float32)
    B = np.ones((5, 1), np.float32)
    exact = 18                                             # 18 mod 16 = 2
    for backend in ("numpy", "numba"):
        assert float(dispatch.fixed_product(R, B, A, backend=backend)[0, 0]) == 2.0
        assert float(dispatch.fixed_product(R[:, ::-1].copy(), B, A, backend=backend)[0, 0]) == 2.0
    assert ((exact + 8) % 16) - 8 == 2
    U = FixedPoint(3, 0, signed=False, overflow="wrap")  # [0, 7]: -1 wraps to 7
    for backend in ("numpy", "numba"):
        assert float(dispatch.fixed_product(np.array([[-1.0]], np.float32), np.ones((1, 1), np.float32), U,
                                            backend=backend)[0, 0]) == 7.0


def test_wrap_of_a_product_far_beyond_2_53_lsbs_is_exact():
    """A product of k = 2^70 + 2^47 LSBs wraps exactly to 0 (k is a multiple of 2^16), then + 3.
    Reducing k - int_min = k + 2^15 instead would round it to k in float64 (ulp 2^18) and end at
    int_min + 3."""
    A = FixedPoint(16, 0, overflow="wrap")
    R = np.array([[2.0 ** 40, 3.0]], np.float32)
    B = np.array([[2.0 ** 30 + 2.0 ** 7], [1.0]], np.float32)
    for backend in ("numpy", "numba"):
        assert float(dispatch.fixed_product(R, B, A, backend=backend)[0, 0]) == 3.0


def test_zero_senders_are_skipped_and_nan_propagates():
    A = FixedPoint(8, 2)
    R = np.array([[0.0, 1.0], [-0.0, np.nan], [np.inf, 1.0]], np.float32)
    B = np.array([[np.inf], [2.0]], np.float32)
    for backend in ("numpy", "numba"):
        J = dispatch.fixed_product(R, B, A, backend=backend)
        assert float(J[0, 0]) == 2.0                       # 0 * inf is skipped, not NaN
        assert np.isnan(J[1, 0])
        assert float(J[2, 0]) == A.int_max * A.scale       # inf saturates, then stays at max after + 2


def test_output_above_24_bits_is_rounded_to_float32():
    """word > 24: the code is exact, its float32 value is rounded to 24 significant bits."""
    A = FixedPoint(32, 0)
    R = np.array([[2.0 ** 24, 1.0, 2.0]], np.float32)
    B = np.ones((3, 1), np.float32)
    for backend in ("numpy", "numba"):
        J = dispatch.fixed_product(R[:, :2], B[:2], A, backend=backend)     # code 2^24 + 1
        assert float(J[0, 0]) == 2.0 ** 24                                  # ties to even: down
        J = dispatch.fixed_product(R, B, A, backend=backend)                # code 2^24 + 3
        assert float(J[0, 0]) == 2.0 ** 24 + 4                              # ties to even: up
        J = dispatch.fixed_product(R[:, [0, 2]].copy(), B[:2], A, backend=backend)   # 2^24 + 2: exact
        assert float(J[0, 0]) == 2.0 ** 24 + 2


def test_off_grid_products_round_half_to_even():
    A = FixedPoint(8, 0)
    R = np.array([[0.5], [1.5], [2.5], [-0.5], [-1.5], [0.75]], np.float32)
    B = np.ones((1, 1), np.float32)
    want = np.array([[0.0], [2.0], [2.0], [0.0], [-2.0], [1.0]], np.float32)
    for backend in ("numpy", "numba"):
        check(dispatch.fixed_product(R, B, A, backend=backend), want)


# --- fixed_sparse_product -----------------------------------------------------------------------

def _random_lists(rng, S, N, p=0.3, empty_receiver=True):
    M = (rng.random((S, N)) < p).astype(np.float32)
    if empty_receiver and N > 1:
        M[:, 1] = 0
    return M


@pytest.mark.parametrize("acc", ACCS, ids=_ids(ACCS))
@pytest.mark.parametrize("signed", [False, True], ids=["binary", "ternary"])
def test_fixed_sparse_numba_equals_reference_and_dense_product(acc, signed):
    for B, S, N in SHAPES:
        rng = np.random.default_rng(B + 17 * S + N)
        R, _ = grid_operands(rng, B, S, N)
        M = _random_lists(rng, S, N)
        if signed:
            M *= np.where(rng.random((S, N)) < 0.5, -1, 1).astype(np.float32)
            lists, signs = dispatch.ternary_to_index_lists(M)
        else:
            lists, signs = dispatch.binary_to_index_lists(M), None
        want = reference.fixed_sparse_product(R, lists, acc, signs)
        got = dispatch.fixed_sparse_product(R, lists, acc, signs, backend="numba")
        assert same_bits(got, want), f"shape {(B, S, N)}: {describe_diff(got, want)}"
        # the same circuit as the dense product with the {0, +-1} matrix (finite R)
        check(want, reference.fixed_product(R, M, acc))


def test_fixed_sparse_awkward_values_scale_and_parallel_kernel():
    rng = np.random.default_rng(9)
    R = awkward_values(1000 * 30, rng).reshape(1000, 30)
    M = _random_lists(rng, 30, 40, p=0.5) * np.float32(0.25)
    lists = dispatch.binary_to_index_lists(M)
    assert R.shape[0] * (lists.indices.size + lists.indptr.size) >= dispatch.SERIAL_MAX_PRODUCT
    from kernels import cpu
    for acc in (FixedPoint(12, 4), FixedPoint(12, 4, overflow="wrap")):
        want = reference.fixed_sparse_product(R, lists, acc)
        check(dispatch.fixed_sparse_product(R, lists, acc, backend="numba"), want)
        out = np.empty_like(want)                          # the prange kernel, whatever the thread count
        PA = cpu.format_params(acc)
        plan = cpu.sparse_plan(lists.indptr, lists.indices, R.shape[1])
        cpu.sparse_product(R, plan, cpu.sparse_params(PA, PA[8] * lists.scale), out)
        check(out, want)
        for scale in (1.0, -0.75, 1 / 3):                  # an explicit scale, with a bare tuple too
            want = reference.fixed_sparse_product(R, lists, acc, scale=scale)
            check(dispatch.fixed_sparse_product(R, (lists.indptr, lists.indices), acc, scale=scale,
                                                backend="numba"), want)


def test_fixed_sparse_hand_computed_with_signs_and_empty_receiver():
    """Receivers: 0 <- senders 0 (+), 2 (-); 1 <- nobody; 2 <- 2 (+), in a 4-bit integer
    accumulator. Row [7, 1, -1]: r0 = 7 - (-1) = 8 -> 7 (saturated); r1 = 0; r2 = -1.
    Row [-8, 0, 1]: r0 = -8 - 1 = -9 -> -8; wrapped instead: -9 + 16 = 7."""
    M = np.array([[1, 0, 0], [0, 0, 0], [-1, 0, 1]], np.float32)
    lists, signs = dispatch.ternary_to_index_lists(M)
    assert lists.indptr.tolist() == [0, 2, 2, 3] and lists.indices.tolist() == [0, 2, 2]
    assert signs.tolist() == [1, -1, 1]
    R = np.array([[7.0, 1.0, -1.0], [-8.0, 0.0, 1.0]], np.float32)
    for backend in ("numpy", "numba"):
        J = dispatch.fixed_sparse_product(R, lists, FixedPoint(4, 0), signs, backend=backend)
        check(J, np.array([[7.0, 0.0, -1.0], [-8.0, 0.0, 1.0]], np.float32))
        J = dispatch.fixed_sparse_product(R, lists, FixedPoint(4, 0, overflow="wrap"), signs, backend=backend)
        check(J, np.array([[-8.0, 0.0, -1.0], [7.0, 0.0, 1.0]], np.float32))   # 8 wraps to -8


def test_fixed_sparse_order_is_ascending_sender():
    """Receiver 0 adds senders 0, 1, 2 in that order: 7, +1 (saturates at 7), -1 -> 6."""
    M = np.ones((3, 1), np.float32)
    lists = dispatch.binary_to_index_lists(M)
    R = np.array([[7.0, 1.0, -1.0]], np.float32)
    for backend in ("numpy", "numba"):
        assert float(dispatch.fixed_sparse_product(R, lists, FixedPoint(4, 0), backend=backend)[0, 0]) == 6.0


def test_all_zero_lists_and_torch_out():
    lists = dispatch.binary_to_index_lists(np.zeros((3, 4), np.float32))
    R = torch.ones(2, 3)
    out = torch.full((2, 4), 5.0)
    assert dispatch.fixed_sparse_product(R, lists, FixedPoint(8, 2), out=out, backend="auto") is out
    check(out.numpy(), np.zeros((2, 4), np.float32))


def test_float_sparse_product_rewritten_kernels_equal_reference():
    """``sparse_feedback_product``'s Numba kernels (the fixed product's, with float parameters):
    serial twin and prange version (called directly), awkward values, an empty receiver, a
    negative scale."""
    from kernels import cpu
    rng = np.random.default_rng(13)
    R = awkward_values(700 * 30, rng).reshape(700, 30)
    M = _random_lists(rng, 30, 50, p=0.4) * np.float32(-0.75)
    lists = dispatch.binary_to_index_lists(M)
    want = reference.sparse_feedback_product(R, lists)
    plan = cpu.sparse_plan(lists.indptr, lists.indices, R.shape[1])
    for kern in (cpu.sparse_product, cpu.sparse_product_serial):
        out = np.empty_like(want)
        kern(R, plan, cpu.sparse_params(cpu.format_params(None), lists.scale), out)
        check(out, want)
    check(dispatch.sparse_feedback_product(R, lists, backend="numba"), want)


def test_float_sparse_product_fast_path_keeps_negative_zero_of_the_reference():
    """The float product (rewritten on the same loops) still returns -0.0 where the reference
    does: an empty or all-zero receiver times a negative scale."""
    M = np.array([[1, 0], [0, 0]], np.float32) * np.float32(-2)
    lists = dispatch.binary_to_index_lists(M)
    R = np.array([[0.0, 3.0], [-0.0, 1.0]], np.float32)
    want = reference.sparse_feedback_product(R, lists)
    assert np.signbit(want[:, 1]).all()
    check(dispatch.sparse_feedback_product(R, lists, backend="numba"), want)
    check(dispatch.sparse_feedback_product(torch.from_numpy(R), lists, backend="numba").numpy(), want)


# --- accumulator width check ------------------------------------------------------------------

@pytest.mark.parametrize("r_fmt,b_fmt,acc", [
    (FixedPoint(8, 6), FixedPoint(8, 6), FixedPoint(16, 12)),      # full product: w_R + w_B bits
    (LogQuant(2, 3), FixedPoint(6, 4), FixedPoint(12, 6)),         # log levels 0.5..2: 1 fraction bit
    (LogQuant(2, 3), dispatch.TERNARY, FixedPoint(6, 1)),
    (FixedPoint(4, 2, signed=False), dispatch.BINARY, FixedPoint(4, 2, signed=False)),
    (LogQuant(2.0 ** -6, 5, "clip"), LogQuant(1, 2, "flush"), FixedPoint(16, 11)),
])
def test_accumulator_holds(r_fmt, b_fmt, acc):
    dispatch.check_accumulator_holds(r_fmt, b_fmt, acc)


@pytest.mark.parametrize("r_fmt,b_fmt,acc,words", [
    (FixedPoint(8, 6), FixedPoint(8, 6), FixedPoint(16, 11), ["multiples of 2^-12", "LSB is 2^-11", "frac >= 12"]),
    (FixedPoint(8, 6), FixedPoint(8, 6), FixedPoint(15, 12), ["span [-3.96", "4]", "fixed:w=16,f=12"]),
    (LogQuant(0.1, 3), FixedPoint(8, 6), FixedPoint(32, 12), ["multiples of 2^-35", "word=", "1..32"]),
    (LogQuant(2, 3), dispatch.TERNARY, FixedPoint(8, 1, signed=False), ["span [-2, 2]", "fixed:w=4,f=1"]),
    (FixedPoint(4, 2), dispatch.BINARY, FixedPoint(3, 2), ["span [-2, 1.75]", "fixed:w=4,f=2"]),
])
def test_accumulator_narrower_than_the_product_is_a_clear_error(r_fmt, b_fmt, acc, words):
    with pytest.raises(ValueError) as e:
        dispatch.check_accumulator_holds(r_fmt, b_fmt, acc)
    msg = str(e.value)
    assert "narrower than the product" in msg and acc.spec in msg and r_fmt.spec in msg
    assert (b_fmt if isinstance(b_fmt, str) else b_fmt.spec) in msg
    assert "allowed:" in msg and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("bad,what", [
    (Float32(), "R format 'float32' has no fixed grid"), ("binary", "R format 'binary' has no fixed grid"),
    (LogQuant(2.0 ** 200, 3), "levels beyond float32's range")])
def test_accumulator_check_rejects_formats_without_a_grid(bad, what):
    with pytest.raises(ValueError, match=what):
        dispatch.check_accumulator_holds(bad, FixedPoint(8, 4), FixedPoint(16, 8))
    with pytest.raises(ValueError, match="accumulator.*FixedPoint"):
        dispatch.check_accumulator_holds(FixedPoint(8, 4), FixedPoint(8, 4), LogQuant(2, 3))


def test_held_products_are_summed_exactly_until_saturation():
    """With the check passed and a wide accumulator, fixed_product is the exact product of the
    grid values (no rounding anywhere), as the float64 matmul of the same values shows."""
    rng = np.random.default_rng(12)
    r_fmt, b_fmt, acc = LogQuant(2, 4, "clip"), FixedPoint(6, 4), FixedPoint(24, 7)
    dispatch.check_accumulator_holds(r_fmt, b_fmt, acc)
    R = reference.quantize(rng.normal(0, 1, (20, 30)).astype(np.float32), r_fmt)
    C = reference.quantize(rng.normal(0, 1, (30, 15)).astype(np.float32), b_fmt)
    exact = R.astype(np.float64) @ C.astype(np.float64)
    assert np.abs(exact).max() < acc.int_max * acc.scale / 2       # no partial sum can saturate here
    check(dispatch.fixed_product(R, C, acc, backend="numba"), exact.astype(np.float32))


# --- f' lookup table ----------------------------------------------------------------------------

def test_fprime_table_entries_are_quantized_bin_centres():
    t = dispatch.fprime_table("tanh", 8, FixedPoint(8, 7))
    centres = -1 + (np.arange(8) + 0.5) / 4
    np.testing.assert_array_equal(t.values, reference.quantize(1 - centres ** 2, FixedPoint(8, 7)))
    assert t.values.dtype == np.float32 and (t.lo, t.hi) == (-1.0, 1.0) and t.fmt_spec == "fixed:w=8,f=7"
    # bin 7 covers [0.75, 1]: centre 0.875, f' = 0.234375 exactly on the 2^-7 grid
    assert float(t.values[7]) == 1 - 0.875 ** 2
    lg = dispatch.fprime_table("logistic", 4)
    np.testing.assert_array_equal(lg.values, np.float32([0.109375, 0.234375, 0.234375, 0.109375]))


def test_fprime_lut_indexing_hand_computed():
    """8 bins of width 1/4 over [-1, 1]: o = -1 -> bin 0; -0.75 (a bin edge) -> bin 1; 0 -> bin 4;
    0.9999 -> bin 7; 1 and 5 -> bin 7 (clamped); -3 -> bin 0; NaN -> NaN."""
    t = dispatch.fprime_table("tanh", 8)
    o = np.array([-1.0, -0.75, -0.7500001, 0.0, 0.9999, 1.0, 5.0, -3.0, np.nan, -np.inf, np.inf], np.float32)
    idx = reference.fprime_index(o, t)
    assert idx.tolist() == [0, 1, 0, 4, 7, 7, 7, 0, -1, 0, 7]
    for backend in ("numpy", "numba"):
        got = dispatch.fprime_lut(o, t, backend=backend)
        check(got[:8], t.values[idx[:8]])
        assert np.isnan(got[8]) and got[9] == t.values[0] and got[10] == t.values[7]


def test_fprime_lut_tiny_outputs_find_their_exact_bin():
    """-2^-60 lies in the lower middle bin of a tanh table: (o + 1) * k / 2 rounded in float64
    would be k / 2 exactly (the upper bin); the index is computed exactly instead."""
    for entries in (2, 3, 8, 1000):
        t = dispatch.fprime_table("tanh", entries, FixedPoint(8, 7))
        o = np.array([-2.0 ** -60, 2.0 ** -60, -1e-45, 1e-45, -1 + 2.0 ** -30], np.float32)
        want = [(entries - 1) // 2, entries // 2, (entries - 1) // 2, entries // 2, 0]
        assert reference.fprime_index(o, t).tolist() == want
        for backend in ("numpy", "numba"):
            check(dispatch.fprime_lut(o, t, backend=backend), t.values[want])


@pytest.mark.parametrize("entries", [2, 3, 16, 255, 4096])
@pytest.mark.parametrize("fmt", [None, FixedPoint(8, 7), LogQuant(1, 3, "clip"),
                                 FixedPoint(10, 9, rounding="stochastic")],
                         ids=lambda f: getattr(f, "spec", "float32"))
def test_fprime_lut_numba_equals_reference(entries, fmt):
    rng = np.random.default_rng(entries)
    t = dispatch.fprime_table("tanh", entries, fmt)
    for shape in [(0,), (1, 1), (100, 100), (3, 5, 7), (300, 200)]:       # 60000: the parallel kernel
        o = np.tanh(rng.normal(0, 1.5, shape)).astype(np.float32)
        if o.size > 10:
            o.flat[:10] = awkward_values(10, rng)
        want = reference.fprime_lut(o, t)
        check(dispatch.fprime_lut(o, t, backend="numba"), want)
        check(dispatch.fprime_lut(torch.from_numpy(o), t, backend="auto").numpy(), want)


def test_fprime_table_symmetric_for_power_of_two_entries():
    t = dispatch.fprime_table("tanh", 16, LogQuant(1, 4, "clip"))
    check(t.values, t.values[::-1].copy())
    o = np.linspace(-1, 1, 1001).astype(np.float32)
    o = o[np.abs(o * 8 - np.round(o * 8)) > 1e-3]           # away from bin edges (the right edge is closed)
    check(dispatch.fprime_lut(o, t, backend="numba"), dispatch.fprime_lut(-o, t, backend="numba"))


@pytest.mark.parametrize("entries", [0, 1, -3, 2.5, True, 1 << 17])
def test_fprime_table_bad_entries(entries):
    with pytest.raises(ValueError) as e:
        dispatch.fprime_table("tanh", entries)
    assert f"entries={entries!r}" in str(e.value) and "2..65536" in str(e.value)


def test_fprime_table_bad_activation_and_empty_table():
    with pytest.raises(ValueError, match="'relu'.*allowed: tanh, logistic"):
        dispatch.fprime_table("relu", 8)
    empty = reference.FprimeTable(np.zeros(0, np.float32), -1.0, 1.0, "tanh", "float32")
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match=r"shape \(0,\).*2\.\.65536 entries"):
            dispatch.fprime_lut(np.zeros(3, np.float32), empty, backend=backend)
    for lo, hi in [(1.0, 1.0), (-1.0, 2.0), (0.0, 0.5), (-np.inf, 1.0)]:
        bad = reference.FprimeTable(np.ones(4, np.float32), lo, hi, "tanh", "float32")
        with pytest.raises(ValueError, match=r"interval .*allowed: integers lo < hi with hi - lo a power of two"):
            dispatch.fprime_lut(np.zeros(3, np.float32), bad, backend="numba")


# --- fixed_scale_round --------------------------------------------------------------------------

SCALE_FORMATS = [FixedPoint(8, 4), FixedPoint(8, 4, rounding="stochastic"), FixedPoint(6, 3, overflow="wrap"),
                 FixedPoint(4, 3, rounding="stochastic"), FixedPoint(6, 3, rounding="stochastic", overflow="wrap"),
                 FixedPoint(10, 6, rounding="truncate", signed=False), LogQuant(2, 3), LogQuant(2, 3, "clip"),
                 LogQuant(0.1, 5, "flush"), LogQuant(2, 10), LogQuant(2.0 ** 1000, 12, "flush", "full"),
                 Float32(), None]


@pytest.mark.parametrize("fmt", SCALE_FORMATS, ids=_ids(SCALE_FORMATS))
def test_fixed_scale_round_numba_equals_reference(fmt):
    rng = np.random.default_rng(21)
    for shape in [(0, 3), (1,), (100, 100), (4, 5, 6), (200, 200)]:       # 40000: the parallel kernel
        n = int(np.prod(shape))
        J = awkward_values(n, rng, scale=2.0).reshape(shape)
        fp = dispatch.fprime_lut(np.tanh(rng.normal(0, 1, shape)).astype(np.float32),
                                 dispatch.fprime_table("tanh", 16, FixedPoint(8, 7)))
        want = reference.fixed_scale_round(J, fp, fmt, seed=5, counter=2 ** 64 - 7)
        check(dispatch.fixed_scale_round(J, fp, fmt, seed=5, counter=2 ** 64 - 7, backend="numba"), want)


def test_fixed_scale_round_is_one_rounding_of_the_exact_product():
    """(1 + 2^-20)^2 = 1 + 2^-19 + 2^-40, just above the midpoint of 1 and 1 + 2^-18: on the 2^-18
    grid it rounds up. Rounding the product to float32 first (1 + 2^-19, a tie) would give 1."""
    x = np.float32(1 + 2.0 ** -20)
    J, fp = np.array([x, 0.3], np.float32), np.array([x, 0.5], np.float32)
    fmt = FixedPoint(32, 18)
    float32_first = reference.quantize(J * fp, fmt)                  # the double rounding avoided
    assert float(float32_first[0]) == 1.0
    for backend in ("numpy", "numba"):
        got = dispatch.fixed_scale_round(J, fp, fmt, backend=backend)
        assert float(got[0]) == 1 + 2.0 ** -18
        assert float(got[1]) == round(float(np.float32(0.3)) * 0.5 * 2 ** 18) / 2 ** 18


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")     # inf * 0 in the reference
@pytest.mark.parametrize("fmt", [FixedPoint(4, 3, rounding="stochastic"), FixedPoint(8, 4, signed=False, rounding="stochastic"),
                                 FixedPoint(6, 3, rounding="stochastic", overflow="wrap")], ids=lambda f: f.spec)
def test_fixed_scale_round_stochastic_at_range_ends_grid_points_and_ties(fmt):
    """The signal's stochastic rounding (the bit-true channel's FIXED_SR loops) on J at and next to
    the range ends, on grid points and half an LSB off, NaN, inf and -0, times f' values that keep
    them (1, 1 - 2^-24) or move them (0.5, -1, +-0); in place on torch tensors (the channel's call)
    and into a NumPy out, with counters that wrap mod 2^64 inside the call, serial and parallel."""
    edge = fixed_edge_values(fmt)
    fps = np.array([1.0, 1.0 - 2.0 ** -24, 0.5, -1.0, 0.0, -0.0], np.float32)
    J = np.repeat(edge, fps.size)
    fp = np.tile(fps, edge.size)
    want = reference.fixed_scale_round(J, fp, fmt, seed=3, counter=2 ** 64 - 50)
    Jt = torch.from_numpy(J.copy())
    assert dispatch.fixed_scale_round(Jt, torch.from_numpy(fp), fmt, seed=3, counter=2 ** 64 - 50, out=Jt,
                                      backend="auto") is Jt
    check(Jt.numpy(), want)
    P, mode, _ = dispatch._prep(fmt)
    key, c = dispatch._keys(3, 2 ** 64 - 50)
    for kern in (cpu.fixed_scale_round, cpu.fixed_scale_round_serial):
        out = np.full(J.size, np.nan, np.float32)
        kern(J, fp, P, cpu.F64_MODE[mode], key, c, out)
        check(out, want)


def test_fixed_scale_round_counters_and_in_place():
    rng = np.random.default_rng(2)
    J = rng.normal(0, 0.5, (10, 7)).astype(np.float32)
    fp = rng.random((10, 7)).astype(np.float32)
    fmt = FixedPoint(8, 6, rounding="stochastic")
    want = reference.quantize_f64(J.astype(np.float64) * fp, fmt, seed=9, counter=40)
    check(dispatch.fixed_scale_round(J, fp, fmt, seed=9, counter=40, backend="numba"), want)
    # element i uses counter + i: the second half alone, started at counter + 35, matches
    half = dispatch.fixed_scale_round(J[5:], fp[5:], fmt, seed=9, counter=75, backend="numba")
    check(half, want[5:])
    Jt = torch.from_numpy(J.copy())
    assert dispatch.fixed_scale_round(Jt, torch.from_numpy(fp), fmt, seed=9, counter=40, out=Jt, backend="auto") is Jt
    check(Jt.numpy(), want)


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_product_errors_name_values_and_allowed(backend):
    R, C = np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError) as e:
        dispatch.fixed_product(R, C, FixedPoint(8, 4), backend=backend)
    assert "fixed_product" in str(e.value) and "(2, 3)" in str(e.value) and "(4, 5)" in str(e.value)
    with pytest.raises(ValueError, match="fixed_product accumulator.*allowed: a FixedPoint"):
        dispatch.fixed_product(R, C[:3], LogQuant(2, 3), backend=backend)
    with pytest.raises(ValueError, match="fixed_product accumulator.*allowed: a FixedPoint"):
        dispatch.fixed_product(R, C[:3], Float32(), backend=backend)
    with pytest.raises(ValueError, match=r"out has shape \(5, 2\); .*need \(2, 5\)"):
        dispatch.fixed_product(R, C[:3], FixedPoint(8, 4), out=np.zeros((5, 2), np.float32), backend=backend)
    with pytest.raises(ValueError, match="out has dtype float64; allowed: float32"):
        dispatch.fixed_product(R, C[:3], FixedPoint(8, 4), out=np.zeros((2, 5)), backend=backend)


class _DuckFixed:
    """A format-like object that the FixedPoint constructor would have refused (frac > word)."""
    kind, word, frac, signed, rounding, overflow = "fixed", 4, 6, True, "nearest_even", "saturate"
    int_min, int_max = -8, 7


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_accumulator_frac_above_word_is_refused(backend):
    with pytest.raises(ValueError, match="frac=6 with word=4; allowed: 0 <= frac <= word"):
        dispatch.fixed_product(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), _DuckFixed(),
                               backend=backend)
    lists = dispatch.binary_to_index_lists(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="frac=6 with word=4"):
        dispatch.fixed_sparse_product(np.zeros((1, 2), np.float32), lists, _DuckFixed(), backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sparse_errors(backend):
    lists, signs = dispatch.ternary_to_index_lists(np.array([[1, 0], [-1, 1]], np.float32))
    R = np.zeros((2, 2), np.float32)
    A = FixedPoint(8, 2)
    with pytest.raises(ValueError, match=r"signs has shape \(2,\).*needs shape \(3,\)"):
        dispatch.fixed_sparse_product(R, lists, A, signs[:2], backend=backend)
    with pytest.raises(ValueError, match=r"signs holds 0; allowed: -1 or \+1"):
        dispatch.fixed_sparse_product(R, lists, A, np.array([1, 0, -1], np.int8), backend=backend)
    with pytest.raises(ValueError, match=r"fixed_sparse_product: R \(2, 3\) has 3 senders.*\(2, 2\)"):
        dispatch.fixed_sparse_product(np.zeros((2, 3), np.float32), lists, A, signs, backend=backend)
    with pytest.raises(ValueError, match="fixed_sparse_product: scale is required"):
        dispatch.fixed_sparse_product(R, (lists.indptr, lists.indices), A, backend=backend)
    with pytest.raises(ValueError, match=r"R must be 2-D \(batch, sender\); got \(2,\)"):
        dispatch.fixed_sparse_product(R[0], lists, A, backend=backend)
    with pytest.raises(ValueError, match="accumulator.*FixedPoint"):
        dispatch.fixed_sparse_product(R, lists, LogQuant(2, 3), backend=backend)


def test_scale_round_and_lut_shape_errors():
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match=r"J has shape \(2, 3\) and fp \(3, 2\); they must match"):
            dispatch.fixed_scale_round(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), FixedPoint(8, 4),
                                       backend=backend)
        with pytest.raises(ValueError, match=r"fprime_lut: out has shape \(2,\); need \(3,\)"):
            dispatch.fprime_lut(np.zeros(3, np.float32), dispatch.fprime_table("tanh", 4),
                                out=np.zeros(2, np.float32), backend=backend)


def test_ternary_lists_need_one_magnitude():
    with pytest.raises(ValueError, match="distinct non-zero values"):
        dispatch.ternary_to_index_lists(np.array([[0.5, -0.25]], np.float32))


def test_channel_kernels_compile_nothing_at_import():
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys; import kernels.dispatch, kernels.cpu as c;"
            "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported';"
            "ks=[c.fixed_product, c.fixed_product_serial, c.sparse_product,"
            " c.sparse_product_serial, c.fprime_lut_span, c.fprime_lut_flat, c.fixed_scale_round,"
            " c.fixed_scale_round_serial];"
            "assert all(not k.signatures for k in ks), 'compiled at import'; print('lazy')")
    res = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "lazy" in res.stdout, res.stderr
