"""NumPy reference kernels: the definition of what every faster kernel must return.

All functions are pure: arrays in, new arrays out. Quantizers take float32 values (other inputs
are first rounded to float32), compute in float64 and return float32. The Numba CPU
(``kernels.cpu``) and Numba CUDA (``kernels.cuda``) kernels return the same bits.

Conventions shared by every backend
-----------------------------------
* Zeros produced by a quantizer are ``+0.0`` (a ``-0.0`` never comes out of a log or fixed
  quantizer; the float32 pass-through returns its input unchanged). NaN payloads are unspecified.
* Stochastic modes draw element ``i`` of a call from ``uniform_counter`` at ``counter + i``
  (``i`` the flat C-order index), so results do not depend on the order of evaluation.
  Seeds and counters are taken modulo 2^64.
* The log quantizer's exponent ``round(log2(|x|/alpha))`` is evaluated exactly: ``|x|/alpha`` is
  rounded once to float64, then ``frexp`` and one comparison against sqrt(1/2) pick the nearest
  integer (a tie would need ``|x|/alpha = 2^(k+1/2)``, which is irrational, so none exists).
  No ``log2``/``exp2`` from a math library enters the result, so no backend can differ by an ulp.
* Fixed point with ``word > 24`` is computed exactly in float64, but the float32 output can
  round an integer code ``|k| > 2^24`` to a neighbour (float32 has a 24-bit significand).

Modules (every public name is importable from ``kernels.reference`` itself):

- ``rng``: the counter-based random numbers (``splitmix64``, ``seed_key``, ``uniform_counter``);
- ``quantize``: quantizers on float32 and exact float64 values, fixed-point codes, the stored
  weights' update (``add_quantize``);
- ``checks``: shape and format checks shared with ``kernels.dispatch``;
- ``accumulator``: the bit-true channel's fixed-point accumulator (its arithmetic, stated in the
  module's docstring) and its width check ``check_accumulator_holds``;
- ``products``: the dense low-bit product, fixed accumulation and the accumulator product;
- ``update``: the per-example update;
- ``sparse``: index lists and the sparse products through them;
- ``activation``: the forward tanh and its f' product;
- ``lut``: the f' lookup table and scale-and-round;
- ``stats``: quantizer statistics of the learning diagnostics.
"""
from .accumulator import BINARY, TERNARY, check_accumulator_holds
from .activation import TANH_CLAMP, TANH_P, TANH_Q, tanh, tanh_fprime_mul
from .checks import accumulator_format, check_product_shapes, check_update_shapes, require_accumulator, require_fixed
from .lut import (FPRIME_DOMAINS, FPRIME_MAX_ENTRIES, FprimeTable, check_fprime_table, fixed_scale_round, fprime_index,
                  fprime_lut, fprime_table)
from .products import INT64_LIMIT, accumulate_fixed, check_int64_bound, fixed_product, lowbit_dense_product
from .quantize import (SQRT_HALF, add_quantize, fixed_codes, log_exponent, passthrough, quantize, quantize_f64,
                       quantize_fixed, quantize_log)
from .rng import seed_key, splitmix64, uniform_counter
from .sparse import (IndexLists, binary_to_index_lists, check_signs, check_sparse, fixed_sparse_product,
                     index_lists_dense, sparse_feedback_product, ternary_to_index_lists)
from .stats import QUANT_COUNTS, quantization_counts
from .update import per_example_update

#: Every public name of the modules above.
__all__ = ["BINARY", "TERNARY", "check_accumulator_holds", "TANH_CLAMP", "TANH_P", "TANH_Q", "tanh", "tanh_fprime_mul",
           "accumulator_format", "check_product_shapes", "check_update_shapes", "require_accumulator", "require_fixed",
           "FPRIME_DOMAINS", "FPRIME_MAX_ENTRIES", "FprimeTable", "check_fprime_table", "fixed_scale_round",
           "fprime_index", "fprime_lut", "fprime_table", "INT64_LIMIT", "accumulate_fixed", "check_int64_bound",
           "fixed_product", "lowbit_dense_product", "SQRT_HALF", "add_quantize", "fixed_codes", "log_exponent",
           "passthrough", "quantize", "quantize_f64", "quantize_fixed", "quantize_log", "seed_key", "splitmix64",
           "uniform_counter", "IndexLists", "binary_to_index_lists", "check_signs", "check_sparse",
           "fixed_sparse_product", "index_lists_dense", "sparse_feedback_product", "ternary_to_index_lists",
           "QUANT_COUNTS", "quantization_counts", "per_example_update"]
