"""In-place operations: ``x.add_(y)``, ``x[i] = v``, ``fill_``... They write into a tensor's
memory and bump its version counter, so a graph that saved the old values refuses to run
backward rather than give wrong gradients. tinynet does not record them in the graph: they are
refused on tensors that require grad while grad mode is on (optimizers work under no_grad)."""

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
    if x.requires_grad and is_grad_enabled():
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
    if isinstance(other, Tensor):
        if other.requires_grad and is_grad_enabled():
            raise GraphError(
                f"{op}: the operand requires grad, and tinynet does not record in-place ops in "
                "the graph; use the out-of-place op (x = x + y) instead"
            )
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
    clean = _clean_index(index, x.data.shape)
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
