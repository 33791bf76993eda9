"""Bad formats and bad kernel inputs fail with clear messages: the bad value and what is allowed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels import dispatch, reference
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.core.formats import OVERFLOWS, ROUNDINGS, UNDERFLOWS, FixedPoint, LogQuant, parse_format


def _msg(exc_info) -> str:
    return str(exc_info.value)


@pytest.mark.parametrize("make,bad,allowed", [
    (lambda: LogQuant(2, 0), "got 0", ">= 1"),
    (lambda: LogQuant(2, -3), "got -3", ">= 1"),
    (lambda: LogQuant(2, 2.5), "got 2.5", "integer >= 1"),
    (lambda: parse_format("log:alpha=2,bits=0"), "got 0", ">= 1"),
])
def test_bits_below_one(make, bad, allowed):
    with pytest.raises(ConfigError) as e:
        make()
    assert "bits" in _msg(e) and bad in _msg(e) and allowed in _msg(e)


@pytest.mark.parametrize("make", [lambda: FixedPoint(4, 6), lambda: parse_format("fixed:w=4,f=6")])
def test_word_below_frac(make):
    with pytest.raises(ConfigError) as e:
        make()
    m = _msg(e)
    assert "frac=6" in m and "word=4" in m and "0 <= frac <= word" in m


@pytest.mark.parametrize("make", [lambda: FixedPoint(8, 4, rounding="up"),
                                  lambda: parse_format("fixed:w=8,f=4,round=up")])
def test_unknown_rounding(make):
    with pytest.raises(ConfigError) as e:
        make()
    m = _msg(e)
    assert "rounding" in m and "'up'" in m
    assert all(r in m for r in ROUNDINGS)


@pytest.mark.parametrize("alpha", [0, -1.5, float("nan"), float("inf")])
def test_alpha_not_positive(alpha):
    with pytest.raises(ConfigError) as e:
        LogQuant(alpha, 3)
    m = _msg(e)
    assert "alpha" in m and repr(alpha) in m and "> 0" in m


def test_alpha_zero_in_spec():
    with pytest.raises(ConfigError) as e:
        parse_format("log:alpha=0,bits=3")
    assert "alpha" in _msg(e) and "0.0" in _msg(e) and "> 0" in _msg(e)


def test_other_bad_modes_name_the_allowed_ones():
    with pytest.raises(ConfigError) as e:
        LogQuant(2, 3, underflow="zero")
    assert "'zero'" in _msg(e) and all(u in _msg(e) for u in UNDERFLOWS)
    with pytest.raises(ConfigError) as e:
        FixedPoint(8, 4, overflow="clamp")
    assert "'clamp'" in _msg(e) and all(o in _msg(e) for o in OVERFLOWS)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        LogQuant(2, 0)


# --- kernel inputs ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_update_batch_mismatch_names_both_shapes(backend):
    R, O = np.zeros((3, 4), np.float32), np.zeros((5, 6), np.float32)
    with pytest.raises(ValueError) as e:
        dispatch.per_example_update(R, O, FixedPoint(8, 6), backend=backend)
    assert "(3, 4)" in _msg(e) and "(5, 6)" in _msg(e)
    with pytest.raises(ValueError) as e:
        reference.per_example_update(R, O, FixedPoint(8, 6))
    assert "(3, 4)" in _msg(e) and "(5, 6)" in _msg(e)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_update_out_and_dims(backend):
    R, O = np.zeros((3, 4), np.float32), np.zeros((3, 6), np.float32)
    with pytest.raises(ValueError) as e:
        dispatch.per_example_update(R, O, FixedPoint(8, 6), out=np.zeros((6, 4), np.float32), backend=backend)
    assert "(6, 4)" in _msg(e) and "(4, 6)" in _msg(e)
    with pytest.raises(ValueError) as e:
        dispatch.per_example_update(R[0], O, FixedPoint(8, 6), backend=backend)
    assert "(4,)" in _msg(e) and "(3, 6)" in _msg(e)
    with pytest.raises(ValueError, match="accumulator format.*FixedPoint"):
        dispatch.per_example_update(R, O, FixedPoint(8, 6), accumulator=LogQuant(2, 3), backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dense_product_shape_and_format_errors(backend):
    R, C = np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32)
    f = FixedPoint(8, 4)
    with pytest.raises(ValueError) as e:
        dispatch.lowbit_dense_product(R, C, f, f, backend=backend)
    assert "(2, 3)" in _msg(e) and "(4, 5)" in _msg(e)
    with pytest.raises(ValueError, match="r_fmt.*FixedPoint"):
        dispatch.lowbit_dense_product(R, C.T[:3], LogQuant(2, 3), f, backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sparse_product_sender_mismatch(backend):
    lists = dispatch.binary_to_index_lists(np.eye(5, 3, dtype=np.float32))
    R = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError) as e:
        dispatch.sparse_feedback_product(R, lists, backend=backend)
    assert "(2, 4)" in _msg(e) and "(5, 3)" in _msg(e)
    with pytest.raises(ValueError, match="sender indices"):
        dispatch.sparse_feedback_product(np.zeros((2, 2), np.float32), (lists.indptr, lists.indices), 1.0,
                                         backend=backend)
    with pytest.raises(ValueError, match="scale is required"):
        dispatch.sparse_feedback_product(R, (lists.indptr, lists.indices), backend=backend)


def test_backend_and_dtype_errors():
    t = torch.zeros(3)
    with pytest.raises(ValueError) as e:
        dispatch.quantize_(t, LogQuant(2, 3), backend="gpu")
    assert "'gpu'" in _msg(e) and "numpy, numba, cuda, auto" in _msg(e)
    with pytest.raises(ValueError, match="float64.*float32"):
        dispatch.quantize_(torch.zeros(3, dtype=torch.float64), LogQuant(2, 3), backend="numba")
    with pytest.raises(ValueError, match="FixedPoint"):
        dispatch.accumulate_fixed(np.zeros((2, 2), np.float32), LogQuant(2, 3))
