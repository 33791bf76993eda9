"""The dense products and fixed accumulation: the low-bit product with exact int64 accumulation,
``accumulate_fixed`` and the bit-true accumulator product ``fixed_product``.
"""
from __future__ import annotations

import numpy as np

from .accumulator import _acc_add, _acc_codes
from .checks import check_product_shapes, require_accumulator, require_fixed
from .quantize import _f32, _overflow, fixed_codes, quantize_f64

#: The bound on the int64 accumulator of ``lowbit_dense_product``.
INT64_LIMIT = 2 ** 63


def check_int64_bound(K: int, max_r: int, max_c: int) -> None:
    if K * max_r * max_c >= INT64_LIMIT:
        raise ValueError(f"lowbit_dense_product: the int64 accumulator could overflow: K={K} x max|k_R|={max_r} "
                         f"x max|k_C|={max_c} >= 2^63; use narrower formats")


def lowbit_dense_product(R, C, r_fmt, c_fmt, *, out_fmt=None, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``J = (k_R @ k_C) * 2^-(f_R + f_C)``, optionally re-quantized to ``out_fmt``.

    ``k_R`` / ``k_C`` are the int64 codes of R (batch, K) and C (K, N) in the FixedPoint formats
    ``r_fmt`` / ``c_fmt``; the products are summed in int64 (exact: a bound
    K * max|k_R| * max|k_C| >= 2^63 raises ValueError). The exact sum, scaled in float64 (exact
    below 2^53), is quantized directly to ``out_fmt`` (no float32 step) or rounded to float32.
    Counters: R uses ``counter + i``, C ``counter + R.size + i``, the output
    ``counter + R.size + C.size + i``.
    """
    R = np.asarray(R, dtype=np.float32)
    C = np.asarray(C, dtype=np.float32)
    check_product_shapes(R.shape, C.shape)
    require_fixed(r_fmt, "lowbit_dense_product r_fmt")
    require_fixed(c_fmt, "lowbit_dense_product c_fmt")
    kR = fixed_codes(R, r_fmt, seed=seed, counter=counter)
    kC = fixed_codes(C, c_fmt, seed=seed, counter=counter + R.size)
    max_r = int(np.abs(kR).max()) if kR.size else 0
    max_c = int(np.abs(kC).max()) if kC.size else 0
    check_int64_bound(R.shape[1], max_r, max_c)
    acc = kR @ kC if R.shape[1] else np.zeros((R.shape[0], C.shape[1]), np.int64)
    value = acc.astype(np.float64) * 2.0 ** -(r_fmt.frac + c_fmt.frac)
    if out_fmt is None:
        return _f32(value)
    return quantize_f64(value, out_fmt, seed=seed, counter=counter + R.size + C.size)


def accumulate_fixed(X, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Sum ``X`` (n, ...) over axis 0 in FixedPoint ``fmt``, saturating (or wrapping) at every add.

    Each addend ``X[t]`` is rounded to fmt's grid with fmt's rounding (stochastic: element (t, j)
    of the flattened (n, m) array uses counter ``counter + t*m + j``), the integer codes are added
    in order t = 0..n-1 and saturated (wrapped) after each add. Returns float32 of shape X.shape[1:].
    """
    X = np.asarray(X, dtype=np.float32)
    require_fixed(fmt, "accumulate_fixed format")
    if X.ndim < 1:
        raise ValueError(f"accumulate_fixed: X must have at least 1 dimension; got shape {X.shape}")
    n = X.shape[0]
    X2 = X.reshape(n, -1) if n else np.zeros((0, int(np.prod(X.shape[1:]))), np.float32)
    m = X2.shape[1]
    acc = np.zeros(m, dtype=np.float64)
    for t in range(n):
        acc = _acc_add(acc, X2[t].astype(np.float64), fmt, seed, counter + t * m)
    return _f32(acc * 2.0 ** -fmt.frac + 0.0).reshape(X.shape[1:])


def fixed_product(R, B, acc) -> np.ndarray:
    """``J[b, n] = sum_s R[b, s] * B[s, n]`` in the fixed-point accumulator ``acc``, saturating (or
    wrapping) after every add, s = 0..S-1 ascending; float32 (batch, N) out.

    R (batch, S) and B (S, N) are float32. Each product is exact in float64 and enters as its
    accumulator code (see ``accumulator``: nearest-even, wrap reduced first). A term whose
    R[b, s] is zero (+-0) is skipped: a silent sender adds nothing (so 0 * inf is not NaN).
    """
    R = np.asarray(R, dtype=np.float32)
    B = np.asarray(B, dtype=np.float32)
    check_product_shapes(R.shape, B.shape, what="fixed_product")
    A = require_accumulator(acc, "fixed_product")
    Rs = R.astype(np.float64) * 2.0 ** A.frac        # exact: a power of two, no overflow
    Bd = B.astype(np.float64)
    code = np.zeros((R.shape[0], B.shape[1]), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        for s in range(R.shape[1]):
            k = _acc_codes(Rs[:, s, None] * Bd[None, s, :], A)
            k[R[:, s] == 0] = 0.0
            code = _overflow(code + k, A)
    return _f32(code * 2.0 ** -A.frac + 0.0)
