"""Ops that reorder elements: flip, roll; and ones built from existing ops: outer, unbind,
unflatten.

    flip(x, dims):          out[i] = x[n - 1 - i] along each dim;  d/dx = flip(grad, dims)
    roll(x, shifts, dims):  out[(i + s) mod n] = x[i];             d/dx = roll(grad, -shifts)
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError
from tinynet.ops.operands import as_tensor, normalize_dim, shape_args
from tinynet.tensor import Tensor


class Flip(Function):
    """Reverse the order along ``dims`` (a copy, as in PyTorch); its gradient flips back"""

    @staticmethod
    def forward(ctx: Function, x: Any, dims: tuple[int, ...] = ()) -> np.ndarray:
        ctx.dims = dims
        return np.flip(x, dims).copy() if dims else x.copy()

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Flip.apply(grad, dims=ctx.dims)


class Roll(Function):
    """Shift elements along ``dims`` by ``shifts``, wrapping around (all of x, flattened, when
    no dims are given); its gradient rolls back by -shifts"""

    @staticmethod
    def forward(ctx: Function, x: Any, shifts: Any = 0, dims: Any = None) -> np.ndarray:
        ctx.shifts, ctx.dims = shifts, dims
        return np.roll(x, shifts, dims)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return Roll.apply(grad, shifts=back, dims=ctx.dims)


def _dims(dims: Any, ndim: int, op: str) -> tuple[int, ...]:
    items = dims if isinstance(dims, tuple | list) else (dims,)
    out = tuple(normalize_dim(d, ndim, op) for d in items)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: dims {tuple(items)} repeat a dimension")
    return out


def flip(input: Any, dims: Any) -> Tensor:  # noqa: A002 - PyTorch's names
    """Reverse the order of elements along ``dims`` (an int or a tuple; torch.flip)."""
    x = as_tensor(input, "flip")
    return Flip.apply(x, dims=_dims(dims, x.ndim, "flip") if x.ndim else ())


def fliplr(input: Any) -> Tensor:  # noqa: A002
    return flip(input, 1)


def flipud(input: Any) -> Tensor:  # noqa: A002
    return flip(input, 0)


def roll(input: Any, shifts: Any, dims: Any = None) -> Tensor:  # noqa: A002
    """Shift elements by ``shifts`` along ``dims``, the ones pushed off one end coming back at
    the other (torch.roll); without dims, x is rolled as if flattened."""
    x = as_tensor(input, "roll")
    many = isinstance(shifts, tuple | list)
    try:
        shift = tuple(operator.index(s) for s in shifts) if many else operator.index(shifts)
    except TypeError as e:
        raise DTypeError(f"roll: shifts must be integers, got {shifts!r}") from e
    if dims is None:
        if many and len(shift) != 1:
            raise ShapeError(f"roll: {len(shift)} shifts need as many dims, got none")
        return Roll.apply(x, shifts=shift[0] if many else shift, dims=None)
    axes = dims if isinstance(dims, tuple | list) else (dims,)
    shift = shift if many else (shift,)
    if len(shift) != len(axes):
        raise ShapeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    axes = tuple(normalize_dim(d, x.ndim, "roll") for d in axes)
    if x.ndim == 0:
        return x.clone()
    return Roll.apply(x, shifts=shift, dims=axes)


def outer(input: Any, vec2: Any) -> Tensor:  # noqa: A002
    """out[i][j] = a[i] b[j] for two 1-D tensors (torch.outer); the dtype as a * b's."""
    a, b = as_tensor(input, "outer"), as_tensor(vec2, "outer")
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer: expects two 1-D tensors, got shapes {a.shape} and {b.shape}; "
                         "flatten them first (x.flatten())")
    return a.reshape(-1, 1) * b.reshape(1, -1)


ger = outer


def unbind(input: Any, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    """The slices along ``dim``, each without that dim (torch.unbind); views, as indexing."""
    x = as_tensor(input, "unbind")
    if x.ndim == 0:
        raise ShapeError("unbind: a 0-d tensor has no dimension to unbind")
    d = normalize_dim(dim, x.ndim, "unbind")
    lead = (slice(None),) * d
    return tuple(x[lead + (i,)] for i in range(x.shape[d]))


def unflatten(input: Any, dim: int, sizes: Any) -> Tensor:  # noqa: A002
    """Split dim ``dim`` into ``sizes`` (one of them may be -1): the inverse of flatten."""
    x = as_tensor(input, "unflatten")
    d = normalize_dim(dim, x.ndim, "unflatten")
    sizes = shape_args((sizes,) if not isinstance(sizes, tuple | list) else tuple(sizes),
                       "unflatten")
    if not sizes:
        raise ShapeError("unflatten: sizes must be non-empty")
    known = int(np.prod([s for s in sizes if s != -1]))
    if sizes.count(-1) > 1 or (-1 not in sizes and known != x.shape[d]) or (
            -1 in sizes and (known == 0 or x.shape[d] % known)):
        raise ShapeError(f"unflatten: sizes {sizes} don't multiply to {x.shape[d]}, the size "
                         f"of dim {d} of a tensor of shape {x.shape}")
    return x.reshape(*x.shape[:d], *sizes, *x.shape[d + 1:])
