"""Ops that move elements around without changing them: reshape, transpose, broadcast,
indexing, cat/stack. Their backward moves the gradient back the same way."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError, IndexShapeError, ShapeError, ValueRangeError
from tinynet.ops.operands import as_tensor, normalize_dim, shape_args
from tinynet.tensor import Tensor, is_literal, made_from_literals, read_values


class Reshape(Function):
    """Same elements, new shape; the gradient is reshaped back."""

    is_view = True
    shape_error = "cannot be reshaped"

    @staticmethod
    def forward(ctx: Function, x: Any, shape: tuple[int, ...] = ()) -> np.ndarray:
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad.reshape(ctx.input_shape)


class Permute(Function):
    """Reorder dimensions; the gradient is permuted back with the inverse order."""

    is_view = True

    @staticmethod
    def forward(ctx: Function, x: Any, dims: tuple[int, ...] = ()) -> np.ndarray:
        ctx.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad.permute(ctx.inverse)


class BroadcastTo(Function):
    """Repeat along size-1 (or new leading) dims; the engine sums the gradient back."""

    op = "broadcast_to"
    is_view = True
    shape_error = "cannot be broadcast"

    @staticmethod
    def forward(ctx: Function, x: Any, shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad


class GetItem(Function):
    """x[index]; the gradient lands back where the elements came from, summed where an
    integer-array index picks the same element twice."""

    is_view = True
    shape_error = "cannot be indexed this way"

    @staticmethod
    def forward(ctx: Function, x: Any, index: Any = None) -> np.ndarray:
        ctx.input_shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return ScatterAdd.apply(grad, shape=ctx.input_shape, index=ctx.index)


class ScatterAdd(Function):
    """zeros(shape) with ``grad`` added at ``index`` (the gradient of GetItem; its own gradient
    is indexing again, which makes double backward through indexing work)."""

    @staticmethod
    def forward(ctx: Function, grad: Any, shape: tuple[int, ...] = (), index: Any = None) -> Any:
        ctx.index = index
        out = np.zeros(shape, dtype=grad.dtype)
        if _is_basic(index):
            out[index] = grad  # basic indexing never selects an element twice
        else:
            np.add.at(out, index, grad)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return grad[ctx.index]


class Cat(Function):
    """Join along ``dim``; the gradient is cut back into the pieces."""

    shape_error = "cannot be concatenated"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, dim: int = 0) -> np.ndarray:
        ctx.dim = dim
        ctx.bounds = np.cumsum([0] + [a.shape[dim] for a in arrays])
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Tensor, ...]:
        lead = (slice(None),) * ctx.dim
        b = ctx.bounds
        return tuple(grad[lead + (slice(b[i], b[i + 1]),)] for i in range(len(b) - 1))


class Stack(Function):
    """Stack along a new ``dim``; each input gets its slice of the gradient."""

    shape_error = "cannot be stacked (all shapes must be equal)"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, dim: int = 0) -> np.ndarray:
        ctx.dim, ctx.count = dim, len(arrays)
        return np.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Tensor, ...]:
        lead = (slice(None),) * ctx.dim
        return tuple(grad[lead + (i,)] for i in range(ctx.count))


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(  # (a 0-d bool mask selects everything once, or nothing)
        i is None or i is Ellipsis or isinstance(i, int | slice | np.integer)
        or (isinstance(i, np.ndarray) and i.dtype == np.bool_) for i in items
    )


def reshape(x: Any, *shape: Any) -> Tensor:
    """Same elements in a new shape (one entry may be -1)."""
    x = as_tensor(x, "reshape")
    # Even to the same shape the result is a new tensor (a view sharing x's memory and
    # version counter, as in PyTorch), so changing its requires_grad leaves x alone.
    return Reshape.apply(x, shape=shape_args(shape, "reshape"))


view = reshape


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    x = as_tensor(x, "flatten")
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_dim(start_dim, x.ndim, "flatten")
    e = normalize_dim(end_dim, x.ndim, "flatten")
    if s == e:  # nothing to merge: x itself, as in PyTorch
        return x
    merged = int(np.prod(x.shape[s:e + 1], dtype=np.int64))  # not -1: ambiguous if size 0
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1:])


def permute(x: Any, *dims: Any) -> Tensor:
    x = as_tensor(x, "permute")
    order = tuple(normalize_dim(d, x.ndim, "permute") for d in shape_args(dims, "permute"))
    if sorted(order) != list(range(x.ndim)):
        raise ShapeError(
            f"permute: dims {dims} are not a permutation of the {x.ndim} dims of shape {x.shape}"
        )
    return Permute.apply(x, dims=order)


def transpose(x: Any, *dims: Any) -> Tensor:
    """``transpose(x, d0, d1)`` swaps two dims (PyTorch); ``transpose(x)`` reverses them and
    ``transpose(x, (2, 0, 1))`` permutes (numpy)."""
    x = as_tensor(x, "transpose")
    if not dims:
        return permute(x, tuple(reversed(range(x.ndim))))
    if len(dims) == 2 and not isinstance(dims[0], tuple | list):
        return swapaxes(x, dims[0], dims[1])
    return permute(x, *dims)


def swapaxes(x: Any, axis0: int, axis1: int) -> Tensor:
    x = as_tensor(x, "swapaxes")
    order = list(range(x.ndim))
    a, b = normalize_dim(axis0, x.ndim, "transpose"), normalize_dim(axis1, x.ndim, "transpose")
    order[a], order[b] = order[b], order[a]
    return Permute.apply(x, dims=tuple(order))


def squeeze(x: Any, dim: Any = None, **aliases: Any) -> Tensor:
    """Drop size-1 dims (all of them, or only ``dim``/``axis`` if given and of size 1)."""
    x = as_tensor(x, "squeeze")
    dim = aliases.pop("axis", dim)
    if aliases:
        raise TypeError(f"squeeze() got unexpected keyword argument(s) {sorted(aliases)}")
    if dim is None:
        dims = {i for i, n in enumerate(x.shape) if n == 1}
    else:
        given = dim if isinstance(dim, tuple | list) else (dim,)
        dims = {normalize_dim(d, x.ndim, "squeeze") for d in given}
        dims = {d for d in dims if x.ndim and x.shape[d] == 1}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in dims))


def unsqueeze(x: Any, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim`` (negative counts from the end of the new shape)."""
    x = as_tensor(x, "unsqueeze")
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def broadcast_to(x: Any, *shape: Any) -> Tensor:
    x = as_tensor(x, "broadcast_to")
    return BroadcastTo.apply(x, shape=shape_args(shape, "broadcast_to"))  # a new view, always


def expand(x: Any, *sizes: Any) -> Tensor:
    """PyTorch's expand: like broadcast_to, and -1 keeps a dim's size."""
    x = as_tensor(x, "expand")
    target = shape_args(sizes, "expand")
    lead = len(target) - x.ndim
    resolved = tuple(
        x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(target)
    )
    return broadcast_to(x, resolved)


def _clean_index(index: Any, shape: tuple[int, ...]) -> Any:
    """Tensors and lists in an index become arrays; bool masks become integer indices, once
    their shape is checked against the dims they select from (numpy's ``nonzero`` alone would
    accept a mask of any length). A 0-d bool (``x[True]``, ``x[tn.tensor(False)]``) stays a
    0-d bool: it adds a dim of size 1 or 0, as in numpy and PyTorch."""
    items = index if isinstance(index, tuple) else (index,)
    arrays: list[Any] = []
    literals: set[int] = set()  # ids of the arrays made from lists of numbers (constants)
    for item in items:
        if isinstance(item, Tensor):
            if item.data.dtype == np.bool_ and item.ndim:  # extra: tn.compile (read_values)
                read_values("x[mask] (indexing with a bool tensor) gives a result whose size "
                            "depends on the values, so a replay could not repeat it; use "
                            "tn.where(mask, x, 0) or x * mask, which keep the shape")
            item = item.data
        elif isinstance(item, bool | np.bool_):
            item = made_from_literals(np.array(item))
        elif isinstance(item, list):
            literal = is_literal(item)
            item = dtypes.as_array(item, op="index")  # ragged or non-numeric: DTypeError
            if item.size == 0:  # x[[]] picks nothing (an empty list has no dtype to check)
                item = item.astype(np.int64)
            if literal:
                made_from_literals(item)
                literals.add(id(item))
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "iub":
                raise DTypeError(
                    f"index: tensors used as indices must be integer or bool, got {item.dtype}"
                )
        elif not (item is None or item is Ellipsis or isinstance(item, int | slice | np.integer)):
            raise DTypeError(f"index: unsupported index {item!r}")
        arrays.append(item)
    _check_masks(arrays, shape)
    clean: list[Any] = []
    for item in arrays:
        if isinstance(item, np.ndarray) and item.dtype == np.bool_ and item.ndim:
            positions = np.nonzero(item)
            if id(item) in literals:  # where a constant mask holds: constants too
                for p in positions:
                    made_from_literals(p)
            clean.extend(positions)
        else:
            clean.append(item)
    return tuple(clean) if isinstance(index, tuple) or len(clean) != 1 else clean[0]


def _dims_used(item: Any) -> int:
    """How many dims of the indexed tensor an index item consumes."""
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, np.ndarray) and item.dtype == np.bool_:
        return item.ndim  # a 0-d bool consumes none
    return 1


def _check_masks(items: list[Any], shape: tuple[int, ...]) -> None:
    """Each bool mask must have exactly the shape of the dims it selects from."""
    dim = 0
    for item in items:
        if item is Ellipsis:
            dim += len(shape) - sum(_dims_used(i) for i in items)
            continue
        used = _dims_used(item)
        if isinstance(item, np.ndarray) and item.dtype == np.bool_ and used:
            covered = shape[dim:dim + used]
            if item.shape != covered:
                raise IndexShapeError(
                    f"index: a boolean mask of shape {item.shape} cannot select from dims "
                    f"{dim}..{dim + used - 1} of a tensor of shape {shape} (they have shape "
                    f"{covered}); a mask must have the shape of the dims it indexes"
                )
        dim += used


def getitem(x: Tensor, index: Any) -> Tensor:
    try:
        return GetItem.apply(x, index=_clean_index(index, x.shape))
    except IndexShapeError:
        raise
    except IndexError as e:
        raise IndexError(f"index: {e} (tensor of shape {x.shape})") from e


def cat(tensors: Any, dim: int = 0, **aliases: Any) -> Tensor:
    """Concatenate along an existing dim (``dim``, alias ``axis``)."""
    dim = aliases.pop("axis", dim)
    items = _sequence_of_tensors(tensors, "cat")
    if any(t.ndim == 0 for t in items):
        raise ShapeError(
            f"cat: a 0-d tensor cannot be concatenated (shapes {[t.shape for t in items]}); "
            "use stack to join numbers into a new dim"
        )
    d = normalize_dim(dim, items[0].ndim, "cat")
    return Cat.apply(*items, dim=d)


concatenate = cat


def stack(tensors: Any, dim: int = 0, **aliases: Any) -> Tensor:
    """Stack equal-shaped tensors along a new dim."""
    dim = aliases.pop("axis", dim)
    items = _sequence_of_tensors(tensors, "stack")
    d = normalize_dim(dim, items[0].ndim + 1, "stack")
    return Stack.apply(*items, dim=d)


def _sequence_of_tensors(tensors: Any, op: str) -> list[Tensor]:
    """cat's and stack's argument: a non-empty list or tuple of tensors (or arrays). A single
    tensor is refused, as in PyTorch, rather than silently split into its rows."""
    if not isinstance(tensors, list | tuple):
        raise DTypeError(
            f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}; "
            f"write {op}([a, b])"
        )
    if not tensors:
        raise ValueRangeError(f"{op}: expected a non-empty sequence of tensors")
    return [as_tensor(t, op) for t in tensors]
