"""Config parsing and validation, the feedback factory, number-format specs."""
import numpy as np
import pytest

from lowbit_rbp.core.config import RunConfig, apply_overrides, from_dict, load_config
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.core.feedback import build_feedback, parse_feedback_spec
from lowbit_rbp.core.formats import FixedPoint, LogQuant, parse_format


def test_defaults_are_the_paper_protocol():
    cfg = RunConfig().validate()
    assert cfg.model.hidden == (100, 100, 100, 100)
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.lr_decay) == (100, 0.1, 1e-6)


def test_toml_file_and_overrides(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('[channel]\nalgorithm = "srbp"\nfeedback = "sparse:n=2"\n[train]\nepochs = 3\n')
    cfg = load_config(p, ["train.seed=4", "channel.fprime=false"])
    assert (cfg.channel.algorithm, cfg.channel.feedback.spec, cfg.train.epochs, cfg.train.seed) == ("srbp", "sparse:n=2", 3, 4)
    assert cfg.channel.fprime is False


def test_config_hash_tracks_results_not_names():
    a = RunConfig()
    assert a.config_hash() == apply_overrides(a, ["name='x'"]).config_hash()
    # the runtime is not part of a config at all: a run file or override naming it says where it went
    with pytest.raises(ConfigError, match="--threads"):
        apply_overrides(a, ["threads=1"])
    with pytest.raises(ConfigError, match="--backend"):
        from_dict({"backend": "numba"})
    assert a.config_hash() != apply_overrides(a, ["train.seed=1"]).config_hash()


@pytest.mark.parametrize("overrides, words", [
    (["channel.algorithm=foo"], ["foo", "bp, rbp, srbp"]),
    (["channel.feedback=gaussian"], ["gaussian", "glorot_normal", "sparse"]),
    (["channel.feedback='sparse:k=2'"], ["'k'", "n"]),
    (["channel.feedback='lowrank:r=0'"], ["0", ">= 1"]),
    (["model.hidden=[100,-5]"], ["-5", ">= 1"]),
    (["train.colour=red"], ["train.colour", "train.epochs"]),
    (["chanel.algorithm=bp"], ["chanel.algorithm", "channel"]),
    (["model.activation=softsign"], ["softsign", "tanh"]),
    (["channel.dropout=1.0"], ["1.0", "[0, 1)"]),
    (["formats.error='log:alpha=2,bits=0'"], ["formats.error", "bits", "0", ">= 1"]),
    (["formats.signal='fixed:w=4,f=6'"], ["frac=6", "word=4"]),
    (["formats.signal='fixed:w=8,f=4,round=up'"], ["up", "nearest_even"]),
    (["formats.error='log:alpha=-1,bits=3'"], ["-1", "> 0"]),
    (["train.epochs=0"], ["train.epochs", "0"]),
    (["channel.fixed_top=5"], ["5", "0..4"]),
    (["model.dataset=imagenet"], ["imagenet", "mnist"]),
])
def test_bad_config_names_value_and_allowed(overrides, words):
    with pytest.raises(ConfigError) as exc:
        apply_overrides(RunConfig(), overrides)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[channel\nalgorithm=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="type int"):
        from_dict({"train": {"epochs": "many"}})


@pytest.mark.parametrize("n", [1, 2, 8])
def test_sparse_factory_draws_expected_nonzeros(n):
    rng = np.random.default_rng(0)
    sender, receiver = 100, 4000
    m = build_feedback(f"sparse:n={n}", (sender, receiver), rng)
    nnz_per_receiver = (m != 0).sum(axis=0)
    # Binomial(100, n/100) per receiving neuron: the mean over 4000 neurons is within 5 standard errors.
    se = np.sqrt(n * (1 - n / sender) / receiver)
    assert abs(nnz_per_receiver.mean() - n) < 5 * se
    assert set(np.unique(m)) <= {0.0, 1.0 / n}          # binary, scaled 1/n for RBP
    skipped = build_feedback(f"sparse:n={n}", (10, 50), rng, skipped=True)
    assert set(np.unique(skipped)) <= {0.0, 1.0}        # SRBP: unscaled


def test_sparse_per_sender_counts_outgoing_connections():
    m = build_feedback("sparse:n=2,per=sender", (10, 3000), np.random.default_rng(0), skipped=True)
    per_sender = (m != 0).sum(axis=1)            # each of the 10 senders reaches ~2 of 3000
    assert abs(per_sender.mean() - 2) < 5 * np.sqrt(2 / 10)
    assert (build_feedback("sparse:n=100,per=sender", (10, 100), np.random.default_rng(0), skipped=True) == 1).all()


def test_sparse_all_and_none():
    rng = np.random.default_rng(0)
    assert (build_feedback("sparse:n=10", (10, 30), rng, skipped=True) == 1).all()
    assert (build_feedback("sparse:n=0", (10, 30), rng, skipped=True) == 0).all()


def test_lowrank_has_the_requested_rank():
    m = build_feedback("lowrank:r=3", (50, 40), np.random.default_rng(0))
    assert np.linalg.matrix_rank(m.astype(np.float64), tol=1e-4) == 3


def test_glorot_statistics_and_mean():
    rng = np.random.default_rng(0)
    m = build_feedback("glorot_normal", (200, 300), rng)
    assert abs(m.std() - np.sqrt(2 / 500)) < 0.002 and abs(m.mean()) < 0.002
    shifted = build_feedback("glorot_uniform:mean=0.5", (200, 300), rng)
    assert abs(shifted.mean() - 0.5) < 0.01
    assert abs(shifted.max() - 0.5 - np.sqrt(6 / 500)) < 0.01


def test_feedback_is_seeded():
    a = build_feedback("glorot_normal", (5, 6), np.random.default_rng(3))
    b = build_feedback("glorot_normal", (5, 6), np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_format_specs_round_trip():
    for spec in ["float32", "log:alpha=2,bits=3,underflow=stochastic,levels=paper",
                 "log:alpha=0.5,bits=5,underflow=flush,levels=full",
                 "fixed:w=8,f=6", "fixed:w=8,f=6,signed=0,round=stochastic,overflow=wrap"]:
        assert parse_format(spec).spec == spec
    assert parse_format("log:alpha=2,bits=3") == LogQuant(alpha=2.0, bits=3, underflow="stochastic", levels="paper")
    assert parse_format("fixed:w=8,f=6,round=stochastic") == FixedPoint(8, 6, rounding="stochastic")
    assert parse_feedback_spec("sparse:n=2").spec == "sparse:n=2"


def test_format_fields_are_canonical_so_equal_formats_hash_equally():
    short = from_dict({"formats": {"error": "log:alpha=2,bits=3"}})
    full = from_dict({"formats": {"error": "log:alpha=2.0,bits=3,levels=paper,underflow=stochastic"}})
    clip = from_dict({"formats": {"error": "log:alpha=2,bits=3,underflow=clip"}})
    assert short.formats.error.spec == "log:alpha=2,bits=3,underflow=stochastic,levels=paper"
    assert short.to_dict()["formats"]["error"] == short.formats.error.spec
    assert short.config_hash() == full.config_hash() != clip.config_hash()
