"""More elementwise ops: rounding (sign, floor, ceil, round, trunc, frac), rsqrt, log1p, expm1,
nan_to_num, floor division and remainder, and the tests isnan/isinf/isfinite.

Same pattern as elementwise.py: forward with numpy, backward the local derivative times the
incoming gradient, written with Tensor ops so it can be differentiated again.

    sign, floor, ceil, round, trunc:  derivative 0 (piecewise constant; PyTorch says 0 too)
    frac(x) = x - trunc(x):           1
    rsqrt(x) = x^(-1/2):              -1/2 x^(-3/2) = -1/2 rsqrt(x)^3
    log1p(x) = log(1 + x):            1 / (1 + x)
    expm1(x) = e^x - 1:               e^x = expm1(x) + 1
    remainder(a, b) = a - floor(a/b) b:   d/da = 1, d/db = -floor(a/b)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError
from tinynet.ops.datadep import _Compare
from tinynet.ops.elementwise import abs as absolute
from tinynet.ops.elementwise import add, div, mul, sub, where
from tinynet.ops.operands import as_floating, as_tensor, operands
from tinynet.tensor import Tensor


def _zero_gradient(grad: Tensor) -> Tensor:
    """The gradient of a piecewise-constant op: zeros (not grad * 0, which is NaN at inf)."""
    return Tensor._make(np.zeros_like(grad.data))


class Sign(Function):
    """sign(x) in {-1, 0, 1} (0 at NaN, as PyTorch); d/dx = 0"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        if x.dtype == np.bool_:
            return x.copy()
        return np.sign(np.where(np.isnan(x), 0, x)) if x.dtype.kind == "f" else np.sign(x)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return _zero_gradient(grad)


class _Rounding(Function):
    """A rounding op (floor, ceil, trunc, round): integers pass unchanged; d/dx = 0."""

    rule: Any = None

    @classmethod
    def forward(cls, ctx: Function, x: Any, decimals: int = 0) -> np.ndarray:
        if x.dtype.kind != "f":
            return x.copy()
        return cls.rule(x, decimals)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return _zero_gradient(grad)


class Floor(_Rounding):
    """floor(x): the largest integer <= x; d/dx = 0"""

    rule = staticmethod(lambda x, decimals: np.floor(x))


class Ceil(_Rounding):
    """ceil(x): the smallest integer >= x; d/dx = 0"""

    rule = staticmethod(lambda x, decimals: np.ceil(x))


class Trunc(_Rounding):
    """trunc(x): x rounded towards 0; d/dx = 0"""

    rule = staticmethod(lambda x, decimals: np.trunc(x))


class Round(_Rounding):
    """round(x, decimals): half to even (2.5 -> 2, as PyTorch and numpy); d/dx = 0"""

    rule = staticmethod(lambda x, decimals: np.round(x, decimals))


class Frac(Function):
    """frac(x) = x - trunc(x) (keeps x's sign); d/dx = 1"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        return x - np.trunc(x)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad


class Rsqrt(Function):
    """rsqrt(x) = 1/sqrt(x); d/dx = -1/2 rsqrt(x)^3"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1 / np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        with np.errstate(over="ignore", invalid="ignore"):
            return grad * (out * out * out * -0.5)


class Log1p(Function):
    """log1p(x) = log(1 + x), accurate near 0; d/dx = 1 / (1 + x)"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        ctx.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(x)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / (x + 1)


class Expm1(Function):
    """expm1(x) = e^x - 1, accurate near 0; d/dx = e^x = expm1(x) + 1"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        with np.errstate(over="ignore"):
            out = np.expm1(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad * (out + 1)


class NanToNum(Function):
    """NaN -> nan, +inf -> posinf, -inf -> neginf (the dtype's largest and smallest finite
    values by default); d/dx = 1 where x is finite, 0 where it was replaced"""

    @staticmethod
    def forward(ctx: Function, x: Any, nan: float = 0.0, posinf: Any = None,
                neginf: Any = None) -> np.ndarray:
        ctx.finite = np.isfinite(x)
        return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return where(ctx.finite, grad, 0.0)


class Remainder(Function):
    """remainder(a, b) = a - floor(a/b) b, the sign of b (Python's %, PyTorch's remainder):
    d/da = 1, d/db = -floor(a/b)"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            ctx.quotient = np.floor_divide(a, b)  # a constant: floor's derivative is 0
            return np.remainder(a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        need_a, need_b = ctx.needs_input_grad
        return (grad if need_a else None), (grad * -ctx.quotient if need_b else None)


def sign(input: Any) -> Tensor:  # noqa: A002 - PyTorch's names
    """-1, 0 or 1 by the sign of each element (bool tensors are returned as they are)."""
    return Sign.apply(as_tensor(input, "sign"))


def floor(input: Any) -> Tensor:  # noqa: A002
    return Floor.apply(as_tensor(input, "floor"))


def ceil(input: Any) -> Tensor:  # noqa: A002
    return Ceil.apply(as_tensor(input, "ceil"))


def trunc(input: Any) -> Tensor:  # noqa: A002
    return Trunc.apply(as_tensor(input, "trunc"))


fix = trunc


def round(input: Any, *, decimals: int = 0) -> Tensor:  # noqa: A001, A002
    """Round half to even, to ``decimals`` places (as ``torch.round``)."""
    return Round.apply(as_tensor(input, "round"), decimals=int(decimals))


def frac(input: Any) -> Tensor:  # noqa: A002
    """The fractional part x - trunc(x); floating point tensors only, as in PyTorch."""
    x = as_tensor(input, "frac")
    if x.data.dtype.kind != "f":
        raise DTypeError(f"frac: defined for floating point tensors only, got {x.dtype} (as in "
                         "PyTorch); an integer has no fractional part, or convert it (x.float())")
    return Frac.apply(x)


def rsqrt(input: Any) -> Tensor:  # noqa: A002
    """1 / sqrt(x); integer tensors give the default float dtype."""
    return Rsqrt.apply(as_floating(input, "rsqrt"))


def log1p(input: Any) -> Tensor:  # noqa: A002
    return Log1p.apply(as_floating(input, "log1p"))


def expm1(input: Any) -> Tensor:  # noqa: A002
    return Expm1.apply(as_floating(input, "expm1"))


def nan_to_num(input: Any, nan: float = 0.0, posinf: float | None = None,  # noqa: A002
               neginf: float | None = None) -> Tensor:
    """NaN, +inf and -inf replaced by numbers (0, and the dtype's largest and smallest finite
    values, unless given); integer tensors are returned unchanged."""
    x = as_tensor(input, "nan_to_num")
    if x.data.dtype.kind != "f":
        return x.clone()
    return NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)


def isnan(input: Any) -> Tensor:  # noqa: A002
    """A bool tensor: True where the value is NaN."""
    return _Compare.apply(as_tensor(input, "isnan"), fn=np.isnan)


def isinf(input: Any) -> Tensor:  # noqa: A002
    return _Compare.apply(as_tensor(input, "isinf"), fn=np.isinf)


def isfinite(input: Any) -> Tensor:  # noqa: A002
    return _Compare.apply(as_tensor(input, "isfinite"), fn=np.isfinite)


def _integer_operands(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    a, b = operands(a, b, op)
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    if x.dtype == np.bool_ and y.dtype == np.bool_:
        raise DTypeError(f"{op}: not defined for two bool tensors (as in PyTorch); convert "
                         "them first (e.g. a.long())")
    if x.dtype.kind in "iub" and np.any(y == 0):
        raise ZeroDivisionError(f"{op}: integer division by zero (a tensor of dtype "
                                f"{x.dtype} divided by {y.dtype} with a zero in it)")
    return a, b


def floor_divide(input: Any, other: Any) -> Tensor:  # noqa: A002
    """floor(a / b), elementwise (``a // b``), in the promoted dtype, as PyTorch's
    floor_divide. Not differentiable (PyTorch has no derivative for it either): the result
    never requires grad."""
    a, b = _integer_operands(input, other, "floor_divide")
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    with np.errstate(divide="ignore", invalid="ignore"):
        return Tensor._make(np.asarray(np.floor_divide(x, y)))


def remainder(input: Any, other: Any) -> Tensor:  # noqa: A002
    """a - floor(a / b) b (``a % b``): the result has the sign of b, as Python's % and
    PyTorch's remainder (not C's fmod)."""
    a, b = _integer_operands(input, other, "remainder")
    return Remainder.apply(a, b)


def true_divide(input: Any, other: Any) -> Tensor:  # noqa: A002
    from tinynet.ops.elementwise import div

    return div(input, other)


def divide(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:  # noqa: A002
    """``torch.div`` with ``rounding_mode``: None (true division), "floor" or "trunc"."""
    from tinynet.ops.elementwise import div

    if rounding_mode is None:
        return div(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        a, b = _integer_operands(input, other, "div")
        x = a.data if isinstance(a, Tensor) else a
        y = b.data if isinstance(b, Tensor) else b
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.trunc(np.true_divide(x, y)) if x.dtype.kind == "f" else np.sign(x) * np.sign(
                y) * (np.abs(x) // np.abs(y))
        return Tensor._make(np.asarray(q).astype(dtypes.result_type(x, y), copy=False))
    raise DTypeError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")


# Fused multiply/divide-adds and linear interpolation, as optimizers and EMAs write them
# (``exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)``,
# ``ema.lerp_(p, 0.01)``). Compositions of the ops above: their gradients are those ops' rules.

def addcmul(input: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:  # noqa: A002
    """input + value * tensor1 * tensor2 (multiplied in that order, as PyTorch's kernel)."""
    scaled = tensor1 if value == 1 else mul(tensor1, value)
    return add(input, mul(scaled, tensor2))


def addcdiv(input: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:  # noqa: A002
    """input + value * tensor1 / tensor2 (in that order, as PyTorch's kernel)."""
    if _dtype_of(tensor1).kind in "biu" and _dtype_of(tensor2).kind in "biu":
        raise DTypeError("addcdiv: integer division of tensor1 by tensor2 is not supported "
                         "(as in PyTorch); use addcmul, or convert them with .float()")
    scaled = tensor1 if value == 1 else mul(tensor1, value)
    return add(input, div(scaled, tensor2))


def lerp(input: Any, end: Any, weight: Any) -> Tensor:  # noqa: A002
    """input + weight * (end - input), PyTorch's formula: for |weight| >= 0.5 it computes
    end - (end - input) * (1 - weight) instead, which is exact at weight = 1 (lerp gives
    ``end`` itself, not ``input + (end - input)``, which can round away from it)."""
    step = sub(end, input)
    small = add(input, mul(weight, step))
    if not isinstance(weight, Tensor):
        return small if abs(weight) < 0.5 else sub(end, mul(step, 1 - weight))
    large = sub(end, mul(step, sub(1, weight)))
    return where(absolute(weight) < 0.5, small, large)


def _dtype_of(x: Any) -> np.dtype:
    return x.dtype if isinstance(x, Tensor) else np.asarray(x).dtype
