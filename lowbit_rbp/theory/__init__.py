"""Section 7 of Baldi, Sadowski & Lu (2018): averaged learning ODEs, their fixed points and figures.

Each system is a small frozen dataclass with ``rhs(t, y)`` (the vector field, in the form
``scipy.integrate.solve_ivp`` wants), ``jac(t, y)`` (analytic where cheap, else finite
differences), ``invariants(y)`` (the conserved quantities the paper derives), ``error(y)`` (how far
the state is from the least-squares optimum) and, where the paper gives one, ``predicted_fixed_point``
(the end point computed from the one-dimensional reduction ``da1/dt = Q(a1)`` and Theorem 1).

Notation (paper, section 7): inputs ``I``, targets ``T``, ``alpha = E[IT]``, ``beta = E[I^2]``,
forward weights ``a_i``, fixed feedback weights ``c_i``, product ``P = a_1 ... a_L``. Time is
``t = eta * (number of online updates)``.

- The systems (RBP/SRBP and BP), their invariants and predicted end points: :mod:`.linear111`
  (``Linear111``), :mod:`.chains` (``Chain``; RBP versus SRBP), :mod:`.wide` (``Expansive1N1``,
  ``CompressiveN1N``), :mod:`.nonlinear` (``Nonlinear111``, Gaussian moments). They share
  :mod:`.checks` (argument validation), :mod:`.theorem1` (``theorem1_endpoint``, real roots) and
  :mod:`.jacobian` (finite-difference Jacobian).
- :mod:`.analysis`: accurate integration (``solve_ivp``), Jacobians, eigenvalues, perturbations.
- :mod:`.sgd`: real online SGD with RBP/SRBP/BP on a tiny linear chain, averaged over runs.
- :mod:`.plots` / :mod:`.report`: Figure 2 (vector field), trajectories, SGD vs ODE, ``reports/theory.md``.
- :mod:`.cli`: the ``theory`` sub-command (``register(subparsers)``).
"""
from .analysis import (Trajectory, classify_fixed_point, fd_jacobian, find_fixed_point, integrate,
                       invariant_drift, jacobian_eigenvalues, perturbation_ratio)
from .chains import Chain
from .linear111 import Linear111
from .nonlinear import Nonlinear111, gaussian_abs_moment, power_moments
from .sgd import SGDResult, chain_for_data, mean_sgd_trajectory, simulate_sgd_chain
from .theorem1 import theorem1_endpoint
from .wide import CompressiveN1N, Expansive1N1

__all__ = [
    "Linear111", "Chain", "Expansive1N1", "CompressiveN1N", "Nonlinear111", "gaussian_abs_moment",
    "power_moments", "theorem1_endpoint", "Trajectory", "integrate", "invariant_drift", "fd_jacobian",
    "jacobian_eigenvalues", "classify_fixed_point", "find_fixed_point", "perturbation_ratio",
    "SGDResult", "simulate_sgd_chain", "mean_sgd_trajectory", "chain_for_data",
]
