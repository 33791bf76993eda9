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

from kernels import dispatch

from ..errors import bad_value

ACTIVATIONS = ("tanh", "relu", "logistic", "linear")


def glorot(shape_out_in: tuple[int, int], init: str, rng: np.random.Generator) -> np.ndarray:
    fan_out, fan_in = shape_out_in
    if init == "glorot_normal":
        return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape_out_in)
    if init == "glorot_uniform":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape_out_in)
    raise bad_value("model.init", init, "glorot_normal, glorot_uniform")


class Net:
    """What every forward net shares: f' from the outputs, evaluation in chunks, checkpoint state,
    and the forward precision (``set_formats``): weights stored in a number format (or a float32
    shadow of them, read quantized), hidden activations quantized."""

    eval_batch = 2000   # examples per evaluation chunk
    weight_q = None     # a Quantizer of the stored weights (formats.weights), or None for float32
    act_q = None        # a Quantizer of the hidden activations (formats.activations), or None
    shadow = False      # the forward reads a quantized copy of float32 master weights

    def set_formats(self, weight_q=None, act_q=None, shadow: bool = False) -> None:
        """Put the net on its forward formats. Without a shadow the weights and biases are rounded
        into ``weight_q``'s format now (and by every update); a format that cannot hold the
        initial weights (every weight saturates or rounds to 0 in some layer) is refused."""
        self.act_q = act_q
        self.weight_q, self.shadow = weight_q, shadow
        if weight_q is None:
            return
        for k, w in enumerate(self.W):
            _check_representable(weight_q.fmt, k, w)
        if shadow:
            self.W_fwd = [torch.empty_like(w) for w in self.W]
            self.b_fwd = [torch.empty_like(b) for b in self.b]
        else:
            for t in self.W + self.b:
                weight_q(t)

    def forward_params(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer k's weights and bias as this forward pass reads them (a fresh quantized copy of
        the master weights with a shadow), recorded in ``W_fwd`` for BP's channel."""
        if not self.shadow:
            return self.W[k], self.b[k]
        w, b = self.W_fwd[k].copy_(self.W[k]), self.b_fwd[k].copy_(self.b[k])
        self.weight_q(w)
        self.weight_q(b)
        return w, b

    @property
    def n_layers(self) -> int:
        return len(self.W)

    def predict_proba(self, x: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        batch = batch or self.eval_batch
        out = torch.empty(x.shape[0], self.sizes[-1])
        acts = self.new_activations(min(batch, max(1, x.shape[0])))
        for start in range(0, x.shape[0], batch):
            xb = x[start:start + batch]
            if xb.shape[0] != acts[0].shape[0]:
                acts = self.new_activations(xb.shape[0])
            out[start:start + batch] = self.forward(xb, acts)[-1]
        return out

    def _activate_hidden_(self, k: int, s: torch.Tensor) -> None:
        """Hidden layer k's activation in place, then its forward quantizer (Brevitas) if any."""
        _activate_(s, self.activation)
        if self.act_q is not None:
            self.act_q(s)

    def fprime_(self, o: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write f'(S) into ``out``, computed from the layer's output ``o``."""
        return fprime_from_output_(self.activation, o, out)

    def mul_fprime_(self, r: torch.Tensor, o: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        """``r *= f'(S)`` in place, from the layer's output ``o``; ``scratch`` has r's shape."""
        return mul_fprime_from_output_(self.activation, r, o, scratch)

    def state(self) -> dict:
        return {"W": [w.clone() for w in self.W], "b": [b.clone() for b in self.b],
                "counters": [q.counter if q is not None else 0 for q in (self.weight_q, self.act_q)]}

    def load_state(self, state: dict) -> None:
        for dst, src in zip(self.W + self.b, state["W"] + state["b"]):
            dst.copy_(src)
        for q, c in zip((self.weight_q, self.act_q), state.get("counters", (0, 0))):
            if q is not None:
                q.counter = c


class MLP(Net):
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
        self.shapes = [(n,) for n in sizes]
        # Weights as the forward pass used them: W itself, or their quantized copy with a shadow
        # (``set_formats``); BP sends its signal through these.
        self.W_fwd = list(self.W)
        # Transposed views made once (a view costs a few microseconds of dispatch per minibatch);
        # they stay valid because W is only ever updated in place.
        self._W_T = [w.T for w in self.W]

    def new_activations(self, batch: int) -> list[torch.Tensor]:
        return [torch.empty(batch, n) for n in self.sizes]

    def forward(self, x: torch.Tensor, acts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Fill ``acts`` (from ``new_activations``) for input ``x``; returns it."""
        acts[0] = x
        last = self.n_layers - 1
        for k in range(self.n_layers):
            out = acts[k + 1]
            if self.shadow:
                w, b = self.forward_params(k)
                w_t = w.T
            else:
                w_t, b = self._W_T[k], self.b[k]
            torch.addmm(b, acts[k], w_t, out=out)
            if k < last:
                self._activate_hidden_(k, out)
        softmax_(acts[-1])
        return acts

    # --- the learning channel's view of the layers (the same interface as ConvNet) -----------
    @property
    def kinds(self) -> list[str]:
        return ["dense"] * self.n_layers

    def route(self, k: int, r: torch.Tensor) -> torch.Tensor:
        """A dense layer's update uses the signal where its units receive it."""
        return r

    def backward_input(self, k: int, r: torch.Tensor, kernel: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """What layer k sends to its input units through ``kernel`` (shape of W[k]): ``r @ kernel``."""
        return torch.mm(r, kernel, out=out)

    def weight_grad(self, k: int, r: torch.Tensor, acts, out: torch.Tensor) -> torch.Tensor:
        return torch.mm(r.T, acts[k], out=out)

    def bias_grad(self, k: int, r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.sum(r, dim=0, out=out)

    def feedback_layout(self, k: int):
        """``(sender, receiver)`` of a random matrix standing in for W[k], and W[k]'s (fan_in, fan_out)."""
        return tuple(self.W[k].shape), (self.W[k].shape[1], self.W[k].shape[0])

    def as_kernel(self, k: int, m: torch.Tensor) -> torch.Tensor:
        return m


def _check_representable(fmt, k: int, w: torch.Tensor) -> None:
    """Refuse a stored-weight format in which layer k's initial weights saturate or all vanish."""
    from ..errors import ConfigError
    top = float(w.abs().max()) if w.numel() else 0.0
    largest = max(abs(fmt.int_min), fmt.int_max) * fmt.scale
    if top > largest:
        raise ConfigError(f"formats.weights {fmt.spec!r} cannot represent the initial weights of layer {k}: "
                          f"|W| reaches {top:.4g}, the format's largest magnitude is {largest:.4g}; allowed: a "
                          "format with more integer bits (a larger w - f)")
    if top < fmt.scale / 2:
        raise ConfigError(f"formats.weights {fmt.spec!r} rounds every initial weight of layer {k} to 0: |W| is at "
                          f"most {top:.4g}, below half its step {fmt.scale:.4g}; allowed: more fraction bits (f)")


def fprime_from_output_(activation: str, o: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write f'(S) into ``out`` from the output ``o = f(S)`` (tanh: 1-O^2, logistic: O(1-O),
    relu: step, linear: 1), so S need not be kept."""
    if activation == "tanh":
        torch.mul(o, o, out=out)
        out.neg_().add_(1.0)
    elif activation == "logistic":
        torch.mul(o, o, out=out)
        out.neg_().add_(o)
    elif activation == "relu":
        torch.sign(o, out=out)  # relu outputs are >= 0, so sign is the step function
    else:
        out.fill_(1.0)
    return out


def mul_fprime_from_output_(activation: str, r: torch.Tensor, o: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """``r *= f'(S)`` from ``o = f(S)`` in the fewest passes: tanh r - (r o) o in one kernel pass,
    logistic (r o) - (r o) o in two fused ops, instead of building f' and then multiplying."""
    if activation == "tanh":
        if r.dtype is torch.float32:
            return dispatch.tanh_fprime_mul_(r, o)
        torch.mul(r, o, out=scratch)               # float64 nets (gradient checks)
        return r.addcmul_(scratch, o, value=-1.0)
    if activation == "logistic":
        torch.mul(r, o, out=scratch)
        return torch.addcmul(scratch, scratch, o, value=-1.0, out=r)
    if activation == "linear":
        return r
    return r.mul_(fprime_from_output_(activation, o, scratch))


def _activate_(s: torch.Tensor, activation: str) -> None:
    if activation == "tanh":
        # One vectorized pass of a float32 rational function (kernels.reference.tanh, within
        # 3.5e-7 of tanh): about 2x faster than the three torch ops of 2 sigmoid(2x) - 1 on a 100 x 100
        # minibatch, and than torch's own tanh, which is slower still. float64 nets (gradient
        # checks against autograd) use torch's tanh.
        if s.dtype is torch.float32:
            dispatch.tanh_(s)
        else:
            s.tanh_()
    elif activation == "relu":
        s.clamp_(min=0.0)
    elif activation == "logistic":
        s.sigmoid_()


def softmax_(s: torch.Tensor) -> torch.Tensor:
    """In-place row softmax (numerically safe: torch subtracts the row maximum). One fused kernel,
    3x faster than the four-op version on a 100 x 10 minibatch; it reads every element before
    writing it, so ``out=s`` is safe (tested against float64)."""
    return torch.softmax(s, 1, out=s)
