"""Ops that pick elements by index along one dim: gather, max/min over a dim, sort, topk,
masked_fill, split/chunk.

Every differentiable one is ``gather`` underneath: ``max(x, dim)`` finds the index with numpy,
then gathers the value there, so its gradient goes to that one element (as PyTorch's
``max(dim)`` does; the full ``max()`` and ``amax`` split ties evenly instead, see reduce.py).

    gather:  out[i][j] = x[i][index[i][j]]          (dim = 1)
    d/dx:    grad_x[i][index[i][j]] += grad[i][j]   (scatter-add; repeated indices add up)
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.datadep import _ArgExtreme, _Order
from tinynet.ops.elementwise import where
from tinynet.ops.operands import as_tensor, normalize_dim
from tinynet.tensor import Tensor, is_literal, made_from_literals

# PyTorch's torch.return_types.max & co: a tuple (values, indices) with named fields.
max_result = collections.namedtuple("max", ["values", "indices"])
min_result = collections.namedtuple("min", ["values", "indices"])
sort_result = collections.namedtuple("sort", ["values", "indices"])
topk_result = collections.namedtuple("topk", ["values", "indices"])


def _along(index: np.ndarray, dim: int) -> tuple[np.ndarray, ...]:
    """The full index tuple that picks ``index`` along ``dim`` and position i elsewhere."""
    grids = np.indices(index.shape, sparse=True)
    return tuple(index if d == dim else g for d, g in enumerate(grids))


class Gather(Function):
    """out = x[..., index, ...] along ``dim`` (torch.gather); d/dx scatters the gradient back,
    adding where an index repeats."""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = 0, index: Any = None) -> np.ndarray:
        ctx.dim, ctx.index, ctx.input_shape = dim, index, x.shape
        return x[_along(index, dim)] if x.ndim else x[()].reshape(()).copy()

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return ScatterAddAlong.apply(grad, shape=ctx.input_shape, dim=ctx.dim, index=ctx.index)


class ScatterAddAlong(Function):
    """zeros(shape) with ``grad`` added at ``index`` along ``dim`` (the gradient of Gather; its
    own gradient is gathering again)."""

    op = "scatter_add"

    @staticmethod
    def forward(ctx: Function, grad: Any, shape: tuple[int, ...] = (), dim: int = 0,
                index: Any = None) -> np.ndarray:
        ctx.dim, ctx.index = dim, index
        out = np.zeros(shape, dtype=grad.dtype)
        if len(shape) == 0:
            out[()] = grad
        else:
            np.add.at(out, _along(index, dim), grad)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Gather.apply(grad, dim=ctx.dim, index=ctx.index)


def gather(input: Any, dim: int, index: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` for dim = 1 (torch.gather).

    ``index`` is an int64 tensor with input's number of dims; along the other dims it may be
    shorter than input (never longer). Shapes: out has index's shape.
    """
    x = as_tensor(input, "gather")
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype != np.int64:
        raise DTypeError(f"gather: index must be an int64 tensor, got {idx.dtype}; use "
                         "index.long()")
    d = normalize_dim(dim, x.ndim, "gather")
    if idx.ndim != max(x.ndim, 1) and not (x.ndim == 0 and idx.ndim == 0):
        raise ShapeError(f"gather: index {idx.shape} and input {x.shape} must have the same "
                         "number of dimensions")
    if x.ndim == 0:
        if idx.size and np.any(idx != 0):
            raise ValueRangeError("gather: index out of range for a 0-d input (only 0 is valid)")
        return Gather.apply(x, dim=0, index=idx)
    for axis, (n, m) in enumerate(zip(idx.shape, x.shape, strict=True)):
        if axis != d and n > m:
            raise ShapeError(f"gather: index {idx.shape} is larger than input {x.shape} in "
                             f"dimension {axis} (only dim {d} may be larger)")
    if idx.size and (idx.min() < -x.shape[d] or idx.max() >= x.shape[d]):
        raise ValueRangeError(f"gather: index out of range for dim {d} of size {x.shape[d]} "
                              f"(indices from {idx.min()} to {idx.max()})")
    if idx.size and idx.min() < 0:  # torch refuses negative indices in gather
        raise ValueRangeError(f"gather: index {idx.min()} is negative; indices must be in "
                              f"0..{x.shape[d] - 1}")
    return Gather.apply(x, dim=d, index=idx)


def extreme_along(fn: Any, result: Any, x: Tensor, dim: int, keepdim: bool) -> Any:
    """(values, indices) of max or min over one dim: the first index of the extreme (NaN counts
    as the extreme, as in PyTorch), and the values gathered there."""
    if x.ndim == 0:
        index = Tensor._make(made_from_literals(np.zeros((), dtype=np.int64)))
        values = gather(x, 0, index)
        return result(values, Tensor._make(made_from_literals(np.zeros((), dtype=np.int64))))
    index = _ArgExtreme.apply(x.detach(), fn=fn, axis=dim, keepdims=True)  # an op: replayed
    values = gather(x, dim, index)
    if not keepdim:
        values, index = values.squeeze(dim), index.squeeze(dim)
    return result(values, index)


def sort(input: Any, dim: int = -1, descending: bool = False, *,  # noqa: A002
         stable: bool = False) -> Any:
    """Sorted values along ``dim`` and where they came from: ``values, indices = sort(x)``.

    Equal elements keep their order (a stable sort) whether or not ``stable`` is asked for,
    which is what PyTorch's CPU sort does; NaN sorts as the largest value. The values are
    differentiable (each one's gradient goes back to where it came from).
    """
    x = as_tensor(input, "sort")
    if x.ndim == 0:
        return sort_result(x.clone(), Tensor._make(made_from_literals(
            np.zeros((), dtype=np.int64))))
    d = normalize_dim(dim, x.ndim, "sort")
    index = _Order.apply(x.detach(), dim=d, descending=descending)  # an op: replayed
    return sort_result(gather(x, d, index), index)


def topk(input: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """The ``k`` largest (or smallest) values along ``dim`` and their indices.

    Among equal values the earlier index comes first (PyTorch leaves that order unspecified).
    With ``sorted=False`` the result is still sorted; PyTorch allows any order then.
    """
    x = as_tensor(input, "topk")
    d = normalize_dim(dim, x.ndim, "topk")
    size = x.shape[d] if x.ndim else 1
    if not isinstance(k, int | np.integer) or isinstance(k, bool):
        raise DTypeError(f"topk: k must be an integer, got {k!r}")
    if not 0 <= k <= size:
        raise ValueRangeError(f"topk: k ({k}) is out of range for a dimension of size {size}")
    if x.ndim == 0:
        return topk_result(x.clone(), Tensor._make(made_from_literals(
            np.zeros((), dtype=np.int64))))
    index = _Order.apply(x.detach(), dim=d, descending=largest, k=int(k))  # an op: replayed
    return topk_result(gather(x, d, index), index)


def masked_fill(input: Any, mask: Any, value: Any) -> Tensor:  # noqa: A002
    """``value`` where ``mask`` (a bool tensor broadcastable to input) holds, input elsewhere.
    The gradient flows to input where the mask is False (and to ``value`` if it is a tensor)."""
    x = as_tensor(input, "masked_fill")
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got {m.dtype}; "
                         "compare first (e.g. x > 0)")
    if np.broadcast_shapes(m.shape, x.shape) != x.shape:
        raise ShapeError(f"masked_fill: mask {m.shape} must broadcast to input {x.shape}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                             f"{value.shape}")
        value = value.to(x.dtype) if value.dtype != x.dtype else value
    else:
        dtypes.check_storable(value, x.dtype, "masked_fill")
        literal = is_literal(value)
        value = np.asarray(value).astype(x.dtype)
        if literal:  # a number: a constant (tn.compile)
            value = made_from_literals(value)
    out = where(Tensor._make(m), value, x)
    return out if out.shape == x.shape else out.broadcast_to(x.shape)


def split(tensor: Any, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last one shorter), or of the listed sizes;
    each piece is a view (a slice), as in PyTorch."""
    x = as_tensor(tensor, "split")
    d = normalize_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int | np.integer):
        size = int(split_size_or_sections)
        if size <= 0 and not (size == 0 and n == 0):
            raise ValueRangeError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - start) for start in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ShapeError(f"split: sizes {sizes} must be non-negative and add up to {n}, the "
                             f"size of dim {d}")
    lead = (slice(None),) * d
    bounds = np.cumsum([0] + sizes)
    return tuple(x[lead + (slice(int(a), int(b)),)] for a, b in zip(bounds[:-1], bounds[1:],
                                                                     strict=True))


def chunk(input: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    """Up to ``chunks`` pieces of equal size ceil(n / chunks) along ``dim`` (PyTorch's rule:
    fewer pieces when the sizes work out that way)."""
    x = as_tensor(input, "chunk")
    if not isinstance(chunks, int | np.integer) or chunks <= 0:
        raise ValueRangeError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    d = normalize_dim(dim, x.ndim, "chunk")
    n = x.shape[d]
    if n == 0:  # PyTorch gives ``chunks`` empty pieces
        return split(x, [0] * int(chunks), d)
    return split(x, -(-n // int(chunks)), d)
