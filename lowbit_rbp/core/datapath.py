"""The datapath of the learning channel: which number format every value of it is held in, and
which combinations a circuit can build.

With ``formats.channel_accumulator`` a fixed-point format the channel is *bit-true*: every value
sits on a fixed-point or log grid and every operation is an exact integer operation or one
rounding into a stated format, in a stated order, as a circuit would do it (``check_datapath``
refuses what is not):

    T - O^L                       rounded into formats.error
    J^k = R_sender @ B^k          products exact, summed in ascending sender order in
                                  formats.channel_accumulator, saturating (or wrapping) at every
                                  add; sparse {0,1} feedback by index lists (adds only, the 1/n of
                                  sparse RBP applied to the sum); B^k: formats.feedback, or the
                                  stored weights (formats.weights) for BP
    f'(S^k)                       from the stored forward output O^k (formats.activations):
                                  computed (1 - O^2 for tanh) or read from a formats.fprime_lut-entry
                                  table, rounded into formats.fprime
    R^k = Q(J^k * f')             the exact product rounded once into formats.signal (the sent
                                  signal), which the next layer and the update read
    update, stored weights        formats.update / accumulator / weights / momentum, as in the
                                  float channel

Biases are stored in formats.weights like the weights and updated from the same R^k. The forward
pass multiplies and sums in float32 on the stored weights and activations (not bit-true; its
values are, being rounded into their formats). Float32 everywhere is the default.
"""
from __future__ import annotations

from ..errors import ConfigError, bad_value
from .algorithms import algorithm

MAX_LUT_ENTRIES = 1 << 16


def bit_true(formats) -> bool:
    """The channel's products accumulate in a fixed-point accumulator."""
    return formats.channel_accumulator.kind == "fixed"


def feedback_operand(cfg) -> object:
    """What the channel's products multiply R by: ``"binary"`` (sparse {0,1} feedback as index
    lists), the stored weights' format (BP), or the feedback format."""
    rule, fb = algorithm(cfg.channel.algorithm), cfg.channel.feedback
    if rule.source == "forward":
        return cfg.formats.weights
    if fb.kind == "sparse" and cfg.formats.feedback.kind == "float":
        return "binary"
    return cfg.formats.feedback


def check_datapath(cfg, layer_kinds) -> None:
    """Refuse a datapath no circuit computes as configured, naming the setting and what is allowed."""
    f, c, t, m = cfg.formats, cfg.channel, cfg.train, cfg.model
    if f.fprime_lut < 0 or f.fprime_lut == 1 or f.fprime_lut > MAX_LUT_ENTRIES:
        raise bad_value("formats.fprime_lut", f.fprime_lut,
                        f"0 (f' computed) or a lookup table of 2..{MAX_LUT_ENTRIES} entries (a table with no "
                        "entries, or one, cannot tell outputs apart)")
    if f.fprime_lut and m.activation not in ("tanh", "logistic"):
        raise bad_value("formats.fprime_lut", f.fprime_lut, f"0 for activation {m.activation!r} (a table needs a "
                        "bounded output: tanh or logistic)")
    if f.momentum.kind != "float" and not t.momentum:
        raise bad_value("formats.momentum", f.momentum.spec, "float32 while train.momentum = 0 (no momentum state)")
    if not bit_true(f):
        return
    rule = algorithm(c.algorithm)
    why = ("a conv net" if "conv" in layer_kinds else
           "sbp (its product matrices are float)" if rule.source == "forward_product" else
           "per-weight feedback" if c.per_weight else
           "low-rank feedback (two factors)" if c.feedback.kind == "lowrank" else
           "an adaptive channel (its matrices leave their grid)" if rule.adaptive else
           "learning-channel dropout (its 1/(1-p) leaves the grid)" if c.dropout else None)
    if why:
        raise ConfigError(f"formats.channel_accumulator {f.channel_accumulator.spec!r}: the bit-true channel is "
                          f"defined for dense layers with bp, rbp, srbp or top and fixed, sparse or sign-concordant "
                          f"feedback; not for {why}")
    if f.quantize_at != "after_fprime":
        raise bad_value("formats.quantize_at", f.quantize_at, "after_fprime with a fixed channel_accumulator (the "
                        "sent signal R = Q(J f') is rounded once into formats.signal)")
    senders = {"formats.error": f.error}
    if rule.layer_to_layer:
        senders["formats.signal"] = f.signal
    for name, fmt in senders.items():
        if fmt.kind == "float":
            raise bad_value(name, fmt.spec, "a fixed or log format with a fixed channel_accumulator (the products "
                            "must be exact)")
    b_fmt = feedback_operand(cfg)
    if rule.trains_hidden and getattr(b_fmt, "kind", "binary") == "float":
        where = "formats.weights (BP sends through the stored weights)" if rule.source == "forward" else \
            "formats.feedback, or sparse binary feedback (channel.feedback = sparse:n=K)"
        raise ConfigError(f"formats.channel_accumulator {f.channel_accumulator.spec!r} needs exact products: {where} "
                          "must be a fixed or log format")
    if rule.trains_hidden:
        from kernels.reference import check_accumulator_holds
        for name, fmt in senders.items():
            try:
                check_accumulator_holds(fmt, b_fmt, f.channel_accumulator)
            except ValueError as exc:
                raise ConfigError(f"formats.channel_accumulator (products of {name}): {exc}") from None
