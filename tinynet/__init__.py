"""tinynet: a from-scratch tensor framework with reverse-mode autograd.

    import tinynet as tn
    x = tn.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([[2., 4.]])

Where to read: ``tensor.py`` (the Tensor), ``autograd/engine.py`` (the engine), ``ops/`` (each op's
forward and backward), ``kernels/`` (the fast loops), ``nn/`` and ``optim/`` (training).
"""

from tinynet import tensor as _tensor_module  # noqa: I001 - Tensor first: the rest builds on it
from tinynet.tensor import Tensor, device
from tinynet import autograd, ops

from tinynet.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tinynet.creation import (
    arange,
    as_tensor,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from tinynet.dtypes import (
    bool_,
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    uint8,
)
from tinynet.errors import (
    AnomalyError,
    DTypeError,
    DTypeMismatchError,
    FileFormatError,
    GradcheckError,
    GraphError,
    IndexShapeError,
    ShapeError,
    TinynetError,
    ValueRangeError,
)
from tinynet.gradcheck import gradcheck, gradgradcheck
from tinynet.ops import (
    abs,
    add,
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    broadcast_to,
    cat,
    chunk,
    clamp,
    clip,
    concatenate,
    cos,
    div,
    einsum,
    exp,
    expand,
    flatten,
    gather,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    neg,
    norm,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    step,
    sub,
    sum,
    swapaxes,
    tanh,
    topk,
    transpose,
    unsqueeze,
    var,
    where,
)
from tinynet.random import manual_seed, seed
from tinynet.random import Generator, initial_seed  # noqa: I001

# The one place where Tensor meets the modules built on it (see the end of tensor.py).
_tensor_module.ops, _tensor_module.autograd = ops, autograd

float = float32  # noqa: A001 - PyTorch's alias: tn.float is float32
bool = bool_  # noqa: A001 - PyTorch's aliases: tn.bool, tn.int (int32), tn.short (int16)
int = int32  # noqa: A001
short = int16

# Submodules load on first use (``tn.nn``, ``tn.optim``...), keeping ``import tinynet`` fast.
_SUBMODULES = {"nn", "optim", "data", "io", "viz", "perceptron", "kernels", "plotting"}
_SUBMODULES |= {"utils"}  # tinynet.utils.data, as torch.utils.data
_SUBMODULES |= {"cuda", "backends", "accelerator"}  # CPU-only answers (issue 21)
_SUBMODULES |= {"distributions"}  # tn.distributions.Categorical (issue 21)
_FROM_IO = {"save", "load"}


def __getattr__(name: str) -> object:
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"tinynet.{name}")
    if name in _FROM_IO:
        return getattr(importlib.import_module("tinynet.io"), name)
    raise AttributeError(f"module 'tinynet' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "AnomalyError", "DTypeError", "DTypeMismatchError", "FileFormatError", "GradcheckError",
    "GraphError", "IndexShapeError", "ShapeError", "Tensor", "TinynetError", "ValueRangeError",
    "abs", "add", "arange", "argmax", "argmin",
    "as_tensor", "autograd", "bool_", "broadcast_to", "cat", "clamp", "clip", "concatenate",
    "div", "double", "empty", "enable_grad", "exp", "expand", "eye", "flatten", "float",
    "float16", "float32", "float64", "from_numpy", "full", "full_like", "get_default_dtype",
    "gradcheck", "gradgradcheck", "half", "int8", "int16", "int32", "int64",
    "is_grad_enabled", "linspace", "log", "log_softmax", "long", "manual_seed", "matmul", "max",
    "maximum", "mean", "min", "minimum", "mul", "neg", "no_grad", "ones", "ones_like", "ops",
    "permute", "pow", "rand", "randint", "randn", "relu", "reshape", "seed", "set_default_dtype",
    "set_grad_enabled", "sigmoid", "softmax", "sqrt", "squeeze", "stack", "step", "sub", "sum",
    "swapaxes", "tanh", "tensor", "transpose", "uint8", "unsqueeze", "where", "zeros",
    "zeros_like",
    "all", "amax", "amin", "any", "chunk", "cos", "device", "einsum", "gather", "logsumexp",
    "masked_fill", "mm", "norm", "sin", "sort", "split", "std", "topk", "var",
]
__all__ += ["rand_like", "randn_like", "randperm"]

# tn.compile (issue 13): trace a step function once, replay it as generated code.
from tinynet.compile import compile  # noqa: E402, A004 - PyTorch's name
from tinynet.errors import CompileError  # noqa: E402

__all__ += ["CompileError", "compile"]

# torch.set_num_threads / get_num_threads: the threads tinynet's own loops may use (issue 20)
from tinynet.kernels import get_num_threads, set_num_threads  # noqa: E402

__all__ += ["get_num_threads", "set_num_threads"]

# Issue 21: ops and helpers PyTorch scripts use (tinynet/ops/pointwise, products, query,
# rearrange, sampling, scatter).
from tinynet.autograd import inference_mode  # noqa: E402
from tinynet.ops import (  # noqa: E402
    addcdiv,
    addcmul,
    allclose,
    argsort,
    argwhere,
    bernoulli,
    bincount,
    ceil,
    clamp_max,
    clamp_min,
    cumprod,
    divide,
    empty_like,
    equal,
    erf,
    expm1,
    fix,
    flip,
    fliplr,
    flipud,
    floor,
    floor_divide,
    frac,
    ger,
    index_add,
    index_select,
    is_floating_point,
    is_tensor,
    isclose,
    isfinite,
    isinf,
    isnan,
    lerp,
    log1p,
    masked_select,
    nan_to_num,
    nonzero,
    normal,
    numel,
    outer,
    prod,
    remainder,
    roll,
    round,
    rsqrt,
    scatter,
    scatter_add,
    sign,
    std_mean,
    take_along_dim,
    true_divide,
    trunc,
    unbind,
    unflatten,
    unique,
    var_mean,
)

__all__ += [
    "addcdiv", "addcmul", "lerp",
    "allclose", "argsort", "argwhere", "bernoulli", "bincount", "ceil", "clamp_max",
    "clamp_min", "cumprod", "divide", "empty_like", "equal", "erf", "expm1", "fix", "flip",
    "fliplr", "flipud", "floor", "floor_divide", "frac", "ger", "index_add", "index_select",
    "inference_mode", "is_floating_point", "is_tensor", "isclose", "isfinite", "isinf",
    "isnan", "log1p", "masked_select", "nan_to_num", "nonzero", "normal", "numel", "outer",
    "prod", "remainder", "roll", "round", "rsqrt", "scatter", "scatter_add", "sign",
    "std_mean", "take_along_dim", "true_divide", "trunc", "unbind", "unflatten", "unique",
    "var_mean",
]
div = divide  # noqa: F811 - torch.div(a, b, rounding_mode="floor"); without it, true division

# Sequence models (issue 22).
from tinynet.ops import bmm, cumsum, multinomial, tril, triu  # noqa: E402

__all__ += ["bmm", "cumsum", "multinomial", "tril", "triu"]

__all__ += ["Generator", "initial_seed"]  # not bool/int: a star import would shadow builtins

# Issue 21's remaining names
from tinynet.ops import log2, log10  # noqa: E402

__all__ += ["log10", "log2"]
from tinynet.ops import diag, diag_embed, diagonal  # noqa: E402

__all__ += ["diag", "diag_embed", "diagonal"]

# Masks combined (issue 21's script ports): (x > 0) & (x < 5), torch.logical_and(a, b).
from tinynet.ops import (  # noqa: E402
    bitwise_and,
    bitwise_or,
    bitwise_xor,
    logical_and,
    logical_or,
    logical_xor,
)
from tinynet.ops.logical import logical_not  # noqa: E402 - torch's: any dtype -> bool (not ~x)

__all__ += ["bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_not",
            "logical_or", "logical_xor"]
