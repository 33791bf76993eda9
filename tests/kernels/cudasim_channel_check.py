"""Run the bit-true channel's CUDA kernels under the Numba CUDA simulator and compare with the
NumPy reference: fixed_product, fixed_sparse_product, fprime_lut, fixed_scale_round.

Run by ``test_channel_kernels_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``. Sizes are
tiny (the simulator runs every thread as Python). Prints one line per check and ``ALL OK`` at the
end; exits 1 on any mismatch.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import numpy as np  # noqa: E402

from kcases import BitChecks, awkward_values  # noqa: E402


def main() -> int:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        print("NUMBA_ENABLE_CUDASIM=1 is required")
        return 2
    warnings.simplefilter("ignore")              # uint64 wrap-around warnings of NumPy scalars
    from kernels import dispatch, reference
    from lowbit_rbp.core.formats import FixedPoint, Float32, LogQuant

    checks = BitChecks()
    check = checks.check

    rng = np.random.default_rng(0)
    R = reference.quantize(rng.normal(0, 1.5, (3, 6)).astype(np.float32), LogQuant(2, 3))
    R[0, :3] = [0.0, np.nan, 0.3]                # a skipped zero, NaN, an off-grid value
    R[1, :2] = [-0.0, 1e30]                      # huge: saturates (or wraps exactly)
    B = reference.quantize(rng.normal(0, 1.5, (6, 4)).astype(np.float32), FixedPoint(6, 3))
    B[2, 1] = np.inf
    accs = [FixedPoint(6, 2), FixedPoint(6, 2, overflow="wrap"), FixedPoint(5, 1, signed=False),
            FixedPoint(32, 4, overflow="wrap")]
    for A in accs:
        check(f"fixed_product {A.spec}", dispatch.fixed_product(R, B, A, backend="cuda"),
              reference.fixed_product(R, B, A))
    check("fixed_product empty inner", dispatch.fixed_product(R[:, :0], B[:0], accs[0], backend="cuda"),
          np.zeros((3, 4), np.float32))

    M = np.sign(rng.normal(0, 1, (6, 5))).astype(np.float32) * (rng.random((6, 5)) < 0.5)
    M[:, 2] = 0                                  # a receiver with no senders
    lists, signs = dispatch.ternary_to_index_lists(M)
    Rs = reference.quantize(rng.normal(0, 3, (3, 6)).astype(np.float32), FixedPoint(8, 2))
    for A in accs:
        check(f"fixed_sparse ternary {A.spec}", dispatch.fixed_sparse_product(Rs, lists, A, signs, backend="cuda"),
              reference.fixed_sparse_product(Rs, lists, A, signs))
        check(f"fixed_sparse binary scale=0.5 {A.spec}",
              dispatch.fixed_sparse_product(Rs, lists, A, scale=0.5, backend="cuda"),
              reference.fixed_sparse_product(Rs, lists, A, scale=0.5))

    o = np.tanh(rng.normal(0, 1, (4, 5))).astype(np.float32)
    o.flat[:8] = [-1.0, 1.0, np.nan, 3.0, -0.75, 0.0, -2.0 ** -60, 1e-45]    # tiny: exact middle bins
    for table in [dispatch.fprime_table("tanh", 8, FixedPoint(8, 7)), dispatch.fprime_table("logistic", 5)]:
        check(f"fprime_lut {table.activation} {table.values.size}", dispatch.fprime_lut(o, table, backend="cuda"),
              reference.fprime_lut(o, table))

    J = awkward_values(20, rng, scale=2.0).reshape(4, 5)
    fp = dispatch.fprime_lut(o, dispatch.fprime_table("tanh", 8, FixedPoint(8, 7)))
    for fmt in [FixedPoint(8, 4), FixedPoint(8, 4, rounding="stochastic", overflow="wrap"), LogQuant(2, 3),
                LogQuant(2, 10, "clip"), Float32()]:
        check(f"fixed_scale_round {fmt.spec}",
              dispatch.fixed_scale_round(J, fp, fmt, seed=3, counter=2 ** 64 - 5, backend="cuda"),
              reference.fixed_scale_round(J, fp, fmt, seed=3, counter=2 ** 64 - 5))

    return checks.exit_status()


if __name__ == "__main__":
    sys.exit(main())
