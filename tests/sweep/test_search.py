"""The design-space search (Optuna): trials are runs of the store, a killed search resumes without
retraining, pruning stops a run that cannot win, bad space files get one clear error, and the
search-vs-grid report measures fronts by their hypervolume."""
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lowbit_rbp.cli import main
from lowbit_rbp.core.runtime import Runtime
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.results.pareto import hypervolume, nondominated_ranks
from lowbit_rbp.results.search import (Pruner, journal_path, open_study, parse_objectives, run_search,
                                       train_grid)
from lowbit_rbp.results.store import Store
from lowbit_rbp.results.sweep import run_sweep

sys.path.insert(0, str(Path(__file__).parent))
import helper  # noqa: E402

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402

HELPER = str(Path(__file__).parent / "helper.py")
ONE = Runtime(threads=1)


def _search(store, trials, space=None, **kw):
    kw = {"data": helper.DATA_SPEC, "progress": False, "runtime": ONE, **kw}
    return run_search(space or helper.space(), store, helper.TINY_OBJECTIVES, trials, **kw)


def _study(store, space=None):
    return open_study(space or helper.space(), parse_objectives(helper.TINY_OBJECTIVES), journal_path(store),
                      create=False)


# --- Pareto arithmetic ------------------------------------------------------------------------
def test_hypervolume_by_hand():
    # 2-D staircase, ref (4, 4): (1,3) adds 3x1, (2,2) adds 2x1, (3,1) adds 1x1 -> 6.
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    # A dominated point and one outside the box add nothing.
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3), (5, 0)], (4, 4)) == pytest.approx(6.0)
    # 3-D: two boxes [0,2]x[0,1]x[0,1] (vol 2) and [0,1]x[0,2]x[0,2] (vol 4) overlapping in [0,1]^3 (vol 1).
    assert hypervolume([(0, 1, 1), (1, 0, 0)], (2, 2, 2)) == pytest.approx(2 + 4 - 1)
    assert hypervolume([], (1, 1)) == 0.0


def test_nondominated_ranks_and_pruner_rule():
    pts = [(1, 3), (2, 2), (3, 1), (2, 3), (3, 3), (4, 4)]
    assert nondominated_ranks(pts) == [0, 0, 0, 1, 2, 3]
    p = Pruner(eta=3, min_epochs=1)
    assert p.rungs(3) == (1,) and p.rungs(20) == (1, 3, 9) and p.rungs(1) == ()
    assert [e for e in range(1, 30) if p.is_rung(e)] == [1, 3, 9, 27]
    points = dict(zip("abcdef", pts))
    # 6 peers, eta 3: the best 2 by rank go on; both rank-0 places are taken by rank 0, so rank 0 only.
    assert p.judge("a", points) is None and p.judge("c", points) is None
    assert p.judge("d", points) == {"rank": 1, "kept_ranks": 0, "peers": 6, "eta": 3}
    assert p.judge("a", {"a": (5, 5)}) is None           # alone at a rung: goes on


# --- the search -------------------------------------------------------------------------------
def test_trials_are_store_runs_and_a_grid_answers_them(tmp_path):
    """A search over a space whose grid is in the store trains nothing: every trial is answered
    from the store by its config hash; a study larger than the space stops at the space."""
    small = helper.space(knobs={"formats.error": ["float32", "log:alpha=2,bits=2"],
                                "channel.feedback": ["glorot_normal", "sparse:n=1"]})
    store = tmp_path / "s.db"
    g = train_grid(small, store, data=helper.DATA_SPEC, progress=False, runtime=ONE)
    assert len(g.ran) == 4 and not g.failed
    s = _search(store, 10, space=small)
    assert s.trained == {} and len(s.reused) == 4 and s.size == 4 and "only 4" in s.note
    done = {t.user_attrs["config_hash"] for t in _study(store, small).get_trials() if t.state == TrialState.COMPLETE}
    with Store(store) as st:
        assert done == {r.config_hash for r in st.runs()} and st.counts() == {"finished": 4}


def test_pruning_stops_a_trial_that_cannot_win(tmp_path):
    """Two trials with equal costs (the learning rate costs nothing): the one that barely learns is
    dominated at the rung (epoch 1) and stopped there; trained in full it still loses."""
    space = helper.space(base={**helper.TINY_SPACE["base"], "formats": {"error": "float32"}},
                         knobs={"train.lr": [0.2, 1e-6]})
    store = tmp_path / "p.db"
    study = open_study(space, parse_objectives(helper.TINY_OBJECTIVES), journal_path(store))
    study.enqueue_trial({"train.lr": 0.2})
    study.enqueue_trial({"train.lr": 1e-6})
    s = _search(store, 2, space=space, pruner=Pruner(eta=2, min_epochs=1))
    states = {t.params["train.lr"]: t.state for t in _study(store, space).get_trials()}
    assert states == {0.2: TrialState.COMPLETE, 1e-6: TrialState.PRUNED}
    good, slow = (space.config({"train.lr": lr}).config_hash() for lr in (0.2, 1e-6))
    assert s.trained == {good: "finished", slow: "pruned"}
    with Store(store) as st:
        pruned = st.run(slow)
        assert pruned.status == "failed" and len(pruned.epochs) == 1 and pruned.epochs_planned == 3
        assert pruned.tags["pruned"] == {"search": s.study, "epoch": 1, "rank": 1, "kept_ranks": 0, "peers": 2,
                                         "eta": 2}
        assert len(st.epochs(good)) == 3
        at_rung = st.epochs(good)[0].test_acc
        assert pruned.epochs[0].test_acc < at_rung
        winner = st.run(good).test_acc
    from lowbit_rbp.report.tables import group, load_results, markdown_table
    results = load_results(store)
    table = markdown_table(group(results), results)        # reports name the pruned run as such
    assert "[1 pruned by a search]" in table and "unfinished" not in table
    # A sweep wants the pruned configuration: it is trained in full (from scratch), and loses.
    sw = run_sweep([space.config({"train.lr": 1e-6})], store, data=helper.DATA_SPEC, progress=False, runtime=ONE)
    assert sw.ran == {slow: "finished"}
    with Store(store) as st:
        full = st.run(slow)
        assert len(full.epochs) == 3 and "pruned" not in full.tags and full.test_acc < winner


def _finished_and_running(db: Path):
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        done = con.execute("SELECT COUNT(*) FROM runs WHERE status IN ('finished', 'failed')").fetchone()[0]
        part = con.execute("SELECT COUNT(*) FROM epochs e JOIN runs r USING(config_hash) "
                           "WHERE r.status='running'").fetchone()[0]
        con.close()
    except sqlite3.Error:
        return None
    return done >= 3 and part >= 1


def test_killed_search_resumes_without_repeating_finished_trials(tmp_path):
    db = tmp_path / "k.db"
    proc = subprocess.Popen([sys.executable, HELPER, str(db), "--search", "8", "--delay", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        import time
        t0 = time.time()
        while not _finished_and_running(db):
            assert proc.poll() is None and time.time() - t0 < 120, proc.communicate(timeout=5)
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store(db) as st:
        before = {r.config_hash: (r.status, r.started, len(r.epochs)) for r in st.runs()}
    settled = {h for h, (status, _, _) in before.items() if status in ("finished", "failed")}
    killed = [h for h, (status, _, _) in before.items() if status == "running"]
    assert len(settled) >= 3 and len(killed) == 1
    states = [t.state for t in _study(db).get_trials()]
    assert states.count(TrialState.RUNNING) == 1

    s = _search(db, 8)
    assert not set(s.trained) & settled            # nothing settled before the kill is trained again
    assert s.size == 8 and killed[0] in s.trained   # the killed trial's configuration is asked again first
    with Store(db) as st:
        after = {r.config_hash: (r.status, r.started, len(r.epochs)) for r in st.runs()}
    assert {h: after[h] for h in settled} == {h: before[h] for h in settled}
    assert after[killed[0]][0] in ("finished", "failed")
    trials = _study(db).get_trials()
    assert [t.state for t in trials].count(TrialState.FAIL) == 1     # the killed client's trial
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    counted = {t.user_attrs["config_hash"] for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert len(counted) == 8


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_parallel_search_prunes_runs_in_their_workers(tmp_path, executor):
    """Two worker processes (local, or a Dask cluster): decisions at the rung reach the workers, so a
    pruned run stops exactly there."""
    store = tmp_path / "d.db"
    kw = {"pruner": Pruner(eta=3, min_epochs=1), "sampler": "random"}
    if executor == "dask":
        distributed = pytest.importorskip("distributed")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
            s = _search(store, 9, executor="dask", client=client, **kw)
    else:
        s = _search(store, 9, runtime=Runtime(threads=1, workers=2), **kw)
    assert s.size == 9 and len(s.trained) == 9
    with Store(store) as st:
        runs = st.runs()
    for r in runs:
        assert len(r.epochs) == (1 if "pruned" in r.tags else 3)
        assert r.status == ("failed" if "pruned" in r.tags else "finished")
    pids = {r.machine["pid"] for r in runs}
    assert len(pids) == 2 and os.getpid() not in pids          # trained in the two workers
    assert list(s.trained.values()).count("pruned") == sum("pruned" in r.tags for r in runs) >= 1


# --- the report -------------------------------------------------------------------------------
def test_report_of_a_search_that_saw_the_whole_space_matches_the_grid(tmp_path):
    small = helper.space(knobs={"formats.error": ["float32", "log:alpha=2,bits=2"],
                                "formats.weights": ["float32", "fixed:w=8,f=6,round=stochastic"]})
    grid, search = tmp_path / "grid.db", tmp_path / "search.db"
    train_grid(small, grid, data=helper.DATA_SPEC, progress=False, runtime=ONE)
    _search(search, 4, space=small, pruner=None, sampler="random")
    from lowbit_rbp.report.search_report import grid_side, normaliser, normalised_hypervolume, search_side, \
        write_search_report
    objectives = parse_objectives(helper.TINY_OBJECTIVES)
    g, s = grid_side(small, grid, objectives), search_side(small, search, objectives)
    assert g.runs == s.runs == 4 and g.epochs == s.epochs == 12
    assert sorted(p.config_hash for p in g.front) == sorted(p.config_hash for p in s.front)
    ideal, nadir = normaliser(g.front)
    assert normalised_hypervolume(s.front, ideal, nadir) == pytest.approx(normalised_hypervolume(g.front, ideal,
                                                                                                 nadir))
    out = write_search_report(small, search, objectives, tmp_path / "r.md", grid_store=grid, command="test")
    text = out.read_text()
    assert "**100.00 %** of the grid front's hypervolume" in text and "100.0 % of the grid's 4" in text
    assert "- Code: runs' " in text and "; report from " in text        # the runs' code and the report's
    assert (tmp_path / "r.png").is_file()


# --- bad input --------------------------------------------------------------------------------
def test_bad_space_files_give_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\[knobs\]: unknown config field: got 'formats.eror'; allowed:.*"
                                          r"formats\.error"):
        helper.space(knobs={"formats.eror": ["float32"]})
    with pytest.raises(ConfigError, match=r"knob formats.error: empty list of candidates"):
        helper.space(knobs={"formats.error": []})
    with pytest.raises(ConfigError, match=r"knob train.lr: empty range: low 0.5 > high 0.1"):
        helper.space(knobs={"train.lr": {"low": 0.5, "high": 0.1}})
    with pytest.raises(ConfigError, match=r"knob formats.error = 'log:alpha=2,bits=0'.*bits"):
        helper.space(knobs={"formats.error": ["float32", "log:alpha=2,bits=0"]})
    with pytest.raises(ConfigError, match=r"channel.algorithm is set in \[base\] and is a knob"):
        helper.space(knobs={"channel.algorithm": ["srbp", "rbp"]})
    with pytest.raises(ConfigError, match=r"unknown range key: got 'hi'; allowed: low, high"):
        helper.space(knobs={"train.lr": {"low": 0.1, "hi": 0.5}})
    with pytest.raises(ConfigError, match=r"objective: got 'energy:min'; allowed: KEY\[:max\|min\] with KEY in "
                                          r"accuracy, energy_pj"):
        parse_objectives(["accuracy:max", "energy:min"])
    with pytest.raises(ConfigError, match=r"objective accuracy direction: got 'up'"):
        parse_objectives(["accuracy:up"])
    with pytest.raises(ConfigError, match=r"\[search\] trials: got '81'; allowed: an integer >= 1"):
        helper.space(search={"trials": "81"})
    with pytest.raises(ConfigError, match=r"\[search\]: unknown key: got 'budget'"):
        helper.space(search={"budget": 3})
    with pytest.raises(ConfigError, match=r"float range has no grid"):
        helper.space(knobs={"train.lr": {"low": 0.01, "high": 0.1, "log": True}}).grid()


def test_one_search_at_a_time_per_journal(tmp_path):
    from lowbit_rbp.results.search import _Lock
    store = tmp_path / "s.db"
    with _Lock(journal_path(store)):          # as a search running in another process holds it
        with pytest.raises(ConfigError, match=r"another search is using the journal .*s\.optuna\.log"):
            _search(store, 2)
    assert not store.exists()                 # refused before touching the store


def test_bad_space_on_the_command_line_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[base]\nchannel.algorithm = "srbp"\n[knobs]\n"formats.signal" = { low = 4, high = 2, '
                   'template = "log:alpha=2,bits={}" }\n')
    assert main(["search", str(bad), "--store", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: space " + str(bad) + " knob formats.signal: empty range: low 4 > high 2"]
    good = tmp_path / "good.toml"
    good.write_text('[knobs]\n"formats.error" = ["float32"]\n')
    assert main(["search", str(good), "--objective", "acc:max", "--store", str(tmp_path / "s.db")]) == 2
    assert "objective: got 'acc:max'" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()
