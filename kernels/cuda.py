"""Numba CUDA kernels: bit-exact twins of ``kernels.reference`` (import this module lazily).

The scalar arithmetic is the ``register_jitable`` code of ``kernels.cpu`` (``kernels.cpu.scalar``;
``acc_in``: ``kernels.cpu.products``, ``lut_value``: ``kernels.cpu.lut``), inlined here, so CPU and
GPU share one implementation. fastmath stays off (IEEE division, no flush-to-zero). NVVM
contracts a*b + c into fma by default; every such pair in the shared code multiplies by a power
of two (an exact product), or is separated by a float32 rounding, so contraction cannot change
a result.

Launch helpers take device arrays (``numba.cuda`` arrays, or anything ``cuda.as_cuda_array``
accepts, e.g. torch CUDA tensors) and run on ``stream`` (default: the default stream).
``compile_ptx_all(cc)`` compiles every kernel to PTX without a GPU (needs NVVM only).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from numba import cuda

from .cpu.lut import lut_value
from .cpu.products import acc_in
from .cpu.scalar import acc_add, fixed_code, overflow, quant_value

_THREADS = 256
_MAX_BLOCKS = 65535


def _k_quantize_flat(x, P, key, counter, out):
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    while i < x.size:
        out[i] = np.float32(quant_value(np.float64(x[i]), P, key, counter + np.uint64(i)))
        i += stride


def _k_fixed_codes(x, P, key, counter, out):
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    while i < x.size:
        k = fixed_code(np.float64(x[i]), P, key, counter + np.uint64(i))
        if k != k:
            k = 0.0
        out[i] = np.int64(k)
        i += stride


def _k_add_quantize(w, g, scale, P, key, counter):
    # scale is float32: scale * g is exact in float64, so NVVM's contraction into an fma is harmless.
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    s = np.float64(scale)
    while i < w.size:
        w[i] = np.float32(quant_value(np.float64(w[i]) + s * np.float64(g[i]), P, key, counter + np.uint64(i)))
        i += stride


def _k_lowbit_matmul(kR, kC, scale, P, key, counter, out):
    n, b = cuda.grid(2)
    B, K = kR.shape
    N = kC.shape[1]
    if b < B and n < N:
        acc = np.int64(0)
        for k in range(K):
            acc += kR[b, k] * kC[k, n]
        v = np.float64(acc) * scale
        out[b, n] = np.float32(quant_value(v, P, key, counter + np.uint64(b * N + n)))


def _k_sparse_product(R, indptr, indices, scale, out):
    r, b = cuda.grid(2)
    B = R.shape[0]
    NR = indptr.size - 1
    if b < B and r < NR:
        acc = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            acc += np.float64(R[b, indices[p]])
        out[b, r] = np.float32(acc * scale)


def _k_per_example_update(R, O, P, PA, key, counter, counter_a, out):
    j, i = cuda.grid(2)
    B, NO = R.shape
    NI = O.shape[1]
    if i < NO and j < NI:
        fixed_acc = PA[0] == 2.0
        acc = 0.0
        for b in range(B):
            flat = np.uint64((b * NO + i) * NI + j)
            q = np.float64(np.float32(quant_value(np.float64(R[b, i] * O[b, j]), P, key, counter + flat)))
            if fixed_acc:
                acc = acc_add(acc, q, PA, key, counter_a + flat)
            else:
                acc += q
        if fixed_acc:
            out[i, j] = np.float32(acc * PA[8] + 0.0)
        else:
            out[i, j] = np.float32(acc)


def _k_accumulate_fixed(X, PA, key, counter, out):
    j = cuda.grid(1)
    n, m = X.shape
    if j < m:
        acc = 0.0
        for t in range(n):
            acc = acc_add(acc, np.float64(X[t, j]), PA, key, counter + np.uint64(t * m + j))
        out[j] = np.float32(acc * PA[8] + 0.0)


# --- bit-true learning channel (twins of the sections of that name in kernels.cpu.products, .lut) -

def _k_fixed_product(R, B, PA, out):
    n, b = cuda.grid(2)
    NS = R.shape[1]
    if b < R.shape[0] and n < B.shape[1]:
        acc = 0.0
        for s in range(NS):                     # ascending senders, as the reference
            r = R[b, s]
            if r != 0:
                acc = overflow(acc + acc_in((np.float64(r) * PA[7]) * np.float64(B[s, n]), PA), PA)
        out[b, n] = np.float32(acc * PA[8] + 0.0)


def _k_fixed_sparse_product(R, indptr, indices, signs, PA, oscale, out):
    r, b = cuda.grid(2)
    NR = indptr.size - 1
    if b < R.shape[0] and r < NR:
        signed = signs.size > 0
        acc = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            k = acc_in(np.float64(R[b, indices[p]]) * PA[7], PA)
            if signed and signs[p] < 0:
                k = -k
            acc = overflow(acc + k, PA)
        out[b, r] = np.float32(acc * oscale + 0.0)


def _k_fprime_lut(o, values, lo_k, inv_span, k, out):
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    last = np.float64(values.size - 1)
    while i < o.size:
        out[i] = lut_value(o[i], values, lo_k, inv_span, k, last)
        i += stride


def _k_fixed_scale_round(J, fp, P, key, counter, out):
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    while i < J.size:
        out[i] = np.float32(quant_value(np.float64(J[i]) * np.float64(fp[i]), P, key, counter + np.uint64(i)))
        i += stride


KERNELS = {
    "quantize_flat": _k_quantize_flat,
    "fixed_codes": _k_fixed_codes,
    "lowbit_matmul": _k_lowbit_matmul,
    "sparse_product": _k_sparse_product,
    "per_example_update": _k_per_example_update,
    "accumulate_fixed": _k_accumulate_fixed,
    "add_quantize": _k_add_quantize,
    "fixed_product": _k_fixed_product,
    "fixed_sparse_product": _k_fixed_sparse_product,
    "fprime_lut": _k_fprime_lut,
    "fixed_scale_round": _k_fixed_scale_round,
}

_jitted: dict = {}


def kernel(name: str):
    """The cuda.jit dispatcher of one kernel (created on first use; compiled on first launch)."""
    if name not in _jitted:
        _jitted[name] = cuda.jit(KERNELS[name])
    return _jitted[name]


def _launch1(n: int):
    """(blocks, threads) for n elements: up to 256 threads a block (fewer for tiny n)."""
    threads = min(_THREADS, 32 * max(1, math.ceil(n / 32)))
    return max(1, min(_MAX_BLOCKS, math.ceil(n / threads))), threads


def _launch2(nx: int, ny: int):
    """(grid, block) over an (ny, nx) output, x fastest: blocks of up to 32 x 8 threads."""
    tx, ty = max(1, min(32, nx)), max(1, min(8, ny))
    return (max(1, math.ceil(nx / tx)), max(1, math.ceil(ny / ty))), (tx, ty)


# --- launchers (device arrays in, results written into device ``out``) -------------------------

def quantize_flat(x, P, key, counter, out, stream=0):
    if x.size:
        blocks, threads = _launch1(x.size)
        kernel("quantize_flat")[blocks, threads, stream](x, P, key, counter, out)


def fixed_codes(x, P, key, counter, out, stream=0):
    if x.size:
        blocks, threads = _launch1(x.size)
        kernel("fixed_codes")[blocks, threads, stream](x, P, key, counter, out)


def lowbit_matmul(kR, kC, scale, P, key, counter, out, stream=0):
    if out.size:
        grid, block = _launch2(out.shape[1], out.shape[0])
        kernel("lowbit_matmul")[grid, block, stream](kR, kC, scale, P, key, counter, out)


def sparse_product(R, indptr, indices, scale, out, stream=0):
    if out.size:
        grid, block = _launch2(out.shape[1], out.shape[0])
        kernel("sparse_product")[grid, block, stream](R, indptr, indices, scale, out)


def per_example_update(R, O, P, PA, key, counter, counter_a, out, stream=0):
    if out.size:
        grid, block = _launch2(out.shape[1], out.shape[0])
        kernel("per_example_update")[grid, block, stream](R, O, P, PA, key, counter, counter_a, out)


def add_quantize(w, g, scale, P, key, counter, stream=0):
    if w.size:
        blocks, threads = _launch1(w.size)
        kernel("add_quantize")[blocks, threads, stream](w, g, scale, P, key, counter)


def accumulate_fixed(X, PA, key, counter, out, stream=0):
    if out.size:
        blocks, threads = _launch1(out.size)
        kernel("accumulate_fixed")[blocks, threads, stream](X, PA, key, counter, out)


def fixed_product(R, B, PA, out, stream=0):
    if out.size:
        grid, block = _launch2(out.shape[1], out.shape[0])
        kernel("fixed_product")[grid, block, stream](R, B, PA, out)


def fixed_sparse_product(R, indptr, indices, signs, PA, oscale, out, stream=0):
    if out.size:
        grid, block = _launch2(out.shape[1], out.shape[0])
        kernel("fixed_sparse_product")[grid, block, stream](R, indptr, indices, signs, PA, oscale, out)


def fprime_lut(o, values, lo_k, inv_span, k, out, stream=0):
    if o.size:
        blocks, threads = _launch1(o.size)
        kernel("fprime_lut")[blocks, threads, stream](o, values, lo_k, inv_span, k, out)


def fixed_scale_round(J, fp, P, key, counter, out, stream=0):
    if J.size:
        blocks, threads = _launch1(J.size)
        kernel("fixed_scale_round")[blocks, threads, stream](J, fp, P, key, counter, out)


# --- PTX without a GPU --------------------------------------------------------------------------

def signatures() -> dict:
    """One argument signature per kernel (the types the dispatcher passes)."""
    from numba import types as t
    P = t.UniTuple(t.float64, 12)
    f1, f2 = t.float32[::1], t.float32[:, ::1]
    i1, i2 = t.int64[::1], t.int64[:, ::1]
    u = t.uint64
    return {
        "quantize_flat": (f1, P, u, u, f1),
        "fixed_codes": (f1, P, u, u, i1),
        "lowbit_matmul": (i2, i2, t.float64, P, u, u, f2),
        "sparse_product": (f2, i1, i1, t.float64, f2),
        "per_example_update": (f2, f2, P, P, u, u, u, f2),
        "accumulate_fixed": (f2, P, u, u, f1),
        "add_quantize": (f1, f1, t.float32, P, u, u),
        "fixed_product": (f2, f2, P, f2),
        "fixed_sparse_product": (f2, i1, i1, t.int8[::1], P, t.float64, f2),
        "fprime_lut": (f1, f1, t.float64, t.float64, t.float64, f1),
        "fixed_scale_round": (f1, f1, P, u, u, f1),
    }


@contextlib.contextmanager
def _assume_cc(cc):
    """Without a driver, Numba asks the (absent) current device for the compute capability when
    it compiles a device function; answer with the target ``cc`` instead (restored on exit)."""
    if cuda.is_available():
        yield
        return
    from numba.cuda import dispatcher

    class _Device:
        compute_capability = tuple(cc)

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device()
    try:
        yield
    finally:
        dispatcher.get_current_device = saved


def compile_ptx_all(cc=(8, 0)) -> dict:
    """PTX text of every kernel for compute capability ``cc`` (no GPU needed; NVVM is)."""
    sigs = signatures()
    out = {}
    with _assume_cc(cc):
        for name, fn in KERNELS.items():
            ptx, _ = cuda.compile_ptx(fn, sigs[name], cc=tuple(cc))
            out[name] = ptx
    return out
