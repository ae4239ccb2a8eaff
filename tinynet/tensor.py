"""Tensor: what users touch. A numpy array plus what autograd needs.

``data`` is the array, ``grad`` the accumulated gradient (a Tensor or None), ``grad_fn`` the
node that produced this tensor (None for leaves). Every operator and method below is one line
that calls the op in ``tinynet.ops``; the maths and the derivatives live there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, GraphError, ShapeError, ValueRangeError


class VersionCounter:
    """Counts in-place modifications of a tensor's memory (shared by views of it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """An n-dimensional array that can record the operations applied to it."""

    __slots__ = ("data", "grad", "grad_fn", "_requires_grad", "_version", "_hooks", "__weakref__")

    # Make numpy hand ``ndarray + tensor`` over to Tensor.__radd__ instead of looping over us.
    __array_ufunc__ = None
    __hash__ = object.__hash__  # == is elementwise, so hashing is by identity (as in PyTorch)

    data: np.ndarray
    grad: Tensor | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = dtypes.as_array(data, dtype, copy=True, op="Tensor")
        self.grad = None
        self.grad_fn = None
        self._requires_grad = False
        self._version = VersionCounter()
        self._hooks: list[Callable[[Tensor], Any]] | None = None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _make(
        cls, array: Any, grad_fn: Any = None, version: VersionCounter | None = None
    ) -> Tensor:
        """Fast internal constructor: no copy, no validation."""
        t = object.__new__(cls)
        t.data = array if type(array) is np.ndarray else np.asarray(array)
        t.grad = None
        t.grad_fn = grad_fn
        t._requires_grad = grad_fn is not None
        t._version = version if version is not None else VersionCounter()
        t._hooks = None
        return t

    # ---- attributes ------------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None:
            if not flag:
                raise GraphError(
                    "requires_grad: you can only change requires_grad of leaf tensors; use "
                    "detach() to get a tensor without a graph"
                )
            return
        if flag and self.data.dtype.kind != "f":
            raise DTypeError(
                f"requires_grad: only floating point tensors can require gradients, this one is "
                f"{self.data.dtype}; convert it first (e.g. x.float())"
            )
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if not isinstance(requires_grad, bool):  # "no", 0 or an array would mean True or fail
            raise DTypeError(
                f"requires_grad_(): argument 'requires_grad' must be bool, not "
                f"{type(requires_grad).__name__} (as in PyTorch); pass True or False"
            )
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return ops.swapaxes(self, -1, -2)

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape, or the length of one dimension (as ``torch.Tensor.size``)."""
        if dim is None:
            return self.data.shape
        if self.ndim == 0:
            raise ShapeError(f"size: dim {dim} given, but a 0-d tensor has no dimensions")
        return self.data.shape[ops.normalize_dim(dim, self.ndim, "size")]

    def item(self) -> Any:
        if self.data.size != 1:
            raise GraphError(
                f"item: only one-element tensors can be converted to a Python number, this one "
                f"has shape {self.shape}"
            )
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared memory), as ``torch.Tensor.numpy``."""
        if self._requires_grad:
            raise GraphError(
                "numpy: can't call numpy() on a tensor that requires grad; use "
                "tensor.detach().numpy()"
            )
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same data (shared memory and version counter), cut from the graph."""
        return Tensor._make(self.data, None, self._version)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def clone(self) -> Tensor:
        return ops.clone(self)

    def contiguous(self) -> Tensor:
        return self if self.data.flags.c_contiguous else ops.clone(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ---- autograd --------------------------------------------------------------------------

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        trace: bool = False,
    ) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires grad,
        and add it into each leaf's ``.grad``. ``trace=True`` prints each backward step."""
        autograd.backward(self, gradient, retain_graph, create_graph, trace)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor
        replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        return autograd.hooks.register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor too (leaves always keep it)."""
        autograd.hooks.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        return autograd.hooks.retains_grad(self)

    # ---- conversions -----------------------------------------------------------------------

    def astype(self, dtype: Any) -> Tensor:
        return ops.cast(self, dtype)

    def to(self, dtype: Any) -> Tensor:
        return ops.cast(self, dtype)

    def type(self, dtype: Any) -> Tensor:
        return ops.cast(self, dtype)

    def float(self) -> Tensor:
        return ops.cast(self, dtypes.float32)

    def double(self) -> Tensor:
        return ops.cast(self, dtypes.float64)

    def half(self) -> Tensor:
        return ops.cast(self, dtypes.float16)

    def long(self) -> Tensor:
        return ops.cast(self, dtypes.int64)

    def int(self) -> Tensor:
        return ops.cast(self, dtypes.int32)

    def bool(self) -> Tensor:
        return ops.cast(self, dtypes.bool_)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise DTypeError("only integer tensors of a single element can be used as an index")
        return int(self.data.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise GraphError(
                f"bool: the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.data.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    # ---- arithmetic operators (numbers and arrays on either side) --------------------------

    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    # Comparisons give bool tensors and are never differentiated.
    def __lt__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.less, self, other)

    def __le__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.greater_equal, self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(np.not_equal, self, other)

    def __invert__(self) -> Tensor:
        return ops.logical_not(self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        ops.setitem_(self, index, value)

    # ---- methods (PyTorch names; numpy's axis/keepdims spelled either way) ------------------

    def sum(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.sum(self, dim, keepdim, **aliases)

    def mean(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.mean(self, dim, keepdim, **aliases)

    def max(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.max(self, dim, keepdim, **aliases)

    def min(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.min(self, dim, keepdim, **aliases)

    def argmax(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.argmax(self, dim, keepdim, **aliases)

    def argmin(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.argmin(self, dim, keepdim, **aliases)

    def all(self) -> Tensor:
        return Tensor._make(np.asarray(self.data.all()))

    def any(self) -> Tensor:
        return Tensor._make(np.asarray(self.data.any()))

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, *shape)

    def view(self, *shape: Any) -> Tensor:
        return ops.reshape(self, *shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return ops.flatten(self, start_dim, end_dim)

    def transpose(self, *dims: Any) -> Tensor:
        """``transpose(d0, d1)`` swaps two dims (PyTorch); ``transpose((2, 0, 1))`` or no
        argument permutes like numpy."""
        return ops.transpose(self, *dims)

    def permute(self, *dims: Any) -> Tensor:
        return ops.permute(self, *dims)

    def swapaxes(self, axis0: int, axis1: int) -> Tensor:
        return ops.swapaxes(self, axis0, axis1)

    def squeeze(self, dim: Any = None, **aliases: Any) -> Tensor:
        return ops.squeeze(self, dim, **aliases)

    def unsqueeze(self, dim: int) -> Tensor:
        return ops.unsqueeze(self, dim)

    def broadcast_to(self, *shape: Any) -> Tensor:
        return ops.broadcast_to(self, *shape)

    def expand(self, *shape: Any) -> Tensor:
        return ops.expand(self, *shape)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def step(self, surrogate: str | None = None) -> Tensor:
        return ops.step(self, surrogate)

    def softmax(self, dim: int = -1, **aliases: Any) -> Tensor:
        return ops.softmax(self, dim, **aliases)

    def log_softmax(self, dim: int = -1, **aliases: Any) -> Tensor:
        return ops.log_softmax(self, dim, **aliases)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - PyTorch names
        return ops.clip(self, min, max)

    clamp = clip

    def maximum(self, other: Any) -> Tensor:
        return ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return ops.minimum(self, other)

    def pow(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def matmul(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    # ---- in-place operations (bump the version counter) ------------------------------------

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        if alpha != 1:
            other = (other.data if isinstance(other, Tensor) else np.asarray(other)) * alpha
        return ops.inplace_arithmetic(self, "add_", np.add, other)

    def sub_(self, other: Any, alpha: float = 1.0) -> Tensor:
        return self.add_(other, -alpha)

    def mul_(self, other: Any) -> Tensor:
        return ops.inplace_arithmetic(self, "mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        return ops.inplace_arithmetic(self, "div_", np.true_divide, other)

    # ``x += y`` works in place, as in PyTorch (e.g. ``w -= lr * w.grad`` inside no_grad).
    # tinynet does not record in-place ops in a graph, so while grad mode is on and either side
    # requires grad, the result is computed out of place (same values and gradients; only
    # other references to the old tensor don't see it). A leaf that requires grad is refused,
    # as PyTorch refuses it.
    def __iadd__(self, other: Any) -> Tensor:
        return self._augmented(ops.add, "add_", other)

    def __isub__(self, other: Any) -> Tensor:
        return self._augmented(ops.sub, "sub_", other)

    def __imul__(self, other: Any) -> Tensor:
        return self._augmented(ops.mul, "mul_", other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._augmented(ops.div, "div_", other)

    def _augmented(self, op: Callable[[Any, Any], Tensor], name: str, other: Any) -> Tensor:
        in_graph = self._requires_grad or (isinstance(other, Tensor) and other._requires_grad)
        if in_graph and autograd.is_grad_enabled():
            if self.grad_fn is None and self._requires_grad:
                raise GraphError(
                    f"{name}: a leaf tensor that requires grad can't be modified in place while "
                    "grad mode is on; do it inside `with tn.no_grad():` (as optimizers do)"
                )
            return op(self, other)
        return getattr(self, name)(other)

    def zero_(self) -> Tensor:
        return ops.inplace(self, "zero_", lambda d: d.fill(0))

    def fill_(self, value: Any) -> Tensor:
        fill = ops.inplace_operand(value, "fill_")
        if np.ndim(fill) != 0:
            raise ShapeError(
                f"fill_: the value must be a number or a 0-d tensor, got shape {np.shape(fill)}; "
                "use copy_ to copy a tensor's values"
            )
        dtypes.check_storable(fill, self.data.dtype, "fill_")
        return ops.inplace(self, "fill_", lambda d: d.fill(fill))

    def copy_(self, source: Any) -> Tensor:
        """Copy ``source``'s values in (broadcast to this tensor's shape, converted to its
        dtype, as ``torch.Tensor.copy_``)."""
        src = ops.inplace_operand(source, "copy_")

        def copy(d: np.ndarray) -> None:
            try:
                np.copyto(d, src, casting="unsafe")
            except ValueError as e:
                raise ShapeError(
                    f"copy_: a source of shape {np.shape(src)} cannot be broadcast to the "
                    f"tensor's shape {d.shape}"
                ) from e

        return ops.inplace(self, "copy_", copy)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        """Limit values to [min, max] in place; numbers or tensors that broadcast to this one."""
        if min is None and max is None:
            raise ValueRangeError("clamp_: at least one of min and max must be given")
        low = None if min is None else ops.inplace_operand(min, "clamp_")
        high = None if max is None else ops.inplace_operand(max, "clamp_")

        def clamp(d: np.ndarray) -> None:
            try:
                result = np.clip(d, low, high)  # checked before anything is written
            except ValueError as e:
                raise ShapeError(f"clamp_: bounds of shapes {np.shape(low)} and "
                                 f"{np.shape(high)} don't fit a tensor of shape {d.shape}") from e
            if result.shape != d.shape:
                raise ShapeError(f"clamp_: bounds of shapes {np.shape(low)} and "
                                 f"{np.shape(high)} would grow the tensor's shape {d.shape}")
            if not np.can_cast(result.dtype, d.dtype, "same_kind"):
                raise DTypeError(f"clamp_: a {d.dtype} tensor can't hold {result.dtype} bounds "
                                 "in place; convert the tensor first (e.g. x.float())")
            np.copyto(d, result)

        return ops.inplace(self, "clamp_", clamp)

    clip_ = clamp_


# Tensor's operators call tinynet.ops, and Tensor.backward calls tinynet.autograd; both of those
# build Tensors, so they import this module. To keep imports one-way (tensor <- autograd <- ops),
# this module leaves the two names empty; tinynet/__init__.py fills them in, once, right after
# loading both. (Any ``import tinynet.<anything>`` runs tinynet/__init__.py first.)
ops: Any = None
autograd: Any = None
