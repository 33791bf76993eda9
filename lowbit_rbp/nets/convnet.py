"""Convolutional forward network (the paper's CIFAR-10 net), no autograd, same interface as ``MLP``.

Weight layer k is either a conv block, ``O^{k+1} = maxpool(f(conv(O^k, W^k) + b^k))`` (kernel
``conv_kernel``, stride 1, same padding; pool ``pool`` x ``pool`` with stride ``pool_stride`` and
padding ``pool // 2``), or a dense layer on the flattened input, ``O^{k+1} = f(W^k O^k + b^k)``; the
last layer is dense with softmax. The paper's net: 3 conv blocks of 64 tanh channels (5x5, pool
3x3 stride 2), a dense layer of 1024 tanh units, softmax.

Where the learning channel meets a conv block: a hidden block's *neurons* are its pooled outputs
``O^{k+1}``. The channel delivers its signal ``J^k`` there (shape of ``O^{k+1}``), multiplies by
``f'`` there (max pooling passes the maximum of a monotone f, so the pooled unit's derivative is
``f'`` of the winning pre-activation, computed from ``O^{k+1}``), and ``route`` sends the result
to the winning positions (the max-pool backward) to give ``R^k`` at the conv's resolution, which
the weight update ``conv_weight_grad(O^k, R^k)`` and the next signal down consume. A layer-to-layer
channel (BP, RBP) sends ``R^{k+1}`` down through layer k+1's backward operator with a kernel of
layer k+1's shape: the forward kernel for BP, a fixed random kernel for RBP
(``backward_input``). A skipped channel (SRBP) reaches every block through a dense map from the
output error to all of the block's pooled units.

Forward precision: the stored weights' and hidden activations' formats (``Net.set_formats``),
as for the MLP.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import bad_value
from .mlp import ACTIVATIONS, Net, glorot, softmax_


class ConvNet(Net):
    """Conv blocks then dense layers, softmax output; tensors batch-major ``(batch, C, H, W)``."""

    eval_batch = 500    # a 32x32x64 pre-pool map is 256 KiB per example

    def __init__(self, layers, activation: str = "tanh", init: str = "glorot_normal",
                 rng: np.random.Generator | None = None):
        """``layers``: conv blocks then dense layers (``lowbit_rbp.nets.layout.net_layers``), whose
        shapes this net takes as given."""
        if activation not in ACTIVATIONS:
            raise bad_value("activation", activation, ", ".join(ACTIVATIONS))
        if not layers or layers[0].kind != "conv":
            raise bad_value("conv net layers", [layer.describe() for layer in layers],
                            "at least one conv block first (use an MLP otherwise)")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.activation = activation
        first = layers[0]
        # Every conv block shares kernel and pooling geometry (stride 1, same padding).
        self.kernel, (self.pool, self.pool_stride) = first.k, first.pool
        self.pad, self.pool_pad = first.pad, first.pool_padding
        self.kinds: list[str] = []
        self.shapes: list[tuple[int, ...]] = [(first.in_ch, first.H, first.W)]
        self.W: list[torch.Tensor] = []
        for layer in layers:
            if layer.kind == "conv":
                k = layer.k
                fan_in, fan_out = layer.in_ch * k ** 2, layer.out_ch * k ** 2
                self.W.append(_glorot_kernel((layer.out_ch, layer.in_ch, k, k), fan_in, fan_out, init, rng))
                self.shapes.append((layer.out_ch, *layer.pooled_hw))
            else:
                self.W.append(torch.from_numpy(np.ascontiguousarray(glorot((layer.n_out, layer.n_in), init, rng),
                                                                    dtype=np.float32)))
                self.shapes.append((layer.n_out,))
            self.kinds.append(layer.kind)
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.b = [torch.zeros(w.shape[0]) for w in self.W]
        self.W_fwd = list(self.W)      # the weights as the last forward used them (W, or a quantized copy)
        self._pre: dict[int, torch.Tensor] = {}     # post-activation, pre-pool maps of the last forward
        self._idx: dict[int, torch.Tensor] = {}     # their max-pool winner indices

    def new_activations(self, batch: int) -> list[torch.Tensor]:
        return [torch.empty(batch, *s) for s in self.shapes]

    def forward(self, x: torch.Tensor, acts: list[torch.Tensor]) -> list[torch.Tensor]:
        acts[0] = x
        last = self.n_layers - 1
        for k in range(self.n_layers):
            w, b = self.forward_params(k)
            if self.kinds[k] == "conv":
                s = F.conv2d(acts[k], w, b, padding=self.pad)
                self._activate_hidden_(k, s)
                self._pre[k] = s
                acts[k + 1], self._idx[k] = F.max_pool2d(s, self.pool, self.pool_stride, self.pool_pad,
                                                         return_indices=True)
            else:
                out = acts[k + 1]
                if out.shape[0] != acts[k].shape[0]:
                    out = acts[k + 1] = torch.empty(acts[k].shape[0], *self.shapes[k + 1])
                torch.addmm(b, acts[k].reshape(acts[k].shape[0], -1), w.T, out=out)
                if k < last:
                    self._activate_hidden_(k, out)
        softmax_(acts[-1])
        return acts

    # --- the learning channel's view of the layers ------------------------------------------
    def route(self, k: int, r: torch.Tensor) -> torch.Tensor:
        """The signal at layer k's units (pooled for a conv block) sent to where its update needs it."""
        if self.kinds[k] != "conv":
            return r
        return torch.ops.aten.max_pool2d_with_indices_backward(
            r, self._pre[k], [self.pool] * 2, [self.pool_stride] * 2, [self.pool_pad] * 2, [1, 1], False, self._idx[k])

    def backward_input(self, k: int, r: torch.Tensor, kernel: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """What layer k's backward operator with ``kernel`` (shape of W[k]) sends to its input ``O^k``."""
        if self.kinds[k] == "conv":
            j = torch.ops.aten.convolution_backward(
                r, out, kernel, None, [1, 1], [self.pad] * 2, [1, 1], False, [0, 0], 1, [True, False, False])[0]
            return out.copy_(j)
        torch.mm(r, kernel, out=out.view(r.shape[0], -1))
        return out

    def weight_grad(self, k: int, r: torch.Tensor, acts, out: torch.Tensor) -> torch.Tensor:
        """Summed update direction for W[k] from its signal ``r`` and input ``acts[k]``."""
        x = acts[k]
        if self.kinds[k] == "conv":
            g = torch.ops.aten.convolution_backward(
                r, x, self.W[k], None, [1, 1], [self.pad] * 2, [1, 1], False, [0, 0], 1, [False, True, False])[1]
            return out.copy_(g)
        return torch.mm(r.T, x.reshape(x.shape[0], -1), out=out)

    def bias_grad(self, k: int, r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.sum(r, dim=(0, 2, 3) if r.dim() == 4 else 0, out=out)

    def feedback_layout(self, k: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """For a random kernel standing in for W[k]: the 2-D ``(sender, receiver)`` shape the factory
        draws (a receiving input unit hears ``sender`` outputs) and the forward init's (fan_in, fan_out)."""
        w = self.W[k]
        if self.kinds[k] == "conv":
            cout, cin, kh, kw = w.shape
            return (cout * kh * kw, cin), (cin * kh * kw, cout * kh * kw)
        return tuple(w.shape), (w.shape[1], w.shape[0])

    def as_kernel(self, k: int, m: torch.Tensor) -> torch.Tensor:
        """A ``(sender, receiver)`` matrix from the factory laid out as W[k]."""
        if self.kinds[k] != "conv":
            return m
        cout, cin, kh, kw = self.W[k].shape
        return m.reshape(cout, kh, kw, cin).permute(0, 3, 1, 2).contiguous()


def _glorot_kernel(shape, fan_in: int, fan_out: int, init: str, rng: np.random.Generator) -> torch.Tensor:
    if init == "glorot_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)
    elif init == "glorot_uniform":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-a, a, size=shape)
    else:
        raise bad_value("model.init", init, "glorot_normal, glorot_uniform")
    return torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
