"""Making tensors: from data, filled with constants, ranges, random numbers.

Sizes are checked before numpy allocates: a shape no array can have (more bytes than a 64-bit
address, e.g. ``tn.zeros(2**70)``) raises ``ValueRangeError`` naming the shape, and so does a
size the machine has no memory for (numpy's ``MemoryError``, kept as the cause).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.datadep import draw
from tinynet.ops.operands import shape_args
from tinynet.random import source
from tinynet.tensor import Tensor, device, made_from_literals


def check_device(place: Any, op: str) -> None:
    """Accept ``device=None``, ``"cpu"``, ``"cpu:0"`` or ``tn.device("cpu")``; refuse any other.

    Every creation function takes ``device=`` so scripts written for PyTorch run unchanged
    (``tn.zeros(3, device=device)`` with ``device = "cuda" if tn.cuda.is_available() else
    "cpu"``); tinynet runs on the CPU only."""
    if place is None or isinstance(place, device):
        return
    name = str(place)
    if name.split(":")[0] != "cpu" or name.split(":")[1:] not in ([], ["0"]):
        raise ValueRangeError(
            f"{op}: tinynet runs on the CPU only, got device={place!r}; pass device='cpu' or "
            "leave it out (tn.cuda.is_available() is False, so the usual "
            "'cuda if available else cpu' picks the CPU)"
        )


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, arrays, tensors).

    Python floats become the default dtype (float32); numpy arrays keep their dtype.
    """
    check_device(device, "tensor")
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (no copy), as ``torch.from_numpy``."""
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"from_numpy: expected a numpy array, got {type(array).__name__}")
    return Tensor._make(dtypes.as_array(array, copy=False, op="from_numpy"))


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but without copying when ``data`` is already a suitable array/tensor."""
    check_device(device, "as_tensor")
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtypes.to_dtype(dtype)):
        return data
    return Tensor._make(dtypes.as_array(data, dtype, copy=False, op="as_tensor"))


def _size(shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """A shape to create: integers (``f(2, 3)`` or ``f((2, 3))``), none negative."""
    size = shape_args(shape, op)
    if any(n < 0 for n in size):
        raise ShapeError(f"{op}: sizes must be non-negative, got {size}")
    return size


MAX_BYTES = np.iinfo(np.intp).max  # numpy's bound on one array's size in bytes (2**63 - 1)


def _allocate(op: str, shape: tuple[int, ...], dtype: np.dtype,
              make: Callable[[], Any]) -> Any:
    """``make()``, which builds an array of ``shape`` and ``dtype``, after checking the size.

    numpy's own refusals (``ValueError: Maximum allowed dimension exceeded``,
    ``MemoryError: Unable to allocate 4.00 TiB``) name neither the function nor the fix.
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > MAX_BYTES or any(n > MAX_BYTES for n in shape):
        raise ValueRangeError(
            f"{op}: a tensor of shape {shape} and dtype {np.dtype(dtype)} would take "
            f"{_bytes_str(nbytes)}, more than any array can hold (8 EiB); check the sizes"
        )
    try:
        made = make()
        if isinstance(made, np.ndarray):  # sizes and numbers: tn.compile's constants
            made_from_literals(made)
        return made
    except MemoryError as e:
        raise ValueRangeError(
            f"{op}: not enough memory for a tensor of shape {shape} and dtype "
            f"{np.dtype(dtype)} ({_bytes_str(nbytes)}); use smaller sizes"
        ) from e


def _bytes_str(nbytes: int) -> str:
    for unit, size in (("EiB", 2**60), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes} bytes"


def _number(value: Any, op: str, name: str) -> Any:
    """A Python number from a number, a numpy scalar or a one-element tensor."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, int | float) or isinstance(value, complex):
        raise DTypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    return value


def _filled(fill: Any, shape: tuple[Any, ...], dtype: Any, requires_grad: bool,
            op: str = "full") -> Tensor:
    # a Python float keeps all its digits (as_array would round it to the default float32
    # first: full((), 0.3, dtype=float64) must be 0.3, not 0.30000001192)
    fill_array = (np.asarray(fill) if isinstance(fill, float) else
                  dtypes.as_array(fill, copy=False, op=op))
    if fill_array.ndim != 0:
        raise ShapeError(
            f"{op}: fill_value must be a number or a 0-d tensor, got shape {fill_array.shape}"
        )
    target = dtypes.to_dtype(dtype)
    dtypes.check_storable(fill_array, target, op)
    size = _size(shape, op)
    array = _allocate(op, size, target, lambda: np.full(size, fill_array, dtype=target))
    return Tensor._make(array).requires_grad_(requires_grad)


def zeros(*shape: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    check_device(device, "zeros")
    return _filled(0, shape, dtype, requires_grad, "zeros")


def ones(*shape: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    check_device(device, "ones")
    return _filled(1, shape, dtype, requires_grad, "ones")


def empty(*shape: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    check_device(device, "empty")
    return _filled(0, shape, dtype, requires_grad, "empty")


def full(shape: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value (float -> default)."""
    check_device(device, "full")
    if dtype is None:
        dtype = dtypes.as_array(fill_value, op="full").dtype
    shape = shape if isinstance(shape, tuple | list) else (shape,)
    return _filled(fill_value, tuple(shape), dtype, requires_grad)


def zeros_like(x: Any, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    check_device(device, "zeros_like")
    like = _array(x, "zeros_like")
    return _filled(0, like.shape, dtype or like.dtype, requires_grad, "zeros_like")


def ones_like(x: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    check_device(device, "ones_like")
    like = _array(x, "ones_like")
    return _filled(1, like.shape, dtype or like.dtype, requires_grad, "ones_like")


def full_like(x: Any, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    check_device(device, "full_like")
    like = _array(x, "full_like")
    return _filled(fill_value, like.shape, dtype or like.dtype, requires_grad, "full_like")


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values start, start+step, ... below end; integers give int64, any float the default."""
    check_device(device, "arange")
    if end is None:
        start, end = 0, start
    start, end, step = (_number(v, "arange", name) for v, name in
                        ((start, "start"), (end, "end"), (step, "step")))
    if step == 0:
        raise ValueRangeError("arange: step must be nonzero")
    if not all(isinstance(v, int) or math.isfinite(v) for v in (start, end, step)):
        raise ValueRangeError(f"arange: start, end and step must be finite, got {start}, "
                              f"{end}, {step}")
    is_float = any(isinstance(v, float) for v in (start, end, step))
    if not is_float and not all(-(2**63) <= v < 2**63 for v in (start, end, step)):
        raise ValueRangeError(
            f"arange: integer start, end and step must fit in int64 (as in torch.arange), got "
            f"{start}, {end}, {step}"
        )
    if dtype is None:
        dtype = dtypes.get_default_dtype() if is_float else dtypes.int64
    target = dtypes.to_dtype(dtype)
    # the length numpy will compute, ceil((end - start) / step), exactly for ints
    count = -((start - end) // step) if not is_float else (end - start) / step
    if not math.isfinite(count):
        raise ValueRangeError(f"arange: ({end} - {start}) / {step} values is not a finite count")
    count = max(0, math.ceil(count))
    array = _allocate("arange", (count,), np.dtype(np.float64) if is_float else target,
                      lambda: np.arange(start, end, step).astype(target))
    return Tensor._make(array).requires_grad_(requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    check_device(device, "linspace")
    (count,) = _size((steps,), "linspace")
    start, end = _number(start, "linspace", "start"), _number(end, "linspace", "end")
    target = dtypes.to_dtype(dtype)
    array = _allocate("linspace", (count,), np.dtype(np.float64),
                      lambda: np.linspace(start, end, count).astype(target))
    return Tensor._make(array).requires_grad_(requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    check_device(device, "eye")
    rows, cols = _size((n, n if m is None else m), "eye")
    target = dtypes.to_dtype(dtype)
    array = _allocate("eye", (rows, cols), target, lambda: np.eye(rows, cols, dtype=target))
    return Tensor._make(array).requires_grad_(requires_grad)


def randn(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:
    """Standard normal samples from tinynet's generator (``tn.manual_seed``) or ``generator``
    (a ``tn.Generator``).

    Drawn in float64 and rounded to ``dtype`` (float32 unless ``tn.set_default_dtype``)."""
    check_device(device, "randn")
    return _random("randn", _size(shape, "randn"), dtype, requires_grad, generator, normal=True)


def rand(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
         generator: Any = None) -> Tensor:
    """Uniform samples in [0, 1), drawn in float64 and rounded to ``dtype``."""
    check_device(device, "rand")
    return _random("rand", _size(shape, "rand"), dtype, requires_grad, generator, normal=False)


def _random(op: str, size: tuple[int, ...], dtype: Any, requires_grad: bool,
            generator: Any, normal: bool) -> Tensor:
    """Standard normal (``normal``) or uniform [0, 1) samples of ``size``, in a float dtype."""
    target = dtypes.to_dtype(dtype)
    if target.kind != "f":
        raise DTypeError(  # torch: "check_uniform_bounds" not implemented for 'Long'
            f"{op}: samples of a continuous distribution need a float dtype, got {target}; "
            f"use randint for random integers"
        )
    sample = functools.partial(_standard, normal=normal, size=size, dtype=target)
    where = source(generator, op)
    return _allocate(op, size, np.dtype(np.float64), lambda: draw(sample, where)
                     ).requires_grad_(requires_grad)


# What the random creation functions draw, given the generator (``ops.datadep._Draw``: an op,
# so tn.compile draws again at every replay).


def _standard(rng: np.random.Generator, *, normal: bool, size: tuple[int, ...],
              dtype: np.dtype) -> np.ndarray:
    return (rng.standard_normal if normal else rng.random)(size).astype(dtype, copy=False)


def _permutation(rng: np.random.Generator, *, count: int, dtype: np.dtype) -> np.ndarray:
    return rng.permutation(count).astype(dtype)


def _integers(rng: np.random.Generator, *, low: int, high: int, shape: tuple[int, ...],
              dtype: np.dtype) -> np.ndarray:
    return rng.integers(low, high, size=shape).astype(dtype)


def rand_like(input: Any, *, generator: Any = None, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """``rand`` with the shape of ``input`` and, unless ``dtype`` is given, its dtype (which
    must be a float dtype, as in PyTorch)."""
    check_device(device, "rand_like")
    like = _array(input, "rand_like")
    dtype = like.dtype if dtype is None else dtype
    return _random("rand_like", like.shape, dtype, requires_grad, generator, normal=False)


def randn_like(input: Any, *, generator: Any = None, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """``randn`` with the shape of ``input`` and, unless ``dtype`` is given, its dtype."""
    check_device(device, "randn_like")
    like = _array(input, "randn_like")
    dtype = like.dtype if dtype is None else dtype
    return _random("randn_like", like.shape, dtype, requires_grad, generator, normal=True)


def randperm(n: int, *, generator: Any = None, dtype: Any = dtypes.int64, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0, 1, ..., n - 1`` (shape (n,), int64 unless ``dtype``), from
    tinynet's generator (``tn.manual_seed``) or ``generator`` (a numpy Generator or a seed).

    Any numeric dtype that holds ``n - 1`` exactly may be asked for, as in PyTorch (float32
    up to n = 2**24 + 1); bool may not.
    """
    check_device(device, "randperm")
    if isinstance(n, bool) or isinstance(n, Tensor):
        raise DTypeError(f"randperm: n must be an int, got {type(n).__name__} {n!r}")
    try:
        count = operator.index(n)
    except TypeError as e:
        raise DTypeError(f"randperm: n must be an int, got {type(n).__name__} {n!r}") from e
    if count < 0:
        raise ValueRangeError(f"randperm: n must be non-negative, got {count}")
    target = np.dtype(dtypes.int64) if dtype is None else dtypes.to_dtype(dtype)
    if target == np.bool_:
        raise DTypeError("randperm: a permutation cannot be bool; use an integer dtype")
    largest = (np.iinfo(target).max if target.kind in "iu"
               else 2 ** (np.finfo(target).nmant + 1))  # floats hold every int up to this
    if count - 1 > largest and largest < np.iinfo(np.int64).max:  # beyond int64: too big
        raise ValueRangeError(
            f"randperm: {target} cannot hold every value up to n - 1 = {count - 1} exactly; "
            "use int64 (the default)"
        )
    sample = functools.partial(_permutation, count=count, dtype=target)
    where = source(generator, "randperm")
    return _allocate("randperm", (count,), np.dtype(np.int64), lambda: draw(sample, where)
                     ).requires_grad_(requires_grad)


def randint(*bounds: Any, size: Any = None, generator: Any = None, dtype: Any = None,
            device: Any = None, requires_grad: bool = False, low: Any = None,
            high: Any = None) -> Tensor:
    """Random integers in ``[low, high)``, int64 unless ``dtype``, with PyTorch's signatures:
    ``randint(high, size)``, ``randint(low, high, size)``, ``size=`` as a keyword
    (``randint(0, 10, size=(3,))``, ``randint(high=10, size=(3,))``). ``randint(high)`` with
    no size gives a 0-d tensor."""
    check_device(device, "randint")
    bounds = list(bounds)
    if size is None and (len(bounds) == 3 or bounds and isinstance(bounds[-1], tuple | list)):
        size = bounds.pop()
    if len(bounds) > 2:
        raise TypeError(f"randint: expected (high, size) or (low, high, size), got "
                        f"{len(bounds) + 1} positional arguments")
    if low is not None:
        bounds.insert(0, low)
    if high is not None:
        bounds.append(high)
    if not bounds:
        raise TypeError("randint: missing high, e.g. tn.randint(10, (3,))")
    low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
    size = () if size is None else size
    low, high = shape_args((low, high), "randint")  # integers, as the bounds of integers
    if low >= high:
        raise ValueRangeError(f"randint: low must be below high, got low={low}, high={high}")
    if low < -(2**63) or high > 2**63:
        raise ValueRangeError(
            f"randint: low and high must fit in int64 (high itself may be one past the "
            f"largest int64), got low={low}, high={high}"
        )
    target = dtypes.to_dtype(dtype or dtypes.int64)
    shape = _size((size,), "randint")
    sample = functools.partial(_integers, low=low, high=high, shape=shape, dtype=target)
    where = source(generator, "randint")
    return _allocate("randint", shape, np.dtype(np.int64), lambda: draw(sample, where)
                     ).requires_grad_(requires_grad)


def _array(x: Any, op: str) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else dtypes.as_array(x, copy=False, op=op)
