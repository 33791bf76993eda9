"""Forward networks on torch tensors, no autograd: the training loop owns every buffer.

Weights are stored as ``W[k]`` of shape ``(N_{k+1}, N_k)`` for layer k = 0..L-1 and biases
``b[k]``; activations are batch-major, ``O[k]`` of shape ``(batch, N_k)`` with ``O[0]`` the input
and ``O[L]`` the softmax output. Hidden activations are kept for the update; the activation
derivative is computed from ``O`` (tanh: 1-O^2, logistic: O(1-O), relu: O>0, linear: 1), so
``S`` need not be stored.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import bad_value

ACTIVATIONS = ("tanh", "relu", "logistic", "linear")


def glorot(shape_out_in: tuple[int, int], init: str, rng: np.random.Generator) -> np.ndarray:
    fan_out, fan_in = shape_out_in
    if init == "glorot_normal":
        return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape_out_in)
    if init == "glorot_uniform":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape_out_in)
    raise bad_value("model.init", init, "glorot_normal, glorot_uniform")


class MLP:
    """Fully connected net, hidden activation ``activation``, softmax output."""

    def __init__(self, sizes, activation: str = "tanh", init: str = "glorot_normal",
                 rng: np.random.Generator | None = None):
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise bad_value("layer sizes", sizes, "at least two sizes, each >= 1")
        if activation not in ACTIVATIONS:
            raise bad_value("activation", activation, ", ".join(ACTIVATIONS))
        rng = rng if rng is not None else np.random.default_rng(0)
        self.sizes = sizes
        self.activation = activation
        self.W = [torch.from_numpy(np.ascontiguousarray(glorot((sizes[k + 1], sizes[k]), init, rng), dtype=np.float32))
                  for k in range(len(sizes) - 1)]
        self.b = [torch.zeros(n) for n in sizes[1:]]

    @property
    def n_layers(self) -> int:
        return len(self.W)

    def new_activations(self, batch: int) -> list[torch.Tensor]:
        return [torch.empty(batch, n) for n in self.sizes]

    def forward(self, x: torch.Tensor, acts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Fill ``acts`` (from ``new_activations``) for input ``x``; returns it."""
        acts[0] = x
        last = self.n_layers - 1
        for k in range(self.n_layers):
            out = acts[k + 1]
            torch.addmm(self.b[k], acts[k], self.W[k].T, out=out)
            if k < last:
                _activate_(out, self.activation)
        softmax_(acts[-1])
        return acts

    def fprime_(self, o: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write f'(S) into ``out``, computed from the layer's output ``o``."""
        a = self.activation
        if a == "tanh":
            torch.mul(o, o, out=out)
            out.neg_().add_(1.0)
        elif a == "logistic":
            torch.mul(o, o, out=out)
            out.neg_().add_(o)
        elif a == "relu":
            torch.sign(o, out=out)  # relu outputs are >= 0, so sign is the step function
        else:
            out.fill_(1.0)
        return out

    def predict_proba(self, x: torch.Tensor, batch: int = 2000) -> torch.Tensor:
        out = torch.empty(x.shape[0], self.sizes[-1])
        acts = self.new_activations(min(batch, max(1, x.shape[0])))
        for start in range(0, x.shape[0], batch):
            xb = x[start:start + batch]
            if xb.shape[0] != acts[0].shape[0]:
                acts = self.new_activations(xb.shape[0])
            out[start:start + batch] = self.forward(xb, acts)[-1]
        return out

    def state(self) -> dict:
        return {"W": [w.clone() for w in self.W], "b": [b.clone() for b in self.b]}

    def load_state(self, state: dict) -> None:
        for dst, src in zip(self.W + self.b, state["W"] + state["b"]):
            dst.copy_(src)


def _activate_(s: torch.Tensor, activation: str) -> None:
    if activation == "tanh":
        # tanh(x) = 2 sigmoid(2x) - 1: torch's CPU sigmoid is ~3x faster than its tanh on these
        # shapes, and the identity costs at most ~1e-7 absolute error.
        s.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)
    elif activation == "relu":
        s.clamp_(min=0.0)
    elif activation == "logistic":
        s.sigmoid_()


def softmax_(s: torch.Tensor) -> torch.Tensor:
    """In-place row softmax (numerically safe)."""
    s.sub_(s.amax(dim=1, keepdim=True)).exp_()
    s.div_(s.sum(dim=1, keepdim=True))
    return s
