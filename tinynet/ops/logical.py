"""``&``, ``|``, ``^`` and ``logical_and/or/xor`` on tensors, as PyTorch has them.

``a & b`` (``bitwise_and``) takes bool or integer tensors (masks: ``(x > 0) & (x < 5)``) and
keeps their dtype; ``logical_and`` takes any dtype and gives bool (nonzero counts as True). Like
the comparisons, the results are never part of a graph (recorded ops: tn.compile
recomputes them at every replay).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ShapeError, shape_str
from tinynet.ops.datadep import _Compare
from tinynet.ops.operands import as_tensor, operands
from tinynet.tensor import Tensor

_BITWISE = {"bitwise_and": (np.bitwise_and, "&"), "bitwise_or": (np.bitwise_or, "|"),
            "bitwise_xor": (np.bitwise_xor, "^")}
_LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or,
            "logical_xor": np.logical_xor}


def _apply(ufunc: Any, name: str, a: Any, b: Any) -> Tensor:
    """``ufunc(a, b)`` as a recorded op (``datadep._Compare``: tn.compile recomputes it)."""
    x = a.data if isinstance(a, Tensor) else np.asarray(a)
    y = b.data if isinstance(b, Tensor) else np.asarray(b)
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError as e:
        raise ShapeError(f"{name}: shapes {shape_str(x, y)} cannot be broadcast") from e
    return _Compare.apply(a, b, fn=ufunc)


def _nonzero_both(ufunc: Any) -> Any:
    return lambda x, y: ufunc(x != 0, y != 0)


_LOGICAL_OF_NONZERO = {name: _nonzero_both(ufunc) for name, ufunc in _LOGICAL.items()}


def _is_zero(x: np.ndarray) -> np.ndarray:
    return x == 0


def _bitwise(name: str, a: Any, b: Any) -> Tensor:
    ufunc, symbol = _BITWISE[name]
    a, b = operands(a, b, name)
    for v in (a.data if isinstance(a, Tensor) else np.asarray(a),
              b.data if isinstance(b, Tensor) else np.asarray(b)):
        if v.dtype.kind not in "biu":
            raise DTypeError(
                f"{name} ({symbol}): needs bool or integer tensors, got {v.dtype}; for masks "
                f"compare first ((x > 0) {symbol} (x < 5)), or use torch.logical_"
                f"{name.split('_')[1]}(a, b), which takes any dtype")
    return _apply(ufunc, name, a, b)


def bitwise_and(a: Any, b: Any) -> Tensor:
    """a & b for bool/integer tensors (PyTorch's ``torch.bitwise_and``)."""
    return _bitwise("bitwise_and", a, b)


def bitwise_or(a: Any, b: Any) -> Tensor:
    """a | b for bool/integer tensors (PyTorch's ``torch.bitwise_or``)."""
    return _bitwise("bitwise_or", a, b)


def bitwise_xor(a: Any, b: Any) -> Tensor:
    """a ^ b for bool/integer tensors (PyTorch's ``torch.bitwise_xor``)."""
    return _bitwise("bitwise_xor", a, b)


def _logical(name: str, a: Any, b: Any) -> Tensor:
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise DTypeError(f"{name}: expected Tensor operands, got {type(a).__name__} and "
                         f"{type(b).__name__}")
    if not isinstance(a, Tensor):
        a = as_tensor(a, name)
    if not isinstance(b, Tensor):
        b = as_tensor(b, name)
    return _apply(_LOGICAL_OF_NONZERO[name], name, a, b)


def logical_and(a: Any, b: Any) -> Tensor:
    """Bool tensor: both nonzero (PyTorch's ``torch.logical_and``; any dtypes)."""
    return _logical("logical_and", a, b)


def logical_or(a: Any, b: Any) -> Tensor:
    """Bool tensor: either nonzero (PyTorch's ``torch.logical_or``; any dtypes)."""
    return _logical("logical_or", a, b)


def logical_xor(a: Any, b: Any) -> Tensor:
    """Bool tensor: exactly one nonzero (PyTorch's ``torch.logical_xor``; any dtypes)."""
    return _logical("logical_xor", a, b)


def logical_not(x: Any) -> Tensor:
    """Bool tensor: x is zero (PyTorch's ``torch.logical_not``; any dtype, unlike ``~x``)."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"logical_not: expected a Tensor, got {type(x).__name__}")
    return _Compare.apply(x, fn=_is_zero)
