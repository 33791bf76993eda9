"""Dense products and accumulation in fixed point: ``lowbit_dense_product`` (exact int64
accumulation of fixed codes), ``accumulate_fixed`` and the bit-true channel's ``fixed_product``
(the accumulator saturating or wrapping at every add)."""
from __future__ import annotations

import numpy as np

from .. import reference
from .backends import SERIAL_MAX_PRODUCT, _Dev, _backend, _c, _check_float32_out, _cpu, _host, _one_thread, _wrap_like
from .prepared import _acc_params, _keys, _params
from .views import _cpu_in, _cpu_out, _deliver, _fast_cpu, _result


# --- 3: dense low-bit product -------------------------------------------------------------------

def _fits_int64(K: int, r_fmt, c_fmt) -> bool:
    """Whether no data in these formats can overflow the int64 accumulator (then skip the data check)."""
    def big(f):
        return max(-f.int_min, f.int_max)
    return K * big(r_fmt) * big(c_fmt) < reference.INT64_LIMIT


def lowbit_dense_product(R, C, r_fmt, c_fmt, *, out_fmt=None, seed: int = 0, counter: int = 0,
                         out=None, backend: str = "numpy"):
    """``J = R @ C`` with R, C in fixed point and exact int64 accumulation (see
    ``reference.lowbit_dense_product`` for the counters and the overflow bound)."""
    be = _backend(backend, R, C, out)
    reference.check_product_shapes(tuple(R.shape), tuple(C.shape), None if out is None else tuple(out.shape))
    reference.require_fixed(r_fmt, "lowbit_dense_product r_fmt")
    reference.require_fixed(c_fmt, "lowbit_dense_product c_fmt")
    shape = (R.shape[0], C.shape[1])
    _check_float32_out(out, shape, "lowbit_dense_product")
    n_r = int(np.prod(R.shape))
    n_c = int(np.prod(C.shape))
    scale = 2.0 ** -(r_fmt.frac + c_fmt.frac)
    key, c0 = _keys(seed, counter)
    cpu = _cpu()
    c_c, c_out = cpu.u64(counter + n_r), cpu.u64(counter + n_r + n_c)
    P_out = _params(out_fmt)
    if be == "cuda":
        d = _Dev()
        dR, dC = d.arr(R, "R"), d.arr(C, "C")
        kR = d.cuda.device_array(tuple(R.shape), np.int64)
        kC = d.cuda.device_array(tuple(C.shape), np.int64)
        if n_r:
            d.ck.fixed_codes(dR.reshape(n_r), _params(r_fmt), key, c0, kR.reshape(n_r), d.stream)
        if n_c:
            d.ck.fixed_codes(dC.reshape(n_c), _params(c_fmt), key, c_c, kC.reshape(n_c), d.stream)
        if not _fits_int64(R.shape[1], r_fmt, c_fmt):
            max_r = int(np.abs(d.host(kR)).max()) if n_r else 0
            max_c = int(np.abs(d.host(kC)).max()) if n_c else 0
            reference.check_int64_bound(R.shape[1], max_r, max_c)
        res, dres = d.empty(shape)
        d.ck.lowbit_matmul(kR, kC, scale, P_out, key, c_out, dres, d.stream)
        return d.finish(res, R, out)
    Rv, Cv = _host(R, "R"), _host(C, "C")
    if be == "numpy":
        return _wrap_like(reference.lowbit_dense_product(Rv, Cv, r_fmt, c_fmt, out_fmt=out_fmt, seed=seed,
                                                         counter=counter), R, out)
    kR = np.empty(Rv.shape, np.int64)
    kC = np.empty(Cv.shape, np.int64)
    cpu.fixed_codes(_c(Rv).reshape(-1), _params(r_fmt), key, c0, kR.reshape(-1))
    cpu.fixed_codes(_c(Cv).reshape(-1), _params(c_fmt), key, c_c, kC.reshape(-1))
    if not _fits_int64(Rv.shape[1], r_fmt, c_fmt):
        max_r = int(np.abs(kR).max()) if kR.size else 0
        max_c = int(np.abs(kC).max()) if kC.size else 0
        reference.check_int64_bound(Rv.shape[1], max_r, max_c)
    res = np.empty(shape, np.float32)
    cpu.lowbit_matmul(kR, kC, scale, P_out, key, c_out, res)
    return _wrap_like(res, R, out)


# --- 5: saturating fixed-point accumulation -----------------------------------------------------

def accumulate_fixed(X, fmt, *, seed: int = 0, counter: int = 0, out=None, backend: str = "numpy"):
    """Sum float32 ``X`` (n, ...) over axis 0 in FixedPoint ``fmt``, saturating at every add."""
    be = _backend(backend, X, out)
    reference.require_fixed(fmt, "accumulate_fixed format")
    if len(X.shape) < 1:
        raise ValueError(f"accumulate_fixed: X must have at least 1 dimension; got shape {tuple(X.shape)}")
    shape = tuple(X.shape[1:])
    _check_float32_out(out, shape, "accumulate_fixed")
    n = X.shape[0]
    m = int(np.prod(shape))
    key, c0 = _keys(seed, counter)
    if be == "cuda":
        d = _Dev()
        dX = d.arr(X, "X")
        res, dres = d.empty(shape)
        d.ck.accumulate_fixed(dX.reshape(n, m), _params(fmt), key, c0, dres.reshape(m) if m else dres, d.stream)
        return d.finish(res, X, out)
    Xv = _host(X, "X")
    if be == "numpy":
        return _wrap_like(reference.accumulate_fixed(Xv, fmt, seed=seed, counter=counter), X, out)
    res = np.empty(m, np.float32)
    _cpu().accumulate_fixed(_c(Xv).reshape(n, m), _params(fmt), key, c0, res)
    return _wrap_like(res.reshape(shape), X, out)


def fixed_product(R, B, acc, *, out=None, backend: str = "numpy"):
    """``J = R @ B`` in the fixed-point accumulator ``acc`` (FixedPoint, saturate or wrap), the
    code saturated (wrapped) after every add, senders s = 0..S-1 in ascending order; float32
    ``code * 2^-frac`` of shape (batch, N) (exact for word <= 24).

    R (batch, S) and B (S, N) are float32 values on grids; each product is exact in float64 and
    enters as its accumulator code, rounded half to even if it is finer than the LSB (never, once
    ``check_accumulator_holds`` passed); zero R[b, s] are skipped. See ``reference.fixed_product``.
    ``out`` (float32, (batch, N)) must not share memory with R or B.
    """
    if backend == "numba" or backend == "auto":
        flats = _fast_cpu((R, B), out)
        if flats is not None:
            r_shape, b_shape = R.shape, B.shape
            shape = (r_shape[0], b_shape[1]) if len(r_shape) == 2 == len(b_shape) else None
            if shape is not None and r_shape[1] == b_shape[0] and (out is None or out.shape == shape):
                res = flats[2].reshape(shape) if out is not None else np.empty(shape, np.float32)
                _fixed_product_numba(flats[0].reshape(r_shape), flats[1].reshape(b_shape),
                                     _acc_params(acc, "fixed_product"), res)
                return _result(res, R, out)
    be = _backend(backend, R, B, out)
    r_shape, b_shape = tuple(R.shape), tuple(B.shape)
    reference.check_product_shapes(r_shape, b_shape, None if out is None else tuple(out.shape), what="fixed_product")
    PA = _acc_params(acc, "fixed_product")
    shape = (r_shape[0], b_shape[1])
    _check_float32_out(out, shape, "fixed_product")
    if be == "cuda":
        d = _Dev()
        dR, dB = d.arr(R, "R"), d.arr(B, "B")
        res, dres = d.empty(shape)
        d.ck.fixed_product(dR, dB, PA, dres, d.stream)
        return d.finish(res, R, out)
    if be == "numpy":
        return _wrap_like(reference.fixed_product(_host(R, "R"), _host(B, "B"), acc), R, out)
    res, direct = _cpu_out(out, shape)
    _fixed_product_numba(_cpu_in(R, "R"), _cpu_in(B, "B"), PA, res)
    return _deliver(res, direct, R, out)


def _fixed_product_numba(R, B, PA, res) -> None:
    cpu = _cpu()
    serial = R.shape[0] * R.shape[1] * B.shape[1] < SERIAL_MAX_PRODUCT or R.shape[0] < 2 or _one_thread()
    (cpu.fixed_product_serial if serial else cpu.fixed_product)(R, B, PA, res)
