"""Tensor: what users touch. A numpy array plus what autograd needs.

``data`` is the array, ``grad`` the accumulated gradient (a Tensor or None), ``grad_fn`` the
node that produced this tensor (None for leaves). Every operator and method below is one line
that calls the op in ``tinynet.ops``; the maths and the derivatives live there.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, GraphError, ShapeError, ValueRangeError


class _ValueReads(threading.local):
    refuse: Callable[[str], None] | None = None  # tn.compile's tracer, in the thread it traces
    # extra: tn.compile's tracer is told which arrays tinynet made from Python literals alone
    constant: Callable[[np.ndarray], None] | None = None
    # the array a recorded write (``p.data += -lr * p.grad``, ops/ufuncs.py) just wrote: the
    # ``.data`` assignment that ends that statement is then no numpy work the trace missed
    recorded_write: np.ndarray | None = None


value_reads = _ValueReads()


def read_values(what: str) -> None:
    """Called where values leave the graph (``item()``, ``bool(t)``, printing: ``what`` is the
    method's name) or an op's result depends on them in a way a trace cannot see (``what``
    says how). Does nothing unless a tracer in this thread registered ``value_reads.refuse``
    (it raises, naming the user's line)."""
    if value_reads.refuse is not None:
        value_reads.refuse(what)


def made_from_literals(array: np.ndarray) -> np.ndarray:
    """Called where tinynet makes an array from Python literals alone (``tn.tensor([1, 2])``,
    ``zeros``, a number operand): while ``tn.compile`` traces, this is its proof that the
    array is a constant. Returns ``array``."""
    if value_reads.constant is not None:
        value_reads.constant(array)
    return array


def is_literal(data: Any) -> bool:
    """True for numbers (Python's or numpy's: values, read when the code runs, like any
    Python number) and (nested) lists and tuples of them; never an array."""
    if isinstance(data, list | tuple):
        return all(is_literal(item) for item in data)
    return isinstance(data, int | float | bool | complex | np.generic)


class VersionCounter:
    """Counts in-place modifications of a tensor's memory (shared by views of it).

    It also keeps what an in-place op recorded in a graph needs to know (ops/inplace.py):
    ``views``, the views of this memory made in a graph (held weakly; their ``grad_fn`` is
    rewritten after such an op); ``has_views``, a view made outside any graph exists (it can't
    be rewritten, so such an op is refused); ``reads``, how many times ops read a tensor of this
    memory as an input, and ``view_reads``, how many of those made the views. When the two
    differ, some other op reads this memory and the in-place op is refused.
    """

    __slots__ = ("value", "has_views", "views", "reads", "view_reads")

    def __init__(self) -> None:
        self.value = 0
        self.has_views = False
        self.views: weakref.WeakSet[Tensor] | None = None
        self.reads = self.view_reads = 0


class WorldStamp:
    """One counter for the whole process, bumped by every change of the kind that can make a
    compiled step's program wrong for the world it runs in: a tensor's ``.data`` replaced, its
    ``requires_grad`` switched, a module attribute set or deleted (``train()``/``eval()``,
    a new parameter or submodule), an optimizer's groups or state loaded or extended, a
    gradient hook registered or removed.

    ``tn.compile`` checks it before each replay: while it has not moved since the last full
    guard check, the conditions it covers still hold, so only the ones it cannot see (``.grad``,
    plain dicts and lists, optimizer hyperparameters, the arguments) are checked again.
    Nothing else reads it; bumping too often only costs a full check."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


world_stamp = WorldStamp()


def bump_world_stamp() -> None:
    """Say that the world changed (see ``WorldStamp``)."""
    world_stamp.value += 1


class device:  # noqa: N801 - PyTorch's name
    """Where a tensor lives. tinynet runs on the CPU only, so there is one: ``tn.device("cpu")``
    (``str`` gives "cpu", as ``torch.device``)."""

    __slots__ = ("type",)

    def __init__(self, type: Any = "cpu", index: int | None = None) -> None:  # noqa: A002
        name = type.type if isinstance(type, device) else str(type)
        if name.split(":")[0] != "cpu" or index not in (None, 0):
            raise ValueRangeError(
                f"device: tinynet runs on the CPU only, got {name!r}; drop .to(device) or use "
                "'cpu'"
            )
        self.type = "cpu"

    @property
    def index(self) -> None:
        return None

    def __str__(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)


CPU = device("cpu")
_NOT_GIVEN: Any = object()


class Tensor:
    """An n-dimensional array that can record the operations applied to it."""

    __slots__ = ("_data", "grad", "grad_fn", "_requires_grad", "_version", "_hooks",
                 "__weakref__")

    __hash__ = object.__hash__  # == is elementwise, so hashing is by identity (as in PyTorch)

    grad: Tensor | None

    def __init__(self, data: Any = _NOT_GIVEN, *sizes: Any, requires_grad: bool = False,
                 dtype: Any = None) -> None:
        """``Tensor(data)`` copies data, as ``tn.tensor``. ``Tensor(2, 3)`` (two or more sizes)
        is an uninitialised float tensor of that shape, as ``torch.Tensor(2, 3)``; prefer
        ``tn.empty(2, 3)``. (``Tensor(3)`` is the number 3, not a tensor of size 3.)"""
        if len(sizes) == 1 and isinstance(sizes[0], bool):  # the old Tensor(data, True)
            requires_grad, sizes = sizes[0], ()
        # extra: tn.compile (numbers, lists of numbers and sizes make a constant; a copy of an
        # array or a tensor does not)
        literal = value_reads.constant is not None and (
            data is _NOT_GIVEN or bool(sizes) or is_literal(data))
        if data is _NOT_GIVEN:
            data = np.empty((0,), dtype=dtypes.to_dtype(dtype))
        elif sizes:
            shape = (data, *sizes)
            if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0
                       for n in shape):
                raise DTypeError(
                    f"Tensor: Tensor(*sizes) takes non-negative integer sizes, got {shape!r}; "
                    "for data use tn.tensor(data), for an empty tensor tn.empty(*sizes), and "
                    "pass requires_grad and dtype by keyword"
                )
            data = np.empty(tuple(int(n) for n in shape), dtype=dtypes.to_dtype(dtype))
        self._data = dtypes.as_array(data, dtype, copy=True, op="Tensor")
        if literal:
            made_from_literals(self._data)
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
        t._data = array if type(array) is np.ndarray else np.asarray(array)
        t.grad = None
        t.grad_fn = grad_fn
        t._requires_grad = grad_fn is not None
        if version is None:
            version = VersionCounter()
        elif grad_fn is None:  # a view made outside a graph
            version.has_views = True
        elif grad_fn.is_view:  # a view in a graph (not the handle on a saved output)
            if version.views is None:
                version.views = weakref.WeakSet()
            version.views.add(t)
            version.view_reads += 1
        t._version = version
        t._hooks = None
        return t

    # ---- attributes ------------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The numpy array holding the values (tinynet's storage; PyTorch's ``.data`` is a
        detached Tensor instead, see the README). ``p.data -= lr * p.grad`` edits it in place,
        outside the graph, as in PyTorch."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        """``t.data = other`` makes t hold other's values (sharing its memory when other is a
        Tensor or an array), any shape, as in PyTorch; the graph never sees it."""
        if isinstance(value, Tensor):
            value = value._data
        if not isinstance(value, np.ndarray):
            raise DTypeError(
                f"data: assign a Tensor or a numpy array, got {type(value).__name__}; "
                "e.g. t.data = tn.tensor(values)"
            )
        if value.dtype.kind not in "biuf":
            raise DTypeError(f"data: arrays of dtype {value.dtype} are not supported")
        if self._requires_grad and value.dtype.kind != "f":
            raise DTypeError(
                f"data: this tensor requires grad, so it must hold floats; got {value.dtype}"
            )
        recorded, value_reads.recorded_write = value_reads.recorded_write, None
        if value_reads.refuse is not None and not (value is self._data and value is recorded):
            # extra: tn.compile (numpy work on .data)
            caller = sys._getframe(1)
            read_values(f"assigns .data ({caller.f_code.co_filename}:{caller.f_lineno}: numpy "
                        "work on arrays, as p.data -= lr * p.grad.data in a hand-written "
                        "optimizer step), which tn.compile cannot replay: it records tensor "
                        "ops. Write it with tensor ops; in-place ones under tn.no_grad() are "
                        "recorded (p.add_(p.grad, alpha=-lr), buf.mul_(momentum).add_(p.grad))")
        if value is not self._data:
            world_stamp.value += 1
        self._data = value

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
        if flag and self._data.dtype.kind != "f":
            raise DTypeError(
                f"requires_grad: only floating point tensors can require gradients, this one is "
                f"{self._data.dtype}; convert it first (e.g. x.float())"
            )
        if self._requires_grad is not bool(flag):  # (new tensors set False: no change)
            world_stamp.value += 1
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
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return ops.swapaxes(self, -1, -2)

    @property
    def device(self) -> device:
        """Always ``device(type='cpu')``: tinynet runs on the CPU."""
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False) -> Tensor:
        """Refused: tinynet runs on the CPU only (``tn.cuda.is_available()`` is False)."""
        raise ValueRangeError(
            "cuda: tinynet runs on the CPU only; use .to(device) with device = 'cuda' if "
            "tn.cuda.is_available() else 'cpu', or drop the call"
        )

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape, or the length of one dimension (as ``torch.Tensor.size``)."""
        if dim is None:
            return self._data.shape
        if self.ndim == 0:
            raise ShapeError(f"size: dim {dim} given, but a 0-d tensor has no dimensions")
        return self._data.shape[ops.normalize_dim(dim, self.ndim, "size")]

    def item(self) -> Any:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('item')
        if self._data.size != 1:
            raise GraphError(
                f"item: only one-element tensors can be converted to a Python number, this one "
                f"has shape {self.shape}"
            )
        return self._data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared memory), as ``torch.Tensor.numpy``."""
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('numpy')
        if self._requires_grad:
            raise GraphError(
                "numpy: can't call numpy() on a tensor that requires grad; use "
                "tensor.detach().numpy()"
            )
        return self._data

    def tolist(self) -> Any:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('tolist')
        return self._data.tolist()

    def detach(self) -> Tensor:
        """The same data (shared memory and version counter), cut from the graph."""
        t = Tensor._make(self._data)
        t._version = self._version  # not a view: in-place edits through it are plain edits
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        world_stamp.value += 1
        return self

    def clone(self) -> Tensor:
        return ops.clone(self)

    def contiguous(self) -> Tensor:
        return self if self._data.flags.c_contiguous else ops.clone(self)

    def __repr__(self) -> str:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__repr__')
        body = np.array2string(self._data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self._data.dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self._data.dtype}")
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

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other_tensor)`` (its dtype),
        keywords ``device=``, ``dtype=``, ``copy=``, ``non_blocking=`` (ignored), as PyTorch.
        Returns this tensor itself when nothing changes (unless ``copy=True``)."""
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        dtype, place = kwargs.pop("dtype", None), kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword argument(s) {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, device) or (isinstance(arg, str) and arg.split(":")[0] in (
                    "cpu", "cuda", "mps", "meta", "xpu")):
                place = arg
            elif isinstance(arg, bool):  # to(dtype, non_blocking, copy) positional flags
                continue
            else:
                dtype = arg
        if place is not None:
            device(place)  # refuses anything but the CPU
        out = self if dtype is None else ops.cast(self, dtype)
        return out.clone() if copy and out is self else out

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
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__float__')
        return float(self.item())

    def __int__(self) -> int:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__int__')
        return int(self.item())

    def __index__(self) -> int:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__index__')
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise DTypeError("only integer tensors of a single element can be used as an index")
        return int(self._data.item())

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a 0-d tensor as its number, as in PyTorch."""
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__format__')
        if self._data.ndim == 0:
            return format(self._data.item(), spec)
        if spec:
            raise DTypeError(
                f"unsupported format string passed to Tensor.__format__ (a tensor of shape "
                f"{self.shape}; format one element, e.g. f'{{x[0]:{spec}}}', or x.item())"
            )
        return str(self)

    def __bool__(self) -> bool:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__bool__')
        if self._data.size != 1:
            raise GraphError(
                f"bool: the truth value of a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self._data.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if value_reads.refuse is not None:  # extra: tn.compile refuses value reads
            value_reads.refuse('__array__')
        return self._data if dtype is None else self._data.astype(dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """numpy functions on tensors: ``np.sin(t)`` is ``tn.sin(t)`` (recorded, differentiable)
        and ``array + t`` is ``t.__radd__(array)``. ``array -= t`` writes t's values into the
        array. A ufunc tinynet has no op for raises, naming the tensor method to use."""
        return ops.array_ufunc(ufunc, method, inputs, kwargs)

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

    def __and__(self, other: Any) -> Tensor:
        return ops.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Tensor:
        return ops.bitwise_and(other, self)

    def __or__(self, other: Any) -> Tensor:
        return ops.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Tensor:
        return ops.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Tensor:
        return ops.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return ops.bitwise_xor(other, self)

    def logical_and(self, other: Any) -> Tensor:
        return ops.logical_and(self, other)

    def logical_or(self, other: Any) -> Tensor:
        return ops.logical_or(self, other)

    def logical_xor(self, other: Any) -> Tensor:
        return ops.logical_xor(self, other)

    def logical_not(self) -> Tensor:  # torch's: any dtype -> bool, x == 0 (unlike ~x)
        return ops.logical_xor(self, True)

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor in ``other``'s dtype (itself when it already has it), as PyTorch."""
        if not isinstance(other, Tensor):
            raise TypeError(f"type_as: expected a Tensor to take the dtype of, got "
                            f"{type(other).__name__}; for a dtype use .to(dtype)")
        return self.to(other.dtype)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        ops.setitem_(self, index, value)

    # ---- methods (PyTorch names; numpy's axis/keepdims spelled either way) ------------------

    def sum(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.sum(self, dim, keepdim, **aliases)

    def mean(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.mean(self, dim, keepdim, **aliases)

    def max(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Any:
        """The max (a tensor), or ``(values, indices)`` over an int ``dim``, as torch.max."""
        return ops.max(self, dim, keepdim, **aliases)

    def min(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Any:
        return ops.min(self, dim, keepdim, **aliases)

    def argmax(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.argmax(self, dim, keepdim, **aliases)

    def argmin(self, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
        return ops.argmin(self, dim, keepdim, **aliases)

    def amax(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        return ops.amax(self, dim, keepdim)

    def amin(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        return ops.amin(self, dim, keepdim)

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.all(self, dim, keepdim)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.any(self, dim, keepdim)

    def std(self, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
            correction: Any = None) -> Tensor:
        return ops.std(self, dim, unbiased, keepdim, correction=correction)

    def var(self, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
            correction: Any = None) -> Tensor:
        return ops.var(self, dim, unbiased, keepdim, correction=correction)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False,
             dtype: Any = None) -> Tensor:
        return ops.norm(self, p, dim, keepdim, dtype)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        return ops.logsumexp(self, dim, keepdim)

    def sort(self, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Any:
        return ops.sort(self, dim, descending, stable=stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return ops.topk(self, k, dim, largest, sorted)

    def gather(self, dim: int, index: Tensor) -> Tensor:
        return ops.gather(self, dim, index)

    def masked_fill(self, mask: Tensor, value: Any) -> Tensor:
        return ops.masked_fill(self, mask, value)

    def split(self, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.chunk(self, chunks, dim)

    def eq(self, other: Any) -> Tensor:
        return ops.compare(np.equal, self, other)

    def ne(self, other: Any) -> Tensor:
        return ops.compare(np.not_equal, self, other)

    def t(self) -> Tensor:
        """Transpose a matrix (a tensor of at most 2 dims is returned as is or swapped)."""
        if self.ndim > 2:
            raise ShapeError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape}; "
                             "use transpose(d0, d1) or mT")
        return self if self.ndim < 2 else ops.swapaxes(self, 0, 1)

    def view_as(self, other: Tensor) -> Tensor:
        return ops.reshape(self, other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return ops.reshape(self, other.shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return ops.expand(self, other.shape)

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

    def sin(self) -> Tensor:
        return ops.sin(self)

    def cos(self) -> Tensor:
        return ops.cos(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def log10(self) -> Tensor:
        return ops.log10(self)

    def log2(self) -> Tensor:
        return ops.log2(self)

    def diag(self, diagonal: int = 0) -> Tensor:
        return ops.diag(self, diagonal)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        return ops.diagonal(self, offset, dim1, dim2)

    def diag_embed(self, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
        return ops.diag_embed(self, offset, dim1, dim2)

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

    def mm(self, mat2: Any) -> Tensor:
        return ops.mm(self, mat2)

    # ---- in-place operations (bump the version counter) ------------------------------------

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        """``self += alpha * other``, in place."""
        if alpha != 1:
            other = other * alpha if isinstance(other, Tensor) else np.asarray(other) * alpha
        return ops.inplace_arithmetic(self, "add_", np.add, other)

    def sub_(self, other: Any, alpha: float = 1.0) -> Tensor:
        if alpha != 1:
            other = other * alpha if isinstance(other, Tensor) else np.asarray(other) * alpha
        return ops.inplace_arithmetic(self, "sub_", np.subtract, other)

    def mul_(self, other: Any) -> Tensor:
        return ops.inplace_arithmetic(self, "mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        return ops.inplace_arithmetic(self, "div_", np.true_divide, other)

    # ``x += y`` is ``x.add_(y)``: x's memory is written (views see it) and its version bumped,
    # as in PyTorch; in a graph the op is recorded (ops/inplace.py), and a leaf that requires
    # grad is refused in grad mode (do updates inside ``tn.no_grad()``).
    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    def zero_(self) -> Tensor:
        return ops.inplace(self, "zero_", lambda d: d.fill(0), ())

    def fill_(self, value: Any) -> Tensor:
        fill = ops.inplace_operand(value, "fill_")
        if np.ndim(fill) != 0:
            raise ShapeError(
                f"fill_: the value must be a number or a 0-d tensor, got shape {np.shape(fill)}; "
                "use copy_ to copy a tensor's values"
            )
        dtypes.check_storable(fill, self._data.dtype, "fill_")
        return ops.inplace(self, "fill_", lambda d, *read: d.fill(read[0] if read else fill),
                           _read_again(value, fill))

    def copy_(self, source: Any) -> Tensor:
        """Copy ``source``'s values in (broadcast to this tensor's shape, converted to its
        dtype, as ``torch.Tensor.copy_``)."""
        given = ops.inplace_operand(source, "copy_")

        def copy(d: np.ndarray, *read: Any) -> None:
            src = read[0] if read else given
            try:
                np.copyto(d, src, casting="unsafe")
            except ValueError as e:
                raise ShapeError(
                    f"copy_: a source of shape {np.shape(src)} cannot be broadcast to the "
                    f"tensor's shape {d.shape}"
                ) from e

        return ops.inplace(self, "copy_", copy, _read_again(source, given))

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        """Limit values to [min, max] in place; numbers or tensors that broadcast to this one."""
        if min is None and max is None:
            raise ValueRangeError("clamp_: at least one of min and max must be given")
        bounds = [None if b is None else ops.inplace_operand(b, "clamp_") for b in (min, max)]
        arrays = [k for k, b in enumerate(bounds) if isinstance(b, np.ndarray)]

        def clamp(d: np.ndarray, *read: Any) -> None:
            low, high = bounds
            if read:  # the bounds that are tensors, read again at every tn.compile replay
                found = dict(zip(arrays, read, strict=True))
                low, high = found.get(0, low), found.get(1, high)
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

        return ops.inplace(self, "clamp_", clamp, tuple(
            (min, max)[k] if isinstance((min, max)[k], Tensor) else bounds[k] for k in arrays))

    clip_ = clamp_

    # ---- issue 21: the method forms PyTorch scripts use (each one line, calling an op) -----

    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self + alpha * other``."""
        return ops.add(self, _scaled(other, alpha))

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self - alpha * other``."""
        return ops.sub(self, _scaled(other, alpha))

    def mul(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return ops.divide(self, other, rounding_mode=rounding_mode)

    def true_divide(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def floor_divide(self, other: Any) -> Tensor:
        return ops.floor_divide(self, other)

    def remainder(self, other: Any) -> Tensor:
        return ops.remainder(self, other)

    def __floordiv__(self, other: Any) -> Tensor:
        return ops.floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return ops.floor_divide(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return ops.remainder(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return ops.remainder(other, self)

    multiply, divide, subtract = mul, div, sub

    def neg(self) -> Tensor:
        return ops.neg(self)

    negative = neg

    def lt(self, other: Any) -> Tensor:
        return ops.compare(np.less, self, other)

    def le(self, other: Any) -> Tensor:
        return ops.compare(np.less_equal, self, other)

    def gt(self, other: Any) -> Tensor:
        return ops.compare(np.greater, self, other)

    def ge(self, other: Any) -> Tensor:
        return ops.compare(np.greater_equal, self, other)

    less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne

    def sign(self) -> Tensor:
        return ops.sign(self)

    def floor(self) -> Tensor:
        return ops.floor(self)

    def ceil(self) -> Tensor:
        return ops.ceil(self)

    def round(self, *, decimals: int = 0) -> Tensor:
        return ops.round(self, decimals=decimals)

    def trunc(self) -> Tensor:
        return ops.trunc(self)

    def frac(self) -> Tensor:
        return ops.frac(self)

    def rsqrt(self) -> Tensor:
        return ops.rsqrt(self)

    def log1p(self) -> Tensor:
        return ops.log1p(self)

    def expm1(self) -> Tensor:
        return ops.expm1(self)

    def erf(self) -> Tensor:
        return ops.erf(self)

    def isnan(self) -> Tensor:
        return ops.isnan(self)

    def isinf(self) -> Tensor:
        return ops.isinf(self)

    def isfinite(self) -> Tensor:
        return ops.isfinite(self)

    def nan_to_num(self, nan: float = 0.0, posinf: float | None = None,
                   neginf: float | None = None) -> Tensor:
        return ops.nan_to_num(self, nan, posinf, neginf)

    def clamp_min(self, min: Any) -> Tensor:  # noqa: A002
        return ops.clamp_min(self, min)

    def clamp_max(self, max: Any) -> Tensor:  # noqa: A002
        return ops.clamp_max(self, max)

    def prod(self, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        return ops.prod(self, dim, keepdim, dtype=dtype)

    def cumprod(self, dim: int, *, dtype: Any = None) -> Tensor:
        return ops.cumprod(self, dim, dtype=dtype)

    def flip(self, *dims: Any) -> Tensor:
        return ops.flip(self, dims[0] if len(dims) == 1 else dims)

    def fliplr(self) -> Tensor:
        return ops.fliplr(self)

    def flipud(self) -> Tensor:
        return ops.flipud(self)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return ops.roll(self, shifts, dims)

    def outer(self, vec2: Any) -> Tensor:
        return ops.outer(self, vec2)

    def nonzero(self, *, as_tuple: bool = False) -> Any:
        return ops.nonzero(self, as_tuple=as_tuple)

    def argwhere(self) -> Tensor:
        return ops.argwhere(self)

    def unique(self, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
               return_counts: bool = False, dim: int | None = None) -> Any:
        return ops.unique(self, sorted, return_inverse, return_counts, dim)

    def bincount(self, weights: Any = None, minlength: int = 0) -> Tensor:
        return ops.bincount(self, weights, minlength)

    def argsort(self, dim: int = -1, descending: bool = False, *, stable: bool = False
                ) -> Tensor:
        return ops.argsort(self, dim, descending, stable=stable)

    def masked_select(self, mask: Any) -> Tensor:
        return ops.masked_select(self, mask)

    def index_select(self, dim: int, index: Any) -> Tensor:
        return ops.index_select(self, dim, index)

    def take_along_dim(self, indices: Any, dim: int | None = None) -> Tensor:
        return ops.take_along_dim(self, indices, dim)

    def scatter(self, dim: int, index: Any, src: Any = None, *, value: Any = None) -> Tensor:
        return ops.scatter(self, dim, index, src, value=value)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Tensor:
        return ops.scatter_add(self, dim, index, src)

    def index_add(self, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
        return ops.index_add(self, dim, index, source, alpha=alpha)

    # In place: the out-of-place op's values written into this tensor's memory, outside any
    # graph (refused on a tensor in a graph while grad mode is on, as fill_ and copy_).
    def scatter_(self, dim: int, index: Any, src: Any = None, *, value: Any = None) -> Tensor:
        new = ops.scatter(self.detach(), dim, index, _plain(src), value=value)
        return ops.inplace(self, "scatter_", np.copyto, (new,))

    def scatter_add_(self, dim: int, index: Any, src: Any) -> Tensor:
        new = ops.scatter_add(self.detach(), dim, index, _plain(src))
        return ops.inplace(self, "scatter_add_", np.copyto, (new,))

    def index_add_(self, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
        new = ops.index_add(self.detach(), dim, index, _plain(source), alpha=alpha)
        return ops.inplace(self, "index_add_", np.copyto, (new,))

    def addcmul_(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        new = ops.addcmul(self.detach(), _plain(tensor1), _plain(tensor2), value=value)
        return ops.inplace(self, "addcmul_", np.copyto, (new,))

    def addcdiv_(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        new = ops.addcdiv(self.detach(), _plain(tensor1), _plain(tensor2), value=value)
        return ops.inplace(self, "addcdiv_", np.copyto, (new,))

    def lerp_(self, end: Any, weight: Any) -> Tensor:
        new = ops.lerp(self.detach(), _plain(end), _plain(weight))
        return ops.inplace(self, "lerp_", np.copyto, (new,))

    def addcmul(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        return ops.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        return ops.addcdiv(self, tensor1, tensor2, value=value)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        return ops.lerp(self, end, weight)

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        new = ops.masked_fill(self.detach(), mask, _plain(value))
        return ops.inplace(self, "masked_fill_", np.copyto, (new,))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
        return ops.normal_(self, mean, std, generator=generator)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
        return ops.uniform_(self, a, b, generator=generator)

    def bernoulli_(self, p: Any = 0.5, *, generator: Any = None) -> Tensor:
        return ops.bernoulli_(self, p, generator=generator)

    def bernoulli(self, p: Any = None, *, generator: Any = None) -> Tensor:
        return ops.bernoulli(self, p, generator=generator)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.unbind(self, dim)

    def unflatten(self, dim: int, sizes: Any) -> Tensor:
        return ops.unflatten(self, dim, sizes)

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def nelement(self) -> int:
        return int(self._data.size)

    def allclose(self, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
                 equal_nan: bool = False) -> bool:
        return ops.allclose(self, other, rtol, atol, equal_nan)

    def isclose(self, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
                equal_nan: bool = False) -> Tensor:
        return ops.isclose(self, other, rtol, atol, equal_nan)

    def equal(self, other: Any) -> bool:
        return ops.equal(self, other)

    def new_tensor(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A new tensor of ``data`` (copied), in this tensor's dtype unless ``dtype``."""
        target = self._data.dtype if dtype is None else dtypes.to_dtype(dtype)
        array = dtypes.as_array(data.data if isinstance(data, Tensor) else data, target,
                                op="new_tensor")
        return Tensor._make(array).requires_grad_(requires_grad)

    def new_full(self, size: Any, fill_value: Any, *, dtype: Any = None,
                 requires_grad: bool = False) -> Tensor:
        return self._new("new_full", (size,), dtype, requires_grad, fill_value)

    def new_zeros(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return self._new("new_zeros", size, dtype, requires_grad, 0)

    def new_ones(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return self._new("new_ones", size, dtype, requires_grad, 1)

    def new_empty(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return self._new("new_empty", size, dtype, requires_grad, None)

    def _new(self, op: str, size: tuple[Any, ...], dtype: Any, requires_grad: bool,
             fill: Any) -> Tensor:
        """``new_*``: a tensor of ``size`` in this tensor's dtype unless ``dtype``."""
        if len(size) == 1 and isinstance(size[0], tuple | list):
            size = tuple(size[0])
        if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0
                   for n in size):
            raise DTypeError(f"{op}: size must be non-negative integers, got {size!r}")
        target = self._data.dtype if dtype is None else dtypes.to_dtype(dtype)
        shape = tuple(int(n) for n in size)
        if fill is None:
            array = np.empty(shape, dtype=target)
        else:
            dtypes.check_storable(fill, target, op)
            array = np.full(shape, fill, dtype=target)
        return Tensor._make(array).requires_grad_(requires_grad)


def _scaled(other: Any, alpha: Any) -> Any:
    """``alpha * other`` for ``add``/``sub``'s alpha (other may be a tensor, number or list)."""
    if alpha == 1:
        return other
    return other * alpha if isinstance(other, Tensor) else np.asarray(other) * alpha


def _read_again(value: Any, operand: Any) -> tuple:
    """What an in-place write reads again at every tn.compile replay (``ops.inplace``'s
    ``operands``): a tensor, or an array; nothing for a number (a constant of the step)."""
    if isinstance(value, Tensor):
        return (value,)
    return (operand,) if isinstance(operand, np.ndarray) else ()


def _plain(value: Any) -> Any:
    """A tensor operand of an in-place op, cut from the graph (the write is not recorded)."""
    return value.detach() if isinstance(value, Tensor) else value


# Tensor's operators call tinynet.ops, and Tensor.backward calls tinynet.autograd; both of those
# build Tensors, so they import this module. To keep imports one-way (tensor <- autograd <- ops),
# this module leaves the two names empty; tinynet/__init__.py fills them in, once, right after
# loading both. (Any ``import tinynet.<anything>`` runs tinynet/__init__.py first.)
ops: Any = None
autograd: Any = None


# Sequence-model methods (issue 22), appended: each one line calling an op.
def _repeat(self: Tensor, *sizes: Any) -> Tensor:
    return ops.repeat(self, *sizes)


def _cumsum(self: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    return ops.cumsum(self, dim, dtype=dtype)


def _tril(self: Tensor, diagonal: int = 0) -> Tensor:
    return ops.tril(self, diagonal)


def _triu(self: Tensor, diagonal: int = 0) -> Tensor:
    return ops.triu(self, diagonal)


def _bmm(self: Tensor, mat2: Any) -> Tensor:
    return ops.bmm(self, mat2)


def _multinomial(self: Tensor, num_samples: int, replacement: bool = False, *,
                 generator: Any = None) -> Tensor:
    return ops.multinomial(self, num_samples, replacement, generator=generator)


Tensor.repeat, Tensor.cumsum, Tensor.tril, Tensor.triu = _repeat, _cumsum, _tril, _triu
Tensor.bmm, Tensor.multinomial = _bmm, _multinomial
