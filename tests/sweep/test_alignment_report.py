"""Reports of the learning diagnostics: quoted numbers come from the store, the alignment study's
tables and findings, the store report's alignment section, the update-format screen, Table 1's
measured findings."""
import math

import pytest

from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.learning.diagnostics import LayerDiagnostics
from lowbit_rbp.learning.trainer import EpochRecord
from lowbit_rbp.report import alignment, semantics, table1
from lowbit_rbp.report.sweep_report import write_report
from lowbit_rbp.report.tables import load_results
from lowbit_rbp.results.store import Store


def fake_cost(cfg):
    return {"energy_pj": 1.0, "lc_ops": 1.0}


def _put(store, overrides, row, accs, diag=None):
    """A finished run of ``len(accs)`` epochs; ``diag(epoch) -> {layer: {metric: value}}``."""
    cfg = apply_overrides(RunConfig(), overrides)
    h = cfg.config_hash()
    assert store.claim(cfg, "t", tags={"row": row}) == "claimed"
    for e, acc in enumerate(accs, 1):
        store.record_epoch(h, "t", EpochRecord(e, 0.1, 0.9, 0.2, acc, 0.1, 1.0))
        if diag is not None:
            store.record_diagnostics(h, "t", e, [LayerDiagnostics(e, k, v) for k, v in diag(e).items()])
    store.finish(h, "t", "finished")
    return h


Q1 = ["formats.error='log:alpha=2,bits=1'", "formats.signal='log:alpha=2,bits=1'"]


def angles(base):
    return lambda e: {k: {"update_angle": base + 10 * e + k, "weight_norm": 100.0 * e} for k in range(5)}


def make_store(path):
    with Store(path) as st:
        _put(st, ["channel.algorithm=bp", *Q1], "qerror_1", [0.2, 0.113], angles(100))
        _put(st, ["channel.algorithm=bp", "formats.signal='log:alpha=2,bits=1'"], "qerror_1:signal_only",
             [0.9, 0.94], angles(50))
        _put(st, ["channel.algorithm=bp", "formats.signal='log:alpha=2,bits=1'", "train.seed=1"],
             "qerror_1:signal_only", [0.9, 0.92], angles(60))
        _put(st, ["channel.algorithm=rbp"], "baseline", [0.9, 0.96])                 # no diagnostics


def test_quotes_fill_fields_from_the_store(tmp_path):
    make_store(tmp_path / "a.db")
    q = alignment.Quotes(*alignment.load(tmp_path / "a.db"))
    assert q.fill("{acc:qerror_1:bp}") == "11.3"
    assert q.fill("{acc:qerror_1:signal_only:bp}") == "93.0 (sd 1.4, 2 seeds)"
    assert q.fill("{angle:qerror_1:bp:W4:last}") == "123"                 # 100 + 10*2 + layer 3
    assert q.fill("{angle:qerror_1:signal_only:bp:W1:1}") == "65"         # mean of 60 and 70
    assert q.fill("{metric:weight_norm:qerror_1:bp:top:2}") == "200"
    assert q.fill("x {acc:qerror_1:srbp} y {angle:baseline:rbp:W1:last}") == "x n/a (not run) y n/a"


def test_alignment_report_tables_findings_and_figures(tmp_path):
    make_store(tmp_path / "a.db")
    results, diag = alignment.load(tmp_path / "a.db")
    figures = alignment.write_figures(alignment.Quotes(results, diag), tmp_path, "alignment")
    assert "alignment_qerror.png" in figures and (tmp_path / "alignment_qerror.png").is_file()
    assert "alignment_baseline.png" not in figures                        # its run has no diagnostics
    text = alignment.markdown(results, diag, "cmd", figures)
    assert "| qerror_1 | BP | 11.3 | 110 → 120 | 111 → 121 | 112 → 122 | 113 → 123 | 114 → 124 |" in text
    assert "| signal_only | T - O float32, every signal quantized | 93.0 (sd 1.4, 2 seeds) |" in text
    # the finding's fields are filled: BP's signal_only accuracy, no template braces left
    assert "BP learns, 93.0 (sd 1.4, 2 seeds)" in text
    assert "{acc:" not in text and "{angle:" not in text


def test_store_report_has_an_alignment_section_only_with_diagnostics(tmp_path):
    make_store(tmp_path / "a.db")
    out = tmp_path / "rep"
    path = write_report(tmp_path / "a.db", out, cost_fn=fake_cost)
    text = path.read_text()
    assert "## Learning diagnostics" in text and "![alignment.png](alignment.png)" in text
    assert (out / "alignment.png").is_file()
    section = text[text.index("## Learning diagnostics"):]
    row = next(line for line in section.splitlines() if line.startswith("| qerror_1: bp"))
    assert row.split("|")[3:9] == [" 2 ", " 120 ", " 121 ", " 122 ", " 123 ", " 124 "]
    with Store(tmp_path / "plain.db") as st:
        _put(st, ["channel.algorithm=rbp"], "baseline", [0.9, 0.96])
    text = write_report(tmp_path / "plain.db", out, cost_fn=fake_cost).read_text()
    assert "Learning diagnostics" not in text and not (out / "alignment.png").exists()   # stale plot removed


def test_semantics_report_screens_the_update_format_apart(tmp_path):
    upd = ["train.lr_decay=0", "train.epochs=10"]
    stats = lambda e: {1: {"update_underflow": 0.9, "update_zero": 0.1, "update_smallest": 0.8}}   # noqa: E731
    with Store(tmp_path / "q.db") as st:
        _put(st, ["channel.algorithm=bp", "formats.error='log:alpha=2,bits=5'"], "before_clip_paper_5bit", [0.976])
        _put(st, ["channel.algorithm=bp", "formats.update='log:alpha=0.5,bits=5,underflow=clip'", *upd],
             "update_clip_paper_5bit", [0.952], stats)
    st = Store.read_only(tmp_path / "q.db")
    results, diag = load_results(st), st.diagnostics()
    st.close()
    assert set(semantics.study(results)) == {"before_clip_paper"}
    data = semantics.study(results, update=True)
    assert list(data) == ["clip_paper"] and data["clip_paper"][("bp", 5)] == pytest.approx(95.2)
    assert semantics.distance_to_paper(data["clip_paper"], "qupdate") == pytest.approx(0.0, abs=1e-9)
    text = semantics.markdown(results, "cmd", diag)
    update = text[text.index("## The per-example update format"):]
    assert "| clip_paper | 95.2 |" in update and "| clip_paper | 5 | 0.900 | 0.100 | 0.800 |" in update
    assert "clip_paper" not in text[:text.index("## The per-example update format")].replace("before_clip_paper", "")


def test_table1_prints_the_measured_finding_with_store_numbers(tmp_path):
    make_store(tmp_path / "a.db")
    with Store(tmp_path / "m.db") as st:
        _put(st, ["channel.algorithm=bp", *Q1], "qerror_1", [0.113])
    results = load_results(tmp_path / "m.db")
    quotes = alignment.Quotes(*alignment.load(tmp_path / "a.db"))
    text = table1.markdown(results, "cmd", quotes)
    para = next(line for line in text.splitlines() if line.startswith("**Quantized error 1 bit**"))
    assert "What the learning diagnostics measured" in para and "BP learns, 93.0 (sd 1.4, 2 seeds)" in para
    assert "(reports/alignment.md)" in para and "{acc:" not in para
    assert not math.isnan(quotes.value("update_angle", "qerror_1", "bp", "top", "last"))


def test_identity_check_against_a_store_without_diagnostics(tmp_path):
    make_store(tmp_path / "a.db")
    with Store(tmp_path / "same.db") as st:
        _put(st, ["channel.algorithm=bp", *Q1], "qerror_1", [0.2, 0.113])          # the same epochs
        _put(st, ["channel.algorithm=rbp"], "baseline", [0.9, 0.95])               # one epoch differs
    results, _ = alignment.load(tmp_path / "a.db")
    n, same, versions, quantized = alignment.identical_to(results, tmp_path / "same.db")
    assert (n, same, quantized) == (2, 1, False) and versions == ["?"]
