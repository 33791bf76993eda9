"""``theory`` sub-command: figures and checks of section 7.

Used by the main CLI as ``from lowbit_rbp.theory.cli import register; register(subparsers)``, then
``args.func(args)`` (an int exit code). Standalone: ``python -m lowbit_rbp.theory.cli [theory] <cmd> ...``.

    theory field        --out reports/theory_rbp_111_field.png [--c1 1 --alpha 1 --beta 1 --lim 3 --grid 27]
    theory trajectories --out reports/theory_trajectories.png [--seed 0]
    theory sgd          --out reports/theory_sgd_vs_ode.png [--eta 0.005 --steps 4000 --runs 200 --noise 0.5]
    theory check        [--L 2 --c1 1 --alpha 1 --beta 1 --a0 0.2 -0.5 --t-end 100]   (prints the end point)
    theory all          --out-dir reports/ [--seed 0]    (all figures + theory.md)

Bad values (c1 = 0, beta <= 0, L < 2, eta <= 0, ...), sizes past ``LIMITS`` (what a figure or a
check can use; a --grid of 100000 would allocate 74.5 GiB per array) and output paths that cannot
be written print one line naming the value or path, and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["register", "main", "LIMITS"]

# Upper bounds of the size arguments: far above what the figures need, far below what exhausts a
# machine's memory or time (float64 arrays: grid^2 arrows; runs x 201 recorded steps x L weights).
LIMITS = {
    "grid": (400, "arrows per axis: 160,000 arrows, more than a figure can show"),
    "runs": (20_000, "SGD runs: 20,000 x 201 recorded steps x 2 weights = 64 MB"),
    "steps": (10_000_000, "SGD steps per run"),
    "L": (200, "forward weights of a chain: its Jacobian is L x L, integrated to a tolerance of 1e-10"),
    "t_end": (1e6, "end time of an integration"),
}


def check_limit(name: str, value) -> None:
    """``value`` of the ``--name`` argument must not exceed ``LIMITS[name]``."""
    from ..errors import bad_value
    limit, why = LIMITS[name]
    if value is not None and value > limit:
        raise bad_value(f"--{name.replace('_', '-')}", value, f"at most {limit:,g} ({why})")


def _run(fn):
    def wrapped(args) -> int:
        from ..oserror import os_error_line
        try:
            return int(fn(args) or 0)
        except ValueError as e:  # includes lowbit_rbp.errors.ConfigError
            print(f"lowbit-rbp theory: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:     # an output path that cannot be written
            print(f"lowbit-rbp theory: error: {os_error_line(e)}", file=sys.stderr)
            return 2
    return wrapped


def _cmd_field(args) -> int:
    from .linear111 import Linear111
    from .plots import plot_field_111

    check_limit("grid", args.grid)
    Linear111(c1=args.c1, alpha=args.alpha, beta=args.beta)  # validates before any plotting
    out = plot_field_111(args.out, c1=args.c1, alpha=args.alpha, beta=args.beta, lim=args.lim, grid=args.grid)
    print(f"wrote {out}")
    return 0


def _cmd_trajectories(args) -> int:
    from .plots import plot_trajectories

    check_limit("t_end", args.t_end)
    out = plot_trajectories(args.out, seed=args.seed, t_end=args.t_end)
    print(f"wrote {out}")
    return 0


def _cmd_sgd(args) -> int:
    from .plots import plot_sgd_vs_ode
    from .sgd import _positive

    _positive("eta (learning rate)", args.eta)
    _positive("steps", args.steps, integer=True)
    _positive("runs", args.runs, integer=True)
    check_limit("steps", args.steps)
    check_limit("runs", args.runs)
    if not args.noise >= 0:
        from ..errors import bad_value
        raise bad_value("noise", args.noise, "a finite number >= 0")
    out = plot_sgd_vs_ode(args.out, eta=args.eta, n_steps=args.steps, n_runs=args.runs, noise_std=args.noise,
                          seed=args.seed)
    print(f"wrote {out}")
    return 0


def _cmd_check(args) -> int:
    import numpy as np

    from ..errors import bad_value
    from .analysis import integrate, invariant_drift, jacobian_eigenvalues
    from .chains import Chain
    from .checks import check_length

    L = check_length(args.L)
    check_limit("L", L)
    check_limit("t_end", args.t_end)
    fb = args.feedback if args.feedback is not None else [args.c1] + [1.0] * (L - 2)
    if len(fb) != L - 1:
        raise bad_value("--feedback (number of values)", len(fb), f"L - 1 = {L - 1}")
    a0 = args.a0 if args.a0 is not None else [0.5] * L
    if len(a0) != L:
        raise bad_value("--a0 (number of values)", len(a0), f"L = {L}")
    ch = Chain(tuple(fb), alpha=args.alpha, beta=args.beta, rule=args.rule)
    tr = integrate(ch, a0, args.t_end, method="LSODA" if L > 2 else "DOP853",
                   rtol=1e-10 if L > 2 else 1e-11, atol=1e-12)
    y = tr.final
    print(f"rule={args.rule} L={L} feedback={list(fb)} alpha={args.alpha:g} beta={args.beta:g} a0={list(a0)}")
    print(f"end point (t={args.t_end:g}): {np.array2string(y, precision=8)}")
    print(f"|alpha - beta P| = {ch.error(y):.3e}   invariant drift = {invariant_drift(ch, tr):.3e}")
    if args.rule != "bp":
        print(f"predicted (Theorem 1 on Q(a1)): {np.array2string(ch.predicted_fixed_point(a0), precision=8)}")
    ev = jacobian_eigenvalues(ch, y, analytic=False)
    print(f"Jacobian eigenvalues at the end point: {np.array2string(ev.real, precision=6)}")
    return 0 if tr.success else 1


def _cmd_all(args) -> int:
    from .report import write_report

    cmd = f"python -m lowbit_rbp.theory.cli all --out-dir {args.out_dir} --seed {args.seed}"
    md = write_report(args.out_dir, seed=args.seed, command=cmd)
    print(f"wrote {md} and figures in {md.parent}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``theory`` sub-command (with its own sub-commands) to an argparse ``subparsers`` object."""
    p = subparsers.add_parser("theory", help="section 7: averaged learning ODEs, their figures and checks",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="theory_command", metavar="{field,trajectories,sgd,check,all}", required=True)

    f = sub.add_parser("field", help="Figure 2: RBP vector field of the linear [1,1,1] net")
    f.add_argument("--out", default="reports/theory_rbp_111_field.png", help="PNG path")
    f.add_argument("--c1", type=float, default=1.0, help="fixed feedback weight (non-zero)")
    f.add_argument("--alpha", type=float, default=1.0, help="E[IT]")
    f.add_argument("--beta", type=float, default=1.0, help="E[I^2] (> 0)")
    f.add_argument("--lim", type=float, default=3.0, help="plot the square [-lim, lim]^2")
    f.add_argument("--grid", type=int, default=27, help="arrows per axis")
    f.set_defaults(func=_run(_cmd_field))

    t = sub.add_parser("trajectories", help="chains, [1,N,1], [N,1,N], non-linear with/without f'")
    t.add_argument("--out", default="reports/theory_trajectories.png", help="PNG path")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--t-end", type=float, default=40.0)
    t.set_defaults(func=_run(_cmd_trajectories))

    s = sub.add_parser("sgd", help="mean of online RBP SGD runs vs the averaged ODE")
    s.add_argument("--out", default="reports/theory_sgd_vs_ode.png", help="PNG path")
    s.add_argument("--eta", type=float, default=0.005, help="learning rate (> 0)")
    s.add_argument("--steps", type=int, default=4000)
    s.add_argument("--runs", type=int, default=200)
    s.add_argument("--noise", type=float, default=0.5, help="std of the target noise (>= 0)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_run(_cmd_sgd))

    c = sub.add_parser("check", help="integrate one chain and print its end point, invariant drift, eigenvalues")
    c.add_argument("--L", type=int, default=2, help="number of forward weights (>= 2; 2 is [1,1,1])")
    c.add_argument("--rule", choices=("rbp", "srbp", "bp"), default="rbp")
    c.add_argument("--c1", type=float, default=1.0, help="feedback weight of [1,1,1] (non-zero)")
    c.add_argument("--feedback", type=float, nargs="+", default=None, help="L-1 feedback weights (overrides --c1)")
    c.add_argument("--alpha", type=float, default=1.0)
    c.add_argument("--beta", type=float, default=1.0)
    c.add_argument("--a0", type=float, nargs="+", default=None, help="L initial weights")
    c.add_argument("--t-end", type=float, default=100.0)
    c.set_defaults(func=_run(_cmd_check))

    a = sub.add_parser("all", help="all figures and theory.md")
    a.add_argument("--out-dir", default="reports/", help="folder for the PNGs and theory.md")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=_run(_cmd_all))
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("theory", "-h", "--help"):
        argv = ["theory"] + argv
    parser = argparse.ArgumentParser(prog="python -m lowbit_rbp.theory.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
