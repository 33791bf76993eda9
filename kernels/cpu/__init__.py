"""Numba CPU kernels: bit-exact twins of ``kernels.reference``.

The scalar arithmetic (RNG, rounding, the quantizers) is written once as ``register_jitable``
functions (``scalar``), which the njit kernels here and the CUDA kernels in ``kernels.cuda`` both
inline. It uses only operations that IEEE 754 specifies exactly (+, -, *, /, comparisons, copysign,
floor, float <-> int conversion, reading and building float64 bit patterns), never a math-library
function such as log2 or exp2, and rounds to float32 where the reference does, so every backend
returns the same bits. Nothing compiles at import: the njit decorators are lazy (``cache=True``).

Speed: ``quantize_flat``, ``per_example_update``, ``fixed_scale_round`` and ``add_quantize_flat``
pick a loop per format (``kernel_mode``). Fixed nearest-even/saturate, fixed stochastic rounding
(saturate or wrap: the bit-true channel's signals and stored weights) and log formats, stochastic
underflow included, run branch-free loops (selects; the uniform is drawn for every element, from
integer operations only), which vectorize: about 10x faster than the general loop. Log formats
with at most ``TABLE_LEVELS`` levels (every paper format) need no division: their float32 results
follow from comparisons with float32 thresholds that ``log_table`` derives from the reference's
own exponent rule. Each kernel has a serial twin for small arrays, and the per-example update
skips the zero inputs (MNIST pixels) that cannot change its sum.
With float accumulation, ``update_codes`` computes the same per-example update 3-6x faster for
the formats ``code_plan`` accepts (log formats with normal float32 levels, every paper format;
fixed nearest-even/saturate): it sums small integer codes, which is exact, so that the float64
sum of the reference is reproduced bit for bit from 32-bit integer operations on the float32
product (16 lanes to an AVX-512 vector) and one multiplication at the end.
The sparse products (``sparse_product``) compute one row per distinct index list over the batch
and store J through a transposing gather of 4 x 4 blocks, written as an LLVM ``shufflevector``
intrinsic (``store_transposed4``): writing J column by column cost more than all the adds.

Kernel arguments are C-contiguous arrays, a format as a ``PARAMS``-long tuple of float64
(``format_params``; the sparse kernel: a float64 array, ``sparse_params``), the RNG key
``splitmix64(seed)`` and counters as uint64.

Modules (every name is importable from ``kernels.cpu`` itself):

- ``params``: a format as the kernels' parameter tuple, loop variants (``kernel_mode``), log tables;
- ``scalar``: the ``register_jitable`` scalar arithmetic shared with ``kernels.cuda``;
- ``quantize``: quantizers on float32 and exact float64 values, the stored weights' update;
- ``update``: the per-example update on the general loops;
- ``codes``: the per-example update as exact integer-code sums;
- ``products``: the dense low-bit product, fixed accumulation and the accumulator product;
- ``activation``: the forward tanh and its f' product;
- ``sparse``: the sparse products through index lists;
- ``lut``: the f' lookup table and scale-and-round;
- ``stats``: quantizer statistics of the learning diagnostics in one pass.
"""
from numba import get_num_threads

from ..reference import seed_key
from .activation import ACTIVATION_CHUNK, tanh_flat, tanh_fprime_mul_flat, tanh_fprime_mul_span, tanh_span
from .codes import (CODE_COLUMNS_CHUNK, CODE_FIXED, CODE_LANES, CODE_LOG_CLIP, CODE_LOG_FLUSH, CODE_LOG_STOCH32,
                    CODE_LOG_STOCH64, CODE_SUM_LIMIT, CODE_TILE, C_DRAW, C_HI, C_KIND, C_LO, C_MAXCODE, C_T0, C_TOP,
                    C_UNIT, add_codes, by_columns, code_columns, code_fixed, code_log_clip, code_log_flush,
                    code_log_stoch32, code_log_stoch64, code_plan, code_rows, finite_and_nonzeros, lanes,
                    log_code_level, padded, update_codes, update_codes_serial, with_sign)
from .lut import (fixed_scale_round, fixed_scale_round_serial, fprime_lut_flat, fprime_lut_span, lut_value,
                  scale_round_span)
from .params import (ALPHA, EMIN, FIXED_NE_SAT, FIXED_SR_SAT, FIXED_SR_WRAP, GENERAL, INT_MAX, INT_MIN, KIND, LOG_BITS,
                     LOG_BITS_STOCH, LOG_TABLE, LOG_TABLE_STOCH, NO_TABLE, OVERFLOW, PARAMS, ROUNDING, SCALE_IN,
                     SCALE_OUT, SMALLEST, SPAN, TABLE_LEVELS, TABLE_SIZE, UNDERFLOW, bucket_edges, format_params,
                     kernel_mode, log_levels, log_table, u64)
from .products import (acc_in, accumulate_fixed, fixed_codes, fixed_product, fixed_product_rows, fixed_product_serial,
                       lowbit_matmul, wrap_code)
from .quantize import (F64_BLOCK, F64_MODE, QUANTIZE_CHUNK, add_quantize_flat, add_quantize_flat_serial,
                       add_quantize_span, quantize_f64_span, quantize_flat, quantize_flat_serial, quantize_span)
from .scalar import (acc_add, bits_value, bits_value_stoch, draw24, ffloor, fixed_code, fixed_ne_sat, fixed_sr_sat,
                     fixed_sr_wrap, frint, log_level, log_level_fast, log_value, mix64, overflow, pow2i, quant_value,
                     round_fixed, saturate, sr_code, table_level, table_tuples, table_value, table_value_stoch,
                     uniform, wrap_range)
from .sparse import (OSCALE, SPARSE_CHUNK, SPARSE_COLUMNS, gather_transposed, plan_parts, sparse_codes, sparse_params,
                     sparse_plan, sparse_product, sparse_product_serial, sparse_rows, sparse_tables, store_transposed4)
from .stats import quantization_counts
from .update import nonzero_columns, per_example_update, per_example_update_serial, update_rows

#: Every name of the modules above, and ``get_num_threads`` (Numba) and ``seed_key``
#: (``kernels.reference``), which the dispatch uses through this package.
__all__ = ["get_num_threads", "seed_key", "ACTIVATION_CHUNK", "tanh_flat", "tanh_fprime_mul_flat",
           "tanh_fprime_mul_span", "tanh_span", "CODE_COLUMNS_CHUNK", "CODE_FIXED", "CODE_LANES", "CODE_LOG_CLIP",
           "CODE_LOG_FLUSH", "CODE_LOG_STOCH32", "CODE_LOG_STOCH64", "CODE_SUM_LIMIT", "CODE_TILE", "C_DRAW", "C_HI",
           "C_KIND", "C_LO", "C_MAXCODE", "C_T0", "C_TOP", "C_UNIT", "add_codes", "by_columns", "code_columns",
           "code_fixed", "code_log_clip", "code_log_flush", "code_log_stoch32", "code_log_stoch64", "code_plan",
           "code_rows", "finite_and_nonzeros", "lanes", "log_code_level", "padded", "update_codes",
           "update_codes_serial", "with_sign", "fixed_scale_round", "fixed_scale_round_serial", "fprime_lut_flat",
           "fprime_lut_span", "lut_value", "scale_round_span", "ALPHA", "EMIN", "FIXED_NE_SAT", "FIXED_SR_SAT",
           "FIXED_SR_WRAP", "GENERAL", "INT_MAX", "INT_MIN", "KIND", "LOG_BITS", "LOG_BITS_STOCH", "LOG_TABLE",
           "LOG_TABLE_STOCH", "NO_TABLE", "OVERFLOW", "PARAMS", "ROUNDING", "SCALE_IN", "SCALE_OUT", "SMALLEST",
           "SPAN", "TABLE_LEVELS", "TABLE_SIZE", "UNDERFLOW", "bucket_edges", "format_params", "kernel_mode",
           "log_levels", "log_table", "u64", "acc_in", "accumulate_fixed", "fixed_codes", "fixed_product",
           "fixed_product_rows", "fixed_product_serial", "lowbit_matmul", "wrap_code", "F64_BLOCK", "F64_MODE",
           "QUANTIZE_CHUNK", "add_quantize_flat", "add_quantize_flat_serial", "add_quantize_span", "quantize_f64_span",
           "quantize_flat", "quantize_flat_serial", "quantize_span", "acc_add", "bits_value", "bits_value_stoch",
           "draw24", "ffloor", "fixed_code", "fixed_ne_sat", "fixed_sr_sat", "fixed_sr_wrap", "frint", "log_level",
           "log_level_fast", "log_value", "mix64", "overflow", "pow2i", "quant_value", "round_fixed", "saturate",
           "sr_code", "table_level", "table_tuples", "table_value", "table_value_stoch", "uniform", "wrap_range",
           "OSCALE", "SPARSE_CHUNK", "SPARSE_COLUMNS", "gather_transposed", "plan_parts", "sparse_codes",
           "sparse_params", "sparse_plan", "sparse_product", "sparse_product_serial", "sparse_rows", "sparse_tables",
           "store_transposed4", "quantization_counts", "nonzero_columns", "per_example_update", "per_example_update_serial", "update_rows"]
