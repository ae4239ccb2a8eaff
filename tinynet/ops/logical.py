"""``&``, ``|``, ``^`` and ``logical_and/or/xor`` on tensors, as PyTorch has them.

``a & b`` (``bitwise_and``) takes bool or integer tensors (masks: ``(x > 0) & (x < 5)``) and
keeps their dtype; ``logical_and`` takes any dtype and gives bool (nonzero counts as True). Like
the comparisons, the results are never part of a graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ShapeError, shape_str
from tinynet.ops.operands import operands
from tinynet.tensor import Tensor, read_values

_BITWISE = {"bitwise_and": (np.bitwise_and, "&"), "bitwise_or": (np.bitwise_or, "|"),
            "bitwise_xor": (np.bitwise_xor, "^")}
_LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or,
            "logical_xor": np.logical_xor}


def _arrays(a: Any, b: Any, name: str) -> tuple[Any, Any]:
    read_values(f"{name} reads a mask: a compiled step would replay the mask the trace saw; "
                "compute it outside the compiled function and pass it in")
    a, b = operands(a, b, name)
    return (a.data if isinstance(a, Tensor) else np.asarray(a),
            b.data if isinstance(b, Tensor) else np.asarray(b))


def _apply(ufunc: Any, name: str, x: Any, y: Any) -> Tensor:
    try:
        return Tensor._make(np.asarray(ufunc(x, y)))
    except ValueError as e:
        raise ShapeError(f"{name}: shapes {shape_str(x, y)} cannot be broadcast") from e


def _bitwise(name: str, a: Any, b: Any) -> Tensor:
    ufunc, symbol = _BITWISE[name]
    x, y = _arrays(a, b, name)
    for v in (x, y):
        if v.dtype.kind not in "biu":
            raise DTypeError(
                f"{name} ({symbol}): needs bool or integer tensors, got {v.dtype}; for masks "
                f"compare first ((x > 0) {symbol} (x < 5)), or use torch.logical_"
                f"{name.split('_')[1]}(a, b), which takes any dtype")
    return _apply(ufunc, name, x, y)


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
    x = a.data if isinstance(a, Tensor) else np.asarray(a)
    y = b.data if isinstance(b, Tensor) else np.asarray(b)
    read_values(f"{name} reads a mask: a compiled step would replay the mask the trace saw")
    return _apply(_LOGICAL[name], name, x != 0, y != 0)


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
    read_values("logical_not reads a mask: a compiled step would replay the mask the trace saw")
    return Tensor._make(np.asarray(x.data == 0))
