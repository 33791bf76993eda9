"""The forward activation on the CPU: ``tanh_`` and ``tanh_fprime_mul_`` in place (NumPy or Numba,
the same bits)."""
from __future__ import annotations

import threading

import numpy as np

from .. import reference
from .backends import _cpu, _host
from .views import _cpu_flat


# --- forward activation --------------------------------------------------------------------------

#: Below this many elements the activation kernels run on the calling thread only; so do calls
#: from any thread but the main one (Numba's workqueue layer, its fallback where no OpenMP or TBB
#: is found, cannot run two parallel kernels at once, and the split minibatch calls from two threads).
SERIAL_MAX_ACTIVATION = 1 << 16
_MAIN_THREAD = threading.main_thread().ident


def _serial_activation(size: int) -> bool:
    return size < SERIAL_MAX_ACTIVATION or threading.get_ident() != _MAIN_THREAD


_ACTIVATION_BACKENDS = ("numpy", "numba", "auto")


def _activation_backend(backend: str) -> str:
    if backend not in _ACTIVATION_BACKENDS:
        raise ValueError(f"activation kernel backend: got {backend!r}; allowed: {', '.join(_ACTIVATION_BACKENDS)}")
    return "numpy" if backend == "numpy" else "numba"


def tanh_(t, *, backend: str = "numba"):
    """tanh in place on a float32 CPU tensor or array: ``reference.tanh``'s float32 rational
    function, the same bits on every backend (within 3.5e-7 of the exact tanh); returns ``t``.

    One pass over the data, against three torch ops (2 sigmoid(2x) - 1) or torch's slower tanh."""
    be = _activation_backend(backend)
    flat = _cpu_flat(t) if be == "numba" else None
    if flat is None:          # the NumPy twin (same bits): non-contiguous or read-only input
        view = _host(t, "tanh_ tensor", strict=True)
        np.copyto(view, reference.tanh(view))
        return t
    cpu = _cpu()
    (cpu.tanh_span if _serial_activation(flat.size) else cpu.tanh_flat)(flat)
    return t


def tanh_fprime_mul_(r, o, *, backend: str = "numba"):
    """``r *= tanh'(S)`` in place from the layer's output ``o = tanh(S)``: r - (r o) o with two
    float32 roundings (``reference.tanh_fprime_mul``), one pass; returns ``r``."""
    be = _activation_backend(backend)
    rf = _cpu_flat(r) if be == "numba" else None
    of = _cpu_flat(o) if rf is not None else None
    if of is not None and r.shape == o.shape:
        cpu = _cpu()
        (cpu.tanh_fprime_mul_span if _serial_activation(rf.size) else cpu.tanh_fprime_mul_flat)(rf, of)
        return r
    if tuple(r.shape) != tuple(o.shape):
        raise ValueError(f"tanh_fprime_mul_: r has shape {tuple(r.shape)} and o {tuple(o.shape)}; they must match")
    view = _host(r, "tanh_fprime_mul_ r", strict=True)      # the NumPy twin (same bits)
    np.copyto(view, reference.tanh_fprime_mul(view, _host(o, "tanh_fprime_mul_ o")))
    return r
