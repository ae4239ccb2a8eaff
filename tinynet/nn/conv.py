"""Conv2d: a learned bank of filters slid over an image (``tn.nn.functional.conv2d``, which
is im2col + one matrix product; see ``tinynet/ops/conv.py``), and Dropout2d, which drops
whole feature maps."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import ValueRangeError
from tinynet.nn import init
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.ops.conv import _integer, _pair, _real, conv2d, dropout2d
from tinynet.tensor import Tensor


class Conv2d(Module):
    """y = conv2d(x, weight, bias, stride, padding, dilation, groups).

    Shapes: x (N, C_in, H, W) -> y (N, C_out, OH, OW), OH = floor((H + 2 ph - dh (kh - 1) - 1)
    / sh) + 1; ``weight`` (C_out, C_in / groups, kh, kw), ``bias`` (C_out,), as in PyTorch.
    ``padding`` is an int, a pair, ``"valid"`` (0) or ``"same"`` (output as large as the
    input; stride 1 only).

    Initialisation is PyTorch's: ``kaiming_uniform_(weight, a=sqrt(5))``, i.e. uniform in
    +-1/sqrt(fan_in) with fan_in = C_in / groups * kh * kw, and the bias uniform in the same
    range, drawn from tinynet's generator (``tn.manual_seed``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"Conv2d: tinynet runs on the CPU only, got device {device!r}")
        if padding_mode != "zeros":
            raise ValueRangeError(
                f"Conv2d: padding_mode {padding_mode!r} is not supported; tinynet pads with "
                "zeros (padding_mode='zeros')"
            )
        in_channels = _integer(in_channels, "in_channels", "Conv2d", minimum=1)
        out_channels = _integer(out_channels, "out_channels", "Conv2d", minimum=1)
        groups = _integer(groups, "groups", "Conv2d", minimum=1)
        if in_channels % groups or out_channels % groups:
            raise ValueRangeError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.dilation = _pair(dilation, "dilation", "Conv2d")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueRangeError(
                    f"Conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
                )
            if padding == "same" and self.stride != (1, 1):
                raise ValueRangeError(
                    "Conv2d: padding='same' is not supported for strided convolutions"
                )
            self.padding: Any = padding
        else:
            self.padding = _pair(padding, "padding", "Conv2d", minimum=0)
        self.padding_mode = padding_mode
        dtype = dtypes.to_dtype(dtype)
        if dtype.kind != "f":
            raise ValueRangeError(f"Conv2d: dtype must be a floating dtype, got {dtype}")
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((out_channels,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights (PyTorch's default initialisation, see the class docstring)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)

    def extra_repr(self) -> str:
        """As PyTorch prints it: ``1, 6, kernel_size=(5, 5), stride=(1, 1)``, then only the
        settings that differ from their defaults."""
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Dropout2d(Module):
    """In training, zero each channel of each sample with probability ``p`` and scale the rest
    by 1/(1-p) (see ``F.dropout2d``); in evaluation (``model.eval()``), the identity.
    (N, C, H, W) or (C, H, W) in, the same shape out."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _real(p, "dropout probability", "Dropout2d", 0.0, 1.0)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
