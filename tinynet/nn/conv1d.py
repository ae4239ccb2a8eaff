"""Conv1d: Conv2d's filters on sequences (N, C, L), as ``torch.nn.Conv1d``."""

from __future__ import annotations

from typing import Any

from tinynet.nn.conv import Conv2d
from tinynet.nn.parameter import Parameter
from tinynet.ops.resample import _single, conv1d
from tinynet.tensor import Tensor


class Conv1d(Conv2d):
    """y = conv1d(x, weight, bias, stride, padding, dilation, groups): x (N, C_in, L) ->
    (N, C_out, OL); ``weight`` (C_out, C_in / groups, k), ``bias`` (C_out,). PyTorch's
    initialisation (kaiming_uniform_ with a = sqrt(5), the same draws as Conv2d's with a
    1 x k kernel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        k, s, d = (_single(kernel_size, "kernel_size"), _single(stride, "stride"),
                   _single(dilation, "dilation"))
        pad = padding if isinstance(padding, str) else (0, _single(padding, "padding", 0))
        super().__init__(in_channels, out_channels, (1, k), (1, s), pad, (1, d), groups, bias,
                         padding_mode, device, dtype)
        self.weight = Parameter(self.weight.data.reshape(self.weight.shape[:2] + (k,)))
        self.kernel_size, self.stride, self.dilation = (k,), (s,), (d,)
        self.padding = padding if isinstance(padding, str) else (pad[1],)

    def forward(self, input: Tensor) -> Tensor:
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return conv1d(input, self.weight, self.bias, self.stride[0], padding, self.dilation[0],
                      self.groups)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,):
            text += f", padding={self.padding}"
        if self.dilation != (1,):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
