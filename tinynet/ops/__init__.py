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

# Issue 21: ops a PyTorch script reaches for (new families in their own modules).
from tinynet.ops.pointwise import (  # noqa: E402
    addcdiv,
    addcmul,
    ceil,
    divide,
    expm1,
    fix,
    floor,
    floor_divide,
    frac,
    isfinite,
    isinf,
    isnan,
    lerp,
    log1p,
    nan_to_num,
    remainder,
    round,
    rsqrt,
    sign,
    true_divide,
    trunc,
)
from tinynet.ops.products import cumprod, prod  # noqa: E402
from tinynet.ops.query import (  # noqa: E402
    allclose,
    argsort,
    argwhere,
    bincount,
    clamp_max,
    clamp_min,
    equal,
    is_floating_point,
    is_tensor,
    isclose,
    nonzero,
    numel,
    std_mean,
    unique,
    var_mean,
)
from tinynet.ops.rearrange import flip, fliplr, flipud, ger, outer, roll, unbind, unflatten  # noqa: E402
from tinynet.ops.sampling import (  # noqa: E402
    bernoulli,
    bernoulli_,
    empty_like,
    normal,
    normal_,
    uniform_,
)
from tinynet.ops.scatter import (  # noqa: E402
    index_add,
    index_select,
    masked_select,
    scatter,
    scatter_add,
    take_along_dim,
)

__all__ += [
    "addcdiv", "addcmul", "allclose", "argsort", "argwhere", "bernoulli", "bernoulli_",
    "bincount", "ceil", "lerp",
    "clamp_max", "clamp_min", "cumprod", "divide", "empty_like", "equal", "erf", "expm1", "fix",
    "flip", "fliplr", "flipud", "floor", "floor_divide", "frac", "ger", "index_add",
    "index_select", "is_floating_point", "is_tensor", "isclose", "isfinite", "isinf", "isnan",
    "log1p", "masked_select", "nan_to_num", "nonzero", "normal", "normal_", "numel", "outer",
    "prod", "remainder", "roll", "round", "rsqrt", "scatter", "scatter_add", "sign",
    "std_mean", "take_along_dim", "true_divide", "trunc", "unbind", "unflatten", "uniform_",
    "unique", "var_mean",
]

# Sequence models (issue 22): causal masks, running sums, tiling, padding, lookups, sampling.
from tinynet.ops.sequence import (  # noqa: E402
    bmm,
    cumsum,
    embedding,
    multinomial,
    one_hot,
    pad,
    repeat,
    tril,
    triu,
)

__all__ += ["bmm", "cumsum", "embedding", "multinomial", "one_hot", "pad", "repeat", "tril",
            "triu"]

# the formula table's activations (issue 18)
__all__ += ["elu", "erf", "gelu", "hardtanh", "leaky_relu", "mish", "recorded_inplace", "silu",
            "softplus"]

# Issue 21's remaining names: base-10 and base-2 logarithms (rows of the formula table)
from tinynet.ops.elementwise import log2, log10  # noqa: E402

__all__ += ["log10", "log2"]
from tinynet.ops.rearrange import diag, diag_embed, diagonal  # noqa: E402

__all__ += ["diag", "diag_embed", "diagonal"]

# masks combined: & | ^ and logical_and/or/xor (issue 21's script ports)
from tinynet.ops.logical import (  # noqa: E402
    bitwise_and,
    bitwise_or,
    bitwise_xor,
    logical_and,
    logical_or,
    logical_xor,
)

__all__ += ["bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or",
            "logical_xor"]

# more of the formula table's activations (issue 18): a row each, plus their Tensor rules
from tinynet.ops.activation import (  # noqa: E402
    celu,
    hardsigmoid,
    hardswish,
    logsigmoid,
    selu,
    threshold,
)

__all__ += ["celu", "hardsigmoid", "hardswish", "logsigmoid", "selu", "threshold"]
