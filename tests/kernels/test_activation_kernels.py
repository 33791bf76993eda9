"""Forward activation kernels: Numba == NumPy reference bit for bit, and the rational tanh's
error against float64 tanh."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from kernels import dispatch, reference

SPECIALS = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 3e-4, 7.9, 7.91, -7.91, 1e30, -1e30])


def grid(n: int = 2_000_001) -> np.ndarray:
    return np.concatenate([np.linspace(-12, 12, n, dtype=np.float32), SPECIALS])


def test_rational_tanh_is_within_its_stated_error_of_tanh():
    x = grid()
    y = reference.tanh(x)
    finite = np.isfinite(x)
    err = np.abs(y[finite].astype(np.float64) - np.tanh(x[finite].astype(np.float64)))
    assert err.max() < 3.5e-7, (err.max(), x[finite][err.argmax()])
    assert np.abs(y[finite]).max() == 1.0                      # never outside [-1, 1]
    sp = y[-len(SPECIALS):]
    assert np.isnan(sp[0]) and sp[1] == 1.0 and sp[2] == -1.0  # NaN stays, +-inf saturate
    assert sp[3] == 0.0 and np.signbit(sp[4])                  # tanh(-0) = -0
    assert sp[-2] == 1.0 and sp[-1] == -1.0
    body = y[:-len(SPECIALS)]
    assert np.array_equal(body, -body[::-1])                   # odd: tanh(-x) = -tanh(x) exactly
    # Monotone up to float32 rounding of the Horner sums (|x| > 4: steps of a few ulp of 1).
    assert np.diff(body).min() > -5e-7


@pytest.mark.parametrize("n", [1, 7, 10_000, dispatch.SERIAL_MAX_ACTIVATION + 5], ids=str)
def test_tanh_numba_equals_reference(n):
    rng = np.random.default_rng(n)
    x = np.concatenate([(rng.standard_normal(n) * 4).astype(np.float32), SPECIALS])
    want = reference.tanh(x)
    got = x.copy()
    dispatch.tanh_(got)                                        # serial below the threshold, else parallel
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    t = torch.from_numpy(x.copy()).reshape(1, -1)
    dispatch.tanh_(t)
    assert np.array_equal(t.numpy().reshape(-1).view(np.int32), want.view(np.int32))


def test_tanh_fprime_mul_numba_equals_reference_and_tanh_derivative():
    rng = np.random.default_rng(5)
    s = (rng.standard_normal((70, 1000)) * 2).astype(np.float32)   # 70,000 > serial threshold
    o = reference.tanh(s)
    r = rng.standard_normal(s.shape).astype(np.float32)
    for rows in (3, 70):                                       # serial and parallel
        got = r[:rows].copy()
        dispatch.tanh_fprime_mul_(got, o[:rows])
        assert np.array_equal(got, reference.tanh_fprime_mul(r[:rows], o[:rows]))
    want = r.astype(np.float64) * (1 - np.tanh(s.astype(np.float64)) ** 2)
    assert np.abs(reference.tanh_fprime_mul(r, o) - want).max() < 5e-6


def test_non_contiguous_and_numpy_backend_give_the_same_bits():
    base = torch.randn(40, 30, generator=torch.Generator().manual_seed(1)) * 3
    want = torch.from_numpy(reference.tanh(base.numpy()))
    t = base.clone().T                                         # not contiguous: the NumPy twin
    dispatch.tanh_(t)
    assert torch.equal(t.T, want)
    u = base.clone()
    dispatch.tanh_(u, backend="numpy")
    assert torch.equal(u, want)


def test_parallel_kernel_is_not_launched_off_the_main_thread():
    x = np.linspace(-3, 3, dispatch.SERIAL_MAX_ACTIVATION * 2, dtype=np.float32)
    want = reference.tanh(x)
    out = {}

    def work():
        out["serial"] = dispatch._serial_activation(x.size)
        y = x.copy()
        dispatch.tanh_(y)
        out["y"] = y

    th = threading.Thread(target=work)
    th.start()
    th.join()
    assert out["serial"] and not dispatch._serial_activation(x.size)
    assert np.array_equal(out["y"], want)


def test_cached_flat_view_follows_a_resized_tensor():
    t = torch.zeros(50, 20)
    dispatch.tanh_(t)                                          # caches t's flat view
    t.resize_(10, 10).fill_(1.0)                               # same object, new size
    dispatch.tanh_(t)
    assert torch.equal(t, torch.full((10, 10), float(reference.tanh(np.float32([1.0]))[0])))
    t.set_(torch.full((4, 5), 2.0))                            # same object, new storage
    dispatch.tanh_(t)
    assert torch.equal(t, torch.full((4, 5), float(reference.tanh(np.float32([2.0]))[0])))


def test_bad_activation_kernel_input_is_named():
    with pytest.raises(ValueError, match="backend: got 'cuda'.*allowed: numpy, numba, auto"):
        dispatch.tanh_(np.zeros(3, np.float32), backend="cuda")
    with pytest.raises(ValueError, match=r"r has shape \(2, 3\) and o \(3, 2\)"):
        dispatch.tanh_fprime_mul_(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="dtype float64; allowed: float32"):
        dispatch.tanh_(np.zeros(3))
