"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (no parameters; the ops are in
``tinynet/ops/conv.py``)."""

from __future__ import annotations

from typing import Any

from tinynet.nn.module import Module
from tinynet.ops.conv import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from tinynet.tensor import Tensor


class MaxPool2d(Module):
    """The max of each ``kernel_size`` window, moved by ``stride`` (default: kernel_size).

    (N, C, H, W) -> (N, C, OH, OW). The gradient goes to each window's maximum (the first one
    on a tie, as PyTorch)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False, ceil_mode: bool = False
                 ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Any:
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """The mean of each ``kernel_size`` window (padding counted as zeros unless
    ``count_include_pad=False``). (N, C, H, W) -> (N, C, OH, OW)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size: ``AdaptiveAvgPool2d((1, 1))`` is global average
    pooling, (N, C, H, W) -> (N, C, 1, 1) for any H, W."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
