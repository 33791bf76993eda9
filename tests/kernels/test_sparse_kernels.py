"""The Numba sparse product (``kernels.cpu.sparse_product``: code table, one row per distinct list
two adds a pass, 4 x 4 transposing gather) and the dispatcher's kept calls: the plan's layout by
hand, the gather against NumPy's transpose, both kernels == the reference bit for bit on ragged
shapes, shared and long lists, signs, wrap, float parameters; a kept call follows its tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import njit

from kcases import awkward_values, describe_diff, same_bits
from kernels import cpu, dispatch, reference
from lowbit_rbp.core.formats import FixedPoint

ACCS = [FixedPoint(12, 5), FixedPoint(12, 5, overflow="wrap"), FixedPoint(4, 0), FixedPoint(32, 10),
        FixedPoint(30, 4, overflow="wrap"), FixedPoint(8, 4, signed=False), None]      # None: float product
# (batch, senders, receivers): batch and receivers off multiples of 4 (the gather's ragged edges),
# no batch, no senders, no receivers, and the MNIST channel shapes.
SHAPES = [(0, 3, 4), (1, 1, 1), (3, 5, 7), (5, 13, 6), (4, 4, 4), (17, 2, 9), (100, 10, 100), (37, 100, 101),
          (6, 0, 3), (2, 3, 0)]


@njit
def gather(X, rows, Y, j0, j1):
    cpu.gather_transposed(X, rows, Y, j0, j1)


def _ids(xs):
    return [getattr(x, "spec", str(x)) for x in xs]


def _matrix(rng, S, N, ternary):
    """A {0, 1} / {-1, 0, +1} matrix with an empty receiver, receivers sharing one list (with the
    same signs and with other signs), one receiving every sender (the longest list) and sparse-1
    columns elsewhere."""
    M = (rng.random((S, N)) < 1.0 / max(S, 1)).astype(np.float32)
    if ternary:
        M *= np.where(rng.random((S, N)) < 0.5, -1, 1).astype(np.float32)
    if N >= 5 and S:
        M[:, 1] = 0
        M[:, 3] = M[:, 2]
        M[:, 4] = -M[:, 2] if ternary else M[:, 2]
        M[:, 0] = 1
    return M


def _lists(M, ternary):
    return dispatch.ternary_to_index_lists(M) if ternary else (dispatch.binary_to_index_lists(M), None)


def _want(R, lists, acc, signs):
    if acc is None:
        with np.errstate(invalid="ignore"):                   # inf - inf in the float sums: NaN
            return reference.sparse_feedback_product(R, lists)
    return reference.fixed_sparse_product(R, lists, acc, signs)


def _params(acc, scale):
    if acc is None:
        return cpu.sparse_params(cpu.format_params(None), scale)
    PA = cpu.format_params(acc)
    return cpu.sparse_params(PA, PA[8] * scale)


# --- the plan -------------------------------------------------------------------------------------

def test_sparse_plan_by_hand():
    """4 senders, 6 receivers: r0 <- 0, 2 (-), 3; r1 <- none; r2 <- 1; r3 <- 1 (r2's list);
    r4 <- 0, 2 (-), 3 (r0's list); r5 <- 1 (-). Distinct lists by length: [] , [1], [-1],
    [0, -2, 3]; sender s with sign -1 is code row 4 + 1 + s; odd lists end with the zero row 4."""
    M = np.array([[1, 0, 0, 0, 1, 0],
                  [0, 0, 1, 1, 0, -1],
                  [-1, 0, 0, 0, -1, 0],
                  [1, 0, 0, 0, 1, 0]], np.float32)
    lists, signs = dispatch.ternary_to_index_lists(M)
    plan = cpu.sparse_plan(lists.indptr, lists.indices, 4, signs)
    assert plan[:4].tolist() == [4, 6, 8, 1]                  # U, NR, padded entries, signed
    lptr, lidx, row_of, signed = cpu.plan_parts(plan)
    assert signed
    assert lptr.tolist() == [0, 0, 2, 4, 8]
    assert lidx.tolist() == [1, 4, 6, 4, 0, 7, 3, 4]
    assert row_of.tolist() == [3, 0, 1, 1, 3, 2]
    unsigned = cpu.sparse_plan(lists.indptr, lists.indices, 4)
    assert unsigned[:4].tolist() == [3, 6, 6, 0]              # -1 and 1 are one list without signs
    assert cpu.plan_parts(unsigned)[1].tolist() == [1, 4, 0, 2, 3, 4]


# --- the transposing gather -----------------------------------------------------------------------

@pytest.mark.parametrize("I,J", [(0, 5), (1, 1), (3, 7), (4, 4), (5, 9), (8, 12), (13, 6), (100, 100)])
def test_gather_transposed_equals_numpy(I, J):
    rng = np.random.default_rng(I * 100 + J)
    X = awkward_values(11 * (I + 3), rng).reshape(11, I + 3)       # rows longer than I: only I read
    rows = rng.integers(0, 11, J)                                 # repeats and any order
    for dtype in (np.float32, np.float64):
        Y = np.full((I, J), -7.0, dtype)
        gather(X, rows, Y, 0, J)
        assert same_bits(Y, X[rows, :I].T.astype(dtype)), describe_diff(Y, X[rows, :I].T.astype(dtype))
        Y[:] = -7.0                                               # a column range: the rest untouched
        j0, j1 = J // 3, J - J // 4
        gather(X, rows, Y, j0, j1)
        want = np.full((I, J), -7.0, dtype)
        want[:, j0:j1] = X[rows[j0:j1], :I].T
        assert same_bits(Y, want)
    Xj = X[:, :I].copy()                                          # rows None: a plain transpose
    Y = np.empty((I, 11), np.float32)
    gather(Xj, None, Y, 0, 11)
    assert same_bits(Y, Xj.T)


# --- the kernels == the reference -----------------------------------------------------------------

CASES = [(acc, ternary) for acc in ACCS for ternary in (False, True) if acc is not None or not ternary]


@pytest.mark.parametrize("acc,ternary", CASES, ids=[f"{_ids([a])[0]}-{'ternary' if t else 'binary'}" for a, t in CASES])
def test_sparse_kernels_equal_reference(acc, ternary):
    """Serial twin and prange kernel, called directly (whatever the thread count), on awkward R
    (NaN, infinities, huge values, ties, -0) and grid R; scale 0.5 and an off-grid scale. (The
    float product has no signs.)"""
    for B, S, N in SHAPES:
        rng = np.random.default_rng(B * 10_000 + S * 100 + N)
        M = _matrix(rng, S, N, ternary)
        lists, signs = _lists(M, ternary)
        plan = cpu.sparse_plan(lists.indptr, lists.indices, S, signs)
        for R in (awkward_values(B * S, rng).reshape(B, S),
                  reference.quantize(rng.normal(0, 4, (B, S)).astype(np.float32), FixedPoint(8, 3))):
            for scale in (0.5, -1 / 3):
                want = _want(R, lists._replace(scale=scale), acc, signs)
                for kern in (cpu.sparse_product_serial, cpu.sparse_product):
                    got = np.full(want.shape, 9.0, np.float32)
                    kern(R, plan, _params(acc, scale), got)
                    where = f"{kern.__name__} {(B, S, N)} scale {scale}"
                    assert same_bits(got, want), f"{where}: {describe_diff(got, want)}"


def test_distinct_lists_are_computed_once_and_shared():
    """Every receiver with the same list: one distinct list; a long list (9 entries: five passes,
    the last with the zero row) where saturation happens mid-list, so the order shows."""
    S, N = 9, 6
    M = np.ones((S, N), np.float32)
    lists = dispatch.binary_to_index_lists(M)
    plan = cpu.sparse_plan(lists.indptr, lists.indices, S)
    assert plan[:3].tolist() == [1, N, 10]
    R = np.array([[7, 7, -1, -1, 1, -8, 3, 0, -2]], np.float32)   # 4-bit: 7, 7, 6, 5, 6, -2, 1, 1, -1
    acc = FixedPoint(4, 0)
    got = np.empty((1, N), np.float32)
    cpu.sparse_product_serial(R, plan, _params(acc, 1.0), got)
    assert got.tolist() == [[-1.0] * N]
    assert same_bits(got, reference.fixed_sparse_product(R, lists, acc))


# --- kept calls -------------------------------------------------------------------------------------

def _channel_call(Rt, lists, acc, out):
    return dispatch.fixed_sparse_product(Rt, lists, acc, out=out, backend="numba")


def test_kept_call_reads_new_values_and_follows_replaced_storage():
    rng = np.random.default_rng(5)
    M = _matrix(rng, 10, 100, False)
    lists = dispatch.binary_to_index_lists(M)
    acc = FixedPoint(12, 5)
    Rt, out = torch.from_numpy(awkward_values(1000, rng).reshape(100, 10)), torch.empty(100, 100)
    for step in range(3):                                  # the first call keeps it, the next ones hit
        Rt.copy_(torch.from_numpy(rng.normal(0, 8, (100, 10)).astype(np.float32)))
        assert _channel_call(Rt, lists, acc, out) is out
        assert same_bits(out.numpy(), reference.fixed_sparse_product(Rt.numpy(), lists, acc))
    assert dispatch._SPARSE_CALLS[id(out)].lists is lists
    Rt.set_(torch.from_numpy(rng.normal(0, 8, (100, 10)).astype(np.float32)))     # new storage
    _channel_call(Rt, lists, acc, out)
    assert same_bits(out.numpy(), reference.fixed_sparse_product(Rt.numpy(), lists, acc))
    out.set_(torch.empty(100, 100))                        # out moved: the result lands in its new storage
    _channel_call(Rt, lists, acc, out)
    assert same_bits(out.numpy(), reference.fixed_sparse_product(Rt.numpy(), lists, acc))


def test_kept_call_follows_reshaped_and_transposed_tensors():
    """Same storage, other layout: R resized in place to fewer rows (same pointer), and a square out
    transposed in place (same pointer and shape, no longer contiguous); each is noticed."""
    rng = np.random.default_rng(6)
    lists = dispatch.binary_to_index_lists(_matrix(rng, 10, 100, False))
    acc = FixedPoint(12, 5, overflow="wrap")
    Rt, out = torch.from_numpy(rng.normal(0, 8, (100, 10)).astype(np.float32)), torch.empty(100, 100)
    _channel_call(Rt, lists, acc, out)
    _channel_call(Rt, lists, acc, out)
    out.t_()
    assert not out.is_contiguous()
    _channel_call(Rt, lists, acc, out)
    assert same_bits(out.numpy(), reference.fixed_sparse_product(Rt.numpy(), lists, acc))
    out = torch.empty(100, 100)
    _channel_call(Rt, lists, acc, out)
    ptr = Rt.data_ptr()
    Rt.resize_(40, 10)
    assert Rt.data_ptr() == ptr
    with pytest.raises(ValueError, match=r"out has shape \(100, 100\); need \(40, 100\)"):
        _channel_call(Rt, lists, acc, out)
    small = torch.empty(40, 100)
    for _ in range(2):
        _channel_call(Rt, lists, acc, small)
        assert same_bits(small.numpy(), reference.fixed_sparse_product(Rt.numpy(), lists, acc))


def test_kept_calls_tell_products_lists_and_scales_apart():
    """One R and out through two lists, both products, two accumulators and an explicit scale:
    each call gets its own result."""
    rng = np.random.default_rng(7)
    l1, l2 = (dispatch.binary_to_index_lists(_matrix(rng, 10, 100, False) * np.float32(s)) for s in (1, 0.25))
    Rt, out = torch.from_numpy(rng.normal(0, 8, (100, 10)).astype(np.float32)), torch.empty(100, 100)
    R = Rt.numpy()
    for _ in range(2):
        for lists in (l1, l2):
            for acc in (FixedPoint(12, 5), FixedPoint(6, 2)):
                _channel_call(Rt, lists, acc, out)
                assert same_bits(out.numpy(), reference.fixed_sparse_product(R, lists, acc))
                dispatch.fixed_sparse_product(Rt, lists, acc, scale=2.0, out=out, backend="numba")
                assert same_bits(out.numpy(), reference.fixed_sparse_product(R, lists, acc, scale=2.0))
            dispatch.sparse_feedback_product(Rt, lists, out=out, backend="numba")
            assert same_bits(out.numpy(), reference.sparse_feedback_product(R, lists))


def test_only_small_calls_on_torch_tensors_are_kept():
    """Kept calls hold their tensors alive: only R and out up to ``FLAT_CACHE_MAX`` elements, only
    torch tensors with ``out`` given (NumPy arrays are their own views)."""
    rng = np.random.default_rng(8)
    acc = FixedPoint(12, 5)
    lists = dispatch.binary_to_index_lists(_matrix(rng, 700, 100, False))
    Rt, out = torch.from_numpy(rng.normal(0, 8, (100, 700)).astype(np.float32)), torch.empty(100, 100)
    assert Rt.numel() > dispatch.FLAT_CACHE_MAX
    _channel_call(Rt, lists, acc, out)
    assert same_bits(out.numpy(), reference.fixed_sparse_product(Rt.numpy(), lists, acc))
    small = dispatch.binary_to_index_lists(_matrix(rng, 10, 100, False))
    R = rng.normal(0, 8, (100, 10)).astype(np.float32)
    dispatch.fixed_sparse_product(R, small, acc, out=out.numpy(), backend="numba")
    dispatch.fixed_sparse_product(torch.from_numpy(R), small, acc, backend="numba")
    kept = [call.lists for call in dispatch._SPARSE_CALLS.values()]
    assert not any(k is lists or k is small for k in kept)
