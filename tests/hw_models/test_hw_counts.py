"""Operation counts of the cost model, against numbers computed by hand from the paper's equations."""

import numpy as np
import pytest

from hw_models import Conv2d
from lowbit_rbp.core.config import load_config
from lowbit_rbp.cost import channel_op_counts, cost_report
from lowbit_rbp.errors import ConfigError
from lowbit_rbp.nets.layout import net_layers

CIFAR_NET = ["model.dataset=cifar10", "model.conv=[64,64,64]", "model.hidden=[1024]"]

# The paper's MNIST net 784-100-100-100-100-10: N_1..N_4 = 100, N_L = N_5 = 10.
EQ14 = 100 * 100 + 100 * 100 + 100 * 100 + 100 * 10   # sum_{k=1}^{L-1} N_k N_{k+1} = 31,000
EQ15 = 10 * (100 + 100 + 100 + 100)                   # N_L sum_{k=1}^{L-1} N_k = 4,000
WEIGHTS = 784 * 100 + 3 * 100 * 100 + 100 * 10        # 109,400
BIASES = 4 * 100 + 10


def rep(*overrides, **kw):
    return cost_report(load_config(None, list(overrides)), **kw)


def ch(r):
    return r.summary["channel"]


def test_eq14_eq15_channel_multiplies():
    assert EQ14 == 31_000 and EQ15 == 4_000
    for algo in ("bp", "rbp", "arbp"):
        assert ch(rep(f"channel.algorithm={algo}"))["feedback_mults"] == EQ14
    for algo in ("srbp", "asrbp", "sbp"):
        assert ch(rep(f"channel.algorithm={algo}"))["feedback_mults"] == EQ15
    assert ch(rep("channel.algorithm=top"))["feedback_mults"] == 0


def test_channel_adds_and_fprime_by_hand():
    r = rep("channel.algorithm=bp")
    # n-1 adds per receiving neuron: 3 x (99 x 100) + 9 x 100
    assert ch(r)["feedback_adds"] == 3 * 99 * 100 + 9 * 100
    assert ch(r)["fprime_mults"] == 400                  # one J x f' per hidden neuron
    # tanh f' = 1 - O^2: one multiply and one add per hidden neuron
    assert ch(r)["fprime_eval_ops"] == 800
    s = rep("channel.algorithm=srbp")
    assert ch(s)["feedback_adds"] == 4 * 9 * 100


def test_per_layer_channel_counts():
    r = rep("channel.algorithm=rbp")
    # channel into layer h (paper index) from layer h+1: N_h N_{h+1} multiplies
    assert [r.count(phase="error_projection", op="mult", what="feedback_product", layer=h) for h in (1, 2, 3, 4)] \
        == [10_000, 10_000, 10_000, 1_000]
    s = rep("channel.algorithm=srbp")
    assert [s.count(phase="error_projection", op="mult", what="feedback_product", layer=h) for h in (1, 2, 3, 4)] \
        == [1_000] * 4


def test_weight_update_operations_equal_for_all_algorithms():
    ref = None
    for algo in ("bp", "rbp", "srbp", "sbp", "arbp", "asrbp"):
        r = rep(f"channel.algorithm={algo}")
        u = r.summary["update"]
        got = (u["weight_gradient_ops"], u["weight_update_ops"],
               r.summary["energy_per_example_pj"]["weight_gradient"], r.summary["energy_per_example_pj"]["weight_update"])
        if ref is None:
            ref = got
        assert got == pytest.approx(ref, rel=1e-12), algo
    # by hand: a product and an accumulator add per weight, a bias add per neuron; per minibatch
    # a scale and an add per weight and bias, charged / 100
    assert ref[0] == 2 * WEIGHTS + BIASES
    assert ref[1] == pytest.approx(2 * (WEIGHTS + BIASES) / 100)
    top = rep("channel.algorithm=top").summary["update"]
    assert top["weight_gradient_ops"] == 2 * 1000 + 10    # only the top layer learns


def test_sparse1_srbp_has_no_channel_multiplies_expected_and_drawn():
    for kw in ({}, {"feedback_seed": 0}, {"feedback_seed": 7}):
        r = rep("channel.algorithm=srbp", "channel.feedback=sparse:n=1", **kw)
        c = ch(r)
        assert c["feedback_mults"] == 0 and c["feedback_sign_flips"] == 0 and c["feedback_shifts"] == 0
        assert c["gated_terms"] > 0
    # expected: p = 1/10, 10 x 100 x 0.1 = 100 non-zeros per layer
    r = rep("channel.algorithm=srbp", "channel.feedback=sparse:n=1")
    assert ch(r)["gated_terms"] == pytest.approx(400)
    assert r.summary["wires_backward"]["connections"] == pytest.approx(400)


def test_sparse_expected_adds_formula():
    # SRBP sparse-2: X ~ Binomial(10, 0.2) terms per receiving neuron; E[max(X-1, 0)] = 10*0.2 - 1 + 0.8^10
    r = rep("channel.algorithm=srbp", "channel.feedback=sparse:n=2")
    per_neuron = 10 * 0.2 - 1 + 0.8 ** 10
    assert ch(r)["feedback_adds"] == pytest.approx(400 * per_neuron)
    assert ch(r)["gated_terms"] == pytest.approx(800)
    # RBP sparse-2 scales by 1/2: one shift per receiving neuron that got a term
    r = rep("channel.algorithm=rbp", "channel.feedback=sparse:n=2")
    expected_hit = 300 * (1 - (1 - 0.02) ** 100) + 100 * (1 - (1 - 0.2) ** 10)
    assert r.count(what="sparse_scale", op="shift") == pytest.approx(expected_hit)


def test_actual_sparse_matrices_counted_exactly():
    net = {"input_shape": (4,), "n_classes": 2}       # dense 4 -> 3 -> 2
    cfg = load_config(None, ["channel.algorithm=rbp", "channel.feedback=sparse:n=1", "model.hidden=[3]"])
    B = np.array([[1.0, 0.0, 1.0],
                  [0.0, 0.0, 1.0]], dtype=np.float32)     # (sender 2, receiver 3): column nnz 1, 0, 2
    r = cost_report(cfg, **net, feedback_matrices={0: B})
    c = ch(r)
    assert c["feedback_mults"] == 0
    assert c["gated_terms"] == 3
    assert c["feedback_adds"] == 1                      # only the third receiver sums two terms
    assert r.summary["wires_backward"]["connections"] == 3
    assert r.meta["feedback"]["drawn"] == "given"
    # real-valued matrix: a multiply per non-zero, zeros skipped
    cfg = load_config(None, ["channel.algorithm=rbp", "model.hidden=[3]"])
    V = np.array([[0.5, 0.0, -0.25],
                  [0.0, 0.0, 0.125]])
    r = cost_report(cfg, **net, feedback_matrices=[V])
    assert ch(r)["feedback_mults"] == 3 and ch(r)["feedback_adds"] == 1


def test_seeded_draw_matches_build_feedback():
    from lowbit_rbp.core.feedback import build_feedback
    rng = np.random.default_rng(3)
    mats = [build_feedback("sparse:n=2", (10, 100), rng, skipped=True) for _ in range(4)]
    nnz = sum(int(np.count_nonzero(m)) for m in mats)
    r = rep("channel.algorithm=srbp", "channel.feedback=sparse:n=2", feedback_seed=3)
    assert ch(r)["gated_terms"] == nnz
    assert r.summary["wires_backward"]["connections"] == nnz


def test_one_bit_error_has_no_multiplies_but_sign_flips():
    r = rep("channel.algorithm=srbp", "formats.error=log:alpha=2,bits=1")
    assert ch(r)["feedback_mults"] == 0
    assert ch(r)["feedback_sign_flips"] == EQ15
    q = ["formats.error=log:alpha=2,bits=1", "formats.signal=log:alpha=2,bits=1", "formats.quantize_at=after_fprime"]
    for algo in ("bp", "rbp"):
        r = rep(f"channel.algorithm={algo}", *q)
        assert ch(r)["feedback_mults"] == 0 and ch(r)["feedback_sign_flips"] == EQ14
        # the top layer's update product R x O is a sign flip too (its R is the 1-bit error)
        assert r.count(phase="weight_gradient", op="mult", layer=5) == 0
        assert r.count(phase="weight_gradient", op="sign_flip", layer=5) == 1000
    # without f', a 1-bit signal makes the whole channel multiply-free
    r = rep("channel.algorithm=srbp", "channel.fprime=false", "formats.error=log:alpha=2,bits=1")
    assert ch(r)["mults"] == 0


def test_log_quantized_products_are_shifts():
    r = rep("channel.algorithm=srbp", "formats.error=log:alpha=2,bits=3")
    assert ch(r)["feedback_mults"] == 0 and ch(r)["feedback_shifts"] == EQ15
    # before_fprime (default): only the first hop carries the 3-bit error; R^h = q(J) x f' is float
    r = rep("channel.algorithm=rbp", "formats.error=log:alpha=2,bits=3", "formats.signal=log:alpha=2,bits=3")
    assert ch(r)["feedback_shifts"] == 1_000 and ch(r)["feedback_mults"] == 30_000
    r = rep("channel.algorithm=rbp", "formats.error=log:alpha=2,bits=3", "formats.signal=log:alpha=2,bits=3",
            "formats.quantize_at=after_fprime")
    assert ch(r)["feedback_shifts"] == EQ14 and ch(r)["feedback_mults"] == 0


def test_lowrank_two_factors():
    r = rep("channel.algorithm=rbp", "channel.feedback=lowrank:r=5")
    # S x r + r x R per link: 3 x (100*5 + 5*100) + (10*5 + 5*100)
    assert ch(r)["feedback_mults"] == 3 * 1000 + 550
    assert ch(r)["feedback_adds"] == 3 * (99 * 5 + 4 * 100) + (9 * 5 + 4 * 100)
    assert r.summary["memory"]["feedback_bits"] == (3 * 200 + 110) * 5 * 32


def test_dropout_expected_fraction():
    r = rep("channel.algorithm=srbp", "channel.dropout=0.5")
    assert ch(r)["feedback_mults"] == EQ15 / 2
    assert ch(r)["fprime_mults"] == 200
    assert r.count(op="rng_bit", what="dropout_mask") == 400 * 8
    assert r.summary["wires_backward"]["bits_moved"] == 4000 * 0.5 * 32


def test_adaptive_and_sbp_channel_update_by_hand():
    a = rep("channel.algorithm=arbp").summary["update"]["channel_update_ops"]
    # per example: an outer-product multiply and an accumulate per feedback entry; per minibatch a scale and an add
    assert a == pytest.approx(2 * EQ14 + 2 * EQ14 / 100)
    s = rep("channel.algorithm=sbp").summary["update"]["channel_update_ops"]
    # per minibatch: P = P W^k for k = 3, 2, 1: 10x100x100 multiplies and 10x99x100 adds each, / 100
    assert s == pytest.approx(3 * (10 * 100 * 100 + 10 * 99 * 100) / 100)


def test_forward_counts():
    r = rep("channel.algorithm=bp")
    assert r.summary["forward"]["macs"] == WEIGHTS
    assert r.count(phase="forward", op="mult", what="forward_mac") == WEIGHTS
    assert r.count(phase="forward", op="activation_fn", what="activation") == 400


def test_fixed_point_widths_and_accumulators():
    r = rep("channel.algorithm=rbp", "formats.feedback=fixed:w=8,f=6", "formats.error=fixed:w=8,f=6",
            "formats.signal=fixed:w=8,f=6", "formats.quantize_at=after_fprime", "formats.accumulator=fixed:w=16,f=12")
    prod = r.select(phase="error_projection", what="feedback_product")
    assert {(x.op, x.dtype, x.bits_a, x.bits_b) for x in prod} == {("mult", "int", 8, 8)}
    accs = {x.layer: x.bits_a for x in r.select(phase="error_projection", what="feedback_accumulate")}
    # 8 + 8 + ceil(log2 fan-in): fan-in 100 -> 23 bits, fan-in 10 (from the output) -> 20 bits
    assert accs == {1: 23, 2: 23, 3: 23, 4: 20}
    upd = {x.bits_a for x in r.select(phase="weight_gradient", what="update_accumulate")}
    assert upd == {16}


def test_cifar_conv_net_counts():
    net = net_layers(load_config(None, CIFAR_NET).model)
    assert [layer.n_out for layer in net] == [64 * 16 * 16, 64 * 8 * 8, 64 * 4 * 4, 1024, 10]
    assert net[0].fwd_macs == 64 * 32 * 32 * 3 * 25
    cfg = load_config(None, [*CIFAR_NET, "channel.algorithm=srbp"])
    r = cost_report(cfg)
    # SRBP: a dense map from the 10 outputs to every (pooled) feature-map element and the dense layer
    assert ch(r)["feedback_mults"] == 10 * (16384 + 4096 + 1024 + 1024)
    cfg = load_config(None, [*CIFAR_NET, "channel.algorithm=rbp"])
    r = cost_report(cfg)
    # RBP: same-shape random kernels below conv2 and conv3 (transposed convolutions), dense above
    expected = 64 * 16 * 16 * 64 * 25 + 64 * 8 * 8 * 64 * 25 + 1024 * 1024 + 1024 * 10
    assert ch(r)["feedback_mults"] == expected
    assert r.summary["examples_per_epoch"] == 50_000
    assert r.count(phase="forward", what="max_pool") == (16384 + 4096 + 1024) * 8


def test_conv_layer_shapes():
    c = Conv2d(3, 8, 3, 10, 10, stride=1, padding="valid", pool=(2, 2), pool_padding="valid")
    assert c.out_hw == (8, 8) and c.pooled_hw == (4, 4) and c.n_out == 8 * 16
    assert c.fwd_macs == 8 * 64 * 3 * 9 and c.n_weights == 8 * 3 * 9


def test_channel_op_counts_extension_point():
    cfg = load_config(None, ["channel.algorithm=srbp"])
    counts = channel_op_counts(cfg, batch_size=32)
    assert [c.k for c in counts] == [0, 1, 2, 3]
    assert all(c.mults == 10 * 100 * 32 and c.adds == 9 * 100 * 32 for c in counts)
    cfg = load_config(None, ["channel.algorithm=rbp", "channel.feedback=sparse:n=2"])
    mats = {k: np.triu(np.ones((n_s, 100), dtype=np.float32)) / 2 for k, n_s in ((0, 100), (1, 100), (2, 100), (3, 10))}
    counts = channel_op_counts(cfg, feedback_matrices=mats, batch_size=4)
    for c in counts:
        assert c.nnz == np.count_nonzero(mats[c.k]) and c.gated == 4 * c.nnz and c.mults == 0


def test_matches_real_channel_matrices():
    """The trainer's own feedback matrices go in unchanged (torch tensors, keyed like Channel.B)."""
    try:
        from lowbit_rbp.learning.channel import make_channel
        from lowbit_rbp.nets.mlp import MLP
    except ImportError as exc:  # pragma: no cover - the channel is another part of the project
        pytest.skip(f"lowbit_rbp.learning.channel not importable: {exc}")
    cfg = load_config(None, ["channel.algorithm=srbp", "channel.feedback=sparse:n=2", "model.hidden=[20,20]"])
    rng = np.random.default_rng(0)
    net = MLP([784, 20, 20, 10], rng=rng)
    channel = make_channel(cfg, net, rng, 8)
    counts = channel_op_counts(cfg, feedback_matrices=channel.B, batch_size=8)
    for c in counts:
        assert c.nnz == int((channel.B[c.k] != 0).sum())
        assert c.gated == 8 * c.nnz


def test_per_weight_feedback_by_hand():
    r = rep("channel.algorithm=srbp", "channel.per_weight=true")
    # one feedback weight per (sender, forward weight): S = 10 outputs x weights of each receiving layer
    assert ch(r)["feedback_mults"] == 10 * (78_400 + 10_000 + 10_000 + 10_000)
    assert r.summary["wires_backward"]["connections"] == EQ15   # still one wire per sender/receiving neuron


def test_fixed_top_layer_is_not_updated():
    r = rep("channel.algorithm=srbp", "channel.fixed_top=1")
    assert r.count(phase="weight_gradient", layer=5) == 0
    assert r.summary["update"]["weight_gradient_ops"] == 2 * (WEIGHTS - 1000) + 400
    assert ch(r)["feedback_mults"] == EQ15                       # the channel still runs


def test_sign_concordant_needs_layer_to_layer_channel():
    assert ch(rep("channel.algorithm=rbp", "channel.feedback=sign_concordant"))["feedback_mults"] == EQ14
    with pytest.raises(ConfigError, match="sign_concordant"):
        rep("channel.algorithm=srbp", "channel.feedback=sign_concordant")


def test_sparse_per_sender_reading():
    # per=sender: n expected non-zeros per *sending* neuron, p = n / receiver = 2 / 100 for SRBP
    r = rep("channel.algorithm=srbp", "channel.feedback=sparse:n=2,per=sender")
    assert ch(r)["gated_terms"] == pytest.approx(4 * 10 * 100 * 0.02)
    assert ch(r)["feedback_adds"] == pytest.approx(400 * (10 * 0.02 - 1 + 0.98 ** 10))
    # n = 100 per sender sets every SRBP feedback weight of a 100-unit layer to 1: all terms, no multiply
    r = rep("channel.algorithm=srbp", "channel.feedback=sparse:n=100,per=sender", feedback_seed=0)
    assert ch(r)["gated_terms"] == EQ15 and ch(r)["feedback_mults"] == 0


def test_forward_priced_at_its_configured_precision():
    """formats.weights / activations: the forward's MACs become integer MACs of those widths, weights
    are held and updated at their width (or as float32 masters with a copy: weight_shadow). By hand,
    on a 4 -> 3 -> 2 net, 8-bit weights and activations, the Horowitz 45 nm table."""
    net = {"input_shape": (4,), "n_classes": 2}
    base = ["model.hidden=[3]", "channel.algorithm=bp"]
    q8 = ["formats.weights=fixed:w=8,f=6", "formats.activations=fixed:w=8,f=7"]
    q = cost_report(load_config(None, [*base, *q8]), **net)
    f = cost_report(load_config(None, base), **net)
    # 4*3 + 3*2 = 18 MACs: int8 x int8 multiplies at 0.2 pJ instead of fp32 multiplies at 3.7 pJ
    macs = q.select(phase="forward", what="forward_mac")
    assert {(x.op, x.dtype, x.bits_a, x.bits_b) for x in macs} == {("mult", "int", 8, 8)}
    assert sum(x.count for x in macs) == 18
    assert q.energy(phase="forward", what="forward_mac") == pytest.approx(18 * 0.2)
    assert f.energy(phase="forward", what="forward_mac") == pytest.approx(18 * 3.7)
    # sums in an 8 + 8 + ceil(log2 fan-in) bit adder: fan-in 4 -> 18 bits (0.03 x 18/8 = 0.0675 pJ),
    # fan-in 3 -> 18 bits too; 18 adds in all
    adds = q.select(phase="forward", what="forward_accumulate")
    assert {x.bits_a for x in adds} == {18}
    assert q.energy(phase="forward", what="forward_accumulate") == pytest.approx(18 * 0.03 * 18 / 8)
    # one quantizer compare per hidden activation (3, of the float32 value before rounding)
    assert q.count(phase="forward", what="activation_quantize") == 3
    assert q.energy(phase="forward", what="activation_quantize") == pytest.approx(3 * 0.1)
    # weights held and written at 8 bits: 15 + 8 = 23 weights and biases
    assert q.summary["memory"]["weights_bits"] == 23 * 8
    assert q.count(phase="forward", what="weights", op="sram_read") == 23 * 8
    assert q.count(phase="weight_update", what="weights", op="sram_write") == pytest.approx(23 * 8 / 100)
    assert {(x.dtype, x.bits_a) for x in q.select(phase="weight_update", what="weight_write")} == {("int", 8)}
    # BP's channel sends its signal through the 8-bit weights the forward used
    assert {x.bits_b for x in q.select(phase="error_projection", what="feedback_product")} == {8}
    # with a shadow: float32 masters (stored, updated), an int8 copy read by the forward, made once a minibatch
    sh = cost_report(load_config(None, [*base, *q8, "formats.weight_shadow=true"]), **net)
    assert sh.summary["memory"]["weights_bits"] == 23 * 32
    assert sum(m.bits for m in sh.memory if m.what == "weights_copy") == 23 * 8
    assert sh.count(phase="forward", what="weights_copy", op="sram_read") == 23 * 8
    assert sh.count(phase="forward", what="weight_quantize") == pytest.approx(23 / 100)
    assert sh.count(phase="weight_update", what="weights", op="sram_write") == pytest.approx(23 * 32 / 100)
    assert sh.energy(phase="forward", what="forward_mac") == q.energy(phase="forward", what="forward_mac")
    # the float forward has none of this
    assert not f.select(what="weights_copy") and not f.select(what="activation_quantize")


BIT_TRUE = ["channel.algorithm=rbp", "formats.feedback=fixed:w=8,f=6", "formats.error=fixed:w=8,f=6",
            "formats.signal=fixed:w=8,f=6", "formats.quantize_at=after_fprime",
            "formats.channel_accumulator=fixed:w=18,f=12", "formats.fprime_lut=32", "formats.fprime=fixed:w=6,f=5",
            "train.momentum=0.9", "formats.momentum=fixed:w=12,f=10"]


def test_bit_true_datapath_priced_as_configured():
    """The bit-true channel is priced with the widths the trainer uses (tests/test_bit_true.py):
    every feedback add at the configured 18-bit accumulator (not the 23 / 20 bits an exact sum
    of 8 x 8-bit products over fan-in 100 / 10 needs), f' read from a 32-entry table of 6-bit
    entries (no 1 - O^2 evaluated), J x f' an 18 x 6-bit product, and the velocity stored in 12 bits."""
    r = rep(*BIT_TRUE)
    accs = {(x.layer, x.bits_a, x.count) for x in r.select(phase="error_projection", what="feedback_accumulate")}
    assert accs == {(h, 18, 99 * 100) for h in (1, 2, 3)} | {(4, 18, 9 * 100)}
    table = r.select(what="fprime_table")
    assert {(x.layer, x.count, x.capacity_bytes) for x in table} == {(h, 100 * 6, 32 * 6 / 8) for h in (1, 2, 3, 4)}
    assert not r.select(what="fprime_eval")
    assert {(x.op, x.bits_a, x.bits_b) for x in r.select(what="fprime_product")} == {("mult", 18, 6)}
    # velocity: read and written once per minibatch of 100, 12 bits per weight and bias: layer 2 has 100 x 101
    vel = {(x.layer, x.op): x.count for x in r.select(what="velocity")}
    assert vel[(2, "sram_read")] == vel[(2, "sram_write")] == pytest.approx(100 * 101 * 12 / 100)
    assert vel[(1, "sram_read")] == pytest.approx(100 * 785 * 12 / 100)
    # the same formats without the bit-true accumulator: each sum as wide as it needs, f' evaluated
    wide = rep(*[o for o in BIT_TRUE if "channel_accumulator" not in o and "fprime_lut" not in o])
    assert {x.layer: x.bits_a for x in wide.select(phase="error_projection", what="feedback_accumulate")} \
        == {1: 23, 2: 23, 3: 23, 4: 20}
    assert wide.count(what="fprime_eval", op="mult") == 400


def test_stochastic_rounding_draws_are_priced():
    """Each stochastic rounding draws one 24-bit uniform in the trainer (kernels/reference/rng.py
    uniform_counter), so the cost model charges 24 random bits per rounded value: 10 output errors,
    100 sent signals per hidden layer, and every stored weight and bias once per minibatch of 100."""
    sto = ["channel.algorithm=srbp", "channel.feedback=sparse:n=1", "formats.quantize_at=after_fprime",
           "formats.error=fixed:w=4,f=3,round=stochastic", "formats.signal=fixed:w=4,f=3,round=stochastic",
           "formats.weights=fixed:w=8,f=6,round=stochastic"]
    r = rep(*sto)
    bits = {(x.layer, x.what): x.count for x in r.select(op="rng_bit")}
    assert bits[(5, "error_rounding")] == 10 * 24
    assert [bits[(h, "signal_rounding")] for h in (1, 2, 3, 4)] == [100 * 24] * 4
    assert bits[(2, "weight_write_rounding")] == pytest.approx(100 * 101 / 100 * 24)
    assert bits[(1, "weight_write_rounding")] == pytest.approx(100 * 785 / 100 * 24)
    assert sum(bits.values()) == pytest.approx(240 + 4 * 2400 + (WEIGHTS + BIASES) / 100 * 24)
    nearest = rep(*[o.replace(",round=stochastic", "") for o in sto])
    assert not nearest.select(op="rng_bit")
    assert nearest.summary["energy_per_example_pj"]["total"] < r.summary["energy_per_example_pj"]["total"]
