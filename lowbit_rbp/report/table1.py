"""The paper's MNIST Table 1, every row, ours beside the paper's, from a results store.

    python -m lowbit_rbp.report.table1 --store reports/sweeps/mnist.db --out reports/mnist_table1.md

Rows come from the sweep's row tags (``lowbit_rbp/sweeps/mnist_table1.toml``); a row whose runs are
not all finished is shown with what it has and marked, so the table fills in as the sweep resumes.
"""
from __future__ import annotations

import statistics

from ..paper import MNIST_TABLE1
from .tables import protocol_markdown, store_report_main

COLUMNS = ("bp", "rbp", "srbp", "top")
ADAPTIVE = {"arbp": "rbp", "asrbp": "srbp"}   # the paper's "Adaptive" row sits in the RBP / SRBP columns


def cells(results: list[dict]) -> dict:
    out: dict = {}
    for r in results:
        if not r["row"] or r["row"] not in MNIST_TABLE1:
            continue
        col = ADAPTIVE.get(r["algorithm"], r["algorithm"])
        cell = out.setdefault((r["row"], col), {"acc": [], "diverged": 0, "pending": 0, "seeds": set()})
        if r["status"] == "finished" and r["test_acc"] is not None:
            cell["acc"].append(100.0 * r["test_acc"])
            cell["seeds"].add(r["seed"])
        elif r["status"] == "diverged":
            cell["diverged"] += 1
        else:
            cell["pending"] += 1
    return out


def _ours(cell) -> str:
    if cell is None:
        return "not run yet"
    acc = cell["acc"]
    text = "" if not acc else (f"{statistics.fmean(acc):.1f}" + (f" ({statistics.stdev(acc):.1f})" if len(acc) > 1 else ""))
    notes = []
    if cell["diverged"]:
        notes.append(f"{cell['diverged']} diverged")
    if cell["pending"]:
        notes.append(f"{cell['pending']} unfinished")
    return text + (f" [{', '.join(notes)}]" if notes else "") if (text or notes) else "not run yet"


def _paper(p) -> str:
    return "" if p is None else f"{p[0]}" + ("" if p[1] is None else f" ({p[1]})")


def markdown(results: list[dict], command: str) -> str:
    c = cells(results)
    used = [r for r in results if r["row"] in MNIST_TABLE1]
    lines = ["# MNIST, the paper's Table 1: ours beside the paper's", "",
             "Generated from the results store; do not edit the numbers by hand.", "",
             f"- Command: `{command}`",
             "- Protocol: paper net 784-100-100-100-100-10 tanh, minibatch 100, lr 0.1 decaying 1e-6 per update, "
             "no momentum, Glorot-normal init and feedback; each cell: final test accuracy %, mean (sample sd) "
             "over seeds, ours | paper (100 epochs, 5 seeds; quantized and dropout rows single runs).",
             protocol_markdown(used), "",
             "| row | " + " | ".join(f"{k.upper()} ours | {k.upper()} paper" for k in COLUMNS) + " |",
             "|---|" + "---|---|" * len(COLUMNS)]
    for row, paper in MNIST_TABLE1.items():
        parts = []
        for col in COLUMNS:
            if col in paper:
                parts += [_ours(c.get((row, col))), _paper(paper[col])]
            else:
                parts += ["", ""]
        lines.append(f"| {row} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return store_report_main("table1", markdown, "reports/sweeps/mnist.db", "reports/mnist_table1.md", argv)


if __name__ == "__main__":
    raise SystemExit(main())
