"""The fused per-example quantized update ``per_example_update``: the exact integer-code kernel
(``kernels.cpu.update_codes``) where the format, accumulator, batch size and data allow it, else
the general kernel (``kernels.cpu.per_example_update``); both return the reference's bits."""
from __future__ import annotations

import functools
import sys

import numpy as np

from .. import reference
from .backends import _Dev, _backend, _c, _check_float32_out, _cpu, _host, _is_tensor, _one_thread, _wrap_like
from .prepared import _by_identity, _keys, _params, _prep, _seed_key, _u64

#: Below this many products (batch x out x in) the per-example update runs the kernels' serial twins:
#: starting the thread pool costs more than it saves there.
SERIAL_MAX_UPDATE = 1 << 16


@functools.lru_cache(maxsize=256)
def _code_plan_of(fmt):
    return _cpu().code_plan(fmt)


_PLAN_BY_ID: dict = {}                             # id(fmt) -> (fmt, code plan or None)


def _code_plan(fmt):
    """``kernels.cpu.code_plan(fmt)`` computed once per format: the per-example update's code-sum
    kernel plan, or None."""
    return _by_identity(_PLAN_BY_ID, _code_plan_of, fmt)


# --- 4: fused per-example quantized update ------------------------------------------------------

def _run_update_codes(R, O, plan, key, counter, out) -> bool:
    """The exact code-sum kernel (``kernels.cpu.update_codes``) where the plan allows it: a
    ``code_plan`` format, float accumulation, ``batch * max|code| <= 2^24`` and finite R and O
    (the kernel says False otherwise, and leaves ``out`` alone)."""
    cpu = _cpu()
    if plan is None or R.shape[0] * plan[cpu.C_MAXCODE] > cpu.CODE_SUM_LIMIT:
        return False
    if _serial_update(R.shape[0], R.shape[1], O.shape[1]):
        return cpu.update_codes_serial(R, O, plan, key, counter, out, 1)
    return cpu.update_codes(R, O, plan, key, counter, out, cpu.get_num_threads())


def _serial_update(batch: int, n_out: int, n_in: int) -> bool:
    """Whether an update runs the kernels' serial twins: small enough, or Numba has one thread
    (the parallel kernel then only adds its launch and chunking: an MNIST 784-input layer's update
    took 637 us parallel against 506 us serial at one thread)."""
    return batch * n_out * n_in < SERIAL_MAX_UPDATE or n_out < 2 or _one_thread()


def _float_accumulator(accumulator) -> bool:
    """None or Float32: float64 accumulation (``reference.accumulator_format`` gives None)."""
    return accumulator is None or getattr(accumulator, "kind", None) == "float"


def _cpu_matrix(t, writeable: bool = False):
    """A 2-D C-contiguous float32 NumPy view of a plain CPU tensor / array, else None."""
    tp = type(t)
    if tp is not np.ndarray:
        torch = sys.modules.get("torch")
        if torch is None or tp is not torch.Tensor or t.is_cuda or t.requires_grad:
            return None
        t = t.numpy()
    if t.ndim != 2 or t.dtype != np.float32 or not t.flags.c_contiguous or (writeable and not t.flags.writeable):
        return None
    return t


def _update_codes_direct(R, O, fmt, seed, counter, out) -> bool:
    """The training loop's call on a short path (a few us less per call, 3000 calls an MNIST
    epoch): contiguous float32 CPU R, O and out and a format the code-sum kernel takes. False
    (nothing done) for anything else, which the general path then handles."""
    Rv, Ov, ov = _cpu_matrix(R), _cpu_matrix(O), _cpu_matrix(out, writeable=True)
    if Rv is None or Ov is None or ov is None or Rv.shape[0] != Ov.shape[0] \
            or ov.shape != (Rv.shape[1], Ov.shape[1]):
        return False
    return _run_update_codes(Rv, Ov, _code_plan(fmt), _seed_key(seed), _u64(counter), ov)


def per_example_update(R, O, fmt, *, accumulator=None, seed: int = 0, counter: int = 0, out=None,
                       backend: str = "numpy"):
    """``G[i, j] = sum_b Q(R[b, i] * O[b, j])`` for R (batch, out), O (batch, in), without the
    (batch, out, in) tensor on the numba / cuda backends.

    Q = ``fmt`` on the float32 product, counter ``counter + (b*out + i)*in + j``. Accumulation:
    float64 in batch order, rounded to float32 once (``accumulator`` None or Float32), or a
    FixedPoint ``accumulator`` saturating (wrapping) at every add; see
    ``reference.per_example_update``.
    """
    if out is not None and (backend == "numba" or backend == "auto") and _float_accumulator(accumulator):
        if _update_codes_direct(R, O, fmt, seed, counter, out):
            return out
    be = _backend(backend, R, O, out)
    reference.check_update_shapes(tuple(R.shape), tuple(O.shape), None if out is None else tuple(out.shape))
    A = reference.accumulator_format(accumulator)
    shape = (R.shape[1], O.shape[1])
    _check_float32_out(out, shape, "per_example_update")
    cpu = _cpu()
    key, c0 = _keys(seed, counter)
    ca = _u64(counter + R.shape[0] * shape[0] * shape[1])
    (P, mode, table), PA = _prep(fmt), _params(A)
    if be == "cuda":
        d = _Dev()
        dR, dO = d.arr(R, "R"), d.arr(O, "O")
        res, dres = d.empty(shape)
        d.ck.per_example_update(dR, dO, P, PA, key, c0, ca, dres, d.stream)
        return d.finish(res, R, out)
    Rv, Ov = _host(R, "R"), _host(O, "O")
    if be == "numpy":
        return _wrap_like(reference.per_example_update(Rv, Ov, fmt, accumulator=A, seed=seed, counter=counter),
                          R, out)
    direct = None                                  # write straight into a contiguous CPU out
    if isinstance(out, np.ndarray) and out.flags.c_contiguous:
        direct = out
    elif _is_tensor(out) and not out.is_cuda and out.is_contiguous():
        direct = out.detach().numpy()
    res = direct if direct is not None else np.empty(shape, np.float32)
    Rc, Oc = _c(Rv), _c(Ov)
    if not _run_update_codes(Rc, Oc, _code_plan(fmt) if A is None else None, key, c0, res):
        serial = _serial_update(R.shape[0], shape[0], shape[1])
        kern = cpu.per_example_update_serial if serial else cpu.per_example_update
        kern(Rc, Oc, P, PA, table, mode, key, c0, ca, res)
    return out if direct is not None else _wrap_like(res, R, out)
