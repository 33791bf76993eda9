"""One description, read by the trainer and the cost model alike: for every algorithm and every
combination of channel options, the two accept the same configurations and refuse the others with
the same message (issue: the cost model once priced per-weight RBP, which training refuses)."""
from dataclasses import replace

import pytest

from hw_models.errors import CostModelError
from lowbit_rbp.core.algorithms import NAMES
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.cost import cost_report
from lowbit_rbp.errors import LowbitError
from lowbit_rbp.learning.trainer import Trainer
from tinydata import TinyData, TinyImages

FEEDBACK = ("glorot_normal", "sparse:n=2", "lowrank:r=2", "lowrank:r=50", "sign_concordant")
MLP_OPTIONS = [{"per_weight": False}, {"per_weight": True}]
CONV_OPTIONS = [{}, {"update": "log:alpha=0.5,bits=3"}]


def outcome(fn):
    try:
        fn()
    except (LowbitError, CostModelError) as exc:
        return f"refused: {exc}"
    return "accepted"


def both(cfg, data):
    """(trainer's outcome, cost model's outcome) for ``cfg`` built without validation, on ``data``."""
    shape = data.input_shape if hasattr(data, "input_shape") else (data.x_train.shape[1],)
    trained = outcome(lambda: Trainer(cfg, data))
    priced = outcome(lambda: cost_report(cfg, input_shape=shape, n_classes=data.n_classes))
    return trained, priced


def raw_config(base, algorithm, feedback, per_weight=False, update="float32"):
    """A config assembled directly (as a caller could), so that neither path has validated it yet."""
    cfg = apply_overrides(RunConfig(), base)
    return replace(cfg, channel=replace(cfg.channel, algorithm=algorithm, feedback=feedback, per_weight=per_weight),
                   formats=replace(cfg.formats, update=update))


@pytest.mark.parametrize("algorithm", NAMES)
def test_mlp_trainer_and_cost_model_agree(algorithm):
    data = TinyData()
    seen = set()
    for feedback in FEEDBACK:
        for opt in MLP_OPTIONS:
            cfg = raw_config(["model.hidden=[6,5]", "train.batch_size=20"], algorithm, feedback, **opt)
            trained, priced = both(cfg, data)
            assert trained == priced, (algorithm, feedback, opt, trained, priced)
            seen.add(trained.split(":")[0])
    assert "accepted" in seen            # every algorithm trains with some feedback


@pytest.mark.parametrize("algorithm", NAMES)
def test_conv_trainer_and_cost_model_agree(algorithm):
    data = TinyImages()
    for feedback in ("glorot_normal", "lowrank:r=2", "sparse:n=2"):
        for opt in CONV_OPTIONS:
            cfg = raw_config(["model.dataset=cifar10-subset", "model.conv=[4,4]", "model.hidden=[6]",
                              "train.batch_size=8"], algorithm, feedback, **opt)
            trained, priced = both(cfg, data)
            assert trained == priced, (algorithm, feedback, opt, trained, priced)


def test_the_refusals_are_real():
    """The agreement above is not two paths that accept everything: these are refused by both."""
    data = TinyData()
    refused = {
        ("rbp", "glorot_normal", True): "per_weight needs a skipped random channel",
        ("srbp", "sign_concordant", False): "sign_concordant needs a layer-to-layer random channel",
        ("srbp", "lowrank:r=50", False): "lowrank r (channel into weight layer 0): got 50; allowed: 1..4",
    }
    for (alg, fb, pw), words in refused.items():
        trained, priced = both(raw_config(["model.hidden=[6,5]"], alg, fb, pw), data)
        assert trained == priced and trained.startswith("refused") and words in trained, trained
    conv = raw_config(["model.dataset=cifar10-subset", "model.conv=[4,4]", "model.hidden=[6]"], "sbp",
                      "glorot_normal")
    trained, priced = both(conv, TinyImages())
    assert trained == priced and "sbp is defined for MLP models only" in trained
