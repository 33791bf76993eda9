"""The forward activation: ``reference.tanh``'s float32 rational function and the error's
``r * tanh'(S)`` from the layer's output, in place, serial spans and parallel twins."""
from __future__ import annotations

from numba import njit, prange

from ..reference import TANH_CLAMP, TANH_P, TANH_Q


# --- forward activation (twins of reference.tanh and reference.tanh_fprime_mul) -----------------
# error_model="numpy": a float division by zero gives inf/NaN instead of raising, which is what
# lets LLVM vectorize the division (8 float32 lanes); no fastmath, so no FMA contraction and the
# bits stay the reference's. The serial spans release the GIL (the split minibatch runs two at once).

_TC = TANH_CLAMP
_TP0, _TP1, _TP2, _TP3, _TP4, _TP5, _TP6 = TANH_P
_TQ0, _TQ1, _TQ2, _TQ3 = TANH_Q
ACTIVATION_CHUNK = 1 << 14


@njit(cache=True, nogil=True, error_model="numpy")
def tanh_span(x):
    """x[i] = tanh(x[i]) in place (1-D float32), reference.tanh's arithmetic."""
    for i in range(x.shape[0]):
        v = x[i]
        c = _TC if v > _TC else v          # NaN compares false: kept, and propagates
        c = -_TC if c < -_TC else c
        x2 = c * c
        p = _TP0 * x2 + _TP1
        p = p * x2 + _TP2
        p = p * x2 + _TP3
        p = p * x2 + _TP4
        p = p * x2 + _TP5
        p = p * x2 + _TP6
        q = _TQ0 * x2 + _TQ1
        q = q * x2 + _TQ2
        q = q * x2 + _TQ3
        x[i] = (c * p) / q


@njit(parallel=True, cache=True, error_model="numpy")
def tanh_flat(x):
    """``tanh_span`` in parallel over chunks of ``ACTIVATION_CHUNK`` elements."""
    n = x.size
    for t in prange((n + ACTIVATION_CHUNK - 1) // ACTIVATION_CHUNK):
        lo = t * ACTIVATION_CHUNK
        tanh_span(x[lo:min(n, lo + ACTIVATION_CHUNK)])


@njit(cache=True, nogil=True)
def tanh_fprime_mul_span(r, o):
    """r[i] = r[i] - (r[i] o[i]) o[i] in place (1-D float32): r times tanh'(S) from o = tanh(S)."""
    for i in range(r.shape[0]):
        ri = r[i]
        oi = o[i]
        r[i] = ri - (ri * oi) * oi


@njit(parallel=True, cache=True)
def tanh_fprime_mul_flat(r, o):
    """``tanh_fprime_mul_span`` in parallel over chunks of ``ACTIVATION_CHUNK`` elements."""
    n = r.size
    for t in prange((n + ACTIVATION_CHUNK - 1) // ACTIVATION_CHUNK):
        lo = t * ACTIVATION_CHUNK
        hi = min(n, lo + ACTIVATION_CHUNK)
        tanh_fprime_mul_span(r[lo:hi], o[lo:hi])
