"""Reductions: sum, mean, max, min, amax, amin (and argmax/argmin, not differentiable).

Backward of a reduction spreads the incoming gradient back over the reduced axes:
``sum`` copies it to every element, ``mean`` also divides by the count, and ``max``/``min``
send it to the elements that attained the extreme value. Ties split the gradient evenly
(as PyTorch's ``amax``/``amin`` and full ``max()`` do), so the rule is symmetric.
``max(x, dim)`` is different: it returns (values, indices) and gathers the values at the
indices (ops/select.py), so the gradient goes to the one element picked, as in PyTorch.

NaN is the extreme of any group holding one, and the gradient follows PyTorch there too:
``max()``/``min()`` over everything split it evenly among the NaN elements; ``amax``/``amin``
(and a tuple of dims) give the whole group a NaN gradient; ``max(x, dim)`` picks the first NaN.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError, IndexShapeError, ShapeError, ValueRangeError
from tinynet.ops import select
from tinynet.ops.datadep import _ArgExtreme, _Compute
from tinynet.ops.elementwise import maximum, minimum
from tinynet.ops.elementwise import where as ops_where
from tinynet.ops.operands import as_tensor, reduction_args
from tinynet.tensor import Tensor


def _spread(grad: Tensor, ctx: Function) -> Tensor:
    """Give the reduced gradient its size-1 axes back, then broadcast it to the input's shape."""
    if not ctx.keepdims:
        grad = grad.reshape(ctx.kept_shape)
    return grad.broadcast_to(ctx.input_shape)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """d/dx_i sum(x) = 1"""

    @staticmethod
    def forward(ctx: Function, x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        return np.add.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return _spread(grad, ctx)


class Mean(Function):
    """d/dx_i mean(x) = 1/n"""

    @staticmethod
    def forward(ctx: Function, x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        # Half precision accumulates in float32, as numpy's mean does: a float16 sum overflows
        # (65504) long before the mean does.
        wide = np.float32 if x.dtype == np.float16 else None
        total = np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=wide)
        count = x.size // total.size if total.size else 0  # elements in each mean
        ctx.count = count or 1  # an empty input has an empty gradient: any factor will do
        with np.errstate(invalid="ignore"):  # the mean of nothing is nan, as numpy says
            mean = total / total.dtype.type(count)
        return np.asarray(mean).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return _spread(grad * (1.0 / ctx.count), ctx)


class Max(Function):
    """d/dx_i max(x) = 1/k for the k elements equal to the max, 0 elsewhere
    (``Min`` is the same op with ``reduce = np.min``).

    Where a group's extreme is NaN, no element equals it: its share is 0/0 = NaN for every
    element (PyTorch's amax), unless ``nans_take_gradient`` (PyTorch's full ``max()``), which
    counts the NaN elements as the k extremes."""

    reduce = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx: Function, x: Any, axis: Any = None, keepdims: bool = False,
                nans_take_gradient: bool = False) -> Any:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        kept = cls.reduce(x, axis=axis, keepdims=True)
        if x.dtype.kind == "f":  # each extreme's share of the gradient: a constant
            hits = x == kept
            if nans_take_gradient:
                hits |= np.isnan(kept) & np.isnan(x)
            count = hits.sum(axis=axis, keepdims=True).astype(x.dtype)
            # a group whose extreme is NaN has no hits: its share is 0/0 = NaN (as PyTorch's
            # amax gradient), without numpy's warning
            ctx.share = np.divide(hits, count, out=np.full(hits.shape, np.nan, x.dtype),
                                  where=count != 0)
        if keepdims:
            return kept
        return kept.reshape(()) if axis is None else np.squeeze(kept, axis=axis)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        spread = _spread(grad, ctx)
        return ops_where(ctx.share == 0, 0.0, spread) * ctx.share  # 0, not inf * 0


class Min(Max):
    """d/dx_i min(x) = 1/k for the k elements equal to the min, 0 elsewhere"""

    reduce = staticmethod(np.min)


def sum(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (alias ``axis``; an int, a tuple, or None for all),
    keeping reduced dims as size 1 when ``keepdim`` (alias ``keepdims``)."""
    x = as_tensor(x, "sum")
    axes, keep = reduction_args(x, dim, keepdim, aliases, "sum")
    return Sum.apply(x, axis=axes, keepdims=keep)


def mean(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
    """Mean over ``dim``; integer tensors give the default float dtype."""
    x = as_tensor(x, "mean")
    axes, keep = reduction_args(x, dim, keepdim, aliases, "mean")
    if x.data.dtype.kind != "f":
        x = Tensor._make(x.data.astype(dtypes.get_default_dtype()))
    return Mean.apply(x, axis=axes, keepdims=keep)


def max(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Any:  # noqa: A001
    """``max(x)``: the largest value (ties share the gradient evenly, as PyTorch).
    ``max(x, dim)``: a named tuple ``(values, indices)`` over that dim, as ``torch.max``; the
    first index of the largest value, which alone gets the gradient.
    ``max(x, other_tensor)``: the elementwise ``maximum``. A tuple of dims (numpy's
    ``axis=(0, 1)``) gives the values only, as ``amax``."""
    return _extreme(Max, np.argmax, select.max_result, x, dim, keepdim, aliases, "max")


def min(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Any:  # noqa: A001
    """Smallest value(s): as ``max`` (``values, indices = min(x, dim)``)."""
    return _extreme(Min, np.argmin, select.min_result, x, dim, keepdim, aliases, "min")


def amax(x: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Largest values over one or several dims (all when ``dim=()``, as torch.amax); ties
    share the gradient evenly."""
    return _reduce_extreme(Max, x, dim, keepdim, "amax")


def amin(x: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Smallest values over one or several dims (torch.amin)."""
    return _reduce_extreme(Min, x, dim, keepdim, "amin")


def _reduce_extreme(cls: Any, x: Any, dim: Any, keepdim: bool, op: str) -> Tensor:
    x = as_tensor(x, op)
    axes, keep = reduction_args(x, None if dim == () else dim, keepdim, {}, op)
    _refuse_empty(x, axes, op)
    return cls.apply(x, axis=axes, keepdims=keep)


def _extreme(cls: Any, arg: Any, result: Any, x: Any, dim: Any, keepdim: bool,
             aliases: dict[str, Any], op: str) -> Any:
    if isinstance(dim, Tensor):  # torch.max(a, b): elementwise
        return (maximum if cls is Max else minimum)(x, dim)
    x = as_tensor(x, op)
    axes, keep = reduction_args(x, dim, keepdim, aliases, op)
    _refuse_empty(x, axes, op)
    if axes is None:  # over everything: PyTorch's evenly_distribute_backward, NaN-aware
        return cls.apply(x, axis=axes, keepdims=keep, nans_take_gradient=True)
    if isinstance(aliases.get("axis", dim), tuple | list):  # amax's rule
        return cls.apply(x, axis=axes, keepdims=keep)
    return select.extreme_along(arg, result, x, axes[0] if axes else 0, keep)


def argmax(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
    """Index of the largest value (first one on ties, as numpy), flattened when dim is None."""
    return _arg(np.argmax, x, dim, keepdim, aliases, "argmax")


def argmin(x: Any, dim: Any = None, keepdim: bool = False, **aliases: Any) -> Tensor:
    return _arg(np.argmin, x, dim, keepdim, aliases, "argmin")


def _arg(fn: Any, x: Any, dim: Any, keepdim: bool, aliases: dict[str, Any], op: str) -> Tensor:
    x = as_tensor(x, op)
    axes, keep = reduction_args(x, dim, keepdim, aliases, op)
    _refuse_empty(x, axes, op)
    if axes is not None and len(axes) > 1:
        raise ShapeError(f"{op}: dim must be a single dimension, got {dim}")
    axis = None if axes is None or not axes else axes[0]
    return _ArgExtreme.apply(x, fn=fn, axis=axis, keepdims=keep)  # an op: replayed


def _refuse_empty(x: Tensor, axes: tuple[int, ...] | None, op: str) -> None:
    if x.data.size == 0 and (axes is None or builtins.any(x.shape[a] == 0 for a in axes)):
        raise IndexShapeError(  # a ShapeError, and the IndexError PyTorch raises here
            f"{op}: cannot reduce an empty tensor of shape {x.shape} (no identity)")


class Norm(Function):
    """The 2-norm sqrt(sum x^2) over ``axis``: d/dx = x / norm, taken as 0 where the norm is 0
    (as PyTorch: the norm of a zero vector has gradient 0, not 0/0)."""

    @staticmethod
    def forward(ctx: Function, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        ctx.input_shape, ctx.keepdims = x.shape, keepdims
        ctx.kept_shape = _kept_shape(x.shape, axis)
        reduced = int(np.prod([x.shape[a] for a in (range(x.ndim) if axis is None else axis)]))
        if reduced == 1:  # the norm of one number is |x|, as PyTorch (x * x would overflow)
            out = np.asarray(np.add.reduce(np.abs(x), axis=axis, keepdims=keepdims))
        else:
            with np.errstate(over="ignore"):  # past 1e154 the squares overflow, as in PyTorch
                out = np.asarray(np.sqrt(np.add.reduce(x * x, axis=axis, keepdims=keepdims)))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        x, out = ctx.saved_tensors
        norm = _spread(out, ctx)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ops_where(norm.data == 0, 0.0, _spread(grad, ctx) * x / norm)


def norm(input: Any, p: Any = "fro", dim: Any = None, keepdim: bool = False,  # noqa: A002
         dtype: Any = None) -> Tensor:
    """The vector p-norm over ``dim`` (all elements when None), as ``torch.norm``:

        p = 2 or 'fro': sqrt(sum |x|^2)   p = 1: sum |x|    p = inf: max |x|   p = -inf: min |x|
        p = 0: the number of nonzero elements    other p > 0: (sum |x|^p)^(1/p)

    Gradients are PyTorch's: 0 where the norm is 0; ties at the max split evenly for inf.
    """
    x = as_tensor(input, "norm")
    if dtype is not None:
        x = x.to(dtype)
    if x.data.dtype.kind != "f":
        raise DTypeError(f"norm: expected a floating point tensor, got {x.dtype}; convert it "
                         "first (e.g. x.float())")
    if p == "fro" or p == 2:
        axes, keep = reduction_args(x, dim, keepdim, {}, "norm")
        return Norm.apply(x, axis=axes, keepdims=keep)
    if isinstance(p, str) or not isinstance(p, int | float | np.integer | np.floating):
        raise ValueRangeError(f"norm: p must be a number or 'fro', got {p!r} (the nuclear "
                              "norm 'nuc' is not implemented)")
    axes, keep = reduction_args(x, dim, keepdim, {}, "norm")
    magnitude = x.abs()
    if p == np.inf:
        return _reduce_extreme(Max, magnitude, () if axes is None else axes, keep, "norm")
    if p == -np.inf:
        return _reduce_extreme(Min, magnitude, () if axes is None else axes, keep, "norm")
    if p == 0:
        return Tensor._make(np.asarray(np.add.reduce(x.data != 0, axis=axes, keepdims=keep),
                                       dtype=x.dtype))
    if p < 0:
        raise ValueRangeError(f"norm: p must be >= 0, inf or -inf, got {p}")
    return (magnitude ** float(p)).sum(axes, keep) ** (1.0 / float(p))


def _correction(dim: Any, unbiased: Any, correction: Any, op: str) -> tuple[Any, float]:
    """PyTorch's two spellings: ``var(dim, unbiased)`` (and ``var(False)``) or
    ``var(dim, correction=c)``; the default correction is 1 (Bessel's)."""
    if isinstance(dim, bool):  # x.var(False): the old positional unbiased
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise DTypeError(f"{op}(): give unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, float(correction)


def var(input: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,  # noqa: A002
        correction: Any = None) -> Tensor:
    """Variance over ``dim``: sum (x - mean)^2 / max(0, n - correction), with n the number of
    elements reduced; correction 1 (Bessel) by default, ``unbiased=False`` means 0."""
    x = _floating(input, "var")
    dim, c = _correction(dim, unbiased, correction, "var")
    axes, keep = reduction_args(x, dim, keepdim, {}, "var")
    centred = x - x.mean(axes, keepdim=True)
    n = x.data.size // builtins.max(np.add.reduce(x.data, axis=axes, keepdims=keep).size, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (centred * centred).sum(axes, keep) / x.dtype.type(builtins.max(0.0, n - c))


def std(input: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,  # noqa: A002
        correction: Any = None) -> Tensor:
    """Standard deviation: sqrt(var) = ||x - mean|| / sqrt(max(0, n - correction)); its
    gradient is 0 (up to rounding) where all the values are equal: differentiating through
    x - mean removes the direction std does not depend on (shifting every value). PyTorch
    gives 0 there when its std is exactly 0, and +-g/n when its sum leaves a rounding residue
    (README, "Differences from PyTorch")."""
    x = _floating(input, "std")
    dim, c = _correction(dim, unbiased, correction, "std")
    axes, keep = reduction_args(x, dim, keepdim, {}, "std")
    centred = x - x.mean(axes, keepdim=True)
    n = x.data.size // builtins.max(np.add.reduce(x.data, axis=axes, keepdims=keep).size, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return Norm.apply(centred, axis=axes, keepdims=keep) / x.dtype.type(
            np.sqrt(builtins.max(0.0, n - c)))


def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Tensor:  # noqa: A002
    """log(sum(exp(x))) over ``dim``, computed as m + log(sum(exp(x - m))) with m the max
    (no overflow); d/dx = softmax(x). All -inf gives -inf, as in PyTorch."""
    x = _floating(input, "logsumexp")
    axes, keep = reduction_args(x, dim, keepdim, {}, "logsumexp")
    # the shift: a constant for the gradient, computed by a recorded op (tn.compile
    # recomputes it from each call's values)
    shift = _Compute.apply(x.detach(), fn=lambda a: _finite_max(a, axes))
    with np.errstate(divide="ignore"):
        total = (x - shift).exp().sum(axes, keepdim=True).log() + shift
    return total if keep else total.squeeze(axes if axes is not None else None)


def _finite_max(a: np.ndarray, axes: Any) -> np.ndarray:
    """The largest value over ``axes`` (kept as size-1 dims), 0 where it is not finite."""
    shift = np.max(a, axis=axes, keepdims=True) if a.size else np.zeros((), a.dtype)
    return np.where(np.isfinite(shift), shift, 0).astype(a.dtype)


def _floating(x: Any, op: str) -> Tensor:
    x = as_tensor(x, op)
    if x.data.dtype.kind != "f":
        x = Tensor._make(x.data.astype(dtypes.get_default_dtype()))
    return x




def all(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (over ``dim``, or all) is nonzero: a bool tensor."""
    return _logical(np.all, x, dim, keepdim, "all")


def any(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether some element (over ``dim``, or all) is nonzero: a bool tensor."""
    return _logical(np.any, x, dim, keepdim, "any")


def _logical(fn: Any, x: Any, dim: Any, keepdim: bool, op: str) -> Tensor:
    x = as_tensor(x, op)
    axes, keep = reduction_args(x, dim, keepdim, {}, op)
    return Tensor._make(np.asarray(fn(x.data, axis=axes, keepdims=keep)))
