"""Making tensors: from data, filled with constants, ranges, random numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError
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


def _filled(fill: Any, shape: tuple[Any, ...], dtype: Any, requires_grad: bool) -> Tensor:
    array = np.full(shape_args(shape), fill, dtype=dtypes.to_dtype(dtype))
    return Tensor._make(array).requires_grad_(requires_grad)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, shape, dtype, requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(1, shape, dtype, requires_grad)


def empty(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, shape, dtype, requires_grad)


def full(shape: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value (float -> default)."""
    if dtype is None:
        dtype = dtypes.as_array(fill_value).dtype
    shape = shape if isinstance(shape, tuple | list) else (shape,)
    return _filled(fill_value, tuple(shape), dtype, requires_grad)


def zeros_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, np.shape(_array(x)), dtype or _array(x).dtype, requires_grad)


def ones_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(1, np.shape(_array(x)), dtype or _array(x).dtype, requires_grad)


def full_like(x: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(fill_value, np.shape(_array(x)), dtype or _array(x).dtype, requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values start, start+step, ... below end; integers give int64, any float the default."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_float = any(isinstance(v, float | np.floating) for v in (start, end, step))
        dtype = dtypes.get_default_dtype() if is_float else dtypes.int64
    array = np.arange(start, end, step).astype(dtypes.to_dtype(dtype))
    return Tensor._make(array).requires_grad_(requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    array = np.linspace(start, end, int(steps)).astype(dtypes.to_dtype(dtype))
    return Tensor._make(array).requires_grad_(requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor._make(np.eye(n, m, dtype=dtypes.to_dtype(dtype))).requires_grad_(requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:
    """Standard normal samples from tinynet's generator (``tn.manual_seed``)."""
    target = dtypes.to_dtype(dtype)
    array = get_generator(generator).standard_normal(shape_args(shape)).astype(target)
    return Tensor._make(array).requires_grad_(requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False,
         generator: Any = None) -> Tensor:
    """Uniform samples in [0, 1)."""
    target = dtypes.to_dtype(dtype)
    array = get_generator(generator).random(shape_args(shape)).astype(target)
    return Tensor._make(array).requires_grad_(requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), dtype: Any = None,
            generator: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    array = get_generator(generator).integers(low, high, size=shape_args((size,)) if isinstance(
        size, int) else tuple(size))
    return Tensor._make(array.astype(dtypes.to_dtype(dtype or dtypes.int64)))


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)
