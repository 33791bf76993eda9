"""The per-example quantized update ``per_example_update``, with float or saturating fixed-point
accumulation.
"""
from __future__ import annotations

import numpy as np

from .accumulator import _acc_add
from .checks import accumulator_format, check_update_shapes
from .quantize import _f32, quantize


def per_example_update(R, O, fmt, *, accumulator=None, seed: int = 0, counter: int = 0,
                       max_chunk_elems: int = 1 << 22) -> np.ndarray:
    """``G[i, j] = sum_b Q(R[b, i] * O[b, j])``, materializing the per-example products in chunks.

    * The product ``R[b, i] * O[b, j]`` is formed in float32 (as a float32 training loop does),
      then quantized with ``fmt``; element (b, i, j) uses counter ``counter + (b*out + i)*in + j``
      (its flat index in the materialized (batch, out, in) tensor).
    * Without an accumulator (None or Float32) the float32 quantized values are summed in float64
      in batch order and the sum is rounded to float32 once (exact for fixed formats while
      |G| < 2^(53-frac)).
    * With a FixedPoint accumulator A each addend is rounded to A's grid with A's rounding
      (exact when Q's grid lies on A's; stochastic uses counter ``counter + batch*out*in +
      (b*out + i)*in + j``), added to the integer code and saturated (or wrapped) at every add;
      the result is ``code * 2^-frac_A`` in float32.
    """
    R = np.asarray(R, dtype=np.float32)
    O = np.asarray(O, dtype=np.float32)
    check_update_shapes(R.shape, O.shape)
    A = accumulator_format(accumulator)
    B, NO = R.shape
    NI = O.shape[1]
    per_b = NO * NI
    acc = np.zeros((NO, NI), dtype=np.float64)
    cb = max(1, max_chunk_elems // max(per_b, 1))
    counter_a = counter + B * per_b
    for b0 in range(0, B, cb):
        b1 = min(B, b0 + cb)
        P = R[b0:b1, :, None] * O[b0:b1, None, :]            # float32 per-example products
        Q = quantize(P, fmt, seed=seed, counter=counter + b0 * per_b)
        for b in range(b0, b1):
            q = Q[b - b0].astype(np.float64)
            if A is None:
                acc += q
            else:
                acc = _acc_add(acc, q, A, seed, counter_a + b * per_b)
    if A is None:
        return _f32(acc)
    return _f32(acc * 2.0 ** -A.frac + 0.0)
