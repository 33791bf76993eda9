"""Bit-true learning-channel kernels vs torch.mm on the paper's MNIST channel shapes.

The received signal J = R_sender @ B of each hidden layer, batch 100:

* SRBP: R (100 x 10, the output error) @ B (10 x 100), once per hidden layer (4 per minibatch);
* RBP: R (100 x 100) @ B (100 x 100), layer to layer.

Tables (median of ``--repeats`` interleaved rounds, each timing ``--inner`` calls; torch and Numba
at the same thread count, 1 by default):

(a) sparse-1 binary feedback (``sparse:n=1``: one expected sender per receiver, drawn by
    ``lowbit_rbp.core.feedback.build_feedback``) as index lists: ``sparse_feedback_product``
    (float64 sums) and ``fixed_sparse_product`` (12-bit saturating accumulator) vs ``torch.mm``
    with the dense float matrix;
(b) dense quantized feedback: ``fixed_product`` with a 12-bit saturating accumulator
    (fixed:w=12,f=5, which holds every product of the 3-bit log error and the fixed:w=6,f=4
    feedback, ``check_accumulator_holds``) vs ``torch.mm``;
(c) dispatch overhead: the dispatch call (torch tensors in, ``out=`` given) minus the direct
    Numba kernel call on the same arrays; the fixed cost of a call: the Numba call itself on empty
    arrays, the sparse kernel and torch.mm on an empty batch.

Every Numba result is checked bit for bit against the NumPy reference before it is timed.

    python benchmarks/bench_channel_kernels.py [--threads 1] [--repeats 31] [--inner 50]
        [--markdown FILE] [--json FILE]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from common import Tables, command_line, time_interleaved  # noqa: E402
from kernels import dispatch, reference  # noqa: E402
from lowbit_rbp.core.feedback import build_feedback  # noqa: E402
from lowbit_rbp.core.formats import FixedPoint, LogQuant  # noqa: E402
from lowbit_rbp.core.runtime import match_numba_threads  # noqa: E402

BATCH = 100
SHAPES = {"SRBP 100x10 @ 10x100": (10, 100, True), "RBP 100x100 @ 100x100": (100, 100, False)}
ERROR_FMT = LogQuant(2, 3, "clip")               # the 3-bit log error of the quantized runs (alpha 2)
FEEDBACK_FMT = FixedPoint(6, 4)
ACC = FixedPoint(12, 5)                          # 12-bit saturating accumulator
#: Float SRBP epoch, 1 thread: 1.394 s (reports/bench_epoch.md, "ours SRBP"); 600 minibatches of
#: 4 hidden-layer products each.
FLOAT_SRBP_EPOCH_S = 1.394
PRODUCTS_PER_EPOCH = 600 * 4


def _timed(fn, inner: int):
    def run():
        for _ in range(inner):
            fn()
    return run


def _medians_us(contenders: dict, repeats: int, inner: int) -> dict:
    times = time_interleaved({k: _timed(f, inner) for k, f in contenders.items()}, repeats)
    return {k: statistics.median(v) / inner * 1e6 for k, v in times.items()}


def _same(got, want, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    if not (got.shape == want.shape and np.array_equal(got.view(np.uint32), want.view(np.uint32))):
        raise AssertionError(f"{what}: Numba differs from the reference")


def operands(senders: int, receivers: int, skipped: bool, rng):
    R = reference.quantize(rng.normal(0, 0.6, (BATCH, senders)).astype(np.float32), ERROR_FMT)
    dense = reference.quantize(build_feedback("glorot_normal", (senders, receivers), rng) * 4, FEEDBACK_FMT)
    sparse = build_feedback("sparse:n=1", (senders, receivers), rng, skipped=skipped)
    return R, dense, sparse


def bench_shape(name: str, shape, repeats: int, inner: int, out: Tables, rows: list) -> None:
    senders, receivers, skipped = shape
    rng = np.random.default_rng(0)
    R, dense, sparse = operands(senders, receivers, skipped, rng)
    lists = dispatch.binary_to_index_lists(sparse)
    Rt, Dt, St = torch.from_numpy(R), torch.from_numpy(dense), torch.from_numpy(sparse)
    # One out tensor per contender, as each layer of the channel has its own (the sparse products
    # keep their last call per out tensor and repeat it).
    J, Jf, Jx, Jd = (torch.empty(BATCH, receivers) for _ in range(4))
    calls = {
        "float lists": lambda: dispatch.sparse_feedback_product(Rt, lists, out=Jf, backend="numba"),
        "fixed lists": lambda: dispatch.fixed_sparse_product(Rt, lists, ACC, out=Jx, backend="numba"),
        "fixed dense": lambda: dispatch.fixed_product(Rt, Dt, ACC, out=Jd, backend="numba"),
    }
    wants = {"float lists": reference.sparse_feedback_product(R, lists),
             "fixed lists": reference.fixed_sparse_product(R, lists, ACC),
             "fixed dense": reference.fixed_product(R, dense, ACC)}
    for what, call in calls.items():              # twice: the first call keeps, the second repeats
        for _ in range(2):
            _same(call().numpy(), wants[what], what)
    t = _medians_us({
        "mm sparse": lambda: torch.mm(Rt, St, out=J),
        **{k: calls[k] for k in ("float lists", "fixed lists")},
        "mm dense": lambda: torch.mm(Rt, Dt, out=J),
        "fixed dense": calls["fixed dense"],
    }, repeats, inner)
    row = {"shape": name, "nnz": int(lists.indices.size), **{k: round(v, 3) for k, v in t.items()}}
    rows.append(row)
    out.emit(f"| {name} | {lists.indices.size} | {t['mm sparse']:.2f} | {t['float lists']:.2f} "
             f"({t['float lists'] / t['mm sparse']:.2f}x) | {t['fixed lists']:.2f} "
             f"({t['fixed lists'] / t['mm sparse']:.2f}x) | {t['mm dense']:.2f} | {t['fixed dense']:.2f} "
             f"({t['fixed dense'] / t['mm dense']:.2f}x) |")


def bench_overhead(repeats: int, inner: int, out: Tables) -> dict:
    """Dispatch minus direct kernel call, on the SRBP shape (the smallest, where it matters most),
    and the fixed cost of a call: each kernel and torch.mm on an empty batch."""
    cpu = dispatch._cpu()
    rng = np.random.default_rng(1)
    R, dense, sparse = operands(10, 100, True, rng)
    lists = dispatch.binary_to_index_lists(sparse)
    Rt, Dt, St = torch.from_numpy(R), torch.from_numpy(dense), torch.from_numpy(sparse)
    J, Jx = torch.empty(BATCH, 100), torch.empty(BATCH, 100)
    Jn = J.numpy()
    PA = dispatch._params(ACC)
    plan = cpu.sparse_plan(lists.indptr, lists.indices, 10)
    params = cpu.sparse_params(PA, PA[8] * lists.scale)
    R0, D0, J0 = np.zeros((0, 10), np.float32), np.zeros((10, 0), np.float32), np.zeros((0, 0), np.float32)
    R0t, J0t = torch.zeros(0, 10), torch.zeros(0, 100)
    J0n = J0t.numpy()
    t = _medians_us({
        "fixed dense, dispatch": lambda: dispatch.fixed_product(Rt, Dt, ACC, out=J, backend="numba"),
        "fixed dense, kernel": lambda: cpu.fixed_product_serial(R, dense, PA, Jn),
        "fixed dense, empty kernel": lambda: cpu.fixed_product_serial(R0, D0, PA, J0),
        "fixed lists, dispatch": lambda: dispatch.fixed_sparse_product(Rt, lists, ACC, out=Jx, backend="numba"),
        "fixed lists, kernel": lambda: cpu.sparse_product_serial(R, plan, params, Jn),
        "fixed lists, empty batch": lambda: cpu.sparse_product_serial(R0, plan, params, J0n),
        "torch.mm, empty batch": lambda: torch.mm(R0t, St, out=J0t),
    }, repeats, inner)
    out.emit("| call | dispatch (us) | direct kernel (us) | dispatch overhead (us) |")
    out.emit("|---|---|---|---|")
    for name in ("fixed dense", "fixed lists"):
        d, k = t[f"{name}, dispatch"], t[f"{name}, kernel"]
        out.emit(f"| {name} (SRBP shape) | {d:.2f} | {k:.2f} | {d - k:.2f} |")
    out.emit(f"| Numba call alone (empty arrays) | - | {t['fixed dense, empty kernel']:.2f} | - |")
    out.emit(f"| sparse kernel, empty batch (SRBP lists) | - | {t['fixed lists, empty batch']:.2f} | - |")
    out.emit(f"| torch.mm, empty batch (SRBP matrix) | {t['torch.mm, empty batch']:.2f} | - | - |")
    return {k: round(v, 3) for k, v in t.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("--inner", type=int, default=50, help="calls per timing")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    match_numba_threads()
    dispatch.check_accumulator_holds(ERROR_FMT, FEEDBACK_FMT, ACC)
    dispatch.check_accumulator_holds(ERROR_FMT, dispatch.BINARY, ACC)
    out, rows = Tables(), []
    out.emit(f"\nLoad average before: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs); other work on the "
             f"machine slows single rounds, which the medians of interleaved rounds absorb only in part.")
    out.emit(f"\n{args.threads} thread(s); batch {BATCH}; accumulator {ACC.spec} (saturating); R in {ERROR_FMT.spec}, "
             f"dense B in {FEEDBACK_FMT.spec}; median of {args.repeats} interleaved rounds of {args.inner} calls, "
             f"us per call; (ratio to torch.mm)")
    out.emit("")
    out.emit("| shape | nnz | (a) torch.mm, dense sparse-1 | float index lists | fixed index lists | "
             "(b) torch.mm, dense | fixed_product |")
    out.emit("|---|---|---|---|---|---|---|")
    for name, shape in SHAPES.items():
        bench_shape(name, shape, args.repeats, args.inner, out, rows)
    srbp = rows[0]
    extra = PRODUCTS_PER_EPOCH * (srbp["fixed dense"] - srbp["mm dense"]) * 1e-6
    out.emit("")
    out.emit(f"SRBP epoch estimate: {PRODUCTS_PER_EPOCH} products per epoch (600 minibatches x 4 hidden layers) "
             f"make fixed_product cost {extra:+.3f} s per epoch against torch.mm, "
             f"{100 * extra / FLOAT_SRBP_EPOCH_S:+.1f}% of the float SRBP epoch ({FLOAT_SRBP_EPOCH_S} s at 1 thread, "
             f"reports/bench_epoch.md).")
    out.emit("")
    overhead = bench_overhead(args.repeats, args.inner, out)
    out.emit(f"\nLoad average after: {os.getloadavg()[0]:.2f}")
    out.finish(args, {"rows": rows, "overhead": overhead}, "Bit-true channel kernels vs torch.mm (MNIST channel shapes)",
               command_line("bench_channel_kernels.py", argv),
               "J = R @ B per hidden layer, batch 100. Fixed kernels saturate the accumulator "
               "after every add in ascending sender order and are bit-exact with the NumPy "
               "reference (checked before timing); torch.mm is float32 (oneDNN/MKL sgemm).")


if __name__ == "__main__":
    main()
