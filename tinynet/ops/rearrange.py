"""Ops that reorder elements: flip, roll; and ones built from existing ops: outer, unbind,
unflatten.

    flip(x, dims):          out[i] = x[n - 1 - i] along each dim;  d/dx = flip(grad, dims)
    roll(x, shifts, dims):  out[(i + s) mod n] = x[i];             d/dx = roll(grad, -shifts)
    diagonal(x, k):         out[i] = x[i, i + k];                  d/dx = diag_embed(grad, k)
    diag_embed(v, k):       out[i, i + k] = v[i], zeros elsewhere;  d/dv = diagonal(grad, k)
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


# ---------------------------------------------------------------------------------------------
# diagonals: diagonal reads one, diag_embed writes one; each is the other's gradient
# ---------------------------------------------------------------------------------------------


def _embed(values: np.ndarray, offset: int, dim1: int, dim2: int, rows: int, cols: int
           ) -> np.ndarray:
    """Zeros with ``values`` (diagonal along its last dim) on the ``offset`` diagonal of the
    (rows, cols) plane spanned by dims ``dim1``, ``dim2`` of the result."""
    out = np.zeros((*values.shape[:-1], rows, cols), dtype=values.dtype)
    i = np.arange(values.shape[-1])
    out[..., i + max(-offset, 0), i + max(offset, 0)] = values
    return np.moveaxis(out, (-2, -1), (dim1, dim2))


class Diagonal(Function):
    """out[..., i] = x[i, i + offset] in the (dim1, dim2) plane, the diagonal moved last (a
    copy); d/dx puts the gradient back on that diagonal, zeros elsewhere (diag_embed)"""

    @staticmethod
    def forward(ctx: Function, x: Any, offset: int = 0, dim1: int = 0, dim2: int = 1
                ) -> np.ndarray:
        ctx.offset, ctx.dim1, ctx.dim2 = offset, dim1, dim2
        ctx.rows, ctx.cols = x.shape[dim1], x.shape[dim2]
        return np.diagonal(x, offset, dim1, dim2).copy()

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return DiagEmbed.apply(grad, offset=ctx.offset, dim1=ctx.dim1, dim2=ctx.dim2,
                               rows=ctx.rows, cols=ctx.cols)


class DiagEmbed(Function):
    """Zeros of shape (..., rows, cols) (the two new dims at dim1, dim2) with x's last dim on
    the ``offset`` diagonal; d/dx reads that diagonal of the gradient (diagonal)"""

    @staticmethod
    def forward(ctx: Function, x: Any, offset: int = 0, dim1: int = -2, dim2: int = -1,
                rows: int = 0, cols: int = 0) -> np.ndarray:
        ctx.offset, ctx.dim1, ctx.dim2 = offset, dim1, dim2
        return _embed(x, offset, dim1, dim2, rows, cols)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Diagonal.apply(grad, offset=ctx.offset, dim1=ctx.dim1, dim2=ctx.dim2)


def _offset(offset: Any, op: str, name: str) -> int:
    try:
        return operator.index(offset)
    except TypeError as e:
        raise DTypeError(f"{op}: {name} must be an integer, got {offset!r}") from e


def _plane(dim1: int, dim2: int, ndim: int, op: str) -> tuple[int, int]:
    d1, d2 = normalize_dim(dim1, ndim, op), normalize_dim(dim2, ndim, op)
    if d1 == d2:
        raise ShapeError(f"{op}: dim1 and dim2 name the same dimension ({dim1}, {dim2}); "
                         "pass two different dimensions")
    return d1, d2


def diagonal(input: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:  # noqa: A002
    """The ``offset`` diagonal of the (dim1, dim2) plane, as a new last dim (torch.diagonal)."""
    x = as_tensor(input, "diagonal")
    if x.ndim < 2:
        raise ShapeError(f"diagonal: input must have at least 2 dimensions, got shape {x.shape}")
    d1, d2 = _plane(dim1, dim2, x.ndim, "diagonal")
    return Diagonal.apply(x, offset=_offset(offset, "diagonal", "offset"), dim1=d1, dim2=d2)


def diag_embed(input: Any, offset: int = 0, dim1: int = -2, dim2: int = -1  # noqa: A002
               ) -> Tensor:
    """Square matrices (size n + |offset|, in dims dim1, dim2 of the result) with the input's
    last dim on their ``offset`` diagonal (torch.diag_embed)."""
    x = as_tensor(input, "diag_embed")
    if x.ndim < 1:
        raise ShapeError("diag_embed: input must have at least 1 dimension, got a scalar; "
                         "reshape it to (1,)")
    offset = _offset(offset, "diag_embed", "offset")
    d1, d2 = _plane(dim1, dim2, x.ndim + 1, "diag_embed")
    n = x.shape[-1] + abs(offset)
    return DiagEmbed.apply(x, offset=offset, dim1=d1, dim2=d2, rows=n, cols=n)


def diag(input: Any, diagonal: int = 0) -> Tensor:  # noqa: A002 - PyTorch's names
    """A vector -> the square matrix with it on the ``diagonal``-th diagonal; a matrix -> its
    ``diagonal``-th diagonal as a vector (torch.diag)."""
    x = as_tensor(input, "diag")
    k = _offset(diagonal, "diag", "diagonal")
    if x.ndim == 1:
        return diag_embed(x, k, 0, 1)
    if x.ndim == 2:
        return Diagonal.apply(x, offset=k, dim1=0, dim2=1)
    raise ShapeError(f"diag: input must be 1-D (a vector to place on a diagonal) or 2-D (a "
                     f"matrix to read one from), got shape {x.shape}; use torch.diagonal or "
                     "diag_embed for batches")
