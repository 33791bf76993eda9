"""The Table 1 and quantization-semantics reports: cells computed from a store, beside the paper."""
from lowbit_rbp.config import RunConfig, apply_overrides
from lowbit_rbp.report import semantics, table1
from lowbit_rbp.report.tables import load_results
from lowbit_rbp.store import Store
from lowbit_rbp.train import EpochRecord


def _put(store, overrides, row, acc, status="finished"):
    cfg = apply_overrides(RunConfig(), overrides)
    assert store.claim(cfg, "t", tags={"row": row}) == "claimed"
    store.record_epoch(cfg.config_hash(), "t", EpochRecord(1, 0.1, 0.9, 0.2, acc, 0.1, 1.0,
                                                           "ok" if status == "finished" else "diverged"))
    store.finish(cfg.config_hash(), "t", status)


def test_table1_cells_mean_sd_and_states(tmp_path):
    with Store(tmp_path / "s.db") as st:
        _put(st, ["channel.algorithm=srbp", "train.seed=0"], "baseline", 0.970)
        _put(st, ["channel.algorithm=srbp", "train.seed=1"], "baseline", 0.974)
        _put(st, ["channel.algorithm=asrbp"], "adaptive", 0.973)
        _put(st, ["channel.algorithm=bp", "model.activation=linear"], "qerror_3", 0.1, status="diverged")
        st.add_pending(apply_overrides(RunConfig(), ["channel.algorithm=rbp"]), {"row": "baseline"})
    text = table1.markdown(load_results(tmp_path / "s.db"), "cmd")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| row")}
    assert rows["baseline"][4:6] == ["97.2 (0.3)", "97.2 (0.2)"]           # SRBP ours | paper
    assert rows["baseline"][2] == "[1 unfinished]"                        # RBP pending
    assert rows["adaptive"][4] == "97.3"                                  # ASRBP sits in the SRBP column
    assert rows["qerror_3"][0] == "[1 diverged]"
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
