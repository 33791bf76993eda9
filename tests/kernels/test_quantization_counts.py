"""The diagnostics' quantizer counts: the one-pass Numba kernel equals its NumPy reference exactly,
the reference equals the per-count NumPy formulas it replaced, and bad input is refused."""
import numpy as np
import pytest
import torch

from kcases import awkward_values
from kernels import cpu, dispatch, reference
from lowbit_rbp.core.formats import parse_format
from lowbit_rbp.learning.diagnostics import format_levels

FORMATS = ["log:alpha=0.5,bits=5", "log:alpha=2,bits=3,underflow=flush", "log:alpha=2,bits=1",
           "fixed:w=4,f=2", "fixed:w=8,f=6,round=stochastic", "fixed:w=12,f=10,overflow=wrap"]


def bounds(fmt):
    smallest, largest, threshold = format_levels(fmt)
    lo, hi = (fmt.int_min * fmt.scale, fmt.int_max * fmt.scale) if fmt.kind == "fixed" else (-largest, largest)
    return smallest, lo, hi, threshold


def replaced_formulas(b, a, fmt):
    """The NumPy passes the diagnostics counted with before (a float32 array against Python floats)."""
    smallest, largest, threshold = format_levels(fmt)
    n, mag = b.size, np.abs(b)
    if fmt.kind == "fixed":
        clipped = np.count_nonzero(b > fmt.int_max * fmt.scale) + np.count_nonzero(b < fmt.int_min * fmt.scale)
    else:
        clipped = np.count_nonzero(mag > largest)
    level = np.float32(smallest)
    return [n - np.count_nonzero(a), np.count_nonzero(a == level) + np.count_nonzero(a == -level), int(clipped),
            np.count_nonzero(mag < threshold) - (n - np.count_nonzero(b))]


@pytest.mark.parametrize("spec", FORMATS)
def test_kernel_equals_reference_equals_the_formulas_it_replaced(spec):
    fmt = parse_format(spec)
    rng = np.random.default_rng(3)
    total = np.zeros(4, np.int64)
    for scale in (1.0, 1e-2, 30.0):
        b = awkward_values(3000, rng, scale=scale)
        # values exactly at the bounds and their float32 neighbours
        edges = np.array([v for x in bounds(fmt) for v in (x, -x)], np.float32)
        b = np.concatenate([b, edges, np.nextafter(edges, np.float32(0)), np.nextafter(edges, np.float32(np.inf))])
        a = fmt.quantize(b).astype(np.float32)
        want = reference.quantization_counts(b, a, *bounds(fmt))
        assert want.tolist() == replaced_formulas(b, a, fmt)
        assert cpu.quantization_counts(b, a, *(np.float32(v) for v in bounds(fmt))).tolist() == want.tolist()
        got = dispatch.quantization_counts(torch.from_numpy(b), torch.from_numpy(a), *bounds(fmt), backend="auto")
        assert got.tolist() == want.tolist()
        total += want
    assert all(total > 0), total                       # the cases reach every count


def test_counts_by_hand_and_a_size_mismatch_is_refused():
    b = np.array([0, -0.0, 0.2, 0.3, 5, -5, np.nan, 1], np.float32)
    a = np.array([0, 0, 0.25, -0.25, 1, -1, np.nan, 1], np.float32)
    # zero: 2; at +-0.25: 2; above 1 or below -1: 2; non-zero under 0.26: 0.2
    for backend in ("numpy", "numba"):
        assert dispatch.quantization_counts(b, a, 0.25, -1.0, 1.0, 0.26, backend=backend).tolist() == [2, 2, 2, 1]
    with pytest.raises(ValueError, match="before has 8 values, after 7"):
        dispatch.quantization_counts(b, a[:7], 0.25, -1.0, 1.0, 0.26, backend="numba")
