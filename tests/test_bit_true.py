"""The bit-true learning channel (formats.channel_accumulator fixed point): one training step of a
tiny net through the training loop equals, bit for bit, the datapath written out with the NumPy
reference kernels (lowbit_rbp.core.datapath states it): dense fixed-point feedback, sparse binary
feedback by index lists, log-quantized errors, BP through the stored weights, f' from a lookup
table, and accumulators narrow enough that saturation and wrap-around actually happen."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from kernels import reference as ref
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.learning.trainer import Trainer

BATCH = 16
BASE = ["model.hidden=[9,8,7]", f"train.batch_size={BATCH}", f"train.train_subset={BATCH}", "train.lr=0.5",
        "train.lr_decay=0", "formats.quantize_at=after_fprime", "formats.activations=fixed:w=8,f=7",
        "formats.weights=fixed:w=10,f=8,round=stochastic"]
CASES = {
    "rbp dense fixed feedback": ["channel.algorithm=rbp", "formats.feedback=fixed:w=6,f=4",
                                 "formats.error=fixed:w=5,f=3", "formats.signal=fixed:w=5,f=3",
                                 "formats.channel_accumulator=fixed:w=16,f=7"],
    "srbp sparse binary, log error": ["channel.algorithm=srbp", "channel.feedback=sparse:n=2",
                                      "formats.error=log:alpha=1,bits=3,underflow=flush",
                                      "formats.signal=fixed:w=6,f=4", "formats.channel_accumulator=fixed:w=10,f=2"],
    "bp through stored weights, f' table": ["channel.algorithm=bp", "formats.error=fixed:w=5,f=3",
                                            "formats.signal=fixed:w=5,f=3,round=stochastic",
                                            "formats.channel_accumulator=fixed:w=20,f=11", "formats.fprime_lut=16",
                                            "formats.fprime=fixed:w=6,f=5"],
    # Sparse-3 RBP without the 1/n scale sums about 3 sent signals per receiver into an accumulator
    # that holds each one (4 bits, [-1, 0.875]) but not always their sum: saturation or wrap-around
    # must happen (test_saturation_and_wrap_actually_happen).
    "rbp saturating": ["channel.algorithm=rbp", "channel.feedback=sparse:n=3,scale=one", "formats.error=fixed:w=4,f=3",
                       "formats.signal=fixed:w=4,f=3", "formats.channel_accumulator=fixed:w=4,f=3"],
    "rbp wrapping": ["channel.algorithm=rbp", "channel.feedback=sparse:n=3,scale=one", "formats.error=fixed:w=4,f=3",
                     "formats.signal=fixed:w=4,f=3", "formats.channel_accumulator=fixed:w=4,f=3,overflow=wrap"],
}


def trainer(tiny_data, overrides):
    return Trainer(apply_overrides(RunConfig(), [*BASE, *overrides]), tiny_data)


def reference_signals(tr, acts, targets):
    """R of every layer by the datapath's definition, from the forward outputs ``acts``."""
    cfg, ch, net = tr.cfg, tr.channel, tr.net
    f, seed, L = cfg.formats, cfg.train.seed, net.n_layers
    err = ref.quantize(targets - acts[-1], f.error, seed=seed * 4 + 1, counter=0)
    R = {L - 1: err}
    counter = 0
    table = ref.fprime_table(net.activation, f.fprime_lut, f.fprime if f.fprime.kind != "float" else None) \
        if f.fprime_lut else None
    for k in reversed(range(L - 1)):
        src = R[ch.source(k)]
        B = ch.matrix(k, net).numpy()
        if ch.datapath.binary:
            J = ref.fixed_sparse_product(src, ref.binary_to_index_lists(B), f.channel_accumulator)
        else:
            J = ref.fixed_product(src, B, f.channel_accumulator)
        o = acts[k + 1]
        fp = ref.fprime_lut(o, table) if table is not None else np.float32(1) - o * o     # tanh: 1 - O^2
        fp = ref.quantize(fp, f.fprime, seed=seed * 4 + 8, counter=0) if table is None else fp
        R[k] = ref.fixed_scale_round(J, fp, f.signal, seed=seed * 4 + 2, counter=counter)
        counter += J.size
    return R


def one_step(tr):
    """Train ``tr``'s one minibatch (train_subset = batch); returns the state before it (a copy),
    the forward outputs of that minibatch and the reference signals, from the copy."""
    twin = copy.deepcopy(tr)
    order = np.random.default_rng(0)
    order.bit_generator.state = twin.data_rng.bit_generator.state
    idx = torch.from_numpy(order.permutation(BATCH))
    x, t = twin.x_train[idx], twin.targets_train[idx]
    acts = [a.numpy().copy() for a in twin.net.forward(x, twin.net.new_activations(BATCH))]
    R = reference_signals(twin, acts, t.numpy())
    tr.train_epoch()
    return twin, acts, R


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_channel_signals_equal_the_reference_datapath(tiny_data, case):
    tr = trainer(tiny_data, CASES[case])
    x, t = tr.x_train[:BATCH], tr.targets_train[:BATCH]
    acts = tr.net.forward(x, tr.net.new_activations(BATCH))
    want = reference_signals(tr, [a.numpy().copy() for a in acts], t.numpy())
    got = tr.channel.signals(tr.net, acts, t)
    for k, r in want.items():
        assert np.array_equal(got[k].numpy().view(np.int32), r.view(np.int32)), (case, k)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_training_step_equals_the_reference_datapath(tiny_data, case):
    """One minibatch through the training loop against the reference: the signals above, each
    layer's update R^T O (exact: both on grids, every sum below 2^24 codes) and the stored
    weights' one rounding of W + lr/B G (``add_quantize``)."""
    tr = trainer(tiny_data, CASES[case])
    twin, acts, R = one_step(tr)
    f, seed, scale = tr.cfg.formats, tr.cfg.train.seed, tr.cfg.train.lr / BATCH
    counter = sum(w.numel() + b.numel() for w, b in zip(twin.net.W, twin.net.b))   # the initial rounding
    for k in range(tr.net.n_layers):
        G = (R[k].astype(np.float64).T @ acts[k].astype(np.float64)).astype(np.float32)
        gb = R[k].astype(np.float64).sum(axis=0).astype(np.float32)
        W = ref.add_quantize(twin.net.W[k].numpy(), G, scale, f.weights, seed=seed * 4 + 5, counter=counter)
        counter += W.size
        b = ref.add_quantize(twin.net.b[k].numpy(), gb, scale, f.weights, seed=seed * 4 + 5, counter=counter)
        counter += b.size
        assert np.array_equal(tr.net.W[k].numpy(), W), (case, k)
        assert np.array_equal(tr.net.b[k].numpy(), b), (case, k)


def test_saturation_and_wrap_actually_happen(tiny_data):
    """The narrow-accumulator cases are not vacuous: their sums leave the accumulator's range, so the
    results differ from a wide accumulator's (saturated: clamped; wrapped: modulo 2^8)."""
    for case, wide in (("rbp saturating", "fixed:w=16,f=3"), ("rbp wrapping", "fixed:w=16,f=3,overflow=wrap")):
        tr = trainer(tiny_data, CASES[case])
        acts = tr.net.forward(tr.x_train[:BATCH], tr.net.new_activations(BATCH))
        narrow = reference_signals(tr, [a.numpy().copy() for a in acts], tr.targets_train[:BATCH].numpy())
        wide_tr = trainer(tiny_data, [*CASES[case][:-1], f"formats.channel_accumulator={wide}"])
        acts_w = wide_tr.net.forward(wide_tr.x_train[:BATCH], wide_tr.net.new_activations(BATCH))
        full = reference_signals(wide_tr, [a.numpy().copy() for a in acts_w], wide_tr.targets_train[:BATCH].numpy())
        assert any(not np.array_equal(narrow[k], full[k]) for k in narrow if k < tr.net.n_layers - 1), case


@pytest.mark.parametrize("overrides, words", [
    (["formats.channel_accumulator=fixed:w=6,f=1", "formats.error=fixed:w=5,f=3", "formats.signal=fixed:w=5,f=3",
      "formats.feedback=fixed:w=6,f=4", "formats.quantize_at=after_fprime", "channel.algorithm=rbp"],
     ["narrower than the product it must hold", "fixed:w=6,f=1"]),
    (["formats.channel_accumulator=fixed:w=16,f=7", "formats.error=fixed:w=5,f=3", "formats.signal=fixed:w=5,f=3",
      "channel.algorithm=rbp"], ["quantize_at", "after_fprime"]),
    (["formats.channel_accumulator=fixed:w=16,f=7", "formats.quantize_at=after_fprime", "channel.algorithm=srbp"],
     ["formats.error", "float32", "fixed or log"]),
    (["formats.channel_accumulator=fixed:w=16,f=7", "formats.quantize_at=after_fprime", "channel.algorithm=rbp",
      "formats.error=fixed:w=5,f=3", "formats.signal=fixed:w=5,f=3"], ["formats.feedback", "exact products"]),
    (["formats.fprime_lut=1"], ["formats.fprime_lut", "no entries"]),
    (["formats.fprime_lut=8", "model.activation=relu"], ["formats.fprime_lut", "relu"]),
    (["formats.momentum=fixed:w=8,f=6"], ["formats.momentum", "train.momentum = 0"]),
    (["formats.channel_accumulator=fixed:w=16,f=7", "formats.quantize_at=after_fprime", "channel.algorithm=srbp",
      "channel.dropout=0.1", "formats.error=fixed:w=5,f=3", "channel.feedback=sparse:n=1"], ["dropout"]),
    (["formats.channel_accumulator=log:alpha=1,bits=4"], ["formats.channel_accumulator", "fixed-point"]),
])
def test_bad_datapaths_are_refused_with_the_reason(overrides, words):
    with pytest.raises(ConfigError) as exc:
        apply_overrides(RunConfig(), overrides)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_stored_momentum_is_rounded_into_its_format(tiny_data):
    """With ``formats.momentum`` fixed point the velocity is stored on its grid: one step sets
    v = Q(mom v + lr/B G) (one rounding, stream seed*4+9) and W = Q(W + v)."""
    mom, vfmt = 0.9, "fixed:w=12,f=10"
    tr = trainer(tiny_data, [*CASES["rbp dense fixed feedback"], f"train.momentum={mom}", f"formats.momentum={vfmt}"])
    rng = np.random.default_rng(1)
    f = tr.cfg.formats
    for v in tr.velocity[0] + tr.velocity[1]:      # a velocity already on its grid, as after earlier steps
        v.copy_(torch.from_numpy(ref.quantize(rng.normal(0, 0.05, v.shape).astype(np.float32), f.momentum,
                                              seed=99, counter=0)))
    twin, acts, R = one_step(tr)
    seed, scale = tr.cfg.train.seed, tr.cfg.train.lr / BATCH
    w_counter = sum(w.numel() + b.numel() for w, b in zip(twin.net.W, twin.net.b))
    v_counter = 0
    for k in range(tr.net.n_layers):
        G = (R[k].astype(np.float64).T @ acts[k].astype(np.float64)).astype(np.float32)
        gb = R[k].astype(np.float64).sum(axis=0).astype(np.float32)
        for got_v, v0, g, got_w, w0 in ((tr.velocity[0][k], twin.velocity[0][k], G, tr.net.W[k], twin.net.W[k]),
                                        (tr.velocity[1][k], twin.velocity[1][k], gb, tr.net.b[k], twin.net.b[k])):
            v = ref.add_quantize(v0.numpy() * np.float32(mom), g, scale, f.momentum, seed=seed * 4 + 9,
                                 counter=v_counter)
            v_counter += v.size
            assert np.array_equal(got_v.numpy(), v), k
            assert np.array_equal(ref.quantize(v, f.momentum, seed=0, counter=0), v), k     # on the grid
            w = ref.add_quantize(w0.numpy(), v, 1.0, f.weights, seed=seed * 4 + 5, counter=w_counter)
            w_counter += w.size
            assert np.array_equal(got_w.numpy(), w), k
