"""The quantization-semantics study (issues 4 and 19): rows x semantics, beside the paper's quantized rows.

    python -m lowbit_rbp.report.semantics --store reports/sweeps/quant.db --out reports/quantization_semantics.md

Reads the runs of ``lowbit_rbp/sweeps/quant_semantics.toml``. The error and signals (row tags
``<at>_<underflow>_<levels>_<b>bit``): final test accuracy of BP / RBP / SRBP at 5 / 3 / 1 bits per
semantics, each semantics scored by its mean absolute distance to the paper's quantized-error row.
The per-example update (row tags ``update_<underflow>_<levels>_<b>bit``): the same at 5 / 3 bits
against the paper's quantized-update row, with the learning diagnostics of those runs (the share
of each example's update products below the smallest level, and at 0 after quantization).
"""
from __future__ import annotations

import statistics

from ..results.store import Store
from .paper import MNIST_TABLE1
from .tables import load_results, protocol_markdown

ALGS = ("bp", "rbp", "srbp")
BITS = (5, 3, 1)
UPDATE_BITS = (5, 3)
UPDATE_PREFIX = "update_"
DESCRIBE = {
    "before": "quantize J before f'", "after": "quantize f'*J",
    "clip": "below the smallest level: clip up (eq. 19)", "flush": "flush to zero",
    "stochastic": "stochastic zero / smallest",
    "paper": "exponents -(bits-1)..0", "full": "2^(bits-1) exponent levels",
}


def _screened(r, update: bool) -> bool:
    return r.row.endswith("bit") and r.row.startswith(UPDATE_PREFIX) == update


def study(results: list, update: bool = False) -> dict:
    """{semantics: {(alg, bits): mean accuracy %}}, from finished runs only; ``update``: the
    update-format screen (semantics named without the ``update_`` prefix), else the error screen."""
    table: dict = {}
    for r in results:
        if not _screened(r, update) or r.test_acc is None or not r.done:
            continue
        semantics, _, bits = r.row.removeprefix(UPDATE_PREFIX if update else "").rpartition("_")
        acc = 100.0 * r.test_acc if r.status == "finished" else float("nan")
        table.setdefault(semantics, {}).setdefault((r.algorithm, int(bits[:-3])), []).append(acc)
    return {s: {k: statistics.fmean(v) for k, v in cells.items()} for s, cells in table.items()}


def distance_to_paper(cells: dict, row: str = "qerror") -> float:
    diffs = []
    for (alg, bits), acc in cells.items():
        paper = MNIST_TABLE1[f"{row}_{bits}"][alg][0]
        diffs.append(abs(acc - paper) if acc == acc else 100.0)
    return statistics.fmean(diffs) if diffs else float("nan")


def _cell(cells: dict, key) -> str:
    if key not in cells:
        return ""
    return "diverged" if cells[key] != cells[key] else f"{cells[key]:.1f}"


def _ranked_table(data: dict, cols, row: str) -> list[str]:
    head = "| semantics | " + " | ".join(f"{a.upper()} {b}-bit" for a, b in cols) + " | mean abs diff to paper |"
    lines = [head, "|" + "---|" * (len(cols) + 2),
             "| **paper (100 epochs, single runs)** | " + " | ".join(
                 f"{MNIST_TABLE1[f'{row}_{b}'][a][0]}" for a, b in cols) + " | |"]
    for s in sorted(data, key=lambda s: distance_to_paper(data[s], row)):
        vals = " | ".join(_cell(data[s], (a, b)) for a, b in cols)
        lines.append(f"| {s} | {vals} | {distance_to_paper(data[s], row):.2f} |")
    return lines


def update_diagnostics(results: list, diagnostics: dict) -> dict:
    """{(semantics, bits): (underflow, zero, smallest)}: the fractions of each example's update products
    of W2 (a 100-to-100 layer; W1's products are mostly exact zeros, MNIST's blank pixels) below the
    smallest level, at 0 and at the smallest level after quantization, last epoch, mean over the
    algorithms run."""
    acc: dict = {}
    for r in results:
        rows = diagnostics.get(r.config_hash)
        if not _screened(r, True) or not rows:
            continue
        semantics, _, bits = r.row.removeprefix(UPDATE_PREFIX).rpartition("_")
        last = max(d.epoch for d in rows)
        w2 = next((d for d in rows if d.epoch == last and d.layer == 1), None)
        if w2 is not None and "update_underflow" in w2.values:
            acc.setdefault((semantics, int(bits[:-3])), []).append(
                tuple(w2.values[f"update_{s}"] for s in ("underflow", "zero", "smallest")))
    return {k: tuple(statistics.fmean(x) for x in zip(*v)) for k, v in acc.items()}


def _update_section(results: list, diagnostics: dict) -> list[str]:
    data = study(results, update=True)
    if not data:
        return []
    runs = [r for r in results if _screened(r, True)]
    epochs = sorted({r.epochs_planned for r in runs})
    cols = [(a, b) for a in ALGS for b in UPDATE_BITS]
    lines = ["", "## The per-example update format", "",
             "Each example's update R O^T of every layer is quantized with `log:alpha=0.5,bits=b` under each "
             "semantics before the minibatch sum (the fused per-example kernel), constant learning rate 0.1, as "
             f"the Table 1 quantized-update rows; {', '.join(map(str, epochs))} epochs (a screen of the trend; "
             "the paper's numbers are after 100), seed 0. At 1 bit a value is its sign times alpha under every "
             "semantics, so 1 bit is not screened. Semantics names: `<underflow>_<levels>` as above.",
             protocol_markdown(runs), ""] + _ranked_table(data, cols, "qupdate")
    diag = update_diagnostics(results, diagnostics)
    if diag:
        lines += ["", "What each semantics does to each example's update products R_bi O_bj of W2 (100 x 100) "
                  "in the last epoch, mean over the algorithms (learning diagnostics, `--diagnostics 4`): the "
                  "share below the smallest level, and the shares at 0 and at the smallest level after quantizing.",
                  "", "| semantics | bits | below smallest level | at 0 after | at smallest level after |",
                  "|---|---|---|---|---|"]
        for (s, b), (under, zero, smallest) in sorted(diag.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            lines.append(f"| {s} | {b} | {under:.3f} | {zero:.3f} | {smallest:.3f} |")
    return lines


def markdown(results: list, command: str, diagnostics: dict | None = None) -> str:
    data = study(results)
    cols = [(a, b) for a in ALGS for b in BITS]
    lines = ["# Quantizing the learning channel: which semantics reproduce the paper?", "",
             "Generated from the results store; do not edit the numbers by hand.", "",
             f"- Command: `{command}`", "",
             "## The error and the signals sent on", "",
             "Every run: MNIST, paper net and schedule, T - O^L and every signal sent on quantized with "
             "`log:alpha=2,bits=b`; final test accuracy %.",
             protocol_markdown([r for r in results if _screened(r, False)]), ""]
    lines += _ranked_table(data, cols, "qerror")
    lines += ["", "Semantics names: `<where>_<underflow>_<levels>`: " +
              "; ".join(f"`{k}`: {v}" for k, v in DESCRIBE.items()) + ".", ""]
    if data:
        best = min(data, key=lambda s: distance_to_paper(data[s]))
        lines.append(f"Closest to the paper over the cells run so far: `{best}`.")
    lines += _update_section(results, diagnostics or {})
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m lowbit_rbp.report.semantics")
    ap.add_argument("--store", default="reports/sweeps/quant.db")
    ap.add_argument("--out", default="reports/quantization_semantics.md")
    args = ap.parse_args(argv)
    command = f"python -m lowbit_rbp.report.semantics --store {args.store} --out {args.out}"
    st = Store.read_only(args.store)
    try:
        results, diagnostics = load_results(st), st.diagnostics()
    finally:
        st.close()
    text = markdown(results, command, diagnostics)
    with open(args.out, "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
