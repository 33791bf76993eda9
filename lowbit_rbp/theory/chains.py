"""Linear chains ``[1,1,...,1]`` of the paper (section 7, eq. 44-54), with RBP, SRBP or BP.

RBP versus SRBP in chains. The paper writes the chain equations (eq. 44) with one feedback constant
per layer, ``da_i/dt = c_i a_1...a_{i-1} (alpha - beta P)``, i.e. the signal reaching layer ``i`` is
``c_i (T - O)``: this is SRBP (skipped RBP, ``c_i`` connects the output to layer ``i``). In RBP the
error goes down the chain through backward weights ``C^i`` (layer ``i+1`` -> ``i``), so layer ``i``
receives ``C^i C^{i+1} ... C^{L-1} (T - O)``. For scalar chains the two coincide under
``c_i = prod_{k >= i} C^k``; ``Chain(rule="rbp")`` takes the backward weights ``C^i`` and converts.
For ``L = 2`` (the ``[1,1,1]`` net) RBP = SRBP and ``c_1 = C^1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import Polynomial

from ..errors import bad_value
from .checks import check_alpha, check_beta, check_feedback, check_length, check_rule, check_state
from .jacobian import fd_jac
from .theorem1 import theorem1_endpoint

__all__ = ["Chain"]


@dataclass(frozen=True)
class Chain:
    """Linear chain ``[1,1,...,1]`` with ``L`` forward weights (paper eq. 44; ``L = 2`` is ``[1,1,1]``).

    ``feedback`` holds ``L - 1`` numbers: for ``rule="srbp"`` the paper's ``c_1..c_{L-1}`` (output ->
    layer ``i``); for ``rule="rbp"`` the backward weights ``C^1..C^{L-1}`` (layer ``i+1`` -> ``i``); for
    ``rule="bp"`` it is ignored (may be empty). State ``y = (a_1, ..., a_L)``.
    """

    feedback: tuple = (1.0,)
    alpha: float = 1.0
    beta: float = 1.0
    rule: str = "srbp"
    L: int = field(default=0, init=False)

    def __post_init__(self):
        check_rule(self.rule, ("rbp", "srbp", "bp"))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "beta", check_beta(self.beta))
        fb = tuple(np.atleast_1d(np.asarray(self.feedback, dtype=float)).tolist()) if self.feedback is not None else ()
        L = check_length(len(fb) + 1, "chain length L (number of forward weights) = len(feedback) + 1")
        if self.rule == "bp":  # the values are unused; their count sets L
            object.__setattr__(self, "feedback", fb)
            object.__setattr__(self, "L", L)
            return
        fb = tuple(check_feedback(f"feedback[{i}] (c{i + 1})", v) for i, v in enumerate(fb))
        object.__setattr__(self, "feedback", fb)
        object.__setattr__(self, "L", L)

    @classmethod
    def bp(cls, L: int, alpha: float = 1.0, beta: float = 1.0) -> "Chain":
        return cls(feedback=(1.0,) * (check_length(L) - 1), alpha=alpha, beta=beta, rule="bp")

    @property
    def n(self) -> int:
        return self.L

    def effective_feedback(self) -> np.ndarray:
        """Per-layer constants ``c_1..c_L`` of eq. 44 (``c_L = 1``): the SRBP form of the rule."""
        if self.rule == "bp":
            raise bad_value("rule", self.rule, "rbp | srbp (BP has no fixed feedback)")
        fb = np.asarray(self.feedback, dtype=float)
        if self.rule == "rbp":
            fb = np.cumprod(fb[::-1])[::-1]
        return np.append(fb, 1.0)

    def _pre_post(self, y):
        y = np.asarray(y, dtype=float)
        pre = np.concatenate(([1.0], np.cumprod(y)[:-1]))
        post = np.concatenate((np.cumprod(y[::-1])[::-1][1:], [1.0]))
        return pre, post

    def rhs(self, t, y):
        pre, post = self._pre_post(y)
        P = pre[-1] * y[-1]
        e = self.alpha - self.beta * P
        if self.rule == "bp":
            return pre * post * e
        return self.effective_feedback() * pre * e

    def jac(self, t, y):
        return fd_jac(self.rhs, y)

    def product(self, y) -> float:
        return float(np.prod(y))

    def error(self, y) -> float:
        return abs(self.alpha - self.beta * float(np.prod(y)))

    @property
    def optimum(self) -> float:
        return self.alpha / self.beta

    def invariants(self, y) -> np.ndarray:
        """RBP/SRBP: ``a_{i+1} - c_{i+1}/(2 c_i) a_i^2`` (eq. 48). BP: ``a_{i+1}^2 - a_i^2`` (eq. 54)."""
        y = np.asarray(y, dtype=float)
        if self.rule == "bp":
            return y[1:] ** 2 - y[:-1] ** 2
        c = self.effective_feedback()
        return y[1:] - c[1:] / (2 * c[:-1]) * y[:-1] ** 2

    def reduced_polynomial(self, y0) -> tuple[Polynomial, list[Polynomial]]:
        """``Q`` with ``da1/dt = Q(a1)`` (degree ``2^L - 1``, negative leading coefficient) and ``a_i(a1)``."""
        if self.rule == "bp":
            raise bad_value("rule", self.rule, "rbp | srbp (the BP invariants are not single-valued in a1)")
        y0 = check_state(y0, self.L, "initial state")
        c = self.effective_feedback()
        K = self.invariants(y0)
        polys = [Polynomial([0.0, 1.0])]
        for i in range(self.L - 1):
            polys.append(c[i + 1] / (2 * c[i]) * polys[i] ** 2 + K[i])
        P = polys[0]
        for p in polys[1:]:
            P = P * p
        return c[0] * (self.alpha - self.beta * P), polys

    def _along_invariants(self, x: float, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States ``a_i`` and derivatives ``da_i/da1`` on the invariant curve through ``a1 = x`` (recursion)."""
        c = self.effective_feedback()
        a, d = np.empty(self.L), np.empty(self.L)
        a[0], d[0] = x, 1.0
        for i in range(self.L - 1):
            r = c[i + 1] / (2 * c[i])
            a[i + 1] = r * a[i] ** 2 + K[i]
            d[i + 1] = 2 * r * a[i] * d[i]
        return a, d

    def predicted_fixed_point(self, y0) -> np.ndarray:
        """End point from ``y0`` via Theorem 1 on ``Q``; the root is polished by Newton steps on the
        un-expanded product (the expanded degree ``2^L - 1`` coefficients lose accuracy for ``L >= 5``)."""
        Q, _ = self.reduced_polynomial(y0)
        y0 = np.asarray(y0, dtype=float)
        K = self.invariants(y0)
        x = theorem1_endpoint(Q, float(y0[0]))
        if not math.isfinite(x):
            return np.full(self.L, math.nan)
        for _ in range(60):
            a, d = self._along_invariants(x, K)
            P = float(np.prod(a))
            # dP/da1 = sum_i P/a_i * da_i/da1, computed without dividing by a_i
            dP = sum(float(np.prod(np.delete(a, i))) * d[i] for i in range(self.L))
            if dP == 0:
                break
            step = (P - self.alpha / self.beta) / dP
            x -= step
            if abs(step) <= 1e-16 * max(1.0, abs(x)):
                break
        return self._along_invariants(x, K)[0]
