"""NumPy reference kernels: the definition of what every faster kernel must return.

All functions are pure: arrays in, new arrays out. Quantizers take float32 values (other inputs
are first rounded to float32), compute in float64 and return float32. The Numba CPU
(``kernels.cpu``) and Numba CUDA (``kernels.cuda``) kernels return the same bits.

Conventions shared by every backend
-----------------------------------
* Zeros produced by a quantizer are ``+0.0`` (a ``-0.0`` never comes out of a log or fixed
  quantizer; the float32 pass-through returns its input unchanged). NaN payloads are unspecified.
* Stochastic modes draw element ``i`` of a call from ``uniform_counter`` at ``counter + i``
  (``i`` the flat C-order index), so results do not depend on the order of evaluation.
  Seeds and counters are taken modulo 2^64.
* The log quantizer's exponent ``round(log2(|x|/alpha))`` is evaluated exactly: ``|x|/alpha`` is
  rounded once to float64, then ``frexp`` and one comparison against sqrt(1/2) pick the nearest
  integer (a tie would need ``|x|/alpha = 2^(k+1/2)``, which is irrational, so none exists).
  No ``log2``/``exp2`` from a math library enters the result, so no backend can differ by an ulp.
* Fixed point with ``word > 24`` is computed exactly in float64, but the float32 output can
  round an integer code ``|k| > 2^24`` to a neighbour (float32 has a 24-bit significand).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_MOD64 = 2 ** 64
#: float64 nearest to sqrt(1/2); it lies above sqrt(1/2), so ``m >= SQRT_HALF`` <=> ``m > sqrt(1/2)``.
SQRT_HALF = 0.7071067811865476
#: The bound on the int64 accumulator of ``lowbit_dense_product``.
INT64_LIMIT = 2 ** 63


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 (wrapping arithmetic): the counter-based RNG's mixer."""
    z = z.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def seed_key(seed: int) -> np.uint64:
    """``splitmix64(seed)``: the key every element's counter is xor-ed with."""
    return splitmix64(np.array([int(seed) % _MOD64], dtype=np.uint64))[0]


def uniform_counter(n: int, seed: int, counter: int) -> np.ndarray:
    """n uniforms in [0, 1) on a 2^-24 grid, element i drawn from hash(seed, counter + i).

    ``u_i = (splitmix64((counter + i) xor splitmix64(seed)) >> 40) * 2^-24`` (uint64 wrapping).
    Counter based, so any backend reproduces the same stream from (seed, counter) alone,
    whatever the order in which elements are processed.
    """
    idx = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = seed_key(seed)
        z = splitmix64((idx + np.uint64(int(counter) % _MOD64)) ^ key)
    return (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24


def passthrough(x):
    return np.asarray(x, dtype=np.float32).copy()


def _f32(v: np.ndarray) -> np.ndarray:
    """Round float64 results to float32 (values beyond float32's range become +-inf, silently)."""
    with np.errstate(over="ignore"):
        return v.astype(np.float32)


# --- quantizer cores on float64 values ----------------------------------------------------------

def log_exponent(mag: np.ndarray, alpha: float) -> np.ndarray:
    """``min(round(log2(mag/alpha)), 0)`` (float64) for float64 magnitudes ``mag > 0`` (inf included);
    ``-inf`` where ``mag/alpha`` underflows float64. Non-decreasing in ``mag``."""
    v = mag / alpha
    m, E = np.frexp(v)
    e = np.where(m >= SQRT_HALF, E, E - 1).astype(np.float64)
    e[v >= 1.0] = 0.0                             # at or above alpha: the top level (also inf)
    e[v == 0.0] = -np.inf                         # |x|/alpha underflowed float64
    return e


def _log_core(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    """Log quantizer on flat float64 values; returns float64 grid values (before the float32 cast)."""
    mag = np.abs(xd)
    out = np.zeros_like(xd)
    nz = mag > 0                                  # exact zeros (and NaN) give 0
    e = log_exponent(mag[nz], fmt.alpha)
    e_min = fmt.min_exponent
    q = np.ldexp(fmt.alpha, np.maximum(e, e_min).astype(np.int32))
    if fmt.underflow != "clip" and fmt.bits > 1:
        under = e < e_min
        if fmt.underflow == "flush":
            q[under] = 0.0
        else:  # stochastic: smallest level with probability |x| / smallest, else 0 (unbiased)
            smallest = fmt.alpha * 2.0 ** e_min
            u = uniform_counter(xd.size, seed, counter)[nz]
            q[under & (u * smallest >= mag[nz])] = 0.0
    out[nz] = np.where(xd[nz] > 0, q, -q)
    return out + 0.0


def _round_fixed(y: np.ndarray, rounding: str, seed: int, counter: int) -> np.ndarray:
    """Round scaled values ``y = x * 2^frac`` to integers (as float64)."""
    if rounding == "nearest_even":
        return np.rint(y)
    if rounding == "nearest_away":
        return np.sign(y) * np.floor(np.abs(y) + 0.5)
    if rounding == "truncate":
        return np.floor(y)
    return np.floor(y + uniform_counter(y.size, seed, counter))


def _overflow(k: np.ndarray, fmt) -> np.ndarray:
    """Saturate or wrap integer codes (float64) into the format's range."""
    if fmt.overflow == "saturate":
        return np.clip(k, fmt.int_min, fmt.int_max)
    with np.errstate(invalid="ignore"):
        return np.mod(k - fmt.int_min, 2.0 ** fmt.word) + fmt.int_min


def _fixed_codes_f64(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    return _overflow(_round_fixed(xd * 2.0 ** fmt.frac, fmt.rounding, seed, counter), fmt)


def _fixed_core(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    return _fixed_codes_f64(xd, fmt, seed, counter) * 2.0 ** -fmt.frac + 0.0


def _core(xd: np.ndarray, fmt, seed: int, counter: int) -> np.ndarray:
    kind = getattr(fmt, "kind", None)
    if kind == "float":
        return xd
    if kind == "log":
        return _log_core(xd, fmt, seed, counter)
    if kind == "fixed":
        return _fixed_core(xd, fmt, seed, counter)
    raise ValueError(f"number format: got {fmt!r}; allowed: Float32, LogQuant, FixedPoint")


# --- public quantizers --------------------------------------------------------------------------

def quantize_log(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``alpha * sign(x) * 2^round(clip(log2(|x|/alpha), E_min, 0))`` with the format's underflow rule."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64).ravel()
    return _f32(_log_core(xd, fmt, seed, counter)).reshape(x.shape)


def quantize_fixed(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Round ``x * 2^frac`` to an integer with the format's rounding, then saturate or wrap."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64).ravel()
    return _f32(_fixed_core(xd, fmt, seed, counter)).reshape(x.shape)


def quantize(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Any format (Float32, LogQuant, FixedPoint) on float32 values."""
    x = np.asarray(x, dtype=np.float32)
    return _f32(_core(x.astype(np.float64).ravel(), fmt, seed, counter)).reshape(x.shape)


def quantize_f64(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Quantize float64 values directly (no float32 step before the quantizer); float32 out."""
    x = np.asarray(x, dtype=np.float64)
    return _f32(_core(x.ravel(), fmt, seed, counter)).reshape(x.shape)


def fixed_codes(x, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """The int64 codes ``k`` (value ``k * 2^-frac``) of float32 ``x`` in FixedPoint ``fmt``; NaN -> 0."""
    x = np.asarray(x, dtype=np.float32)
    k = _fixed_codes_f64(x.astype(np.float64).ravel(), fmt, seed, counter)
    k[np.isnan(k)] = 0.0
    return k.astype(np.int64).reshape(x.shape)


# --- shape checks shared with dispatch ----------------------------------------------------------

def _check_2d(a: np.ndarray, name: str) -> None:
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got shape {tuple(a.shape)}")


def check_update_shapes(R_shape, O_shape, out_shape=None) -> None:
    if len(R_shape) != 2 or len(O_shape) != 2:
        raise ValueError(f"per_example_update: R and O must be 2-D (batch, out) and (batch, in); "
                         f"got R {tuple(R_shape)} and O {tuple(O_shape)}")
    if R_shape[0] != O_shape[0]:
        raise ValueError(f"per_example_update: batch sizes differ: R {tuple(R_shape)} vs O {tuple(O_shape)}")
    want = (R_shape[1], O_shape[1])
    if out_shape is not None and tuple(out_shape) != want:
        raise ValueError(f"per_example_update: out has shape {tuple(out_shape)}; R {tuple(R_shape)} "
                         f"and O {tuple(O_shape)} need {want}")


def check_product_shapes(R_shape, C_shape, out_shape=None, what: str = "lowbit_dense_product") -> None:
    if len(R_shape) != 2 or len(C_shape) != 2:
        raise ValueError(f"{what}: R and C must be 2-D; got R {tuple(R_shape)} and C {tuple(C_shape)}")
    if R_shape[1] != C_shape[0]:
        raise ValueError(f"{what}: inner sizes differ: R {tuple(R_shape)} vs C {tuple(C_shape)}")
    want = (R_shape[0], C_shape[1])
    if out_shape is not None and tuple(out_shape) != want:
        raise ValueError(f"{what}: out has shape {tuple(out_shape)}; R {tuple(R_shape)} "
                         f"and C {tuple(C_shape)} need {want}")


def require_fixed(fmt, what: str) -> None:
    if getattr(fmt, "kind", None) != "fixed":
        raise ValueError(f"{what}: got {fmt!r}; allowed: a FixedPoint format")


def accumulator_format(accumulator):
    """None / Float32 -> None (float64 accumulation); FixedPoint -> itself; anything else: error."""
    if accumulator is None or getattr(accumulator, "kind", None) == "float":
        return None
    require_fixed(accumulator, "accumulator format")
    return accumulator


# --- 2: sparse binary feedback product ----------------------------------------------------------

class IndexLists(NamedTuple):
    """A binary feedback matrix ``M`` (sender, receiver) with entries {0, scale}, as index lists.

    Receiver ``r``'s non-zero senders are ``indices[indptr[r]:indptr[r+1]]`` (ascending): CSC of
    M, equivalently CSR of M^T.
    """

    indptr: np.ndarray   # int64, (n_receivers + 1,)
    indices: np.ndarray  # int64, (nnz,)
    scale: float
    n_senders: int

    @property
    def n_receivers(self) -> int:
        return self.indptr.size - 1


def binary_to_index_lists(M) -> IndexLists:
    """Convert a dense {0, c} matrix of shape (sender, receiver) to ``IndexLists``.

    All non-zero entries must be equal (one scale ``c``); an all-zero matrix gets scale 1.
    """
    M = np.asarray(M)
    _check_2d(M, "binary feedback matrix")
    vals = M[M != 0]
    if vals.size and not np.all(vals == vals.flat[0]):
        distinct = np.unique(vals)
        raise ValueError(f"binary feedback matrix: entries must be 0 or one constant c; got "
                         f"{distinct.size} distinct non-zero values (e.g. {distinct[:3].tolist()})")
    scale = float(vals.flat[0]) if vals.size else 1.0
    r, s = np.nonzero(M.T)                           # sorted by receiver, then sender
    counts = np.bincount(r, minlength=M.shape[1])
    indptr = np.zeros(M.shape[1] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return IndexLists(indptr, s.astype(np.int64), scale, int(M.shape[0]))


def index_lists_dense(lists: IndexLists) -> np.ndarray:
    """The dense float32 (sender, receiver) matrix of ``lists`` (for tests and checks)."""
    M = np.zeros((lists.n_senders, lists.n_receivers), dtype=np.float32)
    for r in range(lists.n_receivers):
        M[lists.indices[lists.indptr[r]:lists.indptr[r + 1]], r] = lists.scale
    return M


def check_sparse(R_shape, indptr, indices, n_senders, out_shape=None, what: str = "sparse_feedback_product") -> None:
    if len(R_shape) != 2:
        raise ValueError(f"{what}: R must be 2-D (batch, sender); got {tuple(R_shape)}")
    if indptr.ndim != 1 or indptr.size < 1 or indices.ndim != 1 or indptr[-1] != indices.size or indptr[0] != 0:
        raise ValueError(f"{what}: malformed index lists: indptr {tuple(indptr.shape)} "
                         f"ending at {int(indptr[-1]) if indptr.size else None}, indices {tuple(indices.shape)}")
    if n_senders is not None and n_senders != R_shape[1]:
        raise ValueError(f"{what}: R {tuple(R_shape)} has {R_shape[1]} senders; "
                         f"the feedback matrix has shape {(n_senders, indptr.size - 1)}")
    if indices.size and (indices.min() < 0 or indices.max() >= R_shape[1]):
        raise ValueError(f"{what}: sender indices span {int(indices.min())}..{int(indices.max())}; "
                         f"R {tuple(R_shape)} has {R_shape[1]} senders")
    want = (R_shape[0], indptr.size - 1)
    if out_shape is not None and tuple(out_shape) != want:
        raise ValueError(f"{what}: out has shape {tuple(out_shape)}; need {want}")


def sparse_feedback_product(R, lists: IndexLists, scale: float | None = None) -> np.ndarray:
    """``J[b, r] = scale * sum_{s in idx(r)} R[b, s]``: additions only, one multiply per output.

    The sum runs in float64 in index-list order (ascending sender), then is multiplied by
    ``scale`` (float64) and rounded to float32.
    """
    R = np.asarray(R, dtype=np.float32)
    indptr, indices = np.asarray(lists.indptr, np.int64), np.asarray(lists.indices, np.int64)
    n_senders = getattr(lists, "n_senders", None)
    check_sparse(R.shape, indptr, indices, n_senders)
    scale = float(lists.scale if scale is None else scale)
    nr = indptr.size - 1
    acc = np.zeros((R.shape[0], nr), dtype=np.float64)
    lengths = np.diff(indptr)
    for p in range(int(lengths.max()) if nr else 0):   # position p of every list, in order
        rs = np.nonzero(lengths > p)[0]
        acc[:, rs] += R[:, indices[indptr[rs] + p]].astype(np.float64)
    return _f32(acc * scale)


# --- 3: dense low-bit product with integer accumulation -----------------------------------------

def check_int64_bound(K: int, max_r: int, max_c: int) -> None:
    if K * max_r * max_c >= INT64_LIMIT:
        raise ValueError(f"lowbit_dense_product: the int64 accumulator could overflow: K={K} x max|k_R|={max_r} "
                         f"x max|k_C|={max_c} >= 2^63; use narrower formats")


def lowbit_dense_product(R, C, r_fmt, c_fmt, *, out_fmt=None, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``J = (k_R @ k_C) * 2^-(f_R + f_C)``, optionally re-quantized to ``out_fmt``.

    ``k_R`` / ``k_C`` are the int64 codes of R (batch, K) and C (K, N) in the FixedPoint formats
    ``r_fmt`` / ``c_fmt``; the products are summed in int64 (exact: a bound
    K * max|k_R| * max|k_C| >= 2^63 raises ValueError). The exact sum, scaled in float64 (exact
    below 2^53), is quantized directly to ``out_fmt`` (no float32 step) or rounded to float32.
    Counters: R uses ``counter + i``, C ``counter + R.size + i``, the output
    ``counter + R.size + C.size + i``.
    """
    R = np.asarray(R, dtype=np.float32)
    C = np.asarray(C, dtype=np.float32)
    check_product_shapes(R.shape, C.shape)
    require_fixed(r_fmt, "lowbit_dense_product r_fmt")
    require_fixed(c_fmt, "lowbit_dense_product c_fmt")
    kR = fixed_codes(R, r_fmt, seed=seed, counter=counter)
    kC = fixed_codes(C, c_fmt, seed=seed, counter=counter + R.size)
    max_r = int(np.abs(kR).max()) if kR.size else 0
    max_c = int(np.abs(kC).max()) if kC.size else 0
    check_int64_bound(R.shape[1], max_r, max_c)
    acc = kR @ kC if R.shape[1] else np.zeros((R.shape[0], C.shape[1]), np.int64)
    value = acc.astype(np.float64) * 2.0 ** -(r_fmt.frac + c_fmt.frac)
    if out_fmt is None:
        return _f32(value)
    return quantize_f64(value, out_fmt, seed=seed, counter=counter + R.size + C.size)


# --- 4 and 5: per-example quantized update, saturating fixed-point accumulation -----------------

def _acc_add(acc: np.ndarray, q: np.ndarray, A, seed: int, counter: int) -> np.ndarray:
    """One saturating (or wrapping) add in accumulator format A: ``acc`` holds integer codes."""
    k = _round_fixed(q.ravel() * 2.0 ** A.frac, A.rounding, seed, counter).reshape(q.shape)
    return _overflow(acc + k, A)


def per_example_update(R, O, fmt, *, accumulator=None, seed: int = 0, counter: int = 0,
                       max_chunk_elems: int = 1 << 22) -> np.ndarray:
    """``G[i, j] = sum_b Q(R[b, i] * O[b, j])``, materializing the per-example products in chunks.

    * The product ``R[b, i] * O[b, j]`` is formed in float32 (as a float32 training loop does),
      then quantized with ``fmt``; element (b, i, j) uses counter ``counter + (b*out + i)*in + j``
      (its flat index in the materialized (batch, out, in) tensor).
    * Without an accumulator (None or Float32) the float32 quantized values are summed in float64
      in batch order and the sum is rounded to float32 once (exact for fixed formats while
      |G| < 2^(53-frac)).
    * With a FixedPoint accumulator A each addend is rounded to A's grid with A's rounding
      (exact when Q's grid lies on A's; stochastic uses counter ``counter + batch*out*in +
      (b*out + i)*in + j``), added to the integer code and saturated (or wrapped) at every add;
      the result is ``code * 2^-frac_A`` in float32.
    """
    R = np.asarray(R, dtype=np.float32)
    O = np.asarray(O, dtype=np.float32)
    check_update_shapes(R.shape, O.shape)
    A = accumulator_format(accumulator)
    B, NO = R.shape
    NI = O.shape[1]
    per_b = NO * NI
    acc = np.zeros((NO, NI), dtype=np.float64)
    cb = max(1, max_chunk_elems // max(per_b, 1))
    counter_a = counter + B * per_b
    for b0 in range(0, B, cb):
        b1 = min(B, b0 + cb)
        P = R[b0:b1, :, None] * O[b0:b1, None, :]            # float32 per-example products
        Q = quantize(P, fmt, seed=seed, counter=counter + b0 * per_b)
        for b in range(b0, b1):
            q = Q[b - b0].astype(np.float64)
            if A is None:
                acc += q
            else:
                acc = _acc_add(acc, q, A, seed, counter_a + b * per_b)
    if A is None:
        return _f32(acc)
    return _f32(acc * 2.0 ** -A.frac + 0.0)


def accumulate_fixed(X, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """Sum ``X`` (n, ...) over axis 0 in FixedPoint ``fmt``, saturating (or wrapping) at every add.

    Each addend ``X[t]`` is rounded to fmt's grid with fmt's rounding (stochastic: element (t, j)
    of the flattened (n, m) array uses counter ``counter + t*m + j``), the integer codes are added
    in order t = 0..n-1 and saturated (wrapped) after each add. Returns float32 of shape X.shape[1:].
    """
    X = np.asarray(X, dtype=np.float32)
    require_fixed(fmt, "accumulate_fixed format")
    if X.ndim < 1:
        raise ValueError(f"accumulate_fixed: X must have at least 1 dimension; got shape {X.shape}")
    n = X.shape[0]
    X2 = X.reshape(n, -1) if n else np.zeros((0, int(np.prod(X.shape[1:]))), np.float32)
    m = X2.shape[1]
    acc = np.zeros(m, dtype=np.float64)
    for t in range(n):
        acc = _acc_add(acc, X2[t].astype(np.float64), fmt, seed, counter + t * m)
    return _f32(acc * 2.0 ** -fmt.frac + 0.0).reshape(X.shape[1:])


# --- forward activation -------------------------------------------------------------------------

#: tanh as a float32 rational function: tanh(x) ~ x P(x^2) / Q(x^2) for |x| <= TANH_CLAMP, where it
#: reaches +-1.0 in float32. The minimax coefficients are Eigen's ``generic_fast_tanh_float``
#: (Eigen/src/Core/MathFunctionsImpl.h, also XLA's and MLIR's CPU tanh). Evaluated in float32 with
#: Horner's rule and no fused multiply-add, as here, it is within 3.5e-7 of tanh (float64) on
#: every float32 input (tested on a 2e6-point grid): 6 units in the last place near |x| = 6. It is
#: odd, bounded by 1, and monotone up to that rounding (steps back of at most 5e-7 for |x| > 4).
TANH_CLAMP = np.float32(7.90531110763549805)
TANH_P = tuple(np.float32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                       5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                       4.89352455891786e-03))     # x^13 ... x^1 (highest first)
TANH_Q = tuple(np.float32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                       4.89352518554385e-03))     # x^6 ... x^0


def tanh(x) -> np.ndarray:
    """float32 tanh by the rational function above; NaN stays NaN, +-inf gives +-1."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        c = np.where(x > TANH_CLAMP, TANH_CLAMP, x)          # NaN compares false: kept
        c = np.where(c < -TANH_CLAMP, -TANH_CLAMP, c)
        x2 = c * c
        p = TANH_P[0] * x2 + TANH_P[1]
        for coef in TANH_P[2:]:
            p = p * x2 + coef
        q = TANH_Q[0] * x2 + TANH_Q[1]
        for coef in TANH_Q[2:]:
            q = q * x2 + coef
        return ((c * p) / q).astype(np.float32)


def tanh_fprime_mul(r, o) -> np.ndarray:
    """``r * f'(S)`` for tanh from its output ``o``: r - (r o) o in float32 (two roundings)."""
    r = np.asarray(r, dtype=np.float32)
    o = np.asarray(o, dtype=np.float32)
    return (r - (r * o) * o).astype(np.float32)


# --- stored weights -------------------------------------------------------------------------------

def add_quantize(w, g, scale: float, fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """A stored weight update: ``Q(w + scale * g)`` rounded once, by ``fmt``'s rounding and
    overflow, into its grid (``w`` float32 on that grid, ``g`` float32, ``scale`` taken as float32,
    as torch applies a learning rate to float32 tensors). The product of two float32 values is exact
    in float64 and the sum is rounded once there, so a fused multiply-add (as NVVM emits) gives the
    same bits. Element ``i`` (flat, C order) draws with counter ``counter + i``."""
    w, g = np.asarray(w, dtype=np.float32), np.asarray(g, dtype=np.float32)
    if w.shape != g.shape:
        raise ValueError(f"add_quantize: w has shape {w.shape} and g {g.shape}; they must match")
    s = w.astype(np.float64).ravel() + np.float64(np.float32(scale)) * g.astype(np.float64).ravel()
    return _f32(_core(s, fmt, seed, counter)).reshape(w.shape)


# --- bit-true learning channel: fixed-point accumulator products ---------------------------------
#
# A circuit forms J = R @ B with every product added into a fixed-point accumulator that saturates
# (or wraps) after every add, in a fixed order. The kernels below are that circuit, bit for bit:
#
# * Products. R and B hold float32 values (on fixed-point or log grids); R[b, s] * B[s, n] is
#   formed in float64, where the product of two float32 values is always exact.
# * Accumulator codes. A product p enters the accumulator A = FixedPoint(word, frac) as the integer
#   code k = rint(p * 2^frac) (round half to even). When R's and B's formats pass
#   ``check_accumulator_holds`` no product needs rounding; the rounding only defines what the
#   kernels do otherwise, so they never fail mid-run. A's own ``rounding`` field is not used.
#   With ``overflow="wrap"`` k is first reduced into A's range (mod 2^word, exactly: the same sum
#   modulo 2^word, and every add below stays exact in float64).
# * Adds. code <- overflow(code + k) after every add, senders in ascending order; the running code
#   starts at 0. Saturation makes the order observable (+max, +1, -1 ends at max - 1; saturating
#   only at the end would give max); wrap-around is arithmetic modulo 2^word, so with wrap the
#   result is the exact sum modulo 2^word whatever the order.
# * Output. float32(code * 2^-frac): exact for word <= 24; for word > 24 a code with more than
#   24 significant bits is rounded to float32's 24-bit significand (half to even). Zeros are +0.0.
#   NaN inputs give NaN; an infinite product saturates (or, wrapped, gives NaN).

#: ``b_fmt`` of ``check_accumulator_holds`` for the sparse product: a {0, 1} matrix, or a
#: {-1, 0, +1} one (index lists with signs); the products are then R's values (or their negatives).
BINARY = "binary"
TERNARY = "ternary"


def require_accumulator(acc, what: str):
    """A FixedPoint accumulator with 1 <= word <= 32 and 0 <= frac <= word (checked for duck-typed
    formats too, which the FixedPoint constructor would have refused); returns it."""
    require_fixed(acc, f"{what} accumulator")
    word, frac = acc.word, acc.frac
    if not 1 <= word <= 32:
        raise ValueError(f"{what}: accumulator word={word}; allowed: 1..32")
    if not 0 <= frac <= word:
        raise ValueError(f"{what}: accumulator frac={frac} with word={word}; allowed: 0 <= frac <= word")
    return acc


def _wrap_codes(k: np.ndarray, A) -> np.ndarray:
    """Integer codes k (float64) modulo 2^word, into [int_min, int_max]; exact for every k
    (``np.mod`` by a power of two is), even where k - int_min would round in float64."""
    span = 2.0 ** A.word
    with np.errstate(invalid="ignore"):
        m = np.mod(k, span)
    return np.where(m > A.int_max, m - span, m)


def _acc_codes(y: np.ndarray, A) -> np.ndarray:
    """Accumulator codes (float64) of exact scaled values ``y = value * 2^frac``: rounded half to
    even (``np.rint``); with wrap, reduced into A's range so that the next add is exact."""
    k = np.rint(y)
    return _wrap_codes(k, A) if A.overflow == "wrap" else k


def fixed_product(R, B, acc) -> np.ndarray:
    """``J[b, n] = sum_s R[b, s] * B[s, n]`` in the fixed-point accumulator ``acc``, saturating (or
    wrapping) after every add, s = 0..S-1 ascending; float32 (batch, N) out.

    R (batch, S) and B (S, N) are float32. Each product is exact in float64 and enters as its
    accumulator code (see the section comment: nearest-even, wrap reduced first). A term whose
    R[b, s] is zero (+-0) is skipped: a silent sender adds nothing (so 0 * inf is not NaN).
    """
    R = np.asarray(R, dtype=np.float32)
    B = np.asarray(B, dtype=np.float32)
    check_product_shapes(R.shape, B.shape, what="fixed_product")
    A = require_accumulator(acc, "fixed_product")
    Rs = R.astype(np.float64) * 2.0 ** A.frac        # exact: a power of two, no overflow
    Bd = B.astype(np.float64)
    code = np.zeros((R.shape[0], B.shape[1]), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        for s in range(R.shape[1]):
            k = _acc_codes(Rs[:, s, None] * Bd[None, s, :], A)
            k[R[:, s] == 0] = 0.0
            code = _overflow(code + k, A)
    return _f32(code * 2.0 ** -A.frac + 0.0)


def check_signs(signs, nnz: int, what: str):
    """None, or the per-entry signs of index lists as int8 (nnz,) with values -1 or +1."""
    if signs is None:
        return None
    s = np.asarray(signs)
    if s.ndim != 1 or s.size != nnz:
        raise ValueError(f"{what}: signs has shape {tuple(s.shape)}; the index lists have {nnz} entries, "
                         f"so signs needs shape ({nnz},)")
    if s.size and not np.all((s == 1) | (s == -1)):
        bad = s[(s != 1) & (s != -1)]
        raise ValueError(f"{what}: signs holds {bad[0].item()!r}; allowed: -1 or +1 per entry (the zeros of a "
                         f"ternary matrix are left out of the index lists)")
    return s.astype(np.int8)


def ternary_to_index_lists(M):
    """A dense {-c, 0, +c} matrix (sender, receiver) as ``(IndexLists, signs)``: the lists of its
    non-zeros (scale c > 0) and their signs (int8, +-1), in list order."""
    M = np.asarray(M)
    _check_2d(M, "ternary feedback matrix")
    lists = binary_to_index_lists(np.abs(M))
    signs = np.sign(M.T[np.nonzero(M.T)]).astype(np.int8)   # the order of binary_to_index_lists
    return lists, signs


def fixed_sparse_product(R, lists: IndexLists, acc, signs=None, *, scale: float | None = None) -> np.ndarray:
    """``J[b, r] = scale * sum_{p in list(r)} sign_p * R[b, indices[p]]`` in the fixed-point
    accumulator ``acc``: additions (and subtractions) only, saturating (wrapping) after every add.

    The {0, 1} matrix (or {-1, 0, +1} with per-entry ``signs``, int8 +-1) is given as index lists,
    summed in list order (ascending sender for lists from ``binary_to_index_lists`` /
    ``ternary_to_index_lists``); a receiver with no senders gets 0. Each R value enters as its
    accumulator code (nearest-even, wrap reduced first; negated for sign -1). ``scale`` (default:
    the lists' scale) multiplies the final value in float64: ``float32(code * (2^-frac * scale))``,
    exact when scale is a power of two and word <= 24. The accumulator holds the unscaled sum of
    R's values, so saturation acts on that sum; the scale is a constant applied to its output (a
    shift of the binary point for a power of two).
    """
    R = np.asarray(R, dtype=np.float32)
    indptr, indices = np.asarray(lists.indptr, np.int64), np.asarray(lists.indices, np.int64)
    check_sparse(R.shape, indptr, indices, getattr(lists, "n_senders", None), what="fixed_sparse_product")
    A = require_accumulator(acc, "fixed_sparse_product")
    signs = check_signs(signs, indices.size, "fixed_sparse_product")
    scale = float(lists.scale if scale is None else scale)
    nr = indptr.size - 1
    with np.errstate(invalid="ignore"):
        codes = _acc_codes(R.astype(np.float64) * 2.0 ** A.frac, A)
        code = np.zeros((R.shape[0], nr), dtype=np.float64)
        lengths = np.diff(indptr)
        for p in range(int(lengths.max()) if nr else 0):   # position p of every list, in order
            rs = np.nonzero(lengths > p)[0]
            pos = indptr[rs] + p
            k = codes[:, indices[pos]]
            if signs is not None:
                k = k * signs[pos]
            code[:, rs] = _overflow(code[:, rs] + k, A)
    return _f32(code * (2.0 ** -A.frac * scale) + 0.0)


# --- bit-true learning channel: accumulator width check -----------------------------------------

def _frac_bits(v: float) -> int:
    """The smallest f with v a multiple of 2^-f (negative for multiples of 2, 4, ...); v != 0."""
    num, den = float(v).as_integer_ratio()
    if den > 1:
        return den.bit_length() - 1
    return -((abs(num) & -abs(num)).bit_length() - 1)


def _log_levels(fmt) -> np.ndarray:
    """The non-zero float32 magnitudes a log format produces (levels below float32's range are 0
    and left out), as float64."""
    e_min = int(fmt.min_exponent)
    e_low = max(e_min, -152 - math.frexp(float(fmt.alpha))[1])   # alpha * 2^e < 2^-150 below: 0
    with np.errstate(over="ignore"):
        levels = np.ldexp(float(fmt.alpha), np.arange(e_low, 1)).astype(np.float32).astype(np.float64)
    return levels[levels > 0]


def _value_grid(fmt, role: str):
    """``(frac_bits, vmin, vmax)`` of the values a format produces: every one is a multiple of
    2^-frac_bits and lies in [vmin, vmax] (both ends attained)."""
    if role == "B" and fmt == BINARY:
        return 0, 0.0, 1.0
    if role == "B" and fmt == TERNARY:
        return 0, -1.0, 1.0
    kind = getattr(fmt, "kind", None)
    if kind == "fixed":
        lsb = 2.0 ** -fmt.frac
        return int(fmt.frac), fmt.int_min * lsb, fmt.int_max * lsb
    if kind == "log":
        levels = _log_levels(fmt)
        if not np.all(np.isfinite(levels)):
            raise ValueError(f"check_accumulator_holds: {role} format {fmt.spec} has levels beyond float32's range; "
                             f"allowed: alpha <= 3.4e38")
        return max(_frac_bits(v) for v in levels), -float(levels.max()), float(levels.max())
    allowed = "FixedPoint or LogQuant (values on a binary grid)"
    if role == "B":
        allowed += f", or {BINARY!r} / {TERNARY!r} for index lists"
    raise ValueError(f"check_accumulator_holds: {role} format {getattr(fmt, 'spec', fmt)!r} has no fixed grid; "
                     f"allowed: {allowed}")


def _smallest_word(lo: float, hi: float, frac: int, signed: bool) -> int:
    """The narrowest word holding [lo, hi] at ``frac`` fraction bits (signed or not)."""
    for word in range(1, 200):
        span = 2.0 ** (word - 1) if signed else 2.0 ** word
        kmin, kmax = (-span, span - 1) if signed else (0.0, span - 1)
        if kmin * 2.0 ** -frac <= lo and hi <= kmax * 2.0 ** -frac:
            return word
    return 200


def check_accumulator_holds(r_fmt, b_fmt, acc) -> None:
    """Raise ValueError unless the accumulator ``acc`` holds every single product of an R value in
    ``r_fmt`` and a B value in ``b_fmt`` exactly: as a multiple of its LSB 2^-frac, inside its range.

    Call it once when the channel is configured: with it passed, ``fixed_product`` /
    ``fixed_sparse_product`` never round a product (their nearest-even rounding stays unused), and
    only sums can saturate or wrap. Formats: FixedPoint or LogQuant for R; for B also ``BINARY`` /
    ``TERNARY`` (the sparse product's index lists, unsigned / signed). The test is exact: the
    finest values of both grids (fixed: code 1; log: the smallest level, an odd multiple of its
    LSB) multiply to an odd multiple of 2^-(f_R + f_B), and the range ends of the products are
    attained.
    """
    A = require_accumulator(acc, "check_accumulator_holds")
    fr, rmin, rmax = _value_grid(r_fmt, "R")
    fb, bmin, bmax = _value_grid(b_fmt, "B")
    corners = (rmin * bmin, rmin * bmax, rmax * bmin, rmax * bmax)
    pmin, pmax = min(corners), max(corners)
    need_frac = max(fr + fb, 0)
    signed = A.int_min < 0
    lsb = 2.0 ** -A.frac
    fits = A.int_min * lsb <= pmin and pmax <= A.int_max * lsb
    if fr + fb <= A.frac and fits:
        return
    frac = max(need_frac, A.frac)
    word = max(_smallest_word(pmin, pmax, frac, signed or pmin < 0), frac)
    fix = (f"e.g. fixed:w={word},f={frac}" + ("" if signed or pmin < 0 else ",signed=0") if word <= 32 else
           f"but that needs word={word} and FixedPoint allows 1..32: put R or B on a coarser grid")
    b_name = b_fmt if isinstance(b_fmt, str) else getattr(b_fmt, "spec", b_fmt)
    problem = (f"products are multiples of 2^-{need_frac} but its LSB is 2^-{A.frac}" if fr + fb > A.frac else
               f"products span [{pmin:g}, {pmax:g}] but it holds [{A.int_min * lsb:g}, {A.int_max * lsb:g}]")
    raise ValueError(f"check_accumulator_holds: accumulator {A.spec} is narrower than the product it must hold "
                     f"(R {getattr(r_fmt, 'spec', r_fmt)} x B {b_name}): {problem}; allowed: frac >= {need_frac} "
                     f"and a range covering the products, {fix}")


# --- bit-true learning channel: f' as a lookup table, fused scale and round ----------------------

#: The forward-output interval a table covers, per activation (bounded outputs only).
FPRIME_DOMAINS = {"tanh": (-1.0, 1.0), "logistic": (0.0, 1.0)}
FPRIME_MAX_ENTRIES = 1 << 16


class FprimeTable(NamedTuple):
    """f' as a lookup table over the forward output o in [lo, hi]: ``entries`` uniform bins.

    Bin i covers [lo + i*w, lo + (i+1)*w) with w = (hi - lo) / entries (the last bin includes hi);
    its entry is f' at the bin's centre, quantized to ``fmt``. o below lo (above hi) takes the
    first (last) bin; NaN gives NaN. lo and hi are integers with hi - lo a power of two (tanh:
    [-1, 1], logistic: [0, 1]), so that every float32 o finds its bin exactly (``fprime_index``).
    """

    values: np.ndarray   # float32, (entries,)
    lo: float
    hi: float
    activation: str
    fmt_spec: str

    def index_params(self) -> tuple:
        """``(lo * entries, 1 / (hi - lo), entries)`` as floats: the kernels' indexing constants."""
        k = float(np.size(self.values))
        return float(self.lo) * k, 1.0 / (float(self.hi) - float(self.lo)), k


def _fprime_of_output(activation: str, o: np.ndarray) -> np.ndarray:
    if activation == "tanh":
        return 1.0 - o * o
    return o * (1.0 - o)                            # logistic


def fprime_table(activation: str, entries: int, fmt=None) -> FprimeTable:
    """The lookup table of f' for ``activation`` (tanh: o in [-1, 1], f' = 1 - o^2; logistic:
    o in [0, 1], f' = o (1 - o)) with ``entries`` bins, each entry f'(bin centre) computed in
    float64 and quantized to ``fmt`` (None: float32; a stochastic format draws entry i with
    seed 0, counter i, so a table is a fixed function of its arguments)."""
    if activation not in FPRIME_DOMAINS:
        raise ValueError(f"fprime_table: activation {activation!r}; allowed: {', '.join(FPRIME_DOMAINS)} "
                         f"(a table needs a bounded output)")
    if not isinstance(entries, (int, np.integer)) or isinstance(entries, bool) \
            or not 2 <= entries <= FPRIME_MAX_ENTRIES:
        raise ValueError(f"fprime_table: entries={entries!r}; allowed: an integer in 2..{FPRIME_MAX_ENTRIES}")
    lo, hi = FPRIME_DOMAINS[activation]
    centres = lo + (np.arange(entries, dtype=np.float64) + 0.5) * ((hi - lo) / entries)
    exact = _fprime_of_output(activation, centres)
    values = _f32(exact) if fmt is None else quantize_f64(exact, fmt)
    return FprimeTable(values, lo, hi, activation, getattr(fmt, "spec", "float32"))


def check_fprime_table(table, what: str = "fprime_lut") -> None:
    values = getattr(table, "values", None)
    if values is None or np.ndim(values) != 1 or not 2 <= np.size(values) <= FPRIME_MAX_ENTRIES:
        size = None if values is None else np.shape(values)
        raise ValueError(f"{what}: f' table has values of shape {size}; allowed: a table from fprime_table "
                         f"with 2..{FPRIME_MAX_ENTRIES} entries")
    lo, hi = table.lo, table.hi
    span = hi - lo if np.isfinite(lo) and np.isfinite(hi) else 0
    if not (float(lo).is_integer() and float(hi).is_integer() and span >= 1 and math.frexp(span)[0] == 0.5):
        raise ValueError(f"{what}: f' table interval [{lo}, {hi}]; allowed: integers lo < hi with hi - lo a power "
                         f"of two (as fprime_table builds)")


def fprime_index(o, table: FprimeTable) -> np.ndarray:
    """int64 bin of each forward output: floor((o - lo) * k / (hi - lo)) in exact arithmetic
    (k entries), clamped to 0..k-1; -1 where o is NaN.

    Computed exactly as floor((floor(o * k) - lo * k) / (hi - lo)): o * k is exact in float64
    (24 + 17 bits), and floor((floor(x) + c) / s) = floor((x + c) / s) for integers c and s > 0.
    (The direct (o - lo) * k / (hi - lo) in float64 would round a tiny negative o up across the
    middle edge of a tanh table.)
    """
    lo_k, inv_span, k = table.index_params()
    od = np.asarray(o, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        t = np.clip(np.floor((np.floor(od * k) - lo_k) * inv_span), 0, k - 1)
    t[np.isnan(od)] = -1
    return t.astype(np.int64)


def fprime_lut(o, table: FprimeTable) -> np.ndarray:
    """f' of float32 forward outputs ``o`` by table lookup (``fprime_index``); float32, NaN for NaN."""
    check_fprime_table(table)
    idx = fprime_index(o, table)
    out = np.asarray(table.values, np.float32)[np.maximum(idx, 0)]
    out[idx < 0] = np.nan
    return out


def fixed_scale_round(J, fp, out_fmt, *, seed: int = 0, counter: int = 0) -> np.ndarray:
    """``Q_out(J * fp)``: the received signal times f', rounded once to the signal format.

    J and fp are float32 of one shape; their product is exact in float64 and quantized directly
    (no float32 step) with ``out_fmt``'s rounding; element i (flat, C order) uses counter
    ``counter + i``. With Float32 (or None) the result is the float32 product.
    """
    J = np.asarray(J, dtype=np.float32)
    fp = np.asarray(fp, dtype=np.float32)
    if J.shape != fp.shape:
        raise ValueError(f"fixed_scale_round: J has shape {J.shape} and fp {fp.shape}; they must match")
    prod = J.astype(np.float64) * fp.astype(np.float64)
    if out_fmt is None:
        return _f32(prod)
    return quantize_f64(prod, out_fmt, seed=seed, counter=counter)


# --- quantizer statistics (learning diagnostics) -------------------------------------------------

#: What ``quantization_counts`` counts, in its order.
QUANT_COUNTS = ("zero", "smallest", "clipped", "underflow")


def quantization_counts(before, after, level: float, lo: float, hi: float, threshold: float) -> np.ndarray:
    """Counts over the values ``before`` a quantizer and the same values ``after`` it (same size,
    float32), in ``QUANT_COUNTS`` order: ``after`` at 0; ``after`` at +-``level`` (the smallest
    level); ``before`` above ``hi`` or below ``lo`` (clipped or saturated); ``before`` non-zero with
    magnitude below ``threshold`` (under the smallest level). The bounds compare as float32 (as a
    float32 array with a Python float does in NumPy 2); NaN counts nowhere but in nothing-at-zero."""
    b = np.asarray(before, np.float32).ravel()
    a = np.asarray(after, np.float32).ravel()
    if a.size != b.size:
        raise ValueError(f"quantization_counts: before has {b.size} values, after {a.size}; need the same")
    level, lo, hi, threshold = (np.float32(v) for v in (level, lo, hi, threshold))
    mag = np.abs(b)
    return np.array([np.count_nonzero(a == 0), np.count_nonzero(np.abs(a) == level),
                     np.count_nonzero(b > hi) + np.count_nonzero(b < lo),
                     np.count_nonzero((mag < threshold) & (b != 0))], np.int64)
