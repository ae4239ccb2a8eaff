"""Fused ops: several steps in one node, so the fast path makes fewer passes over memory.

- ``LinearActivation``: y = act(x @ W^T + b). The matmul goes to BLAS; the bias add and the
  activation run as one kernel pass over the result, and backward applies the activation's
  derivative in one pass before the two gradient matmuls.
- ``SoftmaxCrossEntropy``: loss_i = logsumexp(z_i) - z_i[t_i]; its gradient is
  (softmax(z_i) - onehot(t_i)) * g_i, one kernel pass each way.
- ``MeanSquaredError``: one node instead of three (sub, square, mean): tiny networks are
  dominated by per-node overhead, not arithmetic.

With ``create_graph=True`` the backward rules use ordinary differentiable ops instead of the
kernels, so second derivatives stay correct.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd import Function
from tinynet.errors import ValueRangeError
from tinynet.ops.activation import ACTIVATIONS, activation_grad
from tinynet.ops.operands import as_tensor
from tinynet.tensor import Tensor


class LinearActivation(Function):
    """y = act(x W^T + b);  dz = act'(y) * g;  dx = dz W;  dW = dz^T x;  db = sum_rows(dz)"""

    op = "linear"
    shape_error = "are not aligned (x is (..., in_features), weight is (out_features, in_features))"

    @staticmethod
    def forward(
        ctx: Function, x: Any, weight: Any, bias: Any = None, activation: str = "identity"
    ) -> np.ndarray:
        ctx.activation = activation
        z = np.matmul(x, weight.T)
        out_features = weight.shape[0]
        if bias is not None and np.result_type(z, bias) != z.dtype:
            z = z.astype(np.result_type(z, bias))
        if z.ndim == 2 and z.flags.c_contiguous:
            y = kernels.bias_activation_forward(z, bias, activation)
        else:
            rows = int(np.prod(z.shape[:-1]))  # not -1: ambiguous when out_features is 0
            y = kernels.bias_activation_forward(
                np.ascontiguousarray(z.reshape(rows, out_features)), bias, activation
            ).reshape(z.shape)
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx: Function, grad: Any) -> tuple[Any, Any, Any]:
        x, weight, y = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        dz = activation_grad(grad, y, ctx.activation)
        if dz.ndim != 2:  # batched input (..., in): fold the batch dims into rows
            rows = int(np.prod(dz.shape[:-1]))  # not -1: ambiguous for a size-0 feature dim
            dz = dz.reshape(rows, weight.shape[0])
            x = x.reshape(rows, weight.shape[1])
        grad_x = dz @ weight if need_x else None
        if grad_x is not None and grad_x.shape != ctx.parents[0].shape:
            grad_x = grad_x.reshape(ctx.parents[0].shape)
        grad_w = dz.swapaxes(-1, -2) @ x if need_w else None
        grad_b = dz.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b


class SoftmaxCrossEntropy(Function):
    """loss_i = -log softmax(z_i)[t_i];  dL/dz_i = g_i (softmax(z_i) - onehot(t_i))"""

    op = "cross_entropy"

    @staticmethod
    def forward(ctx: Function, logits: Any, target: Any, reduction: str = "mean") -> np.ndarray:
        ctx.reduction, ctx.target = reduction, target
        losses, probs = kernels.softmax_cross_entropy_forward(logits, target)
        ctx.save_for_backward(probs)
        if reduction == "none":
            return losses
        total = losses.sum(dtype=losses.dtype)
        return total / losses.dtype.type(len(losses)) if reduction == "mean" else total

    @staticmethod
    def backward(ctx: Function, grad: Any) -> tuple[Any, None]:
        n = len(ctx.target)
        if ctx.reduction == "mean":
            grad = grad * (1.0 / n)
        if not ctx.differentiable:  # grad may be a numpy scalar here, not a 0-d array
            (probs,) = ctx.saved_tensors
            return kernels.softmax_cross_entropy_backward(probs, ctx.target, grad), None
        logits = ctx.parents[0]
        onehot = np.zeros(logits.shape, dtype=logits.dtype)
        onehot[np.arange(n), ctx.target] = 1
        per_sample = grad.reshape(-1, 1) if grad.ndim == 1 else grad
        return (logits.softmax(dim=1) - onehot) * per_sample, None


class MeanSquaredError(Function):
    """L = reduce((a - b)^2);  dL/da = 2 (a - b) g / n (n = count for 'mean', 1 for 'sum'),
    dL/db = -dL/da"""

    op = "mse_loss"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any, reduction: str = "mean") -> np.ndarray:
        ctx.reduction = reduction
        diff = np.subtract(a, b)
        ctx.count = diff.size  # kept as a number: under create_graph diff is a Tensor
        ctx.save_for_backward(diff)
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
    def backward(ctx: Function, grad: Any) -> tuple[Any, Any]:
        if ctx.differentiable:  # (a - b) as a graph, so the gradient can be differentiated
            a, b = ctx.parents
            diff = a - b
        else:
            (diff,) = ctx.saved_tensors
        scale = 2.0 / ctx.count if ctx.reduction == "mean" else 2.0
        grad_a = (grad * scale) * diff
        return grad_a, -grad_a if ctx.needs_input_grad[1] else None


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
    return LinearActivation.apply(x, weight, bias, activation=activation)


def softmax_cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of (N, C) logits against (N,) int64 class indices (already validated)."""
    return SoftmaxCrossEntropy.apply(logits, target, reduction=reduction)
