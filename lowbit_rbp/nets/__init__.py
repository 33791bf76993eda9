"""Forward networks: their layer layout (``layout``, read by the trainer and the cost model alike),
the dense net (``mlp``), the conv net (``convnet``) and the Brevitas forward quantizers."""
from __future__ import annotations

import numpy as np

from .layout import net_layers


def build_net(cfg, input_shape: tuple[int, ...], n_classes: int, rng: np.random.Generator):
    """The forward net a config names, laid out by ``net_layers``: an MLP on flat inputs, or a
    ConvNet when ``model.conv`` is set."""
    m = cfg.model
    layers = net_layers(m, input_shape, n_classes)
    if m.conv:
        from .convnet import ConvNet
        net = ConvNet(layers, m.activation, m.init, rng)
    else:
        from .mlp import MLP
        net = MLP([layers[0].n_in, *(layer.n_out for layer in layers)], m.activation, m.init, rng)
    if m.weight_bits or m.act_bits:
        from .forward_quant import ForwardQuant
        net.forward_quant = ForwardQuant(net.W, m.weight_bits, m.act_bits)
    return net
