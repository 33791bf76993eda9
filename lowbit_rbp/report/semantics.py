"""The quantization-semantics study (issue 4): rows x semantics, beside the paper's quantized rows.

    python -m lowbit_rbp.report.semantics --store reports/sweeps/quant.db --out reports/quantization_semantics.md

Reads the runs of ``lowbit_rbp/sweeps/quant_semantics.toml`` (row tags ``<at>_<underflow>_<levels>_<b>bit``),
tabulates final test accuracy for BP / RBP / SRBP at 5 / 3 / 1 bits per semantics, and scores each
semantics by its mean absolute distance to the paper's Table 1 quantized-error row.
"""
from __future__ import annotations

import statistics

from .paper import MNIST_TABLE1
from .tables import protocol_markdown, store_report_main

ALGS = ("bp", "rbp", "srbp")
BITS = (5, 3, 1)
DESCRIBE = {
    "before": "quantize J before f'", "after": "quantize f'*J",
    "clip": "below the smallest level: clip up (eq. 19)", "flush": "flush to zero",
    "stochastic": "stochastic zero / smallest",
    "paper": "exponents -(bits-1)..0", "full": "2^(bits-1) exponent levels",
}


def study(results: list) -> dict:
    """{semantics: {(alg, bits): mean accuracy %}}, from finished runs only."""
    table: dict = {}
    for r in results:
        if not r.row.endswith("bit") or r.test_acc is None or not r.done:
            continue
        semantics, _, bits = r.row.rpartition("_")
        acc = 100.0 * r.test_acc if r.status == "finished" else float("nan")
        table.setdefault(semantics, {}).setdefault((r.algorithm, int(bits[:-3])), []).append(acc)
    return {s: {k: statistics.fmean(v) for k, v in cells.items()} for s, cells in table.items()}


def distance_to_paper(cells: dict) -> float:
    diffs = []
    for (alg, bits), acc in cells.items():
        paper = MNIST_TABLE1[f"qerror_{bits}"][alg][0]
        diffs.append(abs(acc - paper) if acc == acc else 100.0)
    return statistics.fmean(diffs) if diffs else float("nan")


def markdown(results: list, command: str) -> str:
    data = study(results)
    cols = [(a, b) for a in ALGS for b in BITS]
    head = "| semantics | " + " | ".join(f"{a.upper()} {b}-bit" for a, b in cols) + " | mean abs diff to paper |"
    lines = ["# Quantizing the learning channel: which semantics reproduce the paper?", "",
             "Generated from the results store; do not edit the numbers by hand.", "",
             f"- Command: `{command}`",
             "- Every run: MNIST, paper net and schedule, T - O^L and every signal sent on quantized with "
             "`log:alpha=2,bits=b`; final test accuracy %.",
             protocol_markdown([r for r in results if r.row.endswith("bit")]), "",
             head, "|" + "---|" * (len(cols) + 2),
             "| **paper (100 epochs, single runs)** | " + " | ".join(
                 f"{MNIST_TABLE1[f'qerror_{b}'][a][0]}" for a, b in cols) + " | |"]
    ranked = sorted(data, key=lambda s: distance_to_paper(data[s]))
    for s in ranked:
        cells = data[s]
        vals = " | ".join("" if (a, b) not in cells else ("diverged" if cells[(a, b)] != cells[(a, b)]
                                                           else f"{cells[(a, b)]:.1f}") for a, b in cols)
        lines.append(f"| {s} | {vals} | {distance_to_paper(cells):.2f} |")
    lines += ["", "Semantics names: `<where>_<underflow>_<levels>`: " +
              "; ".join(f"`{k}`: {v}" for k, v in DESCRIBE.items()) + ".", ""]
    if ranked:
        lines.append(f"Closest to the paper over the cells run so far: `{ranked[0]}`.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return store_report_main("semantics", markdown, "reports/sweeps/quant.db", "reports/quantization_semantics.md", argv)


if __name__ == "__main__":
    raise SystemExit(main())
