"""Real stochastic gradient (BP) / random backpropagation (RBP, SRBP) on a tiny linear chain.

Data: ``I ~ N(0, input_std^2)``, ``T = w_star I + noise`` with ``noise ~ N(0, noise_std^2)``, fresh samples
every step (online learning from the distribution). Hence ``alpha = E[IT] = w_star input_std^2`` and
``beta = E[I^2] = input_std^2``; with learning rate ``eta`` the averaged dynamics is the ODE of
:class:`lowbit_rbp.theory.chains.Chain` in time ``t = eta * step``. Many independent runs are simulated
at once (vectorised over runs); :func:`mean_sgd_trajectory` averages them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import bad_value
from .chains import Chain
from .checks import check_feedback, check_length

__all__ = ["SGDResult", "simulate_sgd_chain", "mean_sgd_trajectory", "chain_for_data"]


@dataclass(frozen=True)
class SGDResult:
    t: np.ndarray        # (n_rec,) ODE time eta * step
    runs: np.ndarray     # (n_runs, n_rec, L) weights of every run
    diverged: int        # runs that overflowed (set to NaN)

    @property
    def mean(self) -> np.ndarray:
        return np.nanmean(self.runs, axis=0)

    @property
    def std(self) -> np.ndarray:
        return np.nanstd(self.runs, axis=0)

    @property
    def sem(self) -> np.ndarray:
        n = np.sum(np.isfinite(self.runs[:, 0, 0]))
        return self.std / math.sqrt(max(n, 1))


def _positive(what, v, integer=False):
    try:
        x = int(v) if integer else float(v)
    except (TypeError, ValueError):
        raise bad_value(what, v, "an integer >= 1" if integer else "a finite number > 0") from None
    if integer and (x != v or x < 1):
        raise bad_value(what, v, "an integer >= 1")
    if not integer and not (math.isfinite(x) and x > 0):
        raise bad_value(what, v, "a finite number > 0")
    return x


def chain_for_data(feedback, rule: str = "rbp", w_star: float = 1.0, input_std: float = 1.0) -> Chain:
    """The averaged ODE matching :func:`simulate_sgd_chain` with the same arguments."""
    beta = input_std ** 2
    return Chain(feedback=tuple(feedback), alpha=w_star * beta, beta=beta, rule=rule)


def simulate_sgd_chain(a0, feedback, *, rule: str = "rbp", w_star: float = 1.0, noise_std: float = 0.1,
                       input_std: float = 1.0, eta: float = 0.01, n_steps: int = 1000, n_runs: int = 100,
                       batch_size: int = 1, record_every: int = 10, seed: int = 0) -> SGDResult:
    """Online SGD on a linear chain ``O = a_1 ... a_L I`` with the learning channel ``rule``.

    ``rule="rbp"``: ``R^L = T - O``, ``R^i = C^i R^{i+1}`` (``feedback`` = backward weights ``C^1..C^{L-1}``);
    ``"srbp"``: ``R^i = c_i (T - O)``; ``"bp"``: ``R^i = a_{i+1} R^{i+1}``. Update ``Delta a_i = eta mean(R^i O^{i-1})``.
    """
    a0 = np.asarray(a0, dtype=float)
    L = check_length(a0.size, "chain length L = len(a0)")
    if rule not in ("rbp", "srbp", "bp"):
        raise bad_value("rule", rule, "rbp | srbp | bp")
    fb = np.asarray(feedback, dtype=float).ravel()
    if fb.size != L - 1:
        raise bad_value("len(feedback)", fb.size, f"L - 1 = {L - 1}")
    if rule != "bp":
        fb = np.array([check_feedback(f"feedback[{i}]", v) for i, v in enumerate(fb)])
    eta = _positive("eta (learning rate)", eta)
    n_steps = _positive("n_steps", n_steps, integer=True)
    n_runs = _positive("n_runs", n_runs, integer=True)
    batch_size = _positive("batch_size", batch_size, integer=True)
    record_every = _positive("record_every", record_every, integer=True)
    input_std = _positive("input_std", input_std)
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise bad_value("noise_std", noise_std, "a finite number >= 0")
    if not math.isfinite(w_star):
        raise bad_value("w_star", w_star, "a finite number")

    rng = np.random.default_rng(seed)
    a = np.tile(a0, (n_runs, 1))                       # (R, L)
    rec_steps = list(range(0, n_steps + 1, record_every))
    if rec_steps[-1] != n_steps:
        rec_steps.append(n_steps)
    out = np.empty((n_runs, len(rec_steps), L))
    k = 0
    eff = np.append(np.cumprod(fb[::-1])[::-1], 1.0) if rule == "rbp" else np.append(fb, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(n_steps + 1):
            if step == rec_steps[k]:
                out[:, k] = a
                k += 1
                if k == len(rec_steps):
                    break
            I = rng.standard_normal((n_runs, batch_size)) * input_std
            T = w_star * I + noise_std * rng.standard_normal((n_runs, batch_size))
            pre = np.concatenate((np.ones((n_runs, 1)), np.cumprod(a, axis=1)[:, :-1]), axis=1)  # a_1..a_{i-1}
            P = pre[:, -1] * a[:, -1]
            err = T - P[:, None] * I                                   # (R, B)
            # mean over the batch of err * I: the presynaptic activity of layer i is pre_i * I
            eI = np.mean(err * I, axis=1)                              # (R,)
            if rule == "bp":
                post = np.concatenate((np.cumprod(a[:, ::-1], axis=1)[:, ::-1][:, 1:], np.ones((n_runs, 1))), axis=1)
                a = a + eta * post * pre * eI[:, None]
            else:
                a = a + eta * eff[None, :] * pre * eI[:, None]
    bad = ~np.all(np.isfinite(out), axis=(1, 2))
    out[bad] = np.nan
    return SGDResult(t=eta * np.asarray(rec_steps, dtype=float), runs=out, diverged=int(bad.sum()))


def mean_sgd_trajectory(a0, feedback, **kw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, mean, std)`` over ``n_runs`` independent SGD runs (see :func:`simulate_sgd_chain`)."""
    res = simulate_sgd_chain(a0, feedback, **kw)
    return res.t, res.mean, res.std
