"""Run every CUDA kernel under the Numba CUDA simulator and compare with the NumPy reference.

Run by ``test_kernels_cuda.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (the variable
must be set before ``numba.cuda`` is imported). Sizes are tiny: the simulator runs every thread
as Python. Prints one line per check and ``ALL OK`` at the end; exits 1 on any mismatch.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import numpy as np  # noqa: E402

from kcases import ACCUMULATORS, FIXED_FORMATS, FORMATS, UPDATE_FORMATS, BitChecks, awkward_values  # noqa: E402


def main() -> int:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        print("NUMBA_ENABLE_CUDASIM=1 is required")
        return 2
    warnings.simplefilter("ignore")              # uint64 wrap-around warnings of NumPy scalars
    from numba import cuda
    assert cuda.simulator_enabled if hasattr(cuda, "simulator_enabled") else True
    from kernels import dispatch, reference
    from lowbit_rbp.core.formats import FixedPoint, LogQuant

    checks = BitChecks()
    check = checks.check

    rng = np.random.default_rng(0)
    x = awkward_values(70, rng, scale=1.5).reshape(7, 10)
    for fmt in FORMATS:
        want = reference.quantize(x, fmt, seed=3, counter=2 ** 64 - 20)
        check(f"quantize {fmt.spec}", dispatch.quantize(x, fmt, seed=3, counter=2 ** 64 - 20, backend="cuda"), want)
        y = x.copy()
        dispatch.quantize_(y, fmt, seed=3, counter=2 ** 64 - 20, backend="cuda")
        check(f"quantize_ {fmt.spec}", y, want)
    check("quantize empty", dispatch.quantize(np.zeros((0, 3), np.float32), FORMATS[1], backend="cuda"),
          np.zeros((0, 3), np.float32))

    R = rng.normal(0, 0.4, (3, 5)).astype(np.float32)
    O = np.tanh(rng.normal(0, 1, (3, 4))).astype(np.float32)
    for fmt in UPDATE_FORMATS:
        for acc in ACCUMULATORS:
            want = reference.per_example_update(R, O, fmt, accumulator=acc, seed=4, counter=77)
            got = dispatch.per_example_update(R, O, fmt, accumulator=acc, seed=4, counter=77, backend="cuda")
            check(f"per_example {fmt.spec} acc={getattr(acc, 'spec', None)}", got, want)
    for shape in [(0, 2, 3), (1, 1, 1), (2, 0, 3)]:
        Rs = rng.normal(0, 1, shape[:2]).astype(np.float32)
        Os = rng.normal(0, 1, (shape[0], shape[2])).astype(np.float32)
        check(f"per_example shape {shape}", dispatch.per_example_update(Rs, Os, FixedPoint(8, 6), backend="cuda"),
              reference.per_example_update(Rs, Os, FixedPoint(8, 6)))

    M = (rng.random((6, 4)) < 0.4).astype(np.float32) * np.float32(0.25)
    M[:, 1] = 0
    lists = dispatch.binary_to_index_lists(M)
    Rs = rng.normal(0, 1, (3, 6)).astype(np.float32)
    check("sparse_feedback", dispatch.sparse_feedback_product(Rs, lists, backend="cuda"),
          reference.sparse_feedback_product(Rs, lists))

    C = rng.normal(0, 0.3, (5, 3)).astype(np.float32)
    rf, cf = FixedPoint(8, 5, rounding="stochastic"), FixedPoint(6, 5)
    for out_fmt in [None, FixedPoint(8, 4, rounding="stochastic"), LogQuant(2, 3, "stochastic")]:
        check(f"lowbit_dense out={getattr(out_fmt, 'spec', None)}",
              dispatch.lowbit_dense_product(R, C, rf, cf, out_fmt=out_fmt, seed=2, counter=9, backend="cuda"),
              reference.lowbit_dense_product(R, C, rf, cf, out_fmt=out_fmt, seed=2, counter=9))

    X = awkward_values(24, rng).reshape(4, 3, 2)
    for A in [FixedPoint(6, 3), FixedPoint(6, 3, rounding="stochastic", overflow="wrap"), FixedPoint(4, 2)]:
        check(f"accumulate_fixed {A.spec}", dispatch.accumulate_fixed(X, A, seed=1, counter=5, backend="cuda"),
              reference.accumulate_fixed(X, A, seed=1, counter=5))

    # stored weights: w on the grid, an update that saturates some entries
    for fmt in FIXED_FORMATS:
        w = reference.quantize(rng.normal(0, 0.5, 9).astype(np.float32), fmt)
        g = awkward_values(9, rng, scale=2.0)
        want = reference.add_quantize(w, g, 0.37, fmt, seed=5, counter=2 ** 64 - 3)
        got = w.copy()
        dispatch.add_quantize_(got, g, 0.37, fmt, seed=5, counter=2 ** 64 - 3, backend="cuda")
        check(f"add_quantize_ {fmt.spec}", got, want)

    return checks.exit_status()


if __name__ == "__main__":
    sys.exit(main())
