"""Shape and format checks shared with ``kernels.dispatch``: one-line ``ValueError`` for bad input."""
from __future__ import annotations

import numpy as np


def _check_2d(a: np.ndarray, name: str) -> None:
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got shape {tuple(a.shape)}")


def check_update_shapes(R_shape, O_shape, out_shape=None) -> None:
    if len(R_shape) != 2 or len(O_shape) != 2:
        raise ValueError(f"per_example_update: R and O must be 2-D (batch, out) and (batch, in); "
                         f"got R {tuple(R_shape)} and O {tuple(O_shape)}")
    if R_shape[0] != O_shape[0]:
        raise ValueError(f"per_example_update: batch sizes differ: R {tuple(R_shape)} vs O {tuple(O_shape)}")
    want = (R_shape[1], O_shape[1])
    if out_shape is not None and tuple(out_shape) != want:
        raise ValueError(f"per_example_update: out has shape {tuple(out_shape)}; R {tuple(R_shape)} "
                         f"and O {tuple(O_shape)} need {want}")


def check_product_shapes(R_shape, C_shape, out_shape=None, what: str = "lowbit_dense_product") -> None:
    if len(R_shape) != 2 or len(C_shape) != 2:
        raise ValueError(f"{what}: R and C must be 2-D; got R {tuple(R_shape)} and C {tuple(C_shape)}")
    if R_shape[1] != C_shape[0]:
        raise ValueError(f"{what}: inner sizes differ: R {tuple(R_shape)} vs C {tuple(C_shape)}")
    want = (R_shape[0], C_shape[1])
    if out_shape is not None and tuple(out_shape) != want:
        raise ValueError(f"{what}: out has shape {tuple(out_shape)}; R {tuple(R_shape)} "
                         f"and C {tuple(C_shape)} need {want}")


def require_fixed(fmt, what: str) -> None:
    if getattr(fmt, "kind", None) != "fixed":
        raise ValueError(f"{what}: got {fmt!r}; allowed: a FixedPoint format")


def accumulator_format(accumulator):
    """None / Float32 -> None (float64 accumulation); FixedPoint -> itself; anything else: error."""
    if accumulator is None or getattr(accumulator, "kind", None) == "float":
        return None
    require_fixed(accumulator, "accumulator format")
    return accumulator


def require_accumulator(acc, what: str):
    """A FixedPoint accumulator with 1 <= word <= 32 and 0 <= frac <= word (checked for duck-typed
    formats too, which the FixedPoint constructor would have refused); returns it."""
    require_fixed(acc, f"{what} accumulator")
    word, frac = acc.word, acc.frac
    if not 1 <= word <= 32:
        raise ValueError(f"{what}: accumulator word={word}; allowed: 1..32")
    if not 0 <= frac <= word:
        raise ValueError(f"{what}: accumulator frac={frac} with word={word}; allowed: 0 <= frac <= word")
    return acc
