"""Numba CPU kernels == NumPy reference, bit for bit, through the dispatch API."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kcases import (ACCUMULATORS, FIXED_FORMATS, FORMATS, SHAPES, UPDATE_FORMATS, awkward_values,
                    describe_diff, same_bits)
from kernels import dispatch, reference
from lowbit_rbp.core.formats import FixedPoint, Float32, LogQuant, parse_format

ROOT = Path(__file__).resolve().parents[2]


def _ids(fmts):
    return [getattr(f, "spec", str(f)) for f in fmts]


def check(a, b):
    assert same_bits(a, b), describe_diff(a, b)


# --- 1: quantizers ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS, ids=_ids(FORMATS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_quantize_numba_equals_reference(fmt, shape):
    rng = np.random.default_rng(len(shape) * 31 + int(np.prod(shape)))
    x = awkward_values(int(np.prod(shape)), rng, scale=1.5).reshape(shape)
    want = reference.quantize(x, fmt, seed=7, counter=123)
    got = dispatch.quantize(x, fmt, seed=7, counter=123, backend="numba")
    check(got, want)
    inplace = x.copy()                                   # in-place variant, same bits
    dispatch.quantize_(inplace, fmt, seed=7, counter=123, backend="numba")
    check(inplace, want)
    # the formats' own method is the reference
    check(fmt.quantize(x, seed=7, counter=123), want)


def test_quantize_large_counters_and_seeds_wrap_mod_2_64():
    x = awkward_values(300, np.random.default_rng(0))
    fmt = FixedPoint(12, 8, rounding="stochastic")
    for seed, counter in [(2 ** 64 - 1, 2 ** 64 - 5), (123456789, 2 ** 70 + 3)]:
        want = reference.quantize(x, fmt, seed=seed, counter=counter)
        check(dispatch.quantize(x, fmt, seed=seed, counter=counter, backend="numba"), want)


def test_reference_log_matches_log2_formula_on_ordinary_values():
    """The exact exponent rule agrees with rint(log2(|x|/alpha)) wherever log2 is not borderline."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 20000).astype(np.float32)
    for fmt in [LogQuant(2, 5, "clip"), LogQuant(0.1, 7, "flush"), LogQuant(2, 4, "clip", levels="full")]:
        xd = x.astype(np.float64)
        e = np.rint(np.log2(np.abs(xd) / fmt.alpha))
        q = np.sign(xd) * fmt.alpha * np.exp2(np.clip(e, fmt.min_exponent, 0))
        if fmt.underflow == "flush":
            q[e < fmt.min_exponent] = 0.0
        check(reference.quantize(x, fmt), (q + 0.0).astype(np.float32))


def test_sqrt_half_constant_is_the_right_side_of_the_threshold():
    from fractions import Fraction
    s = reference.SQRT_HALF
    assert Fraction(s) ** 2 > Fraction(1, 2)
    assert Fraction(float(np.nextafter(s, 0))) ** 2 < Fraction(1, 2)


def test_quantize_torch_views_in_place_and_non_contiguous():
    fmt = LogQuant(2, 3)
    t = torch.randn(6, 9)
    want = reference.quantize(t.numpy(), fmt)
    ptr = t.data_ptr()
    for backend in ("numpy", "numba", "auto"):
        u = t.clone()
        assert dispatch.quantize_(u, fmt, backend=backend) is u
        check(u.numpy(), want)
    u = t.clone()
    dispatch.quantize_(u, fmt, backend="numba")
    assert t.data_ptr() == ptr
    nc = torch.randn(9, 6).T                     # non-contiguous view
    want_nc = reference.quantize(nc.numpy(), fmt)
    dispatch.quantize_(nc, fmt, backend="numba")
    check(nc.numpy(), want_nc)
    out = dispatch.quantize(t, fmt, backend="numba")
    assert isinstance(out, torch.Tensor)
    check(out.numpy(), want)
    # Float32 is a no-op
    u = t.clone()
    dispatch.quantize_(u, Float32(), backend="numba")
    check(u.numpy(), t.numpy())


def test_channel_quantizer_uses_dispatch_signature():
    from lowbit_rbp.learning.channel import Quantizer
    q = Quantizer(parse_format("fixed:w=8,f=6,round=stochastic"), seed=3)
    t = torch.randn(4, 5)
    want = reference.quantize(t.numpy(), q.fmt, seed=3, counter=0)
    q(t)
    check(t.numpy(), want)
    assert q.counter == 20


# --- 2: sparse binary feedback ------------------------------------------------------------------

@pytest.mark.parametrize("batch,senders,receivers,scale", [
    (0, 4, 3, 1.0), (1, 1, 1, 0.5), (7, 13, 5, 0.25), (3, 10, 8, 1 / 3), (5, 6, 9, -2.0)])
def test_sparse_feedback_numba_equals_reference(batch, senders, receivers, scale):
    rng = np.random.default_rng(senders * receivers)
    M = (rng.random((senders, receivers)) < 0.35).astype(np.float32) * np.float32(scale)
    if receivers > 1:
        M[:, 0] = 0                                  # a receiver with no senders
    R = awkward_values(batch * senders, rng).reshape(batch, senders)
    R[~np.isfinite(R) | (np.abs(R) > 1e6)] = 1.0
    lists = dispatch.binary_to_index_lists(M)
    assert lists.scale == pytest.approx(np.float32(scale)) or not M.any()
    np.testing.assert_array_equal(reference.index_lists_dense(lists), M)
    want = reference.sparse_feedback_product(R, lists)
    check(dispatch.sparse_feedback_product(R, lists, backend="numba"), want)
    check(dispatch.sparse_feedback_product(R, (lists.indptr, lists.indices), lists.scale, backend="numba"), want)
    np.testing.assert_allclose(want, R.astype(np.float64) @ M.astype(np.float64), rtol=1e-5, atol=1e-3)
    out = torch.empty(batch, receivers)
    res = dispatch.sparse_feedback_product(torch.from_numpy(R), lists, out=out, backend="auto")
    assert res is out
    check(out.numpy(), want)


def test_binary_index_lists_reject_two_values_and_accept_all_zero():
    with pytest.raises(ValueError, match="distinct non-zero values"):
        dispatch.binary_to_index_lists(np.array([[0.5, 0.0], [0.25, 0.5]]))
    lists = dispatch.binary_to_index_lists(np.zeros((3, 2)))
    assert lists.indices.size == 0 and lists.indptr.tolist() == [0, 0, 0]
    R = np.ones((2, 3), np.float32)
    check(dispatch.sparse_feedback_product(R, lists, backend="numba"), np.zeros((2, 2), np.float32))


# --- 3: dense low-bit product -------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0, 3, 4), (1, 1, 1), (7, 13, 5), (4, 0, 3), (3, 100, 10)], ids=str)
@pytest.mark.parametrize("out_fmt", [None, FixedPoint(8, 4), FixedPoint(10, 6, rounding="stochastic"),
                                     LogQuant(2, 3, "stochastic")], ids=lambda f: getattr(f, "spec", "none"))
def test_lowbit_dense_numba_equals_reference(shape, out_fmt):
    B, K, N = shape
    rng = np.random.default_rng(K + 7)
    R = rng.normal(0, 0.5, (B, K)).astype(np.float32)
    C = rng.normal(0, 0.3, (K, N)).astype(np.float32)
    rf, cf = FixedPoint(8, 5, rounding="stochastic"), FixedPoint(6, 5)
    want = reference.lowbit_dense_product(R, C, rf, cf, out_fmt=out_fmt, seed=2, counter=9)
    got = dispatch.lowbit_dense_product(R, C, rf, cf, out_fmt=out_fmt, seed=2, counter=9, backend="numba")
    check(got, want)
    if out_fmt is None:   # exact: the product of the quantized operands
        qR = reference.quantize(R, rf, seed=2, counter=9).astype(np.float64)
        qC = reference.quantize(C, cf, seed=2, counter=9 + R.size).astype(np.float64)
        np.testing.assert_array_equal(want, (qR @ qC).astype(np.float32))


def test_lowbit_dense_int64_overflow_is_refused():
    f = FixedPoint(32, 0)
    R = np.full((1, 4), 2e9, np.float32)
    C = np.full((4, 1), -2e9, np.float32)
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match="int64 accumulator could overflow"):
            dispatch.lowbit_dense_product(R, C, f, f, backend=backend)
    # same formats, small data: fine (the bound is checked on the data)
    ok = dispatch.lowbit_dense_product(R * 1e-6, C * 1e-6, f, f, backend="numba")
    assert ok.shape == (1, 1)


# --- 4: per-example quantized update ------------------------------------------------------------

UPDATE_SHAPES = [(0, 3, 4), (1, 1, 1), (7, 13, 5), (3, 0, 4), (5, 4, 0), (4, 9, 33)]


@pytest.mark.parametrize("fmt", UPDATE_FORMATS, ids=_ids(UPDATE_FORMATS))
@pytest.mark.parametrize("acc", ACCUMULATORS, ids=lambda a: getattr(a, "spec", "float"))
def test_per_example_update_numba_equals_reference(fmt, acc):
    for B, NO, NI in UPDATE_SHAPES:
        rng = np.random.default_rng(B * 100 + NO * 10 + NI)
        R = (rng.normal(0, 0.4, (B, NO))).astype(np.float32)
        O = np.tanh(rng.normal(0, 1, (B, NI))).astype(np.float32)
        if B * NO:
            R.flat[0] = 0.0
        want = reference.per_example_update(R, O, fmt, accumulator=acc, seed=4, counter=77)
        got = dispatch.per_example_update(R, O, fmt, accumulator=acc, seed=4, counter=77, backend="numba")
        assert same_bits(got, want), f"shape {(B, NO, NI)}: {describe_diff(got, want)}"


def test_per_example_reference_is_the_materialized_sum():
    """Chunking does not matter, and the counters are the flat indices of the (b, i, j) tensor."""
    rng = np.random.default_rng(3)
    R = rng.normal(0, 0.3, (6, 5)).astype(np.float32)
    O = rng.normal(0, 1, (6, 7)).astype(np.float32)
    for fmt in [FixedPoint(10, 8, rounding="stochastic"), LogQuant(2.0 ** -3, 4, "stochastic")]:
        P = R[:, :, None] * O[:, None, :]
        Q = fmt.quantize(P, seed=11, counter=1000).astype(np.float64)
        acc = np.zeros((5, 7))
        for b in range(6):
            acc += Q[b]
        for chunk in (1, 35, 36, 10 ** 6):
            got = reference.per_example_update(R, O, fmt, seed=11, counter=1000, max_chunk_elems=chunk)
            check(got, acc.astype(np.float32))


def test_per_example_fixed_accumulator_saturates_at_every_add():
    A = FixedPoint(4, 2)                                 # range [-2, 1.75]
    R = np.array([[1.5], [1.5], [-1.5]], np.float32)
    O = np.ones((3, 1), np.float32)
    for backend in ("numpy", "numba"):
        g = dispatch.per_example_update(R, O, FixedPoint(8, 4), accumulator=A, backend=backend)
        assert g[0, 0] == 0.25                           # 1.5 -> 1.75 (saturated) -> 0.25
        g = dispatch.per_example_update(R, O, FixedPoint(8, 4), backend=backend)
        assert g[0, 0] == 1.5                            # float accumulation: no saturation


def test_per_example_update_torch_out_written_in_place():
    rng = np.random.default_rng(5)
    R = torch.from_numpy(rng.normal(0, 0.3, (8, 6)).astype(np.float32))
    O = torch.from_numpy(rng.normal(0, 1, (8, 11)).astype(np.float32))
    fmt = LogQuant(2.0 ** -3, 5)
    want = reference.per_example_update(R.numpy(), O.numpy(), fmt)
    out = torch.full((6, 11), 9.0)
    assert dispatch.per_example_update(R, O, fmt, out=out, backend="auto") is out
    check(out.numpy(), want)
    res = dispatch.per_example_update(R, O, fmt, backend="numpy")
    assert isinstance(res, torch.Tensor)
    check(res.numpy(), want)
    outnc = torch.zeros(11, 6).T                      # non-contiguous out
    dispatch.per_example_update(R, O, fmt, out=outnc, backend="numba")
    check(outnc.contiguous().numpy(), want)


# --- 5: saturating fixed-point accumulation -----------------------------------------------------

@pytest.mark.parametrize("fmt", [f for f in FIXED_FORMATS] + [FixedPoint(4, 2)], ids=_ids(FIXED_FORMATS + [FixedPoint(4, 2)]))
def test_accumulate_fixed_numba_equals_reference(fmt):
    rng = np.random.default_rng(8)
    for shape in [(0, 3), (1,), (7, 13), (9, 4, 3), (5, 0)]:
        X = awkward_values(int(np.prod(shape)), rng).reshape(shape)
        want = reference.accumulate_fixed(X, fmt, seed=1, counter=5)
        check(dispatch.accumulate_fixed(X, fmt, seed=1, counter=5, backend="numba"), want)


def test_accumulate_fixed_saturation_order_matters():
    A = FixedPoint(4, 2)
    X = np.array([1.5, 1.5, -1.5], np.float32)
    for backend in ("numpy", "numba"):
        assert float(dispatch.accumulate_fixed(X, A, backend=backend)) == 0.25
    W = FixedPoint(4, 2, overflow="wrap")             # 1.5 + 1.5 = 3.0 wraps to -1.0, then -2.5 -> 1.5
    assert float(dispatch.accumulate_fixed(X, W, backend="numba")) == 1.5


# --- imports stay lazy --------------------------------------------------------------------------

def test_import_compiles_nothing_and_does_not_import_numba_cuda():
    code = ("import sys; import kernels.dispatch, kernels.cpu as c;"
            "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported';"
            "ks=[c.quantize_flat, c.quantize_flat_serial, c.fixed_codes, c.lowbit_matmul, c.sparse_product,"
            " c.per_example_update, c.per_example_update_serial, c.accumulate_fixed];"
            "assert all(not k.signatures for k in ks), 'compiled at import'; print('lazy')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "lazy" in res.stdout, res.stderr
