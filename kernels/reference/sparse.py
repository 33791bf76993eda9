"""Sparse feedback through index lists: binary / ternary matrices as lists, their checks, and the
sparse products in float64 (``sparse_feedback_product``) and in a fixed-point accumulator
(``fixed_sparse_product``): additions only.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .accumulator import _acc_codes
from .checks import _check_2d, require_accumulator
from .quantize import _f32, _overflow


class IndexLists(NamedTuple):
    """A binary feedback matrix ``M`` (sender, receiver) with entries {0, scale}, as index lists.

    Receiver ``r``'s non-zero senders are ``indices[indptr[r]:indptr[r+1]]`` (ascending): CSC of
    M, equivalently CSR of M^T.
    """

    indptr: np.ndarray   # int64, (n_receivers + 1,)
    indices: np.ndarray  # int64, (nnz,)
    scale: float
    n_senders: int

    @property
    def n_receivers(self) -> int:
        return self.indptr.size - 1


def binary_to_index_lists(M) -> IndexLists:
    """Convert a dense {0, c} matrix of shape (sender, receiver) to ``IndexLists``.

    All non-zero entries must be equal (one scale ``c``); an all-zero matrix gets scale 1.
    """
    M = np.asarray(M)
    _check_2d(M, "binary feedback matrix")
    vals = M[M != 0]
    if vals.size and not np.all(vals == vals.flat[0]):
        distinct = np.unique(vals)
        raise ValueError(f"binary feedback matrix: entries must be 0 or one constant c; got "
                         f"{distinct.size} distinct non-zero values (e.g. {distinct[:3].tolist()})")
    scale = float(vals.flat[0]) if vals.size else 1.0
    r, s = np.nonzero(M.T)                           # sorted by receiver, then sender
    counts = np.bincount(r, minlength=M.shape[1])
    indptr = np.zeros(M.shape[1] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return IndexLists(indptr, s.astype(np.int64), scale, int(M.shape[0]))


def index_lists_dense(lists: IndexLists) -> np.ndarray:
    """The dense float32 (sender, receiver) matrix of ``lists`` (for tests and checks)."""
    M = np.zeros((lists.n_senders, lists.n_receivers), dtype=np.float32)
    for r in range(lists.n_receivers):
        M[lists.indices[lists.indptr[r]:lists.indptr[r + 1]], r] = lists.scale
    return M


def check_sparse(R_shape, indptr, indices, n_senders, out_shape=None, what: str = "sparse_feedback_product") -> None:
    if len(R_shape) != 2:
        raise ValueError(f"{what}: R must be 2-D (batch, sender); got {tuple(R_shape)}")
    if indptr.ndim != 1 or indptr.size < 1 or indices.ndim != 1 or indptr[-1] != indices.size or indptr[0] != 0:
        raise ValueError(f"{what}: malformed index lists: indptr {tuple(indptr.shape)} "
                         f"ending at {int(indptr[-1]) if indptr.size else None}, indices {tuple(indices.shape)}")
    if n_senders is not None and n_senders != R_shape[1]:
        raise ValueError(f"{what}: R {tuple(R_shape)} has {R_shape[1]} senders; "
                         f"the feedback matrix has shape {(n_senders, indptr.size - 1)}")
    if indices.size and (indices.min() < 0 or indices.max() >= R_shape[1]):
        raise ValueError(f"{what}: sender indices span {int(indices.min())}..{int(indices.max())}; "
                         f"R {tuple(R_shape)} has {R_shape[1]} senders")
    want = (R_shape[0], indptr.size - 1)
    if out_shape is not None and tuple(out_shape) != want:
        raise ValueError(f"{what}: out has shape {tuple(out_shape)}; need {want}")


def sparse_feedback_product(R, lists: IndexLists, scale: float | None = None) -> np.ndarray:
    """``J[b, r] = scale * sum_{s in idx(r)} R[b, s]``: additions only, one multiply per output.

    The sum runs in float64 in index-list order (ascending sender), then is multiplied by
    ``scale`` (float64) and rounded to float32.
    """
    R = np.asarray(R, dtype=np.float32)
    indptr, indices = np.asarray(lists.indptr, np.int64), np.asarray(lists.indices, np.int64)
    n_senders = getattr(lists, "n_senders", None)
    check_sparse(R.shape, indptr, indices, n_senders)
    scale = float(lists.scale if scale is None else scale)
    nr = indptr.size - 1
    acc = np.zeros((R.shape[0], nr), dtype=np.float64)
    lengths = np.diff(indptr)
    for p in range(int(lengths.max()) if nr else 0):   # position p of every list, in order
        rs = np.nonzero(lengths > p)[0]
        acc[:, rs] += R[:, indices[indptr[rs] + p]].astype(np.float64)
    return _f32(acc * scale)


def check_signs(signs, nnz: int, what: str):
    """None, or the per-entry signs of index lists as int8 (nnz,) with values -1 or +1."""
    if signs is None:
        return None
    s = np.asarray(signs)
    if s.ndim != 1 or s.size != nnz:
        raise ValueError(f"{what}: signs has shape {tuple(s.shape)}; the index lists have {nnz} entries, "
                         f"so signs needs shape ({nnz},)")
    if s.size and not np.all((s == 1) | (s == -1)):
        bad = s[(s != 1) & (s != -1)]
        raise ValueError(f"{what}: signs holds {bad[0].item()!r}; allowed: -1 or +1 per entry (the zeros of a "
                         f"ternary matrix are left out of the index lists)")
    return s.astype(np.int8)


def ternary_to_index_lists(M):
    """A dense {-c, 0, +c} matrix (sender, receiver) as ``(IndexLists, signs)``: the lists of its
    non-zeros (scale c > 0) and their signs (int8, +-1), in list order."""
    M = np.asarray(M)
    _check_2d(M, "ternary feedback matrix")
    lists = binary_to_index_lists(np.abs(M))
    signs = np.sign(M.T[np.nonzero(M.T)]).astype(np.int8)   # the order of binary_to_index_lists
    return lists, signs


def fixed_sparse_product(R, lists: IndexLists, acc, signs=None, *, scale: float | None = None) -> np.ndarray:
    """``J[b, r] = scale * sum_{p in list(r)} sign_p * R[b, indices[p]]`` in the fixed-point
    accumulator ``acc``: additions (and subtractions) only, saturating (wrapping) after every add.

    The {0, 1} matrix (or {-1, 0, +1} with per-entry ``signs``, int8 +-1) is given as index lists,
    summed in list order (ascending sender for lists from ``binary_to_index_lists`` /
    ``ternary_to_index_lists``); a receiver with no senders gets 0. Each R value enters as its
    accumulator code (nearest-even, wrap reduced first; negated for sign -1). ``scale`` (default:
    the lists' scale) multiplies the final value in float64: ``float32(code * (2^-frac * scale))``,
    exact when scale is a power of two and word <= 24. The accumulator holds the unscaled sum of
    R's values, so saturation acts on that sum; the scale is a constant applied to its output (a
    shift of the binary point for a power of two).
    """
    R = np.asarray(R, dtype=np.float32)
    indptr, indices = np.asarray(lists.indptr, np.int64), np.asarray(lists.indices, np.int64)
    check_sparse(R.shape, indptr, indices, getattr(lists, "n_senders", None), what="fixed_sparse_product")
    A = require_accumulator(acc, "fixed_sparse_product")
    signs = check_signs(signs, indices.size, "fixed_sparse_product")
    scale = float(lists.scale if scale is None else scale)
    nr = indptr.size - 1
    with np.errstate(invalid="ignore"):
        codes = _acc_codes(R.astype(np.float64) * 2.0 ** A.frac, A)
        code = np.zeros((R.shape[0], nr), dtype=np.float64)
        lengths = np.diff(indptr)
        for p in range(int(lengths.max()) if nr else 0):   # position p of every list, in order
            rs = np.nonzero(lengths > p)[0]
            pos = indptr[rs] + p
            k = codes[:, indices[pos]]
            if signs is not None:
                k = k * signs[pos]
            code[:, rs] = _overflow(code[:, rs] + k, A)
    return _f32(code * (2.0 ** -A.frac * scale) + 0.0)
