"""Section 7 of Baldi, Sadowski & Lu (2018): averaged RBP learning ODEs (lowbit_rbp.theory)."""
import argparse

import numpy as np
import pytest

from lowbit_rbp.theory import (Chain, CompressiveN1N, Expansive1N1, Linear111, Nonlinear111, chain_for_data,
                               classify_fixed_point, fd_jacobian, integrate, invariant_drift,
                               jacobian_eigenvalues, perturbation_ratio, power_moments, simulate_sgd_chain)
from lowbit_rbp.theory.cli import main, register
from lowbit_rbp.theory.checks import check_length

TIGHT = dict(method="DOP853", rtol=1e-12, atol=1e-13)
STIFF = dict(method="LSODA", rtol=1e-10, atol=1e-12)


def _feedback(rng, n):
    return tuple(rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n))


# ------------------------------------------------------------------ [1,1,1]

@pytest.mark.parametrize("c1,alpha,beta", [(1.0, 1.0, 1.0), (-0.7, 0.5, 2.0), (2.0, -1.0, 0.5)])
def test_111_invariant_conserved(c1, alpha, beta):
    s = Linear111(c1=c1, alpha=alpha, beta=beta)
    rng = np.random.default_rng(0)
    for _ in range(4):
        y0 = rng.uniform(-2.5, 2.5, 2)
        tr = integrate(s, y0, 50.0, n_eval=301, **TIGHT)
        assert tr.success
        inv = np.array([s.invariants(y)[0] for y in tr.y])
        assert np.max(np.abs(inv - inv[0])) / max(1.0, abs(inv[0])) < 1e-8
        assert invariant_drift(s, tr) < 1e-8
        # the test can fail: a wrong invariant (c1 doubled) is not conserved along a moving trajectory
        if np.linalg.norm(tr.y[-1] - tr.y[0]) > 0.1:
            wrong = tr.y[:, 1] - tr.y[:, 0] ** 2 / (4 * c1)
            assert np.max(np.abs(wrong - wrong[0])) > 1e-3


def test_111_bp_invariant_and_convergence():
    s = Linear111(c1=1.0, rule="bp")
    tr = integrate(s, (0.3, -1.2), 80.0, **TIGHT)
    assert invariant_drift(s, tr) < 1e-8  # a2^2 - a1^2
    assert s.error(tr.final) < 1e-9


@pytest.mark.parametrize("c1,alpha", [(1.0, 1.0), (-1.3, 0.8), (0.6, -1.0)])
def test_111_random_starts_reach_hyperbola_outside_parabola(c1, alpha):
    s = Linear111(c1=c1, alpha=alpha, beta=1.0)
    rng = np.random.default_rng(1)
    for _ in range(10):
        y0 = rng.uniform(-3, 3, 2)
        tr = integrate(s, y0, 400.0, n_eval=3, **TIGHT)
        y = tr.final
        assert s.error(y) < 1e-8                     # on the hyperbola a1 a2 = alpha/beta
        assert c1 * y[1] + y[0] ** 2 > 1e-3          # outside the parabola a2 = -a1^2/c1
        assert np.linalg.norm(s.rhs(0, y)) < 1e-8
        # the end point is the Theorem 1 root of the depressed cubic (eq. 31)
        assert np.allclose(y, s.predicted_fixed_point(y0), atol=1e-7)


def test_111_jacobian_analytic_matches_fd():
    rng = np.random.default_rng(2)
    for rule in ("rbp", "bp"):
        s = Linear111(c1=-0.8, alpha=0.7, beta=1.4, rule=rule)
        for _ in range(5):
            y = rng.uniform(-2, 2, 2)
            assert np.allclose(s.jac(0, y), fd_jacobian(s, y), atol=1e-6)


@pytest.mark.parametrize("c1", [1.0, 0.5, -1.0])
def test_111_fixed_points_inside_parabola_unstable_outside_attract(c1):
    s = Linear111(c1=c1, alpha=1.0, beta=1.0)
    a_cross = -np.cbrt(c1)                              # the parabola meets the hyperbola here
    inside = [a_cross * f for f in (0.2, 0.5, 0.9)]     # between a_cross and 0: inside the parabola
    outside = [a_cross * f for f in (1.1, 2.0)] + [-a_cross * f for f in (0.3, 1.0, 2.5)]
    for a1 in inside + outside:
        y = np.array([a1, 1.0 / a1])
        margin = s.stability_margin(y)
        ev = jacobian_eigenvalues(s, y)
        ev_fd = np.linalg.eigvals(fd_jacobian(s, y)).real
        assert np.min(np.abs(ev)) < 1e-9                     # neutral direction along the hyperbola
        assert np.isclose(ev.real[np.argmax(np.abs(ev))], -margin, atol=1e-9)
        assert np.isclose(ev_fd[np.argmax(np.abs(ev_fd))], -margin, atol=1e-5)
        w, V = np.linalg.eig(s.jac(0, y))
        v = np.real(V[:, np.argmax(np.abs(w))])
        ratio, tr = perturbation_ratio(s, y, 1e-6 * v / np.linalg.norm(v), 300.0, n_eval=3, **TIGHT)
        if a1 in inside:
            assert margin < 0 and np.max(ev.real) > 0.05
            assert classify_fixed_point(s, y) == "unstable"
            assert ratio > 1e4                               # a tiny push moves it far away ...
            assert s.error(tr.final) < 1e-8 and s.stability_margin(tr.final) > 0  # ... to an attracting point
        else:
            assert margin > 0 and np.max(ev.real) < 1e-9
            assert classify_fixed_point(s, y) == "attracting"
            assert ratio < 10


# ------------------------------------------------------------------ chains

@pytest.mark.parametrize("L", [3, 4, 5, 6])
def test_chain_converges_to_optimum(L):
    rng = np.random.default_rng(10 + L)
    for trial in range(2):
        fb = _feedback(rng, L - 1)
        y0 = rng.uniform(-1, 1, L)
        for rule in ("rbp", "srbp", "bp"):
            ch = Chain(fb, alpha=0.8, beta=1.3, rule=rule)
            tr = integrate(ch, y0, 300.0, n_eval=201, **STIFF)
            assert tr.success
            assert abs(np.prod(tr.final) - 0.8 / 1.3) < 1e-8
            assert invariant_drift(ch, tr) < 1e-7
            if rule != "bp":
                assert np.allclose(tr.final, ch.predicted_fixed_point(y0), atol=1e-6)


def test_chain_rbp_equals_srbp_with_product_feedback():
    back = (0.7, -1.3, 1.1)
    rbp = Chain(back, rule="rbp")
    eff = np.cumprod(np.array(back)[::-1])[::-1]
    srbp = Chain(tuple(eff), rule="srbp")
    y = np.array([0.3, -0.4, 0.9, 1.2])
    assert np.allclose(rbp.rhs(0, y), srbp.rhs(0, y))
    assert np.allclose(Chain((0.9,), rule="rbp").rhs(0, y[:2]), Linear111(c1=0.9).rhs(0, y[:2]))
    assert np.allclose(Chain((5.0,), rule="bp").rhs(0, y[:2]), Linear111(rule="bp").rhs(0, y[:2]))


# ------------------------------------------------------------------ [1,N,1], [N,1,N]

@pytest.mark.parametrize("N", [2, 4])
def test_expansive_1N1_converges(N):
    rng = np.random.default_rng(20 + N)
    for _ in range(3):
        c = _feedback(rng, N)
        y0 = rng.uniform(-1, 1, 2 * N)
        s = Expansive1N1(c, alpha=1.0, beta=1.0)
        tr = integrate(s, y0, 300.0, **STIFF)
        assert s.error(tr.final) < 1e-8 and np.linalg.norm(s.rhs(0, tr.final)) < 1e-8
        assert invariant_drift(s, tr) < 1e-7
        assert np.allclose(tr.final, s.predicted_fixed_point(y0), atol=1e-6)
        bp = Expansive1N1(c, alpha=1.0, beta=1.0, rule="bp")
        assert bp.error(integrate(bp, y0, 300.0, **STIFF).final) < 1e-8


@pytest.mark.parametrize("N", [2, 3, 5])
def test_compressive_N1N_autoencoder_theorem6(N):
    rng = np.random.default_rng(30 + N)
    for _ in range(2):
        C = rng.standard_normal(N)
        y0 = rng.uniform(-1, 1, 2 * N)
        s = CompressiveN1N(tuple(C))
        tr = integrate(s, y0, 300.0, **STIFF)
        y = tr.final
        assert np.linalg.norm(s.rhs(0, y)) < 1e-8
        assert invariant_drift(s, tr) < 1e-7                      # C B - |A|^2/2 (Lemma 1)
        t = y[:N] @ C / (C @ C)
        assert t > 0 and np.allclose(y[:N], t * C, atol=1e-7)     # A -> t C, t > 0
        assert np.allclose(s.product(y), np.outer(C, C) / (C @ C), atol=1e-7)
        assert np.allclose(y, s.predicted_fixed_point(y0), atol=1e-6)


# ------------------------------------------------------------------ SGD vs ODE

@pytest.mark.parametrize("fb,a0", [((1.0,), (0.2, -0.5)), ((0.8, -1.2), (0.5, 0.3, -0.4))])
def test_mean_sgd_tracks_ode(fb, a0):
    res = simulate_sgd_chain(a0, fb, rule="rbp", w_star=1.0, noise_std=0.5, eta=0.005, n_steps=2000,
                             n_runs=200, record_every=20, seed=3)
    assert res.diverged == 0
    ode = integrate(chain_for_data(fb, "rbp"), a0, res.t[-1], t_eval=res.t)
    dev = np.max(np.abs(res.mean - ode.y))
    assert dev < 0.05
    # the test can fail: the ODE with the wrong feedback sign is far from the SGD mean
    wrong = integrate(chain_for_data(tuple(-np.array(fb)), "rbp"), a0, res.t[-1], t_eval=res.t)
    assert np.max(np.abs(res.mean - wrong.y)) > 0.3


def test_mean_sgd_bp_tracks_ode():
    a0, fb = (0.4, 0.6), (1.0,)
    res = simulate_sgd_chain(a0, fb, rule="bp", w_star=-0.8, noise_std=0.3, eta=0.005, n_steps=1500,
                             n_runs=150, record_every=25, seed=4)
    ode = integrate(chain_for_data(fb, "bp", w_star=-0.8), a0, res.t[-1], t_eval=res.t)
    assert np.max(np.abs(res.mean - ode.y)) < 0.05


# ------------------------------------------------------------------ non-linear [1,1,1]

@pytest.mark.parametrize("mu", [1 / 3, 2.0, 3.0])
def test_nonlinear_with_fprime_converges(mu):
    s = Nonlinear111.gaussian(mu, c1=1.0, fprime=True)
    for y0 in ((0.5, 0.5), (1.5, 0.2), (0.2, 2.0)):
        tr = integrate(s, y0, 300.0, **STIFF)
        assert s.error(tr.final) < 1e-8 and np.linalg.norm(s.rhs(0, tr.final)) < 1e-8
        assert invariant_drift(s, tr) < 1e-7                   # a2 - a1^2/(2 c1 mu), eq. 115
        assert np.allclose(tr.final, s.predicted_fixed_point(y0), atol=1e-6)  # Theorem 12 root
    bp = Nonlinear111.gaussian(mu, rule="bp")
    assert bp.error(integrate(bp, (0.5, 0.5), 300.0, **STIFF).final) < 1e-8


@pytest.mark.parametrize("mu", [1 / 3, 3.0])
@pytest.mark.parametrize("c1", [1.0, -1.0])
def test_nonlinear_without_fprime_has_no_fixed_point_and_drifts(mu, c1):
    """Paper (eq. 113): without f' a fixed point needs a2 a1^mu = gamma/delta = alpha/beta, impossible
    except in trivial cases. For T = I, mu != 1: alpha/beta < gamma/delta (Cauchy-Schwarz), so no fixed
    point exists; the weights never settle (a1 runs off linearly, a2 -> 0) although P -> alpha/beta."""
    s = Nonlinear111.gaussian(mu, c1=c1, fprime=False)
    assert s.alpha / s.beta < s.gamma / s.delta - 1e-3
    assert not s.has_fixed_points()
    rate = s.drift_rate_without_fprime()
    assert abs(rate) > 0.05
    for y0 in ((0.5, 0.5), (-1.0, 2.0)):
        tr = integrate(s, y0, 300.0, n_eval=301, **STIFF)
        assert tr.success
        a1 = tr.y[:, 0]
        assert abs(a1[-1]) > 25 and abs(a1[-1]) > abs(a1[200]) + 10    # unbounded, still moving
        speed = np.linalg.norm(s.rhs(0, tr.final))
        assert speed > 0.9 * abs(rate)                                  # no approach to rest
        slope = (a1[-1] - a1[200]) / (tr.t[-1] - tr.t[200])
        assert np.isclose(slope, rate, rtol=0.02)
        assert s.error(tr.final) < 1e-3                                 # the output map does settle


def test_nonlinear_without_fprime_controls_converge():
    # mu = 1 is the linear case; a realisable target T = f(I) makes gamma/delta = alpha/beta
    for s in (Nonlinear111.gaussian(1.0, fprime=False), Nonlinear111.gaussian(1 / 3, fprime=False, target="power")):
        assert s.has_fixed_points()
        tr = integrate(s, (0.5, 0.5), 300.0, **STIFF)
        assert s.error(tr.final) < 1e-8 and np.linalg.norm(s.rhs(0, tr.final)) < 1e-8


def test_power_moments_match_monte_carlo():
    rng = np.random.default_rng(5)
    I = rng.standard_normal(400_000)
    f = np.sign(I) * np.abs(I) ** (1 / 3)
    m = power_moments(1 / 3, k=1.0)
    assert np.isclose(m["alpha"], np.mean(I * f), rtol=1e-2)
    assert np.isclose(m["beta"], np.mean(f * f), rtol=1e-2)
    assert np.isclose(m["delta"], np.mean(f * I), rtol=1e-2)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("make,words", [
    (lambda: Linear111(c1=0.0), ["c1", "0.0", "non-zero"]),
    (lambda: Linear111(beta=-1.0), ["beta", "-1.0", "> 0"]),
    (lambda: Linear111(alpha=float("nan")), ["alpha", "finite"]),
    (lambda: Chain(feedback=()), ["chain length", "1", ">= 2"]),
    (lambda: check_length(1), ["chain length", "1", ">= 2"]),
    (lambda: Chain(feedback=(1.0, 0.0)), ["feedback[1]", "0.0", "non-zero"]),
    (lambda: Chain(feedback=(1.0,), rule="xyz"), ["rule", "xyz", "srbp"]),
    (lambda: Expansive1N1(c=(1.0, 0.0)), ["c[1]", "non-zero"]),
    (lambda: Nonlinear111(mu=-0.5), ["mu", "-0.5", "> 0"]),
    (lambda: Nonlinear111.gaussian(1 / 3, rule="bp", fprime=False), ["fprime", "True"]),
    (lambda: simulate_sgd_chain((0.1, 0.2), (1.0,), eta=0.0), ["eta", "0.0", "> 0"]),
    (lambda: simulate_sgd_chain((0.1,), (), eta=0.1), ["chain length", ">= 2"]),
    (lambda: integrate(Linear111(), (0.1, 0.2), -1.0), ["t_end", "> 0"]),
])
def test_bad_input_names_value_and_allowed(make, words):
    with pytest.raises(ValueError) as exc:
        make()
    msg = str(exc.value)
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("argv,words", [
    (["field", "--c1", "0", "--out", "OUT"], ["c1", "0.0", "non-zero"]),
    (["theory", "field", "--beta", "-2", "--out", "OUT"], ["beta", "-2.0", "> 0"]),
    (["sgd", "--eta", "-0.1", "--out", "OUT"], ["eta", "-0.1", "> 0"]),
    (["check", "--L", "1"], ["chain length", "1", ">= 2"]),
])
def test_cli_bad_input_exits_2_without_traceback(argv, words, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main([str(out) if a == "OUT" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err
    assert not out.exists()


def test_cli_register_into_host_parser_and_field_png(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="lowbit-rbp")
    register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "field.png"
    args = parser.parse_args(["theory", "field", "--out", str(out), "--grid", "9"])
    assert args.func(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    args = parser.parse_args(["theory", "check", "--L", "3", "--rule", "srbp", "--feedback", "1", "-0.5"])
    assert args.func(args) == 0
    assert "|alpha - beta P| = " in capsys.readouterr().out
