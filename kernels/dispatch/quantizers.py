"""Quantizers: ``quantize_`` (in place), ``quantize`` (out of place) and the stored weights'
``add_quantize_`` (``w = Q(w + scale * g)``, one rounding), on every backend."""
from __future__ import annotations

import numpy as np

from .. import reference
from .backends import _Dev, _backend, _c, _check_float32_out, _cpu, _host, _is_cuda, _serial_flat, _wrap_like
from .prepared import _keys, _params, _prep, _seed_key, _u64
from .views import _cpu_flat, _fast_cpu


def _quantize_numba(flat: np.ndarray, fmt, seed, counter, prepared=None) -> None:
    """Numba quantization of a flat C-contiguous float32 array, in place."""
    cpu = _cpu()
    P, mode, table = _prep(fmt) if prepared is None else prepared
    kern = cpu.quantize_flat_serial if _serial_flat(flat.size) else cpu.quantize_flat
    kern(flat, P, table, mode, _seed_key(seed), _u64(counter))


# --- quantizers ---------------------------------------------------------------------------------

def quantize_(t, fmt, *, seed: int = 0, counter: int = 0, backend: str = "numpy"):
    """Quantize a float32 tensor (or array) in place to ``fmt``'s grid; returns ``t``.

    Element ``i`` (flat, C order) uses the RNG counter ``counter + i``.
    """
    if backend == "auto" or backend == "numba":    # fast path: contiguous float32 on the CPU
        flat = _cpu_flat(t)
        if flat is not None:
            prepared = _prep(fmt)
            if prepared[0][0] != 0.0:              # KIND 0: Float32, nothing to do
                _quantize_numba(flat, fmt, seed, counter, prepared)
            return t
    be = _backend(backend, t)
    if getattr(fmt, "kind", None) == "float":
        return t
    if be == "cuda":
        return _quantize_cuda(t, fmt, seed, counter, out=t)
    view = _host(t, "quantize_ tensor", strict=True)
    if be == "numpy":
        np.copyto(view, reference.quantize(view, fmt, seed=seed, counter=counter))
        return t
    if view.flags.c_contiguous:
        flat = view.reshape(-1)
        _quantize_numba(flat, fmt, seed, counter)
    else:
        tmp = _c(view).reshape(-1)
        _quantize_numba(tmp, fmt, seed, counter)
        np.copyto(view, tmp.reshape(view.shape))
    return t


def quantize(x, fmt, *, seed: int = 0, counter: int = 0, out=None, backend: str = "numpy"):
    """Out-of-place quantization of float32 ``x`` (``out`` may be given, even ``x`` itself)."""
    be = _backend(backend, x, out)
    _check_float32_out(out, x.shape, "quantize")
    if be == "cuda":
        return _quantize_cuda(x, fmt, seed, counter, out=out)
    xv = _host(x, "quantize x")
    if be == "numpy":
        return _wrap_like(reference.quantize(xv, fmt, seed=seed, counter=counter), x, out)
    res = np.array(xv, dtype=np.float32, order="C")      # a copy, quantized in place
    _quantize_numba(res.reshape(-1), fmt, seed, counter)
    return _wrap_like(res, x, out)


def _quantize_cuda(x, fmt, seed, counter, out):
    d = _Dev()
    key, c = _keys(seed, counter)
    dx = d.arr(x, "quantize x")
    n = dx.size
    if _is_cuda(out) and out.is_contiguous():      # write straight into the output tensor
        res, dres = out, d.cuda.as_cuda_array(out.detach())
    else:
        res, dres = d.empty(tuple(dx.shape))
    if n:
        d.ck.quantize_flat(dx.reshape(n), _params(fmt), key, c, dres.reshape(n), d.stream)
    if res is out:
        return out
    return d.finish(res, x, out)


# --- 6: stored weights ----------------------------------------------------------------------------

def add_quantize_(w, g, scale: float, fmt, *, seed: int = 0, counter: int = 0, backend: str = "numpy"):
    """A stored weight update in place: ``w = Q(w + scale * g)`` (``reference.add_quantize``: the
    sum exact, one rounding into ``fmt``'s grid); ``w``, ``g`` float32 of one shape; returns ``w``."""
    if tuple(w.shape) != tuple(g.shape):
        raise ValueError(f"add_quantize_: w has shape {tuple(w.shape)} and g {tuple(g.shape)}; they must match")
    if backend == "numba" or backend == "auto":    # fast path: contiguous float32 on the CPU
        flats = _fast_cpu((w, g), None)
        if flats is not None:
            _add_quantize_numba(flats[0], flats[1], scale, fmt, seed, counter)
            return w
    be = _backend(backend, w, g)
    key, c0 = _keys(seed, counter)
    if be == "cuda":
        d = _Dev()
        dw, dg = d.arr(w, "w"), d.arr(g, "g")
        d.ck.add_quantize(dw.reshape(-1), dg.reshape(-1), np.float32(scale), _params(fmt), key, c0, d.stream)
        if not _is_cuda(w):
            np.copyto(_host(w, "add_quantize_ w", strict=True), d.host(dw))
        return w
    wv = _host(w, "add_quantize_ w", strict=True)
    gv = _host(g, "add_quantize_ g")
    if be == "numpy":
        np.copyto(wv, reference.add_quantize(wv, gv, scale, fmt, seed=seed, counter=counter))
        return w
    flat = wv.reshape(-1) if wv.flags.c_contiguous else None
    target = flat if flat is not None else _c(wv).reshape(-1)
    _add_quantize_numba(target, _c(gv).reshape(-1), scale, fmt, seed, counter)
    if flat is None:
        np.copyto(wv, target.reshape(wv.shape))
    return w


def _add_quantize_numba(w: np.ndarray, g: np.ndarray, scale, fmt, seed, counter) -> None:
    """``kernels.cpu.add_quantize_flat`` (serial twin for small arrays or one thread) on flat
    C-contiguous float32 ``w`` (in place) and ``g``, in the format's float64 loop variant."""
    cpu = _cpu()
    P, mode, _ = _prep(fmt)
    kern = cpu.add_quantize_flat_serial if _serial_flat(w.size) else cpu.add_quantize_flat
    kern(w, g, np.float32(scale), P, cpu.F64_MODE[mode], _seed_key(seed), _u64(counter))
