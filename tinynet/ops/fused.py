"""Ops that do several steps in one node: fewer passes over memory, fewer nodes to record.

- ``Linear``: y = act(x @ W^T + b). The matmul goes to BLAS (a small one: a loop,
  ``kernels.linear_product``); the bias add (and an optional activation, when asked for
  explicitly) run as one kernel pass over the result.
- ``SoftmaxCrossEntropy``: loss_i = logsumexp(z_i) - z_i[t_i]; its gradient is
  (softmax(z_i) - onehot(t_i)) * g_i, one kernel pass each way (0 for an ignored target).
- ``MeanSquaredError``: one node instead of three (sub, square, mean): tiny networks are
  dominated by per-node overhead, not arithmetic.

Each has one backward written with Tensors (what ``create_graph=True`` differentiates again)
and a ``fast_backward`` doing the same on arrays through the kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd import Function
from tinynet.errors import ValueRangeError
from tinynet.ops.activation import ACTIVATIONS, activation_grad
from tinynet.ops.elementwise import where
from tinynet.ops.operands import as_tensor
from tinynet.tensor import Tensor


class Linear(Function):
    """y = act(x W^T + b);  dz = act'(y) * g;  dx = dz W;  dW = dz^T x;  db = sum_rows(dz)

    ``nn.Linear`` is this op with ``activation="identity"``. A named activation runs in the same
    kernel pass as the bias add (what ``tn.compile`` generates; in eager mode write
    ``tn.ops.linear(x, w, b, activation="sigmoid")`` to ask for it).
    """

    op = "linear"
    shape_error = "are not aligned (x is (..., in_features), weight is (out_features, in_features))"

    @staticmethod
    def forward(
        ctx: Function, x: Any, weight: Any, bias: Any = None, activation: str = "identity"
    ) -> np.ndarray:
        ctx.activation = activation
        shape = x.shape[:-1] + weight.shape[:1]
        if x.ndim > 2:  # batches of rows (N, T, in): one product of (N*T, in) rows, as the
            x2 = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # backward and tn.compile
            z = np.matmul(x2, weight.T)  # (and PyTorch) do
        else:  # (a small product: a loop, as tn.compile's segments run it)
            z = kernels.linear_product("nt", x, weight)
        if bias is not None and np.result_type(z, bias) != z.dtype:
            z = z.astype(np.result_type(z, bias))
        rows = math.prod(z.shape[:-1])  # not -1: ambiguous when out_features is 0
        flat = z if z.ndim == 2 and z.flags.c_contiguous else np.ascontiguousarray(
            z.reshape(rows, weight.shape[0]))
        y = kernels.bias_activation_forward(flat, bias, activation)
        if y.shape != shape:
            y = y.reshape(shape)
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any, Any]:
        x, weight, y = ctx.saved_tensors
        dz = activation_grad(grad, y, ctx.activation)
        return _linear_grads(ctx, dz, x, weight)

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> tuple[Any, Any, Any]:
        x, weight, y = [t._data for t in ctx.saved_tensors]
        dz = kernels.activation_backward(np.asarray(grad), y, ctx.activation)
        return _linear_grads(ctx, dz, x, weight)


def _linear_grads(ctx: Function, dz: Any, x: Any, weight: Any) -> tuple[Any, Any, Any]:
    """dx = dz W, dW = dz^T x, db = column sums of dz (Tensors or arrays alike)."""
    need_x, need_w, need_b = ctx.needs_input_grad
    x_shape = x.shape
    if dz.ndim != 2:  # batched input (..., in): fold the batch dims into rows
        rows = math.prod(dz.shape[:-1])  # not -1: ambiguous for a size-0 feature dim
        dz = dz.reshape(rows, weight.shape[0])
        x = x.reshape(rows, weight.shape[1])
    if isinstance(dz, np.ndarray) and len(x_shape) == 2:  # arrays: the kernels' products
        grad_x = kernels.linear_product("nn", dz, weight) if need_x else None
        grad_w = kernels.linear_product("tn", dz, x) if need_w else None
    else:
        grad_x = (dz @ weight).reshape(x_shape) if need_x else None
        grad_w = dz.T @ x if need_w else None
    grad_b = dz.sum(0) if need_b else None
    return grad_x, grad_w, grad_b


class SoftmaxCrossEntropy(Function):
    """loss_i = -log softmax(z_i)[t_i];  dL/dz_i = g_i (softmax(z_i) - onehot(t_i)); a target
    equal to ``ignore_index`` adds loss 0 and gradient 0, and the mean divides by the number
    of the others (none: NaN, with a zero gradient, as in PyTorch)."""

    op = "cross_entropy"

    @staticmethod
    def forward(ctx: Function, logits: Any, target: Any, reduction: str = "mean",
                ignore_index: int = -100) -> np.ndarray:
        ctx.reduction, ctx.target, ctx.ignore_index = reduction, target, ignore_index
        losses, probs = kernels.softmax_cross_entropy_forward(logits, target, ignore_index)
        ctx.probs = probs
        ctx.save_for_backward(logits)
        ctx.count = _counted_targets(target, ignore_index)
        if reduction == "none":
            return losses
        total = losses.sum(dtype=losses.dtype)
        if reduction == "sum":
            return total
        if not ctx.count:  # every target ignored: 0/0, NaN as in PyTorch (without a warning)
            return np.asarray(np.nan, dtype=losses.dtype)
        return total / losses.dtype.type(ctx.count)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, None]:
        (logits,) = ctx.saved_tensors
        n = len(ctx.target)
        if ctx.reduction == "mean":
            grad = grad * (1.0 / max(ctx.count, 1))  # (no count: every row's gradient is 0)
        kept = ctx.target != ctx.ignore_index
        onehot = np.zeros(logits.shape, dtype=logits.dtype)
        onehot[np.arange(n)[kept], ctx.target[kept]] = 1
        per_sample = grad.reshape(-1, 1) if grad.ndim == 1 else grad
        rows = (logits.softmax(dim=1) - onehot) * per_sample
        if kept.all():
            return rows, None
        return where(kept.reshape(-1, 1), rows, logits.dtype.type(0.0)), None

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> tuple[Any, None]:
        ctx.saved_tensors  # noqa: B018 - checks the graph was not freed or edited in place
        if ctx.reduction == "mean":
            grad = grad * grad.dtype.type(1.0 / max(ctx.count, 1))
        return kernels.softmax_cross_entropy_backward(ctx.probs, ctx.target, grad,
                                                      ctx.ignore_index), None


def _counted_targets(target: np.ndarray, ignore_index: int) -> int:
    """How many targets are not ``ignore_index`` (the mean's divisor)."""
    return len(target) - int(np.count_nonzero(target == ignore_index))


class MeanSquaredError(Function):
    """L = reduce((a - b)^2);  dL/da = 2 (a - b) g / n (n = count for 'mean', 1 for 'sum'),
    dL/db = -dL/da"""

    op = "mse_loss"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any, reduction: str = "mean") -> np.ndarray:
        ctx.reduction = reduction
        diff = np.subtract(a, b)
        ctx.count = diff.size
        ctx.save_for_backward(a, b)
        if reduction == "none":
            return diff * diff
        flat = diff.reshape(-1)
        total = np.dot(flat, flat) if diff.dtype.kind == "f" else (flat * flat).sum()
        if reduction == "sum":
            return np.asarray(total, dtype=diff.dtype)
        if diff.size == 0:  # the mean of nothing is nan, as in PyTorch (and without 0/0's warning)
            return np.asarray(np.nan, dtype=diff.dtype)
        # No np.errstate block here: entering one costs about as much as this whole forward
        # does for XOR-sized inputs.
        return np.asarray(total / diff.dtype.type(diff.size), dtype=diff.dtype)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        grad_a = (grad * _mse_scale(ctx)) * (a - b)
        return grad_a, -grad_a if ctx.needs_input_grad[1] else None

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> tuple[Any, Any]:
        a, b = [t._data for t in ctx.saved_tensors]
        grad_a = (grad * grad.dtype.type(_mse_scale(ctx))) * np.subtract(a, b)
        return grad_a, -grad_a if ctx.needs_input_grad[1] else None


def _mse_scale(ctx: Function) -> float:
    """d(reduced (a - b)^2)/d(a - b) / (a - b): 2/n for a mean, 2 for a sum or none. (An empty
    input has an empty gradient: any factor will do, but not 2 / 0.)"""
    return 2.0 / ctx.count if ctx.reduction == "mean" and ctx.count else 2.0


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error in one node; ``input`` and ``target`` have the same shape."""
    return MeanSquaredError.apply(input, target, reduction=reduction)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           activation: str = "identity") -> Tensor:
    """act(x @ weight^T + bias) in one node; ``weight`` is (out_features, in_features)."""
    if activation not in ACTIVATIONS:
        raise ValueRangeError(
            f"linear: activation must be one of {ACTIVATIONS}, got {activation!r}"
        )
    x, weight = as_tensor(x, "linear"), as_tensor(weight, "linear")  # data, not strings
    if bias is not None:
        bias = as_tensor(bias, "linear")
    return Linear.apply(x, weight, bias, activation=activation)


def softmax_cross_entropy(logits: Tensor, target: Any, reduction: str = "mean",
                          ignore_index: int = -100) -> Tensor:
    """Cross-entropy of (N, C) logits against (N,) int64 class indices (already validated:
    each in 0..C-1 or equal to ``ignore_index``, which adds nothing)."""
    return SoftmaxCrossEntropy.apply(logits, target, reduction=reduction,
                                     ignore_index=ignore_index)
