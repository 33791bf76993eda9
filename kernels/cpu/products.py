"""Products in fixed point: the dense low-bit product on int64 codes (``fixed_codes``,
``lowbit_matmul``), the saturating accumulation ``accumulate_fixed``, and the bit-true channel's
accumulator product ``fixed_product`` with its accumulator-code helpers (``acc_in``, ``wrap_code``,
shared with the sparse kernels and ``kernels.cuda``)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .scalar import acc_add, ffloor, fixed_code, frint, overflow, quant_value, saturate


@njit(parallel=True, cache=True)
def fixed_codes(x, P, key, counter, out):
    """int64 codes of float32 x (1-D) in fixed format P; NaN -> 0."""
    for i in prange(x.size):
        k = fixed_code(np.float64(x[i]), P, key, counter + np.uint64(i))
        if k != k:
            k = 0.0
        out[i] = np.int64(k)


@njit(parallel=True, cache=True)
def lowbit_matmul(kR, kC, scale, P, key, counter, out):
    """out = Q_P((kR @ kC) * scale) with int64 accumulation; output counter + b*N + n."""
    B, K = kR.shape
    N = kC.shape[1]
    for b in prange(B):
        acc = np.zeros(N, np.int64)
        for k in range(K):
            a = kR[b, k]
            if a != 0:
                for n in range(N):
                    acc[n] += a * kC[k, n]
        for n in range(N):
            v = np.float64(acc[n]) * scale
            out[b, n] = np.float32(quant_value(v, P, key, counter + np.uint64(b * N + n)))


@njit(parallel=True, cache=True)
def accumulate_fixed(X, PA, key, counter, out):
    """out[j] = saturating sum over t of X[t, j] in fixed format PA (counter + t*m + j)."""
    n, m = X.shape
    for j in prange(m):
        acc = 0.0
        for t in range(n):
            acc = acc_add(acc, np.float64(X[t, j]), PA, key, counter + np.uint64(t * m + j))
        out[j] = np.float32(acc * PA[8] + 0.0)


# --- bit-true learning channel: fixed-point accumulator products ---------------------------------
# Twins of the reference's accumulator products (the arithmetic: ``kernels.reference.accumulator``).
# Accumulators are format tuples ``PA`` (``format_params`` of a FixedPoint). Each kernel has a
# parallel version and a serial twin for small calls; both run the same ``register_jitable`` loops.

@register_jitable
def wrap_code(k, PA):
    """An integer code k (float64) modulo 2^word, into [int_min, int_max]: ``reference.accumulator._wrap_codes``.
    Exact for every k: k / span and the floor are exact, and k - span * floor(k / span) is a
    representable number in [0, span) (0 once k is a multiple of span)."""
    m = k - PA[11] * ffloor(k / PA[11])
    return m - PA[11] if m > PA[10] else m


@register_jitable
def acc_in(y, PA):
    """Accumulator code of an exact scaled value ``y = v * 2^frac``: rounded half to even; with
    wrap, reduced into the range first (the sum modulo 2^word is unchanged, the add stays exact)."""
    k = frint(y)
    return wrap_code(k, PA) if PA[6] != 0.0 else k


@register_jitable
def fixed_product_rows(R, B, PA, out, b0, b1):
    """Rows b0..b1-1 of ``fixed_product``: per row, the codes of all N outputs are updated sender
    by sender (ascending s) in one loop over n, which vectorizes; zero R[b, s] are skipped.

    The saturating loop rounds with ``np.rint`` (one SIMD instruction; it needs no range check)
    where ``acc_in`` uses ``frint``: both round half to even exactly and differ at most in the sign
    of a zero, which the add into a code that is never -0 erases. The CUDA twin uses ``acc_in``."""
    NS = R.shape[1]
    NN = B.shape[1]
    sin, sout, lo, hi = PA[7], PA[8], PA[9], PA[10]
    sat = PA[6] == 0.0
    acc = np.empty(NN, np.float64)
    for b in range(b0, b1):
        acc[:] = 0.0
        for s in range(NS):
            r = R[b, s]
            if r == 0:
                continue
            rs = np.float64(r) * sin
            Bs = B[s]
            if sat:
                for n in range(NN):
                    acc[n] = saturate(acc[n] + np.rint(rs * np.float64(Bs[n])), lo, hi)
            else:
                for n in range(NN):
                    acc[n] = overflow(acc[n] + acc_in(rs * np.float64(Bs[n]), PA), PA)
        for n in range(NN):
            out[b, n] = np.float32(acc[n] * sout + 0.0)


@njit(parallel=True, cache=True)
def fixed_product(R, B, PA, out):
    """out = R @ B in the fixed accumulator PA, saturating (wrapping) at every add (float32 2-D
    C-contiguous arrays). Parallel over batch rows."""
    for b in prange(R.shape[0]):
        fixed_product_rows(R, B, PA, out, b, b + 1)


@njit(cache=True)
def fixed_product_serial(R, B, PA, out):
    """``fixed_product`` on the calling thread only."""
    fixed_product_rows(R, B, PA, out, 0, R.shape[0])
