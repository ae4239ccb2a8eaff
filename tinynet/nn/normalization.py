"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm and RMSNorm (the
math is in ``tinynet/ops/normalization.py``).

Batch norm behaves differently in training and evaluation, exactly as PyTorch's:

- ``model.train()``: normalise with the batch's mean and biased variance, and update the
  running statistics (buffers ``running_mean``, ``running_var``, ``num_batches_tracked``)
  with ``momentum`` (or, with ``momentum=None``, a cumulative average over batches);
- ``model.eval()``: normalise with the running statistics, so one sample's output no longer
  depends on the rest of its batch.

The buffers are in ``state_dict()`` under PyTorch's names, so a checkpoint moves both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import no_grad
from tinynet.errors import ShapeError, ValueRangeError
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.ops.conv import _integer, _real
from tinynet.ops.normalization import batch_norm, count_batch, group_norm, layer_norm, rms_norm
from tinynet.ops.operands import as_floating
from tinynet.tensor import Tensor


def _float_dtype(dtype: Any, op: str) -> np.dtype:
    dtype = dtypes.to_dtype(dtype)
    if dtype.kind != "f":
        raise ValueRangeError(f"{op}: dtype must be a floating dtype, got {dtype}")
    return dtype


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d: parameters ``weight`` (ones) and ``bias``
    (zeros, unless ``bias=False``) of shape (C,) if ``affine``; buffers ``running_mean``
    (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (int64 0) if
    ``track_running_stats``."""

    input_dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"{name}: tinynet runs on the CPU only, got device {device!r}")
        num_features = _integer(num_features, "num_features", name, minimum=0)
        dtype = _float_dtype(dtype, name)
        if momentum is not None:
            _real(momentum, "momentum", name)
        self.num_features, self.momentum = num_features, momentum
        self.eps = _real(eps, "eps", name, 0.0)
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def forward(self, input: Tensor) -> Tensor:
        input = as_floating(input, type(self).__name__)
        if input.ndim not in self.input_dims:
            expected = " or ".join(f"{d}D" for d in self.input_dims)
            raise ShapeError(f"{type(self).__name__}: expected {expected} input (got "
                             f"{input.ndim}D input of shape {input.shape})")
        factor = 0.0 if self.momentum is None else self.momentum
        batches = None
        if self.training and self.track_running_stats:
            count_batch(self.num_batches_tracked)  # a recorded in-place op (tn.compile)
            if self.momentum is None:  # cumulative moving average: 1 / num_batches_tracked
                batches = self.num_batches_tracked
        # Batch statistics in training, and in eval when there are no running ones to use.
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if keep else None,
                          self.running_var if keep else None, self.weight, self.bias,
                          use_batch, factor, self.eps, num_batches_tracked=batches)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs: one mean and variance per feature C."""

    input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs: one mean and variance per channel, over the
    batch and every pixel."""

    input_dims = (4,)


class LayerNorm(Module):
    """Normalise each sample over its last dims (``normalized_shape``), then scale and shift
    elementwise (``weight`` ones and ``bias`` zeros of that shape, if
    ``elementwise_affine``). Same in training and evaluation; no running statistics."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"LayerNorm: tinynet runs on the CPU only, got device {device!r}")
        shape = normalized_shape if isinstance(normalized_shape, tuple | list) else (
            normalized_shape,)
        self.normalized_shape = tuple(_integer(s, "normalized_shape", "LayerNorm", minimum=0)
                                      for s in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype = _float_dtype(dtype, "LayerNorm")
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise groups of channels (``num_groups`` of ``num_channels``) of each sample, then
    scale and shift per channel (``weight`` ones and ``bias`` zeros, if ``affine``), as
    ``torch.nn.GroupNorm``. Same in training and evaluation."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"GroupNorm: tinynet runs on the CPU only, got device {device!r}")
        self.num_groups = _integer(num_groups, "num_groups", "GroupNorm", minimum=1)
        self.num_channels = _integer(num_channels, "num_channels", "GroupNorm", minimum=1)
        if self.num_channels % self.num_groups:
            raise ValueRangeError(f"GroupNorm: num_channels ({num_channels}) must be divisible "
                                  f"by num_groups ({num_groups})")
        self.eps, self.affine = eps, affine
        dtype = _float_dtype(dtype, "GroupNorm")
        if affine:
            self.weight = Parameter(np.ones(self.num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the last dims (``normalized_shape``), times ``weight``
    (ones, if ``elementwise_affine``), as ``torch.nn.RMSNorm``; eps None means the dtype's
    machine epsilon."""

    def __init__(self, normalized_shape: Any, eps: float | None = None,
                 elementwise_affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"RMSNorm: tinynet runs on the CPU only, got device {device!r}")
        shape = normalized_shape if isinstance(normalized_shape, tuple | list) else (
            normalized_shape,)
        self.normalized_shape = tuple(_integer(s, "normalized_shape", "RMSNorm", minimum=0)
                                      for s in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype = _float_dtype(dtype, "RMSNorm")
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, input: Tensor) -> Tensor:
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
