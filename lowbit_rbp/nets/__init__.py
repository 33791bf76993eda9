"""Forward networks: their layer layout (``layout``, read by the trainer and the cost model alike),
the dense net (``mlp``), and the conv net (``convnet``), on their stored-weight and activation formats."""
from __future__ import annotations

import numpy as np

from ..core.quantizer import Quantizer
from .layout import net_layers


def build_net(cfg, input_shape: tuple[int, ...], n_classes: int, rng: np.random.Generator, backend: str = "auto"):
    """The forward net a config names, laid out by ``net_layers``: an MLP on flat inputs, or a
    ConvNet when ``model.conv`` is set; on its forward formats (``formats.weights``,
    ``weight_shadow``, ``activations``), whose random streams the run's seed fixes."""
    m = cfg.model
    layers = net_layers(m, input_shape, n_classes)
    if m.conv:
        from .convnet import ConvNet
        net = ConvNet(layers, m.activation, m.init, rng)
    else:
        from .mlp import MLP
        net = MLP([layers[0].n_in, *(layer.n_out for layer in layers)], m.activation, m.init, rng)
    f, seed = cfg.formats, cfg.train.seed
    weights = Quantizer(f.weights, seed * 4 + 5, backend) if f.weights.kind != "float" else None
    acts = Quantizer(f.activations, seed * 4 + 6, backend) if f.activations.kind != "float" else None
    net.set_formats(weights, acts, f.weight_shadow)
    return net
