"""The cost of one link's map: products, adds, connections and feedback storage of the channel
into one receiving layer, for one example (dense, sparse binary, low rank, conv kernel, per weight)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hw_models import operands as opd
from hw_models.errors import CostModelError, bad
from hw_models.layers import Conv2d, Dense
from hw_models.operands import BINARY, FLOAT32, Operand

from ..core.algorithms import Link
from .setup import Setup


@dataclass
class Stage:
    what: str
    products: float
    adds: float
    a: Operand
    b: Operand
    fan_in: float


@dataclass
class MapCost:
    """What carrying one sender's signal to one receiving layer costs per example (before dropout)."""

    kind: str               # dense | conv | lowrank | per_weight
    senders: int
    receivers: int
    dense_products: float   # products of the dense map (for adaptive updates)
    stages: list
    connections: float      # sender->receiver-tile connections (point to point)
    active_senders: float   # sender neurons with at least one connection (broadcast wires)
    scale_ops: float = 0.0
    scale_op: str | None = None
    storage_kind: str = "dense"
    storage_bits: float = 0.0
    read_bits: float = 0.0  # bits read from the feedback store per example
    nnz: float = 0.0
    drawn: str = "expected"  # expected | actual


def _expected_extra_adds(fan: float, p: float, receivers: float) -> float:
    """Expected adds to sum the non-zero terms: receivers x E[max(X - 1, 0)], X ~ Binomial(fan, p)."""
    n = max(int(round(fan)), 0)
    if n == 0 or p <= 0:
        return 0.0
    return receivers * (n * p - 1.0 + (1.0 - p) ** n)


def _scale_op(scale: float) -> str | None:
    if scale == 1.0:
        return None
    e = math.log2(abs(scale)) if scale else 0.0
    return "shift" if scale and float(e).is_integer() else "mult"


def _binary_scale(arr: np.ndarray):
    """If every non-zero of ``arr`` has the same magnitude, that magnitude (a binary matrix), else None."""
    nz = np.abs(arr[arr != 0])
    if nz.size == 0:
        return 1.0
    v = float(nz[0])
    return v if np.all(nz == nz[0]) else None


def _idx_bits(n: float) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def map_cost(s: Setup, link: Link, sig: Operand) -> MapCost:
    """Products, adds, connections and storage of the channel into ``link.receiver`` for one example."""
    recv = s.layers[link.receiver]
    rn = recv.n_out
    adaptive = s.rule.adaptive
    spec = s.fb_spec
    if link.source == "forward":
        b_op, kind_src = s.weight, "forward"
    elif link.source == "forward_product":
        # SBP multiplies the stored weights (the trainer's products use them, not a forward copy).
        w = s.weight_store
        b_op, kind_src = opd.result(w, w) if not w.is_float else FLOAT32, "product"
    else:
        b_op, kind_src = s.feedback, "random"

    # per-weight feedback: one random weight per (sender, forward weight of the receiving layer)
    if s.cfg.channel.per_weight:
        if not isinstance(recv, Dense):
            raise CostModelError("channel.per_weight is modelled for dense layers only")
        sn = s.layers[link.sender].n_out
        nw = recv.n_weights
        if spec.kind == "sparse":
            p = spec.density(sn, nw)
            stage = Stage("feedback_product", sn * nw * p, _expected_extra_adds(sn, p, nw), sig, BINARY, sn)
            conns = sn * rn * (1.0 - (1.0 - p) ** recv.n_in)
            bits = sn * nw * p * _idx_bits(sn)
        else:
            stage = Stage("feedback_product", sn * nw, (sn - 1) * nw, sig, b_op, sn)
            conns = sn * rn
            bits = sn * nw * b_op.bits
        return MapCost("per_weight", sn, rn, sn * nw, [stage], conns, sn, storage_kind="dense",
                       storage_bits=bits, read_bits=bits, nnz=stage.products)

    # convolution kernel map (BP / RBP into the layer below a convolution)
    if link.sender == link.receiver + 1 and isinstance(s.layers[link.sender], Conv2d):
        nxt = s.layers[link.sender]
        dense_products = float(nxt.backward_macs)
        fan = dense_products / rn
        kernel = nxt.n_weights
        arr = s.matrices.get(link.receiver)
        if kind_src == "random" and spec.kind == "lowrank":
            raise CostModelError("feedback 'lowrank' is defined for dense maps; the channel into layer "
                                 f"{link.receiver + 1} is a convolution kernel")
        density, binary_scale, drawn = 1.0, None, "expected"
        if kind_src == "random" and arr is not None:
            density = float(np.count_nonzero(arr)) / arr.size
            binary_scale = _binary_scale(arr) if spec.kind == "sparse" else None
            drawn = "actual"
        elif kind_src == "random" and spec.kind == "sparse" and not adaptive:
            density = spec.density(nxt.out_ch * nxt.k * nxt.k, nxt.in_ch * nxt.k * nxt.k)
            binary_scale = spec.scale(s.rule.skipped)
        products = dense_products * density
        if binary_scale is not None and not adaptive:
            p = density
            st = Stage("feedback_product", products, _expected_extra_adds(fan, p, rn), sig, BINARY, fan)
            scale_ops = rn * (1.0 - (1.0 - p) ** max(int(round(fan)), 0))
            nnz_k = kernel * p
            storage = nnz_k * _idx_bits(nxt.out_ch * nxt.k * nxt.k) + (nxt.in_ch + 1) * _idx_bits(nnz_k + 1)
            return MapCost("conv", nxt.n_out, rn, dense_products, [st], products, nxt.n_out,
                           scale_ops, _scale_op(binary_scale), "sparse_index", storage, storage, nnz_k, drawn)
        st = Stage("feedback_product", products, max(products - rn, 0.0), sig, b_op, fan)
        if kind_src == "forward":
            return MapCost("conv", nxt.n_out, rn, dense_products, [st], products, nxt.n_out,
                           storage_kind="shared_forward", storage_bits=0.0,
                           read_bits=kernel * s.weight.bits, nnz=kernel)
        return MapCost("conv", nxt.n_out, rn, dense_products, [st], products, nxt.n_out,
                       storage_kind="dense", storage_bits=kernel * density * b_op.bits,
                       read_bits=kernel * density * b_op.bits, nnz=kernel * density, drawn=drawn)

    # dense map (S x Rn)
    sn = s.layers[link.sender].n_out
    dense_products = float(sn * rn)
    if kind_src == "forward":
        w = s.layers[link.sender]
        st = Stage("feedback_product", dense_products, (sn - 1) * rn, sig, b_op, sn)
        return MapCost("dense", sn, rn, dense_products, [st], dense_products, sn, storage_kind="shared_forward",
                       storage_bits=0.0, read_bits=w.n_weights * s.weight.bits, nnz=dense_products)
    if kind_src == "product":
        st = Stage("feedback_product", dense_products, (sn - 1) * rn, sig, b_op, sn)
        shared = link.receiver == s.L - 2     # the product above the last hidden layer is W^L itself
        bits = 0.0 if shared else dense_products * b_op.bits
        return MapCost("dense", sn, rn, dense_products, [st], dense_products, sn,
                       storage_kind="shared_forward" if shared else "product", storage_bits=bits,
                       read_bits=dense_products * b_op.bits, nnz=dense_products)
    if spec.two_factors((sn, rn)) and not adaptive:
        r = spec.r
        if r > min(sn, rn):
            raise bad(f"feedback lowrank r (channel into layer {link.receiver + 1})", r,
                      f"1..{min(sn, rn)} for a {sn}x{rn} matrix")
        st1 = Stage("feedback_product", sn * r, (sn - 1) * r, sig, b_op, sn)
        mid = opd.accumulator(sig, b_op, sn)
        st2 = Stage("feedback_product_factor2", r * rn, (r - 1) * rn, mid, b_op, r)
        bits = (sn + rn) * r * b_op.bits
        return MapCost("lowrank", sn, rn, dense_products, [st1, st2], sn * r, sn, storage_kind="lowrank",
                       storage_bits=bits, read_bits=bits, nnz=(sn + rn) * r)
    arr = s.matrices.get(link.receiver)
    if adaptive and spec.kind in ("sparse", "lowrank"):
        s.notes.append(f"{s.algorithm}: the adaptive channel updates every entry of C, so the {spec.kind} "
                       f"feedback becomes dense after the first update; it is costed as dense")
        arr = None
    if spec.kind == "sparse" and not adaptive:
        scale = spec.scale(s.rule.skipped)
        if arr is not None:
            nnz_col = np.count_nonzero(arr, axis=0).astype(float)
            bscale = _binary_scale(arr)
            products = float(nnz_col.sum())
            adds = float(np.maximum(nnz_col - 1, 0).sum())
            active = float(np.count_nonzero(np.any(arr != 0, axis=1)))
            receivers_hit = float(np.count_nonzero(nnz_col))
            drawn = "actual"
            if bscale is None:     # a quantized feedback format left several magnitudes: real products
                st = Stage("feedback_product", products, adds, sig, b_op, sn)
                bits = products * (_idx_bits(sn) + b_op.bits)
                return MapCost("dense", sn, rn, dense_products, [st], products, active, storage_kind="sparse_index",
                               storage_bits=bits, read_bits=bits, nnz=products, drawn=drawn)
            scale = bscale
        else:
            p = spec.density(sn, rn)
            products = dense_products * p
            adds = _expected_extra_adds(sn, p, rn)
            active = sn * (1.0 - (1.0 - p) ** rn)
            receivers_hit = rn * (1.0 - (1.0 - p) ** sn)
            drawn = "expected"
        st = Stage("feedback_product", products, adds, sig, BINARY, sn)
        bits = products * _idx_bits(sn) + (rn + 1) * _idx_bits(products + 1)
        return MapCost("dense", sn, rn, dense_products, [st], products, active, receivers_hit if _scale_op(scale) else 0.0,
                       _scale_op(scale), "sparse_index", bits, bits, products, drawn)
    # dense random (glorot_*, sign_concordant, or an adaptive channel)
    if arr is not None:
        nnz_col = np.count_nonzero(arr, axis=0).astype(float)
        products = float(nnz_col.sum())
        adds = float(np.maximum(nnz_col - 1, 0).sum())
        active = float(np.count_nonzero(np.any(arr != 0, axis=1)))
        drawn = "actual"
    else:
        products, adds, active, drawn = dense_products, float((sn - 1) * rn), float(sn), "expected"
    st = Stage("feedback_product", products, adds, sig, b_op, sn)
    bits = dense_products * b_op.bits
    return MapCost("dense", sn, rn, dense_products, [st], products, active, storage_kind="dense",
                   storage_bits=bits, read_bits=bits, nnz=products, drawn=drawn)


