"""Activation functions and softmax. Each backward is the derivative written with Tensors;
sigmoid, tanh and relu also have a ``fast_backward`` computing the same on arrays in one
compiled loop (``tinynet.kernels``), which the engine uses for a plain (first-order) backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd import Function
from tinynet.ops.elementwise import where
from tinynet.ops.operands import as_floating, normalize_dim
from tinynet.tensor import Tensor

ACTIVATIONS = kernels.ACTIVATIONS  # the names ops.linear(..., activation=) accepts


def activation_grad(grad: Tensor, y: Tensor, activation: str) -> Tensor:
    """dL/dz from dL/dy for y = act(z), written with the output y:

    sigmoid: y (1 - y)   tanh: 1 - y^2   relu: [y > 0]   step: 0   identity: 1
    """
    if activation == "sigmoid":
        return grad * y * (1 - y)
    if activation == "tanh":
        return grad * (1 - y * y)
    if activation == "relu":
        # 0 where y = 0, even for an infinite gradient; a NaN output passes it (PyTorch)
        return where(y.data <= 0, 0.0, grad)
    if activation == "step":
        return _no_gradient(grad)
    return grad


def _no_gradient(grad: Tensor) -> Tensor:
    """Zeros shaped like grad, even where grad is infinite or NaN (grad * 0 would be NaN)."""
    return where(np.zeros(grad.shape, dtype=bool), grad, 0.0)


class Sigmoid(Function):
    """s(x) = 1 / (1 + e^-x);  d/dx s = s (1 - s)"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        out = kernels.sigmoid_forward(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (s,) = ctx.saved_tensors
        return grad * s * (1 - s)

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> np.ndarray:
        (s,) = ctx.saved_tensors
        return kernels.sigmoid_backward(grad, s.data)


class Tanh(Function):
    """d/dx tanh(x) = 1 - tanh(x)^2"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        out = kernels.tanh_forward(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (t,) = ctx.saved_tensors
        return grad * (1 - t * t)

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> np.ndarray:
        (t,) = ctx.saved_tensors
        return kernels.tanh_backward(grad, t.data)


class ReLU(Function):
    """relu(x) = max(x, 0);  d/dx relu = 1 where x > 0, else 0 (0 at x = 0, as PyTorch)"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        out = kernels.relu_forward(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return where(y.data <= 0, 0.0, grad)  # (at a NaN output the gradient passes, as PyTorch)

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> np.ndarray:
        (y,) = ctx.saved_tensors
        return kernels.relu_backward(grad, y.data)


class Step(Function):
    """Heaviside step: 1 where x >= 0, else 0. Its true derivative is 0 everywhere (undefined
    at 0), so no gradient flows through it and gradient descent cannot train what lies before
    it. ``surrogate`` swaps in a stand-in derivative for training:

    - ``None``: the true derivative, 0.
    - ``"straight_through"``: 1 where |x| <= 1 (the straight-through estimator, clipped).
    - ``"sigmoid"``: s(x) (1 - s(x)), the derivative of the sigmoid the step approximates.
    """

    @staticmethod
    def forward(ctx: Function, x: Any, surrogate: str | None = None) -> np.ndarray:
        ctx.surrogate = surrogate
        ctx.save_for_backward(x)
        return kernels.step_forward(x)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        if ctx.surrogate is None:
            return _no_gradient(grad)
        if ctx.surrogate == "straight_through":
            return where(abs(x.data) <= 1, grad, 0.0)
        s = x.sigmoid()
        return grad * s * (1 - s)


class Softmax(Function):
    """s_i = e^(x_i - max) / sum_j e^(x_j - max);  dL/dx = s * (g - sum(g * s))"""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = -1) -> np.ndarray:
        ctx.dim = dim
        if x.size == 0:  # nothing to normalise (and max() of nothing has no value)
            out = x.copy()
            ctx.save_for_backward(out)
            return out
        # x - max overflows to -inf only below the dtype's range, where e^(x - max) is 0 anyway;
        # an infinite input gives NaN (inf - inf), as in PyTorch, without numpy's warning
        with np.errstate(under="ignore", over="ignore", invalid="ignore"):
            e = np.exp(x - x.max(axis=dim, keepdims=True))
        out = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (s,) = ctx.saved_tensors
        return s * (grad - (grad * s).sum(dim=ctx.dim, keepdim=True))


class LogSoftmax(Function):
    """y = x - max - log(sum(e^(x - max)));  dL/dx = g - e^y * sum(g)"""

    op = "log_softmax"

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = -1) -> np.ndarray:
        ctx.dim = dim
        if x.size == 0:  # nothing to normalise (and max() of nothing has no value)
            out = x.copy()
            ctx.save_for_backward(out)
            return out
        with np.errstate(under="ignore", invalid="ignore"):  # (inf - inf = NaN, as PyTorch)
            shifted = x - x.max(axis=dim, keepdims=True)
            out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        with np.errstate(under="ignore"):
            return grad - y.exp() * grad.sum(dim=ctx.dim, keepdim=True)


def sigmoid(x: Any) -> Tensor:
    """Logistic sigmoid, computed stably for any |x|."""
    return Sigmoid.apply(as_floating(x, "sigmoid"))


def tanh(x: Any) -> Tensor:
    return Tanh.apply(as_floating(x, "tanh"))


def relu(x: Any) -> Tensor:
    return ReLU.apply(as_floating(x, "relu"))


def step(x: Any, surrogate: str | None = None) -> Tensor:
    """Heaviside step (1 where x >= 0); see ``Step`` for the zero derivative and surrogates."""
    if surrogate not in (None, "straight_through", "sigmoid"):
        raise ValueError(
            f"step: surrogate must be None, 'straight_through' or 'sigmoid', got {surrogate!r}"
        )
    return Step.apply(as_floating(x, "step"), surrogate=surrogate)


def softmax(x: Any, dim: int = -1, **aliases: Any) -> Tensor:
    """Softmax along ``dim`` (alias ``axis``), stable for large inputs."""
    x = as_floating(x, "softmax")
    d = normalize_dim(aliases.pop("axis", dim), x.ndim, "softmax")
    return Softmax.apply(x, dim=d if x.ndim else None)


def log_softmax(x: Any, dim: int = -1, **aliases: Any) -> Tensor:
    x = as_floating(x, "log_softmax")
    d = normalize_dim(aliases.pop("axis", dim), x.ndim, "log_softmax")
    return LogSoftmax.apply(x, dim=d if x.ndim else None)
