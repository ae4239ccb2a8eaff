"""1-D convolution and interpolation, built from existing differentiable ops.

conv1d is conv2d on a height-1 image: (N, C, L) becomes (N, C, 1, L) and the filter
(O, C/groups, K) becomes (O, C/groups, 1, K); the gradient comes back through the same
reshapes.

interpolate resizes the spatial dims (everything after N, C), one dim at a time:

    nearest:                    out[j] = x[floor(j * scale)]                (scale = in / out)
    linear (align_corners=False): s = (j + 1/2) scale - 1/2, clamped at 0
    linear (align_corners=True):  s = j (in - 1) / (out - 1)
                                out[j] = (1 - w) x[floor(s)] + w x[floor(s) + 1], w = s - floor(s)

Both are index_select (whose gradient adds back at the indices) and a weighted sum, so the
gradients and second derivatives come from those ops. ``scale`` is 1 / scale_factor when a
scale factor is given, as PyTorch computes it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinynet.errors import ShapeError, ValueRangeError
from tinynet.ops.conv import _integer, conv2d
from tinynet.ops.operands import as_floating
from tinynet.ops.scatter import index_select
from tinynet.tensor import Tensor


def _single(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, tuple | list):
        if len(value) != 1:
            raise ShapeError(f"conv1d: {name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return _integer(value, name, "conv1d", minimum=minimum)


def conv1d(input: Any, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,  # noqa: A002
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation): input (N, C, L) or (C, L), weight
    (O, C/groups, K), bias (O,) -> (N, O, OL), OL = floor((L + 2p - d (K - 1) - 1) / s) + 1.
    ``padding``: an int, "valid" or "same"."""
    x = as_floating(input, "conv1d")
    if x.ndim not in (2, 3):
        raise ShapeError(f"conv1d: expected an input (N, C, L) or (C, L), got shape {x.shape}")
    if not isinstance(weight, Tensor):
        weight = as_floating(weight, "conv1d")
    if weight.ndim != 3:
        raise ShapeError(f"conv1d: weight must be 3-D (out, in/groups, k), got shape "
                         f"{weight.shape}")
    pad = padding if isinstance(padding, str) else (0, _single(padding, "padding", 0))
    out = conv2d(x.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, _single(stride, "stride")),
                 pad, (1, _single(dilation, "dilation")), groups)
    return out.squeeze(-2)


def _source(size_in: int, size_out: int, scale: float | None, mode: str,
            align_corners: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Where output j reads along one dim: (index, next index, weight of next) for linear,
    (index, None, None) for nearest."""
    j = np.arange(size_out, dtype=np.float64)
    ratio = (1.0 / scale) if scale is not None else size_in / size_out
    if mode == "nearest":
        return np.minimum(np.floor(j * ratio), size_in - 1).astype(np.int64), None, None
    if align_corners:
        s = j * ((size_in - 1) / (size_out - 1)) if size_out > 1 else np.zeros_like(j)
    else:
        s = np.maximum((j + 0.5) * ratio - 0.5, 0.0)
    low = np.minimum(np.floor(s), size_in - 1).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, s - low


_MODES = {"nearest": (3, 4, 5), "linear": (3,), "bilinear": (4,), "trilinear": (5,)}


def interpolate(input: Any, size: Any = None, scale_factor: Any = None,  # noqa: A002
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None) -> Tensor:
    """Resize the spatial dims of (N, C, ...) to ``size`` or by ``scale_factor``
    (torch.nn.functional.interpolate); modes "nearest", "linear" (3-D input), "bilinear"
    (4-D), "trilinear" (5-D), with PyTorch's ``align_corners`` rule."""
    x = as_floating(input, "interpolate")
    if mode not in _MODES:
        raise ValueRangeError(f"interpolate: mode {mode!r} is not supported; use one of "
                              f"{sorted(_MODES)}")
    if x.ndim not in _MODES[mode]:
        raise ShapeError(f"interpolate: mode {mode!r} expects an input of "
                         f"{' or '.join(map(str, _MODES[mode]))} dims (N, C, ...), got shape "
                         f"{x.shape}")
    if mode == "nearest" and align_corners is not None:
        raise ValueRangeError("interpolate: align_corners only goes with the linear modes")
    spatial = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueRangeError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        sizes = list(size) if isinstance(size, tuple | list) else [size] * spatial
        scales: list[float | None] = [None] * spatial
    else:
        factors = (list(scale_factor) if isinstance(scale_factor, tuple | list)
                   else [scale_factor] * spatial)
        if len(factors) != spatial or any(float(f) <= 0 for f in factors):
            raise ValueRangeError(f"interpolate: scale_factor must be {spatial} positive "
                                  f"number(s), got {scale_factor!r}")
        sizes = [math.floor(n * float(f)) for n, f in zip(x.shape[2:], factors, strict=True)]
        scales = [None if recompute_scale_factor else float(f) for f in factors]
    if len(sizes) != spatial or any(int(n) < 1 for n in sizes):
        raise ShapeError(f"interpolate: size must be {spatial} positive integer(s) for input "
                         f"{x.shape}, got {size!r}")
    out = x
    for axis, (n_out, scale) in enumerate(zip(sizes, scales, strict=True), start=2):
        low, high, w = _source(x.shape[axis], int(n_out), scale, mode, bool(align_corners))
        picked = index_select(out, axis, Tensor._make(low))
        if high is None:
            out = picked
            continue
        shape = [1] * x.ndim
        shape[axis] = len(w)
        weight = w.astype(x.dtype).reshape(shape)
        out = picked * (1 - weight) + index_select(out, axis, Tensor._make(high)) * weight
    return out
