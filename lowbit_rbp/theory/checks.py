"""Argument checks shared by the section-7 systems: one-line errors naming the bad value and what is allowed."""
from __future__ import annotations

import math

import numpy as np

from ..errors import bad_value

__all__ = ["finite", "check_feedback", "check_beta", "check_alpha", "check_length", "check_width", "check_mu",
           "check_rule", "check_state"]


def finite(what: str, value) -> float:
    """``value`` as a float, refusing what is not a finite real number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise bad_value(what, value, "a finite real number") from None
    if not math.isfinite(v):
        raise bad_value(what, value, "a finite real number")
    return v


def check_feedback(what: str, value) -> float:
    """A feedback weight of the learning channel: finite and non-zero (0 is the paper's trivial case)."""
    v = finite(what, value)
    if v == 0.0:
        raise bad_value(what, value, "a finite non-zero number (a zero feedback weight is the paper's "
                        "trivial case: the layer below never learns)")
    return v


def check_beta(value, what: str = "beta = E[I^2]") -> float:
    v = finite(what, value)
    if v <= 0.0:
        raise bad_value(what, value, "a finite number > 0 (a second moment is never negative, and "
                        "beta = 0 is the trivial case I = 0)")
    return v


def check_alpha(value, what: str = "alpha = E[IT]") -> float:
    return finite(what, value)


def _integer(what: str, value, low: int, note: str = "") -> int:
    """``value`` as an int >= ``low`` (a float only when it is a whole number)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise bad_value(what, value, f"an integer >= {low}") from None
    if n != value or n < low:
        raise bad_value(what, value, f"an integer >= {low}{note}")
    return n


def check_length(value, what: str = "chain length L (number of forward weights)") -> int:
    return _integer(what, value, 2, " (L = 2 is the [1,1,1] net)")


def check_width(value, what: str = "width N") -> int:
    return _integer(what, value, 1)


def check_mu(value, what: str = "mu (exponent of f(x) = x^mu)") -> float:
    v = finite(what, value)
    if v <= 0.0:
        raise bad_value(what, value, "a finite number > 0")
    return v


def check_rule(rule: str, allowed: tuple[str, ...]) -> str:
    """A learning rule among those a system supports."""
    if rule not in allowed:
        raise bad_value("rule", rule, " | ".join(allowed))
    return rule


def check_state(y, n: int, what: str = "state") -> np.ndarray:
    """A state vector of a system with ``n`` variables: shape ``(n,)``, finite entries."""
    y = np.asarray(y, dtype=float)
    if y.shape != (n,):
        raise bad_value(f"{what} shape", y.shape, f"({n},)")
    if not np.all(np.isfinite(y)):
        raise bad_value(what, y.tolist(), "finite numbers")
    return y
