"""Per-example quantized weight update on the MNIST shapes: fused Numba kernels vs plain torch.

``G = sum_b Q(R[b, :, None] * O[b, None, :])`` for batch 100 and the layers 100x784, 100x100 and
10x100 (out x in), O = tanh of normal draws, and 100x784 with O like MNIST pixels (81 % zeros, the
first layer's input). Contenders, at the same thread count (torch.set_num_threads and
numba.set_num_threads), each timing the median of several repeats, interleaved:

* ``numba``: ``kernels.dispatch.per_example_update(..., backend="numba")``, what training runs:
  the exact integer code sums (``kernels.cpu.update_codes``) for the formats ``code_plan`` takes
  (every format here), never building the batch x out x in tensor; bit-exact with the reference;
* ``general``: ``kernels.cpu.per_example_update``, the per-element loops (one float64 add per
  product; every format, and the code kernel's fallback): the kernel training ran before the code
  kernel, so ``general / numba`` is the code kernel's speed-up;
* ``torch``: the straightforward way: materialize the (batch, out, in) float32 tensor, quantize it
  with torch ops (log: abs/log2/round/clamp/exp2/sign; fixed: mul/round/clamp/mul), sum over the
  batch. Deterministic formats only (torch has no counter-based RNG matching ours).

Prints a Markdown table: ms per update and the ratios (> 1: the fused code kernel is faster).

    python benchmarks/bench_update.py [--threads 1,2] [--repeats 7] [--json out.json] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from common import Tables, command_line, time_interleaved  # noqa: E402
from kernels import cpu, dispatch  # noqa: E402
from kernels.dispatch.update import _serial_update  # noqa: E402
from lowbit_rbp.core.runtime import match_numba_threads  # noqa: E402
from lowbit_rbp.core.formats import FixedPoint, LogQuant  # noqa: E402

BATCH = 100
#: (out, in, fraction of O that is zero): the MNIST net's layers; the first with pixel-like zeros too.
LAYERS = [(100, 784, 0.0), (100, 784, 0.81), (100, 100, 0.0), (10, 100, 0.0)]
FORMATS = {
    "log:alpha=2^-6,bits=5 clip": LogQuant(2.0 ** -6, 5, "clip"),
    "log:alpha=2^-6,bits=5 stochastic": LogQuant(2.0 ** -6, 5, "stochastic"),
    "log:alpha=0.5,bits=5 stochastic (Table 1)": LogQuant(0.5, 5, "stochastic"),
    "log:alpha=0.5,bits=3 stochastic (Table 1)": LogQuant(0.5, 3, "stochastic"),
    "log:alpha=0.5,bits=1 (Table 1)": LogQuant(0.5, 1),
    "fixed:w=8,f=8": FixedPoint(8, 8),
}


def torch_update(R: torch.Tensor, O: torch.Tensor, fmt) -> torch.Tensor:
    """The straightforward per-example quantized update with torch ops."""
    P = R[:, :, None] * O[:, None, :]
    if isinstance(fmt, LogQuant):
        mag = P.abs()
        e = torch.round(torch.log2(mag / fmt.alpha)).clamp_(fmt.min_exponent, 0)
        Q = torch.sign(P) * (fmt.alpha * torch.exp2(e))
    else:
        s = 2.0 ** fmt.frac
        Q = torch.round(P * s).clamp_(fmt.int_min, fmt.int_max) / s
    return Q.sum(0)


def general_kernel(fmt, R: np.ndarray, O: np.ndarray, out: np.ndarray):
    """A call of ``kernels.cpu.per_example_update`` (the per-element loops; serial below dispatch's
    switch) with the format prepared once, as dispatch does."""
    P = cpu.format_params(fmt)
    mode, table = cpu.kernel_mode(fmt, P)
    PA, key, c = cpu.format_params(None), cpu.seed_key(0), cpu.u64(0)
    serial = _serial_update(R.shape[0], R.shape[1], O.shape[1])
    kern = cpu.per_example_update_serial if serial else cpu.per_example_update
    return lambda: kern(R, O, P, PA, table, mode, key, c, c, out)


def layer_name(n_out: int, n_in: int, zero_frac: float) -> str:
    return f"{n_out}x{n_in}" + (f" ({zero_frac:.0%} zeros)" if zero_frac else "")


def bench(threads: int, repeats: int, out: Tables) -> list[dict]:
    torch.set_num_threads(threads)
    match_numba_threads()        # Numba gets torch's count (and starting its pool keeps torch's)
    rng = np.random.default_rng(0)
    rows = []
    out.emit(f"\n{threads} thread(s); batch {BATCH}; median of {repeats} interleaved repeats, ms per update")
    out.emit("| format | layer (out x in) | fused Numba | general kernel | general / Numba | torch | torch / Numba "
             "| torch equal to reference |")
    out.emit("|---|---|---|---|---|---|---|---|")
    for fname, fmt in FORMATS.items():
        for n_out, n_in, zero_frac in LAYERS:
            R = torch.from_numpy(rng.normal(0, 0.05, (BATCH, n_out)).astype(np.float32))
            O = np.tanh(rng.normal(0, 1, (BATCH, n_in))).astype(np.float32)
            O[rng.random(O.shape) < zero_frac] = 0.0
            O = torch.from_numpy(O)
            G, G_general = torch.empty(n_out, n_in), np.empty((n_out, n_in), np.float32)
            contenders = {"numba": lambda: dispatch.per_example_update(R, O, fmt, out=G, backend="numba"),
                          "general": general_kernel(fmt, R.numpy(), O.numpy(), G_general)}
            with_torch = not (isinstance(fmt, LogQuant) and fmt.underflow == "stochastic" and fmt.bits > 1)
            if with_torch:
                contenders["torch"] = lambda: torch_update(R, O, fmt)
            times = time_interleaved(contenders, repeats)
            ref = dispatch.per_example_update(R.numpy(), O.numpy(), fmt)
            assert np.array_equal(G.numpy(), ref), "numba kernel differs from the reference"
            assert np.array_equal(G_general, ref), "general kernel differs from the reference"
            mo, mg = statistics.median(times["numba"]), statistics.median(times["general"])
            name = layer_name(n_out, n_in, zero_frac)
            row = {"threads": threads, "format": fname, "layer": name, "numba_ms": mo * 1e3,
                   "general_ms": mg * 1e3, "general_ratio": mg / mo}
            cells = [fname, name, f"{mo * 1e3:.2f}", f"{mg * 1e3:.2f}", f"{mg / mo:.2f}x", "-", "-", "-"]
            if with_torch:
                mt = statistics.median(times["torch"])
                agree = float(np.mean(np.isclose(torch_update(R, O, fmt).numpy(), ref, rtol=1e-5, atol=1e-7)))
                row.update(torch_ms=mt * 1e3, ratio=mt / mo, torch_agrees=agree)
                cells[5:] = [f"{mt * 1e3:.2f}", f"{mt / mo:.2f}x", f"{100 * agree:.2f}%"]
            rows.append(row)
            out.emit("| " + " | ".join(cells) + " |")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None, help="write the rows to this file")
    ap.add_argument("--markdown", default=None, help="also write the tables to this Markdown file")
    args = ap.parse_args(argv)
    out, rows = Tables(), []
    for th in (int(t) for t in args.threads.split(",")):
        rows += bench(th, args.repeats, out)
    if args.markdown:
        out.write_markdown(args.markdown, "Per-example quantized weight update: fused Numba kernels vs plain torch",
                           command_line("bench_update.py", argv),
                           "G = sum_b Q(R[b, :, None] * O[b, None, :]) on the MNIST shapes, batch 100. 'Fused "
                           "Numba' is what training runs (exact integer code sums for these formats), 'general "
                           "kernel' the per-element loops it ran before (one float64 add per product); both never "
                           "build the (batch, out, in) tensor and are bit-exact with the NumPy reference. torch "
                           "materializes that tensor, quantizes it with torch ops and sums. Torch has no "
                           "counter-based RNG matching ours, so the stochastic formats are timed for Numba alone.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
