"""Operands of the arithmetic, derived from the project's number formats, and the rules that turn a
product of two operands into an operation (multiply, shift, sign flip, or nothing) and a sum of
products into an accumulator width.

Operand kinds:
    float   IEEE float (the project's Float32)                       bits 32
    fixed   two's-complement fixed point (FixedPoint)                bits = word
    log     log-quantized, >= 2 bits (LogQuant): +-alpha * 2^e       bits = format bits
    sign    1-bit log-quantized (LogQuant bits=1): +-alpha           bits 1
    binary  {0, 1} entries of a sparse binary feedback matrix        bits 1

Products (``product_op``), first rule that applies:
    binary x anything   no operation: the non-zero is a gate, the value goes straight to the adder
    sign x X            sign flip (conditional negate) of X
    log x X             shift of X by the exponent (the sign is applied by the adder as add/subtract)
    float involved      float multiply
    fixed x fixed       integer multiply of the two widths
The scale alpha of log formats and the 1/n of sparse RBP are common to every term of a sum; alpha
is a power of two in every paper setting and is folded into the learning rate (not counted); 1/n is
counted once per receiving neuron (a shift when n is a power of two, else a multiply; none for n=1).

Accumulator of a sum of ``fan_in`` products (``accumulator``): float if either operand is float
(IEEE single add), else an integer of width ``span_a + span_b + ceil(log2(fan_in))`` where span is
the operand's width as a fixed-point integer (fixed: word; log: -E_min + 2; sign: 1; binary: 0),
the HW_COSTS rule ``acc ~ a + b + log2(fan-in)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import CostModelError


KINDS = ("float", "fixed", "log", "sign", "binary")


@dataclass(frozen=True)
class Operand:
    kind: str
    bits: int
    span: int = 0  # width as a fixed-point integer (unused for float)

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def dtype(self) -> str:
        return "float" if self.kind == "float" else "int"

    def label(self) -> str:
        return f"{self.kind}{self.bits}"


FLOAT32 = Operand("float", 32, 0)
BINARY = Operand("binary", 1, 0)


def operand(fmt) -> Operand:
    """The operand a number format puts on a wire or into an ALU. ``fmt`` is any object with the
    number-format interface (``kind`` float | fixed | log, ``bits``; log formats: ``min_exponent``),
    e.g. the formats of ``lowbit_rbp.core.formats``."""
    if fmt.kind == "float":
        return FLOAT32
    if fmt.kind == "fixed":
        return Operand("fixed", fmt.bits, fmt.bits)
    if fmt.kind == "log":
        if fmt.bits == 1:
            return Operand("sign", 1, 1)
        return Operand("log", fmt.bits, -fmt.min_exponent + 2)
    raise CostModelError(f"number format {fmt!r}: kind {fmt.kind!r}; allowed: float, fixed, log")


def fixed(bits: int) -> Operand:
    return Operand("fixed", int(bits), int(bits))


@dataclass(frozen=True)
class ProductOp:
    """One product as hardware does it: ``op`` on an operand of ``dtype`` / ``bits_a`` x ``bits_b``.

    For ``sign_flip`` and ``shift`` ``bits_a`` is the width of the operand that is negated or
    shifted and ``bits_b`` the width of the 1-bit or log operand.
    """

    op: str       # mult | shift | sign_flip
    dtype: str    # float | int
    bits_a: int
    bits_b: int


def product_op(a: Operand, b: Operand) -> ProductOp | None:
    """The operation one product ``a * b`` costs, or None for a binary gate (no operation)."""
    if a.kind == "binary" or b.kind == "binary":
        return None
    if a.kind == "sign" or b.kind == "sign":
        other, one = (b, a) if a.kind == "sign" else (a, b)
        return ProductOp("sign_flip", other.dtype, other.bits, one.bits)
    if a.kind == "log" or b.kind == "log":
        other, lg = (b, a) if a.kind == "log" else (a, b)
        return ProductOp("shift", other.dtype, other.bits, lg.bits)
    if a.is_float or b.is_float:
        return ProductOp("mult", "float", a.bits, b.bits)
    return ProductOp("mult", "int", a.bits, b.bits)


def accumulator(a: Operand, b: Operand, fan_in: float) -> Operand:
    """The adder an accumulation of ``fan_in`` products ``a * b`` needs."""
    if a.is_float or b.is_float:
        return FLOAT32
    span = max(1, a.span + b.span)
    return fixed(span + max(0, math.ceil(math.log2(max(fan_in, 1.0)))))


def result(a: Operand, b: Operand) -> Operand:
    """The operand a single product ``a * b`` yields (float if either is float)."""
    if a.kind == "binary":
        return b
    if b.kind == "binary":
        return a
    if a.is_float or b.is_float:
        return FLOAT32
    return fixed(max(1, a.span + b.span))


def is_quantized(fmt) -> bool:
    return fmt.kind != "float"
