"""Writing by index, and reading by index along one dim: scatter, scatter_add, index_add,
index_select, take_along_dim, masked_select. Each is the transpose of a read:

    scatter(x, dim, index, src):      out = x, then out[i][index[i][j]] = src[i][j]  (dim = 1)
        d/dx = grad with the written places zeroed;  d/dsrc = gather(grad, dim, index)
    scatter_add(x, dim, index, src):  out = x, then out[i][index[i][j]] += src[i][j]
        d/dx = grad;  d/dsrc = gather(grad, dim, index)
    index_select(x, dim, index):      out[..., j, ...] = x[..., index[j], ...]
        d/dx = index_add(zeros, dim, index, grad)   (repeated indices add up)
    index_add(x, dim, index, src, alpha):
        out = x, then out[..., index[j], ...] += alpha src[..., j, ...]
        d/dx = grad;  d/dsrc = alpha index_select(grad, dim, index)

The in-place forms (``x.scatter_(...)``, ``index_add_``...) write into x's memory outside any
graph, as ``fill_`` does (tensor.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.elementwise import where
from tinynet.ops.operands import as_tensor, normalize_dim
from tinynet.ops.select import Gather, ScatterAddAlong, _along, gather
from tinynet.tensor import Tensor


def _index_array(index: Any, op: str, allowed: str = "i") -> np.ndarray:
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in allowed or idx.dtype == np.bool_:
        raise DTypeError(f"{op}: index must be an integer tensor (int64), got {idx.dtype}; use "
                         "index.long()")
    return idx.astype(np.int64, copy=False)


def _check_along(op: str, x: Tensor, dim: int, idx: np.ndarray, src: Any) -> None:
    """PyTorch's rules for scatter's index: x's number of dims, no larger than src anywhere
    nor than x outside ``dim``, and entries in range."""
    if idx.ndim != max(x.ndim, 1) and idx.size:
        raise ShapeError(f"{op}: index {idx.shape} and self {x.shape} must have the same "
                         "number of dimensions")
    for axis, n in enumerate(idx.shape):
        if src is not None and np.ndim(src) and n > np.shape(src)[axis]:
            raise ShapeError(f"{op}: index {idx.shape} is larger than src "
                             f"{np.shape(src)} in dimension {axis}")
        if axis != dim and x.ndim and n > x.shape[axis]:
            raise ShapeError(f"{op}: index {idx.shape} is larger than self {x.shape} in "
                             f"dimension {axis} (only dim {dim} may be larger)")
    size = x.shape[dim] if x.ndim else 1
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueRangeError(f"{op}: index out of range for dim {dim} of size {size} "
                              f"(indices from {idx.min()} to {idx.max()})")


def _src_part(src: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The leading part of src that index's shape covers (differentiable: a slice)."""
    if src.shape == shape:
        return src
    return src[tuple(slice(0, n) for n in shape)]


class Scatter(Function):
    """out = x with src written at ``index`` along ``dim``; d/dx = grad where nothing was
    written, d/dsrc = grad gathered at the index (where an index repeats, PyTorch keeps one of
    the writes and leaves which unspecified: the last one here)."""

    @staticmethod
    def forward(ctx: Function, x: Any, src: Any, dim: int = 0, index: Any = None) -> np.ndarray:
        ctx.dim, ctx.index = dim, index
        out = x.copy()
        where_ = _along(index, dim)
        out[where_] = src
        written = np.zeros(x.shape, dtype=bool)
        written[where_] = True
        ctx.written = written
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        need_x, need_src = ctx.needs_input_grad
        return (where(ctx.written, 0.0, grad) if need_x else None,
                Gather.apply(grad, dim=ctx.dim, index=ctx.index) if need_src else None)


def _scatter_operands(op: str, input: Any, dim: int, index: Any, src: Any,  # noqa: A002
                      value: Any) -> tuple[Tensor, int, np.ndarray, Any]:
    x = as_tensor(input, op)
    if x.ndim == 0:
        raise ShapeError(f"{op}: self is a 0-d tensor; scatter into a tensor with dimensions "
                         "(e.g. x.reshape(1))")
    d = normalize_dim(dim, x.ndim, op)
    idx = _index_array(index, op)
    if src is None:
        src = value
    if src is None:
        raise DTypeError(f"{op}: give src (a tensor) or value (a number)")
    if not isinstance(src, Tensor):
        if np.ndim(src):
            raise DTypeError(f"{op}: src must be a Tensor or a number, got an array of shape "
                             f"{np.shape(src)}; wrap it in tn.tensor(...)")
        dtypes.check_storable(src, x.dtype, op)
        src = np.full(idx.shape, src, dtype=x.dtype)
    elif src.dtype != x.dtype:
        raise DTypeError(f"{op}: self ({x.dtype}) and src ({src.dtype}) must have the same "
                         "dtype (as in PyTorch); convert src, e.g. src.to(x.dtype)")
    _check_along(op, x, d, idx, src)
    if isinstance(src, Tensor):
        src = _src_part(src, idx.shape)
    return x, d, idx, src


def scatter(input: Any, dim: int, index: Any, src: Any = None, *,  # noqa: A002
            value: Any = None) -> Tensor:
    """A copy of input with ``src`` (a tensor, or a number) written at ``index`` along
    ``dim``: for dim = 1, ``out[i][index[i][j]] = src[i][j]`` (torch.scatter)."""
    x, d, idx, src = _scatter_operands("scatter", input, dim, index, src, value)
    return Scatter.apply(x, src, dim=d, index=idx)


def scatter_add(input: Any, dim: int, index: Any, src: Any) -> Tensor:  # noqa: A002
    """A copy of input with ``src`` added at ``index`` along ``dim`` (repeats add up):
    for dim = 1, ``out[i][index[i][j]] += src[i][j]`` (torch.scatter_add)."""
    x, d, idx, src = _scatter_operands("scatter_add", input, dim, index, src, None)
    if not isinstance(src, Tensor):
        src = Tensor._make(src)
    return x + ScatterAddAlong.apply(src, shape=x.shape, dim=d, index=idx)


class IndexSelect(Function):
    """out = x[..., index, ...] along ``dim``; d/dx adds the gradient back at the index"""

    op = "index_select"

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = 0, index: Any = None) -> np.ndarray:
        ctx.dim, ctx.index, ctx.input_shape = dim, index, x.shape
        return np.take(x, index, axis=dim)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return IndexAddInto.apply(grad, shape=ctx.input_shape, dim=ctx.dim, index=ctx.index)


class IndexAddInto(Function):
    """zeros(shape) with src added at ``index`` along ``dim`` (repeats add up); its gradient
    is index_select"""

    op = "index_add"

    @staticmethod
    def forward(ctx: Function, src: Any, shape: tuple[int, ...] = (), dim: int = 0,
                index: Any = None) -> np.ndarray:
        ctx.dim, ctx.index = dim, index
        out = np.zeros(shape, dtype=src.dtype)
        np.add.at(out, (slice(None),) * dim + (index,), src)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return IndexSelect.apply(grad, dim=ctx.dim, index=ctx.index)


def _vector_index(op: str, x: Tensor, dim: int, index: Any) -> tuple[int, np.ndarray]:
    d = normalize_dim(dim, x.ndim, op)
    idx = _index_array(index, op)
    if idx.ndim > 1:
        raise ShapeError(f"{op}: index must be 1-D (or 0-d), got shape {idx.shape}")
    idx = idx.reshape(-1)
    size = x.shape[d] if x.ndim else 1
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ValueRangeError(f"{op}: index out of range for dim {d} of size {size} "
                              f"(indices from {idx.min()} to {idx.max()})")
    return d, np.where(idx < 0, idx + size, idx)


def index_select(input: Any, dim: int, index: Any) -> Tensor:  # noqa: A002
    """The slices ``index`` (a 1-D integer tensor) along ``dim``, in that order
    (torch.index_select); the result has len(index) there."""
    x = as_tensor(input, "index_select")
    if x.ndim == 0:
        d, idx = _vector_index("index_select", x.reshape(1), dim, index)
        return IndexSelect.apply(x.reshape(1), dim=0, index=idx).reshape(())
    d, idx = _vector_index("index_select", x, dim, index)
    return IndexSelect.apply(x, dim=d, index=idx)


def index_add(input: Any, dim: int, index: Any, source: Any, *,  # noqa: A002
              alpha: Any = 1) -> Tensor:
    """A copy of input with ``alpha * source`` added at the slices ``index`` along ``dim``:
    ``out[..., index[j], ...] += alpha * source[..., j, ...]`` (torch.index_add)."""
    x = as_tensor(input, "index_add")
    d, idx = _vector_index("index_add", x, dim, index)
    source = as_tensor(source, "index_add")
    expected = x.shape[:d] + (len(idx),) + x.shape[d + 1:]
    if source.shape != expected and not (x.ndim == 0 and source.size == len(idx)):
        raise ShapeError(f"index_add: source {source.shape} must have self's shape {x.shape} "
                         f"with len(index) = {len(idx)} in dim {d}, i.e. {expected}")
    if source.dtype != x.dtype:
        raise DTypeError(f"index_add: self ({x.dtype}) and source ({source.dtype}) must have "
                         "the same dtype; convert source, e.g. source.to(x.dtype)")
    if alpha != 1:
        source = source * alpha
    return x + IndexAddInto.apply(source, shape=x.shape, dim=d, index=idx)


def take_along_dim(input: Any, indices: Any, dim: int | None = None) -> Tensor:  # noqa: A002
    """``gather`` with broadcasting (torch.take_along_dim): indices and input broadcast
    against each other except along ``dim``; with dim None, both are flattened first."""
    x = as_tensor(input, "take_along_dim")
    idx = _index_array(indices, "take_along_dim")
    if dim is None:
        return gather(x.reshape(-1), 0, Tensor._make(idx.reshape(-1)))
    d = normalize_dim(dim, x.ndim, "take_along_dim")
    if idx.ndim != x.ndim:
        raise ShapeError(f"take_along_dim: input {x.shape} and indices {idx.shape} must have "
                         "the same number of dimensions")
    try:
        outer = np.broadcast_shapes(x.shape[:d] + (1,) + x.shape[d + 1:],
                                    idx.shape[:d] + (1,) + idx.shape[d + 1:])
    except ValueError as e:
        raise ShapeError(f"take_along_dim: input {x.shape} and indices {idx.shape} cannot be "
                         f"broadcast outside dim {d}") from e
    x_shape = outer[:d] + (x.shape[d],) + outer[d + 1:]
    idx_shape = outer[:d] + (idx.shape[d],) + outer[d + 1:]
    if x.shape != x_shape:
        x = x.broadcast_to(x_shape)
    idx = np.broadcast_to(idx, idx_shape)
    size = x.shape[d]
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ValueRangeError(f"take_along_dim: index out of range for dim {d} of size {size}")
    return gather(x, d, Tensor._make(np.ascontiguousarray(np.where(idx < 0, idx + size, idx))))


def masked_select(input: Any, mask: Any) -> Tensor:  # noqa: A002
    """The elements where ``mask`` (bool, broadcast with input) holds, as a 1-D tensor in
    row-major order; the gradient goes back to the elements picked."""
    x = as_tensor(input, "masked_select")
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_select: mask must be a bool tensor, got {m.dtype}; compare "
                         "first (e.g. x > 0)")
    try:
        shape = np.broadcast_shapes(x.shape, m.shape)
    except ValueError as e:
        raise ShapeError(f"masked_select: input {x.shape} and mask {m.shape} cannot be "
                         "broadcast") from e
    if x.shape != shape:
        x = x.broadcast_to(shape)
    return x[np.broadcast_to(m, shape)] if shape else x.reshape(1)[m.reshape(1)]
