"""Averaged learning ODEs of section 7 of Baldi, Sadowski & Lu (AIJ 2018).

Each system is a small frozen dataclass with ``rhs(t, y)`` (the vector field, in the form
``scipy.integrate.solve_ivp`` wants), ``jac(t, y)`` (analytic where cheap, else finite
differences), ``invariants(y)`` (the conserved quantities the paper derives), ``error(y)`` (how far
the state is from the least-squares optimum) and, where the paper gives one, ``predicted_fixed_point``
(the end point computed from the one-dimensional reduction ``da1/dt = Q(a1)`` and Theorem 1).

Notation (paper, section 7): inputs ``I``, targets ``T``, ``alpha = E[IT]``, ``beta = E[I^2]``,
forward weights ``a_i``, fixed feedback weights ``c_i``, product ``P = a_1 ... a_L``. Time is
``t = eta * (number of online updates)``.

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

__all__ = [
    "Linear111", "Chain", "Expansive1N1", "CompressiveN1N", "Nonlinear111",
    "gaussian_abs_moment", "power_moments", "theorem1_endpoint",
    "check_feedback", "check_beta", "check_alpha", "check_length", "check_mu",
]

# ---------------------------------------------------------------- validation


def _finite(what: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise bad_value(what, value, "a finite real number") from None
    if not math.isfinite(v):
        raise bad_value(what, value, "a finite real number")
    return v


def check_feedback(what: str, value) -> float:
    """A feedback weight of the learning channel: finite and non-zero (0 is the paper's trivial case)."""
    v = _finite(what, value)
    if v == 0.0:
        raise bad_value(what, value, "a finite non-zero number (a zero feedback weight is the paper's "
                        "trivial case: the layer below never learns)")
    return v


def check_beta(value, what: str = "beta = E[I^2]") -> float:
    v = _finite(what, value)
    if v <= 0.0:
        raise bad_value(what, value, "a finite number > 0 (a second moment is never negative, and "
                        "beta = 0 is the trivial case I = 0)")
    return v


def check_alpha(value, what: str = "alpha = E[IT]") -> float:
    return _finite(what, value)


def check_length(value, what: str = "chain length L (number of forward weights)") -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise bad_value(what, value, "an integer >= 2") from None
    if n != value or n < 2:
        raise bad_value(what, value, "an integer >= 2 (L = 2 is the [1,1,1] net)")
    return n


def check_width(value, what: str = "width N") -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise bad_value(what, value, "an integer >= 1") from None
    if n != value or n < 1:
        raise bad_value(what, value, "an integer >= 1")
    return n


def check_mu(value, what: str = "mu (exponent of f(x) = x^mu)") -> float:
    v = _finite(what, value)
    if v <= 0.0:
        raise bad_value(what, value, "a finite number > 0")
    return v


def _check_rule(rule: str, allowed: tuple[str, ...]) -> str:
    if rule not in allowed:
        raise bad_value("rule", rule, " | ".join(allowed))
    return rule


def _state(y, n: int, what: str = "state") -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.shape != (n,):
        raise bad_value(f"{what} shape", y.shape, f"({n},)")
    if not np.all(np.isfinite(y)):
        raise bad_value(what, y.tolist(), "finite numbers")
    return y


def _fd_jac(f, y: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    n = y.size
    J = np.empty((n, n))
    for k in range(n):
        h = eps * max(1.0, abs(y[k]))
        yp, ym = y.copy(), y.copy()
        yp[k] += h
        ym[k] -= h
        J[:, k] = (np.asarray(f(0.0, yp)) - np.asarray(f(0.0, ym))) / (2 * h)
    return J


# ---------------------------------------------------------------- Theorem 1


def _real_roots(q: Polynomial) -> np.ndarray:
    """Real roots of a polynomial, polished by Newton steps on the polynomial itself."""
    q = q.trim()
    if q.degree() < 1:
        return np.array([])
    roots = q.roots()
    scale = max(1.0, float(np.max(np.abs(roots))))
    real = np.sort(roots[np.abs(roots.imag) <= 1e-6 * scale].real)
    dq = q.deriv()
    out = []
    for r in real:
        for _ in range(50):
            d = dq(r)
            if d == 0:
                break
            step = q(r) / d
            r -= step
            if abs(step) <= 1e-15 * max(1.0, abs(r)):
                break
        out.append(r)
    return np.unique(np.round(np.asarray(out), 12))


def theorem1_endpoint(q: Polynomial, x0: float) -> float:
    """Limit of ``dx/dt = q(x)`` from ``x0`` (paper, Theorem 1): the nearest root in the direction of flow.

    Returns ``+inf``/``-inf`` when the flow leaves every root behind (finite-time blow-up).
    """
    s = q(x0)
    roots = _real_roots(q)
    if roots.size and np.min(np.abs(roots - x0)) <= 1e-12 * max(1.0, abs(x0)):
        return float(roots[np.argmin(np.abs(roots - x0))])
    if s == 0.0:
        return float(x0)
    if s > 0:
        ahead = roots[roots > x0]
        return float(ahead[0]) if ahead.size else math.inf
    behind = roots[roots < x0]
    return float(behind[-1]) if behind.size else -math.inf


# ---------------------------------------------------------------- [1,1,1]


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
        _check_rule(self.rule, ("rbp", "bp"))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "beta", check_beta(self.beta))
        if self.rule == "rbp":
            object.__setattr__(self, "c1", check_feedback("c1", self.c1))
        else:
            object.__setattr__(self, "c1", _finite("c1", self.c1))

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
        y0 = _state(y0, 2, "initial state")
        a1 = theorem1_endpoint(self.reduced_polynomial(y0), y0[0])
        C = self.invariants(y0)[0]
        return np.array([a1, a1 * a1 / (2 * self.c1) + C])


# ---------------------------------------------------------------- chains


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
        _check_rule(self.rule, ("rbp", "srbp", "bp"))
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
        return _fd_jac(self.rhs, y)

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
        y0 = _state(y0, self.L, "initial state")
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


# ---------------------------------------------------------------- [1,N,1]


@dataclass(frozen=True)
class Expansive1N1:
    """Linear ``[1,N,1]`` net (paper eq. 57): ``da_i/dt = c_i (alpha - beta P)``, ``db_i/dt = a_i (alpha - beta P)``.

    ``P = sum_i a_i b_i``; ``rule="bp"`` replaces ``c_i`` by ``b_i``. State ``y = (a_1..a_N, b_1..b_N)``.
    """

    c: tuple = (1.0, 1.0)
    alpha: float = 1.0
    beta: float = 1.0
    rule: str = "rbp"

    def __post_init__(self):
        _check_rule(self.rule, ("rbp", "bp"))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "beta", check_beta(self.beta))
        c = tuple(np.atleast_1d(np.asarray(self.c, dtype=float)).tolist())
        check_width(len(c), "width N = len(c)")
        if self.rule == "rbp":
            c = tuple(check_feedback(f"c[{i}]", v) for i, v in enumerate(c))
        object.__setattr__(self, "c", c)

    @property
    def N(self) -> int:
        return len(self.c)

    @property
    def n(self) -> int:
        return 2 * self.N

    @property
    def optimum(self) -> float:
        return self.alpha / self.beta

    def product(self, y) -> float:
        return float(np.dot(y[:self.N], y[self.N:]))

    def error(self, y) -> float:
        return abs(self.alpha - self.beta * self.product(y))

    def rhs(self, t, y):
        a, b = y[:self.N], y[self.N:]
        e = self.alpha - self.beta * float(np.dot(a, b))
        da = (np.asarray(self.c) if self.rule == "rbp" else b) * e
        return np.concatenate((da, a * e))

    def jac(self, t, y):
        return _fd_jac(self.rhs, y)

    def invariants(self, y) -> np.ndarray:
        """RBP: ``b_i - a_i^2/(2 c_i)`` (eq. 59) and ``c_1 a_i - c_i a_1`` (eq. 60). BP: ``b_i^2 - a_i^2``."""
        a, b = np.asarray(y[:self.N], dtype=float), np.asarray(y[self.N:], dtype=float)
        if self.rule == "bp":
            return b * b - a * a
        c = np.asarray(self.c)
        return np.concatenate((b - a * a / (2 * c), c[0] * a[1:] - c[1:] * a[0]))

    def predicted_fixed_point(self, y0) -> np.ndarray:
        """End point from ``y0``: Theorem 1 on the cubic ``Q(a1)`` of eq. 62-63."""
        if self.rule != "rbp":
            raise bad_value("rule", self.rule, "rbp")
        y0 = _state(y0, self.n, "initial state")
        c = np.asarray(self.c)
        a0, b0 = y0[:self.N], y0[self.N:]
        x = Polynomial([0.0, 1.0])
        K = a0 - c / c[0] * a0[0]
        Cb = b0 - a0 * a0 / (2 * c)
        a_p = [c[i] / c[0] * x + K[i] for i in range(self.N)]
        b_p = [a_p[i] ** 2 / (2 * c[i]) + Cb[i] for i in range(self.N)]
        P = sum((a_p[i] * b_p[i] for i in range(self.N)), Polynomial([0.0]))
        a1 = theorem1_endpoint(c[0] * (self.alpha - self.beta * P), a0[0])
        return np.array([p(a1) for p in a_p] + [p(a1) for p in b_p])


# ---------------------------------------------------------------- [N,1,N]


@dataclass(frozen=True)
class CompressiveN1N:
    """Linear ``[N,1,N]`` net (paper eq. 65): ``dA/dt = C (S_TI - B A S_II)``, ``dB/dt = (S_TI - B A S_II) A^T``.

    ``A``: 1 x N forward, ``B``: N x 1 forward, ``C``: 1 x N fixed feedback, ``S_II = E[I I^T]``,
    ``S_TI = E[T I^T]`` (both default to the identity: an autoencoder on decorrelated, normalised data,
    the case of Theorem 6). ``rule="bp"`` replaces ``C`` by ``B^T``. State ``y = (A, B)``, length ``2N``.
    """

    C: tuple = (1.0, 1.0)
    S_II: object = None
    S_TI: object = None
    rule: str = "rbp"

    def __post_init__(self):
        _check_rule(self.rule, ("rbp", "bp"))
        C = np.atleast_1d(np.asarray(self.C, dtype=float))
        N = check_width(C.size, "width N = len(C)")
        if self.rule == "rbp":
            if not np.all(np.isfinite(C)) or not np.any(C != 0):
                raise bad_value("C (feedback row)", C.tolist(), "finite numbers, not all zero")
        S_II = np.eye(N) if self.S_II is None else np.asarray(self.S_II, dtype=float)
        S_TI = np.eye(N) if self.S_TI is None else np.asarray(self.S_TI, dtype=float)
        for name, S in (("S_II = E[I I^T]", S_II), ("S_TI = E[T I^T]", S_TI)):
            if S.shape != (N, N) or not np.all(np.isfinite(S)):
                raise bad_value(f"{name} shape", S.shape, f"a finite ({N}, {N}) matrix")
        if not np.allclose(S_II, S_II.T) or np.min(np.linalg.eigvalsh(S_II)) < 0:
            raise bad_value("S_II = E[I I^T]", S_II.tolist(), "a symmetric positive semi-definite matrix")
        object.__setattr__(self, "C", tuple(C.tolist()))
        object.__setattr__(self, "S_II", S_II)
        object.__setattr__(self, "S_TI", S_TI)

    @property
    def N(self) -> int:
        return len(self.C)

    @property
    def n(self) -> int:
        return 2 * self.N

    def _M(self, y):
        A, B = y[:self.N], y[self.N:]
        return self.S_TI - np.outer(B, A) @ self.S_II

    def rhs(self, t, y):
        A, B = y[:self.N], y[self.N:]
        M = self._M(y)
        row = np.asarray(self.C) if self.rule == "rbp" else B
        return np.concatenate((row @ M, M @ A))

    def jac(self, t, y):
        return _fd_jac(self.rhs, y)

    def product(self, y) -> np.ndarray:
        """The N x N input-output map ``B A``."""
        return np.outer(y[self.N:], y[:self.N])

    def error(self, y) -> float:
        """Norm of the vector field (the fixed points are not zero-error: a rank-1 map cannot fit ``S_TI``)."""
        return float(np.linalg.norm(self.rhs(0.0, y)))

    def invariants(self, y) -> np.ndarray:
        """RBP: ``C B - ||A||^2 / 2`` (Lemma 1). BP: ``||B||^2 - ||A||^2``."""
        A, B = np.asarray(y[:self.N]), np.asarray(y[self.N:])
        if self.rule == "bp":
            return np.array([B @ B - A @ A])
        return np.array([np.asarray(self.C) @ B - 0.5 * A @ A])

    def predicted_fixed_point(self, y0) -> np.ndarray:
        """Theorem 6 (``S_II = S_TI = Id``): ``A -> t C``, ``B -> C^T / (t ||C||^2)`` with ``t`` the positive root of
        ``||C||^2 t^3 / 2 + K t - 1 = 0``, ``K = C B(0) - ||A(0)||^2 / 2``."""
        if self.rule != "rbp":
            raise bad_value("rule", self.rule, "rbp")
        if not (np.allclose(self.S_II, np.eye(self.N)) and np.allclose(self.S_TI, np.eye(self.N))):
            raise bad_value("S_II, S_TI", "not the identity", "the identity (Theorem 6: autoencoder, decorrelated data)")
        y0 = _state(y0, self.n, "initial state")
        C = np.asarray(self.C)
        K = self.invariants(y0)[0]
        c2 = float(C @ C)
        roots = _real_roots(Polynomial([-1.0, K, 0.0, 0.5 * c2]))
        t = float(roots[roots > 0][0])
        return np.concatenate((t * C, C / (t * c2)))


# ---------------------------------------------------------------- non-linear [1,1,1]


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
    k = _finite("k (target slope)", k)
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
        _check_rule(self.rule, ("rbp", "bp"))
        object.__setattr__(self, "mu", check_mu(self.mu))
        object.__setattr__(self, "alpha", check_alpha(self.alpha, "alpha = E[T f(I)]"))
        object.__setattr__(self, "beta", check_beta(self.beta, "beta = E[f(I)^2]"))
        object.__setattr__(self, "gamma", _finite("gamma = E[T I]", self.gamma))
        object.__setattr__(self, "delta", _finite("delta = E[f(I) I]", self.delta))
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
        return _fd_jac(self.rhs, y, eps=1e-7)

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
        y0 = _state(y0, 2, "initial state")
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
