"""In-place operations: ``x.add_(y)`` (``x += y``), ``x[i] = v``, ``fill_``... They write into
a tensor's memory and bump its version counter, so a graph that saved the old values refuses to
run backward rather than give wrong gradients.

The arithmetic ones (``add_ sub_ mul_ div_``, so ``+= -= *= /=``) are recorded in the graph
as PyTorch records them: ``h = a * 2; h += 1`` computes ``old_h + 1`` with the ordinary op,
writes the result into h's memory and makes that op h's ``grad_fn``. ``old_h`` is a copy of
the values before the write, so ops that need them for backward (``h *= b``: d/db = old h)
still have them. Through a view (``h[:2] += 1``) the owner of the memory gets a
``CopySlices`` node, and views made in the graph re-read their elements from the owner
afterwards. It is refused once an op other than those views has read the memory (see
``recorded_inplace``). The others (``fill_``, ``copy_``, ``x[i] = v``...) are refused on
tensors in a graph while grad mode is on."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function, is_grad_enabled
from tinynet.autograd.engine import observers
from tinynet.errors import DTypeError, GraphError, ShapeError
from tinynet.ops.datadep import write_in_place
from tinynet.ops.elementwise import add, div, mul, sub, where
from tinynet.ops.shape import _clean_index
from tinynet.tensor import Tensor, bump_world_stamp, read_values


def inplace(x: Tensor, op: str, change: Any, operands: tuple | None = None) -> Tensor:
    """Run ``change(x.data, *operand arrays)`` in place and bump the version counter.

    Refused for tensors in a graph while grad mode is on (optimizers update parameters inside
    ``no_grad``, as in PyTorch). ``operands``: the tensors (or arrays) the change reads, when
    it reads nothing else but Python numbers; then, while an observer watches (``tn.compile``'s
    tracer), the write is a recorded op (``ops.datadep.write_in_place``) that a replay runs
    again on that call's arrays, as a hand-written optimizer's ``p.add_(p.grad, alpha=-lr)``
    needs. Without ``operands`` the change is a plain write the tracer refuses.
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
    if operands is not None and observers.active:  # extra: tn.compile records the write
        write_in_place(change, (0,), x, *operands)
        return x
    change(x.data, *[o.data if isinstance(o, Tensor) else o for o in operands or ()])
    x._version.value += 1
    return x


def inplace_arithmetic(x: Tensor, op: str, ufunc: Any, other: Any) -> Tensor:
    """``x.add_(other)`` and friends: ``ufunc(x, other)`` written into x's memory.

    Like PyTorch, refuses results x's dtype can't hold (``int_tensor.mul_(2.5)``) and shapes
    that would need x to grow. In grad mode, when x or the operand requires grad, the op is
    recorded in the graph (``recorded_inplace``).
    """
    in_graph = x._requires_grad or (isinstance(other, Tensor) and other._requires_grad)
    if in_graph and is_grad_enabled():
        return recorded_inplace(x, op, ufunc, other)
    value = inplace_operand(other, op)
    # the operand the write reads: a tensor or an array (read again at every tn.compile
    # replay), or a number (a constant of the step)
    operands = (other,) if isinstance(other, Tensor) else (
        (value,) if isinstance(value, np.ndarray) else ())

    def change(data: np.ndarray, *read: Any) -> None:
        other = read[0] if read else value
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

    return inplace(x, op, change, operands)


def recorded_inplace(x: Tensor, op: str, ufunc: Any, other: Any) -> Tensor:
    """``x.add_(other)`` in a graph, as PyTorch records it.

    The out-of-place op runs on a copy of x's old values, its result is written into x's
    memory, and its node becomes x's ``grad_fn``; x keeps its identity, memory and version
    counter (bumped). When x is a view (``h[:2] += 1``), the tensor owning the memory gets a
    ``CopySlices`` node instead: its old graph with x's elements replaced. Then every view of
    that memory made in the graph re-reads its elements from the owner (``rebase_views``), so
    views and owner agree in values and gradients, as in PyTorch.

    tinynet's nodes point at their input *tensors* (PyTorch's at nodes), so this is only
    correct while no op other than those views reads the memory; otherwise it is refused, with
    the out-of-place spelling to use instead.
    """
    if x.grad_fn is None and x._requires_grad:
        raise GraphError(
            f"{op}: a leaf tensor that requires grad can't be modified in place while grad "
            "mode is on; do it inside `with tn.no_grad():` (as optimizers do), or compute a new "
            "tensor (x = x + y)"
        )
    counter = x._version
    root = _memory_owner(x)
    problem = (
        "shares its memory with a view made outside the graph (under no_grad, or before "
        "the graph reached it)" if counter.has_views
        else "was already used by another op in the graph" if counter.reads != counter.view_reads
        else "is a strided or read-only view" if not (
            x.data.flags.writeable and root.data.flags.c_contiguous)
        else "is added to a view of itself" if isinstance(other, Tensor) and other is not x
        and other._version is counter else None
    )
    if problem:
        raise GraphError(
            f"{op}: this tensor {problem}, so recording the in-place op would change what "
            "other ops see; write it out of place (x = x + y), or clone() first"
        )
    # extra: tn.compile (read_values): the old values are a copy that no recorded op makes
    read_values(f"{op} edits a tensor of the graph in place"
                f"{' through a view' if root is not x else ''}, which tn.compile cannot "
                "replay; write it out of place (h = h + 1, h = h.relu())")
    if root is x:
        old = Tensor._make(x.data.copy(), x.grad_fn)  # the values before the write
    else:  # x's old values, read from the owner's old graph (not from the tensor x)
        root_old = Tensor._make(root.data.copy(), root.grad_fn)
        old = root_old.reshape(-1)[_positions(x, root)]
    fn = {np.add: add, np.subtract: sub, np.multiply: mul,
          np.true_divide: div}.get(ufunc, ufunc)  # (or any out-of-place fn(old, other))
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
    counter.value += 1
    bump_world_stamp()  # requires_grad may change below (tn.compile's guards rely on it)
    if root is x:
        x.grad_fn, x._requires_grad = result.grad_fn, result._requires_grad
    elif result._requires_grad:
        merged = CopySlices.apply(root_old, result, positions=_positions(x, root))
        root.grad_fn, root._requires_grad = merged.grad_fn, True
    rebase_views(root)
    return x


def _memory_owner(x: Tensor) -> Tensor:
    """The tensor whose memory x views: follow view ops back while the input shares x's
    version counter (x itself when it is no view)."""
    node = x.grad_fn
    while node is not None and node.is_view:
        parent = node.parents[0]
        if not isinstance(parent, Tensor) or parent._version is not x._version:
            break
        x, node = parent, parent.grad_fn
    return x


def _positions(view: Tensor, root: Tensor) -> np.ndarray:
    """For each element of ``view``, its flat position in ``root``'s C-contiguous memory: the
    view's own offset and strides, applied to 0, 1, 2, ... instead of to the values."""
    base = root.data
    start = view.data.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    flat = np.arange(base.size, dtype=np.int64)
    steps = tuple(s // base.itemsize * flat.itemsize for s in view.data.strides)
    return np.lib.stride_tricks.as_strided(flat[start // base.itemsize:], view.shape,
                                           steps).copy()


def rebase_views(root: Tensor) -> None:
    """After an in-place op recorded in a graph, each view of root's memory made in the graph
    reads its elements from root's new graph (PyTorch regenerates views the same way). The
    old view nodes are then read by nobody, so the read counts start again from the views."""
    counter = root._version
    views = list(counter.views or ())  # listed before ``flat``, itself a view, joins them
    if views and root.grad_fn is not None:
        flat = root.reshape(-1)
        for view in views:
            if view is not root and view.grad_fn is not None:
                fresh = flat[_positions(view, root)]
                view.grad_fn, view._requires_grad = fresh.grad_fn, True
    counter.reads = counter.view_reads


class CopySlices(Function):
    """A tensor with some elements replaced: out = base; out.flat[positions] = values. The
    gradient goes to the base except at those positions, and from there to the values
    (PyTorch's node for an in-place op through a view)."""

    @staticmethod
    def forward(ctx: Function, base: Any, values: Any, positions: Any = None) -> np.ndarray:
        ctx.positions = positions
        replaced = np.zeros(base.size, dtype=bool)
        replaced[positions.ravel()] = True
        ctx.replaced = replaced.reshape(base.shape)
        out = base.copy()
        out.reshape(-1)[positions.ravel()] = values.ravel()
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        need_base, need_values = ctx.needs_input_grad
        return (where(ctx.replaced, 0.0, grad) if need_base else None,
                grad.reshape(-1)[ctx.positions] if need_values else None)


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
