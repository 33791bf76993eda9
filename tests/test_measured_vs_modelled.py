"""Measured = modelled: the operations the real training loop executes in the learning channel
equal the cost model's counts, per layer, for each algorithm, feedback and format."""
import numpy as np
import pytest

from lowbit_rbp.cost import channel_op_counts
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.learning.instrument import OpTally
from lowbit_rbp.learning.trainer import Trainer

CASES = [
    ["channel.algorithm=bp"],
    ["channel.algorithm=rbp"],
    ["channel.algorithm=srbp"],
    ["channel.algorithm=sbp"],
    ["channel.algorithm=srbp", "channel.fprime=false"],
    ["channel.algorithm=rbp", "channel.feedback='sparse:n=2'"],
    ["channel.algorithm=srbp", "channel.feedback='sparse:n=1'"],
    ["channel.algorithm=srbp", "channel.feedback='sparse:n=2,per=sender'"],
    ["channel.algorithm=srbp", "formats.error='log:alpha=2,bits=1'"],
    ["channel.algorithm=rbp", "formats.error='log:alpha=2,bits=3'", "formats.signal='log:alpha=2,bits=3'"],
    ["channel.algorithm=bp", "formats.error='log:alpha=2,bits=5'", "formats.signal='log:alpha=2,bits=5'",
     "formats.quantize_at=after_fprime"],
]
# Not here: lowrank. The model costs it as two factors (s*r + r*n products), the trainer multiplies
# by the composed rank-r matrix (s*n products): the same numbers, a different circuit.


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: " ".join(o))
def test_channel_counts_measured_equal_modelled(tiny_data, overrides):
    cfg = apply_overrides(RunConfig(), ["model.hidden=[10,9,8]", "train.epochs=1", "train.batch_size=20",
                                        *overrides])
    tr = Trainer(cfg, tiny_data)
    tr.channel.tally = tally = OpTally()
    tr.train_epoch()
    steps = tiny_data.x_train.shape[0] // 20
    matrices = {k: b.numpy() for k, b in tr.channel.B.items()} or None
    model = {c.k: c for c in channel_op_counts(cfg, feedback_matrices=matrices, batch_size=20,
                                               input_shape=tiny_data.x_train.shape[1:],
                                               n_classes=tiny_data.n_classes)}
    assert sorted(model) == sorted(tally.layers)
    for k, measured in tally.layers.items():
        m = model[k]
        assert measured.steps == steps
        got = {"mults": measured.mults, "gated": measured.gated, "sign_flips": measured.sign_flips,
               "shifts": measured.shifts, "fprime_mults": measured.fprime_mults}
        want = {"mults": m.mults * steps, "gated": m.gated * steps, "sign_flips": m.sign_flips * steps,
                "shifts": m.shifts * steps, "fprime_mults": m.fprime_mults * steps}
        assert got == pytest.approx(want), (k, got, want)
