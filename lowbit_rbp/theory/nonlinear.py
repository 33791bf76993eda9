"""The non-linear ``[1,1,1]`` net of the paper (section 7, eq. 113-119, Theorem 12): hidden ``f(x) = x^mu``,
with or without ``f'`` in the rule, and the Gaussian moments that set its constants."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import bad_value
from .checks import check_alpha, check_beta, check_feedback, check_mu, check_rule, check_state, finite
from .jacobian import fd_jac

__all__ = ["Nonlinear111", "gaussian_abs_moment", "power_moments"]


def _spow(x, p):
    """Odd power ``sign(x) |x|^p`` (= ``x^p`` for ``x >= 0``)."""
    return np.sign(x) * np.abs(x) ** p


def gaussian_abs_moment(p: float) -> float:
    """``E|I|^p`` for ``I ~ N(0, 1)``: ``2^(p/2) Gamma((p+1)/2) / sqrt(pi)``."""
    return 2 ** (p / 2) * math.gamma((p + 1) / 2) / math.sqrt(math.pi)


def power_moments(mu: float, k: float = 1.0, target: str = "linear") -> dict:
    """Moments of eq. 113-114 for ``I ~ N(0,1)``, ``f(x) = sign(x)|x|^mu`` and target ``T = k I`` (``"linear"``)
    or ``T = k f(I)`` (``"power"``, realisable by the net), plus independent zero-mean noise.

    ``alpha = E[T f(I)]``, ``beta = E[f(I)^2]``, ``gamma = E[T I]``, ``delta = E[f(I) I]``.
    """
    mu = check_mu(mu)
    k = finite("k (target slope)", k)
    if target not in ("linear", "power"):
        raise bad_value("target", target, "linear | power")
    beta = gaussian_abs_moment(2 * mu)
    delta = gaussian_abs_moment(1 + mu)
    if target == "linear":
        return dict(alpha=k * delta, beta=beta, gamma=k, delta=delta)
    return dict(alpha=k * beta, beta=beta, gamma=k * delta, delta=delta)


@dataclass(frozen=True)
class Nonlinear111:
    """``[1,1,1]`` with hidden ``f(x) = x^mu`` (odd extension), linear output: ``O = a2 f(a1 I)``.

    With ``f'`` in the rule (eq. 114): ``da1/dt = c1 mu a1^(mu-1) (alpha - beta P)``,
    ``da2/dt = a1^mu (alpha - beta P)``, ``P = a2 a1^mu``. Without ``f'`` (eq. 113):
    ``da1/dt = c1 (gamma - delta P)``. ``rule="bp"`` is gradient descent (eq. 119, always with ``f'``).
    """

    c1: float = 1.0
    mu: float = 1.0 / 3.0
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    delta: float = 1.0
    fprime: bool = True
    rule: str = "rbp"
    n: int = field(default=2, init=False)

    def __post_init__(self):
        check_rule(self.rule, ("rbp", "bp"))
        object.__setattr__(self, "mu", check_mu(self.mu))
        object.__setattr__(self, "alpha", check_alpha(self.alpha, "alpha = E[T f(I)]"))
        object.__setattr__(self, "beta", check_beta(self.beta, "beta = E[f(I)^2]"))
        object.__setattr__(self, "gamma", finite("gamma = E[T I]", self.gamma))
        object.__setattr__(self, "delta", finite("delta = E[f(I) I]", self.delta))
        if self.rule == "rbp":
            object.__setattr__(self, "c1", check_feedback("c1", self.c1))
        elif not self.fprime:
            raise bad_value("fprime", self.fprime, "True for rule=bp (gradient descent always has f')")

    @classmethod
    def gaussian(cls, mu: float, c1: float = 1.0, k: float = 1.0, target: str = "linear", fprime: bool = True,
                 rule: str = "rbp") -> "Nonlinear111":
        return cls(c1=c1, mu=mu, fprime=fprime, rule=rule, **power_moments(mu, k, target))

    def product(self, y) -> float:
        return float(y[1] * _spow(y[0], self.mu))

    def rhs(self, t, y):
        a1, a2 = y
        fa = _spow(a1, self.mu)
        e = self.alpha - self.beta * a2 * fa
        da2 = fa * e
        if self.rule == "bp":
            da1 = a2 * self.mu * abs(a1) ** (self.mu - 1) * e
        elif self.fprime:
            da1 = self.c1 * self.mu * abs(a1) ** (self.mu - 1) * e
        else:
            da1 = self.c1 * (self.gamma - self.delta * a2 * fa)
        return np.array([da1, da2])

    def jac(self, t, y):
        return fd_jac(self.rhs, y, eps=1e-7)

    @property
    def optimum(self) -> float:
        return self.alpha / self.beta

    def error(self, y) -> float:
        return abs(self.alpha - self.beta * self.product(y))

    def has_fixed_points(self, rtol: float = 1e-12) -> bool:
        """With ``f'``: always (``a2 a1^mu = alpha/beta``). Without: only if ``alpha/beta = gamma/delta``."""
        if self.fprime or self.rule == "bp":
            return True
        if self.delta == 0:
            return self.gamma == 0
        a, g = self.alpha / self.beta, self.gamma / self.delta
        return abs(a - g) <= rtol * max(abs(a), abs(g), 1e-300)

    def invariants(self, y) -> np.ndarray:
        """RBP with ``f'``: ``a2 - a1^2/(2 c1 mu)`` (eq. 115). Otherwise none is known: empty array."""
        if self.rule == "rbp" and self.fprime:
            return np.array([y[1] - y[0] ** 2 / (2 * self.c1 * self.mu)])
        return np.array([])

    def drift_rate_without_fprime(self) -> float:
        """Asymptotic ``da1/dt = c1 (gamma - delta alpha/beta)`` once ``P`` has settled at ``alpha/beta`` (no ``f'``)."""
        return self.c1 * (self.gamma - self.delta * self.alpha / self.beta)

    def predicted_fixed_point(self, y0) -> np.ndarray:
        """Theorem 12 (``alpha, beta, c1 > 0``, ``a1(0) > 0``, with ``f'``): the positive root of
        ``alpha - beta t^mu (t^2/(2 c1 mu) + K) = 0`` (eq. 117) reached from ``a1(0)`` in the direction of flow."""
        from scipy.optimize import brentq

        if not (self.rule == "rbp" and self.fprime):
            raise bad_value("rule/fprime", (self.rule, self.fprime), "rbp with fprime=True")
        y0 = check_state(y0, 2, "initial state")
        if not (self.alpha > 0 and self.c1 > 0 and y0[0] > 0):
            raise bad_value("(alpha, c1, a1(0))", (self.alpha, self.c1, float(y0[0])), "all > 0 (Theorem 12)")
        K = self.invariants(y0)[0]

        def g(t):
            return self.alpha - self.beta * t ** self.mu * (t * t / (2 * self.c1 * self.mu) + K)

        x0 = float(y0[0])
        s = g(x0)
        if s == 0:
            a1 = x0
        elif s > 0:  # a1 grows; g -> -inf as t -> inf
            hi = max(2 * x0, 1.0)
            while g(hi) > 0:
                hi *= 2
            lo = x0
            # first sign change above x0
            grid = np.linspace(lo, hi, 2001)
            vals = np.array([g(t) for t in grid])
            k = int(np.argmax(vals <= 0))
            a1 = brentq(g, grid[k - 1], grid[k], xtol=1e-15, rtol=1e-15)
        else:  # a1 decreases; g(0+) = alpha > 0
            grid = np.linspace(x0, 0.0, 2001)[:-1]
            grid = np.append(grid, x0 * 1e-12)
            vals = np.array([g(t) for t in grid])
            k = int(np.argmax(vals >= 0))
            a1 = brentq(g, grid[k], grid[k - 1], xtol=1e-15, rtol=1e-15)
        return np.array([a1, a1 * a1 / (2 * self.c1 * self.mu) + K])
