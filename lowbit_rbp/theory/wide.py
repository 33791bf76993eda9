"""Linear nets with a wide layer (paper, section 7): the expansive ``[1,N,1]`` (eq. 57-63) and the compressive
``[N,1,N]`` (eq. 65, Lemma 1, Theorem 6), with RBP or BP."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial

from ..errors import bad_value
from .checks import check_alpha, check_beta, check_feedback, check_rule, check_state, check_width
from .jacobian import fd_jac
from .theorem1 import real_roots, theorem1_endpoint

__all__ = ["Expansive1N1", "CompressiveN1N"]


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
        check_rule(self.rule, ("rbp", "bp"))
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
        return fd_jac(self.rhs, y)

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
        y0 = check_state(y0, self.n, "initial state")
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
        check_rule(self.rule, ("rbp", "bp"))
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
        return fd_jac(self.rhs, y)

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
        y0 = check_state(y0, self.n, "initial state")
        C = np.asarray(self.C)
        K = self.invariants(y0)[0]
        c2 = float(C @ C)
        roots = real_roots(Polynomial([-1.0, K, 0.0, 0.5 * c2]))
        t = float(roots[roots > 0][0])
        return np.concatenate((t * C, C / (t * c2)))
