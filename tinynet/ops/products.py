"""Products: prod (over a dim or everything) and cumprod (running product along a dim).

    prod:     d/dx_i prod(x) = prod_{j != i} x_j
    cumprod:  d/dx_i sum_k g_k cumprod(x)_k = sum_{k >= i} g_k prod_{j <= k, j != i} x_j

Without zeros both are a division: prod / x_i, and (sum_{k >= i} g_k out_k) / x_i. A zero
makes that 0/0, so where x holds a zero the products "of all the others" are formed
directly: the input repeated n times with the diagonal set to 1, multiplied along the row.
That costs n^2, only then, and is made of ordinary ops, so it differentiates again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import Function
from tinynet.errors import DTypeError
from tinynet.ops.elementwise import cast, where
from tinynet.ops.operands import as_tensor, normalize_dim
from tinynet.tensor import Tensor


def _others_product(x: Tensor, dim: int) -> Tensor:
    """out_i = prod_{j != i} x_j along ``dim`` (n^2 work: used where x has zeros)."""
    last = x.swapaxes(dim, -1)
    n = last.shape[-1]
    rows = last.unsqueeze(-2).expand(*last.shape[:-1], n, n)  # rows[..., i, j] = x_j
    others = where(np.eye(n, dtype=bool), 1.0, rows).prod(-1)
    return others.swapaxes(dim, -1)


def _reverse_cumsum(a: Tensor, dim: int) -> Tensor:
    """out_i = sum_{k >= i} a_k along ``dim`` (a sum against a triangle of ones)."""
    last = a.swapaxes(dim, -1)
    n = last.shape[-1]
    below = np.tril(np.ones((n, n), dtype=a.dtype))  # below[k, i] = 1 where k >= i
    return (last.unsqueeze(-1) * below).sum(-2).swapaxes(dim, -1)


class Prod(Function):
    """prod(x) over ``dim`` (all of x when None): d/dx_i = prod_{j != i} x_j"""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int | None = None, keepdim: bool = False) -> Any:
        ctx.dim, ctx.keepdim, ctx.input_shape = dim, keepdim, x.shape
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(np.prod(x, axis=dim, keepdims=keepdim))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        x, out = ctx.saved_tensors
        kept = tuple(1 if ctx.dim is None or i == ctx.dim else n
                     for i, n in enumerate(ctx.input_shape))
        grad, out = grad.reshape(kept), out.reshape(kept)
        if not (x.data == 0).any():
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return grad * (out / x)
        if ctx.dim is None:
            others = _others_product(x.reshape(-1), 0).reshape(ctx.input_shape)
        else:
            others = _others_product(x, ctx.dim)
        return grad * others


class CumProd(Function):
    """out_k = x_0 x_1 ... x_k along ``dim``: d/dx_i = sum_{k >= i} g_k out_k / x_i"""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = 0) -> np.ndarray:
        ctx.dim = dim
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.cumprod(x, axis=dim)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        x, out = ctx.saved_tensors
        d = ctx.dim
        if not (x.data == 0).any():
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return _reverse_cumsum(grad * out, d) / x
        last, g = x.swapaxes(d, -1), grad.swapaxes(d, -1)
        n = last.shape[-1]
        rows = last.unsqueeze(-2).expand(*last.shape[:-1], n, n)  # rows[..., i, j] = x_j
        running = where(np.eye(n, dtype=bool), 1.0, rows).cumprod(-1)  # [i, k]: skip x_i
        upper = np.triu(np.ones((n, n), dtype=bool))  # k >= i
        return (g.unsqueeze(-2) * where(upper, running, 0.0)).sum(-1).swapaxes(d, -1)


def _product_input(input: Any, dtype: Any, op: str) -> Tensor:  # noqa: A002
    x = as_tensor(input, op)
    if dtype is not None:
        return cast(x, dtypes.to_dtype(dtype))
    if x.data.dtype.kind in "biu":  # integers and bools multiply in int64, as in PyTorch
        return cast(x, np.int64) if x.data.dtype != np.int64 else x
    return x


def prod(input: Any, dim: int | None = None, keepdim: bool = False, *,  # noqa: A002
         dtype: Any = None) -> Tensor:
    """The product of all elements, or over one ``dim`` (torch.prod); integer and bool tensors
    multiply in int64. The product of nothing is 1."""
    x = _product_input(input, dtype, "prod")
    if isinstance(dim, tuple | list):
        raise DTypeError(f"prod: dim must be one integer, got {dim!r} (as in PyTorch); "
                         "reduce one dim at a time")
    if dim is None:
        return Prod.apply(x, dim=None, keepdim=False)
    if x.ndim == 0:
        normalize_dim(dim, 0, "prod")
        return x.clone()
    return Prod.apply(x, dim=normalize_dim(dim, x.ndim, "prod"), keepdim=bool(keepdim))


def cumprod(input: Any, dim: int, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """Running products along ``dim``: out_k = x_0 ... x_k (torch.cumprod)."""
    x = _product_input(input, dtype, "cumprod")
    if x.ndim == 0:
        normalize_dim(dim, 0, "cumprod")
        return x.clone()
    return CumProd.apply(x, dim=normalize_dim(dim, x.ndim, "cumprod"))
