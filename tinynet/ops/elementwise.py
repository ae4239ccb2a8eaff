"""Elementwise arithmetic. Each op: forward with numpy, backward = the local derivative times
the incoming gradient. The engine sums gradients back to each input's shape afterwards, so
no rule here worries about broadcasting."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError, ValueRangeError, shape_str
from tinynet.kernels.formulas import LN2, LN10
from tinynet.ops import datadep
from tinynet.ops.operands import (  # Cast lives with the operands' promotion, which uses it
    Cast,  # noqa: F401 - tinynet.ops.elementwise.Cast, as before
    as_floating,
    as_tensor,
    cast,
    constant,
    operands,
)
from tinynet.tensor import Tensor, is_literal, made_from_literals


class Add(Function):
    """d(a+b)/da = 1, d(a+b)/db = 1"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        return np.add(a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Tensor, Tensor]:
        return grad, grad


class Sub(Function):
    """d(a-b)/da = 1, d(a-b)/db = -1"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Tensor, Tensor]:
        return grad, -grad


class Mul(Function):
    """d(ab)/da = b, d(ab)/db = a"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    """d(a/b)/da = 1/b, d(a/b)/db = -a/b^2"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.true_divide(a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            # -g a / b^2 as -g ((a / b) / b): b * b alone over- or underflows long before the
            # result does (1e-30 / b at b = 1e-25 has gradient -1e20, not -inf)
            return (grad / b if need_a else None), (-grad * ((a / b) / b) if need_b else None)


class Pow(Function):
    """d(a^b)/da = b a^(b-1) (0 where b = 0, even at a = 0, as PyTorch),
    d(a^b)/db = a^b log(a) (0 where a = 0 and b >= 0; nan where a < 0, as PyTorch)"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            if need_a:
                grad_a = grad * (b * a ** (b - 1))  # local derivative first: g b may overflow
                # a^0 = 1: no gradient, even at a = 0 (0 * inf), a = NaN or for an infinite or
                # NaN upstream gradient (PyTorch's where); elsewhere b a^(b-1) is already 0 at
                # b = 0, and stays differentiable in b (second derivatives)
                constant = (b.data == 0) & ((a.data == 0) | np.isnan(a.data)
                                            | ~np.isfinite(grad.data))
                if constant.any():
                    grad_a = where(constant, 0.0, grad_a)
            if need_b:  # (log in the result's dtype: a float32 base, float64 exponent)
                local = out * log(a.to(out.dtype))  # nan where a < 0, as PyTorch
                constant = (a.data == 0) & (b.data >= 0)  # 0^b is constant (0 or 1) for b >= 0
                if constant.any():  # (PyTorch's rule: the local derivative is 0 there)
                    local = where(constant, 0.0, local)
                grad_b = grad * local
        return grad_a, grad_b


class Neg(Function):
    """d(-a)/da = -1"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        return np.negative(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return -grad


class Exp(Function):
    """d/da exp(a) = exp(a)"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):
            out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    """d/da log(a) = 1/a"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / a


class Log10(Function):
    """d/da log10(a) = 1 / (a log 10)"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / (a * LN10)


class Log2(Function):
    """d/da log2(a) = 1 / (a log 2)"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log2(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / (a * LN2)


class Sqrt(Function):
    """d/da sqrt(a) = 1 / (2 sqrt(a))"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / (2 * out)


class Abs(Function):
    """d/da |a| = sign(a) (0 at a = 0 and at NaN, as PyTorch)"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        # a constant (its own derivative is 0): a plain attribute; sign(NaN) taken as 0, as
        # PyTorch's sgn, so a NaN input gets no gradient
        ctx.sign = np.sign(np.where(np.isnan(a), 0, a)) if a.dtype.kind == "f" else np.sign(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return where(ctx.sign == 0, 0.0, grad) * ctx.sign  # 0, not inf * 0, at a = 0


class _Extreme(Function):
    """Shared backward of maximum and minimum: forward keeps share_a and share_b, the part of
    each output element's gradient that goes to a and to b (1 and 0 where one wins, 1/2 each
    on a tie, 1 each where either is NaN: PyTorch's rule). An element that gets none of the
    gradient gets 0, even where the gradient is infinite (not inf * 0)."""

    shape_error = "cannot be broadcast"

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        # (masked before multiplying: inf * 0 would be nan, and a numpy warning)
        return (where(ctx.share_a == 0, 0.0, grad) * ctx.share_a,
                where(ctx.share_b == 0, 0.0, grad) * ctx.share_b)

    @staticmethod
    def shares(a_wins: Any, b_wins: Any, tie: Any, dtype: Any) -> tuple[Any, Any]:
        """a's share: 1 unless b wins, 1/2 on a tie; b's likewise."""
        return ((1 - b_wins - 0.5 * tie).astype(dtype, copy=False),
                (1 - a_wins - 0.5 * tie).astype(dtype, copy=False))


class Maximum(_Extreme):
    """d max(a,b)/da = 1 where a > b, 1/2 where a == b (ties split evenly, as PyTorch), else 0"""

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        out = np.maximum(a, b)
        ctx.share_a, ctx.share_b = _Extreme.shares(a > b, a < b, a == b, out.dtype)
        return out


class Minimum(_Extreme):
    """d min(a,b)/da = 1 where a < b, 1/2 where a == b, else 0"""

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        out = np.minimum(a, b)
        ctx.share_a, ctx.share_b = _Extreme.shares(a < b, a > b, a == b, out.dtype)
        return out


class Clip(Function):
    """clip(a, lo, hi) = min(max(a, lo), hi), PyTorch's clamp (lo, hi: numbers or tensors):

    d/da = 1 where lo <= a <= hi, else 0 (a keeps the gradient at a tie with a bound)
    d/dlo = 1 where a < lo and lo < hi;  d/dhi = 1 where a > hi or hi < lo (PyTorch's rule:
    with crossed bounds the result is hi, and hi gets the gradient)
    """

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, a: Any, low: Any = None, high: Any = None) -> np.ndarray:
        inside = True
        out = a
        if low is not None:
            inside = inside & (a >= low)
            out = np.maximum(out, low)
        if high is not None:
            inside = inside & (a <= high)
            out = np.minimum(out, high)
        ctx.inside = inside  # constant masks: plain attributes
        if isinstance(low, np.ndarray):  # a tensor bound may get a gradient too
            ctx.below = (a < low) & (True if high is None else low < high)
        if isinstance(high, np.ndarray):
            ctx.above = (a > high) | (False if low is None else high < low)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any, Any]:
        need_a, need_low, need_high = ctx.needs_input_grad
        return (  # 0 where no gradient flows, even for an infinite gradient (not inf * 0)
            where(ctx.inside, grad, 0.0) if need_a else None,
            where(ctx.below, grad, 0.0) if need_low else None,
            where(ctx.above, grad, 0.0) if need_high else None,
        )


class Where(Function):
    """where(c, a, b): the gradient goes to a where c holds, to b elsewhere"""

    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, condition: Any, a: Any, b: Any) -> np.ndarray:
        ctx.condition = condition
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[None, Any, Any]:
        need = ctx.needs_input_grad
        return (
            None,
            where(ctx.condition, grad, 0.0) if need[1] else None,
            where(ctx.condition, 0.0, grad) if need[2] else None,
        )


class Clone(Function):
    """A copy with its own memory; gradient passes through."""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        return a.copy()

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad


def binary(cls: type[Function], a: Any, b: Any) -> Tensor:
    a, b = operands(a, b, cls.op)
    return cls.apply(a, b)


def add(a: Any, b: Any) -> Tensor:
    """a + b with numpy broadcasting."""
    return binary(Add, a, b)


def sub(a: Any, b: Any) -> Tensor:
    a, b = operands(a, b, "sub")
    if _kind(a) == "b" and _kind(b) == "b":
        raise DTypeError(
            "sub: subtraction, the `-` operator, with two bool tensors is not supported (as in "
            "PyTorch); for a logical xor write `a != b`, to count convert first (a.float() - "
            "b.float())"
        )
    return Sub.apply(a, b)


def mul(a: Any, b: Any) -> Tensor:
    return binary(Mul, a, b)


def div(a: Any, b: Any) -> Tensor:
    """True division (integer tensors give floats, as in PyTorch)."""
    a, b = operands(a, b, "div")
    if _kind(a) != "f" and _kind(b) != "f":
        # Both sides, constants too: an int64 number left as int64 would make numpy pick
        # float64, and a scalar must not change the result's dtype.
        default = dtypes.get_default_dtype()
        a = cast(a, default) if isinstance(a, Tensor) else a.astype(default)
        b = cast(b, default) if isinstance(b, Tensor) else b.astype(default)
    return Div.apply(a, b)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    return binary(Pow, a, b)


def maximum(a: Any, b: Any) -> Tensor:
    return binary(Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return binary(Minimum, a, b)


def neg(x: Any) -> Tensor:
    return Neg.apply(_not_bool(as_tensor(x, "neg"), "neg"))


def exp(x: Any) -> Tensor:
    """e^x; integer tensors give the default float dtype."""
    return Exp.apply(as_floating(x, "exp"))


def log(x: Any) -> Tensor:
    return Log.apply(as_floating(x, "log"))


def log10(x: Any) -> Tensor:
    return Log10.apply(as_floating(x, "log10"))


def log2(x: Any) -> Tensor:
    return Log2.apply(as_floating(x, "log2"))


def sqrt(x: Any) -> Tensor:
    return Sqrt.apply(as_floating(x, "sqrt"))


def abs(x: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    return Abs.apply(_not_bool(as_tensor(x, "abs"), "abs"))


def _not_bool(x: Tensor, op: str) -> Tensor:
    if x.data.dtype == np.bool_:
        raise DTypeError(
            f"{op}: not defined for a bool tensor (as in PyTorch); use ~x to negate a mask, or "
            "convert it first (e.g. x.float())"
        )
    return x


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max] (either may be None), as ``torch.clamp``: numbers, or
    tensors/arrays broadcast against x (elementwise bounds, differentiable too)."""
    x = as_tensor(x, "clip")
    if min is None and max is None:
        raise ValueRangeError("clip: at least one of min and max must be given")
    bounds = [b for b in (min, max) if b is not None]
    if not all(isinstance(b, bool | int | float | np.bool_ | np.integer | np.floating)
               for b in bounds):  # tensors, arrays, lists: elementwise bounds
        low = None if min is None else _bound(min, x)
        high = None if max is None else _bound(max, x)
        return Clip.apply(x, low, high)
    if x.data.dtype.kind != "f" and any(isinstance(b, float | np.floating) for b in bounds):
        # an integer tensor clipped at 1.5 gives floats, as in PyTorch (not a bound of 1)
        x = cast(x, dtypes.get_default_dtype())
    low = None if min is None else x.data.dtype.type(min)
    high = None if max is None else x.data.dtype.type(max)
    return Clip.apply(x, low, high)


def _bound(bound: Any, x: Tensor) -> Any:
    """A tensor bound as it is; other data as an array, where a 0-d one takes x's floating
    dtype, as a number would (and as constants do in binary ops)."""
    if isinstance(bound, Tensor):
        return bound
    array = as_tensor(bound, "clip").data
    if array.ndim == 0 and x.data.dtype.kind == "f":
        return constant(array, x, "clip")
    return array


clamp = clip


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elements of a where condition holds, else of b (condition is not differentiated)."""
    cond = condition.data if isinstance(condition, Tensor) else dtypes.as_array(
        condition, copy=False, op="where")
    if is_literal(condition):  # True, [True, False]: a constant (tn.compile)
        made_from_literals(cond)
    if cond.dtype != np.bool_:  # through an op, so tn.compile converts each call's condition
        cond = datadep._Compare.apply(Tensor._make(cond), fn=_truth).data
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a, "where")
    a, b = operands(a, b, "where")
    return Where.apply(cond, a, b)


def _truth(a: np.ndarray) -> np.ndarray:
    return a.astype(bool)


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


def compare(ufunc: Any, a: Any, b: Any) -> Tensor:
    """A comparison (<, ==, ...): a bool tensor, never part of a graph (an op: tn.compile
    recomputes it at every replay)."""
    a, b = operands(a, b, ufunc.__name__)
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    try:
        np.broadcast_shapes(np.shape(x), np.shape(y))
    except ValueError as e:
        raise ShapeError(
            f"{ufunc.__name__}: shapes {shape_str(x, y)} cannot be broadcast"
        ) from e
    return datadep._Compare.apply(a, b, fn=ufunc)


def logical_not(x: Tensor) -> Tensor:
    """~x: not, for a bool tensor; the bitwise complement for an integer one."""
    return datadep._Compare.apply(x, fn=np.logical_not if x.data.dtype == np.bool_
                                 else np.invert)


def _kind(x: Any) -> str:
    return (x.data if isinstance(x, Tensor) else x).dtype.kind


class Sin(Function):
    """d/da sin(a) = cos(a)"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.sin(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return grad * cos(a)


class Cos(Function):
    """d/da cos(a) = -sin(a)"""

    @staticmethod
    def forward(ctx: Function, a: Any) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.cos(a)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return -grad * sin(a)


def sin(x: Any) -> Tensor:
    """sin(x), elementwise; integer tensors give the default float dtype."""
    return Sin.apply(as_floating(x, "sin"))


def cos(x: Any) -> Tensor:
    return Cos.apply(as_floating(x, "cos"))
