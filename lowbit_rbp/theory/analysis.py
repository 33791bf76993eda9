"""Integration, fixed points and linear stability for the section-7 systems (see :mod:`lowbit_rbp.theory`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares

from ..errors import bad_value
from .jacobian import fd_jac

__all__ = ["Trajectory", "integrate", "fd_jacobian", "jacobian_eigenvalues", "classify_fixed_point",
           "find_fixed_point", "perturbation_ratio", "invariant_drift", "METHODS"]

METHODS = ("DOP853", "RK45", "Radau", "LSODA", "BDF")


@dataclass(frozen=True)
class Trajectory:
    t: np.ndarray          # (n_t,)
    y: np.ndarray          # (n_t, dim)
    success: bool
    message: str
    nfev: int

    @property
    def final(self) -> np.ndarray:
        return self.y[-1]


def integrate(system, y0, t_end: float, *, n_eval: int = 401, t_eval=None, method: str = "DOP853",
              rtol: float = 1e-11, atol: float = 1e-12, log_time: bool = False,
              max_step: float = math.inf) -> Trajectory:
    """Solve ``dy/dt = system.rhs(t, y)`` from ``y0`` on ``[0, t_end]`` with ``solve_ivp``.

    Defaults are tight (DOP853, rtol 1e-11, atol 1e-12). Implicit methods (Radau, BDF, LSODA) get
    ``system.jac``. ``log_time`` spaces the output points geometrically (useful for slow tails).
    """
    if method not in METHODS:
        raise bad_value("method", method, " | ".join(METHODS))
    t_end = float(t_end)
    if not (math.isfinite(t_end) and t_end > 0):
        raise bad_value("t_end", t_end, "a finite number > 0")
    if not (rtol > 0 and atol > 0):
        raise bad_value("(rtol, atol)", (rtol, atol), "both > 0")
    y0 = np.asarray(y0, dtype=float)
    if y0.ndim != 1 or not np.all(np.isfinite(y0)):
        raise bad_value("initial state", y0.tolist(), "a 1-D array of finite numbers")
    if t_eval is None:
        if log_time:
            t_eval = np.concatenate(([0.0], np.geomspace(min(1e-3, t_end / 10), t_end, n_eval - 1)))
        else:
            t_eval = np.linspace(0.0, t_end, n_eval)
    kw = {}
    if method in ("Radau", "BDF", "LSODA") and hasattr(system, "jac"):
        kw["jac"] = system.jac
    sol = solve_ivp(system.rhs, (0.0, t_end), y0, method=method, t_eval=t_eval, rtol=rtol, atol=atol,
                    max_step=max_step, **kw)
    return Trajectory(t=sol.t, y=sol.y.T.copy(), success=bool(sol.success), message=str(sol.message),
                      nfev=int(sol.nfev))


def invariant_drift(system, traj: Trajectory) -> float:
    """Largest relative change of the system's invariants along a trajectory (scale ``max(1, |I(0)|)``)."""
    inv = np.array([system.invariants(y) for y in traj.y])
    if inv.size == 0:
        return 0.0
    ref = inv[0]
    return float(np.max(np.abs(inv - ref) / np.maximum(1.0, np.abs(ref))))


def fd_jacobian(system, y, eps: float = 1e-6) -> np.ndarray:
    """Central finite-difference Jacobian of ``system.rhs`` at ``y``."""
    return fd_jac(system.rhs, y, eps)


def jacobian_eigenvalues(system, y, *, analytic: bool = True) -> np.ndarray:
    """Eigenvalues of the Jacobian at ``y`` (``system.jac`` when ``analytic``, else finite differences), sorted by real part."""
    J = system.jac(0.0, np.asarray(y, dtype=float)) if analytic else fd_jacobian(system, y)
    ev = np.linalg.eigvals(J)
    return ev[np.argsort(ev.real)]


def classify_fixed_point(system, y, *, tol: float = 1e-8) -> str:
    """``"unstable"`` if some eigenvalue has real part > tol, ``"attracting"`` if every eigenvalue not
    belonging to the (neutral) manifold of fixed points has real part < -tol, else ``"neutral"``."""
    ev = jacobian_eigenvalues(system, y)
    if np.any(ev.real > tol):
        return "unstable"
    if np.any(ev.real < -tol):
        return "attracting"
    return "neutral"


def find_fixed_point(system, y_guess, *, tol: float = 1e-13) -> np.ndarray:
    """A zero of ``system.rhs`` near ``y_guess`` (least squares; works on manifolds of fixed points)."""
    res = least_squares(lambda y: system.rhs(0.0, y), np.asarray(y_guess, dtype=float), xtol=tol, ftol=tol,
                        gtol=tol)
    return res.x


def perturbation_ratio(system, y_star, delta, t_end: float, **kw) -> tuple[float, Trajectory]:
    """Start at ``y_star + delta``; return ``|y(t_end) - y_star| / |delta|`` and the trajectory.

    A ratio >> 1 means the perturbation moved the state away (unstable fixed point); a ratio of order 1
    or less means it came back to the manifold of fixed points near ``y_star`` (attracting).
    """
    y_star = np.asarray(y_star, dtype=float)
    delta = np.asarray(delta, dtype=float)
    traj = integrate(system, y_star + delta, t_end, **kw)
    return float(np.linalg.norm(traj.final - y_star) / np.linalg.norm(delta)), traj
