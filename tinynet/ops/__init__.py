"""Differentiable operations, by family. Each module keeps every op's forward and backward
side by side; this package re-exports the functions users and ``Tensor`` call."""

from tinynet.ops.activation import (
    activation_grad,
    elu,
    erf,
    gelu,
    hardtanh,
    leaky_relu,
    log_softmax,
    mish,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
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
    cos,
    div,
    exp,
    log,
    logical_not,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sin,
    sqrt,
    sub,
    where,
)
from tinynet.ops.fused import linear, mse_loss, softmax_cross_entropy
from tinynet.ops.inplace import (
    inplace,
    inplace_arithmetic,
    inplace_operand,
    recorded_inplace,
    setitem_,
)
from tinynet.ops.linalg import einsum, matmul, mm
from tinynet.ops.operands import normalize_dim
from tinynet.ops.reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    norm,
    std,
    sum,
    var,
)
from tinynet.ops.select import chunk, gather, masked_fill, sort, split, topk
from tinynet.ops.shape import (
    broadcast_to,
    cat,
    concatenate,
    expand,
    flatten,
    getitem,
    permute,
    reshape,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
    view,
)
from tinynet.ops.ufuncs import array_ufunc

__all__ = [
    "abs", "activation_grad", "add", "argmax", "argmin", "broadcast_to", "cast", "cat", "clamp",
    "clip", "clone", "compare", "concatenate", "div", "exp", "expand", "flatten", "getitem",
    "inplace", "inplace_arithmetic", "inplace_operand", "linear", "log", "log_softmax",
    "logical_not", "matmul", "max", "maximum", "mean",
    "min", "minimum", "mse_loss", "mul", "neg", "normalize_dim", "permute", "pow", "relu",
    "reshape", "setitem_", "sigmoid", "softmax", "softmax_cross_entropy", "sqrt", "squeeze",
    "stack", "step", "sub", "sum", "swapaxes", "tanh", "transpose", "unsqueeze", "view", "where",
    # PyTorch parity (issue 11)
    "all", "amax", "amin", "any", "array_ufunc", "chunk", "cos", "einsum", "gather",
    "logsumexp", "masked_fill", "mm", "norm", "sin", "sort", "split", "std", "topk", "var",
]
# the formula table's activations (issue 18)
__all__ += ["elu", "erf", "gelu", "hardtanh", "leaky_relu", "mish", "recorded_inplace", "silu",
            "softplus"]
