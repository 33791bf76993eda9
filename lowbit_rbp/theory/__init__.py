"""Section 7 of Baldi, Sadowski & Lu (2018): averaged learning ODEs, their fixed points and figures.

- :mod:`.nonlinear`: the vector fields (``Linear111``, ``Chain``, ``Expansive1N1``, ``CompressiveN1N``,
  ``Nonlinear111``; RBP/SRBP and BP), their invariants and predicted end points.
- :mod:`.analysis`: accurate integration (``solve_ivp``), Jacobians, eigenvalues, perturbations.
- :mod:`.sgd`: real online SGD with RBP/SRBP/BP on a tiny linear chain, averaged over runs.
- :mod:`.plots` / :mod:`.report`: Figure 2 (vector field), trajectories, SGD vs ODE, ``reports/theory.md``.
- :mod:`.cli`: the ``theory`` sub-command (``register(subparsers)``).
"""
from .analysis import (Trajectory, classify_fixed_point, fd_jacobian, find_fixed_point, integrate,
                       invariant_drift, jacobian_eigenvalues, perturbation_ratio)
from .nonlinear import (Chain, CompressiveN1N, Expansive1N1, Linear111, Nonlinear111, gaussian_abs_moment,
                   power_moments, theorem1_endpoint)
from .sgd import SGDResult, chain_for_data, mean_sgd_trajectory, simulate_sgd_chain

__all__ = [
    "Linear111", "Chain", "Expansive1N1", "CompressiveN1N", "Nonlinear111", "gaussian_abs_moment",
    "power_moments", "theorem1_endpoint", "Trajectory", "integrate", "invariant_drift", "fd_jacobian",
    "jacobian_eigenvalues", "classify_fixed_point", "find_fixed_point", "perturbation_ratio",
    "SGDResult", "simulate_sgd_chain", "mean_sgd_trajectory", "chain_for_data",
]
