"""Ops that ask about values rather than compute with them: nonzero/argwhere, unique,
bincount, argsort, isclose/allclose/equal; and small combinations of existing ops
(clamp_min/clamp_max, var_mean/std_mean). None records a graph except the combinations, which
are made of differentiable ops."""

from __future__ import annotations

import builtins
import collections
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.elementwise import clip
from tinynet.ops.operands import as_tensor, normalize_dim, operands
from tinynet.ops.reduce import mean, std, var
from tinynet.ops.select import sort
from tinynet.tensor import Tensor, read_values

_VALUE_DEPENDENT = ("reads which values the tensor holds ({}): a compiled step would replay "
                    "the result the trace saw")


def nonzero(input: Any, *, as_tuple: bool = False) -> Any:  # noqa: A002 - PyTorch's names
    """The indices of the nonzero elements: an int64 tensor (n, ndim), row-major order; with
    ``as_tuple=True`` one 1-D tensor per dim (x[x.nonzero(as_tuple=True)] picks them)."""
    read_values(_VALUE_DEPENDENT.format("nonzero"))
    x = as_tensor(input, "nonzero")
    data = x.data.reshape(1) if x.ndim == 0 else x.data
    found = np.nonzero(data)
    if as_tuple:
        return tuple(Tensor._make(np.asarray(i, dtype=np.int64)) for i in found)
    if x.ndim == 0:
        return Tensor._make(np.zeros((len(found[0]), 0), dtype=np.int64))
    return Tensor._make(np.stack(found, axis=1).astype(np.int64).reshape(-1, x.ndim))


def argwhere(input: Any) -> Tensor:  # noqa: A002
    """``nonzero(input)``: the (n, ndim) indices of the nonzero elements."""
    return nonzero(input)


def unique(input: Any, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim: int | None = None) -> Any:
    """The distinct values, sorted (torch.unique); with ``return_inverse`` also where each
    input element went (input's shape), with ``return_counts`` how often each occurs. With
    ``dim``, the distinct slices along it. NaNs are all distinct, as in PyTorch."""
    read_values(_VALUE_DEPENDENT.format("unique"))
    x = as_tensor(input, "unique")
    if dim is None:
        values, inverse, counts = np.unique(x.data.reshape(-1), return_inverse=True,
                                            return_counts=True, equal_nan=False)
        inverse = inverse.reshape(x.shape)
    else:
        d = normalize_dim(dim, x.ndim, "unique")
        values, inverse, counts = np.unique(x.data, return_inverse=True, return_counts=True,
                                            axis=d, equal_nan=False)
        inverse = inverse.reshape(-1)
    out: list[Tensor] = [Tensor._make(values)]
    if return_inverse:
        out.append(Tensor._make(inverse.astype(np.int64)))
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input: Any, weights: Any = None, minlength: int = 0) -> Tensor:  # noqa: A002
    """How often each value 0, 1, ..., max occurs in a 1-D tensor of non-negative integers
    (at least ``minlength`` bins); with ``weights``, their sums instead of counts (float
    weights keep their dtype, integer ones give float64, as in PyTorch)."""
    read_values(_VALUE_DEPENDENT.format("bincount"))
    x = as_tensor(input, "bincount")
    if x.data.dtype.kind not in "iu" or x.ndim != 1:
        raise DTypeError(f"bincount: expects a 1-D tensor of integers, got {x.dtype} of shape "
                         f"{x.shape}")
    if x.data.size and x.data.min() < 0:
        raise ValueRangeError(f"bincount: values must be non-negative, got {x.data.min()}")
    if minlength < 0:
        raise ValueRangeError(f"bincount: minlength must be non-negative, got {minlength}")
    if weights is None:
        return Tensor._make(np.bincount(x.data, minlength=minlength).astype(np.int64))
    w = as_tensor(weights, "bincount").data
    if w.shape != x.shape:
        raise ShapeError(f"bincount: weights {w.shape} must have input's shape {x.shape}")
    target = w.dtype if w.dtype.kind == "f" else np.dtype(np.float64)
    return Tensor._make(np.bincount(x.data, weights=w, minlength=minlength).astype(target))


def argsort(input: Any, dim: int = -1, descending: bool = False, *,  # noqa: A002
            stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim``: ``sort(...).indices`` (equal values
    keep their order)."""
    return sort(input, dim, descending, stable=stable).indices


def isclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
            equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol |b|, elementwise: a bool tensor."""
    a, b = operands(input, other, "isclose")
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    return Tensor._make(np.asarray(np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def allclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
             equal_nan: bool = False) -> bool:
    """Whether every |a - b| <= atol + rtol |b| (a Python bool, as torch.allclose)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


def equal(input: Any, other: Any) -> bool:  # noqa: A002
    """Whether both tensors have the same shape and the same values (a Python bool)."""
    a, b = as_tensor(input, "equal"), as_tensor(other, "equal")
    return a.shape == b.shape and bool(np.array_equal(a.data, b.data))


def clamp_min(input: Any, min: Any) -> Tensor:  # noqa: A002
    return clip(input, min=min)


def clamp_max(input: Any, max: Any) -> Tensor:  # noqa: A002
    return clip(input, max=max)


var_mean_result = collections.namedtuple("var_mean", ["var", "mean"])
std_mean_result = collections.namedtuple("std_mean", ["std", "mean"])


def var_mean(input: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,  # noqa: A002
             correction: Any = None) -> Any:
    """``(var(input, ...), mean(input, ...))`` over the same dims, as torch.var_mean."""
    if isinstance(dim, bool):  # var_mean(x, False): the old positional unbiased
        dim, unbiased = None, dim
    v = var(input, dim, unbiased, keepdim, correction=correction)
    return var_mean_result(v, mean(_floating(input), dim, keepdim))


def std_mean(input: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,  # noqa: A002
             correction: Any = None) -> Any:
    """``(std(input, ...), mean(input, ...))`` over the same dims, as torch.std_mean."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    s = std(input, dim, unbiased, keepdim, correction=correction)
    return std_mean_result(s, mean(_floating(input), dim, keepdim))


def _floating(x: Any) -> Tensor:
    x = as_tensor(x, "mean")
    if x.data.dtype.kind != "f":
        x = Tensor._make(x.data.astype(dtypes.get_default_dtype()))
    return x


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a tinynet Tensor (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Any) -> bool:  # noqa: A002
    if not isinstance(input, Tensor):
        raise DTypeError(f"is_floating_point: expected a Tensor, got {type(input).__name__}")
    return input.data.dtype.kind == "f"


def numel(input: Any) -> int:  # noqa: A002
    return builtins.int(as_tensor(input, "numel").data.size)
