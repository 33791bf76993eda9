"""Figures for section 7 (matplotlib, Agg canvas, PNG). No pyplot: figures never touch global state."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import bad_value
from .analysis import integrate
from .chains import Chain
from .linear111 import Linear111
from .nonlinear import Nonlinear111
from .wide import CompressiveN1N, Expansive1N1
from .sgd import chain_for_data, simulate_sgd_chain

__all__ = ["plot_field_111", "plot_trajectories", "plot_sgd_vs_ode", "DEFAULT_STARTS_111"]

# Starting points of the overlaid trajectories in Figure 2 (one from each region of interest).
# (-0.55, -1.9) and (-0.65, -1.4) straddle the unstable arc and end far apart.
DEFAULT_STARTS_111 = ((-2.5, 2.5), (2.5, -2.5), (0.3, -2.6), (-1.2, -2.7), (-2.6, -0.6), (2.0, 2.8),
                      (-0.55, -1.9), (-0.65, -1.4))


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise bad_value("output file", str(out), "a path ending in .png")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=130)
    os.replace(tmp, out)
    return out


def plot_field_111(out, *, c1: float = 1.0, alpha: float = 1.0, beta: float = 1.0, lim: float = 3.0,
                   grid: int = 27, starts=DEFAULT_STARTS_111, t_end: float = 60.0) -> Path:
    """The paper's Figure 2: RBP vector field of the linear ``[1,1,1]`` net in the ``(a1, a2)`` plane.

    Hyperbolas of fixed points ``a1 a2 = alpha/beta`` (solid black; the unstable arc inside the parabola
    dashed red), the parabola ``a2 = -a1^2/c1`` (green), unit arrows coloured by ``dP/dt`` (symmetric log
    scale, red = P grows, blue = P shrinks) and RBP trajectories from ``starts`` (circle = start, star = end).
    """
    from matplotlib.colors import SymLogNorm

    sys = Linear111(c1=c1, alpha=alpha, beta=beta)
    if not (np.isfinite(lim) and lim > 0):
        raise bad_value("lim (half-width of the plotted square)", lim, "a finite number > 0")
    if int(grid) != grid or grid < 5:
        raise bad_value("grid (arrows per axis)", grid, "an integer >= 5")
    fig = _figure((7.4, 6.4))
    ax = fig.add_subplot()
    g = np.linspace(-lim, lim, int(grid))
    A1, A2 = np.meshgrid(g, g)
    e = alpha - beta * A1 * A2
    U, V = c1 * e, A1 * e
    norm_uv = np.hypot(U, V)
    norm_uv[norm_uv == 0] = 1.0
    dP = sys.dPdt(A1, A2)
    vmax = float(np.max(np.abs(dP))) or 1.0
    cnorm = SymLogNorm(linthresh=0.1, vmin=-vmax, vmax=vmax, base=10)
    # the inside of the parabola (unstable side), lightly shaded
    xs = np.linspace(-lim, lim, 400)
    par = sys.parabola(xs)
    if c1 > 0:
        ax.fill_between(xs, -lim, np.maximum(par, -lim), color="0.92", zorder=0, label="inside parabola")
    else:
        ax.fill_between(xs, np.minimum(par, lim), lim, color="0.92", zorder=0, label="inside parabola")
    q = ax.quiver(A1, A2, U / norm_uv, V / norm_uv, dP, cmap="coolwarm", norm=cnorm, angles="xy",
                  scale_units="xy", scale=(grid - 1) / (0.75 * 2 * lim), width=0.0035, zorder=2)
    cb = fig.colorbar(q, ax=ax, shrink=0.9)
    ticks = [v for v in (-1000, -100, -10, -1, 0, 1, 10, 100, 1000) if abs(v) <= vmax]
    cb.set_ticks(ticks)
    cb.set_ticklabels([f"{v:g}" for v in ticks])
    cb.set_label("dP/dt,  P = a1 a2  (symmetric log scale)")
    ax.plot(xs, par, color="tab:green", lw=2, label=r"parabola $a_2=-a_1^2/c_1$", zorder=3)
    # hyperbola branches, split into stable / unstable arcs
    P0 = alpha / beta
    lab_s, lab_u = r"fixed points $a_1a_2=\alpha/\beta$ (attracting)", "fixed points inside parabola (unstable)"
    for sign in (-1, 1):
        h = sign * np.geomspace(abs(P0) / lim if P0 else 1e-3, lim, 800)
        h2 = P0 / h
        keep = np.abs(h2) <= lim
        h, h2 = h[keep], h2[keep]
        stable = c1 * h2 + h * h > 0
        for mask, style in ((stable, dict(color="k", lw=2.2, ls="-", label=lab_s)),
                            (~stable, dict(color="tab:red", lw=3, ls="--", label=lab_u))):
            y = np.where(mask, h2, np.nan)
            if np.any(mask):
                ax.plot(h, y, zorder=4, **style)
                style.pop("label")
                if style["color"] == "k":
                    lab_s = None
                else:
                    lab_u = None
    # trajectories
    for k, s0 in enumerate(starts):
        tr = integrate(sys, s0, t_end, n_eval=1500, method="DOP853", rtol=1e-9, atol=1e-11)
        ax.plot(tr.y[:, 0], tr.y[:, 1], color="tab:purple", lw=1.6, zorder=5,
                label="RBP trajectories" if k == 0 else None)
        ax.plot(*tr.y[0], "o", color="tab:purple", ms=5, zorder=6)
        ax.plot(*tr.y[-1], "*", color="gold", mec="k", ms=12, zorder=6)
    ai, bi = sys.parabola_hyperbola_intersection()
    ax.plot([ai], [bi], "s", color="tab:red", mec="k", ms=7, zorder=6,
            label=r"boundary $a_1=-(c_1\alpha/\beta)^{1/3}$")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.6", lw=0.6, zorder=1)
    ax.axvline(0, color="0.6", lw=0.6, zorder=1)
    ax.set_xlabel(r"$a_1$ (lower weight)")
    ax.set_ylabel(r"$a_2$ (upper weight)")
    ax.set_title(rf"RBP vector field, linear [1,1,1] (paper Fig. 2): $c_1={c1:g}$, $\alpha={alpha:g}$, "
                 rf"$\beta={beta:g}$", fontsize=10)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    return _save(fig, out)


def plot_trajectories(out, *, seed: int = 0, t_end: float = 40.0) -> Path:
    """Four panels: chains L = 2..6, [1,N,1] and [N,1,N], non-linear [1,1,1] with/without f'."""
    rng = np.random.default_rng(seed)
    fig = _figure((11, 8.2))
    axs = fig.subplots(2, 2)
    # (a) chains, RBP, |alpha - beta P|
    ax = axs[0, 0]
    for L in range(2, 7):
        fb = tuple(rng.choice([-1, 1], L - 1) * rng.uniform(0.5, 1.5, L - 1))
        y0 = rng.uniform(-1, 1, L)
        for rule, ls in (("rbp", "-"), ("bp", ":")):
            ch = Chain(fb, alpha=1.0, beta=1.0, rule=rule)
            tr = integrate(ch, y0, t_end, method="LSODA", rtol=1e-10, atol=1e-12, log_time=True)
            err = np.abs(1.0 - np.prod(tr.y, axis=1))
            ax.semilogy(tr.t, np.maximum(err, 1e-16), ls=ls, color=f"C{L - 2}",
                        label=f"L={L} {rule.upper()}" if rule == "rbp" else ("BP" if L == 2 else None))
    ax.set_title(r"Linear chains $[1,\dots,1]$, $L$ weights: $|\alpha-\beta P|$")
    ax.set_xlabel("t")
    ax.set_ylim(1e-14, 1e2)
    ax.legend(fontsize=7, ncol=2)
    # (b) [1,N,1] and [N,1,N]
    ax = axs[0, 1]
    for N in (2, 4, 8):
        c = tuple(rng.choice([-1, 1], N) * rng.uniform(0.5, 1.5, N))
        sys = Expansive1N1(c, alpha=1.0, beta=1.0)
        tr = integrate(sys, rng.uniform(-1, 1, 2 * N), t_end, method="LSODA", rtol=1e-10, atol=1e-12, log_time=True)
        ax.semilogy(tr.t, np.maximum([sys.error(y) for y in tr.y], 1e-16), color=f"C{N // 2}",
                    label=f"[1,{N},1] RBP $|\\alpha-\\beta P|$")
        C = tuple(rng.standard_normal(N))
        sysc = CompressiveN1N(C)
        y0 = rng.uniform(-1, 1, 2 * N)
        target = sysc.predicted_fixed_point(y0)
        tr = integrate(sysc, y0, t_end, method="LSODA", rtol=1e-10, atol=1e-12, log_time=True)
        ax.semilogy(tr.t, np.maximum(np.linalg.norm(tr.y - target, axis=1), 1e-16), ls="--", color=f"C{N // 2}",
                    label=f"[{N},1,{N}] RBP autoenc. $\\|y-y^*_{{Thm 6}}\\|$")
    ax.set_title("Expansive [1,N,1] and compressive [N,1,N] linear nets")
    ax.set_xlabel("t")
    ax.set_ylim(1e-14, 1e2)
    ax.legend(fontsize=7)
    # (c) non-linear with f'
    ax = axs[1, 0]
    y0 = (0.5, 0.5)
    for mu, col in ((1 / 3, "C0"), (2.0, "C1"), (3.0, "C2")):
        sys = Nonlinear111.gaussian(mu, c1=1.0, fprime=True)
        tr = integrate(sys, y0, t_end, method="LSODA", rtol=1e-10, atol=1e-12)
        ax.plot(tr.t, tr.y[:, 0], color=col, label=rf"$\mu={mu:.3g}$: $a_1$")
        ax.plot(tr.t, tr.y[:, 1], color=col, ls="--", label=rf"$\mu={mu:.3g}$: $a_2$")
        ax.axhline(sys.predicted_fixed_point(y0)[0], color=col, lw=0.6, ls=":")
    ax.set_title(r"Non-linear [1,1,1], $f(x)=x^\mu$, RBP with $f'$: converges (Thm 12)")
    ax.set_xlabel("t")
    ax.legend(fontsize=7, ncol=2)
    # (d) non-linear without f'
    ax = axs[1, 1]
    for mu, col in ((1 / 3, "C0"), (2.0, "C1"), (3.0, "C2")):
        sys = Nonlinear111.gaussian(mu, c1=1.0, fprime=False)
        tr = integrate(sys, y0, t_end, method="LSODA", rtol=1e-10, atol=1e-12)
        ax.plot(tr.t, tr.y[:, 0], color=col, label=rf"$\mu={mu:.3g}$: $a_1$ (slope $c_1(\gamma-\delta\alpha/\beta)$"
                                                     rf"$={sys.drift_rate_without_fprime():.3f}$)")
        ax.plot(tr.t, tr.y[:, 1], color=col, ls="--", label=rf"$\mu={mu:.3g}$: $a_2\to 0$")
    sys = Nonlinear111.gaussian(1.0, c1=1.0, fprime=False)
    tr = integrate(sys, y0, t_end, method="LSODA", rtol=1e-10, atol=1e-12)
    ax.plot(tr.t, tr.y[:, 0], color="k", lw=1, label=r"$\mu=1$ (linear): $a_1$ converges")
    ax.set_title(r"Same without $f'$ (eq. 113): no fixed point, $a_1$ drifts off")
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    fig.suptitle("Section 7 dynamics (solve_ivp, LSODA rtol 1e-10); inputs N(0,1), targets T = I + noise")
    return _save(fig, out)


def plot_sgd_vs_ode(out, *, eta: float = 0.005, n_steps: int = 4000, n_runs: int = 200, noise_std: float = 0.5,
                    seed: int = 0) -> Path:
    """Mean of ``n_runs`` online RBP SGD runs (band = 1 std of the runs) against the averaged ODE."""
    fig = _figure((11, 4.4))
    axs = fig.subplots(1, 2)
    cases = (((1.0,), (0.2, -0.5), "[1,1,1], $c_1=1$"),
             ((0.8, -1.2), (0.5, 0.3, -0.4), r"[1,1,1,1], $C^1=0.8$, $C^2=-1.2$"))
    for ax, (fb, a0, title) in zip(axs, cases):
        res = simulate_sgd_chain(a0, fb, rule="rbp", w_star=1.0, noise_std=noise_std, eta=eta, n_steps=n_steps,
                                 n_runs=n_runs, record_every=max(1, n_steps // 200), seed=seed)
        ch = chain_for_data(fb, "rbp", 1.0, 1.0)
        tr = integrate(ch, a0, res.t[-1], t_eval=res.t)
        mean, std = res.mean, res.std
        for i in range(len(a0)):
            col = f"C{i}"
            ax.fill_between(res.t, mean[:, i] - std[:, i], mean[:, i] + std[:, i], color=col, alpha=0.18, lw=0)
            ax.plot(res.t, mean[:, i], color=col, lw=2.2, label=f"$a_{i + 1}$ mean SGD")
            ax.plot(tr.t, tr.y[:, i], color="k", ls="--", lw=1.1, label="ODE" if i == 0 else None)
        dev = float(np.nanmax(np.abs(mean - tr.y)))
        ax.set_title(f"{title}: max |mean SGD - ODE| = {dev:.3f}", fontsize=9)
        ax.set_xlabel(r"t = $\eta$ x steps")
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"Online RBP SGD ({n_runs} runs, eta={eta:g}, I~N(0,1), T=I+N(0,{noise_std:g}^2)) vs averaged ODE")
    return _save(fig, out)
