"""The linear ``[1,1,1]`` net of the paper (section 7, eq. 23-33; Figure 2), with RBP or BP."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import Polynomial

from ..errors import bad_value
from .checks import check_alpha, check_beta, check_feedback, check_rule, check_state, finite
from .theorem1 import theorem1_endpoint

__all__ = ["Linear111"]


@dataclass(frozen=True)
class Linear111:
    """Linear ``[1,1,1]`` chain (paper eq. 23): ``da1/dt = c1 (alpha - beta P)``, ``da2/dt = a1 (alpha - beta P)``.

    ``rule="bp"`` is gradient descent: ``da1/dt = a2 (alpha - beta P)``. State ``y = (a1, a2)``.
    """

    c1: float = 1.0
    alpha: float = 1.0
    beta: float = 1.0
    rule: str = "rbp"
    n: int = field(default=2, init=False)

    def __post_init__(self):
        check_rule(self.rule, ("rbp", "bp"))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "beta", check_beta(self.beta))
        if self.rule == "rbp":
            object.__setattr__(self, "c1", check_feedback("c1", self.c1))
        else:
            object.__setattr__(self, "c1", finite("c1", self.c1))

    # vector field
    def rhs(self, t, y):
        a1, a2 = y
        e = self.alpha - self.beta * a1 * a2
        return np.array([(self.c1 if self.rule == "rbp" else a2) * e, a1 * e])

    def jac(self, t, y):
        a1, a2 = y
        e = self.alpha - self.beta * a1 * a2
        b = self.beta
        if self.rule == "rbp":
            return np.array([[-b * self.c1 * a2, -b * self.c1 * a1],
                             [e - b * a1 * a2, -b * a1 * a1]])
        return np.array([[-b * a2 * a2, e - b * a1 * a2],
                         [e - b * a1 * a2, -b * a1 * a1]])

    def product(self, y) -> float:
        return float(y[0] * y[1])

    def dPdt(self, a1, a2):
        """``dP/dt = (a1^2 + c1 a2)(alpha - beta P)`` for RBP (``a1^2 + a2^2`` for BP); arrays allowed."""
        e = self.alpha - self.beta * a1 * a2
        return (a1 * a1 + (self.c1 * a2 if self.rule == "rbp" else a2 * a2)) * e

    def error(self, y) -> float:
        """``|alpha - beta P|``: zero exactly on the hyperbolas of fixed points (global minima)."""
        return abs(self.alpha - self.beta * y[0] * y[1])

    def excess_loss(self, y) -> float:
        """``E - E_min = beta/2 (P - alpha/beta)^2``."""
        return 0.5 * self.beta * (y[0] * y[1] - self.alpha / self.beta) ** 2

    def invariants(self, y) -> np.ndarray:
        """RBP: ``a2 - a1^2/(2 c1)`` (eq. 30). BP: ``a2^2 - a1^2``."""
        a1, a2 = y
        if self.rule == "rbp":
            return np.array([a2 - a1 * a1 / (2 * self.c1)])
        return np.array([a2 * a2 - a1 * a1])

    # geometry of Figure 2
    @property
    def optimum(self) -> float:
        """``P* = alpha / beta``."""
        return self.alpha / self.beta

    def parabola(self, a1):
        """The parabola ``a2 = -a1^2 / c1`` of critical points of ``P`` (eq. 28)."""
        return -np.asarray(a1, dtype=float) ** 2 / self.c1

    def stability_margin(self, y) -> float:
        """``c1 a2 + a1^2``: positive outside the parabola (attracting fixed points), negative inside."""
        return float(self.c1 * y[1] + y[0] ** 2)

    def transverse_eigenvalue(self, y) -> float:
        """Non-zero Jacobian eigenvalue at a fixed point: ``-beta (c1 a2 + a1^2)`` (eq. 33)."""
        return -self.beta * self.stability_margin(y)

    def parabola_hyperbola_intersection(self) -> tuple[float, float]:
        """Where ``a2 = -a1^2/c1`` meets ``a1 a2 = alpha/beta``: ``a1 = -(c1 alpha/beta)^(1/3)``."""
        a1 = -np.cbrt(self.c1 * self.alpha / self.beta)
        return float(a1), float(self.alpha / (self.beta * a1)) if a1 != 0 else 0.0

    def reduced_polynomial(self, y0) -> Polynomial:
        """``da1/dt = Q(a1) = c1 (alpha - beta a1 (a1^2/(2 c1) + C))`` along the invariant parabola."""
        if self.rule != "rbp":
            raise bad_value("rule", self.rule, "rbp (the BP invariant is not single-valued in a1)")
        C = self.invariants(y0)[0]
        x = Polynomial([0.0, 1.0])
        return self.c1 * (self.alpha - self.beta * x * (x * x / (2 * self.c1) + C))

    def predicted_fixed_point(self, y0) -> np.ndarray:
        """End point from ``(a1(0), a2(0))``: the root of the depressed cubic (eq. 31) selected by Theorem 1."""
        y0 = check_state(y0, 2, "initial state")
        a1 = theorem1_endpoint(self.reduced_polynomial(y0), y0[0])
        C = self.invariants(y0)[0]
        return np.array([a1, a1 * a1 / (2 * self.c1) + C])
