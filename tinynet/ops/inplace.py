"""In-place operations: ``x.add_(y)`` (``x += y``), ``x[i] = v``, ``fill_``... They write into
a tensor's memory and bump its version counter, so a graph that saved the old values refuses to
run backward rather than give wrong gradients.

The arithmetic ones (``add_ sub_ mul_ div_``, so ``+= -= *= /=``) are recorded in the graph
as PyTorch records them: ``h = a * 2; h += 1`` computes ``old_h + 1`` with the ordinary op,
writes the result into h's memory and makes that op h's ``grad_fn``. ``old_h`` is a copy of
the values before the write, so ops that need them for backward (``h *= b``: d/db = old h)
still have them. This is refused once another op has read x, or when x shares its memory with
a view (see ``recorded_inplace``). The others (``fill_``, ``copy_``, ``x[i] = v``...) are
refused on tensors in a graph while grad mode is on."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import is_grad_enabled
from tinynet.errors import DTypeError, GraphError, ShapeError
from tinynet.ops.shape import _clean_index
from tinynet.tensor import Tensor


def inplace(x: Tensor, op: str, change: Any) -> Tensor:
    """Run ``change(x.data)`` in place and bump the version counter.

    Refused for tensors in a graph while grad mode is on (optimizers update parameters inside
    ``no_grad``, as in PyTorch).
    """
    if x._requires_grad and is_grad_enabled():
        what = "a leaf tensor that requires grad" if x.grad_fn is None else (
            "a tensor that is part of a graph")
        raise GraphError(
            f"{op}: {what} can't be modified in place while grad mode is on; do it inside "
            "`with tn.no_grad():` (as optimizers do) or use the out-of-place op"
        )
    if not x.data.flags.writeable:
        raise GraphError(f"{op}: this tensor's memory is read-only (e.g. a broadcast view)")
    change(x.data)
    x._version.value += 1
    return x


def inplace_arithmetic(x: Tensor, op: str, ufunc: Any, other: Any) -> Tensor:
    """``x.add_(other)`` and friends: ``ufunc(x, other)`` written into x's memory.

    Like PyTorch, refuses results x's dtype can't hold (``int_tensor.mul_(2.5)``) and shapes
    that would need x to grow; an operand that requires grad can't flow into x unrecorded.
    """
    in_graph = x._requires_grad or (isinstance(other, Tensor) and other._requires_grad)
    if in_graph and is_grad_enabled():
        return recorded_inplace(x, op, ufunc, other)
    other = inplace_operand(other, op)

    def change(data: np.ndarray) -> None:
        try:
            ufunc(data, other, out=data, casting="same_kind")
        except TypeError as e:  # numpy's UFuncTypeError
            raise DTypeError(
                f"{op}: the result can't be stored in place in a {data.dtype} tensor "
                f"(operand dtype {np.result_type(other)}); convert the tensor first"
            ) from e
        except ValueError as e:
            raise ShapeError(
                f"{op}: shapes {data.shape} and {np.shape(other)}: the result must keep the "
                f"tensor's shape {data.shape} ({e})"
            ) from e

    return inplace(x, op, change)


def recorded_inplace(x: Tensor, op: str, ufunc: Any, other: Any) -> Tensor:
    """``x.add_(other)`` in a graph, as PyTorch records it: the out-of-place op runs on a copy
    of x's old values, its result is written into x's memory, and its node becomes x's
    ``grad_fn``. x keeps its identity, its memory and its version counter (bumped).

    tinynet's graph nodes point at their input tensors (PyTorch's point at nodes), so this is
    only correct while no node reads x yet; otherwise, or when x shares memory with a view, it
    is refused with the out-of-place spelling to use instead.
    """
    from tinynet import ops

    if x.grad_fn is None and x._requires_grad:
        raise GraphError(
            f"{op}: a leaf tensor that requires grad can't be modified in place while grad "
            "mode is on; do it inside `with tn.no_grad():` (as optimizers do), or compute a new "
            "tensor (x = x + y)"
        )
    if x._used or x._version.has_views:
        what = ("shares its memory with a view (x[...], x.T, reshape...)"
                if x._version.has_views else "was already used by another op in the graph")
        raise GraphError(
            f"{op}: this tensor {what}, so recording the in-place op would change what that "
            "op sees; write it out of place (x = x + y), or clone() first"
        )
    old = Tensor._make(x.data.copy(), x.grad_fn)  # the values before the write
    fn = {np.add: ops.add, np.subtract: ops.sub, np.multiply: ops.mul,
          np.true_divide: ops.div}[ufunc]
    result = fn(old, old if other is x else other)  # h += h: both sides are the old h
    if result.shape != x.shape:
        raise ShapeError(
            f"{op}: shapes {x.shape} and {np.shape(other)}: the result {result.shape} must "
            f"keep the tensor's shape {x.shape}"
        )
    if result.dtype != x.dtype:
        if not np.can_cast(result.dtype, x.dtype, "same_kind"):
            raise DTypeError(
                f"{op}: the result ({result.dtype}) can't be stored in place in a {x.dtype} "
                "tensor; convert the tensor first"
            )
        result = result.to(x.dtype)
    np.copyto(x.data, result.data)
    x._version.value += 1
    x.grad_fn, x._requires_grad = result.grad_fn, result._requires_grad
    return x


def inplace_operand(value: Any, op: str) -> Any:
    """The operand of an in-place op as numpy takes it: a Tensor's array, a real number, or
    data ``dtypes.as_array`` accepts (strings, objects and ragged lists raise DTypeError here
    instead of failing somewhere inside numpy)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
        return value
    return dtypes.as_array(value, copy=False, op=op)


def setitem_(x: Tensor, index: Any, value: Any) -> None:
    """``x[index] = value``, in place (bumps the version counter)."""
    source = inplace_operand(value, "setitem")
    if isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
        raise GraphError(
            "setitem: assigning a tensor that requires grad into another tensor is not "
            "recorded by tinynet's autograd; build the result with where() or cat() instead"
        )
    clean = _clean_index(index)
    dtypes.check_storable(source, x.data.dtype, "setitem")

    def assign(data: np.ndarray) -> None:
        try:
            data[clean] = source
        except ValueError as e:
            raise ShapeError(
                f"setitem: value of shape {np.shape(source)} cannot be assigned to "
                f"x[{index!r}] of a tensor with shape {data.shape} ({e})"
            ) from e

    inplace(x, "setitem", assign)
