"""Turning what users pass (Tensors, numbers, arrays, dims spelled PyTorch's or numpy's way)
into what the ops' forward functions expect. One place, so every op agrees."""

from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError
from tinynet.tensor import Tensor, is_literal, made_from_literals


class Cast(Function):
    """Change dtype; the gradient is cast back by the engine. (The one op in this file:
    promoting two operands to one dtype needs it.)"""

    @staticmethod
    def forward(ctx: Function, a: Any, dtype: Any) -> np.ndarray:
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad


def cast(x: Tensor, dtype: Any) -> Tensor:
    target = dtypes.to_dtype(dtype)
    if x.data.dtype == target:
        return x
    return Cast.apply(x, dtype=target)


def constant(value: Any, like: Tensor, op: str) -> np.ndarray:
    """A non-Tensor operand as an array. Numbers (and numpy scalars, 0-d arrays) take the
    tensor's dtype unless they are of a higher kind; arrays and lists keep numpy's rules."""
    if isinstance(value, numbers.Number | np.generic) or (
        isinstance(value, np.ndarray) and value.ndim == 0
    ):
        if isinstance(value, complex | np.complexfloating):
            raise DTypeError(f"{op}: complex numbers are not supported")
        array = np.asarray(value, dtype=dtypes.scalar_dtype(like.data.dtype, value))
        # a Python number is a constant (tn.compile); a numpy scalar or array may not be
        return made_from_literals(array) if is_literal(value) else array
    if isinstance(value, np.ndarray | list | tuple):
        array = dtypes.as_array(value, copy=False, op=op)
        return made_from_literals(array) if is_literal(value) else array
    raise DTypeError(f"{op}: unsupported operand type {type(value).__name__} (with a Tensor)")


def operands(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """Both operands of a binary op, at least one a Tensor; the other becomes an array.

    When a number of a higher kind meets an integer/bool tensor (``int_tensor * 0.5``), the
    tensor's values are cast to the number's dtype first, so numpy can't pick another.
    """
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            return promoted(a, b)
        b = constant(b, a, op)
        if b.ndim:  # an array with dims promotes like a tensor
            return promoted(a, b)
        if b.ndim == 0 and b.dtype != a.data.dtype and a.data.dtype.kind != "f":
            a = cast(a, b.dtype)
        return a, b
    if not isinstance(b, Tensor):
        raise DTypeError(f"{op}: expected a Tensor operand")
    a = constant(a, b, op)
    if a.ndim:
        return promoted(a, b)
    if a.ndim == 0 and a.dtype != b.data.dtype and b.data.dtype.kind != "f":
        b = cast(b, a.dtype)
    return a, b


def promoted(a: Any, b: Any) -> tuple[Any, Any]:
    """Both operands in PyTorch's result dtype (``dtypes.result_type``); tensors are cast with
    the differentiable ``cast``, so gradients come back in each one's own dtype."""
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    if x.dtype == y.dtype:
        return a, b
    target = dtypes.result_type(x, y)

    def convert(t: Any) -> Any:
        if t.dtype == target:
            return t
        return cast(t, target) if isinstance(t, Tensor) else t.astype(target)

    return convert(a), convert(b)


def as_tensor(x: Any, op: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    array = dtypes.as_array(x, op=op)
    return Tensor._make(made_from_literals(array) if is_literal(x) else array)


def as_floating(x: Any, op: str) -> Tensor:
    """The input of a function whose result is never an integer (exp, log, sigmoid...): integer
    and bool tensors give the default float dtype, as PyTorch's do (numpy would pick float64)."""
    x = as_tensor(x, op)
    if x.data.dtype.kind != "f":
        x = Cast.apply(x.detach(), dtype=dtypes.get_default_dtype())
    return x


def normalize_dim(dim: Any, ndim: int, op: str) -> int:
    try:
        d = operator.index(dim)  # not int(): a dim of 1.5 is a mistake, not dim 1
    except TypeError as e:
        raise DTypeError(f"{op}: dim must be an integer, got {dim!r}") from e
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= d <= hi:
        raise ShapeError(
            f"{op}: dim {d} is out of range for a tensor with {ndim} dimension(s) "
            f"(expected {lo}..{hi})"
        )
    return d % max(ndim, 1)


def reduction_args(
    x: Tensor, dim: Any, keepdim: bool, aliases: dict[str, Any], op: str
) -> tuple[tuple[int, ...] | None, bool]:
    """``dim``/``axis`` and ``keepdim``/``keepdims`` -> (axes tuple or None, keepdims)."""
    if aliases:
        unknown = set(aliases) - {"axis", "keepdims"}
        if unknown:
            raise TypeError(f"{op}() got unexpected keyword argument(s) {sorted(unknown)}")
        if "axis" in aliases:
            if dim is not None:
                raise TypeError(f"{op}(): give dim or axis, not both")
            dim = aliases["axis"]
        keepdim = bool(aliases.get("keepdims", keepdim))
    if dim is None:
        return None, keepdim
    dims = dim if isinstance(dim, tuple | list) else (dim,)
    axes = tuple(normalize_dim(d, x.ndim, op) for d in dims)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: dim {dim} repeats a dimension")
    if x.ndim == 0:
        axes = ()
    return axes, keepdim


def shape_args(shape: tuple[Any, ...], op: str = "") -> tuple[int, ...]:
    """``reshape(2, 3)`` and ``reshape((2, 3))`` both mean the shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    try:
        return tuple(operator.index(s) for s in shape)  # not int(): 2.5 must not become 2
    except TypeError as e:
        where = f"{op}: " if op else ""
        raise DTypeError(f"{where}shape must be integers, got {shape!r}") from e
