"""Quantizer kernels: ``quantize_flat`` (float32 in place, one loop per ``kernel_mode`` variant),
``quantize_f64_span`` (exact float64 values rounded once, for scale-and-round and the stored
weights) and the stored weights' ``add_quantize_flat`` (``w = Q(w + scale * g)``)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .params import (FIXED_NE_SAT, FIXED_SR_SAT, FIXED_SR_WRAP, GENERAL, LOG_BITS, LOG_BITS_STOCH, LOG_TABLE,
                     LOG_TABLE_STOCH)
from .scalar import (bits_value, bits_value_stoch, fixed_ne_sat, fixed_sr_sat, fixed_sr_wrap, quant_value,
                     table_tuples, table_value, table_value_stoch)


# ``quantize_flat`` (like ``per_example_update``, ``kernels.cpu.update``) takes the loop variant
# ``mode`` and table ``TL`` of ``kernel_mode``. Each has a parallel version (prange over chunks /
# output rows) and a serial twin (``*_serial``: no thread-pool launch, for small arrays); both run
# the same ``register_jitable`` loops, so they return the same bits.

#: Elements per parallel task of ``quantize_flat``.
QUANTIZE_CHUNK = 1 << 14


@register_jitable
def quantize_span(x, P, TL, mode, key, counter):
    """x[i] = float32(Q(x[i])) in place, with counter + i, in the loop variant ``mode``.

    In place on one array, and from index 0 over the whole array (the parallel kernel passes
    slices): LLVM then needs no overlap check between an input and an output, and Numba knows
    the indices are non-negative (no wraparound checks), so the branch-free loops vectorize."""
    n = x.size
    if mode == FIXED_NE_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            x[i] = np.float32(fixed_ne_sat(np.float64(x[i]), sin, sout, qlo, qhi))
    elif mode == FIXED_SR_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            x[i] = np.float32(fixed_sr_sat(np.float64(x[i]), sin, sout, qlo, qhi, key, counter + np.uint64(i)))
    elif mode == FIXED_SR_WRAP:
        sin, sout, qlo, span = P[7], P[8], P[9], P[11]
        for i in range(n):
            x[i] = np.float32(fixed_sr_wrap(np.float64(x[i]), sin, sout, qlo, span, key, counter + np.uint64(i)))
    elif mode == LOG_TABLE:
        T, L = table_tuples(TL)
        for i in range(n):
            x[i] = table_value(x[i], T, L)
    elif mode == LOG_TABLE_STOCH:
        T, L = table_tuples(TL)
        smallest = P[4]
        for i in range(n):
            x[i] = table_value_stoch(x[i], T, L, smallest, key, counter + np.uint64(i))
    elif mode == LOG_BITS:
        alpha, e_min, flush = P[1], np.int64(P[2]), P[3] == 1.0
        for i in range(n):
            x[i] = np.float32(bits_value(np.float64(x[i]), alpha, e_min, flush))
    elif mode == LOG_BITS_STOCH:
        alpha, e_min, smallest = P[1], np.int64(P[2]), P[4]
        for i in range(n):
            x[i] = np.float32(bits_value_stoch(np.float64(x[i]), alpha, e_min, smallest, key,
                                               counter + np.uint64(i)))
    else:
        for i in range(n):
            x[i] = np.float32(quant_value(np.float64(x[i]), P, key, counter + np.uint64(i)))


@njit(parallel=True, cache=True)
def quantize_flat(x, P, TL, mode, key, counter):
    """x[i] = Q(x[i]) in place with counter + i (1-D float32; out-of-place callers copy first).

    ``P`` = ``format_params``, ``(mode, TL)`` = ``kernel_mode`` (``GENERAL, NO_TABLE`` is always
    valid). Parallel over chunks of ``QUANTIZE_CHUNK`` elements."""
    n = x.size
    nchunks = (n + QUANTIZE_CHUNK - 1) // QUANTIZE_CHUNK
    for t in prange(nchunks):
        lo = t * QUANTIZE_CHUNK
        quantize_span(x[lo:min(n, lo + QUANTIZE_CHUNK)], P, TL, mode, key, counter + np.uint64(lo))


@njit(cache=True)
def quantize_flat_serial(x, P, TL, mode, key, counter):
    """``quantize_flat`` on the calling thread only."""
    quantize_span(x, P, TL, mode, key, counter)


#: ``kernel_mode`` loop variants of a format on float64 values (``quantize_f64_span``), by mode:
#: the threshold tables compare float32 inputs, so their formats (<= 8 levels, e_min > -1022)
#: take the exponent-bits loops instead.
F64_MODE = (GENERAL, FIXED_NE_SAT, FIXED_SR_SAT, FIXED_SR_WRAP, LOG_BITS, LOG_BITS, LOG_BITS_STOCH, LOG_BITS_STOCH)
#: Values per block of the kernels that form exact float64 values and quantize them
#: (``fixed_scale_round``, ``add_quantize_flat``): one pass forms a block, one quantizes it; the
#: block stays in L1 and each pass is a plain loop that vectorizes.
F64_BLOCK = 1024


@register_jitable
def quantize_f64_span(v, P, mode, key, counter, out):
    """out[i] = float32(Q(v[i])) for float64 ``v`` with counter + i, in the loop variant ``mode``
    (from ``F64_MODE``); ``out`` float32 of v's size."""
    n = v.size
    if mode == FIXED_NE_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            out[i] = np.float32(fixed_ne_sat(v[i], sin, sout, qlo, qhi))
    elif mode == FIXED_SR_SAT:
        sin, sout, qlo, qhi = P[7], P[8], P[9], P[10]
        for i in range(n):
            out[i] = np.float32(fixed_sr_sat(v[i], sin, sout, qlo, qhi, key, counter + np.uint64(i)))
    elif mode == FIXED_SR_WRAP:
        sin, sout, qlo, span = P[7], P[8], P[9], P[11]
        for i in range(n):
            out[i] = np.float32(fixed_sr_wrap(v[i], sin, sout, qlo, span, key, counter + np.uint64(i)))
    elif mode == LOG_BITS:
        alpha, e_min, flush = P[1], np.int64(P[2]), P[3] == 1.0
        for i in range(n):
            out[i] = np.float32(bits_value(v[i], alpha, e_min, flush))
    elif mode == LOG_BITS_STOCH:
        alpha, e_min, smallest = P[1], np.int64(P[2]), P[4]
        for i in range(n):
            out[i] = np.float32(bits_value_stoch(v[i], alpha, e_min, smallest, key, counter + np.uint64(i)))
    else:
        for i in range(n):
            out[i] = np.float32(quant_value(v[i], P, key, counter + np.uint64(i)))


# --- stored weights -------------------------------------------------------------------------------

@register_jitable
def add_quantize_span(w, g, scale, P, mode, key, counter):
    """w[i] = float32(Q(w[i] + scale * g[i])) in place (``scale`` float32: an exact float64
    product), the sum rounded once in float64, counter + i; ``mode`` from ``F64_MODE``."""
    n = w.size
    s = np.float64(scale)
    v = np.empty(F64_BLOCK, np.float64)
    for b0 in range(0, n, F64_BLOCK):
        m = min(F64_BLOCK, n - b0)
        wb, gb = w[b0:b0 + m], g[b0:b0 + m]
        for i in range(m):
            v[i] = np.float64(wb[i]) + s * np.float64(gb[i])
        quantize_f64_span(v[:m], P, mode, key, counter + np.uint64(b0), wb)


@njit(parallel=True, cache=True)
def add_quantize_flat(w, g, scale, P, mode, key, counter):
    """``reference.add_quantize`` in place on flat float32 ``w`` (parallel over chunks)."""
    n = w.size
    nchunks = (n + QUANTIZE_CHUNK - 1) // QUANTIZE_CHUNK
    for t in prange(nchunks):
        lo = t * QUANTIZE_CHUNK
        hi = min(n, lo + QUANTIZE_CHUNK)
        add_quantize_span(w[lo:hi], g[lo:hi], scale, P, mode, key, counter + np.uint64(lo))


@njit(cache=True, nogil=True)
def add_quantize_flat_serial(w, g, scale, P, mode, key, counter):
    """``add_quantize_flat`` on the calling thread only."""
    add_quantize_span(w, g, scale, P, mode, key, counter)
