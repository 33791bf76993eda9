"""Measured = modelled: the operations the real training loop executes in the learning channel
equal the cost model's counts, per layer, for each algorithm, feedback and format."""
import numpy as np
import pytest

from lowbit_rbp.cost import channel_op_counts
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.learning.instrument import OpTally
from lowbit_rbp.learning.trainer import Trainer

BIT_TRUE = ["formats.error=fixed:w=5,f=3", "formats.signal=fixed:w=5,f=3", "formats.quantize_at=after_fprime",
            "formats.channel_accumulator=fixed:w=20,f=11", "formats.weights=fixed:w=10,f=8,round=stochastic",
            "formats.activations=fixed:w=8,f=7"]
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
    # the bit-true channel: integer products into a fixed accumulator, sparse binary by index lists
    [*BIT_TRUE, "channel.algorithm=rbp", "formats.feedback=fixed:w=6,f=4"],
    [*BIT_TRUE, "channel.algorithm=srbp", "channel.feedback=sparse:n=2"],
    [*BIT_TRUE, "channel.algorithm=bp", "formats.fprime_lut=16"],
    # low rank: two factors where that is the cheaper circuit (layers 1-2: 9x10 with r=2), the
    # composed matrix where it is not (the top link, 4 x 8 with r=3: 3 x 12 > 32)
    ["channel.algorithm=rbp", "channel.feedback=lowrank:r=2"],
    ["channel.algorithm=srbp", "channel.feedback=lowrank:r=3"],
]


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


@pytest.mark.parametrize("algorithm", ["rbp", "srbp"])
def test_dropped_work_counted_as_not_done(tiny_data, algorithm):
    """Learning-channel dropout: a dropped receiver's products and f' are not done. The model counts
    the expected fraction (1 - p); the trainer's actual masks land within a few binomial sds."""
    p = 0.3
    cfg = apply_overrides(RunConfig(), ["model.hidden=[10,9,8]", "train.epochs=1", "train.batch_size=20",
                                        f"channel.algorithm={algorithm}", f"channel.dropout={p}"])
    tr = Trainer(cfg, tiny_data)
    tr.channel.tally = tally = OpTally()
    tr.train_epoch()
    steps = tiny_data.x_train.shape[0] // 20
    matrices = {k: b.numpy() for k, b in tr.channel.B.items()}
    model = {c.k: c for c in channel_op_counts(cfg, feedback_matrices=matrices, batch_size=20,
                                               input_shape=tiny_data.x_train.shape[1:],
                                               n_classes=tiny_data.n_classes)}
    for k, measured in tally.layers.items():
        m = model[k]
        nnz_col = (matrices[k] != 0).sum(axis=0)
        # each (example, receiver) is kept with probability 1 - p: the products' binomial sd
        sd = np.sqrt(steps * 20 * p * (1 - p) * float((nnz_col.astype(float) ** 2).sum()))
        assert abs(measured.mults - m.mults * steps) < 5 * sd, (k, measured.mults, m.mults * steps, sd)
        receivers = matrices[k].shape[1]
        sd_f = np.sqrt(steps * 20 * receivers * p * (1 - p))
        assert abs(measured.fprime_mults - m.fprime_mults * steps) < 5 * sd_f
        assert measured.mults < m.mults * steps / (1 - p)          # some work was skipped
