"""The per-example update on integer codes (``kernels.cpu.update_codes``) == the NumPy reference.

``code_plan`` sends log formats with normal power-of-two levels and fixed nearest-even/saturate
formats (word <= 24) to a kernel that sums integer codes in float32, exactly, and scales once.
Checked here bit for bit against ``reference.per_example_update``: every code kind, both loop
orders (by output row, by input column for a mostly-zero O), the parallel and serial kernels,
sizes that are and are not multiples of the 16 vector lanes, and the values where a mistake
would show: products at and next to every bucket edge and half-way point of the log grid
(including products that only reach an edge through the float32 rounding of r * o), subnormal
products, signed zeros, overflow to inf, values below the smallest level, stochastic draws that
equal |x| / smallest exactly, fixed-point ties and saturation; NaN / inf inputs go back to the
general kernel; and the bound ``batch * max|code| <= 2^24`` beyond which float32 sums would round.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcases import awkward_values, describe_diff, same_bits
from kernels import cpu, dispatch, reference
from kernels.dispatch import update as dispatch_update
from lowbit_rbp.core.formats import FixedPoint, Float32, LogQuant

KINDS = {cpu.CODE_LOG_STOCH32: "log_stoch32", cpu.CODE_LOG_STOCH64: "log_stoch64", cpu.CODE_LOG_CLIP: "log_clip",
         cpu.CODE_LOG_FLUSH: "log_flush", cpu.CODE_FIXED: "fixed"}

# The paper's update formats (alpha 0.5, 5/3/1 bits, stochastic underflow) first, then one or more
# formats per code kind: alpha not a power of two (float64 draw test), clip, flush, full levels,
# a level near the bottom of float32's normal range, fixed point signed / unsigned / 24-bit words.
CODE_FORMATS = [
    LogQuant(0.5, 5), LogQuant(0.5, 3), LogQuant(0.5, 1), LogQuant(2, 5), LogQuant(2.0 ** -6, 5),
    LogQuant(0.1, 5), LogQuant(0.1, 3), LogQuant(3.0, 4),
    LogQuant(2, 5, "clip"), LogQuant(0.1, 3, "clip"), LogQuant(0.5, 1, "flush"),
    LogQuant(2, 5, "flush"), LogQuant(0.7, 8, "flush"),
    LogQuant(2, 5, "stochastic", "full"), LogQuant(2, 4, "clip", "full"),
    LogQuant(2.0 ** -120, 4), LogQuant(2.0 ** 120, 3, "clip"),
    FixedPoint(8, 8), FixedPoint(8, 6), FixedPoint(6, 3, signed=False), FixedPoint(16, 12),
    FixedPoint(24, 20), FixedPoint(4, 0),
]
FMT_IDS = [f.spec for f in CODE_FORMATS]


def check(got, want):
    assert same_bits(got, want), describe_diff(got, want)


def plan(fmt):
    C = cpu.code_plan(fmt)
    assert C is not None, fmt.spec
    return C


def within_bound(B, fmt) -> bool:
    return B * plan(fmt)[cpu.C_MAXCODE] <= cpu.CODE_SUM_LIMIT


def run_codes(R, O, fmt, seed, counter, tasks=(1, 2, 3)):
    """The code kernels' results (parallel with several task counts, and serial), all checked
    to be produced (True) and equal; returns one."""
    C = plan(fmt)
    assert within_bound(R.shape[0], fmt)
    key, c0 = dispatch._keys(seed, counter)
    results = []
    for kern, ts in [(cpu.update_codes, tasks), (cpu.update_codes_serial, (1,))]:
        for t in ts:
            out = np.full((R.shape[1], O.shape[1]), np.nan, np.float32)
            assert kern(R, O, C, key, c0, out, t)
            results.append(out)
    for r in results[1:]:
        check(r, results[0])
    return results[0]


def loop_order(R, O) -> str:
    B, NO = R.shape
    return "columns" if cpu.by_columns(B, NO, O.shape[1], int(np.count_nonzero(O))) else "rows"


def both_orders(R, O, rng):
    """(R, O) as given (dense: the row loop) and with O mostly zero (the column loop, where the
    shape allows it: ``test_both_loop_orders_are_covered``)."""
    sparse = O.copy()
    keep = rng.random(O.shape) < 0.05
    keep[:, 0] = True
    sparse[~keep] = 0.0
    return [(R, O), (R, sparse)]


# --- the plan -----------------------------------------------------------------------------------

def test_plan_kinds_and_refusals():
    kinds = {f.spec: int(plan(f)[cpu.C_KIND]) for f in CODE_FORMATS}
    assert set(kinds.values()) == set(KINDS)
    assert kinds[LogQuant(0.5, 5).spec] == cpu.CODE_LOG_STOCH32         # the paper's update format
    assert kinds[LogQuant(0.1, 5).spec] == cpu.CODE_LOG_STOCH64         # smallest level not 2^k
    assert kinds[LogQuant(0.5, 1).spec] == cpu.CODE_LOG_CLIP            # 1 bit: no underflow rule
    assert plan(LogQuant(0.5, 5))[cpu.C_MAXCODE] == 16 and plan(FixedPoint(8, 8))[cpu.C_MAXCODE] == 128
    refused = [Float32(), None, LogQuant(2, 6, "stochastic", "full"),   # 32 levels: codes up to 2^31
               LogQuant(1e-40, 3), LogQuant(2.0 ** 130, 3),             # subnormal / inf levels
               FixedPoint(12, 8, rounding="stochastic"), FixedPoint(8, 4, rounding="nearest_away"),
               FixedPoint(5, 2, overflow="wrap"), FixedPoint(25, 10)]
    for fmt in refused:
        assert cpu.code_plan(fmt) is None, fmt


def edges(fmt) -> np.ndarray:
    """The plan's bucket edges T0 * 2^k, k = 0..n-1 (float32)."""
    n = 1 - fmt.min_exponent
    t0 = np.float64(np.int32(plan(fmt)[cpu.C_T0]).view(np.float32))
    return (t0 * 2.0 ** np.arange(n)).astype(np.float32)


@pytest.mark.parametrize("fmt", [f for f in CODE_FORMATS if f.kind == "log"], ids=lambda f: f.spec)
def test_plan_edges_and_unit_are_the_reference_grid(fmt):
    """Edge k is the smallest float32 the reference rounds onto level k+1 (its float32 predecessor
    goes to level k, or underflows below edge 0); level k+1 is code 2^k times the unit."""
    n = 1 - fmt.min_exponent
    T = edges(fmt)
    below = np.nextafter(T, np.float32(0))
    clip = LogQuant(fmt.alpha, fmt.bits, "clip", fmt.levels)
    levels = reference.quantize(T, clip)
    np.testing.assert_array_equal(levels, (plan(fmt)[cpu.C_UNIT] * 2.0 ** np.arange(n)).astype(np.float32))
    np.testing.assert_array_equal(reference.quantize(below[1:], clip), levels[:-1])
    if fmt.bits > 1:
        flush = LogQuant(fmt.alpha, fmt.bits, "flush", fmt.levels)
        assert reference.quantize(T[:1], flush)[0] == levels[0] and reference.quantize(below[:1], flush)[0] == 0


# --- equivalence on ordinary and awkward data ---------------------------------------------------

SHAPES = [(1, 1, 1), (3, 5, 7), (7, 16, 16), (9, 33, 100), (20, 100, 17), (2, 40, 49)]


def test_both_loop_orders_are_covered():
    rng = np.random.default_rng(0)
    orders = set()
    for B, NO, NI in SHAPES:
        cases = both_orders(np.ones((B, NO), np.float32), np.ones((B, NI), np.float32), rng)
        assert loop_order(*cases[0]) == "rows"
        orders.add(loop_order(*cases[1]))
    assert orders == {"rows", "columns"}


@pytest.mark.parametrize("fmt", CODE_FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_codes_equal_reference_both_loop_orders(fmt, shape):
    B, NO, NI = shape
    rng = np.random.default_rng(B * 10007 + NO * 101 + NI)
    scale = fmt.alpha if fmt.kind == "log" else 2.0 ** (fmt.word - fmt.frac - 1)
    R = (rng.normal(0, 0.3, (B, NO)) * rng.choice([1e-3, 0.1, 1.0], (B, NO))).astype(np.float32)
    O = (np.tanh(rng.normal(0, 1, (B, NI))) * scale).astype(np.float32)
    R.flat[::7] = 0.0                                       # skipped rows in the row loop
    if R.size > 1:
        R.flat[1] = -0.0
    for Rc, Oc in both_orders(R, O, rng):
        for seed, counter in [(4, 17), (2 ** 64 - 1, 2 ** 64 - 3)]:      # counters wrap mod 2^64
            want = reference.per_example_update(Rc, Oc, fmt, seed=seed, counter=counter)
            if within_bound(B, fmt):                        # else the dispatch uses the general kernel
                check(run_codes(Rc, Oc, fmt, seed, counter), want)
            check(dispatch.per_example_update(Rc, Oc, fmt, seed=seed, counter=counter, backend="numba"), want)


@pytest.mark.parametrize("shape", [(0, 3, 4), (4, 0, 5), (4, 3, 0), (0, 0, 0)], ids=str)
def test_codes_empty_shapes(shape):
    B, NO, NI = shape
    R, O = np.ones((B, NO), np.float32), np.ones((B, NI), np.float32)
    for fmt in (LogQuant(0.5, 5), FixedPoint(8, 8)):
        check(run_codes(R, O, fmt, 1, 2), reference.per_example_update(R, O, fmt, seed=1, counter=2))


def log_edge_values(fmt) -> np.ndarray:
    """Products where the log rounding turns: every bucket edge, the half-way points
    alpha * 2^(e + 1/2) and the levels, each with both float32 neighbours; subnormals, the
    largest float32, values below the smallest level; both signs, and zeros."""
    with np.errstate(over="ignore"):
        half = fmt.alpha * 2.0 ** (np.arange(fmt.min_exponent - 3, 3) + 0.5)
        levels = fmt.alpha * 2.0 ** np.arange(fmt.min_exponent - 3, 3)
        v = np.concatenate([edges(fmt), half, levels]).astype(np.float32)
    v = v[np.isfinite(v) & (v > 0)]
    v = np.concatenate([v, np.nextafter(v, np.float32(0)), np.nextafter(v, np.float32(np.inf)),
                        np.float32([1e-45, 1e-40, 2.0 ** -126, 3.4e38, 1e-30]), v * np.float32(0.37)])
    return np.concatenate([v, -v, np.float32([0.0, -0.0])]).astype(np.float32)


def fixed_edge_values(fmt) -> np.ndarray:
    """Ties k + 1/2 (even and odd k), their neighbours, the saturation limits and beyond."""
    k = np.arange(-6, 7, dtype=np.float64)
    ties = (k + 0.5) * 2.0 ** -fmt.frac
    limits = np.array([fmt.int_min, fmt.int_max, fmt.int_min - 1, fmt.int_max + 1, 2 * fmt.int_max + 7],
                      np.float64) * 2.0 ** -fmt.frac
    v = np.concatenate([ties, limits]).astype(np.float32)
    v = np.concatenate([v, np.nextafter(v, np.float32(-np.inf)), np.nextafter(v, np.float32(np.inf)),
                        np.float32([1e-45, 3.4e38, 1e-3])])
    return np.concatenate([v, -v, np.float32([0.0, -0.0])]).astype(np.float32)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("fmt", CODE_FORMATS, ids=FMT_IDS)
def test_codes_at_rounding_edges(fmt):
    """Each edge value v as the product R[b, i] * O[b, j] with O = +-1 (exact products), and
    times +-1/8 and 8 (exact, or overflowing float32 to inf for 3.4e38 * 8: the top level or
    saturation, as in the reference); in both loop orders."""
    rng = np.random.default_rng(3)
    v = log_edge_values(fmt) if fmt.kind == "log" else fixed_edge_values(fmt)
    v = v[rng.permutation(v.size)]
    NO = 32
    R_all = np.resize(v, (-(-v.size // NO), NO)).astype(np.float32)
    batch = cpu.CODE_SUM_LIMIT // int(plan(fmt)[cpu.C_MAXCODE])       # 24-bit fixed: 2 examples a call
    for b0 in range(0, R_all.shape[0], batch):
        R = R_all[b0:b0 + batch]
        O = np.resize(np.float32([1.0, -1.0, 0.125, -0.125, 8.0]), (R.shape[0], 5)).astype(np.float32)
        for Rc, Oc in both_orders(R, O, rng):
            want = reference.per_example_update(Rc, Oc, fmt, seed=6, counter=99 + b0)
            check(run_codes(Rc, Oc, fmt, 6, 99 + b0), want)


@pytest.mark.parametrize("fmt", [LogQuant(0.5, 5), LogQuant(0.1, 5), LogQuant(2, 3, "clip")], ids=lambda f: f.spec)
def test_products_that_cross_an_edge_only_by_float32_rounding(fmt):
    """r * o below an edge in exact arithmetic but rounded up onto it in float32: the reference
    quantizes the float32 product, so must the kernel. (The other way cannot happen: the edge is
    a float32, and rounding is monotone.)"""
    rs, os_, edge_hit = [], [], set()
    for t in edges(fmt):
        for o in np.float32([3.0, 5.0, 7.0, 0.7, 1.3, 11.0, 13.0, 0.3]):
            r0 = np.float32(np.float64(t) / np.float64(o))
            for r in (r0, np.nextafter(r0, np.float32(0)), np.nextafter(r0, np.float32(1))):
                exact, rounded = np.float64(r) * np.float64(o), np.float32(r * o)
                if rounded == t and exact < np.float64(t):
                    rs.append(r)
                    os_.append(o)
                    edge_hit.add(float(t))
    assert len(edge_hit) == 1 - fmt.min_exponent                # such products exist at every edge
    rs, os_ = np.resize(rs, max(len(rs), 16)), np.resize(os_, max(len(rs), 16))   # wide enough for columns
    m = len(rs)
    # example b: R's entry i times O's only non-zero, column b % m, is the crafted product for i = b % m
    R = np.repeat(np.float32(rs)[None, :] * np.float32([[1.0], [-1.0]]), m, axis=0)
    O = np.zeros((2 * m, m), np.float32)
    for b in range(2 * m):
        O[b, b % m] = os_[b % m]
    assert loop_order(R, O) == "columns"
    Od = O + np.float32(1e-3) * (O == 0)                        # dense: the row loop too
    for Rc, Oc in [(R, O), (R, Od)]:
        want = reference.per_example_update(Rc, Oc, fmt, seed=2, counter=5)
        check(run_codes(Rc, Oc, fmt, 2, 5), want)


@pytest.mark.parametrize("fmt", [LogQuant(0.5, 5), LogQuant(0.5, 3), LogQuant(2.0 ** -6, 5), LogQuant(0.1, 5),
                                 LogQuant(3.0, 4)], ids=lambda f: f.spec)
@pytest.mark.parametrize("order", ["rows", "columns"])
def test_stochastic_draw_equal_to_the_magnitude(fmt, order):
    """Below the smallest level the reference keeps it when u * smallest < |x|. Products are chosen
    as u * smallest for their own draw u (rounded to float32: exact when smallest is a power of
    two, so the level is dropped) and as its float32 neighbours (kept above, dropped below)."""
    seed, counter = 12, 2 ** 64 - 40
    smallest = fmt.alpha * 2.0 ** fmt.min_exponent
    B, NO, NI, j = 6, 32, 3, 1
    O = np.zeros((B, NI), np.float32)
    O[:, j] = 1.0                                               # the product of (b, i, j) is R[b, i]
    if order == "rows":
        O[:, [0, 2]] = 0.5
    u = reference.uniform_counter(B * NO * NI, seed, counter).reshape(B, NO, NI)[:, :, j]
    mag = (u * smallest).astype(np.float32)
    step = np.random.default_rng(0).integers(-1, 2, (B, NO))
    mag = np.where(step < 0, np.nextafter(mag, np.float32(0)),
                   np.where(step > 0, np.nextafter(mag, np.float32(1)), mag)).astype(np.float32)
    R = (mag * np.where(np.arange(NO) % 2, -1, 1)).astype(np.float32)
    if float(smallest).hex().startswith("0x1.0000000000000p"):   # a power of two: ties are exact
        assert np.all((u * smallest == np.abs(R).astype(np.float64))[step == 0])
    assert loop_order(R, O) == order
    want = reference.per_example_update(R, O, fmt, seed=seed, counter=counter)
    check(run_codes(R, O, fmt, seed, counter), want)


# --- what the code kernels leave to the general one -----------------------------------------------

@pytest.mark.parametrize("fmt", [LogQuant(0.5, 5), LogQuant(2, 5, "clip"), FixedPoint(8, 8)], ids=lambda f: f.spec)
def test_nan_and_inf_inputs_go_to_the_general_kernel(fmt):
    rng = np.random.default_rng(5)
    R = awkward_values(4 * 6, rng, scale=0.3).reshape(4, 6)
    O = awkward_values(4 * 20, rng).reshape(4, 20)
    C = plan(fmt)
    key, c0 = dispatch._keys(1, 2)
    for Rc, Oc in [(R, np.ones_like(O)), (np.ones_like(R), O)]:
        for kern in (cpu.update_codes, cpu.update_codes_serial):
            out = np.full((6, 20), 7.0, np.float32)
            assert not kern(Rc, Oc, C, key, c0, out, 2)
            assert np.all(out == 7.0)                             # untouched
        want = reference.per_example_update(Rc, Oc, fmt, seed=1, counter=2)
        check(dispatch.per_example_update(Rc, Oc, fmt, seed=1, counter=2, backend="numba"), want)


def test_code_sum_bound():
    """Codes 2^23, 2^23, 1, 1 sum to 2^24 + 2, which float32 cannot add exactly (it gives 2^24):
    at batch 4 a 24-level format is over the bound (4 * 2^23 > 2^24) and the dispatch must use the
    general kernel; at batch 2 it is on the bound and the code kernel is exact."""
    fmt = LogQuant(1.0, 24, "clip")                              # levels 2^-23 .. 1: codes 1 .. 2^23
    assert plan(fmt)[cpu.C_MAXCODE] == 2 ** 23
    R = np.float32([[1.0], [1.0], [2.0 ** -23], [2.0 ** -23]])
    O = np.float32([[1.0], [1.0], [1.0], [1.0]])
    want = reference.per_example_update(R, O, fmt)
    assert want[0, 0] == np.float32((2 ** 24 + 2) * 2.0 ** -23)
    check(dispatch.per_example_update(R, O, fmt, backend="numba"), want)
    C, (key, c0) = plan(fmt), dispatch._keys(0, 0)
    over = np.empty((1, 1), np.float32)
    cpu.update_codes_serial(R, O, C, key, c0, over)              # what the bound prevents
    assert over[0, 0] != want[0, 0]
    check(run_codes(R[:2], O[:2], fmt, 0, 0), reference.per_example_update(R[:2], O[:2], fmt))


# --- random formats and data ------------------------------------------------------------------------

POW2_AND_OTHER_ALPHAS = st.sampled_from([0.5, 2.0, 1.0, 2.0 ** -6, 0.1, 3.0, 0.7, 1e-3])
code_log = st.builds(LogQuant, alpha=POW2_AND_OTHER_ALPHAS, bits=st.integers(1, 9),
                     underflow=st.sampled_from(["clip", "flush", "stochastic"]),
                     levels=st.sampled_from(["paper", "full"])).filter(lambda f: cpu.code_plan(f) is not None)
code_fixed = st.builds(lambda w, f, s: FixedPoint(w, min(f, w), s), st.integers(1, 24), st.integers(0, 24),
                       st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.one_of(code_log, code_fixed), st.integers(1, 6), st.integers(1, 40), st.integers(1, 40),
       st.floats(0.0, 0.97), st.integers(0, 2 ** 32))
def test_codes_random_formats_shapes_and_sparsity(fmt, B, NO, NI, zero_frac, seed):
    B = max(1, min(B, cpu.CODE_SUM_LIMIT // int(plan(fmt)[cpu.C_MAXCODE])))
    rng = np.random.default_rng(seed)
    scale = fmt.alpha if fmt.kind == "log" else 2.0 ** (fmt.word - fmt.frac)
    R = (rng.normal(0, 1, (B, NO)) * rng.choice([1e-4, 0.03, 1.0, 3.0], (B, NO))).astype(np.float32)
    O = (np.tanh(rng.normal(0, 1, (B, NI))) * scale).astype(np.float32)
    O[rng.random((B, NI)) < zero_frac] = 0.0
    want = reference.per_example_update(R, O, fmt, seed=seed, counter=seed * 3)
    got = run_codes(R, O, fmt, seed, seed * 3, tasks=(2,))
    assert same_bits(got, want), (fmt.spec, loop_order(R, O), describe_diff(got, want))


@pytest.mark.parametrize("kind", ["torch", "numpy", "numpy-readonly-inputs", "float32-accumulator",
                                  "fixed-accumulator", "strided-out", "nan"])
def test_dispatch_short_path_and_its_fallbacks(kind, monkeypatch):
    """The training loop's call (contiguous float32 R, O, out; backend auto / numba; accumulator
    None or Float32) takes a short path to the code kernel (read-only inputs included); a fixed
    accumulator, a strided out or a NaN input goes the long way. Every case returns the
    reference's bits in ``out``."""
    import torch
    rng = np.random.default_rng(9)
    fmt = LogQuant(0.5, 5)
    R = rng.normal(0, 0.05, (100, 20)).astype(np.float32)
    O = np.tanh(rng.normal(0, 1, (100, 30))).astype(np.float32)
    if kind == "nan":
        O[3, 4] = np.nan
    acc = {"float32-accumulator": Float32(), "fixed-accumulator": FixedPoint(16, 10)}.get(kind)
    want = reference.per_example_update(R, O, fmt, accumulator=acc, seed=4, counter=2 ** 40)
    if kind == "torch":
        args, out = (torch.from_numpy(R), torch.from_numpy(O)), torch.full((20, 30), np.nan)
    elif kind == "strided-out":
        args, out = (R, O), np.full((30, 20), np.nan, np.float32).T
    else:
        args, out = (R, O), np.full((20, 30), np.nan, np.float32)
        if kind == "numpy-readonly-inputs":
            R.flags.writeable = O.flags.writeable = False
    if kind in ("torch", "numpy", "numpy-readonly-inputs", "float32-accumulator"):
        def long_way(*a, **k):
            raise AssertionError("the short path was not taken")
        monkeypatch.setattr(dispatch_update, "_host", long_way)    # the long way converts inputs with _host
    got = dispatch.per_example_update(*args, fmt, accumulator=acc, seed=4, counter=2 ** 40, out=out, backend="auto")
    assert got is out
    check(np.asarray(out), want)


@pytest.mark.parametrize("spec", ["log:alpha=0.5,bits=5", "log:alpha=0.5,bits=1", "fixed:w=8,f=8"])
def test_training_with_the_code_kernel_gives_the_general_kernels_weights(spec, tiny_data, monkeypatch):
    """An SRBP epoch with a quantized update: the same weights, bit for bit, whether the dispatch
    runs the code kernel (counted: it did) or, with the code plans hidden, the general kernel."""
    from lowbit_rbp.core.config import RunConfig, apply_overrides
    from lowbit_rbp.learning.trainer import Trainer
    cfg = apply_overrides(RunConfig(), ["model.hidden=[40,20]", "train.batch_size=25", "channel.algorithm=srbp",
                                        f"formats.update='{spec}'"])
    calls = []
    serial = cpu.update_codes_serial
    monkeypatch.setattr(cpu, "update_codes_serial", lambda *a: calls.append(1) or serial(*a))

    def weights():
        tr = Trainer(cfg, tiny_data)
        tr.train_epoch()
        return [w.numpy().copy() for w in tr.net.W + tr.net.b]

    with_codes = weights()
    assert len(calls) == 3 * 200 // 25                                 # 3 weight layers, 8 minibatches
    monkeypatch.setattr(dispatch_update, "_code_plan", lambda fmt: None)
    general = weights()
    assert len(calls) == 3 * 200 // 25
    for a, b in zip(with_codes, general):
        check(a, b)
