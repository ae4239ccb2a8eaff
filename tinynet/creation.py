"""Making tensors: from data, filled with constants, ranges, random numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.operands import shape_args
from tinynet.random import get_generator
from tinynet.tensor import Tensor


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, arrays, tensors).

    Python floats become the default dtype (float32); numpy arrays keep their dtype.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (no copy), as ``torch.from_numpy``."""
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"from_numpy: expected a numpy array, got {type(array).__name__}")
    return Tensor._make(dtypes.as_array(array, copy=False, op="from_numpy"))


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """Like ``tensor`` but without copying when ``data`` is already a suitable array/tensor."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtypes.to_dtype(dtype)):
        return data
    return Tensor._make(dtypes.as_array(data, dtype, copy=False, op="as_tensor"))


def _size(shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """A shape to create: integers (``f(2, 3)`` or ``f((2, 3))``), none negative."""
    size = shape_args(shape, op)
    if any(n < 0 for n in size):
        raise ShapeError(f"{op}: sizes must be non-negative, got {size}")
    return size


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
    array = np.full(_size(shape, op), fill_array, dtype=target)
    return Tensor._make(array).requires_grad_(requires_grad)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, shape, dtype, requires_grad, "zeros")


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(1, shape, dtype, requires_grad, "ones")


def empty(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, shape, dtype, requires_grad, "empty")


def full(shape: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value (float -> default)."""
    if dtype is None:
        dtype = dtypes.as_array(fill_value, op="full").dtype
    shape = shape if isinstance(shape, tuple | list) else (shape,)
    return _filled(fill_value, tuple(shape), dtype, requires_grad)


def zeros_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    like = _array(x, "zeros_like")
    return _filled(0, like.shape, dtype or like.dtype, requires_grad, "zeros_like")


def ones_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    like = _array(x, "ones_like")
    return _filled(1, like.shape, dtype or like.dtype, requires_grad, "ones_like")


def full_like(x: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    like = _array(x, "full_like")
    return _filled(fill_value, like.shape, dtype or like.dtype, requires_grad, "full_like")


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values start, start+step, ... below end; integers give int64, any float the default."""
    if end is None:
        start, end = 0, start
    start, end, step = (_number(v, "arange", name) for v, name in
                        ((start, "start"), (end, "end"), (step, "step")))
    if step == 0:
        raise ValueRangeError("arange: step must be nonzero")
    if not all(np.isfinite([start, end, step])):
        raise ValueRangeError(f"arange: start, end and step must be finite, got {start}, "
                              f"{end}, {step}")
    if dtype is None:
        is_float = any(isinstance(v, float | np.floating) for v in (start, end, step))
        dtype = dtypes.get_default_dtype() if is_float else dtypes.int64
    array = np.arange(start, end, step).astype(dtypes.to_dtype(dtype))
    return Tensor._make(array).requires_grad_(requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    (count,) = _size((steps,), "linspace")
    start, end = _number(start, "linspace", "start"), _number(end, "linspace", "end")
    array = np.linspace(start, end, count).astype(dtypes.to_dtype(dtype))
    return Tensor._make(array).requires_grad_(requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    rows, cols = _size((n, n if m is None else m), "eye")
    array = np.eye(rows, cols, dtype=dtypes.to_dtype(dtype))
    return Tensor._make(array).requires_grad_(requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:
    """Standard normal samples from tinynet's generator (``tn.manual_seed``)."""
    target = dtypes.to_dtype(dtype)
    array = get_generator(generator).standard_normal(_size(shape, "randn")).astype(target)
    return Tensor._make(array).requires_grad_(requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False,
         generator: Any = None) -> Tensor:
    """Uniform samples in [0, 1)."""
    target = dtypes.to_dtype(dtype)
    array = get_generator(generator).random(_size(shape, "rand")).astype(target)
    return Tensor._make(array).requires_grad_(requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), dtype: Any = None,
            generator: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    low, high = shape_args((low, high), "randint")  # integers, as the bounds of integers
    if low >= high:
        raise ValueRangeError(f"randint: low must be below high, got low={low}, high={high}")
    array = get_generator(generator).integers(low, high, size=_size((size,), "randint"))
    return Tensor._make(array.astype(dtypes.to_dtype(dtype or dtypes.int64)))


def _array(x: Any, op: str) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else dtypes.as_array(x, copy=False, op=op)
