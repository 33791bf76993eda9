"""Sparse products through index lists (``sparse_product``: the float product of a binary
feedback matrix and the bit-true channel's fixed-accumulator product, one kernel), with the list
plan (``sparse_plan``) and the 4 x 4 transposing store, an LLVM ``shufflevector`` intrinsic
(``store_transposed4``)."""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic, register_jitable

from .params import PARAMS
from .products import acc_in
from .scalar import overflow, saturate


# --- sparse products through index lists ---------------------------------------------------------
# One kernel for ``reference.sparse_feedback_product`` (float parameters) and
# ``reference.fixed_sparse_product`` (a fixed accumulator), in three passes that each run over
# contiguous memory (at the MNIST SRBP shape, 100 x 10 through 100 receivers, writing J column by
# column cost more than all the adds):
#   1. codes: R (batch, sender) transposed to (sender, batch), each value as its addend;
#   2. rows: one float32 row over the batch per *distinct* list (receivers with the same list and
#      signs share it: most sparse-1 receivers have one sender or none), the list's entries added
#      in order, two entries per vectorized pass over the batch;
#   3. J[b, r] = the row of r's list at b: a transposing gather, 4 x 4 blocks at a time.
# Each receiver's arithmetic is the reference's (``sparse_rows``); only identical work is shared.

#: Distinct lists per parallel task (pass 2); batch rows or receivers per parallel task (1, 3).
SPARSE_CHUNK = 16
SPARSE_COLUMNS = 64
#: Where the output scale sits in a sparse kernel's parameters, after a format's ``PARAMS``.
OSCALE = PARAMS


def sparse_params(PA, oscale) -> np.ndarray:
    """A sparse kernel's float64 parameters: the accumulator's ``PA`` (``format_params(None)`` for
    the float product), then the output scale (2^-frac * scale; the float product: scale). An array,
    not a tuple: a tuple argument costs a Numba call ~0.2 us to type, an array ~0.07 us."""
    return np.array(tuple(PA) + (float(oscale),), np.float64)


def sparse_plan(indptr, indices, n_senders: int, signs=None) -> np.ndarray:
    """The distinct lists of index lists (receiver r's senders ``indices[indptr[r]:indptr[r+1]]``,
    in that order, with int8 +-1 ``signs`` per entry or None) as the sparse kernels' ``plan``, one
    int64 array (one argument, not four): ``[U, NR, nnz, signed, lptr (U + 1), lidx (nnz),
    row_of (NR)]``, unpacked by ``plan_parts``.

    List u's entries are ``lidx[lptr[u]:lptr[u+1]]``, rows of the kernel's code table: sender s
    (sign +1) is row s, sender s with sign -1 row ``n_senders + 1 + s`` (its negated codes, made
    when ``signed``), and row ``n_senders`` holds zeros, which pads every list to an even length
    (see ``sparse_rows``). Receiver r's list is ``row_of[r]``. Lists are ordered by length (stable),
    which keeps the kernel's trip counts predictable. Built once per matrix."""
    indptr = np.asarray(indptr, np.int64)
    indices = np.asarray(indices, np.int64)
    nr = indptr.size - 1
    signed = signs is not None and np.size(signs) > 0
    rows = indices.copy()                            # each entry's code row
    if signed:
        rows[np.asarray(signs) < 0] += n_senders + 1
    list_of: dict = {}
    first = []                                       # the first receiver of each list
    row_of = np.empty(nr, np.int64)
    for r in range(nr):
        key = rows[indptr[r]:indptr[r + 1]].tobytes()
        if key not in list_of:
            list_of[key] = len(first)
            first.append(r)
        row_of[r] = list_of[key]
    first = np.array(first, np.int64)
    order = np.argsort(indptr[first + 1] - indptr[first], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    lists = [rows[indptr[r]:indptr[r + 1]] for r in first[order]]
    lists = [np.append(e, [n_senders] * (e.size % 2)) for e in lists]
    lptr = np.zeros(order.size + 1, np.int64)
    np.cumsum([e.size for e in lists], out=lptr[1:])
    lidx = np.concatenate(lists + [np.zeros(0, np.int64)])
    return np.concatenate(([order.size, nr, lidx.size, int(signed)], lptr, lidx, rank[row_of])).astype(np.int64)


@register_jitable
def plan_parts(plan):
    """``(lptr, lidx, row_of, signed)``: views of a ``sparse_plan`` and its flag."""
    U, NR, nnz = plan[0], plan[1], plan[2]
    o = 4 + U + 1
    return plan[4:o], plan[o:o + nnz], plan[o + nnz:o + nnz + NR], plan[3] != 0


@intrinsic
def store_transposed4(typingctx, X, a0, a1, a2, a3, Y, q, step):
    """``Y.flat[q + k * step + j] = X.flat[a_j + k]`` for j, k = 0..3 (C-contiguous arrays, X
    float32, Y float32 or float64: converted, exactly): the 4 x 4 block whose rows start at X's flat
    offsets a0..a3, stored transposed as four runs of four, ``step`` apart. Four vector loads, eight
    shuffles (LLVM ``shufflevector``, which plain Numba code cannot ask for), four vector stores.
    No bounds checks: callers keep offsets in range."""
    ints = (a0, a1, a2, a3, q, step)
    if not (isinstance(X, types.Array) and X.dtype == types.float32 and X.layout == "C"
            and isinstance(Y, types.Array) and Y.dtype in (types.float32, types.float64) and Y.layout == "C"
            and all(isinstance(t, types.Integer) for t in ints)):
        return None
    wide = Y.dtype == types.float64

    def codegen(context, builder, sig, args):
        x = context.make_array(sig.args[0])(context, builder, args[0]).data
        y = context.make_array(sig.args[5])(context, builder, args[5]).data
        off = [context.cast(builder, v, t, types.intp) for v, t in zip(args, sig.args) if isinstance(t, types.Integer)]
        vec = ir.VectorType(ir.FloatType(), 4).as_pointer()
        rows = [builder.load(builder.bitcast(builder.gep(x, [a]), vec), align=4) for a in off[:4]]

        def mix(u, v, lanes):
            return builder.shuffle_vector(u, v, ir.Constant(ir.VectorType(ir.IntType(32), 4), lanes))
        lo01, hi01 = mix(rows[0], rows[1], [0, 4, 1, 5]), mix(rows[0], rows[1], [2, 6, 3, 7])
        lo23, hi23 = mix(rows[2], rows[3], [0, 4, 1, 5]), mix(rows[2], rows[3], [2, 6, 3, 7])
        cols = [mix(lo01, lo23, [0, 1, 4, 5]), mix(lo01, lo23, [2, 3, 6, 7]),
                mix(hi01, hi23, [0, 1, 4, 5]), mix(hi01, hi23, [2, 3, 6, 7])]
        out = ir.VectorType(ir.DoubleType() if wide else ir.FloatType(), 4)
        at = off[4]
        for col in cols:
            if wide:
                col = builder.fpext(col, out)
            builder.store(col, builder.bitcast(builder.gep(y, [at]), out.as_pointer()), align=8 if wide else 4)
            at = builder.add(at, off[5])
        return context.get_dummy_value()
    return types.void(X, a0, a1, a2, a3, Y, q, step), codegen


@register_jitable
def gather_transposed(X, rows, Y, j0, j1):
    """``Y[i, j] = X[rows[j], i]`` (``rows`` None: ``X[j, i]``) for columns j0..j1-1 of Y and all
    its rows (C-contiguous X (., >= I) float32, Y (I, .) float32 or float64): Y's columns gathered
    from X's rows, 4 x 4 blocks through ``store_transposed4``, the ragged edges one at a time."""
    I, J, K = Y.shape[0], Y.shape[1], X.shape[1]
    Xf, Yf = X.reshape(-1), Y.reshape(-1)
    i4 = I - I % 4
    j = j0
    while j <= j1 - 4:
        if rows is None:
            a0, a1, a2, a3 = j * K, (j + 1) * K, (j + 2) * K, (j + 3) * K
        else:
            a0, a1, a2, a3 = rows[j] * K, rows[j + 1] * K, rows[j + 2] * K, rows[j + 3] * K
        for i in range(0, i4, 4):
            store_transposed4(Xf, a0 + i, a1 + i, a2 + i, a3 + i, Yf, i * J + j, J)
        for i in range(i4, I):
            for jj, a in enumerate((a0, a1, a2, a3)):
                Yf[i * J + j + jj] = Xf[a + i]
        j += 4
    for jj in range(j, j1):
        a = jj * K if rows is None else rows[jj] * K
        for i in range(I):
            Yf[i * J + jj] = Xf[a + i]


@register_jitable
def sparse_codes(R, PA, signed, codes, b0, b1):
    """Pass 1, batch rows b0..b1-1 of the code table (see ``sparse_plan``): ``codes[s, b]`` = the
    addend of R[b, s]: its accumulator code (``acc_in``; saturating: ``np.rint``, see
    ``fixed_product_rows``) for a fixed PA, else R[b, s] in float64; with ``signed``, row
    NS + 1 + s = -codes[s] (exact: the reference's code * -1). R is transposed into the table first,
    then converted in place. The loops index slices from 0: over ``range(b0, b1)`` Numba's
    wraparound of a possibly negative index stays in the loop and keeps LLVM from vectorizing it."""
    NS = R.shape[1]
    gather_transposed(R, None, codes[:NS], b0, b1)
    fixed = PA[0] == 2.0
    wrap = fixed and PA[6] != 0.0
    sin = PA[7]
    if fixed:
        for s in range(NS):
            row = codes[s, b0:b1]
            if wrap:
                for b in range(row.size):
                    row[b] = acc_in(row[b] * sin, PA)
            else:                                    # acc_in's rounding, as one SIMD instruction
                for b in range(row.size):
                    row[b] = np.rint(row[b] * sin)
    if signed:                                       # a loop of its own: inside the one above it
        for s in range(NS):                          # keeps LLVM from vectorizing that (3x slower)
            row, neg = codes[s, b0:b1], codes[NS + 1 + s, b0:b1]
            for b in range(row.size):
                neg[b] = -row[b]


@register_jitable
def sparse_rows(codes, lptr, lidx, PA, oscale, S, u0, u1, work):
    """Pass 2, lists u0..u1-1: ``S[u]`` = list u's value at every batch position: its entries (rows
    of ``codes``) added in order, the first to 0.0; an empty list is 0.0.

    Fixed PA: each code added and saturated (wrapped) after every add, S = float32(code * oscale +
    0.0). Float PA (``sparse_feedback_product``): the same loop with bounds -inf..inf, a plain
    float64 sum, S = float32(sum * oscale + -0.0); adding -0.0 changes no value (and keeps the sign
    of a zero), adding +0.0 turns -0 into +0 as the fixed reference does.

    Two entries per vectorized pass over the batch (each pass costs ~40 cycles beyond its adds at
    batch 100), the last pass storing S itself. Lists are padded to an even length with the zero
    row: adding 0 to a saturated (wrapped) code, or to a float sum, which is never -0 (it starts as
    0.0 + x), changes nothing. ``work`` (2, NB): row 0 zeros, the 0.0 a list starts from; row 1 the
    running code."""
    NB = codes.shape[1]
    fixed = PA[0] == 2.0
    wrap = fixed and PA[6] != 0.0
    lo, hi = (PA[9], PA[10]) if fixed else (-np.inf, np.inf)
    zero = 0.0 if fixed else -0.0
    for u in range(u0, u1):
        p0, p1 = lptr[u], lptr[u + 1]
        if p0 == p1:
            for b in range(NB):
                S[u, b] = np.float32(0.0 * oscale + zero)
        for p in range(p0, p1, 2):
            s, t = lidx[p], lidx[p + 1]
            w = 0 if p == p0 else 1
            if wrap and p + 2 == p1:
                for b in range(NB):
                    a = overflow(work[w, b] + codes[s, b], PA)
                    S[u, b] = np.float32(overflow(a + codes[t, b], PA) * oscale + zero)
            elif wrap:
                for b in range(NB):
                    work[1, b] = overflow(overflow(work[w, b] + codes[s, b], PA) + codes[t, b], PA)
            elif p + 2 == p1:
                for b in range(NB):
                    a = saturate(work[w, b] + codes[s, b], lo, hi)
                    S[u, b] = np.float32(saturate(a + codes[t, b], lo, hi) * oscale + zero)
            else:
                for b in range(NB):
                    work[1, b] = saturate(saturate(work[w, b] + codes[s, b], lo, hi) + codes[t, b], lo, hi)


@register_jitable
def sparse_tables(NS, NB, U, signed):
    """``(codes, work, S)`` of one call, from one allocation (each costs a call ~60 ns): the code
    table of ``sparse_plan``'s layout, its zero row filled; ``sparse_rows``' work rows, row 0
    zero; the float32 rows S (U, NB)."""
    rows = 2 * NS + 1 if signed else NS + 1
    n_codes, n_work = rows * NB, 2 * NB
    buf = np.empty(n_codes + n_work + (U * NB + 1) // 2, np.float64)
    codes = buf[:n_codes].reshape((rows, NB))
    codes[NS] = 0.0
    work = buf[n_codes:n_codes + n_work].reshape((2, NB))
    work[0] = 0.0
    return codes, work, buf[n_codes + n_work:].view(np.float32)[:U * NB].reshape((U, NB))


@njit(parallel=True, cache=True)
def sparse_product(R, plan, params, out):
    """``out[b, r] = float32(acc * oscale)``, acc the sum of sign_p * R[b, indices[p]] over r's list
    in order, saturating (wrapping) at every add in a fixed accumulator, or a float64 sum with
    float parameters (see ``sparse_rows``). R (batch, sender) and out (batch, receiver) float32
    C-contiguous; ``plan`` from ``sparse_plan``, ``params`` from ``sparse_params``. Each pass is
    parallel over chunks: ``SPARSE_COLUMNS`` batch rows, ``SPARSE_CHUNK`` lists,
    ``SPARSE_COLUMNS`` receivers."""
    lptr, lidx, row_of, signed = plan_parts(plan)
    NB, NS = R.shape
    U, NR = lptr.size - 1, row_of.size
    codes, _, S = sparse_tables(NS, NB, U, signed)
    for t in prange((NB + SPARSE_COLUMNS - 1) // SPARSE_COLUMNS):
        b0 = t * SPARSE_COLUMNS
        sparse_codes(R, params, signed, codes, b0, min(NB, b0 + SPARSE_COLUMNS))
    for t in prange((U + SPARSE_CHUNK - 1) // SPARSE_CHUNK):
        u0 = t * SPARSE_CHUNK
        sparse_rows(codes, lptr, lidx, params, params[OSCALE], S, u0, min(U, u0 + SPARSE_CHUNK),
                    np.zeros((2, NB), np.float64))
    for t in prange((NR + SPARSE_COLUMNS - 1) // SPARSE_COLUMNS):
        r0 = t * SPARSE_COLUMNS
        gather_transposed(S, row_of, out, r0, min(NR, r0 + SPARSE_COLUMNS))


@njit(cache=True)
def sparse_product_serial(R, plan, params, out):
    """``sparse_product`` on the calling thread only."""
    lptr, lidx, row_of, signed = plan_parts(plan)
    NB, NS = R.shape
    codes, work, S = sparse_tables(NS, NB, lptr.size - 1, signed)
    sparse_codes(R, params, signed, codes, 0, NB)
    sparse_rows(codes, lptr, lidx, params, params[OSCALE], S, 0, lptr.size - 1, work)
    gather_transposed(S, row_of, out, 0, row_of.size)
