"""The Numba fast paths' operands: flat NumPy views of contiguous float32 CPU arrays and torch
tensors (cached by identity for small tensors, ``_cpu_flat``), and how their results return."""
from __future__ import annotations

import sys

import numpy as np

from .backends import _c, _host, _torch, _wrap_like

#: Flat NumPy views of small CPU tensors, by identity: the training loop hands the same buffers to
#: the kernels every minibatch, and making the view (``t.numpy().reshape(-1)``) costs ~4 us, as much
#: as the kernel on a 100 x 100 minibatch. An entry is used only while the tensor still has the
#: same storage pointer, size and layout; only tensors up to ``FLAT_CACHE_MAX`` elements are kept
#: (at most ``FLAT_CACHE_ENTRIES``), so the cache never holds much memory alive.
FLAT_CACHE_MAX = 1 << 16
FLAT_CACHE_ENTRIES = 256
_FLAT_BY_ID: dict = {}


def _cpu_flat(t):
    """A flat float32 view of a C-contiguous CPU array / plain torch tensor, else None (slow path)."""
    tp = type(t)
    if tp is np.ndarray:
        if t.dtype == np.float32 and t.flags.c_contiguous and t.flags.writeable:
            return t.reshape(-1)
        return None
    torch = sys.modules.get("torch")
    if torch is None or tp is not torch.Tensor:
        return None
    hit = _FLAT_BY_ID.get(id(t))
    if hit is not None and hit[0] is t and hit[1] == t.data_ptr() and hit[2] == t.numel() \
            and t.is_contiguous() and not t.requires_grad:
        return hit[3]
    if t.is_cuda or t.dtype is not torch.float32 or t.requires_grad or not t.is_contiguous():
        return None
    flat = t.numpy().reshape(-1)
    if flat.size <= FLAT_CACHE_MAX:
        if len(_FLAT_BY_ID) >= FLAT_CACHE_ENTRIES:
            _FLAT_BY_ID.clear()
        _FLAT_BY_ID[id(t)] = (t, t.data_ptr(), flat.size, flat)
    return flat


def _cpu_in(a, name: str) -> np.ndarray:
    """A C-contiguous float32 NumPy view (or copy) of a CPU input, of its own shape."""
    flat = _cpu_flat(a)
    if flat is not None:
        return flat.reshape(tuple(a.shape))
    return _c(_host(a, name))


def _cpu_out(out, shape):
    """``(array the kernel writes, direct)``: a contiguous CPU ``out`` itself (direct), else a new array."""
    if out is not None:
        flat = _cpu_flat(out)
        if flat is not None:
            return flat.reshape(shape), True
    return np.empty(shape, np.float32), False


def _deliver(res, direct: bool, like, out):
    return out if direct else _wrap_like(res, like, out)


def _fast_cpu(arrays, out):
    """Flat float32 views of contiguous CPU operands and of ``out`` (or None), for the Numba fast
    paths; None when any is missing (a CUDA tensor, another dtype, a strided view...), and then
    the general path, which also reports bad input."""
    flats = []
    for a in arrays:
        f = _cpu_flat(a)
        if f is None:
            return None
        flats.append(f)
    if out is not None:
        f = _cpu_flat(out)
        if f is None:
            return None
        flats.append(f)
    return flats


def _result(res, like, out):
    """The fast paths' return: ``out`` when it was written directly, else ``res`` as ``like``'s kind."""
    if out is not None:
        return out
    return res if type(like) is np.ndarray else _torch().from_numpy(res)
