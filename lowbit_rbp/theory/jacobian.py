"""Central finite-difference Jacobian of a vector field ``f(t, y)``: the systems without an analytic one
use it for ``jac``, and :func:`lowbit_rbp.theory.analysis.fd_jacobian` checks the analytic ones against it."""
from __future__ import annotations

import numpy as np

__all__ = ["fd_jac"]


def fd_jac(f, y: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Jacobian of ``f(0, y)`` by central differences, step ``eps * max(1, |y_k|)`` per coordinate."""
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
