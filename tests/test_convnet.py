"""Conv nets (issue 7): the conv learning channel against autograd, augmentation, every variant
steps, Brevitas forward quantization, config errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lowbit_rbp.learning.channel import make_channel
from lowbit_rbp.core.config import RunConfig, apply_overrides
from lowbit_rbp.nets.convnet import ConvNet
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.core.feedback import build_feedback
from lowbit_rbp.nets.layout import net_layers
from lowbit_rbp.results.sweep import load_sweep
from tinydata import TinyImages

CIFAR10 = load_sweep("cifar10", seeds=[0])


def conv_net(input_shape, conv, hidden, n_classes=10, rng=None):
    """A ConvNet laid out as a config with these conv blocks and hidden layers lays it out."""
    cfg = apply_overrides(RunConfig(), ["model.dataset=cifar10", f"model.conv={list(conv)}",
                                        f"model.hidden={list(hidden)}"])
    return ConvNet(net_layers(cfg.model, input_shape, n_classes), rng=rng)

SMALL = ["model.dataset=cifar10-subset", "model.conv=[4,5]", "model.hidden=[7]"]


def small_net(seed=1, dtype=torch.float64):
    net = conv_net((3, 12, 12), [4, 5], [7], 10, rng=np.random.default_rng(seed))
    gen = torch.Generator().manual_seed(seed)
    net.W = [w.to(dtype) for w in net.W]
    net.W_fwd = list(net.W)
    net.b = [0.1 * torch.randn(b.shape, generator=gen, dtype=dtype) for b in net.b]
    return net


def autograd_grads(net, x, y, fprime=True):
    """Negative summed cross-entropy gradients of the same net through torch autograd."""
    Ws = [w.clone().requires_grad_() for w in net.W]
    bs = [b.clone().requires_grad_() for b in net.b]
    h = x
    for k, kind in enumerate(net.kinds[:-1]):
        if kind == "conv":
            h = F.max_pool2d(torch.tanh(F.conv2d(h, Ws[k], bs[k], padding=2)), 3, 2, 1)
        else:
            h = torch.tanh(h.flatten(1) @ Ws[k].T + bs[k])
    logits = h @ Ws[-1].T + bs[-1]
    F.cross_entropy(logits, y, reduction="sum").backward()
    return [-w.grad for w in Ws], [-b.grad for b in bs]


@pytest.fixture
def float64():
    """Gradient comparisons in double precision (buffers made with the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def channel_grads(cfg, net, x, t, before=None):
    ch = make_channel(cfg, net, np.random.default_rng(2), x.shape[0])
    if before is not None:
        before(ch)
    acts = net.forward(x, net.new_activations(x.shape[0]))
    R = ch.signals(net, acts, t)
    gw = [ch.weight_gradient(k, net, acts, torch.empty_like(net.W[k])) for k in range(net.n_layers)]
    gb = [net.bias_grad(k, R[k], torch.empty_like(net.b[k])) for k in range(net.n_layers)]
    return gw, gb, ch


def batch(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 12, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y, F.one_hot(y, 10).to(torch.float64)


def test_conv_bp_signals_equal_autograd_gradients(float64):
    net = small_net()
    x, y, t = batch()
    gw, gb, _ = channel_grads(apply_overrides(RunConfig(), [*SMALL, "channel.algorithm=bp"]), net, x, t)
    want_w, want_b = autograd_grads(net, x, y)
    for k in range(net.n_layers):
        torch.testing.assert_close(gw[k], want_w[k], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(gb[k], want_b[k], rtol=1e-9, atol=1e-12)


def test_conv_rbp_with_forward_kernels_as_feedback_reproduces_autograd(float64):
    """RBP whose fixed random kernels are replaced by the forward kernels (C^k = W^{k+1}) is BP."""
    net = small_net(seed=3)
    x, y, t = batch(seed=4)
    cfg = apply_overrides(RunConfig(), [*SMALL, "channel.algorithm=rbp"])

    def use_forward_kernels(ch):
        assert ch.B[0].shape == net.W[1].shape == (5, 4, 5, 5)   # a random conv kernel, laid out as W
        assert ch.B[1].shape == net.W[2].shape                   # dense above the last conv block
        for k in ch.B:
            ch.B[k] = net.W[k + 1]

    gw, gb, _ = channel_grads(cfg, net, x, t, before=use_forward_kernels)
    want_w, want_b = autograd_grads(net, x, y)
    for k in range(net.n_layers):
        torch.testing.assert_close(gw[k], want_w[k], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(gb[k], want_b[k], rtol=1e-9, atol=1e-12)


def test_conv_srbp_sends_the_output_error_to_every_pooled_unit(float64):
    net = small_net(seed=5)
    x, y, t = batch(seed=6)
    cfg = apply_overrides(RunConfig(), [*SMALL, "channel.algorithm=srbp", "channel.fprime=false"])
    _, _, ch = channel_grads(cfg, net, x, t, before=lambda ch: ch.B.update({k: b.double() for k, b in ch.B.items()}))
    acts = net.forward(x, net.new_activations(x.shape[0]))
    e = t - acts[-1]
    for k in range(net.n_layers - 1):
        assert ch.B[k].shape == (10, net.sizes[k + 1])
        want = (e @ ch.B[k]).reshape(ch.J[k].shape)
        torch.testing.assert_close(ch.J[k], want)
    # Routed through the max pooling: the conv-resolution signal sums to the pooled one.
    torch.testing.assert_close(ch.R[0].sum(dim=(2, 3)), ch.J[0].sum(dim=(2, 3)))
    assert ch.R[0].shape == (6, 4, 12, 12) and ch.J[0].shape == (6, 4, 6, 6)


def test_random_conv_kernel_has_forward_init_scale_and_sparse_counts():
    net = conv_net((3, 32, 32), [64, 64], [32], 10, rng=np.random.default_rng(0))
    (sender, receiver), fans = net.feedback_layout(1)
    assert (sender, receiver) == (64 * 25, 64) and fans == (64 * 25, 64 * 25)
    m = build_feedback("glorot_normal", (sender, receiver), np.random.default_rng(1), fans=fans)
    assert abs(m.std() - np.sqrt(2 / (2 * 64 * 25))) < 0.02 * np.sqrt(2 / (2 * 64 * 25))
    kernel = net.as_kernel(1, torch.from_numpy(build_feedback("sparse:n=2", (sender, receiver),
                                                               np.random.default_rng(2))))
    assert kernel.shape == net.W[1].shape
    # Every receiving input channel hears from n = 2 of the 64 x 5 x 5 senders on average, scaled 1/n.
    per_receiver = (kernel != 0).sum(dim=(0, 2, 3)).double()
    assert abs(per_receiver.mean().item() - 2.0) < 0.5
    assert set(torch.unique(kernel).tolist()) == {0.0, 0.5}


def test_augmentation_keeps_shapes_and_labels_and_moves_pixels():
    from lowbit_rbp.data.augment import augment_
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).reshape(2, 3, 10, 10)
    y = torch.tensor([3, 7])
    out = augment_(x.clone(), 0.2, 0.0, np.random.default_rng(0))
    assert out.shape == x.shape and y.tolist() == [3, 7]
    for i in range(2):
        # A pure translation by whole pixels with edge fill: some (dy, dx) in -2..2 matches.
        pad = F.pad(x[i:i + 1], (2, 2, 2, 2), mode="replicate")[0]
        assert any(torch.equal(out[i], pad[:, 2 - dy:12 - dy, 2 - dx:12 - dx])
                   for dy in range(-2, 3) for dx in range(-2, 3))
    flipped = augment_(x.clone(), 0.0, 1.0, np.random.default_rng(0))
    assert torch.equal(flipped, x.flip(3))
    same = augment_(x.clone(), 0.2, 0.5, np.random.default_rng(9))
    assert torch.equal(same, augment_(x.clone(), 0.2, 0.5, np.random.default_rng(9)))   # seeded


@pytest.mark.parametrize("variant", CIFAR10.runs, ids=lambda v: v.config.label())
def test_every_cifar_variant_takes_a_step(variant):
    from lowbit_rbp.learning.trainer import Trainer
    cfg = apply_overrides(variant.config, ["model.conv=[4,4]", "model.hidden=[8]", "train.batch_size=8",
                                           "train.epochs=1"])
    tr = Trainer(cfg, TinyImages())
    before = [w.clone() for w in tr.net.W]
    loss, acc, diverged = tr.train_epoch()
    assert not diverged and np.isfinite(loss)
    changed = [not torch.equal(a, b) for a, b in zip(before, tr.net.W)]
    assert changed[-1]
    assert all(changed) == cfg.channel.rule.trains_hidden


def test_conv_net_on_stored_fixed_point_weights_and_activations():
    """formats.weights / activations on a conv net: weights, biases and every hidden activation stay
    on their grids through a training step (the conv kernels included)."""
    from lowbit_rbp.learning.trainer import Trainer
    cfg = apply_overrides(RunConfig(), [*SMALL, "model.hidden=[8]", "train.batch_size=8", "channel.algorithm=srbp",
                                        "formats.weights='fixed:w=8,f=6,round=stochastic'",
                                        "formats.activations='fixed:w=4,f=3'", "train.lr=0.05"])
    tr = Trainer(cfg, TinyImages())
    before = [w.clone() for w in tr.net.W]
    loss, _, diverged = tr.train_epoch()
    assert not diverged and np.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, tr.net.W))
    for t in tr.net.W + tr.net.b:
        codes = t * 2 ** 6
        assert torch.equal(codes, codes.round()) and codes.min() >= -128 and codes.max() <= 127
    acts = tr.net.forward(tr.x_test[:10], tr.net.new_activations(10))
    for a in acts[:-1]:                                  # the input and every hidden (pooled) activation
        codes = a * 2 ** 3
        assert torch.equal(codes, codes.round()) and codes.min() >= -8 and codes.max() <= 7


@pytest.mark.parametrize("overrides, fragment", [
    (["model.conv=[8]"], "model.conv"),                                     # conv on MNIST
    ([*SMALL, "channel.algorithm=srbp", "channel.per_weight=true"], "channel.per_weight"),
    ([*SMALL, "channel.algorithm=sbp"], "sbp"),
    ([*SMALL, "formats.update='log:alpha=0.1,bits=5'"], "formats.update"),
    ([*SMALL, "model.conv_kernel=4"], "model.conv_kernel"),
    ([*SMALL, "formats.weights='log:alpha=1,bits=3'"], "formats.weights"),
    ([*SMALL, "formats.weights='fixed:w=4,f=4'"], "cannot represent the initial weights"),
    ([*SMALL, "formats.weights='fixed:w=8,f=0'"], "rounds every initial weight of layer 0 to 0"),
    ([*SMALL, "formats.weight_shadow=true"], "formats.weight_shadow"),
    ([*SMALL, "train.translate=0.7"], "train.translate"),
])
def test_conv_bad_input_is_named(overrides, fragment):
    from lowbit_rbp.learning.trainer import Trainer
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        cfg = apply_overrides(RunConfig(), overrides)
        Trainer(cfg, TinyImages())


def test_new_config_fields_leave_stored_hashes_alone():
    """Hashes computed before conv fields existed (these two are keys in reports/sweeps/mnist.db)."""
    assert RunConfig().config_hash() == "c36674c59832715e"
    cfg = apply_overrides(RunConfig(), ["channel.algorithm=srbp", "formats.error='log:alpha=2,bits=3'"])
    assert cfg.config_hash() == "4ef5e4ca78295941"
    assert apply_overrides(RunConfig(), SMALL).config_hash() != RunConfig().config_hash()


def test_cost_model_reads_the_same_conv_config_as_the_trainer():
    from lowbit_rbp.cost import make_setup
    from lowbit_rbp.nets import build_net
    cfg = CIFAR10.runs[0].config
    layers = make_setup(cfg).layers
    net = build_net(cfg, (3, 32, 32), 10, np.random.default_rng(0))
    assert [layer.n_out for layer in layers] == net.sizes[1:] == [16384, 4096, 1024, 1024, 10]
    assert [layer.n_in for layer in layers] == net.sizes[:-1]


def test_experiment_runs_carry_their_variant_labels_and_keep_their_hashes():
    """Labels with a quote (BP no f') reach the config's name intact; the name is not in the hash."""
    runs = load_sweep("foundation", seeds=[0]).runs
    assert "BP no f'" in [r.config.name for r in runs]
    for r in runs:
        assert r.config.config_hash() == apply_overrides(r.config, ["name='x'"]).config_hash()
