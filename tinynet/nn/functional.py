"""Functions behind the layers and losses: ``import tinynet.nn.functional as F``.

Losses take ``reduction='mean' | 'sum' | 'none'`` (the mean, the sum, or the loss of every
element) and accept targets as Tensors, numpy arrays or lists. Targets are checked before any
work: a wrong shape, a class index out of range, float targets for ``cross_entropy`` or
probabilities outside [0, 1] for ``binary_cross_entropy`` raise at once with a message that
says what to fix (PyTorch would broadcast a mismatched target silently, or fail later).
A floating target takes the input's dtype, so a float32 model trains in float32 even on
float64 numpy targets.

Each loss is a single graph node in the common case. The two binary cross-entropies are
defined here, forward and backward side by side, the derivative in each docstring; their
backward rules use only operators and functions that also run on Tensors, so second
derivatives work. ``mse_loss`` and ``cross_entropy`` check their targets here and then call
the fused ops ``tinynet.ops.mse_loss`` and ``tinynet.ops.softmax_cross_entropy``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tinynet import dtypes, kernels, ops
from tinynet.autograd import Function, is_grad_enabled
from tinynet.errors import DTypeError, ShapeError
from tinynet.nn.dropout import dropout  # noqa: F401 - F.dropout (written beside nn.Dropout)
from tinynet.nn.errors import ClassIndexError, ValueRangeError
from tinynet.tensor import Tensor, is_literal, made_from_literals, value_reads

# ---------------------------------------------------------------------------------------------
# Layers and activations
# ---------------------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b; x (..., in), W (out, in), b (out,) -> y (..., out)."""
    return ops.linear(input, weight, bias)


def sigmoid(input: Tensor) -> Tensor:
    return ops.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return ops.tanh(input)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, "relu", ops.relu)


def step(input: Tensor, surrogate: str | None = None) -> Tensor:
    """Heaviside step, 1 where x >= 0; see ``tinynet.nn.Step`` for ``surrogate``."""
    return ops.step(input, surrogate)


def softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """softmax along ``dim`` (pass it; without it PyTorch's legacy choice applies, with a
    warning). ``dtype`` casts the input first."""
    if dtype is not None:
        input = ops.cast(input, dtype)
    return ops.softmax(input, implicit_dim(dim, input.ndim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably as x - max - log(sum(e^(x - max)))."""
    if dtype is not None:
        input = ops.cast(input, dtype)
    return ops.log_softmax(input, implicit_dim(dim, input.ndim, "log_softmax"))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _maybe_inplace(input, inplace, "leaky_relu",
                          lambda x: ops.leaky_relu(x, negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return _maybe_inplace(input, inplace, "elu", lambda x: ops.elu(x, alpha))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    return _maybe_inplace(input, inplace, "hardtanh",
                          lambda x: ops.hardtanh(x, min_val, max_val))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    return ops.softplus(input, beta, threshold)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return _maybe_inplace(input, inplace, "silu", ops.silu)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _maybe_inplace(input, inplace, "mish", ops.mish)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return ops.gelu(input, approximate)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6), as PyTorch defines it."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return _maybe_inplace(input, inplace, "hardsigmoid", ops.hardsigmoid)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return _maybe_inplace(input, inplace, "hardswish", ops.hardswish)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * (x where x > 0, else alpha * (exp(x) - 1)), alpha ~ 1.6733, scale ~ 1.0507."""
    return _maybe_inplace(input, inplace, "selu", ops.selu)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    return _maybe_inplace(input, inplace, "celu", lambda x: ops.celu(x, alpha))


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), stable for any x."""
    return ops.logsigmoid(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _maybe_inplace(input, inplace, "threshold",
                          lambda x: ops.threshold(x, threshold, value))


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|), written with ops (as PyTorch does): its gradient is theirs."""
    return input / (1 + ops.abs(input))


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x), written with ops (as PyTorch does)."""
    return input - ops.tanh(input)


def _maybe_inplace(input: Tensor, inplace: bool, op: str, fn: Any) -> Tensor:
    """fn(input), or with inplace=True its values written into input (returned): in a graph
    the op is recorded as ``+=`` is (ops/inplace.py), so gradients stay right."""
    if not inplace:
        return fn(input)
    if input._requires_grad and is_grad_enabled():
        return ops.recorded_inplace(input, f"{op}_", lambda old, _: fn(old), None)
    result = fn(input)
    return ops.inplace(input, f"{op}_", lambda data: np.copyto(data, result.data,
                                                               casting="same_kind"))


def implicit_dim(dim: Any, ndim: int, name: str) -> int:
    """PyTorch's legacy rule when softmax gets no ``dim``: 0 for 0-, 1- and 3-d inputs, else 1,
    with the same deprecation warning. Pass ``dim`` explicitly."""
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {name.lower()} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


# ---------------------------------------------------------------------------------------------
# Checking arguments
# ---------------------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueRangeError(
            f"{op}: {reduction!r} is not a valid value for reduction; use 'mean', 'sum' or "
            "'none'"
        )


def _float_input(input: Any, op: str) -> Tensor:
    if not isinstance(input, Tensor):
        input = Tensor._make(dtypes.as_array(input, op=op))
    if input.data.dtype.kind != "f":
        raise DTypeError(
            f"{op}: input must be a floating point tensor (the model's output), got "
            f"{input.data.dtype}"
        )
    return input


def _float_target(target: Any, input: Tensor, op: str) -> Any:
    """A target for an element-wise loss: same shape as the input, in the input's dtype.
    A Tensor that requires grad stays a Tensor (the loss is differentiable in it too)."""
    if isinstance(target, Tensor):
        if target.requires_grad or (target.data.dtype != input.data.dtype
                                    and target.data.dtype.kind in "biuf"):
            t = ops.cast(target, input.data.dtype)  # an op: tn.compile converts each call's
            array = t.data
        else:
            t = array = target.data
    else:
        t = array = dtypes.as_array(target, copy=False, op=op)
    if array.shape != input.data.shape:
        hint = ""
        if array.size == input.data.size:
            hint = f"; reshape it, e.g. target.reshape{tuple(input.data.shape)}"
        raise ShapeError(
            f"{op}: target shape {tuple(array.shape)} differs from input shape "
            f"{tuple(input.data.shape)}; they must be equal (broadcasting them would compute "
            f"the wrong loss){hint}"
        )
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"{op}: target must hold numbers, got dtype {array.dtype}")
    if array.dtype != input.data.dtype and not isinstance(t, Tensor):
        t = array.astype(input.data.dtype)
    return t


def _class_target(
    target: Any, input: Tensor, ignore_index: int, op: str
) -> tuple[np.ndarray, bool]:
    """Class indices for (C,), (N, C) or (N, C, d1, ...) scores: int64 of shape (), (N,) or
    (N, d1, ...), each in 0..C-1 or equal to ``ignore_index``. Returns the indices and whether
    any of them is ``ignore_index``."""
    array = _data(target, op)
    if is_literal(target):  # a list of numbers: a constant (tn.compile)
        made_from_literals(array)
    if array.dtype.kind not in "iu":
        kind = "floating point" if array.dtype.kind == "f" else str(array.dtype)
        raise DTypeError(
            f"{op}: target must hold integer class indices (int64), got {kind} values of "
            f"dtype {array.dtype}. If these are class indices stored as floats, convert them "
            "with target.long() (numpy: target.astype(np.int64)); class-probability targets "
            "(cross_entropy only) have the input's shape"
        )
    shape = input.data.shape
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dimension, got a 0-d tensor")
    expected = () if input.ndim == 1 else shape[:1] + shape[2:]
    if array.shape != expected:
        layout = ("(C,) scores take a () target" if input.ndim == 1 else
                  "(N, C) scores take an (N,) target" if input.ndim == 2 else
                  "(N, C, d1, ...) scores take an (N, d1, ...) target")
        raise ShapeError(
            f"{op}: input of shape {tuple(shape)} needs a target of shape {expected}, got "
            f"{tuple(array.shape)} ({layout}: one class index per sample)"
        )
    classes = shape[0] if input.ndim == 1 else shape[1]
    if array.dtype != np.int64:  # through ops, so tn.compile's replay converts the new target
        array = ops.cast(Tensor._make(array), dtypes.int64).data
    if not array.flags.c_contiguous:
        array = ops.clone(Tensor._make(array)).data
    array = np.asarray(array, dtype=np.int64, order="C")  # (ascontiguousarray makes 0-d 1-d)
    if array.size == 0:
        return array, False
    # The loss masks ignored targets (a recorded comparison, recomputed from each call's
    # targets under tn.compile) whenever a target may equal ignore_index: always when it is
    # a class (0..C-1), whatever this batch holds, so the choice never depends on the values
    # of the targets; when it is outside the classes (the default -100), once some target
    # holds it (a compiled step traced on such a batch masks at every replay).
    masked = 0 <= ignore_index < classes
    low, high = array.min(), array.max()  # (the check of the values, not a choice)
    if low >= 0 and high < classes:
        return array, masked
    ignored_mask = array == ignore_index
    bad = ~ignored_mask & ((array < 0) | (array >= classes))
    if bad.any():
        value = int(array[bad].flat[0])
        raise ClassIndexError(
            f"{op}: target {value} is out of bounds: with {classes} classes, class indices "
            f"must be in 0..{classes - 1} (or equal ignore_index={ignore_index})"
        )
    return array, bool(ignored_mask.any())


def _data(value: Any, op: str) -> np.ndarray:
    """A tensor's array, or user data as an array (ragged lists, strings: DTypeError)."""
    return value.data if isinstance(value, Tensor) else dtypes.as_array(value, copy=False, op=op)


def _reduce(losses: Any, reduction: str) -> Any:
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if losses.size == 0:  # the mean of nothing is nan, as in PyTorch (not a 0/0 warning)
        return losses.dtype.type(np.nan)
    return total / losses.dtype.type(losses.size)


def _scale(reduction: str, size: int) -> float:
    """d(reduced)/d(element): 1/n for a mean, 1 otherwise (an empty input has an empty
    gradient, so any factor will do there)."""
    return 1.0 / size if reduction == "mean" and size else 1.0


# ---------------------------------------------------------------------------------------------
# Mean squared error
# ---------------------------------------------------------------------------------------------


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: reduce((x - t)^2). ``target`` must have the input's shape."""
    _check_reduction(reduction, "mse_loss")
    input = _float_input(input, "mse_loss")
    target = _float_target(target, input, "mse_loss")
    return ops.mse_loss(input, target, reduction)  # one fused node: tinynet.ops.fused


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy on probabilities
# ---------------------------------------------------------------------------------------------

# PyTorch clamps each log at -100, so a probability of exactly 0 or 1 gives a large but finite
# loss, and divides the gradient by max(x (1 - x), 1e-12) for the same reason. Its 1e-12 is a
# C float constant, 1e-12 rounded to float32 (9.99999996e-13); so is ours, for equal numbers.
_LOG_FLOOR = -100
_BCE_EPSILON = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """l_i = -w_i [t_i log(x_i) + (1 - t_i) log(1 - x_i)]   (each log clamped at -100)

    dl_i/dx_i = w_i (x_i - t_i) / max(x_i (1 - x_i), 1e-12)
    dl_i/dt_i = w_i (log(1 - x_i) - log(x_i))
    """

    op = "binary_cross_entropy"

    @staticmethod
    def forward(ctx: Function, x: Any, t: Any, w: Any = None, reduction: str = "mean") -> Any:
        ctx.scale = _scale(reduction, x.size)
        ctx.save_for_backward(x, t)
        ctx.weight = w  # a constant: kept on ctx, not saved as a differentiable input
        with np.errstate(divide="ignore", under="ignore"):  # log(0) = -inf, then clamped
            log_x = np.maximum(np.log(x), _LOG_FLOOR)
            log_1mx = np.maximum(np.log1p(-x), _LOG_FLOOR)
            losses = (t - 1) * log_1mx - t * log_x
        if w is not None:
            losses = losses * w
        return np.asarray(_reduce(losses, reduction))

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any, None]:
        x, t = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad[:2]
        g = grad * ctx.scale
        if ctx.weight is not None:
            g = g * ctx.weight
        grad_x = grad_t = None
        with np.errstate(divide="ignore", under="ignore"):  # log(0); tiny products round to 0
            if need_x:
                grad_x = _bce_input_grad(g, x, t)
            if need_t:
                grad_t = g * ((1 - x).log() - x.log())
        return grad_x, grad_t, None


def _bce_input_grad(g: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """g (x - t) / max(x (1 - x), 1e-12). float16 cannot hold 1e-12 (0/0 = nan where x = t = 0),
    so float16 is computed in float32, as PyTorch does, then clipped to float16's finite range
    (where PyTorch's float16 overflows to inf, at probabilities of exactly 0 or 1)."""
    if x.dtype != np.float16:
        return g * (x - t) / ops.maximum((1 - x) * x, _BCE_EPSILON)
    limit = float(np.finfo(np.float16).max)
    return _bce_input_grad(g.float(), x.float(), t.float()).clamp(-limit, limit).half()


def _probabilities(values: Any, what: str, op: str) -> None:
    array = values.data if isinstance(values, Tensor) else values
    if array.size and not (array.min() >= 0 and array.max() <= 1):  # NaN fails too
        raise ValueRangeError(
            f"{op}: all elements of {what} should be between 0 and 1 (found values in "
            f"[{array.min()}, {array.max()}]). Pass probabilities, e.g. the output of a "
            "sigmoid, or use binary_cross_entropy_with_logits on the raw scores"
        )


def _weight_array(weight: Any, input: Tensor, op: str, name: str = "weight") -> Any:
    """A rescaling weight as a constant array of the input's dtype, broadcastable to it
    (without making the result larger than the input, which would change what the loss
    averages over: PyTorch refuses that too)."""
    if weight is None:
        return None
    array = _data(weight, op)
    try:
        fits = np.broadcast_shapes(array.shape, input.data.shape) == input.data.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"{op}: {name} of shape {tuple(array.shape)} cannot be broadcast to the input's "
            f"shape {tuple(input.data.shape)}"
        )
    if isinstance(weight, Tensor):  # through an op, so tn.compile reads it at every replay
        return ops.cast(weight.detach(), input.data.dtype)
    literal = is_literal(weight)
    array = array.astype(input.data.dtype, copy=False)
    return made_from_literals(array) if literal else array


def binary_cross_entropy(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """-[t log(x) + (1 - t) log(1 - x)] for probabilities x and targets t in [0, 1].

    Each log is clamped at -100, as in PyTorch. ``weight`` rescales each element's loss.
    For raw scores (logits) use ``binary_cross_entropy_with_logits``: it is more stable.
    """
    op = "binary_cross_entropy"
    _check_reduction(reduction, op)
    input = _float_input(input, op)
    target = _float_target(target, input, op)
    _probabilities(input, "input", op)
    _probabilities(target, "target", op)
    w = _weight_array(weight, input, op)
    return BinaryCrossEntropy.apply(input, target, w, reduction=reduction)


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy on logits
# ---------------------------------------------------------------------------------------------


def _log_sigmoid(x: Any) -> Any:
    """log s(x) on arrays (forward): the formula table's logsigmoid row, stable for any x."""
    return kernels.elementwise_forward("logsigmoid", np.asarray(x))


def _log_sigmoid_tensor(x: Tensor) -> Tensor:
    """The same, differentiable (backward): the logsigmoid op."""
    return ops.logsigmoid(x)


class BinaryCrossEntropyWithLogits(Function):
    """With s = sigmoid(x) and a = 1 + (p - 1) t  (p = pos_weight, 1 if not given):

    l_i = w_i [(1 - t_i) x_i - a_i log s(x_i)]         (= -w [t log s + (1 - t) log(1 - s)])
    dl_i/dx_i = w_i [a_i s(x_i) - p t_i]               (= w (s - t) without pos_weight)
    dl_i/dt_i = w_i [-x_i - (p - 1) log s(x_i)] = w_i [log s(-x_i) - p log s(x_i)]
    """

    op = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(
        ctx: Function, x: Any, t: Any, w: Any = None, pos_weight: Any = None,
        reduction: str = "mean",
    ) -> Any:
        ctx.scale = _scale(reduction, x.size)
        ctx.save_for_backward(x, t)
        ctx.weight, ctx.pos_weight = w, pos_weight  # constants, kept on ctx
        with np.errstate(under="ignore"):  # tiny losses of confident logits may round to 0
            log_s = _log_sigmoid(x)
            if pos_weight is not None:
                log_s = log_s * ((pos_weight - 1) * t + 1)
            losses = (1 - t) * x - log_s
            if w is not None:
                losses = losses * w
            return np.asarray(_reduce(losses, reduction))

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any, None, None]:
        x, t = ctx.saved_tensors
        w, pos_weight = ctx.weight, ctx.pos_weight
        need_x, need_t = ctx.needs_input_grad[:2]
        g = grad * ctx.scale
        if w is not None:
            g = g * w
        grad_x = grad_t = None
        with np.errstate(under="ignore"):  # as in forward: tiny terms may round to 0
            if need_x:
                s = x.sigmoid()
                if pos_weight is None:
                    grad_x = g * (s - t)
                else:
                    pt = pos_weight * t
                    grad_x = g * ((pt + 1 - t) * s - pt)
            if need_t:
                if pos_weight is None:
                    grad_t = g * -x
                else:  # = -x - (p - 1) log s(x), written without inf - inf at x = -inf
                    grad_t = g * (_log_sigmoid_tensor(-x) - pos_weight * _log_sigmoid_tensor(x))
        return grad_x, grad_t, None, None


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy of sigmoid(x) against t, computed from the logits x directly in
    the log-sigmoid form (1 - t) x - log s(x), which never overflows or takes log(0).

    ``weight`` rescales each element's loss; ``pos_weight`` (broadcast along the last
    dimension, one value per class) weighs the positive term t log s(x).
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, op)
    input = _float_input(input, op)
    target = _float_target(target, input, op)
    w = _weight_array(weight, input, op)
    p = _weight_array(pos_weight, input, op, "pos_weight")
    return BinaryCrossEntropyWithLogits.apply(input, target, w, p, reduction=reduction)


# ---------------------------------------------------------------------------------------------
# Cross-entropy and negative log-likelihood over classes
# ---------------------------------------------------------------------------------------------


def _rows(input: Tensor, target: np.ndarray) -> tuple[Tensor, np.ndarray]:
    """(C,) / (N, C) / (N, C, d1, ...) scores as (M, C) rows, targets as (M,)."""
    if input.ndim == 1:  # (reshapes through ops: tn.compile reshapes each call's target)
        return input.reshape(1, -1), Tensor._make(target).reshape(1).data
    if input.ndim == 2:
        return input, target
    classes = input.shape[1]
    order = (0, *range(2, input.ndim), 1)  # move the class dim last, then fold the rest
    return input.permute(order).reshape(-1, classes), Tensor._make(target).reshape(-1).data


def _class_weight(weight: Any, input: Tensor, op: str) -> np.ndarray | None:
    if weight is None:
        return None
    array = _data(weight, op)
    classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    if array.shape != (classes,):
        raise ShapeError(
            f"{op}: weight must have one entry per class, shape ({classes},), got "
            f"{tuple(array.shape)}"
        )
    if isinstance(weight, Tensor):  # through an op, so tn.compile reads it at every replay
        return ops.cast(weight.detach(), input.data.dtype).data
    literal = is_literal(weight)
    array = array.astype(input.data.dtype, copy=False)
    return made_from_literals(array) if literal else array


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of class scores (logits) against integer class indices:

        l_i = -w[t_i] log softmax(x_i)[t_i] = w[t_i] (logsumexp(x_i) - x_i[t_i])

    Shapes: input (N, C) with target (N,); also (C,) with () and (N, C, d1, ...) with
    (N, d1, ...). ``weight`` (C,) weighs each class; targets equal to ``ignore_index`` add
    nothing; the mean divides by the summed weights of the counted targets, as in PyTorch.
    The common case, (N, C) without weight, runs as one fused node (ignored targets too).
    """
    op = "cross_entropy"
    _check_reduction(reduction, op)
    input = _float_input(input, op)
    if label_smoothing != 0.0 or _probability_target(target, input):
        return _smoothed_cross_entropy(input, target, weight, ignore_index, reduction,
                                       label_smoothing)
    target, ignored = _class_target(target, input, ignore_index, op)
    if input.ndim == 2 and weight is None and target.size:  # ignored targets too (in the op)
        return ops.softmax_cross_entropy(input, target, reduction, ignore_index)
    return _nll(ops.log_softmax(input, dim=0 if input.ndim == 1 else 1), target,
                _class_weight(weight, input, op), ignore_index, reduction, ignored)


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood: l_i = -w[t_i] x_i[t_i], for log-probabilities x (the output
    of ``log_softmax``); shapes, ``weight`` and ``ignore_index`` as in ``cross_entropy``."""
    op = "nll_loss"
    _check_reduction(reduction, op)
    input = _float_input(input, op)
    target, ignored = _class_target(target, input, ignore_index, op)
    return _nll(input, target, _class_weight(weight, input, op), ignore_index, reduction,
                ignored)


def _nll(
    input: Tensor, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
    reduction: str, ignored: bool,
) -> Tensor:
    """-w[t_i] x_i[t_i] per sample, reduced; x are log-probabilities."""
    rows, flat_target = _rows(input, target)
    dtype = input.data.dtype
    ignored = _masked_when_traced(ignored)
    keep, safe_target = _kept(flat_target, ignore_index, dtype) if ignored else (
        None, flat_target)
    positions = made_from_literals(np.arange(len(safe_target)))  # a constant: 0..n-1
    picked = rows[positions, safe_target]  # x_i[t_i], differentiable
    if keep is not None:  # an ignored row adds 0, even if its scores are -inf or nan
        picked = ops.where(keep != 0, picked, 0.0)
    # weights through ops (recorded by tn.compile); without weights, no array of ones
    w = Tensor._make(weight)[safe_target] if weight is not None else None
    if keep is not None:
        w = w * keep if w is not None else keep
    losses = -(picked * w) if w is not None else -picked
    if reduction == "none":
        return losses.reshape(target.shape)
    if reduction == "sum":
        return losses.sum()
    if not len(safe_target):  # no target at all: 0/0 = nan, as in PyTorch
        return losses.sum() + dtype.type(np.nan)
    # The mean divides by the total weight of the counted samples.
    if w is None:
        return losses.sum() / dtype.type(len(safe_target))
    return losses.sum() / _counted(w.sum())


def _masked_when_traced(ignored: bool) -> bool:
    """While tn.compile traces, a later call's targets may hold ignore_index even when this
    batch has none: the loss masks them anyway (the same numbers when none is ignored), so
    every replay is right. (The fused (N, C) cross_entropy masks in its kernels: a replayed
    target equal to ignore_index adds nothing, any other outside 0..C-1 stops at its bounds
    check.)"""
    return ignored or value_reads.refuse is not None


def _kept(targets: np.ndarray, ignore_index: int, dtype: np.dtype
          ) -> tuple[Tensor, np.ndarray]:
    """(1 for a counted target and 0 for an ignored one, in the scores' dtype; the targets
    with 0 for the ignored ones, safe to index with), both computed by recorded ops, so
    tn.compile recomputes them from each call's targets."""
    target = Tensor._make(targets)
    counted = target != ignore_index
    return counted.to(dtype), ops.where(counted, target, 0).data


def _counted(total: Tensor) -> Tensor:
    """The mean's divisor, the total weight of the counted targets, with NaN for none: every
    target ignored gives a NaN mean, as in PyTorch, but no gradient (0, not the NaN of
    d(0/0)), so one all-padding batch does not poison the weights (ops, not a branch on the
    values: tn.compile replays it)."""
    return ops.where(total != 0, total, total.dtype.type(np.nan))


# ---- convolution, pooling and normalization (forward and backward in tinynet/ops/conv.py and
# tinynet/ops/normalization.py; re-exported here under PyTorch's names) ---------------------

from tinynet.ops.conv import (  # noqa: E402, F401 - appended re-exports
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    dropout2d,
    fold,
    max_pool2d,
    unfold,
)
from tinynet.ops.normalization import batch_norm, layer_norm  # noqa: E402, F401

# Issue 21: group and RMS normalization (tinynet/ops/normalization.py).
group_norm, rms_norm = ops.normalization.group_norm, ops.normalization.rms_norm
# ... and 1-D convolution and interpolation (tinynet/ops/resample.py).
from tinynet.ops.resample import conv1d, interpolate  # noqa: E402, F401

# ---- cross_entropy with class probabilities or label smoothing (issue 21) --------------------


def _probability_target(target: Any, input: Tensor) -> bool:
    """PyTorch's rule: a floating target is a class probability per input element."""
    array = _data(target, "cross_entropy")
    return array.dtype.kind == "f" and array.shape == input.data.shape


def _smoothed_cross_entropy(input: Tensor, target: Any, weight: Any, ignore_index: int,
                            reduction: str, label_smoothing: float) -> Tensor:
    """Cross-entropy against class probabilities p (a target of input's shape), or against
    class indices with label smoothing eps, as ``torch.nn.functional.cross_entropy``:

        probabilities:  l_i = -sum_c w_c q_ic log softmax(x_i)_c,  q = (1 - eps) p + eps / C;
                        the mean divides by the number of samples
        indices:        l = (1 - eps) nll(x, t) + eps / C * sum_c -w_c log softmax(x_i)_c,
                        ignored targets adding nothing; the mean of both terms divides by the
                        summed weights of the counted targets
    """
    op = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueRangeError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dimension, got a 0-d tensor")
    class_dim = 0 if input.ndim == 1 else 1
    classes = input.shape[class_dim]
    w = _class_weight(weight, input, op)
    log_p = ops.log_softmax(input, dim=class_dim)
    if w is not None:
        log_p = log_p * w.reshape((classes,) + (1,) * (input.ndim - class_dim - 1))
    if _probability_target(target, input):
        q = _float_target(target, input, op)
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + label_smoothing / classes
        losses = -(log_p * q).sum(class_dim)
        if reduction == "none":
            return losses
        total = losses.sum()
        return total if reduction == "sum" else total / input.dtype.type(
            max(input.data.size // classes, 1) if input.data.size else 0)
    indices, ignored = _class_target(target, input, ignore_index, op)
    nll = _nll(log_p if w is None else ops.log_softmax(input, dim=class_dim), indices, w,
               ignore_index, reduction, ignored)
    smooth = -log_p.sum(class_dim)
    if _masked_when_traced(ignored) and indices.size:  # recorded ops (recomputed at replay)
        keep, safe = _kept(indices, ignore_index, input.data.dtype)
    else:
        keep, safe = None, indices
    if keep is not None:
        smooth = ops.where(keep != 0, smooth, 0.0)
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        weights = Tensor._make(w)[safe] if w is not None else None
        if keep is not None:
            weights = weights * keep if weights is not None else keep
        if weights is not None:
            smooth = smooth.sum() / _counted(weights.sum())
        else:
            smooth = smooth.sum() / input.dtype.type(indices.size)
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / classes)

from tinynet.ops.sequence import embedding, one_hot, pad  # noqa: E402, F401 - issue 22

# isort: split
from tinynet.nn.attention import scaled_dot_product_attention  # noqa: E402, F401

# ---- losses and functions written with existing ops (issue 21) -------------------------------

_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def _pointwise(op: str, input: Any, target: Any) -> tuple[Tensor, Any]:
    input = _float_input(input, op)
    return input, _float_target(target, input, op)


def _reduced(losses: Tensor, reduction: str, op: str) -> Tensor:
    _check_reduction(reduction, op)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error: reduce(|x - t|); target of the input's shape."""
    input, target = _pointwise("l1_loss", input, target)
    return _reduced((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where d = |x - t| < beta, d - 0.5 beta elsewhere; beta = 0 is l1."""
    if beta < 0:
        raise ValueRangeError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    input, target = _pointwise("smooth_l1_loss", input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduced(d, reduction, "smooth_l1_loss")
    losses = ops.where(d.data < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduced(losses, reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Any, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """0.5 d^2 where d = |x - t| < delta, delta (d - 0.5 delta) elsewhere (delta > 0)."""
    if not delta > 0:
        raise ValueRangeError(f"huber_loss: delta must be positive, got {delta}")
    input, target = _pointwise("huber_loss", input, target)
    d = (input - target).abs()
    losses = ops.where(d.data < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduced(losses, reduction, "huber_loss")


def kl_div(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || p) with ``input`` = log p (log-probabilities, e.g. log_softmax):
    t (log t - x) summed as ``reduction`` says ('batchmean': divided by the batch size, the
    KL divergence itself; 'mean', PyTorch's default, divides by the number of elements)."""
    if size_average is not None or reduce is not None:
        raise ValueRangeError("kl_div: size_average and reduce are deprecated in PyTorch and "
                              "not supported; use reduction=")
    if reduction not in _KL_REDUCTIONS:
        raise ValueRangeError(f"kl_div: {reduction!r} is not a valid value for reduction; use "
                              "'batchmean', 'sum', 'mean' or 'none'")
    input, target = _pointwise("kl_div", input, target)
    t = target if isinstance(target, Tensor) else Tensor._make(target)
    if log_target:
        losses = t.exp() * (t - input)
    else:
        positive = t.data != 0
        safe = ops.where(positive, t, 1.0)  # log(0) never computed: 0 log 0 is 0
        losses = ops.where(positive, t * safe.log(), 0.0) - t * input
    if reduction == "batchmean":
        batch = input.shape[0] if input.ndim else 1
        return losses.sum() / batch
    return _reduced(losses, reduction, "kl_div")


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Any = None) -> Tensor:
    """x / max(||x||_p over dim, eps): unit vectors along ``dim``."""
    if out is not None:
        raise ValueRangeError("normalize: out= is not supported; use the returned tensor")
    norm = ops.norm(input, p, dim=dim, keepdim=True)
    return input / norm.clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 x2) / (max(||x1||, eps) max(||x2||, eps)) along ``dim`` (x1, x2 broadcast)."""
    n1 = ops.norm(x1, 2, dim=dim, keepdim=True).clamp(min=eps)
    n2 = ops.norm(x2, 2, dim=dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim=dim)
