"""The layer layout of the net a config describes: the one place its shapes are computed.

The trainer builds its torch net from these layers and the cost model counts over the same
ones, so the two cannot disagree about a size. Layers are ``hw_models.layers`` records
(``Dense``, ``Conv2d`` with its max-pool), hardware-neutral descriptions of the work.
"""
from __future__ import annotations

import math

from hw_models.layers import Conv2d, Dense

from ..data.specs import INPUT_SHAPES, N_CLASSES


def net_layers(model, input_shape: tuple[int, ...] | None = None, n_classes: int | None = None) -> tuple:
    """The weight layers of ``model`` (a ``ModelConfig``) on inputs of ``input_shape`` (channels,
    height, width; default: the dataset's) with ``n_classes`` outputs (default: the dataset's).

    Conv blocks: conv ``conv_kernel`` x ``conv_kernel``, stride 1, same padding, activation,
    max-pool ``pool`` x ``pool`` with stride ``pool_stride`` and padding ``pool // 2``; then the
    dense ``hidden`` layers on the flattened maps and the output layer."""
    shape = tuple(input_shape) if input_shape is not None else INPUT_SHAPES[model.dataset]
    classes = n_classes if n_classes is not None else N_CLASSES
    layers = []
    if model.conv:
        ch, h, w = shape
        for i, out_ch in enumerate(model.conv):
            c = Conv2d(ch, out_ch, model.conv_kernel, h, w, 1, "same", (model.pool, model.pool_stride),
                       model.pool // 2, name=f"conv{i + 1}")
            layers.append(c)
            ch, (h, w) = out_ch, c.pooled_hw
        n_in = layers[-1].n_out
    else:
        n_in = math.prod(shape)
    sizes = [n_in, *model.hidden, classes]
    layers += [Dense(a, b, name=f"dense{len(layers) + j + 1}") for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return tuple(layers)
