"""The bit-true channel's error path after the product: f' by table lookup over the forward output
(``fprime_lut_flat``, ``lut_value`` shared with ``kernels.cuda``) and scale-and-round, ``Q(J * f')``
with the product exact in float64 and rounded once (``fixed_scale_round``)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from .activation import ACTIVATION_CHUNK
from .quantize import F64_BLOCK, QUANTIZE_CHUNK, quantize_f64_span
from .scalar import ffloor


# --- bit-true learning channel: f' table, scale and round ----------------------------------------
# Twins of ``kernels.reference.lut`` (see there for the arithmetic). Each kernel has
# a parallel version and a serial twin for small calls; both run the same ``register_jitable`` loops.

@register_jitable
def lut_value(o, values, lo_k, inv_span, k, last):
    """f' of one float32 forward output from the table ``values``: bin floor((floor(o * k) - lo_k)
    * inv_span), exact (``reference.fprime_index``), clamped to 0..last (``last`` = k - 1, float64);
    NaN for NaN. ``(lo_k, inv_span, k)`` = ``FprimeTable.index_params()``."""
    if o != o:
        return np.float32(np.nan)
    t = ffloor((ffloor(np.float64(o) * k) - lo_k) * inv_span)
    t = 0.0 if t < 0.0 else t
    t = last if t > last else t
    return values[np.int64(t)]


@njit(cache=True, nogil=True)
def fprime_lut_span(o, values, lo_k, inv_span, k, out):
    """out[i] = table f' of o[i] (1-D float32)."""
    last = np.float64(values.size - 1)
    for i in range(o.size):
        out[i] = lut_value(o[i], values, lo_k, inv_span, k, last)


@njit(parallel=True, cache=True)
def fprime_lut_flat(o, values, lo_k, inv_span, k, out):
    """``fprime_lut_span`` in parallel over chunks of ``ACTIVATION_CHUNK`` elements."""
    n = o.size
    for t in prange((n + ACTIVATION_CHUNK - 1) // ACTIVATION_CHUNK):
        lo = t * ACTIVATION_CHUNK
        hi = min(n, lo + ACTIVATION_CHUNK)
        fprime_lut_span(o[lo:hi], values, lo_k, inv_span, k, out[lo:hi])


@register_jitable
def scale_round_span(J, fp, P, mode, key, counter, out):
    """out[i] = float32(Q(float64(J[i]) * float64(fp[i]))) with counter + i; ``mode`` from
    ``F64_MODE`` (out may be J itself: a block is read whole before it is written)."""
    n = J.size
    v = np.empty(F64_BLOCK, np.float64)
    for b0 in range(0, n, F64_BLOCK):
        m = min(F64_BLOCK, n - b0)
        Jb, fb = J[b0:b0 + m], fp[b0:b0 + m]
        for i in range(m):
            v[i] = np.float64(Jb[i]) * np.float64(fb[i])
        quantize_f64_span(v[:m], P, mode, key, counter + np.uint64(b0), out[b0:b0 + m])


@njit(cache=True, nogil=True)
def fixed_scale_round_serial(J, fp, P, mode, key, counter, out):
    """``scale_round_span`` on the calling thread (1-D float32 arrays)."""
    scale_round_span(J, fp, P, mode, key, counter, out)


@njit(parallel=True, cache=True)
def fixed_scale_round(J, fp, P, mode, key, counter, out):
    """``scale_round_span`` in parallel over chunks of ``QUANTIZE_CHUNK`` elements."""
    n = J.size
    for t in prange((n + QUANTIZE_CHUNK - 1) // QUANTIZE_CHUNK):
        lo = t * QUANTIZE_CHUNK
        hi = min(n, lo + QUANTIZE_CHUNK)
        scale_round_span(J[lo:hi], fp[lo:hi], P, mode, key, counter + np.uint64(lo), out[lo:hi])
