"""One MNIST epoch of SRBP: float learning channel vs quantized error/signal vs quantized update.

Same net as ``bench_epoch.py`` (784-100-100-100-100-10 tanh, softmax, minibatch 100, 600 steps),
same thread count for torch and Numba, same seed and data order. Contenders (default number-format
semantics, so log formats underflow stochastically):

* ``float``: SRBP with every format float32;
* ``q-error``: 3-bit log error and signals (``formats.error = formats.signal = log:alpha=2,bits=3``),
  quantized in place by ``kernels.dispatch.quantize_`` (Numba);
* ``q-update``: 5-bit log per-example weight update (``formats.update = log:alpha=0.5,bits=5``, the
  Table 1 sweep's format, lowbit_rbp/sweeps/mnist_qupdate.toml), the fused
  ``kernels.dispatch.per_example_update`` (Numba: exact integer code sums, ``kernels.cpu.update_codes``);
* ``q-update-3``, ``q-update-1``: the sweep's 3-bit and 1-bit log updates; ``q-update-fixed``: an
  8-bit fixed-point update (``fixed:w=8,f=8``, nearest-even, saturating), same kernel;
* ``q-update-general``: the 5-bit update on the general per-element kernel
  (``kernels.cpu.per_example_update``, what ran before ``update_codes``; same bits), by hiding the
  format's code plan from the dispatch during its epochs: the code kernel's speed-up, side by side.

Each timing is the median of ``--repeats`` epochs, interleaved so that machine noise hits every
contender alike, after one warm-up epoch each (Numba compiles or loads its cache there). Prints
seconds per epoch and the ratio to float.

    LOWBIT_RBP_DATA=../shared/data python benchmarks/bench_quantized_epoch.py [--threads 1,2]
        [--repeats 3] [--markdown FILE] [--json FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_epoch import SIZES  # noqa: E402
from common import Tables, command_line, time_interleaved  # noqa: E402
from kernels.dispatch import update as dispatch_update  # noqa: E402
from lowbit_rbp.core.config import RunConfig, apply_overrides  # noqa: E402
from lowbit_rbp.data import load_dataset  # noqa: E402
from lowbit_rbp.core.formats import parse_format  # noqa: E402
from lowbit_rbp.core.runtime import Runtime  # noqa: E402
from lowbit_rbp.learning.trainer import Trainer  # noqa: E402

ERROR_FORMAT = "log:alpha=2,bits=3"
UPDATE_FORMATS = {"q-update": "log:alpha=0.5,bits=5", "q-update-3": "log:alpha=0.5,bits=3",
                  "q-update-1": "log:alpha=0.5,bits=1", "q-update-fixed": "fixed:w=8,f=8"}
CONTENDERS = {
    "float": [],
    "q-error": [f"formats.error='{ERROR_FORMAT}'", f"formats.signal='{ERROR_FORMAT}'"],
    **{name: [f"formats.update='{spec}'"] for name, spec in UPDATE_FORMATS.items()},
    "q-update-general": [f"formats.update='{UPDATE_FORMATS['q-update']}'"],
}
DESCRIPTION = {
    "float": "float32 everywhere",
    "q-error": f"error + signals `{parse_format(ERROR_FORMAT).spec}`",
    **{name: f"per-example update `{parse_format(spec).spec}`" for name, spec in UPDATE_FORMATS.items()},
    "q-update-general": "as q-update, on the general kernel (before the code kernel)",
}


@contextlib.contextmanager
def general_update_kernel():
    """Within: the dispatch finds no code plan for any format, so the per-example update runs the
    general kernel ``kernels.cpu.per_example_update`` (the same bits)."""
    saved = dispatch_update._code_plan
    dispatch_update._code_plan = lambda fmt: None
    try:
        yield
    finally:
        dispatch_update._code_plan = saved


def epoch(trainer: Trainer, general: bool) -> None:
    with general_update_kernel() if general else contextlib.nullcontext():
        trainer.train_epoch()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1", help="comma-separated thread counts (torch and Numba)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown", default=None, help="also write the tables to this Markdown file")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    out, results = Tables(), []
    data = load_dataset("mnist")
    for threads in [int(t) for t in args.threads.split(",")]:
        runtime = Runtime(threads=threads).apply()
        contenders = {}
        for name, sets in CONTENDERS.items():
            cfg = apply_overrides(RunConfig(), ["channel.algorithm=srbp", *sets])
            tr = Trainer(cfg, data, runtime)
            contenders[name] = lambda tr=tr, general=name.endswith("-general"): epoch(tr, general)
        times = time_interleaved(contenders, args.repeats)
        base = statistics.median(times["float"])
        out.emit(f"\n{threads} thread(s); median of {args.repeats} interleaved epochs (after one warm-up each)")
        out.emit("| contender | formats | median s/epoch | min s/epoch | vs float |")
        out.emit("|---|---|---|---|---|")
        for name, ts in times.items():
            med = statistics.median(ts)
            out.emit(f"| {name} | {DESCRIPTION[name]} | {med:.3f} | {min(ts):.3f} | {med / base:.2f}x |")
            results.append({"threads": threads, "contender": name, "formats": DESCRIPTION[name], "median_s": med,
                            "times_s": ts, "ratio_vs_float": med / base})
    out.finish(args, results, "One MNIST epoch of SRBP: float vs quantized learning channel",
               command_line("bench_quantized_epoch.py", argv),
               f"Net {'-'.join(map(str, SIZES))} tanh, minibatch 100, 60,000 examples; Numba CPU "
               "kernels, bit-identical to the NumPy reference.")
    return results


if __name__ == "__main__":
    main()
