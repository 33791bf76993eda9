"""The bit-true channel's error path after the product: f' by table lookup (``fprime_lut``) and
scale-and-round (``fixed_scale_round``: ``Q_out(J * fp)``, the product exact, rounded once)."""
from __future__ import annotations

import numpy as np

from .. import reference
from .backends import SERIAL_MAX_QUANTIZE, _Dev, _backend, _check_float32_out, _cpu, _host, _serial_flat, _wrap_like
from .prepared import _keys, _params, _prep, _seed_key, _u64, _validated
from .views import _cpu_in, _cpu_out, _deliver, _fast_cpu, _result


def _table_operands(table):
    """``(values float32 contiguous, (lo_k, inv_span, k))`` of an f' table, checked once per table."""
    def make():
        reference.check_fprime_table(table)
        return np.ascontiguousarray(table.values, dtype=np.float32), table.index_params()
    return _validated(table, None, None, make)


def fprime_lut(o, table, *, out=None, backend: str = "numpy"):
    """f'(S) from the forward output ``o`` by lookup in ``table`` (``fprime_table``): the bin of
    o among the table's uniform bins over [lo, hi], found exactly (``reference.fprime_index``),
    o outside clamped to the end bins; NaN for NaN. float32, o's shape. The table is checked once
    per object (``_validated``)."""
    if backend == "numba" or backend == "auto":
        flats = _fast_cpu((o,), out)
        if flats is not None and (out is None or out.shape == o.shape):
            values, index = _table_operands(table)
            res = flats[1] if out is not None else np.empty(flats[0].size, np.float32)
            _lut_numba(flats[0], values, index, res)
            return _result(res if out is not None else res.reshape(tuple(o.shape)), o, out)
    be = _backend(backend, o, out)
    values, index = _table_operands(table)
    shape = tuple(o.shape)
    _check_float32_out(out, shape, "fprime_lut")
    n = int(np.prod(shape))
    if be == "cuda":
        d = _Dev()
        do = d.arr(o, "o")
        res, dres = d.empty(shape)
        if n:
            d.ck.fprime_lut(do.reshape(n), d.cuda.to_device(values), *index, dres.reshape(n), d.stream)
        return d.finish(res, o, out)
    if be == "numpy":
        return _wrap_like(reference.fprime_lut(_host(o, "o"), table), o, out)
    res, direct = _cpu_out(out, shape)
    _lut_numba(_cpu_in(o, "o").reshape(-1), values, index, res.reshape(-1))
    return _deliver(res, direct, o, out)


def _lut_numba(o, values, index, res) -> None:
    cpu = _cpu()
    (cpu.fprime_lut_span if o.size < SERIAL_MAX_QUANTIZE else cpu.fprime_lut_flat)(o, values, *index, res)


def fixed_scale_round(J, fp, out_fmt, *, seed: int = 0, counter: int = 0, out=None, backend: str = "numpy"):
    """``Q_out(J * fp)``: the received signal times f', each product exact in float64 and rounded
    once to ``out_fmt`` with its rounding (stochastic: element i, flat C order, uses counter
    ``counter + i``); Float32 / None gives the float32 product. ``out`` may be J itself."""
    if backend == "numba" or backend == "auto":
        flats = _fast_cpu((J, fp), out)
        if flats is not None and J.shape == fp.shape and (out is None or out.shape == J.shape):
            res = flats[2] if out is not None else np.empty(flats[0].size, np.float32)
            _scale_round_numba(flats[0], flats[1], out_fmt, seed, counter, res)
            return _result(res if out is not None else res.reshape(tuple(J.shape)), J, out)
    be = _backend(backend, J, fp, out)
    _same_shape(J, fp, "fixed_scale_round")
    shape = tuple(J.shape)
    _check_float32_out(out, shape, "fixed_scale_round")
    n = int(np.prod(shape))
    if be == "cuda":
        d = _Dev()
        key, c0 = _keys(seed, counter)
        dJ, dfp = d.arr(J, "J"), d.arr(fp, "fp")
        res, dres = d.empty(shape)
        if n:
            d.ck.fixed_scale_round(dJ.reshape(n), dfp.reshape(n), _params(out_fmt), key, c0, dres.reshape(n), d.stream)
        return d.finish(res, J, out)
    if be == "numpy":
        return _wrap_like(reference.fixed_scale_round(_host(J, "J"), _host(fp, "fp"), out_fmt, seed=seed,
                                                      counter=counter), J, out)
    res, direct = _cpu_out(out, shape)
    _scale_round_numba(_cpu_in(J, "J").reshape(-1), _cpu_in(fp, "fp").reshape(-1), out_fmt, seed, counter,
                       res.reshape(-1))
    return _deliver(res, direct, J, out)


def _scale_round_numba(J, fp, out_fmt, seed, counter, res) -> None:
    P, mode, _ = _prep(out_fmt)
    cpu = _cpu()
    kern = cpu.fixed_scale_round_serial if _serial_flat(J.size) else cpu.fixed_scale_round
    kern(J, fp, P, cpu.F64_MODE[mode], _seed_key(seed), _u64(counter), res)


def _same_shape(a, b, what: str, names=("J", "fp")) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{what}: {names[0]} has shape {tuple(a.shape)} and {names[1]} {tuple(b.shape)}; "
                         f"they must match")
