"""The bit-true channel's CUDA kernels: same bits as the reference under the Numba CUDA
simulator, and part of the PTX that ``test_kernels_cuda.py`` compiles for sm_80 / sm_90."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kcases import run_cudasim_script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHANNEL_KERNELS = {"fixed_product", "fixed_sparse_product", "fprime_lut", "fixed_scale_round"}


def test_channel_cuda_kernels_match_reference_under_simulator():
    run_cudasim_script(HERE / "cudasim_channel_check.py")


def test_channel_kernels_are_compiled_by_the_ptx_test():
    """``compile_ptx_all`` (sm_80 and sm_90 in test_kernels_cuda.py) covers every entry of
    KERNELS, each with a signature: the channel kernels must be among them."""
    code = ("from kernels import cuda as ck; import sys; s = ck.signatures();"
            f"names = {sorted(CHANNEL_KERNELS)!r};"
            "missing = [n for n in names if n not in ck.KERNELS or n not in s];"
            "print(missing); sys.exit(bool(missing))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stdout + res.stderr
