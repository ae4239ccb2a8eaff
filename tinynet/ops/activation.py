"""Activation functions and softmax.

The elementwise activations come from one table, ``tinynet/kernels/formulas.py``: a row gives
an op's forward and its derivative as scalar expressions, from which the kernels that run
``forward`` and ``fast_backward`` (the engine's first-order path, arrays in and out) are
generated. What you read here is each op's ``rule``: the same derivative written with Tensors,
so it can be differentiated again (second derivatives), and checked against the table's row
(tests/test_formulas.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd import Function
from tinynet.kernels.formulas import (
    PDF,
    SELU_ALPHA,
    SELU_SCALE,
    SQRT1_2,
    SQRT_2_PI,
    TABLE,
    TWO_OVER_SQRT_PI,
)
from tinynet.ops.elementwise import exp, where
from tinynet.ops.operands import as_floating, normalize_dim
from tinynet.tensor import Tensor

ACTIVATIONS = kernels.ACTIVATIONS  # the names ops.linear(..., activation=) accepts


class _Elementwise(Function):
    """An activation whose ``forward`` and ``fast_backward`` run the kernels generated from its
    row of the formula table (``op`` names the row); a subclass writes ``rule``, the derivative
    with Tensors: ``rule(grad, saved, **params)`` with saved the input x or the output y, as
    the row's ``saves`` says."""

    @staticmethod
    def forward(ctx: Function, x: Any, **params: float) -> np.ndarray:
        ctx.params = params
        out = kernels.elementwise_forward(ctx.op, x, **params)
        ctx.save_for_backward(out if TABLE[ctx.op].saves == ("y",) else x)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (saved,) = ctx.saved_tensors
        return type(ctx).rule(grad, saved, **ctx.params)

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> np.ndarray:
        (saved,) = ctx.saved_tensors
        return kernels.elementwise_backward(ctx.op, grad, saved.data, **ctx.params)

    @staticmethod
    def rule(grad: Tensor, saved: Tensor, **params: float) -> Tensor:
        raise NotImplementedError


class Sigmoid(_Elementwise):
    """s(x) = 1 / (1 + e^-x);  d/dx s = s (1 - s)"""

    @staticmethod
    def rule(grad: Tensor, s: Tensor) -> Tensor:
        return grad * s * (1 - s)


class Tanh(_Elementwise):
    """d/dx tanh(x) = 1 - tanh(x)^2"""

    @staticmethod
    def rule(grad: Tensor, t: Tensor) -> Tensor:
        return grad * (1 - t * t)


class ReLU(_Elementwise):
    """relu(x) = max(x, 0);  d/dx relu = 1 where x > 0, else 0 (0 at x = 0, as PyTorch)"""

    @staticmethod
    def rule(grad: Tensor, y: Tensor) -> Tensor:
        # 0 where y <= 0, even for an infinite gradient; a NaN output passes it (PyTorch)
        return where(y.data <= 0, 0.0, grad)


class LeakyReLU(_Elementwise):
    """x where x > 0, else negative_slope x;  d/dx = 1 where x > 0, else negative_slope"""

    op = "leaky_relu"

    @staticmethod
    def rule(grad: Tensor, x: Tensor, negative_slope: float = 0.01) -> Tensor:
        return where(x.data > 0, grad, grad * negative_slope)


class ELU(_Elementwise):
    """x where x > 0, else alpha (e^x - 1);  d/dx = 1 where x > 0, else alpha e^x"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor, alpha: float = 1.0) -> Tensor:
        return where(x.data <= 0, grad * alpha * exp(x), grad)


class Hardtanh(_Elementwise):
    """clamp(x, min_val, max_val);  d/dx = 1 strictly inside, else 0 (PyTorch's rule)"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
        return where((x.data <= min_val) | (x.data >= max_val), 0.0, grad)


class Softplus(_Elementwise):
    """log(1 + e^(beta x)) / beta, and x where beta x > threshold;
    d/dx = sigmoid(beta x), and 1 where beta x > threshold"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
        return where(x.data * beta > threshold, grad, grad * sigmoid(x * beta))


class SiLU(_Elementwise):
    """x s(x) with s the sigmoid;  d/dx = s (1 + x (1 - s))"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        s = sigmoid(x)
        return grad * s * (1 + x * (1 - s))


class Mish(_Elementwise):
    """x tanh(softplus(x));  d/dx = t + x s(x) (1 - t^2) with t = tanh(softplus(x))"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        t = tanh(softplus(x))
        return grad * (t + x * sigmoid(x) * (1 - t * t))


class GELU(_Elementwise):
    """x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 the normal CDF;
    d/dx = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi) the normal density"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        cdf = 0.5 * (1 + erf(x * SQRT1_2))
        return grad * (cdf + x * PDF * exp(-0.5 * x * x))


class GELUTanh(_Elementwise):
    """GELU(approximate='tanh'): x (1 + t) / 2, t = tanh(k (x + 0.044715 x^3)), k = sqrt(2/pi);
    d/dx = (1 + t) / 2 + x (1 - t^2) k (1 + 3 * 0.044715 x^2) / 2"""

    op = "gelu_tanh"

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        t = tanh(SQRT_2_PI * (x + 0.044715 * x * x * x))
        slope = SQRT_2_PI * (1 + 3 * 0.044715 * x * x)
        return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * slope)


class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6: 0 below -3, 1 above 3;  d/dx = 1/6 strictly inside, else 0"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return where((x.data > -3) & (x.data < 3), grad / 6, 0.0)


class Hardswish(_Elementwise):
    """x hardsigmoid(x);  d/dx = 0 up to -3, x/3 + 1/2 on (-3, 3), 1 from 3 (PyTorch's rule)"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return where(x.data <= -3, 0.0, where(x.data < 3, grad * (x / 3 + 0.5), grad))


class SELU(_Elementwise):
    """scale x where x > 0, else scale alpha (e^x - 1), PyTorch's fixed alpha and scale;
    d/dx = scale where x > 0, else scale alpha e^x"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return where(x.data <= 0, grad * SELU_SCALE * SELU_ALPHA * exp(x), grad * SELU_SCALE)


class CELU(_Elementwise):
    """x where x > 0, else alpha (e^(x/alpha) - 1);  d/dx = 1 where x > 0, else e^(x/alpha)"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor, alpha: float = 1.0) -> Tensor:
        return where(x.data <= 0, grad * exp(x / alpha), grad)


class LogSigmoid(_Elementwise):
    """log s(x) = min(x, 0) - log(1 + e^-|x|) (stable);  d/dx = 1 - s(x) = s(-x)"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return grad * sigmoid(-x)


class Threshold(_Elementwise):
    """x where x > threshold, else value;  d/dx = 1 where x > threshold, else 0"""

    @staticmethod
    def rule(grad: Tensor, x: Tensor, threshold: float = 0.0, value: float = 0.0) -> Tensor:
        return where(x.data <= threshold, 0.0, grad)


class Erf(Function):
    """erf(x) = 2/sqrt(pi) int_0^x e^(-t^2) dt;  d/dx erf = 2/sqrt(pi) e^(-x^2)"""

    @staticmethod
    def forward(ctx: Function, x: Any) -> np.ndarray:
        ctx.save_for_backward(x)
        return kernels.erf(x)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * TWO_OVER_SQRT_PI * exp(-x * x)


# Linear's fused activation (ops.linear(..., activation=)) uses the same rules.
_BY_NAME = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


def activation_grad(grad: Tensor, y: Tensor, activation: str) -> Tensor:
    """dL/dz from dL/dy for y = act(z), written with the output y: the activation's ``rule``
    (identity: grad; step: 0)."""
    if activation in _BY_NAME:
        return _BY_NAME[activation].rule(grad, y)
    if activation == "step":
        return _no_gradient(grad)
    return grad


def _no_gradient(grad: Tensor) -> Tensor:
    """Zeros shaped like grad, even where grad is infinite or NaN (grad * 0 would be NaN)."""
    return where(np.zeros(grad.shape, dtype=bool), grad, 0.0)


class Step(_Elementwise):
    """Heaviside step: 1 where x >= 0, else 0. Its true derivative is 0 everywhere (undefined
    at 0), so no gradient flows through it and gradient descent cannot train what lies before
    it. ``tn.step(x, surrogate=...)`` swaps in a stand-in derivative for training, each its own
    row of the formula table (the same forward):

    - ``None``: the true derivative, 0 (this class);
    - ``"straight_through"``: 1 where |x| <= 1 (the straight-through estimator, clipped:
      ``StepStraightThrough``);
    - ``"sigmoid"``: s(x) (1 - s(x)), the derivative of the sigmoid the step approximates
      (``StepSigmoid``).
    """

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return _no_gradient(grad)


class StepStraightThrough(Step):
    op = "step_straight_through"

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return where(abs(x) <= 1, grad, 0.0)


class StepSigmoid(Step):
    op = "step_sigmoid"

    @staticmethod
    def rule(grad: Tensor, x: Tensor) -> Tensor:
        return Sigmoid.rule(grad, x.sigmoid())  # the sigmoid's own derivative, at x


class Softmax(Function):
    """s_i = e^(x_i - max) / sum_j e^(x_j - max);  dL/dx = s * (g - sum(g * s))"""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = -1) -> np.ndarray:
        ctx.dim = dim
        if x.size == 0:  # nothing to normalise (and max() of nothing has no value)
            out = x.copy()
            ctx.save_for_backward(out)
            return out
        # the kernel works along the last axis (tn.compile's loops call it too): another axis
        # is moved there and back
        if x.ndim == 0:
            out = kernels.softmax_rows(x)
        else:
            out = np.ascontiguousarray(np.moveaxis(kernels.softmax_rows(np.moveaxis(x, dim, -1)),
                                                   -1, dim))
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


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(as_floating(x, "leaky_relu"),
                           negative_slope=_number(negative_slope, "leaky_relu", "negative_slope"))


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    return ELU.apply(as_floating(x, "elu"), alpha=_number(alpha, "elu", "alpha"))


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    min_val = _number(min_val, "hardtanh", "min_val")
    max_val = _number(max_val, "hardtanh", "max_val")
    if min_val > max_val:  # PyTorch's check
        raise ValueError("hardtanh: min_val cannot be greater than max_val "
                         f"(got min_val={min_val}, max_val={max_val})")
    return Hardtanh.apply(as_floating(x, "hardtanh"), min_val=min_val, max_val=max_val)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(as_floating(x, "softplus"), beta=_number(beta, "softplus", "beta"),
                          threshold=_number(threshold, "softplus", "threshold"))


def silu(x: Any) -> Tensor:
    return SiLU.apply(as_floating(x, "silu"))


def mish(x: Any) -> Tensor:
    return Mish.apply(as_floating(x, "mish"))


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """x Phi(x) (Phi the standard normal CDF); approximate='tanh' takes the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    cls = GELU if approximate == "none" else GELUTanh
    return cls.apply(as_floating(x, "gelu"))


def hardsigmoid(x: Any) -> Tensor:
    return Hardsigmoid.apply(as_floating(x, "hardsigmoid"))


def hardswish(x: Any) -> Tensor:
    return Hardswish.apply(as_floating(x, "hardswish"))


def selu(x: Any) -> Tensor:
    return SELU.apply(as_floating(x, "selu"))


def celu(x: Any, alpha: float = 1.0) -> Tensor:
    alpha = _number(alpha, "celu", "alpha")
    if alpha == 0:  # PyTorch's check (x / alpha)
        raise ValueError("celu: alpha must not be 0 (the negative part is alpha (e^(x/alpha) "
                         "- 1)); use relu for the limit")
    return CELU.apply(as_floating(x, "celu"), alpha=alpha)


def logsigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)), computed stably for any x."""
    return LogSigmoid.apply(as_floating(x, "logsigmoid"))


def threshold(x: Any, threshold: float, value: float) -> Tensor:
    """x where x > threshold, else value (PyTorch's threshold: both arguments required)."""
    return Threshold.apply(as_floating(x, "threshold"),
                           threshold=_number(threshold, "threshold", "threshold"),
                           value=_number(value, "threshold", "value"))


def erf(x: Any) -> Tensor:
    """The error function, elementwise; integer tensors give the default float dtype."""
    return Erf.apply(as_floating(x, "erf"))


def _number(value: Any, op: str, name: str) -> float:
    """A real-number argument (a Python or numpy number) as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


# tn.step's surrogate argument -> the op (each a row of the formula table)
STEP_SURROGATES = {None: Step, "straight_through": StepStraightThrough, "sigmoid": StepSigmoid}


def check_surrogate(surrogate: Any, op: str) -> None:
    """Refuse a surrogate ``tn.step`` does not know, naming ``op`` (the caller)."""
    if surrogate not in tuple(STEP_SURROGATES):  # (a tuple: an unhashable value is refused too)
        raise ValueError(
            f"{op}: surrogate must be None, 'straight_through' or 'sigmoid', got {surrogate!r}"
        )


def step(x: Any, surrogate: str | None = None) -> Tensor:
    """Heaviside step (1 where x >= 0); see ``Step`` for the zero derivative and surrogates."""
    check_surrogate(surrogate, "step")
    return STEP_SURROGATES[surrogate].apply(as_floating(x, "step"))


def softmax(x: Any, dim: int = -1, **aliases: Any) -> Tensor:
    """Softmax along ``dim`` (alias ``axis``), stable for large inputs."""
    x = as_floating(x, "softmax")
    d = normalize_dim(aliases.pop("axis", dim), x.ndim, "softmax")
    return Softmax.apply(x, dim=d if x.ndim else None)


def log_softmax(x: Any, dim: int = -1, **aliases: Any) -> Tensor:
    x = as_floating(x, "log_softmax")
    d = normalize_dim(aliases.pop("axis", dim), x.ndim, "log_softmax")
    return LogSoftmax.apply(x, dim=d if x.ndim else None)
