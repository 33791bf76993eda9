"""The learning channel: BP is the gradient, RBP/SRBP reduce to BP/RBP where theory says so."""
import numpy as np
import pytest
import torch

from lowbit_rbp.learning.channel import make_channel
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.nets.mlp import MLP
from lowbit_rbp.learning.trainer import Trainer
from lowbit_rbp.results.runs import train


def small_setup(algorithm="bp", sizes=(7, 6, 5, 4, 3), activation="tanh", extra=()):
    hidden = ",".join(str(s) for s in sizes[1:-1])
    cfg = apply_overrides(RunConfig(), [f"channel.algorithm={algorithm}", f"model.hidden=[{hidden}]",
                                        f"model.activation={activation}", *extra])
    rng = np.random.default_rng(1)
    net = MLP(sizes, activation, "glorot_normal", rng)
    ch = make_channel(cfg, net, np.random.default_rng(2), batch=9)
    x = torch.from_numpy(rng.normal(size=(9, sizes[0])).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, sizes[-1], size=9))
    t = torch.nn.functional.one_hot(y, sizes[-1]).float()
    return cfg, net, ch, x, y, t


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu", "linear"])
def test_bp_signals_equal_autograd_gradients(activation):
    cfg, net, ch, x, y, t = small_setup("bp", activation=activation)
    acts = net.forward(x, net.new_activations(9))
    ch.signals(net, acts, t)
    ours = [ch.weight_gradient(k, net, acts, torch.empty_like(w)).clone() for k, w in enumerate(net.W)]
    # Autograd on the same weights: loss = mean cross-entropy; our update direction is -dL/dW * batch.
    Ws = [w.clone().requires_grad_(True) for w in net.W]
    bs = [b.clone().requires_grad_(True) for b in net.b]
    h = x
    act = {"tanh": torch.tanh, "logistic": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z}[activation]
    for k, (w, b) in enumerate(zip(Ws, bs)):
        h = h @ w.T + b
        if k < len(Ws) - 1:
            h = act(h)
    loss = torch.nn.functional.cross_entropy(h, y, reduction="sum")
    loss.backward()
    for k in range(len(Ws)):
        np.testing.assert_allclose(ours[k].numpy(), -Ws[k].grad.numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(ch.R[k].sum(0).numpy(), -bs[k].grad.numpy(), atol=1e-5, rtol=1e-5)


def test_rbp_with_transposed_forward_weights_equals_bp(tiny_data):
    """RBP whose feedback is W^{k+1} at every step (the same tensor, so it follows the updates) is BP."""
    base = ["model.hidden=[8,7,6]", "train.epochs=2", "train.batch_size=10"]
    bp = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=bp"]), tiny_data)
    rbp = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=rbp"]), tiny_data)
    for k in list(rbp.channel.B):
        rbp.channel.B[k] = rbp.net.W[k + 1]
    a = list(bp.run())
    b = list(rbp.run())
    assert [r.test_acc for r in a] == [r.test_acc for r in b]
    for wa, wb in zip(bp.net.W, rbp.net.W):
        assert torch.equal(wa, wb)
    # and it really trained (weights moved from a fresh init)
    fresh = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=bp"]), tiny_data)
    assert not torch.equal(fresh.net.W[0], bp.net.W[0])


def test_rbp_differs_from_bp_with_random_feedback(tiny_data):
    base = ["model.hidden=[8,7,6]", "train.epochs=1", "train.batch_size=10"]
    bp = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=bp"]), tiny_data)
    rbp = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=rbp"]), tiny_data)
    list(bp.run()), list(rbp.run())
    assert not torch.equal(bp.net.W[0], rbp.net.W[0])


def test_srbp_equals_rbp_with_one_hidden_layer(tiny_data):
    base = ["model.hidden=[9]", "train.epochs=2", "train.batch_size=10"]
    a = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=rbp"]), tiny_data)
    b = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=srbp"]), tiny_data)
    assert torch.equal(a.channel.B[0], b.channel.B[0])
    list(a.run()), list(b.run())
    for wa, wb in zip(a.net.W, b.net.W):
        assert torch.equal(wa, wb)


def test_sbp_with_one_hidden_layer_equals_bp(tiny_data):
    base = ["model.hidden=[9]", "train.epochs=1", "train.batch_size=10"]
    a = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=bp"]), tiny_data)
    b = Trainer(apply_overrides(RunConfig(), base + ["channel.algorithm=sbp"]), tiny_data)
    list(a.run()), list(b.run())
    for wa, wb in zip(a.net.W, b.net.W):
        assert torch.equal(wa, wb)


def test_srbp_channel_receives_output_error_directly():
    cfg, net, ch, x, y, t = small_setup("srbp", extra=["channel.fprime=false"])
    acts = net.forward(x, net.new_activations(9))
    R = ch.signals(net, acts, t)
    top = len(net.W) - 1
    for k in range(top):
        np.testing.assert_allclose(R[k].numpy(), (R[top] @ ch.B[k]).numpy(), rtol=1e-6, atol=1e-7)


def test_top_only_leaves_hidden_layers_at_init(tiny_data):
    cfg = apply_overrides(RunConfig(), ["model.hidden=[8,7]", "train.epochs=1", "train.batch_size=10",
                                        "channel.algorithm=top"])
    tr = Trainer(cfg, tiny_data)
    init = [w.clone() for w in tr.net.W]
    list(tr.run())
    assert torch.equal(init[0], tr.net.W[0]) and torch.equal(init[1], tr.net.W[1])
    assert not torch.equal(init[2], tr.net.W[2])


def test_fixed_top_layer_is_not_updated(tiny_data):
    cfg = apply_overrides(RunConfig(), ["model.hidden=[8,7]", "train.epochs=1", "train.batch_size=10",
                                        "channel.algorithm=rbp", "channel.fixed_top=1"])
    tr = Trainer(cfg, tiny_data)
    init = [w.clone() for w in tr.net.W]
    list(tr.run())
    assert torch.equal(init[2], tr.net.W[2])
    assert not torch.equal(init[0], tr.net.W[0])


def test_adaptive_channel_learns_its_feedback(tiny_data):
    cfg = apply_overrides(RunConfig(), ["model.hidden=[8,7]", "train.epochs=1", "train.batch_size=10",
                                        "channel.algorithm=asrbp"])
    tr = Trainer(cfg, tiny_data)
    before = {k: v.clone() for k, v in tr.channel.B.items()}
    list(tr.run())
    assert all(not torch.equal(before[k], tr.channel.B[k]) for k in before)


def test_dropout_scales_survivors():
    cfg, net, ch, x, y, t = small_setup("srbp", extra=["channel.fprime=false", "channel.dropout=0.5"])
    acts = net.forward(x, net.new_activations(9))
    R = ch.signals(net, acts, t)
    full = R[-1] @ ch.B[0]
    got = R[0]
    kept = got != 0
    assert 0.2 < kept.float().mean() < 0.8
    np.testing.assert_allclose(got[kept].numpy(), 2 * full[kept].numpy(), rtol=1e-5)


def test_sign_concordant_feedback_follows_forward_signs():
    cfg, net, ch, x, y, t = small_setup("rbp", extra=["channel.feedback=sign_concordant"])
    acts = net.forward(x, net.new_activations(9))
    ch.signals(net, acts, t)
    for k, b in ch.B.items():
        assert torch.equal(torch.sign(b), torch.sign(net.W[k + 1]))


VARIANTS = [
    ["channel.algorithm=bp"], ["channel.algorithm=rbp"], ["channel.algorithm=srbp"], ["channel.algorithm=sbp"],
    ["channel.algorithm=top"], ["channel.algorithm=arbp"], ["channel.algorithm=asrbp"],
    *[[f"channel.algorithm={a}", "channel.fprime=false"] for a in ("bp", "rbp", "srbp", "sbp", "arbp", "asrbp")],
    ["channel.algorithm=rbp", "channel.feedback=glorot_uniform"],
    ["channel.algorithm=srbp", "channel.feedback='glorot_normal:mean=0.5'"],
    ["channel.algorithm=srbp", "channel.feedback='glorot_uniform:mean=0.5'"],
    ["channel.algorithm=rbp", "channel.feedback='sparse:n=1'"],
    ["channel.algorithm=srbp", "channel.feedback='sparse:n=2'"],
    ["channel.algorithm=srbp", "channel.feedback='sparse:n=0'"],
    ["channel.algorithm=rbp", "channel.feedback='lowrank:r=2'"],
    ["channel.algorithm=rbp", "channel.feedback=sign_concordant"],
    ["channel.algorithm=srbp", "channel.resample=true"],
    ["channel.algorithm=rbp", "channel.dropout=0.2"],
    ["channel.algorithm=srbp", "channel.update=sign"],
    ["channel.algorithm=srbp", "channel.update=magnitude"],
    ["channel.algorithm=srbp", "channel.per_weight=true"],
    ["channel.algorithm=srbp", "channel.per_weight=true", "channel.fprime=false"],
    ["channel.algorithm=rbp", "channel.fixed_top=2"],
    ["channel.algorithm=srbp", "train.momentum=0.9"],
    ["channel.algorithm=bp", "model.activation=relu"],
    ["channel.algorithm=rbp", "model.activation=logistic"],
    ["channel.algorithm=srbp", "model.activation=linear", "train.lr=0.01"],
    ["channel.algorithm=srbp", "formats.error='log:alpha=2,bits=3'"],
    ["channel.algorithm=bp", "formats.signal='log:alpha=2,bits=5'", "formats.error='log:alpha=2,bits=5'"],
    ["channel.algorithm=rbp", "formats.signal='fixed:w=8,f=6,round=stochastic'", "formats.quantize_at=after_fprime"],
    ["channel.algorithm=srbp", "formats.update='log:alpha=0.1,bits=3'"],
    ["channel.algorithm=bp", "formats.update='fixed:w=8,f=7,round=stochastic'", "formats.accumulator='fixed:w=16,f=12'"],
]


@pytest.mark.parametrize("spec", ["log:alpha=0.5,bits=4,underflow=clip", "log:alpha=0.5,bits=4,underflow=stochastic"])
def test_quantized_update_equals_materialized_reference(spec):
    """The per-example quantized update: sum over the batch of Q(R_b O_b^T), checked against a
    straightforward materialize-quantize-sum in NumPy (same seed and counters for the stochastic
    underflow, whose counter runs over the materialized (batch, out, in) tensor layer by layer)."""
    from kernels import reference
    from lowbit_rbp.core.formats import parse_format
    cfg, net, ch, x, y, t = small_setup("srbp", extra=[f"formats.update='{spec}'"])
    acts = net.forward(x, net.new_activations(9))
    ch.signals(net, acts, t)
    fmt = parse_format(spec)
    for k in range(len(net.W)):
        counter = ch.update_counter
        got = ch.weight_gradient(k, net, acts, torch.empty_like(net.W[k])).numpy()
        per_example = ch.R[k].numpy()[:, :, None] * acts[k].numpy()[:, None, :]
        want = reference.quantize_log(per_example, fmt, seed=ch.update_seed, counter=counter).astype(np.float64).sum(0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: " ".join(o))
def test_every_variant_trains_one_step(tiny_data, overrides):
    cfg = apply_overrides(RunConfig(), ["model.hidden=[8,7,6]", "train.epochs=1", "train.batch_size=20",
                                        "train.train_subset=20", *overrides])
    res = train(cfg, tiny_data)
    assert res.status == "finished"
    assert np.isfinite(res.final.test_loss)
