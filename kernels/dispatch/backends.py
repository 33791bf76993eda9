"""What every dispatch function shares: the backend choice (``_backend``), host views of the
inputs (``_host``), the result delivered like the input (``_wrap_like``), ``kernels.cpu`` imported
on first use (``_cpu``), when a Numba kernel runs its serial twin, and the device views of a CUDA
call (``_Dev``)."""
from __future__ import annotations

import numpy as np

BACKENDS = ("numpy", "numba", "cuda", "auto")


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
        from .. import cpu
        _CPU = cpu
    return _CPU


#: Below this many elements (quantize; products: ``SERIAL_MAX_UPDATE`` in ``update``) the Numba CPU
#: backend runs the serial twin of a kernel: starting the thread pool costs more than it saves there.
SERIAL_MAX_QUANTIZE = 1 << 15


def _one_thread() -> bool:
    """Whether Numba runs one thread (then a parallel kernel only adds its launch cost). Asked
    only for large calls: the question itself costs ~0.5 us."""
    import numba
    return numba.get_num_threads() == 1


def _serial_flat(n: int) -> bool:
    """Whether an elementwise kernel on ``n`` elements runs its serial twin: below
    ``SERIAL_MAX_QUANTIZE``, or when Numba has one thread (a parallel launch then only costs)."""
    return n < SERIAL_MAX_QUANTIZE or _one_thread()


#: Below this many terms (batch x senders x receivers, or batch x list entries) the product
#: kernels run serially (the thread pool's start costs ~4 us, a 100 x 10 x 100 product ~8 us), and
#: above it too when Numba has one thread;
#: below ``SERIAL_MAX_QUANTIZE`` elements so do lookup and scale-and-round.
SERIAL_MAX_PRODUCT = 1 << 18


# --- CUDA plumbing ------------------------------------------------------------------------------

class _Dev:
    """Device views of the arguments of one CUDA call, and where the result goes."""

    def __init__(self):
        from numba import cuda
        from .. import cuda as ck
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
