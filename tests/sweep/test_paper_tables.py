"""The Table 1 and quantization-semantics reports: cells computed from a store, beside the paper."""
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.report import semantics, table1
from lowbit_rbp.report.tables import load_results
from lowbit_rbp.results.store import Store
from lowbit_rbp.learning.trainer import EpochRecord


def _put(store, overrides, row, acc, status="finished"):
    cfg = apply_overrides(RunConfig(), overrides)
    assert store.claim(cfg, "t", tags={"row": row}) == "claimed"
    store.record_epoch(cfg.config_hash(), "t", EpochRecord(1, 0.1, 0.9, 0.2, acc, 0.1, 1.0,
                                                           "ok" if status == "finished" else "diverged"))
    store.finish(cfg.config_hash(), "t", status)


def _first_table(text):
    """{row: cells} of the first Markdown table in ``text``."""
    rows, seen = {}, False
    for line in text.splitlines():
        if line.startswith("| row"):
            if seen:
                break
            seen = True
        elif seen and line.startswith("| "):
            rows[line.split("|")[1].strip()] = [c.strip() for c in line.split("|")[2:-1]]
    return rows


def test_table1_cells_mean_sd_and_states(tmp_path):
    with Store(tmp_path / "s.db") as st:
        _put(st, ["channel.algorithm=srbp", "train.seed=0"], "baseline", 0.970)
        _put(st, ["channel.algorithm=srbp", "train.seed=1"], "baseline", 0.974)
        _put(st, ["channel.algorithm=asrbp"], "adaptive", 0.973)
        _put(st, ["channel.algorithm=bp", "model.activation=linear"], "qerror_3", 0.1, status="diverged")
        st.add_pending(apply_overrides(RunConfig(), ["channel.algorithm=rbp"]), {"row": "baseline"})
    text = table1.markdown(load_results(tmp_path / "s.db"), "cmd")
    rows = _first_table(text)
    assert rows["baseline"][4:6] == ["97.2 (0.3)", "97.2 (0.2)"]           # SRBP ours | paper
    assert rows["baseline"][2] == "[1 unfinished]"                        # RBP pending
    assert rows["adaptive"][4] == "97.3"                                  # ASRBP sits in the SRBP column
    assert rows["qerror_3"][0] == "[1 diverged, last test 10.0]"          # where it stopped
    assert rows["qupdate_1"][0] == "not run yet"


def test_semantics_ranks_by_distance_to_paper(tmp_path):
    with Store(tmp_path / "q.db") as st:
        # near the paper: BP 5-bit 97.6 exactly; far: 50
        _put(st, ["channel.algorithm=bp", "formats.error='log:alpha=2,bits=5'"], "before_clip_paper_5bit", 0.976)
        _put(st, ["channel.algorithm=bp", "formats.error='log:alpha=2,bits=5'", "train.seed=1"],
             "after_clip_paper_5bit", 0.50)
    results = load_results(tmp_path / "q.db")
    data = semantics.study(results)
    assert semantics.distance_to_paper(data["before_clip_paper"]) == 0.0
    assert abs(semantics.distance_to_paper(data["after_clip_paper"]) - 47.6) < 1e-9
    text = semantics.markdown(results, "cmd")
    assert text.index("| before_clip_paper |") < text.index("| after_clip_paper |")


def _cell(*acc):
    return {"acc": list(acc), "diverged": 0, "pending": 0, "seeds": set(range(len(acc))), "curves": []}


def test_table1_ordering_check_flags_and_spread():
    c = {("baseline", "bp"): _cell(97.9, 97.8), ("baseline", "rbp"): _cell(96.0, 96.2),
         ("baseline", "srbp"): _cell(96.8, 96.9), ("baseline", "top"): _cell(83.0, 83.5),
         # paper: RBP 96.3 (0.5) > SRBP 95.8 (0.2); ours SRBP ahead by ~1.7 with small sds: outside our spread
         ("sparse_2", "rbp"): _cell(95.4, 95.6), ("sparse_2", "srbp"): _cell(97.1, 97.3),
         # paper: SRBP 94.6 > RBP 90.3; ours RBP ahead by 0.2 with sds ~1.4: within our spread
         ("sparse_1", "rbp"): _cell(95.0, 97.0), ("sparse_1", "srbp"): _cell(95.3, 96.3),
         ("qerror_5", "bp"): _cell(97.9)}
    base = table1.ordering("baseline", c)
    assert base["status"] == "same"                      # the paper ties RBP and SRBP: not checked
    assert base["paper"] == "BP > RBP ≈ SRBP > Top only" and base["ours"] == "BP > SRBP > RBP > Top only"
    sp2 = table1.ordering("sparse_2", c)
    assert sp2["status"] == "differs" and len(sp2["pairs"]) == 1
    p = sp2["pairs"][0]
    assert (p["ours_ahead"], p["paper_ahead"]) == ("srbp", "rbp") and abs(p["gap"] - 1.7) < 1e-9
    assert not p["within"] and p["paper_within"]         # 0.5 <= sqrt(0.5^2 + 0.2^2)
    text = table1.check_text(sp2)
    assert "**differs**" in text and "outside our seeds' sd" in text and "within its sd" in text
    sp1 = table1.ordering("sparse_1", c)
    assert sp1["status"] == "differs" and sp1["pairs"][0]["within"]
    assert table1.ordering("qerror_5", c)["status"] == "incomplete"
    assert table1.ordering("qupdate_1", c)["status"] == "no results yet"


def test_table1_report_has_ordering_and_explanations(tmp_path):
    with Store(tmp_path / "s.db") as st:
        for seed, (b, r, s) in enumerate([(0.979, 0.960, 0.968), (0.978, 0.962, 0.969)]):
            _put(st, ["channel.algorithm=bp", f"train.seed={seed}"], "baseline", b)
            _put(st, ["channel.algorithm=rbp", f"train.seed={seed}"], "baseline", r)
            _put(st, ["channel.algorithm=srbp", f"train.seed={seed}"], "baseline", s)
            _put(st, ["channel.algorithm=rbp", "channel.feedback='sparse:n=2'", f"train.seed={seed}"], "sparse_2",
                 0.955)
            _put(st, ["channel.algorithm=srbp", "channel.feedback='sparse:n=2'", f"train.seed={seed}"], "sparse_2",
                 0.972)
    text = table1.markdown(load_results(tmp_path / "s.db"), "cmd")
    assert "## Ordering check" in text and "## Differences explained" in text
    assert "| sparse_2 | RBP > SRBP | SRBP > RBP | **differs**" in text
    assert "| baseline | BP > RBP ≈ SRBP > Top only | BP > SRBP > RBP | same (Top only not run yet) |" in text
    assert "**Quantized update 1 bit** (`qupdate_1`). No results yet" in text
    assert "Ours - paper: RBP -0.8, SRBP +1.4." in text
    for row in table1.MNIST_TABLE1:               # every row has an explanation
        assert f"(`{row}`)" in text and table1.EXPLAIN[row]["setup"]


def _group(row, alg, accs, label=None, feedback=None, epochs=1):
    """A group of finished runs (one per accuracy %) of ``alg`` tagged ``row``."""
    from lowbit_rbp.results.records import Group, RunRecord
    over = [f"channel.algorithm={alg}", f"train.epochs={epochs}"] + ([f"channel.feedback={feedback}"] if feedback else [])
    runs = [RunRecord(apply_overrides(RunConfig(), [*over, f"train.seed={i}"]), "finished",
                      [EpochRecord(epochs, 0.1, 0.9, 0.2, a / 100, 0.1, 100.0)], {"row": row}, label or alg.upper())
            for i, a in enumerate(accs)]
    return Group(runs, label or alg.upper())


def test_experiment_ordering_uses_the_table1_check_on_cifar_rows():
    from lowbit_rbp.report.experiment import ordering
    groups = [_group("baseline", "bp", [57.0, 55.0]), _group("baseline", "rbp", [45.0, 46.0]),
              _group("baseline", "srbp", [44.0, 44.0]), _group("baseline", "top", [32.0, 33.0]),
              _group("sparse_8", "rbp", [37.0]), _group("sparse_8", "srbp", [43.0]),
              # a second SRBP variant of the row (e.g. "per sender"): not compared
              _group("sparse_8", "srbp", [20.0], "SRBP other", "sparse:n=8,per=sender"),
              _group("sparse_2", "srbp", [40.0])]
    lines = ordering(groups, "CIFAR10_TABLE1")
    assert len(lines) == 3
    base, sp8, sp2 = lines
    # RBP 45.5 vs SRBP 44.0: gap 1.5; sds 0.707 and 0 -> combined 0.7, so the gap is outside it.
    assert base.startswith("baseline: ours BP > RBP > SRBP > Top only; paper BP > SRBP > RBP > Top only")
    assert "RBP ahead of SRBP by 1.5, outside our seeds' sd (0.7)" in base
    assert "SRBP by 2.5" in base
    assert sp8.endswith(": same")
    assert "only one algorithm has results (RBP not run yet)" in sp2


def test_experiment_report_of_another_length_gets_its_own_file(tmp_path):
    """A 100-epoch foundation run writes mnist_foundation_100ep.md beside (not over) the default."""
    from lowbit_rbp.report import experiment
    from lowbit_rbp.results.sweep import load_sweep
    sweep = load_sweep("foundation")
    assert experiment.report_stem(sweep, 20, 20) == "mnist_foundation"
    assert experiment.report_stem(sweep, 100, 20) == "mnist_foundation_100ep"
    groups = [_group("baseline", "bp", [98.0, 97.0], "BP", epochs=100)]
    rows = [experiment.row_dict(g, "MNIST_TABLE1") for g in groups]
    assert rows[0]["mean"] == 97.5 and rows[0]["paper"] == (97.9, 0.1)
    path = experiment.write_report(sweep, groups, tmp_path, "cmd", epochs=100, default_epochs=20)
    assert path.name == "mnist_foundation_100ep.md" and (tmp_path / "mnist_foundation_100ep.json").exists()
    text = path.read_text()
    assert "| BP | 97.50 (0.71) | 98.0, 97.0 | 97.9 (0.1) | 100 |" in text
    assert "at the paper's length they sit lower" in text and "may sit below the paper" not in text
    short = experiment.write_report(sweep, groups, tmp_path, "cmd", epochs=20, default_epochs=20)
    assert short.name == "mnist_foundation.md"
    assert "may sit below the paper" in short.read_text() and "at the paper's length" not in short.read_text()


def test_table1_cells_hold_only_the_sweeps_runs_and_rank_diverged_cells_last(tmp_path):
    """A run another sweep tags with a Table 1 row (the foundation's per-sender sparse-1) stays out of
    the cell; a cell whose every run diverged ranks at its last accuracy and is named diverged."""
    with Store(tmp_path / "s.db") as st:
        for seed in (0, 1):
            _put(st, ["channel.algorithm=srbp", "channel.feedback='sparse:n=1'", f"train.seed={seed}"], "sparse_1",
                 0.970)
            _put(st, ["channel.algorithm=rbp", "channel.feedback='sparse:n=1'", f"train.seed={seed}"], "sparse_1",
                 0.960)
            _put(st, ["channel.algorithm=srbp", "channel.feedback='sparse:n=1,per=sender'", f"train.seed={seed}"],
                 "sparse_1", 0.900)
            _put(st, ["channel.algorithm=bp", "formats.error='log:alpha=2,bits=1'", f"train.seed={seed}"],
                 "qerror_1", 0.113, status="diverged")
            _put(st, ["channel.algorithm=rbp", "formats.error='log:alpha=2,bits=1'", f"train.seed={seed}"],
                 "qerror_1", 0.80)
    results = load_results(tmp_path / "s.db")
    rows = {r.config_hash: r.row for r in results if "per=sender" not in r.feedback}
    text = table1.markdown(results, "cmd", rows=rows)
    table = _first_table(text)
    assert table["sparse_1"][4] == "97.0 (0.0)"                  # the per-sender 90.0 runs left out
    assert "97.0 (0.0)" not in table1.markdown(results, "cmd").split("| sparse_1 |")[1].split("\n")[0]
    assert table["qerror_1"][0] == "[2 diverged, last test 11.3]"
    o = table1.ordering("qerror_1", table1.cells(table1.table_runs(results, rows)))
    assert o["ours"] == "RBP > BP (diverged)" and o["status"] == "differs" and o["diverged"] == ["bp"]
    assert "our BP diverged on every seed" in table1.check_text(o)
    assert "BP: all 2 runs diverged" in text and "No results yet for BP" not in text
