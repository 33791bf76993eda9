"""The one Markdown helper of the project: numbers formatted for tables, and tables (the hardware
models' budgets and every report of lowbit_rbp use it)."""
from __future__ import annotations


def fmt(x, digits=4) -> str:
    """A number as a table shows it: integers with thousands separators, others to ``digits``
    significant digits (thousands and above without decimals); strings pass through, None is '-'."""
    if isinstance(x, str):
        return x
    if x is None:
        return "-"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        x = int(x)
    if isinstance(x, int):
        return f"{x:,}"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def md_table(header, rows) -> str:
    """A Markdown table; every cell through ``fmt``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(v) for v in r) + " |")
    return "\n".join(lines)
