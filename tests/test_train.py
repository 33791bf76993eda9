"""The training loop: determinism, resume after a kill, divergence, and real-data accuracy floors."""
import json

import numpy as np
import pytest
import torch

from lowbit_rbp.learning import trainer as train_mod
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.learning.trainer import Trainer
from lowbit_rbp.results.runs import run_training, train

BASE = ["model.hidden=[10,8]", "train.epochs=3", "train.batch_size=10", "channel.algorithm=srbp"]


def cfg_of(*extra):
    return apply_overrides(RunConfig(), [*BASE, *extra])


def test_seed_fixes_everything(tiny_data):
    a, b = train(cfg_of(), tiny_data), train(cfg_of(), tiny_data)
    assert [r.test_loss for r in a.epochs] == [r.test_loss for r in b.epochs]
    c = train(cfg_of("train.seed=1"), tiny_data)
    assert [r.test_loss for r in a.epochs] != [r.test_loss for r in c.epochs]


def test_seed_streams_are_independent(tiny_data):
    """The data order does not change when only the feedback stream's consumer changes."""
    t1 = Trainer(cfg_of(), tiny_data)
    t2 = Trainer(cfg_of("channel.feedback='sparse:n=2'"), tiny_data)
    assert torch.equal(t1.net.W[0], t2.net.W[0])
    assert np.array_equal(t1.data_rng.permutation(50), t2.data_rng.permutation(50))


def test_learns_the_tiny_problem(tiny_data):
    res = train(cfg_of("train.epochs=20", "train.lr=0.5"), tiny_data)
    assert res.final.test_acc > 0.9


def test_results_file_and_resume_after_kill(tiny_data, tmp_path, monkeypatch):
    cfg = cfg_of("train.epochs=4")
    full = run_training(cfg, tmp_path / "full.jsonl", tiny_data, progress=False)

    calls = {"n": 0}
    real = Trainer.train_epoch

    def dying(self, progress=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed in the middle of epoch 3
        return real(self, progress)

    monkeypatch.setattr(Trainer, "train_epoch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, tmp_path / "resumed.jsonl", tiny_data, progress=False)
    lines = (tmp_path / "resumed.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2                     # header + the two finished epochs
    monkeypatch.setattr(Trainer, "train_epoch", real)
    resumed = run_training(cfg, tmp_path / "resumed.jsonl", tiny_data, progress=False)
    assert [r.test_loss for r in resumed.epochs] == [r.test_loss for r in full.epochs]
    recs = [json.loads(x) for x in (tmp_path / "resumed.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs[1:]] == [1, 2, 3, 4]
    assert not (tmp_path / "resumed.jsonl.ckpt").exists()
    # a finished file is not retrained; a different config is refused
    again = run_training(cfg, tmp_path / "resumed.jsonl", tiny_data, progress=False)
    assert [r.test_loss for r in again.epochs] == [r.test_loss for r in full.epochs]
    with pytest.raises(ConfigError, match="another config"):
        run_training(cfg_of("train.seed=9"), tmp_path / "resumed.jsonl", tiny_data, progress=False)


def test_divergence_stops_and_is_recorded(tiny_data, tmp_path):
    cfg = cfg_of("model.activation=linear", "train.lr=1e4", "train.epochs=5", "channel.algorithm=bp")
    res = run_training(cfg, tmp_path / "div.jsonl", tiny_data, progress=False)
    assert res.status == "diverged"
    assert len(res.epochs) < 5
    last = json.loads((tmp_path / "div.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "diverged"


def test_mnist_one_epoch_accuracy_floors(mnist):
    """Real data, paper net, one epoch on 20,000 examples: BP and SRBP learn, top-only lags."""
    accs = {}
    for alg in ("bp", "srbp", "top"):
        cfg = apply_overrides(RunConfig(), [f"channel.algorithm={alg}", "train.epochs=1", "train.train_subset=20000"])
        accs[alg] = train(cfg, mnist).final.test_acc
    assert accs["bp"] > 0.88
    assert accs["srbp"] > 0.85
    assert accs["top"] < accs["srbp"]


@pytest.mark.slow
def test_mnist_bp_five_epochs(mnist):
    cfg = apply_overrides(RunConfig(), ["channel.algorithm=bp", "train.epochs=5"])
    assert train(cfg, mnist).final.test_acc > 0.965


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu", "linear"])
def test_fused_fprime_product_equals_fprime_times_signal(activation):
    """``mul_fprime_`` (two fused ops for tanh/logistic) equals building f' and multiplying."""
    from lowbit_rbp.nets.mlp import fprime_from_output_, mul_fprime_from_output_, _activate_
    g = torch.Generator().manual_seed(3)
    o = torch.randn(37, 23, generator=g)
    _activate_(o, activation)
    r = torch.randn(37, 23, generator=g)
    expected = r.double() * fprime_from_output_(activation, o, torch.empty_like(o)).double()
    got = mul_fprime_from_output_(activation, r.clone(), o, torch.empty_like(o))
    assert torch.allclose(got.double(), expected, rtol=0, atol=1e-6)
    assert not torch.equal(got, r) or activation == "linear"


def test_tanh_and_in_place_softmax_match_float64():
    from lowbit_rbp.nets.mlp import _activate_, softmax_
    s = torch.randn(64, 130, generator=torch.Generator().manual_seed(4)) * 3
    t = s.clone()
    _activate_(t, "tanh")
    assert float((t.double() - s.double().tanh()).abs().max()) < 3.5e-7   # kernels.reference.tanh
    logits = s[:, :10] * 10
    p = logits.clone()
    assert softmax_(p) is p
    assert float((p.double() - logits.double().softmax(1)).abs().max()) < 1e-6


def test_epoch_scores_reduce_to_loss_and_accuracy_and_catch_nan():
    scores = train_mod.EpochScores(6, 2)
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    labels = torch.tensor([0, 0, 1])
    assert scores.record(0, probs)
    assert scores.record(3, probs.flip(1))
    loss, correct = scores.totals(torch.cat([labels, labels.flip(0)]))
    p_true = [0.7, 0.2, 0.4, 0.7, 0.8, 0.4]     # second minibatch: flipped columns, labels 1, 0, 0
    assert loss == pytest.approx(-sum(np.log(p_true)), rel=1e-6)
    assert correct == 3                          # predictions 0 1 0 | 1 0 1 against 0 0 1 | 1 0 0
    bad = probs.clone()
    bad[2, 1] = float("nan")
    assert not scores.record(0, bad)


def test_starting_numba_threads_keeps_torch_thread_count():
    """Numba's OpenMP pool, once started, resets the process's OpenMP thread count to all cores;
    a 1-thread sweep worker must stay at 1 torch thread (two workers ran 50x slower otherwise).
    A fresh process, since the pool starts only once per process."""
    import subprocess
    import sys
    code = ("from lowbit_rbp.core.runtime import Runtime\n"
            "import torch\n"
            "Runtime(threads=1).apply()\n"
            "import numba, numpy as np\n"
            "from kernels import dispatch\n"
            "dispatch.tanh_(np.zeros(dispatch.SERIAL_MAX_ACTIVATION * 2, np.float32))  # a parallel launch\n"
            "print(torch.get_num_threads(), numba.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"], out.stdout + out.stderr
