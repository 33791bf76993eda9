"""Theorem 1 of the paper: the limit of a one-dimensional polynomial flow ``dx/dt = q(x)``, and the real roots
it is chosen among (also used by :class:`lowbit_rbp.theory.wide.CompressiveN1N`)."""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import Polynomial

__all__ = ["real_roots", "theorem1_endpoint"]


def real_roots(q: Polynomial) -> np.ndarray:
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
    roots = real_roots(q)
    if roots.size and np.min(np.abs(roots - x0)) <= 1e-12 * max(1.0, abs(x0)):
        return float(roots[np.argmin(np.abs(roots - x0))])
    if s == 0.0:
        return float(x0)
    if s > 0:
        ahead = roots[roots > x0]
        return float(ahead[0]) if ahead.size else math.inf
    behind = roots[roots < x0]
    return float(behind[-1]) if behind.size else -math.inf
