"""CUDA kernels: same bits as the reference under the Numba CUDA simulator, and PTX for sm_80 /
sm_90 from NVVM (no GPU needed for either)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kcases import run_cudasim_script

HERE = Path(__file__).resolve().parent


def test_cuda_kernels_match_reference_under_simulator():
    run_cudasim_script(HERE / "cudasim_check.py")


def _nvvm_or_skip():
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
    except Exception as exc:  # no CUDA toolkit / libnvvm on this machine
        pytest.skip(f"NVVM (libnvvm) is not available, so compile_ptx cannot run: {exc!r}")


# NVVM contracts a*b + c into fma by default (fastmath stays off). That is harmless exactly when
# the product is exact: code * 2^-frac + 0.0 (no underflow), and u24 * 2^-24 + y should the RNG's
# uniform (now built from bits, without a multiply) ever be written as a product again.
_FMA = re.compile(r"fma\.rn\.f64\s+%fd\d+,\s*(\S+),\s*(\S+),\s*(\S+);")
_WIDEN = re.compile(r"cvt\.f64\.f32\s+(%fd\d+),")


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
def test_cuda_kernels_compile_to_ptx(cc):
    _nvvm_or_skip()
    from kernels import cuda as ck
    ptx = ck.compile_ptx_all(cc)
    assert set(ptx) == set(ck.KERNELS)
    for name, text in ptx.items():
        assert f".target sm_{cc[0]}{cc[1]}" in text, name
        assert ".entry" in text, name
        assert ".ftz" not in text and ".approx" not in text, f"{name}: flush-to-zero / approximate math"
        assert "fma.rn.f32" not in text, name
        # registers holding a float32 value widened to float64: a product of two of them is exact
        widened = set(_WIDEN.findall(text))
        for m in _FMA.finditer(text):
            a, b, c = m.groups()
            exact = b == "0d3E70000000000000" or c == "0d0000000000000000" or {a, b} <= widened
            assert exact, f"{name}: unexpected fused multiply-add {m.group(0)}: check that its product is exact"
