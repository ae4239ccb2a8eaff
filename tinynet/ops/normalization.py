"""Batch normalization and layer normalization, written with Tensor ops.

Both standardise x, then scale and shift it::

    x_hat = (x - mean) / sqrt(var + eps),    y = weight * x_hat + bias

and differ only in which axes the mean and (biased) variance run over: batch norm over the
batch and every position, one statistic per channel (dim 1); layer norm over the last dims,
one statistic per sample. Written as a composition of differentiable ops, the gradient
(the long formula of Ioffe & Szegedy, where d/dx flows through x, the mean and the variance)
comes from the chain rule, and so does the second derivative.

Batch norm's running statistics follow PyTorch exactly: in training,
``running = (1 - momentum) * running + momentum * batch_stat``, where the running variance
takes the unbiased batch variance (divided by n - 1) while the normalisation uses the biased
one (divided by n); in evaluation the running statistics normalise.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tinynet.autograd import no_grad
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.conv import _integer, _real
from tinynet.ops.datadep import write_in_place
from tinynet.ops.operands import as_floating
from tinynet.tensor import Tensor


def _stat_shape(x: Tensor) -> tuple[int, ...]:
    """Where a per-channel vector broadcasts against x: (1, C, 1, ...)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _per_channel(value: Any, name: str, x: Tensor) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, Tensor):
        value = as_floating(value, "batch_norm")
    if value.shape != (x.shape[1],):
        raise ShapeError(
            f"batch_norm: {name} must have shape ({x.shape[1]},) for input {x.shape} "
            f"({x.shape[1]} channels), got {value.shape}"
        )
    if value.dtype != x.dtype:
        raise DTypeError(f"batch_norm: {name} is {value.dtype} but the input is {x.dtype}; "
                         "cast one of them")
    return value


def batch_norm(input: Any, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5, *,
               num_batches_tracked: Tensor | None = None) -> Tensor:
    """Normalise each channel (dim 1) of an (N, C) or (N, C, ...) input.

    training: batch statistics over every dim but 1 (biased variance), and the running
    statistics, if given, updated in place (unbiased variance). Otherwise: the running
    statistics. Then ``weight * x_hat + bias`` per channel, if given.

    ``num_batches_tracked`` (extra, for ``nn.BatchNorm*(momentum=None)``): with it, the update
    is the cumulative average, factor 1 / num_batches_tracked, read when the update runs.
    """
    x = as_floating(input, "batch_norm")
    if num_batches_tracked is None:
        momentum = _real(momentum, "momentum", "batch_norm")
    eps = _real(eps, "eps", "batch_norm", low=0.0)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input of 2 or more dims (N, C, ...), got "
                         f"shape {x.shape}")
    running_mean = _per_channel(running_mean, "running_mean", x)
    running_var = _per_channel(running_var, "running_var", x)
    weight, bias = _per_channel(weight, "weight", x), _per_channel(bias, "bias", x)
    shape = _stat_shape(x)
    if training:
        count = x.data.size // x.shape[1]
        if count <= 1:
            raise ValueRangeError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"size {x.shape}"
            )
        dims = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(dims, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dims, keepdim=True)  # biased: divides by n
        if running_mean is not None and running_var is not None:
            with no_grad():  # one recorded in-place op: tn.compile repeats it at every replay
                batch = [mean.detach().reshape(-1), var.detach().reshape(-1)]
                if num_batches_tracked is not None:
                    batch.append(num_batches_tracked)
                update = functools.partial(_update_running, momentum=momentum,
                                           correction=count / (count - 1))
                write_in_place(update, (0, 1), running_mean, running_var, *batch)
    else:
        if running_mean is None or running_var is None:
            raise ValueRangeError(
                "batch_norm: running_mean and running_var are needed when training=False"
            )
        centred = x - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    out = centred / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _update_running(running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray,
                    var: np.ndarray, batches: np.ndarray | None = None, *,
                    momentum: float | None, correction: float) -> None:
    """running = running (1 - m) + batch m, in place, with the unbiased variance (var times
    n / (n - 1)); m is 1 / batches (a cumulative average) when ``batches`` is given."""
    factor = 1.0 / float(batches) if batches is not None else momentum
    dt = running_mean.dtype.type
    unbiased = var * var.dtype.type(correction)
    running_mean[...] = running_mean * dt(1 - factor) + mean * mean.dtype.type(factor)
    running_var[...] = running_var * dt(1 - factor) + unbiased * unbiased.dtype.type(factor)


def count_batch(num_batches_tracked: Tensor) -> None:
    """num_batches_tracked += 1, as a recorded in-place op (tn.compile repeats it)."""
    write_in_place(_add_one, (0,), num_batches_tracked)


def _add_one(counter: np.ndarray) -> None:
    counter += 1


def layer_norm(input: Any, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims of each sample (biased
    variance), then ``weight * x_hat + bias`` elementwise (both of ``normalized_shape``)."""
    x = as_floating(input, "layer_norm")
    eps = _real(eps, "eps", "layer_norm", low=0.0)
    shape = tuple(normalized_shape) if isinstance(normalized_shape, tuple | list) else (
        normalized_shape,)
    shape = tuple(_integer(s, "normalized_shape", "layer_norm", minimum=1) for s in shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ShapeError(
            f"layer_norm: input of shape {x.shape} does not end with normalized_shape {shape}"
        )
    affine = []
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            value = value if isinstance(value, Tensor) else as_floating(value, "layer_norm")
            if tuple(value.shape) != shape:
                raise ShapeError(f"layer_norm: {name} must have shape {shape}, got "
                                 f"{value.shape}")
            if value.dtype != x.dtype:  # PyTorch refuses too; numpy would upcast float32
                raise DTypeError(f"layer_norm: {name} is {value.dtype} but the input is "
                                 f"{x.dtype}; cast one of them (.float() / .double())")
        affine.append(value)
    weight, bias = affine
    dims = tuple(range(x.ndim - k, x.ndim))
    centred = x - x.mean(dims, keepdim=True)
    var = (centred * centred).mean(dims, keepdim=True)
    out = centred / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(input: Any, num_groups: int, weight: Tensor | None = None,  # noqa: A002
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Split the C channels of an (N, C, ...) input into ``num_groups`` groups and normalise
    each sample's group over its channels and positions (biased variance), then
    ``weight * x_hat + bias`` per channel. (num_groups = 1 is layer norm over (C, ...);
    num_groups = C is instance norm.)"""
    x = as_floating(input, "group_norm")
    eps = _real(eps, "eps", "group_norm", low=0.0)
    groups = _integer(num_groups, "num_groups", "group_norm", minimum=1)
    if x.ndim < 2 or x.shape[1] % groups:
        raise ShapeError(f"group_norm: expected an input (N, C, ...) with C divisible by "
                         f"num_groups={groups}, got shape {x.shape}")
    affine = []
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            value = value if isinstance(value, Tensor) else as_floating(value, "group_norm")
            if value.shape != (x.shape[1],):
                raise ShapeError(f"group_norm: {name} must have shape ({x.shape[1]},) for "
                                 f"input {x.shape}, got {value.shape}")
            if value.dtype != x.dtype:
                raise DTypeError(f"group_norm: {name} is {value.dtype} but the input is "
                                 f"{x.dtype}; cast one of them")
        affine.append(value)
    weight, bias = affine
    grouped = x.reshape(x.shape[0], groups, -1)
    centred = grouped - grouped.mean(2, keepdim=True)
    var = (centred * centred).mean(2, keepdim=True)
    out = (centred / (var + eps).sqrt()).reshape(x.shape)
    shape = _stat_shape(x)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def rms_norm(input: Any, normalized_shape: Any, weight: Tensor | None = None,  # noqa: A002
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last ``len(normalized_shape)`` dims, times
    ``weight`` elementwise if given; eps defaults to the dtype's machine epsilon (as
    PyTorch's rms_norm)."""
    x = as_floating(input, "rms_norm")
    eps = float(np.finfo(x.dtype).eps) if eps is None else _real(eps, "eps", "rms_norm",
                                                                 low=0.0)
    shape = tuple(normalized_shape) if isinstance(normalized_shape, tuple | list) else (
        normalized_shape,)
    shape = tuple(_integer(s, "normalized_shape", "rms_norm", minimum=1) for s in shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ShapeError(
            f"rms_norm: input of shape {x.shape} does not end with normalized_shape {shape}")
    if weight is not None:
        weight = weight if isinstance(weight, Tensor) else as_floating(weight, "rms_norm")
        if tuple(weight.shape) != shape:
            raise ShapeError(f"rms_norm: weight must have shape {shape}, got {weight.shape}")
        if weight.dtype != x.dtype:
            raise DTypeError(f"rms_norm: weight is {weight.dtype} but the input is {x.dtype}; "
                             "cast one of them (.float() / .double())")
    dims = tuple(range(x.ndim - k, x.ndim))
    out = x / ((x * x).mean(dims, keepdim=True) + eps).sqrt()
    return out * weight if weight is not None else out
