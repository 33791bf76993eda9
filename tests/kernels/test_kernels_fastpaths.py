"""The Numba kernels' specialised loops == the NumPy reference, bit for bit.

``kernels.cpu.kernel_mode`` sends each format to one loop (fixed nearest-even/saturate, fixed
stochastic rounding with saturation or wrap, log threshold tables with deterministic or stochastic
underflow, log exponent bits with deterministic or stochastic underflow, or the general loop), each
kernel has a parallel and a serial twin, and ``per_example_update`` skips zero inputs in the log
loops. Every combination is checked here on awkward values (zeros of both signs, NaN, inf,
subnormals, values at and next to every level threshold, fixed-point grid points, ties and range
ends), on empty, one-element, odd and multi-chunk sizes, and through the dispatch API on both sides
of its serial/parallel switch.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kcases import ACCUMULATORS, awkward_values, describe_diff, fixed_edge_values, same_bits
from kernels import cpu, dispatch, reference
from lowbit_rbp.core.formats import FixedPoint, Float32, LogQuant

MODES = {cpu.GENERAL: "general", cpu.FIXED_NE_SAT: "fixed_ne_sat", cpu.FIXED_SR_SAT: "fixed_sr_sat",
         cpu.FIXED_SR_WRAP: "fixed_sr_wrap", cpu.LOG_BITS: "log_bits", cpu.LOG_TABLE: "log_table",
         cpu.LOG_TABLE_STOCH: "log_table_stoch", cpu.LOG_BITS_STOCH: "log_bits_stoch"}

# One or more formats per loop; the paper's formats (log alpha=2 / 0.1, 1..5 bits, default
# stochastic underflow) first.
MODE_FORMATS = [
    LogQuant(2, 3), LogQuant(2, 5), LogQuant(2, 1), LogQuant(0.1, 5), LogQuant(0.1, 3), LogQuant(0.1, 1),
    LogQuant(2, 3, "clip"), LogQuant(0.1, 5, "flush"), LogQuant(3.0, 8, "flush"), LogQuant(2, 4, "clip", "full"),
    LogQuant(1e-40, 3), LogQuant(2.0 ** 130, 3), LogQuant(2.0 ** 126, 2, "flush"),
    LogQuant(2, 10, "clip"), LogQuant(0.1, 9), LogQuant(2, 5, "flush", "full"), LogQuant(1e-45, 3, "clip"),
    LogQuant(2.0 ** -6, 12, "stochastic", "full"),
    FixedPoint(8, 6), FixedPoint(12, 8, rounding="stochastic"), Float32(),
    FixedPoint(4, 3, rounding="stochastic"),                      # the bit-true channel's signals
    FixedPoint(6, 3, signed=False, rounding="stochastic"), FixedPoint(12, 8, rounding="stochastic", overflow="wrap"),
    FixedPoint(32, 3, rounding="stochastic", overflow="wrap"),  # codes beyond float32's 24 bits
    FixedPoint(8, 4, rounding="nearest_away"),                   # fixed point in the general loop
]
FMT_IDS = [f.spec for f in MODE_FORMATS]


def check(got, want):
    assert same_bits(got, want), describe_diff(got, want)


def threshold_values(fmt) -> np.ndarray:
    """Each table threshold, its float32 neighbours, the levels and their neighbours, both signs."""
    _, table = cpu.kernel_mode(fmt)
    v = table[np.isfinite(table) & (table > 0)]
    v = np.concatenate([v, np.nextafter(v, np.float32(0)), np.nextafter(v, np.float32(np.inf))])
    v = v[np.isfinite(v)]
    return np.concatenate([v, -v]).astype(np.float32)


def inputs(fmt, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = getattr(fmt, "kind", None)
    scale = float(fmt.alpha) if kind == "log" and fmt.alpha < 1e30 else 1.0
    edges = fixed_edge_values(fmt) if kind == "fixed" else threshold_values(fmt)
    x = np.concatenate([edges, awkward_values(n, rng, scale=scale),
                        (scale * rng.normal(0, 0.3, n)).astype(np.float32)])
    rng.shuffle(x)
    return x[:n]


def test_every_loop_is_covered():
    assert {cpu.kernel_mode(f)[0] for f in MODE_FORMATS} == set(MODES)
    assert cpu.kernel_mode(LogQuant(2, 3))[0] == cpu.LOG_TABLE_STOCH          # the paper's default
    assert cpu.kernel_mode(LogQuant(0.1, 1))[0] == cpu.LOG_TABLE               # 1 bit: no underflow
    assert cpu.kernel_mode(LogQuant(1e-45, 3, "clip"))[0] == cpu.LOG_BITS      # a level 0 in float32
    assert cpu.kernel_mode(FixedPoint(4, 3, rounding="stochastic"))[0] == cpu.FIXED_SR_SAT
    assert cpu.kernel_mode(FixedPoint(6, 3, rounding="stochastic", overflow="wrap"))[0] == cpu.FIXED_SR_WRAP
    assert cpu.kernel_mode(FixedPoint(6, 3, rounding="truncate"))[0] == cpu.GENERAL
    # the float64 kernels (scale and round, add_quantize) keep every other loop, and take the
    # exponent-bits loops for the table formats (tables compare float32 inputs)
    f64 = {cpu.LOG_TABLE: cpu.LOG_BITS, cpu.LOG_TABLE_STOCH: cpu.LOG_BITS_STOCH}
    assert len(cpu.F64_MODE) == len(MODES) and all(cpu.F64_MODE[m] == f64.get(m, m) for m in MODES)


@pytest.mark.parametrize("fmt", [f for f in MODE_FORMATS if cpu.kernel_mode(f)[1] is not cpu.NO_TABLE],
                         ids=lambda f: f.spec)
def test_log_table_thresholds_are_the_reference_bucket_edges(fmt):
    """T[k-1] is the smallest float32 in bucket >= k of the reference; the levels are its levels."""
    _, table = cpu.kernel_mode(fmt)
    e_min = fmt.min_exponent
    n = 1 - e_min
    T = table[:n]
    assert np.all(np.isnan(table[n:cpu.TABLE_LEVELS])) and np.all(T[1:] >= T[:-1]) and np.all(T > 0)

    def bucket(v):
        e = reference.log_exponent(np.asarray(v, np.float32).astype(np.float64), fmt.alpha)
        return np.where(e < e_min, 0, e - e_min + 1).astype(np.int64)
    k = np.arange(1, n + 1)
    assert np.all(bucket(T) >= k)
    assert np.all(bucket(np.nextafter(T, np.float32(0))) < k)
    levels = table[cpu.TABLE_LEVELS + 1:cpu.TABLE_LEVELS + 1 + n]
    clip = LogQuant(fmt.alpha, fmt.bits, "clip", fmt.levels)
    check(reference.quantize(T, clip), levels[bucket(T) - 1])
    under = table[cpu.TABLE_LEVELS]
    assert under == (0.0 if fmt.underflow == "flush" and fmt.bits > 1 else levels[0])


@pytest.mark.parametrize("fmt", MODE_FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("n", [0, 1, 2, 7, 33, 1001, 2 * cpu.QUANTIZE_CHUNK + 77])
def test_quantize_serial_and_parallel_kernels_equal_reference(fmt, n):
    x = inputs(fmt, n, seed=n)
    P, mode, table = dispatch._prep(fmt)
    for seed, counter in [(3, 10), (2 ** 64 - 1, 2 ** 64 - 5)]:            # counters wrap mod 2^64
        want = reference.quantize(x, fmt, seed=seed, counter=counter)
        key, c = dispatch._keys(seed, counter)
        for kern in (cpu.quantize_flat, cpu.quantize_flat_serial):
            y = x.copy()
            kern(y, P, table, mode, key, c)
            check(y, want)


F64_SIZES = [0, 1, 7, cpu.F64_BLOCK - 1, cpu.F64_BLOCK, cpu.F64_BLOCK + 1, 3001, 2 * cpu.QUANTIZE_CHUNK + 77]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                            "ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("fmt", MODE_FORMATS, ids=FMT_IDS)
def test_float64_kernels_serial_and_parallel_equal_reference(fmt):
    """``fixed_scale_round`` and ``add_quantize_flat`` (both quantize exact float64 values, block by
    block) in the format's ``F64_MODE`` loop and in the general loop, on sizes around the block
    and chunk sizes, with counters that wrap mod 2^64 inside the call."""
    P, mode, _ = dispatch._prep(fmt)
    for n in F64_SIZES:
        rng = np.random.default_rng(n)
        J, fp = inputs(fmt, n, seed=n), inputs(fmt, n, seed=n + 1)
        g = awkward_values(n, rng)
        for seed, counter in [(3, 10), (2 ** 64 - 1, 2 ** 64 - 5)]:
            key, c = dispatch._keys(seed, counter)
            want_sr = reference.fixed_scale_round(J, fp, fmt, seed=seed, counter=counter)
            want_aq = reference.add_quantize(J, g, 0.375, fmt, seed=seed, counter=counter)
            for m in (cpu.F64_MODE[mode], cpu.GENERAL):
                for kern in (cpu.fixed_scale_round, cpu.fixed_scale_round_serial):
                    out = np.full(n, np.nan, np.float32)
                    kern(J, fp, P, m, key, c, out)
                    check(out, want_sr)
                for kern in (cpu.add_quantize_flat, cpu.add_quantize_flat_serial):
                    w = J.copy()
                    kern(w, g, np.float32(0.375), P, m, key, c)
                    check(w, want_aq)


@pytest.mark.parametrize("fmt", MODE_FORMATS, ids=FMT_IDS)
def test_quantize_dispatch_both_sides_of_the_serial_switch(fmt):
    for n in (dispatch.SERIAL_MAX_QUANTIZE - 1, dispatch.SERIAL_MAX_QUANTIZE, dispatch.SERIAL_MAX_QUANTIZE + 3):
        x = inputs(fmt, n, seed=n)
        want = reference.quantize(x, fmt, seed=9, counter=2 ** 40)
        check(dispatch.quantize(x, fmt, seed=9, counter=2 ** 40, backend="numba"), want)
        t = torch.from_numpy(x.copy())
        assert dispatch.quantize_(t, fmt, seed=9, counter=2 ** 40, backend="auto") is t
        check(t.numpy(), want)


@pytest.mark.parametrize("fmt", [LogQuant(2, 3), LogQuant(0.1, 9), FixedPoint(8, 6)], ids=lambda f: f.spec)
def test_quantize_inplace_slow_paths(fmt):
    """Non-contiguous, strided, requires_grad and Parameter tensors, numpy views: same bits."""
    rng = np.random.default_rng(4)
    base = awkward_values(240, rng, scale=1.5).reshape(12, 20)
    want_t = reference.quantize(base.T, fmt, seed=1, counter=7)
    a = base.copy().T                                          # non-contiguous numpy view
    dispatch.quantize_(a, fmt, seed=1, counter=7, backend="numba")
    check(a, want_t)
    b = base.copy()[:, ::2]                                    # strided
    want_b = reference.quantize(base[:, ::2], fmt, seed=1, counter=7)
    dispatch.quantize_(b, fmt, seed=1, counter=7, backend="auto")
    check(b, want_b)
    want = reference.quantize(base, fmt, seed=1, counter=7)
    p = torch.nn.Parameter(torch.from_numpy(base.copy()), requires_grad=False)
    dispatch.quantize_(p, fmt, seed=1, counter=7, backend="auto")
    check(p.detach().numpy(), want)
    g = torch.from_numpy(base.copy()).requires_grad_(True)
    with torch.no_grad():
        dispatch.quantize_(g, fmt, seed=1, counter=7, backend="auto")
    check(g.detach().numpy(), want)
    d = base.copy()                                            # numpy integer seeds and counters
    dispatch.quantize_(d, fmt, seed=np.int64(1), counter=np.uint64(7), backend="numba")
    check(d, want)


def test_quantize_float_and_none_formats_are_no_ops():
    x = awkward_values(50, np.random.default_rng(0))
    for fmt in (Float32(), None):
        y = x.copy()
        dispatch.quantize_(y, fmt, backend="numba")
        check(y, x)
    t = torch.from_numpy(x.copy())
    assert dispatch.quantize_(t, Float32(), backend="auto") is t
    check(t.numpy(), x)


# --- per-example update: both kernels, sparse rows, zero signals --------------------------------

def update_inputs(B, NO, NI, rng, zero_frac=0.0):
    R = rng.normal(0, 0.4, (B, NO)).astype(np.float32)
    O = np.tanh(rng.normal(0, 1, (B, NI))).astype(np.float32)
    if zero_frac:
        O[rng.random((B, NI)) < zero_frac] = 0.0
        if B > 1:
            O[1] = 0.0                                         # an all-zero row
        if B > 2 and NI > 1:
            O[2] = 1.0
            O[2, : NI // 2 + NI % 2] = 0.0                     # exactly half non-zero: the sparse loop
    if B * NO > 2:
        R.flat[1] = 0.0
        R.flat[2] = -0.0
    return R, O


@pytest.mark.parametrize("fmt", MODE_FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("shape,zero_frac", [((0, 3, 4), 0.0), ((1, 1, 1), 0.0), ((3, 1, 5), 0.5),
                                             ((7, 13, 5), 0.0), ((9, 6, 33), 0.8), ((5, 4, 0), 0.0),
                                             ((6, 3, 64), 0.5)], ids=str)
def test_per_example_serial_and_parallel_kernels_equal_reference(fmt, shape, zero_frac):
    B, NO, NI = shape
    rng = np.random.default_rng(B * 1000 + NO * 10 + NI)
    R, O = update_inputs(B, NO, NI, rng, zero_frac)
    P, mode, table = dispatch._prep(fmt)
    for acc in (None, ACCUMULATORS[1]):
        want = reference.per_example_update(R, O, fmt, accumulator=acc, seed=5, counter=2 ** 64 - 100)
        key, c0 = dispatch._keys(5, 2 ** 64 - 100)
        ca = dispatch._u64((2 ** 64 - 100 + B * NO * NI) % 2 ** 64)
        PA = dispatch._params(acc)
        for kern in (cpu.per_example_update, cpu.per_example_update_serial):
            out = np.full((NO, NI), np.nan, np.float32)
            kern(R, O, P, PA, table, mode, key, c0, ca, out)
            check(out, want)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("fmt", [LogQuant(0.1, 5), LogQuant(2, 3, "flush"), LogQuant(0.1, 9),
                                 LogQuant(2, 10, "clip")], ids=lambda f: f.spec)
def test_per_example_awkward_values_and_mnist_like_zeros(fmt):
    """NaN / inf / subnormal / signed zeros in R and O, and O mostly zero (MNIST pixels)."""
    rng = np.random.default_rng(11)
    B, NO, NI = 8, 6, 40
    R = awkward_values(B * NO, rng, scale=0.3).reshape(B, NO)
    O = awkward_values(B * NI, rng).reshape(B, NI)
    O[rng.random((B, NI)) < 0.7] = 0.0
    O[0, :3] = [-0.0, np.nan, np.inf]
    for shapes in [(R, O), (R[:, :1], O), (R, O[:, :1])]:
        Rs, Os = (np.ascontiguousarray(a) for a in shapes)
        want = reference.per_example_update(Rs, Os, fmt, seed=2, counter=31)
        check(dispatch.per_example_update(Rs, Os, fmt, seed=2, counter=31, backend="numba"), want)


def test_per_example_dispatch_both_sides_of_the_serial_switch():
    fmt = LogQuant(0.1, 5)
    rng = np.random.default_rng(2)
    lim = dispatch.SERIAL_MAX_UPDATE
    for B, NO, NI in [(4, 4, lim // 16 - 1), (4, 4, lim // 16), (2, 1, lim)]:
        R, O = update_inputs(B, NO, NI, rng, zero_frac=0.6)
        want = reference.per_example_update(R, O, fmt, seed=8, counter=123)
        out = torch.empty(NO, NI)
        dispatch.per_example_update(torch.from_numpy(R), torch.from_numpy(O), fmt, seed=8, counter=123,
                                    out=out, backend="auto")
        check(out.numpy(), want)


# --- random formats and data ----------------------------------------------------------------------

ALPHAS = st.sampled_from([2.0, 1.0, 0.1, 2.0 ** -6, 3.0, 1e-3, 1e-38, 2.0 ** 120])
any_log = st.builds(LogQuant, alpha=ALPHAS, bits=st.integers(1, 12),
                    underflow=st.sampled_from(["clip", "flush", "stochastic"]),
                    levels=st.sampled_from(["paper", "full"]))
# any float32 bit pattern: every exponent, subnormals, inf and NaN
any_f32 = arrays(np.uint32, st.integers(0, 60), elements=st.integers(0, 2 ** 32 - 1)).map(
    lambda a: a.view(np.float32))


@settings(max_examples=80, deadline=None)
@given(any_log, any_f32, st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1))
def test_quantize_random_formats_and_bit_patterns(fmt, x, seed, counter):
    want = reference.quantize(x, fmt, seed=seed, counter=counter)
    P, mode, table = dispatch._prep(fmt)
    key, c = dispatch._keys(seed, counter)
    for kern in (cpu.quantize_flat, cpu.quantize_flat_serial):
        y = x.copy()
        kern(y, P, table, mode, key, c)
        assert same_bits(y, want), (fmt.spec, MODES[mode], describe_diff(y, want))


@settings(max_examples=40, deadline=None)
@given(any_log, st.integers(0, 5), st.integers(1, 4), st.integers(0, 9), st.floats(0.0, 0.9),
       st.integers(0, 2 ** 32))
def test_per_example_random_formats(fmt, B, NO, NI, zero_frac, seed):
    rng = np.random.default_rng(seed)
    scale = min(float(fmt.alpha), 1e30)
    R = (rng.normal(0, 1, (B, NO)) * rng.choice([1e-3, 0.3, 3.0], (B, NO))).astype(np.float32)
    O = (np.tanh(rng.normal(0, 1, (B, NI))) * scale).astype(np.float32)
    O[rng.random((B, NI)) < zero_frac] = 0.0
    want = reference.per_example_update(R, O, fmt, seed=seed, counter=seed * 7)
    got = dispatch.per_example_update(R, O, fmt, seed=seed, counter=seed * 7, backend="numba")
    assert same_bits(got, want), (fmt.spec, describe_diff(got, want))


def test_prepared_formats_are_cached_by_value_and_identity():
    a, b = LogQuant(2, 3), LogQuant(2.0, 3)
    assert dispatch._prep(a) is dispatch._prep(b) is dispatch._prep(a)
    assert dispatch._prep(LogQuant(2, 3, "clip")) is not dispatch._prep(a)
    assert dispatch._seed_key(5) == reference.seed_key(5)
    assert dispatch._seed_key(2 ** 64 + 5) == reference.seed_key(5)
    assert dispatch._u64(2 ** 64 + 3) == np.uint64(3) and dispatch._u64(-1) == np.uint64(2 ** 64 - 1)


# --- the serial / parallel switch at one thread ---------------------------------------------------

@pytest.fixture
def numba_threads():
    """Sets Numba's thread count for a test (restoring it, and torch's, afterwards)."""
    import numba
    old, old_torch = numba.get_num_threads(), torch.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(old)
    torch.set_num_threads(old_torch)


def test_elementwise_kernels_run_serially_at_one_thread(numba_threads, monkeypatch):
    """With one Numba thread a large quantize, scale-and-round or stored-weight update runs the
    serial twin (a parallel launch would only cost); with two the parallel kernel. Same bits."""
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has one thread here: the parallel side cannot be checked")
    fmt = FixedPoint(8, 6, rounding="stochastic")
    n = dispatch.SERIAL_MAX_QUANTIZE + 5
    x, g = inputs(fmt, n, seed=1), awkward_values(n, np.random.default_rng(1))
    want_q = reference.quantize(x, fmt, seed=2, counter=9)
    want_sr = reference.fixed_scale_round(x, g, fmt, seed=2, counter=9)
    want_aq = reference.add_quantize(x, g, 0.5, fmt, seed=2, counter=9)
    parallel = {"quantize_flat": cpu.quantize_flat, "fixed_scale_round": cpu.fixed_scale_round,
                "add_quantize_flat": cpu.add_quantize_flat}
    calls = []

    def recorded(name):
        def kern(*args):
            calls.append(name)
            return parallel[name](*args)
        return kern
    for name in parallel:
        monkeypatch.setattr(cpu, name, recorded(name))
    for threads, want_calls in [(1, []), (2, sorted(parallel))]:
        numba_threads(threads)
        calls.clear()
        y = x.copy()
        dispatch.quantize_(y, fmt, seed=2, counter=9, backend="numba")
        check(y, want_q)
        with np.errstate(invalid="ignore"):
            check(dispatch.fixed_scale_round(x, g, fmt, seed=2, counter=9, backend="numba"), want_sr)
        w = torch.from_numpy(x.copy())
        dispatch.add_quantize_(w, torch.from_numpy(g), 0.5, fmt, seed=2, counter=9, backend="auto")
        check(w.numpy(), want_aq)
        assert sorted(calls) == want_calls, threads
