"""Dtypes: the default float dtype, turning user data into arrays, and promotion rules.

tinynet follows PyTorch where numpy 2 would surprise: a Python or numpy *scalar* never changes a
tensor's dtype (float32 tensor * np.float64(2.0) stays float32). Two tensors (or a tensor and a
numpy array with at least one dimension) promote as PyTorch's ``torch.result_type`` does:

- by category, bool < integer < float: a float tensor and an int tensor give the float
  tensor's dtype (float32 * int64 -> float32, where numpy says float64); within a category the
  wider dtype wins (float32 + float64 -> float64, int32 + int64 -> int64, uint8 + int8 -> int16);
- a 0-d tensor counts only when it is of a higher category than the tensors with dimensions
  (a 0-d float64 with a float32 vector gives float32; a 0-d float64 with an int32 vector gives
  float64), as PyTorch treats 0-d tensors.
"""

from __future__ import annotations

import builtins
import numbers
from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ValueRangeError

float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, bool_ = np.dtype(np.uint8), np.dtype(np.bool_)
half, float, double, long = float16, float32, float64, int64  # noqa: A001 - PyTorch aliases

_default = [float32]


def set_default_dtype(dtype: Any) -> None:
    """Dtype that Python floats become (float32 unless changed, as in PyTorch)."""
    d = to_dtype(dtype)
    if d.kind != "f":
        raise DTypeError(f"set_default_dtype: only floating dtypes can be the default, got {d}")
    _default[0] = d


def get_default_dtype() -> np.dtype:
    return _default[0]


def to_dtype(dtype: Any) -> np.dtype:
    """Accept numpy dtypes, their names ('float32') and Python types (float -> default)."""
    if dtype is None or dtype is builtins.float:
        return _default[0]
    try:
        d = np.dtype(dtype)
    except TypeError as e:
        raise DTypeError(f"not a dtype tinynet understands: {dtype!r}") from e
    if d.kind not in "biuf":
        raise DTypeError(
            f"dtype {d} is not supported: tinynet tensors hold bool, integer or float numbers"
        )
    return d


def as_array(data: Any, dtype: Any = None, copy: bool = True, op: str = "tensor") -> np.ndarray:
    """User data -> a numpy array of a supported dtype, with errors a user can act on.

    Python numbers and nested lists: floats become the default dtype, ints int64, bools bool.
    numpy arrays keep their dtype unless ``dtype`` is given.
    """
    storage = getattr(data, "_data", None)
    if isinstance(storage, np.ndarray):  # a Tensor: its array (this module sits below tensor.py)
        data = storage
    from_python = not isinstance(data, np.ndarray | np.generic)
    if isinstance(data, str | bytes):
        raise DTypeError(f"{op}: cannot make a tensor from a string ({data!r})")
    try:
        # copy=False means "no copy if avoidable": numpy 2 spells that None (False raises for
        # numpy scalars, which always need a new array)
        array = np.array(data, copy=copy or None) if not from_python else np.array(data)
    except (ValueError, TypeError) as e:
        raise DTypeError(
            f"{op}: cannot make a tensor from this data ({type(data).__name__}): "
            f"{str(e).rstrip('.')}. Nested lists must be rectangular and hold numbers."
        ) from e
    if array.dtype.kind not in "biuf":
        raise DTypeError(
            f"{op}: data of dtype {array.dtype} is not supported (strings, objects and complex "
            "numbers are not); tensors hold bool, integer or float numbers"
        )
    if dtype is not None:
        target = to_dtype(dtype)
    elif from_python and array.dtype.kind == "f":
        target = _default[0]
    else:
        target = array.dtype
    if array.dtype != target:
        array = array.astype(target)
    return array


def check_storable(value: Any, dtype: np.dtype, op: str) -> None:
    """Refuse NaN or inf written into an integer tensor: numpy would store garbage (INT_MIN)
    with a warning, or raise deep inside ``fill``. (A bool tensor takes them as True.)"""
    if dtype.kind in "iu":
        array = np.asarray(value)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueRangeError(f"{op}: NaN or inf cannot be stored in a {dtype} tensor")


def scalar_dtype(tensor_dtype: np.dtype, value: Any) -> np.dtype:
    """Result dtype of ``tensor op scalar``: the tensor's, unless the scalar is of a higher
    kind (bool < int < float), as PyTorch does."""
    kind = tensor_dtype.kind
    if isinstance(value, bool | np.bool_):
        return tensor_dtype
    if isinstance(value, numbers.Integral):
        return int64 if kind == "b" else tensor_dtype
    if isinstance(value, numbers.Real):
        return tensor_dtype if kind == "f" else _default[0]
    if isinstance(value, np.ndarray):  # 0-d array: treated like a scalar of its kind
        k = value.dtype.kind
        if k == "f" and kind != "f":
            return _default[0]
        if k in "iu" and kind == "b":
            return int64
        return tensor_dtype
    raise DTypeError(f"cannot combine a tensor with {type(value).__name__}")


def _category(dtype: np.dtype) -> int:
    return {"b": 0, "i": 1, "u": 1}.get(dtype.kind, 2)


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's ``torch.promote_types``: the higher category wins outright (float16 + int64 ->
    float16); within a category, numpy's promotion (int32 + int64 -> int64)."""
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def result_type(*arrays: Any) -> np.dtype:
    """PyTorch's ``torch.result_type`` for arrays (tensors' data): arrays with dimensions set
    the dtype; 0-d arrays take part only from a higher category (see the module docstring)."""
    dims = [a.dtype for a in arrays if np.ndim(a) > 0]
    zeros = [a.dtype for a in arrays if np.ndim(a) == 0]
    if not dims or not zeros:
        found = dims or zeros
        result = found[0]
        for d in found[1:]:
            result = promote_types(result, d)
        return result
    high, low = result_type(*(a for a in arrays if np.ndim(a) > 0)), result_type(
        *(a for a in arrays if np.ndim(a) == 0))
    if high.kind == "f":
        return high
    if high.kind == "b" or low.kind == "f":
        return promote_types(high, low)
    return high
