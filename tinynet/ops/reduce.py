"""Reductions: sum, mean, max, min (and argmax/argmin, which are not differentiable).

Backward of a reduction spreads the incoming gradient back over the reduced axes:
``sum`` copies it to every element, ``mean`` also divides by the count, and ``max``/``min``
send it to the elements that attained the extreme value. Ties split the gradient evenly
(as PyTorch's ``amax``/``amin`` and full ``max()`` do), so the rule is symmetric.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import IndexShapeError, ShapeError
from tinynet.ops.elementwise import where as ops_where
from tinynet.ops.operands import as_tensor, reduction_args
from tinynet.tensor import Tensor


def _spread(grad: Tensor, ctx: Function) -> Tensor:
    """Give the reduced gradient its size-1 axes back, then broadcast it to the input's shape."""
    if not ctx.keepdims:
        grad = grad.reshape(ctx.kept_shape)
    return grad.broadcast_to(ctx.input_shape)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """d/dx_i sum(x) = 1"""

    @staticmethod
    def forward(ctx: Function, x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        return np.add.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return _spread(grad, ctx)


class Mean(Function):
    """d/dx_i mean(x) = 1/n"""

    @staticmethod
    def forward(ctx: Function, x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        # Half precision accumulates in float32, as numpy's mean does: a float16 sum overflows
        # (65504) long before the mean does.
        wide = np.float32 if x.dtype == np.float16 else None
        total = np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=wide)
        count = x.size // total.size if total.size else 0  # elements in each mean
        ctx.count = count or 1  # an empty input has an empty gradient: any factor will do
        with np.errstate(invalid="ignore"):  # the mean of nothing is nan, as numpy says
            mean = total / total.dtype.type(count)
        return np.asarray(mean).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return _spread(grad * (1.0 / ctx.count), ctx)


class Max(Function):
    """d/dx_i max(x) = 1/k for the k elements equal to the max, 0 elsewhere
    (``Min`` is the same op with ``reduce = np.min``)."""

    reduce = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx: Function, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        kept = cls.reduce(x, axis=axis, keepdims=True)
        if x.dtype.kind == "f":  # each extreme's share of the gradient: a constant
            hits = x == kept
            count = hits.sum(axis=axis, keepdims=True).astype(x.dtype)
            # a group whose extreme is NaN has no hits: its share is 0/0 = NaN (as PyTorch's
            # amax gradient), without numpy's warning
            ctx.share = np.divide(hits, count, out=np.full(hits.shape, np.nan, x.dtype),
                                  where=count != 0)
        if keepdims:
            return kept
        return kept.reshape(()) if axis is None else np.squeeze(kept, axis=axis)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        spread = _spread(grad, ctx)
        return ops_where(ctx.share == 0, 0.0, spread) * ctx.share  # 0, not inf * 0


class Min(Max):
    """d/dx_i min(x) = 1/k for the k elements equal to the min, 0 elsewhere"""

    reduce = staticmethod(np.min)


def sum(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (alias ``axis``; an int, a tuple, or None for all),
    keeping reduced dims as size 1 when ``keepdim`` (alias ``keepdims``)."""
    x = as_tensor(x, "sum")
    axes, keep = reduction_args(x, dim, keepdim, aliases, "sum")
    return Sum.apply(x, axis=axes, keepdims=keep)


def mean(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
    """Mean over ``dim``; integer tensors give the default float dtype."""
    x = as_tensor(x, "mean")
    axes, keep = reduction_args(x, dim, keepdim, aliases, "mean")
    if x.data.dtype.kind != "f":
        x = Tensor._make(x.data.astype(dtypes.get_default_dtype()))
    return Mean.apply(x, axis=axes, keepdims=keep)


def max(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:  # noqa: A001
    """Largest value over ``dim``; ties share the gradient evenly. (Unlike ``torch.max(x, dim)``
    this returns only the values; use ``argmax`` for the indices.)"""
    x = as_tensor(x, "max")
    axes, keep = reduction_args(x, dim, keepdim, aliases, "max")
    _refuse_empty(x, axes, "max")
    return Max.apply(x, axis=axes, keepdims=keep)


def min(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:  # noqa: A001
    """Smallest value over ``dim``; ties share the gradient evenly."""
    x = as_tensor(x, "min")
    axes, keep = reduction_args(x, dim, keepdim, aliases, "min")
    _refuse_empty(x, axes, "min")
    return Min.apply(x, axis=axes, keepdims=keep)


def argmax(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
    """Index of the largest value (first one on ties, as numpy), flattened when dim is None."""
    return _arg(np.argmax, x, dim, keepdim, aliases, "argmax")


def argmin(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
    return _arg(np.argmin, x, dim, keepdim, aliases, "argmin")


def _arg(fn: Any, x: Any, dim: Any, keepdim: bool, aliases: dict[str, Any], op: str) -> Tensor:
    x = as_tensor(x, op)
    axes, keep = reduction_args(x, dim, keepdim, aliases, op)
    _refuse_empty(x, axes, op)
    if axes is not None and len(axes) > 1:
        raise ShapeError(f"{op}: dim must be a single dimension, got {dim}")
    axis = None if axes is None or not axes else axes[0]
    return Tensor._make(np.asarray(fn(x.data, axis=axis, keepdims=keep), dtype=np.int64))


def _refuse_empty(x: Tensor, axes: tuple[int, ...] | None, op: str) -> None:
    if x.data.size == 0 and (axes is None or any(x.shape[a] == 0 for a in axes)):
        raise IndexShapeError(  # a ShapeError, and the IndexError PyTorch raises here
            f"{op}: cannot reduce an empty tensor of shape {x.shape} (no identity)")
