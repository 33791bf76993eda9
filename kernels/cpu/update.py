"""The fused per-example quantized update ``out[i, j] = sum_b Q(R[b, i] * O[b, j])`` on the
general loops: every format, float or fixed accumulation (``per_example_update``; the integer-code
kernel of ``kernels.cpu.codes`` is the faster route for the formats it takes)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .params import (FIXED_NE_SAT, FIXED_SR_SAT, FIXED_SR_WRAP, GENERAL, LOG_BITS, LOG_BITS_STOCH, LOG_TABLE,
                     LOG_TABLE_STOCH)
from .scalar import (acc_add, bits_value, bits_value_stoch, fixed_ne_sat, fixed_sr_sat, fixed_sr_wrap,
                     quant_value, table_tuples, table_value, table_value_stoch)


@register_jitable
def nonzero_columns(O, use):
    """Per batch row of O: the columns with O[b, j] != 0 (NaN included) and their values.

    Only computed where ``use`` (else empty, count 0). In the log modes a zero O[b, j] makes the
    product +-0 or NaN, whose quantized value is +0, and adding +0 leaves a float64 sum that started
    at +0 unchanged (it is never -0), so those columns can be skipped."""
    B, NI = O.shape
    m = NI if use else 0
    idx = np.empty((B, m), np.int64)
    val = np.empty((B, m), np.float32)
    cnt = np.zeros(B, np.int64)
    if use:
        for b in range(B):
            k = 0
            for j in range(NI):
                o = O[b, j]
                if o != 0:
                    idx[b, k] = j
                    val[b, k] = o
                    k += 1
            cnt[b] = k
    return idx, val, cnt


@register_jitable
def update_rows(R, O, P, PA, TL, mode, key, counter, counter_a, out, i0, i1, idx, val, cnt):
    """Rows i0..i1-1 of ``per_example_update``: for each (i, j) the batch summed in order.

    In the log modes a zero ``R[b, i]`` skips the example, and a batch row of O with at most half
    its entries non-zero (``cnt``) runs over those columns only: the quantized values in a
    vectorized loop, then a scalar scatter-add in column order."""
    B, NO = R.shape
    NI = O.shape[1]
    fixed_acc = PA[0] == 2.0
    if fixed_acc:
        mode = GENERAL
    log_mode = mode >= LOG_BITS
    sin, sout, qlo, qhi, span = P[7], P[8], P[9], P[10], P[11]
    alpha, e_min, flush, smallest = P[1], np.int64(P[2]), P[3] == 1.0, P[4]
    T, L = table_tuples(TL)
    acc = np.zeros(NI, np.float64)
    tmp = np.empty(NI, np.float32)
    for i in range(i0, i1):
        acc[:] = 0.0
        for b in range(B):
            r = R[b, i]
            if log_mode and r == 0:
                continue
            base = np.uint64((b * NO + i) * NI)
            c0 = counter + base
            m = cnt[b]
            if log_mode and 2 * m <= NI:
                ib = idx[b]
                vb = val[b]
                if mode == LOG_TABLE:
                    for t in range(m):
                        tmp[t] = table_value(r * vb[t], T, L)
                elif mode == LOG_TABLE_STOCH:
                    for t in range(m):
                        tmp[t] = table_value_stoch(r * vb[t], T, L, smallest, key, c0 + np.uint64(ib[t]))
                elif mode == LOG_BITS:
                    for t in range(m):
                        tmp[t] = np.float32(bits_value(np.float64(r * vb[t]), alpha, e_min, flush))
                else:
                    for t in range(m):
                        tmp[t] = np.float32(bits_value_stoch(np.float64(r * vb[t]), alpha, e_min, smallest,
                                                             key, c0 + np.uint64(ib[t])))
                for t in range(m):
                    acc[ib[t]] += np.float64(tmp[t])
                continue
            ob = O[b]
            if mode == FIXED_NE_SAT:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_ne_sat(np.float64(r * ob[j]), sin, sout, qlo, qhi)))
            elif mode == FIXED_SR_SAT:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_sr_sat(np.float64(r * ob[j]), sin, sout, qlo, qhi,
                                                                 key, c0 + np.uint64(j))))
            elif mode == FIXED_SR_WRAP:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(fixed_sr_wrap(np.float64(r * ob[j]), sin, sout, qlo, span,
                                                                  key, c0 + np.uint64(j))))
            elif mode == LOG_TABLE:
                for j in range(NI):
                    acc[j] += np.float64(table_value(r * ob[j], T, L))
            elif mode == LOG_TABLE_STOCH:
                for j in range(NI):
                    acc[j] += np.float64(table_value_stoch(r * ob[j], T, L, smallest, key, c0 + np.uint64(j)))
            elif mode == LOG_BITS:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(bits_value(np.float64(r * ob[j]), alpha, e_min, flush)))
            elif mode == LOG_BITS_STOCH:
                for j in range(NI):
                    acc[j] += np.float64(np.float32(bits_value_stoch(np.float64(r * ob[j]), alpha, e_min,
                                                                     smallest, key, c0 + np.uint64(j))))
            else:
                ca = counter_a + base
                for j in range(NI):
                    q = np.float64(np.float32(quant_value(np.float64(r * ob[j]), P, key, c0 + np.uint64(j))))
                    if fixed_acc:
                        acc[j] = acc_add(acc[j], q, PA, key, ca + np.uint64(j))
                    else:
                        acc[j] += q
        if fixed_acc:
            for j in range(NI):
                out[i, j] = np.float32(acc[j] * PA[8] + 0.0)
        else:
            for j in range(NI):
                out[i, j] = np.float32(acc[j])


@njit(parallel=True, cache=True)
def per_example_update(R, O, P, PA, TL, mode, key, counter, counter_a, out):
    """Fused ``out[i, j] = sum_b Q(R[b, i] * O[b, j])`` without the (batch, out, in) tensor.

    One output row per parallel task; the batch is summed in order for every (i, j), so the
    result equals ``reference.per_example_update`` bit for bit. PA[0] == 2: fixed accumulator
    (then the general loop). ``(mode, TL)`` from ``kernel_mode`` of the update format: with float
    accumulation, fixed nearest-even/saturate, fixed stochastic rounding and the log formats run
    branch-free inner loops (SIMD), stochastic underflow included; everything else the general one.
    """
    NO = R.shape[1]
    idx, val, cnt = nonzero_columns(O, mode >= LOG_BITS and PA[0] != 2.0)
    for i in prange(NO):
        update_rows(R, O, P, PA, TL, mode, key, counter, counter_a, out, i, i + 1, idx, val, cnt)


@njit(cache=True)
def per_example_update_serial(R, O, P, PA, TL, mode, key, counter, counter_a, out):
    """``per_example_update`` on the calling thread only."""
    idx, val, cnt = nonzero_columns(O, mode >= LOG_BITS and PA[0] != 2.0)
    update_rows(R, O, P, PA, TL, mode, key, counter, counter_a, out, 0, R.shape[1], idx, val, cnt)
