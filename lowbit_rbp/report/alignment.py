"""The alignment study (issue 19): how each layer's update lines up with BP's gradient over training,
and what explains the rows of the paper's Table 1 that ours do not reproduce.

    python -m lowbit_rbp.report.alignment --store reports/sweeps/alignment.db --out reports/alignment.md \\
        [--compare reports/sweeps/mnist.db]

Reads a store trained with learning diagnostics (``--diagnostics N``; the sweeps
``lowbit_rbp/sweeps/alignment.toml``, ``alignment_hypotheses.toml``, ``alignment_seeds.toml``).
Figures go beside the report (``alignment_<family>.png``). Every number in the text is computed
from the store: the findings are templates (``FINDINGS``) whose ``{...}`` fields ``Quotes`` fills in
(``lowbit_rbp.report.table1`` prints the same findings under its rows). ``--compare``: a store of
the same configs trained without diagnostics, whose epochs must be identical.
"""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

from ..learning.diagnostics import METRICS
from ..results.store import Store
from .paper import MNIST_TABLE1
from .plots import plot_alignment
from .tables import protocol_markdown

ALGS = ("bp", "rbp", "srbp")
LAYERS = ("W1", "W2", "W3", "W4", "top")
# The base runs' figures: (file stem, title, Table 1 rows in it, algorithms in it).
FAMILIES = (
    ("baseline", "float32 channels (Table 1 baseline)", ("baseline",), ("bp", "sbp", "rbp", "arbp", "srbp", "asrbp")),
    ("sparse", "sparse binary feedback (Table 1 sparse-8, -2, -1)", ("sparse_8", "sparse_2", "sparse_1"), ("rbp", "srbp")),
    ("qerror", "quantized error and signals, log alpha = 2 (Table 1 quantized error)",
     ("qerror_5", "qerror_3", "qerror_1"), ALGS),
    ("qupdate", "quantized per-example update, log alpha = 0.5 (Table 1 quantized update)",
     ("qupdate_5", "qupdate_3", "qupdate_1"), ALGS),
)
ROW_TEXT = {"baseline": "baseline", "sparse_8": "sparse-8", "sparse_2": "sparse-2", "sparse_1": "sparse-1",
            "qerror_5": "error 5-bit", "qerror_3": "error 3-bit", "qerror_1": "error 1-bit",
            "qupdate_5": "update 5-bit", "qupdate_3": "update 3-bit", "qupdate_1": "update 1-bit"}

# The hypotheses per differing row: (variant tag, what it changes); "" is the Table 1 row itself.
HYPOTHESES = {
    "qerror_1": (
        ("", "the Table 1 row: T - O and every signal `log:alpha=2,bits=1`"),
        ("error_only", "T - O quantized, signals float32 ('quantizing T - O only')"),
        ("signal_only", "T - O float32, every signal quantized"),
        ("alpha_0.5", "alpha 0.5 for both (at 1 bit: the learning rate / 4)"),
        ("alpha_0.125", "alpha 0.125 for both (lr / 16)"),
        ("alpha_0.03125", "alpha 1/32 for both (lr / 64)"),
        ("error_alpha_0.125", "per-layer alpha: 0.125 for T - O, 2 for the signals"),
    ),
    "qupdate_1": (
        ("", "the Table 1 row: each example's update `log:alpha=0.5,bits=1`, constant lr 0.1"),
        ("decay_1e-4", "lr 0.1 / (1 + 1e-4 t): 0.045 after 20 epochs"),
        ("decay_1e-3", "lr 0.1 / (1 + 1e-3 t): 0.0077 after 20 epochs"),
        ("alpha_2", "alpha 2 (at 1 bit: lr x 4)"),
        ("alpha_0.125", "alpha 0.125 (lr / 4)"),
        ("alpha_0.03125", "alpha 1/32 (lr / 16)"),
    ),
    "sparse_8": (
        ("", "the Table 1 row: `sparse:n=8`, p = 8 / sender width, RBP scaled 1/8"),
        ("per_sender", "8 non-zeros per *sending* neuron: the top matrix p = 8/100 (sparser)"),
        ("scale_one", "no 1/8 scaling"),
        ("per_sender_scale_one", "both"),
    ),
}

# What was found, per differing row: templates whose {...} fields Quotes fills from the store.
# Fields: {acc:ROW:ALG} (final test accuracy, mean over the store's seeds), {angle:ROW:ALG:LAYER:EPOCH}
# (update angle, degrees), {feedback:ROW:ALG:LAYER:EPOCH}, {metric:NAME:ROW:ALG:LAYER:EPOCH} and
# {pct:NAME:...} (a fraction as a percentage); ROW is
# a row tag (a hypothesis: row:variant), LAYER W1..W4 or top, EPOCH a number or 'last'.
FINDINGS = {
    "qerror_1": (
        "At 1 bit T - O becomes sign(T - O) alpha: +alpha for the target, -alpha for the 9 other outputs, "
        "so its mean over the outputs is -0.8 alpha = {metric:signal_mean:qerror_1:bp:top:last} where a "
        "softmax error's is 0. A hidden layer hears that mean through the column sums of the matrix the "
        "error passes through. BP's matrix is W_top, whose column sums the same biased error keeps growing "
        "(the norm of W_top after 20 epochs: {metric:weight_norm:qerror_1:bp:top:last}; float BP: "
        "{metric:weight_norm:baseline:bp:top:last}): the signal BP sends into the top hidden layer is then the "
        "error's mean alone (`error_mean_share` {metric:error_mean_share:qerror_1:bp:W4:last}), the same "
        "vector for every example, and BP's hidden updates point against the gradient: "
        "{angle:qerror_1:bp:W4:1} degrees at W4 in epoch 1, {angle:qerror_1:bp:W4:last} / "
        "{angle:qerror_1:bp:W3:last} / {angle:qerror_1:bp:W2:last} at W4 / W3 / W2 in epoch 20 (the top "
        "layer: {angle:qerror_1:bp:top:last}). **Test**: with T - O float32 and only the signals sent on "
        "quantized (`signal_only`) BP learns, {acc:qerror_1:signal_only:bp} (the paper: 94.6), with hidden "
        "updates at {angle:qerror_1:signal_only:bp:W4:last} degrees (W4); with T - O quantized and the "
        "signals float32 (`error_only`) it fails, {acc:qerror_1:error_only:bp}. **Ruled out**: a smaller "
        "alpha (at 1 bit the same as a smaller learning rate): BP {acc:qerror_1:alpha_0.5:bp}, "
        "{acc:qerror_1:alpha_0.125:bp}, {acc:qerror_1:alpha_0.03125:bp} at alpha 0.5, 0.125, 1/32; a "
        "per-layer alpha (0.125 for T - O, 2 for the signals): {acc:qerror_1:error_alpha_0.125:bp}. So the "
        "paper's 1-bit BP is reproduced when its 1-bit quantizer acts on the signals sent down the channel "
        "and not on T - O (or keeps T - O's zero sum); no reading with a sign-quantized T - O lets BP learn. "
        "RBP and SRBP hear the error's mean through fixed random matrices, whose column sums do not grow "
        "(shares {metric:error_mean_share:qerror_1:rbp:W4:last} for RBP's top hidden layer, "
        "{metric:error_mean_share:qerror_1:srbp:W1:last} for SRBP's W1), and learn: RBP "
        "{acc:qerror_1:rbp}, SRBP {acc:qerror_1:srbp} (this code; Table 1's quantized cells were trained by "
        "older code, whose quantized runs this code does not repeat bit for bit: reports/alignment.md, the "
        "identity check). Quantizing the signals only keeps SRBP at the paper's "
        "({acc:qerror_1:signal_only:srbp}; the paper 91.6) but not RBP ({acc:qerror_1:signal_only:rbp}; the "
        "paper 89.8), so that reading does not explain RBP's cell. At 1 bit alpha is RBP's learning rate: "
        "with alpha 0.5 RBP reaches {acc:qerror_1:alpha_0.5:rbp}, above the paper's 89.8, so RBP's shortfall "
        "at alpha = 2 (ours {acc:qerror_1:rbp}) is the step size alpha = 2 sets for 20 epochs, not the "
        "channel's direction (its W1 update angle is {angle:qerror_1:rbp:W1:last} degrees at alpha 2, "
        "{angle:qerror_1:alpha_0.5:rbp:W1:last} at alpha 0.5)."),
    "qupdate_1": (
        "At 1 bit each example's update of a weight is sign(R_bi O_bj) alpha: a product counts the same "
        "whatever its size. For the top layer R = T - O is negative for the 9 non-target outputs of every "
        "example however small their error, so the 1-bit update carries the same biased mean over the "
        "outputs as the 1-bit error: the top layer's update makes {angle:qupdate_1:bp:top:last} degrees with "
        "BP's gradient in epoch 20 (at 5 bits: {angle:qupdate_5:bp:top:last}) and W_top's norm grows to "
        "{metric:weight_norm:qupdate_1:bp:top:last} (5 bits: {metric:weight_norm:qupdate_5:bp:top:last}). "
        "The hidden layers' updates are nearly orthogonal to the gradient for every algorithm (W1 in epoch "
        "20: BP {angle:qupdate_1:bp:W1:last}, RBP {angle:qupdate_1:rbp:W1:last}, SRBP "
        "{angle:qupdate_1:srbp:W1:last} degrees; at 5 bits {angle:qupdate_5:bp:W1:last}, "
        "{angle:qupdate_5:rbp:W1:last}, {angle:qupdate_5:srbp:W1:last}). BP's channel reads that W_top, so "
        "its hidden signals blow up (RMS {metric:signal_rms:qupdate_1:bp:W1:last} at W1; 5 bits: "
        "{metric:signal_rms:qupdate_5:bp:W1:last}) and its accuracy swings: BP {acc:qupdate_1:bp}, RBP "
        "{acc:qupdate_1:rbp}, SRBP {acc:qupdate_1:srbp} (this code). **Ruled out** as what gives the paper's "
        "BP 92.5: a decaying learning rate (BP {acc:qupdate_1:decay_1e-4:bp} with lr / (1 + 1e-4 t), "
        "{acc:qupdate_1:decay_1e-3:bp} with lr / (1 + 1e-3 t); SRBP {acc:qupdate_1:decay_1e-4:srbp}, "
        "{acc:qupdate_1:decay_1e-3:srbp}) and a smaller alpha (BP {acc:qupdate_1:alpha_0.125:bp} at 0.125, "
        "{acc:qupdate_1:alpha_0.03125:bp} at 1/32), seed 0. With alpha 2 (the error's alpha) RBP fails as "
        "the paper's does ({acc:qupdate_1:alpha_2:rbp}; the paper 9.6) but so does BP "
        "({acc:qupdate_1:alpha_2:bp}): every hidden unit saturates (hidden signal RMS "
        "{metric:signal_rms:qupdate_1:alpha_2:bp:W4:last}: f' = 0), while SRBP, whose every layer hears the "
        "output directly, still learns ({acc:qupdate_1:alpha_2:srbp}; the paper 90.7). No alpha or decay we "
        "tried gives the paper's whole row; the measured cause of our BP's failure is the sign of the top "
        "layer's per-example update."),
    "qupdate_5": (
        "Screened (reports/quantization_semantics.md, 10 epochs, seed 0). At 5 bits the smallest level is alpha 2^-4 = 0.031 and "
        "{pct:update_underflow:update_stochastic_paper_5bit:srbp:W2:last} of SRBP's W2 products fall below "
        "it. Our stochastic underflow rounds them to 0 or the smallest level without bias, and nothing is lost "
        "(BP {acc:update_stochastic_paper_5bit:bp}, RBP {acc:update_stochastic_paper_5bit:rbp}, SRBP "
        "{acc:update_stochastic_paper_5bit:srbp}). Flushing them to 0 drops "
        "{pct:update_zero:update_flush_paper_5bit:rbp:W2:last} of RBP's W2 products and costs RBP and SRBP "
        "points (BP / RBP / SRBP {acc:update_flush_paper_5bit:bp} / {acc:update_flush_paper_5bit:rbp} / "
        "{acc:update_flush_paper_5bit:srbp}; the paper loses 2.7 / 3.2 / 3.9 against its baselines); clipping "
        "them up to the smallest level as eq. 19 prints it costs far more ({acc:update_clip_paper_5bit:bp} / "
        "{acc:update_clip_paper_5bit:rbp} / {acc:update_clip_paper_5bit:srbp}: every tiny product becomes "
        "+-0.031, so RBP's W1 update is at {angle:update_clip_paper_5bit:rbp:W1:last} degrees to the gradient, "
        "against {angle:update_stochastic_paper_5bit:rbp:W1:last} under stochastic rounding). With 2^(b-1) "
        "exponent levels the smallest level is alpha 2^-15 and all three semantics equal float (SRBP "
        "{acc:update_clip_full_5bit:srbp} clip, {acc:update_flush_full_5bit:srbp} flush). So the paper's "
        "losses fit a biased quantizer between flush and clip; our unbiased default is why our rows equal "
        "float."),
    "qupdate_3": (
        "Screened as for 5 bits (10 epochs, seed 0). Stochastic underflow again loses nothing (BP "
        "{acc:update_stochastic_paper_3bit:bp}, RBP {acc:update_stochastic_paper_3bit:rbp}, SRBP "
        "{acc:update_stochastic_paper_3bit:srbp}; smallest level alpha/4 = 0.125, "
        "{pct:update_underflow:update_stochastic_paper_3bit:srbp:W2:last} of SRBP's W2 products below it). "
        "Flush to zero gives BP / RBP / SRBP {acc:update_flush_paper_3bit:bp} / {acc:update_flush_paper_3bit:rbp} / "
        "{acc:update_flush_paper_3bit:srbp}: RBP, whose lower layers receive the weakest signals, loses most "
        "({pct:update_zero:update_flush_paper_3bit:rbp:W1:last} of its W1 products are flushed to 0, so W1 "
        "barely learns: its update is at {angle:update_flush_paper_3bit:rbp:W1:last} degrees to the "
        "gradient), then SRBP, BP least: the order of the paper's losses (1.4 / 6.2 / 5.0 points for BP / RBP "
        "/ SRBP). Clip up loses more "
        "({acc:update_clip_paper_3bit:bp} / {acc:update_clip_paper_3bit:rbp} / {acc:update_clip_paper_3bit:srbp}), "
        "with 2^(b-1) levels too (clip {acc:update_clip_full_3bit:bp} / {acc:update_clip_full_3bit:rbp} / "
        "{acc:update_clip_full_3bit:srbp}, flush {acc:update_flush_full_3bit:bp} / "
        "{acc:update_flush_full_3bit:rbp} / {acc:update_flush_full_3bit:srbp})."),
    "sparse_8": (
        "The gap is the 1/K scaling of the 100-to-100 matrices, not the top matrix. The top hidden layer's "
        "signal is as strong as with dense feedback (RMS {metric:signal_rms:sparse_8:rbp:W4:last}; dense "
        "RBP {metric:signal_rms:baseline:rbp:W4:last}), so the cancellation in the top matrix (the reading "
        "Table 1 gave before) is refuted, and a sparser top matrix does not help (`per_sender`, p = 8/100: "
        "{acc:sparse_8:per_sender:rbp}). Below it each {0, 1/8} matrix averages about 8 signals and the signal "
        "shrinks layer by layer: RMS {metric:signal_rms:sparse_8:rbp:W3:last}, "
        "{metric:signal_rms:sparse_8:rbp:W2:last}, {metric:signal_rms:sparse_8:rbp:W1:last} at W3, W2, W1 "
        "(dense RBP: {metric:signal_rms:baseline:rbp:W3:last}, {metric:signal_rms:baseline:rbp:W2:last}, "
        "{metric:signal_rms:baseline:rbp:W1:last}); the lower layers learn so slowly that their forward "
        "weights never align with the feedback (feedback angles {feedback:sparse_8:rbp:W1:last} / "
        "{feedback:sparse_8:rbp:W2:last} degrees at W1 / W2, near a random matrix's 90; updates "
        "{angle:sparse_8:rbp:W1:last} / {angle:sparse_8:rbp:W2:last}). **Test**: without the 1/8 scaling "
        "(`sparse:n=8,scale=one`) RBP sparse-8 reaches {acc:sparse_8:scale_one:rbp} (the paper: 96.0; with "
        "the scaling {acc:sparse_8:rbp}), its signals no longer shrink (W1 RMS "
        "{metric:signal_rms:sparse_8:scale_one:rbp:W1:last}), the forward weights align with the feedback "
        "(feedback angles {feedback:sparse_8:scale_one:rbp:W1:last} / {feedback:sparse_8:scale_one:rbp:W2:last}) "
        "and the updates with the gradient ({angle:sparse_8:scale_one:rbp:W1:last} / "
        "{angle:sparse_8:scale_one:rbp:W2:last} degrees). So the paper's 96.0 is reproduced by sparse "
        "RBP matrices without the 1/K scaling its text describes (or with a learning rate that makes up for "
        "it)."),
}


class Quotes:
    """Numbers from a store, by row tag and algorithm, as the findings quote them."""

    FIELD = re.compile(r"\{(acc|angle|feedback|metric|pct):([^{}]+)\}")

    def __init__(self, results: list, diagnostics: dict):
        self.runs: dict = {}
        for r in results:
            if r.status == "finished" and r.test_acc is not None:
                self.runs.setdefault((r.row, r.algorithm), []).append(r)
        self.diagnostics = diagnostics

    def accuracies(self, row: str, alg: str) -> list[float]:
        return [100.0 * r.test_acc for r in self.runs.get((row, alg), [])]

    def acc(self, row: str, alg: str) -> str:
        acc = self.accuracies(row, alg)
        if not acc:
            return "n/a (not run)"
        text = f"{statistics.fmean(acc):.1f}"
        return text + (f" (sd {statistics.stdev(acc):.1f}, {len(acc)} seeds)" if len(acc) > 1 else "")

    def value(self, metric: str, row: str, alg: str, layer: str, epoch: str) -> float:
        """Mean over the runs of (row, alg) of ``metric`` at ``layer`` in ``epoch`` (NaN if none)."""
        k = LAYERS.index(layer)
        vals = []
        for r in self.runs.get((row, alg), []):
            rows = self.diagnostics.get(r.config_hash, [])
            e = max((d.epoch for d in rows), default=0) if epoch == "last" else int(epoch)
            vals += [d.values[metric] for d in rows if d.epoch == e and d.layer == k and metric in d.values
                     and math.isfinite(d.values[metric])]
        return statistics.fmean(vals) if vals else math.nan

    def _field(self, m) -> str:
        """A field's value; a row tag may hold ':' itself (row:variant), so fields parse from the right."""
        kind, args = m.group(1), m.group(2).split(":")
        if kind == "acc":
            return self.acc(":".join(args[:-1]), args[-1])
        metric = {"angle": "update_angle", "feedback": "feedback_angle"}.get(kind)
        if metric is None:
            metric, args = args[0], args[1:]
        row, alg, layer, epoch = ":".join(args[:-3]), *args[-3:]
        v = self.value(metric, row, alg, layer, epoch)
        if math.isnan(v):
            return "n/a"
        return f"{100 * v:.1f} %" if kind == "pct" else _number(v)

    def fill(self, text: str) -> str:
        return self.FIELD.sub(self._field, text)


def _number(v: float) -> str:
    """Two significant digits, except whole numbers from 10 to 10^4 (angles, norms)."""
    if 10 <= abs(v) < 1e4:
        return f"{v:.0f}"
    return f"{v:.2g}"


def load(store) -> tuple[list, dict]:
    st = Store.read_only(store)
    try:
        return st.runs(), st.diagnostics()
    finally:
        st.close()


def finding(row: str, quotes: Quotes) -> str:
    """The row's finding with its numbers from the store ('' when none is recorded)."""
    return quotes.fill(FINDINGS[row]) if row in FINDINGS else ""


# --- tables -----------------------------------------------------------------------------------
def _tag(row: str, variant: str) -> str:
    return f"{row}:{variant}" if variant else row


def angle_table(quotes: Quotes, entries, epochs=("1", "last")) -> list[str]:
    """Per (row tag, algorithm): final accuracy, the update angle of every layer at ``epochs`` (numbers or
    'last') and the feedback angle of every hidden layer at the last of them."""
    head = ["variant", "algorithm", "test acc %"] + [f"update {n} (ep {' → '.join(epochs)})" for n in LAYERS] \
        + [f"feedback {n}" for n in LAYERS[:-1]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tag, alg in entries:
        if not quotes.runs.get((tag, alg)):
            continue
        cells = [tag, alg.upper(), quotes.acc(tag, alg)]
        for n in LAYERS:
            vals = [quotes.value("update_angle", tag, alg, n, e) for e in epochs]
            cells.append("" if all(math.isnan(v) for v in vals) else " → ".join(
                "n/a" if math.isnan(v) else f"{v:.0f}" for v in vals))
        for n in LAYERS[:-1]:
            v = quotes.value("feedback_angle", tag, alg, n, epochs[-1])
            cells.append("" if math.isnan(v) else f"{v:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def hypothesis_table(row: str, quotes: Quotes) -> list[str]:
    algs = [a for a in ALGS if a in MNIST_TABLE1[row]]
    head = ["variant", "what changes"] + [f"{a.upper()} (paper {MNIST_TABLE1[row][a][0]})" for a in algs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, text in HYPOTHESES[row]:
        tag = _tag(row, variant)
        lines.append("| " + " | ".join([variant or "(row)", text] + [quotes.acc(tag, a) for a in algs]) + " |")
    return lines


def diagnostic_table(row: str, quotes: Quotes, metrics) -> list[str]:
    """Per hypothesis and algorithm: the listed (metric, layer) at the last epoch."""
    algs = [a for a in ALGS if a in MNIST_TABLE1[row]]
    head = ["variant", "algorithm"] + [f"{name} {layer}" for name, layer in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, _ in HYPOTHESES[row]:
        tag = _tag(row, variant)
        for a in algs:
            if not quotes.runs.get((tag, a)):
                continue
            vals = [quotes.value(m, tag, a, layer, "last") for m, layer in metrics]
            lines.append("| " + " | ".join([variant or "(row)", a.upper()] +
                                           ["" if math.isnan(v) else _number(v) for v in vals]) + " |")
    return lines


# --- figures ----------------------------------------------------------------------------------
def _panels(quotes: Quotes, entries, slots: bool = False) -> list:
    """Alignment panels of (row tag, algorithm) entries with runs; ``slots``: None for the others (a
    grid of one algorithm per column), and titles without the row (the figure names it)."""
    out = []
    for tag, alg in entries:
        runs = quotes.runs.get((tag, alg), [])
        if not runs:
            out += [None] if slots else []
            continue
        mean = quotes.acc(tag, alg).split(" ")[0]
        seeds = f", {len(runs)} seeds" if len(runs) > 1 else ""
        what = (tag.partition(":")[2] or "Table 1 row") if slots else ROW_TEXT.get(tag, tag.replace(":", ": "))
        out.append((f"{alg.upper()} {what} ({mean} %{seeds})", alg,
                    [quotes.diagnostics.get(r.config_hash, []) for r in runs]))
    return out


def write_figures(quotes: Quotes, out_dir: Path, stem: str) -> list[str]:
    """The families' and the hypotheses' alignment figures; returns the file names written."""
    names = []
    for key, text, rows, algs in FAMILIES:
        name = f"{stem}_{key}.png"
        entries = [(row, a) for row in rows for a in algs]
        if plot_alignment(_panels(quotes, entries), out_dir / name, "Angle to BP's gradient per layer: " + text,
                          ncols=len(algs) if len(algs) > 3 else 3):
            names.append(name)
    for row, variants in HYPOTHESES.items():
        name = f"{stem}_{row}_hypotheses.png"
        algs = [a for a in ALGS if a in MNIST_TABLE1[row]]
        entries = [(_tag(row, v), a) for v, _ in variants for a in algs]
        if plot_alignment(_panels(quotes, entries, slots=True), out_dir / name,
                          f"Angle to BP's gradient per layer: hypotheses for Table 1 row {row}", ncols=len(algs)):
            names.append(name)
    return names


# --- a whole store (``lowbit-rbp report``) ---------------------------------------------------------
def store_panels(groups, diagnostics: dict, limit: int | None = 24) -> list:
    """Alignment panels of the first ``limit`` (None: all) variants, in report order, that have diagnostics."""
    out = []
    for g in groups:
        rows = [diagnostics[h] for h in g.config_hashes if h in diagnostics]
        if rows:
            from .plots import short_label
            out.append(((f"{g.row}: " if g.row else "") + short_label(g), g.algorithm, rows))
    return out[:limit]


def store_angle_table(groups, diagnostics: dict) -> list[str]:
    """Per variant with diagnostics: the update angle of every layer at its last epoch (mean over seeds)."""
    from .plots import layer_name, mean_series
    lines = []
    for g in groups:
        rows = [diagnostics[h] for h in g.config_hashes if h in diagnostics]
        if not rows:
            continue
        n_layers = max(d.layer for r in rows for d in r) + 1
        cells = []
        for k in range(n_layers):
            epochs, means = mean_series(rows, "update_angle", k)
            cells.append("" if not epochs or math.isnan(means[-1]) else f"{means[-1]:.0f}")
        if not lines:
            lines = ["| variant | seeds | epoch | " + " | ".join(f"update {layer_name(k, n_layers)}"
                                                           for k in range(n_layers)) + " |",
                     "|" + "---|" * (n_layers + 3)]
        last = max(d.epoch for r in rows for d in r)
        lines.append(f"| {g.label} | {len(rows)} | {last} | " + " | ".join(cells) + " |")
    return lines


# --- the check that diagnostics change nothing --------------------------------------------------
def identical_to(results: list, other_store) -> tuple[int, int, list[str], bool]:
    """(runs compared, runs with every epoch identical, the code versions that trained the others, whether
    those others all have a quantized channel) against a store
    of the same configs trained without diagnostics: train and test accuracy of every epoch (the
    losses are left out: how a loss is summed changed between code versions, in the 8th digit)."""
    other = {r.config_hash: r for r in load(other_store)[0]}
    same, differ, compared = 0, [], 0
    quantized = True
    for r in results:
        o = other.get(r.config_hash)
        if o is None or not (r.done and o.done) or len(o.epochs) != len(r.epochs):
            continue
        compared += 1
        if [(e.train_acc, e.test_acc) for e in r.epochs] == [(e.train_acc, e.test_acc) for e in o.epochs]:
            same += 1
        else:
            differ.append(o.code_version or "?")
            quantized = quantized and _quantized(r.config)
    return compared, same, sorted(set(differ)), bool(differ) and quantized


def _quantized(cfg) -> bool:
    f = cfg.formats
    return any(getattr(f, name).kind != "float" for name in ("error", "signal", "feedback", "update"))


# --- the report -------------------------------------------------------------------------------
def markdown(results: list, diagnostics: dict, command: str, figures: list[str], compare=(),
             quotes: Quotes | None = None) -> str:
    """The report; ``quotes``: the runs the findings quote (the store's own, and any ``--quotes`` stores)."""
    quotes = quotes or Quotes(results, diagnostics)
    lines = ["# Learning diagnostics: how each layer's update lines up with BP's gradient", "",
             "Generated from the results store; do not edit the numbers by hand.", "",
             f"- Command: `{command}`",
             "- Runs: MNIST, the paper's net 784-100-100-100-100-10 tanh and Table 1 schedule (lr 0.1 decaying "
             "1e-6 per update; the quantized-update rows constant), 20 epochs unless a table says otherwise; "
             "seed 0 for screens, seeds 0-2 where a cell says so. Trained with `--diagnostics 4`: every "
             "metric is the mean over 4 evenly spaced minibatches of each epoch, measured before that "
             "minibatch's update (sweeps `lowbit_rbp/sweeps/alignment*.toml`).",
             protocol_markdown(results), "",
             "Metrics (per weight layer W1..W4, top; `lowbit_rbp.learning.diagnostics`):", ""]
    lines += [f"- `{k}`: {v}" for k, v in METRICS.items() if not k.startswith(("signal_", "update_", "error_"))
              or k in ("signal_rms", "signal_mean", "update_angle", "error_mean_share")]
    lines += ["- `error_*`, `signal_*`, `update_*` (`zero`, `smallest`, `clipped`, `underflow`): at each "
              "quantization point, the fraction of quantized values at 0 and at the smallest level, and of the "
              "values before it above the largest level and below the smallest one.", ""]
    for other in compare or ():
        n, same, versions, quantized = identical_to(results, other)
        lines += [f"Diagnostics change nothing: of the {n} runs here that `{other}` also holds (trained without "
                  f"diagnostics), {same} have every epoch's train and test accuracy identical"
                  + (f"; the others were trained there by code {', '.join(versions)}" if versions else "")
                  + (", all of them with a quantized channel (this code's quantized runs differ from that code's)"
                     if quantized else "") + ".", ""]
    lines += ["## Angles over training", "",
              "Solid: the angle between the update the channel gives a layer and BP's gradient on the same "
              "minibatch and weights (0: BP's direction; 90: orthogonal, no first-order progress; above 90: "
              "against the gradient). Dotted: the angle between the layer's feedback matrix and BP's. "
              "Update angles per layer in the first and the last epoch (1 → 20), feedback angles in the last:", ""]
    entries = [(row, a) for _, _, rows, algs in FAMILIES for row in rows for a in algs]
    lines += angle_table(quotes, entries) + [""]
    lines += [f"![{n}]({n})" for n in figures if "hypotheses" not in n] + [""]
    lines += ["## The Table 1 rows that differ from the paper", ""]
    for row in HYPOTHESES:
        lines += [f"### {row}", ""] + hypothesis_table(row, quotes) + [""]
        lines += diagnostic_table(row, quotes, DIAGNOSTIC_COLUMNS.get(row, ())) + [""]
        lines += [f"![{n}]({n})" for n in figures if n.endswith(f"_{row}_hypotheses.png")] + [""]
        if row in FINDINGS:
            lines += [finding(row, quotes), ""]
    for row in FINDINGS:
        if row not in HYPOTHESES:
            lines += [f"### {row}", "", finding(row, quotes), ""]
    return "\n".join(lines).rstrip() + "\n"


# Diagnostics shown per hypothesis (metric, layer) at the last epoch.
DIAGNOSTIC_COLUMNS = {
    "qerror_1": (("update_angle", "W1"), ("update_angle", "W4"), ("update_angle", "top"), ("signal_mean", "top"),
                 ("weight_norm", "top"), ("bp_signal_rms", "W4")),
    "qupdate_1": (("update_angle", "W1"), ("update_angle", "W4"), ("update_angle", "top"), ("weight_norm", "W1"),
                  ("weight_norm", "top"), ("update_zero", "W1")),
    "sparse_8": (("update_angle", "W1"), ("update_angle", "W4"), ("feedback_angle", "W4"), ("signal_rms", "W4"),
                 ("bp_signal_rms", "W4"), ("feedback_norm", "W4")),
}


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m lowbit_rbp.report.alignment", description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="reports/sweeps/alignment.db")
    ap.add_argument("--out", default="reports/alignment.md")
    ap.add_argument("--quotes", action="append", default=[],
                    help="another store whose runs the findings quote (repeatable), e.g. reports/sweeps/quant.db")
    ap.add_argument("--compare", action="append", default=[],
                    help="a store of some of the same configs trained without diagnostics (repeatable)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    results, diagnostics = load(args.store)
    figures = write_figures(Quotes(results, diagnostics), out.parent, out.stem)
    quoted, quoted_diag = list(results), dict(diagnostics)
    for path in args.quotes:
        r, d = load(path)
        quoted += r
        quoted_diag.update(d)
    command = f"python -m lowbit_rbp.report.alignment --store {args.store} --out {args.out}" + \
        "".join(f" --quotes {q}" for q in args.quotes) + "".join(f" --compare {c}" for c in args.compare)
    text = markdown(results, diagnostics, command, figures, args.compare, Quotes(quoted, quoted_diag))
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
