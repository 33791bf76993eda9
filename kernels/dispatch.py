"""Backend selection for the learning-channel kernels.

Backends: ``numpy`` (``kernels.reference``, the definition), ``numba`` (``kernels.cpu``),
``cuda`` (``kernels.cuda``, imported on first use) and ``auto`` (cuda for CUDA tensors, numba
otherwise). Every backend returns the same bits.

Arguments may be torch tensors or NumPy arrays (float32). Torch CPU tensors reach the NumPy /
Numba kernels through ``.numpy()`` views (no copies; non-contiguous inputs are copied once) and
CUDA tensors reach the CUDA kernels through ``numba.cuda.as_cuda_array`` on torch's current
stream. Functions return ``out`` when given, else a new array / tensor of the input's kind
(NumPy arrays on the ``cuda`` backend are copied to the device and back).

Per-call cost on the Numba backend is kept small, since the training loop quantizes arrays of
~1000 elements thousands of times an epoch: a format's packed parameters, loop variant and level
table are computed once per format (``_prep``, ``_code_plan``), RNG keys once per seed,
``quantize_`` on a contiguous float32 CPU tensor and ``per_example_update`` on contiguous float32
CPU R, O and out take short paths (so do ``fixed_scale_round`` and ``add_quantize_``; the sparse
products keep a whole call on torch tensors, ``_SparseCall``, and repeat it), and arrays
below ``SERIAL_MAX_QUANTIZE`` elements (``SERIAL_MAX_UPDATE`` products) run the kernels' serial
twins, without a parallel launch, as do all elementwise kernels when Numba has one thread.

The per-example update runs ``kernels.cpu.update_codes`` (exact sums of integer codes) where the
format, accumulator, batch size and data allow it, and ``kernels.cpu.per_example_update``
otherwise; both return the reference's bits.
"""
from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from . import reference

BACKENDS = ("numpy", "numba", "cuda", "auto")


# --- helpers ------------------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def _is_tensor(a) -> bool:
    mod = type(a).__module__
    return mod.startswith("torch") and hasattr(a, "is_cuda")


def _is_cuda(a) -> bool:
    return _is_tensor(a) and a.is_cuda


def _backend(backend: str, *arrays) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"kernel backend: got {backend!r}; allowed: {', '.join(BACKENDS)}")
    on_gpu = [_is_cuda(a) for a in arrays if a is not None]
    if backend == "auto":
        return "cuda" if any(on_gpu) else "numba"
    if backend != "cuda" and any(on_gpu):
        raise ValueError(f"kernel backend {backend!r} needs CPU tensors; got a CUDA tensor (use 'cuda' or 'auto')")
    return backend


def _host(a, name: str, *, strict: bool = False) -> np.ndarray:
    """A NumPy view of a CPU tensor / array; float32 without a copy (others are converted, or
    refused when ``strict``: in-place work must not go to a converted copy)."""
    if _is_tensor(a):
        a = a.detach()
        if a.is_cuda:
            raise ValueError(f"{name}: a CUDA tensor needs backend 'cuda' or 'auto'")
        a = a.numpy()
    a = np.asarray(a)
    if a.dtype != np.float32:
        if strict or a.dtype.kind not in "fiub":
            raise ValueError(f"{name}: got dtype {a.dtype}; allowed: float32")
        a = a.astype(np.float32)
    return a


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


def _check_float32_out(out, shape, what: str):
    if out is None:
        return
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{what}: out has shape {tuple(out.shape)}; need {tuple(shape)}")
    dt = str(out.dtype).replace("torch.", "")
    if dt != "float32":
        raise ValueError(f"{what}: out has dtype {dt}; allowed: float32")


def _wrap_like(result: np.ndarray, like, out):
    """Write ``result`` into ``out`` (if given) or return it as the kind of ``like``."""
    if out is not None:
        if _is_tensor(out):
            if out.is_cuda:
                out.copy_(_torch().from_numpy(result))
            else:
                np.copyto(out.detach().numpy(), result)
        else:
            np.copyto(out, result)
        return out
    if _is_tensor(like):
        return _torch().from_numpy(result)
    return result


_CPU = None


def _cpu():
    """``kernels.cpu``, imported on first use (it imports Numba)."""
    global _CPU
    if _CPU is None:
        from . import cpu
        _CPU = cpu
    return _CPU


#: Below this many elements (quantize) or products (per-example update) the Numba CPU backend
#: runs the serial twin of a kernel: starting the thread pool costs more than it saves there.
SERIAL_MAX_QUANTIZE = 1 << 15
SERIAL_MAX_UPDATE = 1 << 16
_MOD64 = 1 << 64


@functools.lru_cache(maxsize=256)
def _prepared(fmt):
    """``(P, mode, table)`` of a format (hashable, immutable): packed once, then reused."""
    cpu = _cpu()
    P = cpu.format_params(fmt)
    mode, table = cpu.kernel_mode(fmt, P)
    return P, mode, table


def _by_identity(cache: dict, compute, fmt):
    """``compute(fmt)`` (an lru_cache'd function), looked up by object identity first (the entry
    keeps ``fmt`` alive): no hashing of the format per call."""
    hit = cache.get(id(fmt))
    if hit is not None and hit[0] is fmt:
        return hit[1]
    try:
        value = compute(fmt)
    except TypeError:                              # an unhashable format-like object
        return compute.__wrapped__(fmt)
    if len(cache) >= 256:
        cache.clear()
    cache[id(fmt)] = (fmt, value)
    return value


_BY_ID: dict = {}                                  # id(fmt) -> (fmt, prepared)


def _prep(fmt):
    """``_prepared(fmt)``: the format's packed parameters, loop variant and level table."""
    return _by_identity(_BY_ID, _prepared, fmt)


@functools.lru_cache(maxsize=256)
def _code_plan_of(fmt):
    return _cpu().code_plan(fmt)


_PLAN_BY_ID: dict = {}                             # id(fmt) -> (fmt, code plan or None)


def _code_plan(fmt):
    """``kernels.cpu.code_plan(fmt)`` computed once per format: the per-example update's code-sum
    kernel plan, or None."""
    return _by_identity(_PLAN_BY_ID, _code_plan_of, fmt)


def _params(fmt):
    return _prep(fmt)[0]


_SEED_KEYS: dict = {}


def _seed_key(seed):
    """``splitmix64(seed)`` as np.uint64, computed once per seed."""
    try:
        key = _SEED_KEYS.get(seed)
    except TypeError:                              # unhashable (e.g. a 0-d array)
        return _cpu().seed_key(int(seed) % _MOD64)
    if key is None:
        key = _cpu().seed_key(int(seed) % _MOD64)
        if len(_SEED_KEYS) >= 256:
            _SEED_KEYS.clear()
        _SEED_KEYS[seed] = key
    return key


def _u64(counter) -> np.uint64:
    if type(counter) is int and 0 <= counter < _MOD64:
        return np.uint64(counter)
    return np.uint64(int(counter) % _MOD64)


def _keys(seed, counter):
    return _seed_key(seed), _u64(counter)


def _one_thread() -> bool:
    """Whether Numba runs one thread (then a parallel kernel only adds its launch cost). Asked
    only for large calls: the question itself costs ~0.5 us."""
    import numba
    return numba.get_num_threads() == 1


def _serial_flat(n: int) -> bool:
    """Whether an elementwise kernel on ``n`` elements runs its serial twin: below
    ``SERIAL_MAX_QUANTIZE``, or when Numba has one thread (a parallel launch then only costs)."""
    return n < SERIAL_MAX_QUANTIZE or _one_thread()


def _quantize_numba(flat: np.ndarray, fmt, seed, counter, prepared=None) -> None:
    """Numba quantization of a flat C-contiguous float32 array, in place."""
    cpu = _cpu()
    P, mode, table = _prep(fmt) if prepared is None else prepared
    kern = cpu.quantize_flat_serial if _serial_flat(flat.size) else cpu.quantize_flat
    kern(flat, P, table, mode, _seed_key(seed), _u64(counter))


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


# --- CUDA plumbing ------------------------------------------------------------------------------

class _Dev:
    """Device views of the arguments of one CUDA call, and where the result goes."""

    def __init__(self):
        from numba import cuda
        from . import cuda as ck
        self.cuda, self.ck = cuda, ck
        self.stream = 0
        self.torch_dev = None

    def arr(self, a, name: str):
        """A float32 device view of a CUDA tensor (contiguous), or a device copy of host data."""
        if _is_cuda(a):
            torch = _torch()
            t = a.detach()
            if t.dtype != torch.float32:
                raise ValueError(f"{name}: got dtype {t.dtype}; allowed: float32")
            t = t.contiguous()
            self.torch_dev = t.device
            self.stream = self.cuda.external_stream(torch.cuda.current_stream(t.device).cuda_stream)
            return self.cuda.as_cuda_array(t)
        return self.cuda.to_device(_c(_host(a, name)))

    def empty(self, shape, dtype=np.float32):
        if self.torch_dev is not None:
            torch = _torch()
            t = torch.empty(shape, dtype={np.float32: torch.float32, np.int64: torch.int64}[dtype],
                            device=self.torch_dev)
            return t, self.cuda.as_cuda_array(t)
        d = self.cuda.device_array(shape, dtype=dtype)
        return d, d

    def host(self, darr) -> np.ndarray:
        """Copy a device array to the host (synchronising the stream)."""
        h = darr.copy_to_host(stream=self.stream)
        if self.stream != 0:
            self.stream.synchronize()
        return h

    def finish(self, res, like, out):
        """``res`` is a torch tensor (CUDA path) or a device array; deliver it like ``like``/``out``."""
        if _is_tensor(res):
            if out is None:
                return res
            if _is_tensor(out):
                out.copy_(res.reshape(out.shape))
            else:
                np.copyto(out, res.cpu().numpy())
            return out
        return _wrap_like(self.host(res), like, out)


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


# --- 2: sparse binary feedback product ----------------------------------------------------------

binary_to_index_lists = reference.binary_to_index_lists
IndexLists = reference.IndexLists


def _lists(index_lists):
    if isinstance(index_lists, reference.IndexLists):
        return index_lists.indptr, index_lists.indices, index_lists.scale, index_lists.n_senders
    indptr, indices = index_lists[:2]
    return indptr, indices, None, None


def sparse_feedback_product(R, index_lists, scale=None, out=None, *, backend: str = "numpy"):
    """``J[b, r] = scale * sum_{s in idx(r)} R[b, s]``: the received signal through a binary
    feedback matrix stored as index lists (``binary_to_index_lists``); additions only.

    ``index_lists``: an ``IndexLists`` or ``(indptr, indices)``; ``scale`` defaults to the
    lists' scale (required with a bare tuple). ``R``: (batch, sender) float32. On the Numba
    backend, lists are checked once per object (see ``_validated``): do not change them in place.
    """
    if backend == "numba" or backend == "auto":
        call = _SPARSE_CALLS.get(id(out))
        if call is not None and call.serves(R, index_lists, None, None, scale):
            return call.run()
        res = _sparse_fast(R, index_lists, None, scale, None, out, "sparse_feedback_product")
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
    """Whether an update is small enough for the kernels' serial twins."""
    return batch * n_out * n_in < SERIAL_MAX_UPDATE or n_out < 2


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


# --- bit-true learning channel: fixed-point accumulator products, f' table, scale and round -----
#
# Contracts (the definitions and the arithmetic are in ``reference``, section of the same name):
#   check_accumulator_holds(r_fmt, b_fmt, acc)   once, when the channel is configured
#   fixed_product(R, B, acc)                     J = R @ B, accumulator saturating/wrapping per add
#   fixed_sparse_product(R, lists, acc, signs)   the same through {0, 1} / {-1, 0, +1} index lists
#   fprime_table(activation, entries, fmt)       f' as a lookup table over the forward output
#   fprime_lut(o, table)                         f'(o) by table lookup
#   fixed_scale_round(J, fp, out_fmt, ...)       Q_out(J * fp), the product exact, rounded once
# Per-call cost on the Numba backend: accumulator parameters come from ``_prep`` (once per
# format), index lists, signs and tables are validated once per object (``_validated``), inputs
# reach the kernels through the cached flat views of ``_cpu_flat``, small calls run serially, and a
# sparse product on the same torch tensors as before repeats the call it kept (``_SparseCall``).

BINARY, TERNARY = reference.BINARY, reference.TERNARY
check_accumulator_holds = reference.check_accumulator_holds
ternary_to_index_lists = reference.ternary_to_index_lists
FprimeTable = reference.FprimeTable
fprime_table = reference.fprime_table

#: Below this many terms (batch x senders x receivers, or batch x list entries) the product
#: kernels run serially (the thread pool's start costs ~4 us, a 100 x 10 x 100 product ~8 us), and
#: above it too when Numba has one thread;
#: below ``SERIAL_MAX_QUANTIZE`` elements so do lookup and scale-and-round.
SERIAL_MAX_PRODUCT = 1 << 18

_VALIDATED: dict = {}


def _validated(a, b, extra, make):
    """``make()``, computed once per identity of the objects ``a`` and ``b`` (and hashable ``extra``).

    For index lists, signs and tables, which the channel builds once and passes every minibatch;
    an entry keeps its objects alive, so an id cannot be reused while it is cached. Arrays inside
    them must not be changed in place after their first use (build new ones instead)."""
    key = (id(a), id(b), extra)
    hit = _VALIDATED.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    value = make()
    if len(_VALIDATED) >= 256:
        _VALIDATED.clear()
    _VALIDATED[key] = (a, b, value)
    return value


def _acc_params(acc, what: str):
    """The packed parameters of a fixed-point accumulator (checked: FixedPoint, frac <= word <= 32)."""
    P = _params(acc)
    if P[0] != 2.0 or P[7] > P[11] or P[11] > 4294967296.0:
        reference.require_accumulator(acc, what)
    return P


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
    if backend == "numba" or backend == "auto":
        call = _SPARSE_CALLS.get(id(out))
        if call is not None and call.serves(R, index_lists, signs, acc, scale):
            return call.run()
        res = _sparse_fast(R, index_lists, signs, scale, acc, out, "fixed_sparse_product")
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
