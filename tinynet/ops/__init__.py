"""Differentiable operations, by family. Each module keeps every op's forward and backward
side by side; this package re-exports the functions users and ``Tensor`` call."""

from tinynet.ops.activation import (
    activation_grad,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    step,
    tanh,
)
from tinynet.ops.elementwise import (
    abs,
    add,
    cast,
    clamp,
    clip,
    clone,
    compare,
    div,
    exp,
    log,
    logical_not,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from tinynet.ops.fused import linear, mse_loss, softmax_cross_entropy
from tinynet.ops.linalg import matmul
from tinynet.ops.operands import normalize_dim
from tinynet.ops.reduce import argmax, argmin, max, mean, min, sum
from tinynet.ops.shape import (
    broadcast_to,
    cat,
    concatenate,
    expand,
    flatten,
    getitem,
    inplace,
    inplace_arithmetic,
    inplace_operand,
    permute,
    reshape,
    setitem_,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
    view,
)


def zeros_like(x: object) -> object:
    """A constant tensor of zeros shaped like ``x`` (used by backward rules via ``xp``)."""
    from tinynet.creation import zeros_like as _zeros_like

    return _zeros_like(x)


__all__ = [
    "abs", "activation_grad", "add", "argmax", "argmin", "broadcast_to", "cast", "cat", "clamp",
    "clip", "clone", "compare", "concatenate", "div", "exp", "expand", "flatten", "getitem",
    "inplace", "inplace_arithmetic", "inplace_operand", "linear", "log", "log_softmax",
    "logical_not", "matmul", "max", "maximum", "mean",
    "min", "minimum", "mse_loss", "mul", "neg", "normalize_dim", "permute", "pow", "relu",
    "reshape", "setitem_", "sigmoid", "softmax", "softmax_cross_entropy", "sqrt", "squeeze",
    "stack", "step", "sub", "sum", "swapaxes", "tanh", "transpose", "unsqueeze", "view", "where",
    "zeros_like",
]
