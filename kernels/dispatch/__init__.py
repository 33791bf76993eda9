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
table are computed once per format (``_prep``, ``update._code_plan``), RNG keys once per seed,
``quantize_`` on a contiguous float32 CPU tensor and ``per_example_update`` on contiguous float32
CPU R, O and out take short paths (so do ``fixed_scale_round`` and ``add_quantize_``; the sparse
products keep a whole call on torch tensors, ``_SparseCall``, and repeat it), and arrays
below ``SERIAL_MAX_QUANTIZE`` elements (``SERIAL_MAX_UPDATE`` products) run the kernels' serial
twins, without a parallel launch, as do all elementwise kernels when Numba has one thread.

The per-example update runs ``kernels.cpu.update_codes`` (exact sums of integer codes) where the
format, accumulator, batch size and data allow it, and ``kernels.cpu.per_example_update``
otherwise; both return the reference's bits.

The bit-true learning channel (the definitions are in ``reference``'s ``accumulator``, ``products``,
``sparse`` and ``lut`` modules; the arithmetic in ``reference.accumulator``'s docstring)::

    check_accumulator_holds(r_fmt, b_fmt, acc)   once, when the channel is configured
    fixed_product(R, B, acc)                     J = R @ B, accumulator saturating/wrapping per add
    fixed_sparse_product(R, lists, acc, signs)   the same through {0, 1} / {-1, 0, +1} index lists
    fprime_table(activation, entries, fmt)       f' as a lookup table over the forward output
    fprime_lut(o, table)                         f'(o) by table lookup
    fixed_scale_round(J, fp, out_fmt, ...)       Q_out(J * fp), the product exact, rounded once

Per-call cost on the Numba backend: accumulator parameters come from ``_prep`` (once per format),
index lists, signs and tables are validated once per object (``_validated``), inputs reach the
kernels through the cached flat views of ``_cpu_flat``, small calls run serially, and a sparse
product on the same torch tensors as before repeats the call it kept (``_SparseCall``).

Modules (the public names, and the private ones tests and benchmarks read, are importable from
``kernels.dispatch`` itself; patch a private name in the module that looks it up):

- ``backends``: backend choice, host views, results, ``kernels.cpu`` on first use, serial or
  parallel, the CUDA call's device views (``_Dev``);
- ``prepared``: per-format, per-seed and per-object caches (``_prep``, ``_seed_key``, ``_validated``);
- ``views``: the Numba fast paths' flat views (``_cpu_flat``) and results;
- ``quantizers``: ``quantize_``, ``quantize``, ``add_quantize_``;
- ``activation``: ``tanh_``, ``tanh_fprime_mul_``;
- ``sparse``: ``sparse_feedback_product``, ``fixed_sparse_product`` (``_SparseCall``);
- ``products``: ``lowbit_dense_product``, ``accumulate_fixed``, ``fixed_product``;
- ``update``: ``per_example_update`` (``_code_plan``);
- ``lut``: ``fprime_lut``, ``fixed_scale_round``;
- ``stats``: ``quantization_counts`` (the learning diagnostics' quantizer statistics).
"""
from __future__ import annotations

from ..reference import (BINARY, FprimeTable, IndexLists, TERNARY, binary_to_index_lists, check_accumulator_holds,
                         fprime_table, ternary_to_index_lists)
from .activation import SERIAL_MAX_ACTIVATION, _serial_activation, tanh_, tanh_fprime_mul_
from .backends import BACKENDS, SERIAL_MAX_PRODUCT, SERIAL_MAX_QUANTIZE, _cpu
from .lut import fixed_scale_round, fprime_lut
from .prepared import _keys, _params, _prep, _seed_key, _u64
from .products import accumulate_fixed, fixed_product, lowbit_dense_product
from .quantizers import add_quantize_, quantize, quantize_
from .sparse import SPARSE_CALLS_KEPT, _SPARSE_CALLS, fixed_sparse_product, sparse_feedback_product
from .stats import quantization_counts
from .update import SERIAL_MAX_UPDATE, per_example_update
from .views import FLAT_CACHE_ENTRIES, FLAT_CACHE_MAX

#: The public names, ``kernels.reference``'s index lists, accumulator check and f' tables, and the
#: private names that tests and benchmarks read.
__all__ = ["BINARY", "FprimeTable", "IndexLists", "TERNARY", "binary_to_index_lists", "check_accumulator_holds",
           "fprime_table", "ternary_to_index_lists", "SERIAL_MAX_ACTIVATION", "_serial_activation", "tanh_",
           "tanh_fprime_mul_", "BACKENDS", "SERIAL_MAX_PRODUCT", "SERIAL_MAX_QUANTIZE", "_cpu", "fixed_scale_round",
           "fprime_lut", "_keys", "_params", "_prep", "_seed_key", "_u64", "accumulate_fixed", "fixed_product",
           "lowbit_dense_product", "add_quantize_", "quantize", "quantize_", "SPARSE_CALLS_KEPT", "_SPARSE_CALLS",
           "fixed_sparse_product", "sparse_feedback_product", "quantization_counts", "SERIAL_MAX_UPDATE", "per_example_update",
           "FLAT_CACHE_ENTRIES", "FLAT_CACHE_MAX"]
