"""Sparse products through index lists: ``sparse_feedback_product`` (a binary feedback matrix,
float sums) and ``fixed_sparse_product`` (the bit-true channel's fixed-point accumulator, signs for
a ternary matrix), with the kept whole calls of the training loop (``_SparseCall``)."""
from __future__ import annotations

import sys

import numpy as np

from .. import reference
from .backends import SERIAL_MAX_PRODUCT, _Dev, _backend, _c, _check_float32_out, _cpu, _host, _one_thread, _wrap_like
from .prepared import _acc_params, _params, _validated
from .views import FLAT_CACHE_MAX, _cpu_in, _cpu_out, _deliver, _fast_cpu, _result


# --- 2: sparse binary feedback product ----------------------------------------------------------


def _lists(index_lists):
    if isinstance(index_lists, reference.IndexLists):
        return index_lists.indptr, index_lists.indices, index_lists.scale, index_lists.n_senders
    indptr, indices = index_lists[:2]
    return indptr, indices, None, None



def _kept_or_fast(backend: str, R, index_lists, signs, acc, scale, out, what: str):
    """The Numba short paths of a sparse product: a kept call on the same tensors (``_SparseCall``),
    else the direct kernel on CPU torch/NumPy operands; None when neither applies (the general path
    then validates and dispatches)."""
    if backend not in ("numba", "auto"):
        return None
    call = _SPARSE_CALLS.get(id(out))
    if call is not None and call.serves(R, index_lists, signs, acc, scale):
        return call.run()
    return _sparse_fast(R, index_lists, signs, scale, acc, out, what)

def sparse_feedback_product(R, index_lists, scale=None, out=None, *, backend: str = "numpy"):
    """``J[b, r] = scale * sum_{s in idx(r)} R[b, s]``: the received signal through a binary
    feedback matrix stored as index lists (``binary_to_index_lists``); additions only.

    ``index_lists``: an ``IndexLists`` or ``(indptr, indices)``; ``scale`` defaults to the
    lists' scale (required with a bare tuple). ``R``: (batch, sender) float32. On the Numba
    backend, lists are checked once per object (see ``_validated``): do not change them in place.
    """
    res = _kept_or_fast(backend, R, index_lists, None, None, scale, out, "sparse_feedback_product")
    if res is not None:
        return res
    be = _backend(backend, R, out)
    indptr, indices, lscale, n_senders = _lists(index_lists)
    if scale is None:
        if lscale is None:
            raise ValueError("sparse_feedback_product: scale is required with (indptr, indices) lists")
        scale = lscale
    indptr = np.ascontiguousarray(np.asarray(indptr), dtype=np.int64)
    indices = np.ascontiguousarray(np.asarray(indices), dtype=np.int64)
    reference.check_sparse(tuple(R.shape), indptr, indices, n_senders, None if out is None else tuple(out.shape))
    shape = (R.shape[0], indptr.size - 1)
    _check_float32_out(out, shape, "sparse_feedback_product")
    if be == "cuda":
        d = _Dev()
        dR = d.arr(R, "R")
        res, dres = d.empty(shape)
        d.ck.sparse_product(dR, d.cuda.to_device(indptr), d.cuda.to_device(indices), float(scale), dres, d.stream)
        return d.finish(res, R, out)
    Rv = _host(R, "R")
    lists = reference.IndexLists(indptr, indices, float(scale), Rv.shape[1])
    if be == "numpy":
        return _wrap_like(reference.sparse_feedback_product(Rv, lists), R, out)
    res = np.empty(shape, np.float32)
    _sparse_numba(_c(Rv), _sparse_operands(index_lists, None, scale, tuple(Rv.shape), "sparse_feedback_product"),
                  None, res)
    return _wrap_like(res, R, out)


def _sparse_operands(index_lists, signs, scale, r_shape, what: str):
    """``(indptr, indices, signs8, scale)``, checked once per (lists, signs, scale, R's shape)."""
    def make():
        indptr, indices, lscale, n_senders = _lists(index_lists)
        s = lscale if scale is None else scale
        if s is None:
            raise ValueError(f"{what}: scale is required with (indptr, indices) lists")
        indptr = np.ascontiguousarray(np.asarray(indptr), dtype=np.int64)
        indices = np.ascontiguousarray(np.asarray(indices), dtype=np.int64)
        reference.check_sparse(r_shape, indptr, indices, n_senders, what=what)
        s8 = reference.check_signs(signs, indices.size, what)
        return indptr, indices, (_NO_SIGNS if s8 is None else np.ascontiguousarray(s8)), float(s)
    return _validated(index_lists, signs, (scale, r_shape), make)


_NO_SIGNS = np.zeros(0, np.int8)


def fixed_sparse_product(R, index_lists, acc, signs=None, *, scale=None, out=None, backend: str = "numpy"):
    """``J[b, r] = scale * sum_{p in list(r)} sign_p * R[b, indices[p]]`` in the fixed-point
    accumulator ``acc``, saturating (wrapping) after every add, in list order (ascending sender for
    lists from ``binary_to_index_lists`` / ``ternary_to_index_lists``): additions only.

    ``index_lists``: ``IndexLists`` (CSC by receiver) or ``(indptr, indices)`` (then ``scale`` is
    required); ``signs``: None (a {0, 1} matrix) or +-1 per list entry (a {-1, 0, +1} matrix).
    ``scale`` (default the lists') multiplies the final value: ``float32(code * (2^-frac * scale))``,
    exact for a power of two. A receiver with no senders gets 0. R: (batch, sender) float32.
    Lists and signs are checked once per object (``_validated``): do not change them in place.
    """
    res = _kept_or_fast(backend, R, index_lists, signs, acc, scale, out, "fixed_sparse_product")
    if res is not None:
        return res
    be = _backend(backend, R, out)
    r_shape = tuple(R.shape)
    if len(r_shape) != 2:
        raise ValueError(f"fixed_sparse_product: R must be 2-D (batch, sender); got {r_shape}")
    ops = _sparse_operands(index_lists, signs, scale, r_shape, "fixed_sparse_product")
    indptr, indices, signs8, scale = ops
    PA = _acc_params(acc, "fixed_sparse_product")
    shape = (r_shape[0], indptr.size - 1)
    _check_float32_out(out, shape, "fixed_sparse_product")
    if be == "cuda":
        d = _Dev()
        dR = d.arr(R, "R")
        res, dres = d.empty(shape)
        d.ck.fixed_sparse_product(dR, d.cuda.to_device(indptr), d.cuda.to_device(indices), d.cuda.to_device(signs8),
                                  PA, PA[8] * scale, dres, d.stream)
        return d.finish(res, R, out)
    if be == "numpy":
        lists = reference.IndexLists(indptr, indices, scale, r_shape[1])
        return _wrap_like(reference.fixed_sparse_product(_host(R, "R"), lists, acc, signs8 if signs8.size else None),
                          R, out)
    res, direct = _cpu_out(out, shape)
    _sparse_numba(_cpu_in(R, "R"), ops, acc, res)
    return _deliver(res, direct, R, out)


# The Numba sparse kernel (``kernels.cpu.sparse_product``) takes R, a plan of the lists (their
# distinct lists, ``cpu.sparse_plan``), float64 parameters (the accumulator's, or float ones, and
# the output scale; ``cpu.sparse_params``) and out; plan and parameters are made once per operand
# objects. The channel calls with the same lists, R and out tensors every minibatch: such a call
# is kept whole (``_SparseCall``), and repeating it costs ~0.5 us of Python (a lookup by id(out),
# identity checks, the storage, shape and layout of R and out) where preparing the views and
# arguments again costs ~2 us, about as much as the product itself (batch 100 x 10 senders x 100).

def _sparse_kernel_args(ops, fmt, n_senders: int):
    """``(plan, params, few_lists)`` of operands ``ops`` (``_sparse_operands``) and an accumulator
    ``fmt`` (None: the float product), made once per (ops, fmt) object pair."""
    def make():
        cpu = _cpu()
        indptr, indices, signs8, scale = ops
        if fmt is None:
            params = cpu.sparse_params(_params(None), scale)
        else:
            PA = _acc_params(fmt, "fixed_sparse_product")
            params = cpu.sparse_params(PA, PA[8] * scale)
        plan = cpu.sparse_plan(indptr, indices, n_senders, signs8 if signs8.size else None)
        return plan, params, indptr.size <= cpu.SPARSE_CHUNK + 1
    return _validated(ops, fmt, "sparse kernel", make)


def _sparse_kernel(batch: int, ops, few_lists: bool, *, ask_threads: bool = True):
    """The serial twin for small calls (below ``SERIAL_MAX_PRODUCT`` terms, or few lists) and at
    one Numba thread (asked only if ``ask_threads``; else None where only that decides), else the
    parallel kernel."""
    cpu = _cpu()
    if few_lists or batch * (ops[1].size + ops[0].size) < SERIAL_MAX_PRODUCT:
        return cpu.sparse_product_serial
    if not ask_threads:
        return None
    return cpu.sparse_product_serial if _one_thread() else cpu.sparse_product


def _sparse_numba(R, ops, fmt, res) -> None:
    """The Numba sparse product of C-contiguous float32 R into ``res``; ``fmt`` the accumulator
    (None: the float product)."""
    plan, params, few_lists = _sparse_kernel_args(ops, fmt, R.shape[1])
    _sparse_kernel(R.shape[0], ops, few_lists)(R, plan, params, res)


def _sparse_fast(R, index_lists, signs, scale, fmt, out, what: str):
    """The Numba fast path of the sparse products (contiguous float32 CPU operands), else None.
    A small call on torch tensors R and out is kept (``_SPARSE_CALLS``) for the next with the same
    objects."""
    if fmt is not None:
        _acc_params(fmt, what)                      # a bad accumulator is refused before anything else
    flats = _fast_cpu((R,), out)
    if flats is None or len(R.shape) != 2:
        return None
    r_shape = tuple(R.shape)
    ops = _sparse_operands(index_lists, signs, scale, r_shape, what)
    shape = (r_shape[0], ops[0].size - 1)
    if out is not None and out.shape != shape:
        return None
    res = flats[1].reshape(shape) if out is not None else np.empty(shape, np.float32)
    Rv = flats[0].reshape(r_shape)
    torch = sys.modules.get("torch")
    if (out is None or torch is None or type(R) is not torch.Tensor or type(out) is not torch.Tensor
            or max(Rv.size, res.size) > FLAT_CACHE_MAX):
        _sparse_numba(Rv, ops, fmt, res)
        return _result(res, R, out)
    call = _SparseCall(R, index_lists, signs, fmt, scale, out, ops, (Rv, res))
    if len(_SPARSE_CALLS) >= SPARSE_CALLS_KEPT:
        _SPARSE_CALLS.clear()
    _SPARSE_CALLS[id(out)] = call
    return call.run()


class _SparseCall:
    """A sparse product on CPU torch tensors R and out, kept whole: its operands, the kernel's
    arguments (NumPy views of R and out, plan, parameters) and the storage and shape of R and out
    the views were made for. It ``serves`` a later call with the very same objects while R and out
    keep that storage and shape and stay contiguous (whether they need a gradient does not matter:
    R is only read, and the general path writes into an ``out`` that does, too)."""

    __slots__ = ("R", "lists", "signs", "fmt", "scale", "out", "r_ptr", "r_shape", "o_ptr", "o_shape", "ops",
                 "few_lists", "kernel", "args")

    def __init__(self, R, lists, signs, fmt, scale, out, ops, views):
        self.R, self.lists, self.signs, self.fmt, self.scale, self.out = R, lists, signs, fmt, scale, out
        self.r_ptr, self.r_shape, self.o_ptr, self.o_shape = R.data_ptr(), R.shape, out.data_ptr(), out.shape
        Rv, res = views
        plan, params, self.few_lists = _sparse_kernel_args(ops, fmt, Rv.shape[1])
        self.ops = ops
        self.kernel = _sparse_kernel(Rv.shape[0], ops, self.few_lists, ask_threads=False)
        self.args = (Rv, plan, params, res)

    def serves(self, R, lists, signs, fmt, scale) -> bool:
        """Whether a call with these operands (and this call's out) may repeat this one."""
        out = self.out
        return (R is self.R and lists is self.lists and signs is self.signs and fmt is self.fmt
                and scale == self.scale
                and R.data_ptr() == self.r_ptr and R.shape == self.r_shape and R.is_contiguous()
                and out.data_ptr() == self.o_ptr and out.shape == self.o_shape and out.is_contiguous())

    def run(self):
        """The kernel on the kept arguments (the thread count asked now, where it decides); returns out."""
        kernel = self.kernel or _sparse_kernel(self.args[0].shape[0], self.ops, self.few_lists)
        kernel(*self.args)
        return self.out


#: The last sparse call on each out tensor, by id(out) (the channel writes each layer's received
#: signal into its own tensor, through its own lists): at most ``SPARSE_CALLS_KEPT``, with R and out
#: of at most ``FLAT_CACHE_MAX`` elements (the small calls, where preparing costs as much as
#: computing), so that they never hold much memory alive. An entry holds its out tensor, so no other
#: tensor can take that id while it is kept.
SPARSE_CALLS_KEPT = 64
_SPARSE_CALLS: dict = {}
