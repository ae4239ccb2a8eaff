"""Convolution and pooling, the textbook way: im2col + one matrix product.

A 2-D convolution slides a (C, kh, kw) filter over the image and takes a dot product at every
position. im2col copies the patch under every position into a column::

    x (N, C, H, W)  --im2col-->  cols (N, C*kh*kw, L)     L = OH*OW output positions
    out[n] = W (O, C*kh*kw) @ cols[n]  (+ b)  -> (N, O, L) -> reshaped (N, O, OH, OW)

so the sliding dot products become one matrix product (BLAS does the work). Backward is the
matrix product's rule plus im2col's own derivative::

    dL/dW = sum_n g[n] @ cols[n]^T          (the same patches, weighted by the gradient)
    dL/dx = col2im(W^T @ g)                 (each patch's gradient added back where it came from)
    dL/db = sum of g over batch and positions

im2col is linear, and col2im is its transpose (adjoint): copying a pixel into several columns
has, as derivative, adding the columns' gradients back into the pixel. So ``Im2Col.backward``
is ``Col2Im.apply`` and ``Col2Im.backward`` is ``Im2Col.apply``, and double backward through a
convolution needs nothing more. Pooling reuses the same windows: average pooling is im2col
then a mean down each column; max pooling keeps each window's argmax and routes the gradient
there. The loops themselves live in ``tinynet/kernels/conv.py`` (numpy twin + numba kernel).

Geometry arguments follow PyTorch: ``kernel_size``, ``stride``, ``padding``, ``dilation`` are
an int or an (h, w) pair; a convolution's padding may also be ``"same"`` or ``"valid"``.
Inside, padding is a 4-tuple (top, bottom, left, right), since "same" with an even kernel
pads one more pixel at the bottom/right, as PyTorch does.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import warnings
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.kernels.conv import output_size as positions
from tinynet.ops.datadep import draw
from tinynet.ops.operands import as_floating
from tinynet.ops.shape import ScatterAdd
from tinynet.random import source
from tinynet.tensor import Tensor, made_from_literals

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]  # top, bottom, left, right


# ---------------------------------------------------------------------------------------------
# im2col and col2im: each other's adjoint, so each one's backward is the other
# ---------------------------------------------------------------------------------------------


class Im2Col(Function):
    """cols[n, (c, i, j), (p, q)] = x[n, c, p*sh - pt + i*dh, q*sw - pl + j*dw] (0 in the
    padding): (N, C, H, W) -> (N, C*kh*kw, OH*OW), PyTorch's ``unfold``.

    Linear in x; its derivative adds every copy's gradient back onto the pixel: col2im."""

    op = "im2col"

    @staticmethod
    def forward(ctx: Function, x: Any, kernel: Pair = (1, 1), stride: Pair = (1, 1),
                padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1)) -> np.ndarray:
        ctx.geometry = {"kernel": kernel, "stride": stride, "padding": padding,
                        "dilation": dilation}
        ctx.size = x.shape[2:]
        return kernels.im2col(x, kernel, stride, padding, dilation)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Col2Im.apply(grad, size=ctx.size, **ctx.geometry)


class Col2Im(Function):
    """The adjoint of Im2Col: (N, C*kh*kw, OH*OW) -> (N, C, H, W), each column entry added
    onto the pixel it was copied from (PyTorch's ``fold``). Its derivative is im2col."""

    op = "col2im"

    @staticmethod
    def forward(ctx: Function, cols: Any, size: Pair = (1, 1), kernel: Pair = (1, 1),
                stride: Pair = (1, 1), padding: Padding = (0, 0, 0, 0),
                dilation: Pair = (1, 1)) -> np.ndarray:
        ctx.geometry = {"kernel": kernel, "stride": stride, "padding": padding,
                        "dilation": dilation}
        return kernels.col2im(cols, size, kernel, stride, padding, dilation)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Im2Col.apply(grad, **ctx.geometry)


# ---------------------------------------------------------------------------------------------
# Convolution: im2col, then a matrix product
# ---------------------------------------------------------------------------------------------


def rows_per_group(weight: Any) -> int:
    """K = C/groups * kh * kw: the length of one im2col column within a group."""
    return weight.shape[1] * weight.shape[2] * weight.shape[3]


class Convolution(Function):
    """out = W @ im2col(x) + b, per group (see the module docstring for the shapes).

    dL/dx = col2im(W^T @ g);  dL/dW = sum_n g[n] @ im2col(x)[n]^T;  dL/db = sum of g over
    (n, oh, ow). With ``groups`` = G the channels split into G independent convolutions: the
    same formulas with an extra batch dim of size G.
    """

    @staticmethod
    def forward(ctx: Function, x: Any, weight: Any, bias: Any = None, stride: Pair = (1, 1),
                padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1),
                groups: int = 1) -> np.ndarray:
        n, _, h, w = x.shape
        out_channels, _, kh, kw = weight.shape
        ctx.geometry = {"kernel": (kh, kw), "stride": stride, "padding": padding,
                        "dilation": dilation}
        ctx.size, ctx.groups = (h, w), groups
        oh = positions(h, kh, stride[0], padding[0], padding[1], dilation[0])
        ow = positions(w, kw, stride[1], padding[2], padding[3], dilation[1])
        cols = kernels.im2col(x, (kh, kw), stride, padding, dilation)  # (N, C*kh*kw, L)
        # explicit sizes, not -1: numpy cannot infer a dim of an empty (N = 0) batch
        cols = cols.reshape(n, groups, cols.shape[1] // groups, oh * ow)  # (N, G, K, L)
        rows = weight.reshape(groups, out_channels // groups, rows_per_group(weight))  # (G, O/G, K)
        out = np.matmul(rows, cols).reshape(n, out_channels, oh, ow)    # BLAS
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        ctx.cols = cols  # reused by the fast backward; the Tensor backward recomputes it
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any, Any]:
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        n, out_channels, groups = grad.shape[0], grad.shape[1], ctx.groups
        positions_out = grad.shape[2] * grad.shape[3]
        g = grad.reshape(n, groups, out_channels // groups, positions_out)  # (N, G, O/G, L)
        dx = dw = db = None
        if need_x:
            rows = weight.reshape(groups, out_channels // groups, rows_per_group(weight))
            dcols = rows.transpose(1, 2) @ g                            # (N, G, K, L)
            dx = Col2Im.apply(dcols.reshape(n, x.shape[1] * weight.shape[2] * weight.shape[3],
                                            g.shape[-1]), size=ctx.size,
                              **ctx.geometry)
        if need_weight:
            cols = Im2Col.apply(x, **ctx.geometry).reshape(n, groups, rows_per_group(weight),
                                                           g.shape[-1])
            # cols @ g^T, not g @ cols^T: the same sums, and OpenBLAS runs this side up to
            # 1.8x faster when O/G is small (LeNet's conv2: 285 us against 520 us)
            dw = (cols @ g.transpose(2, 3)).sum(0).transpose(1, 2).reshape(weight.shape)
        if need_bias:
            db = grad.sum((0, 2, 3))
        return dx, dw, db

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> tuple[Any, Any, Any]:
        """The same on arrays, with the columns kept from forward and the col2im kernel."""
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        n, out_channels, groups = grad.shape[0], grad.shape[1], ctx.groups
        g = grad.reshape(n, groups, out_channels // groups, grad.shape[2] * grad.shape[3])
        dx = dw = db = None
        if need_x:
            rows = weight.data.reshape(groups, out_channels // groups, rows_per_group(weight))
            dcols = np.matmul(rows.transpose(0, 2, 1), g)
            dx = kernels.col2im(dcols.reshape(n, x.shape[1] * weight.shape[2] * weight.shape[3],
                                              g.shape[-1]), ctx.size,
                                **ctx.geometry)
        if need_weight:
            dw = np.matmul(ctx.cols, g.transpose(0, 1, 3, 2)).sum(0).transpose(0, 2, 1).reshape(
                weight.shape)
        if need_bias:
            db = grad.sum((0, 2, 3))
        return dx, dw, db


# ---------------------------------------------------------------------------------------------
# Max pooling: keep the argmax, send the gradient there
# ---------------------------------------------------------------------------------------------


class MaxPool(Function):
    """out = max of each window; dL/dx = the window's gradient at its argmax, 0 elsewhere
    (summed where windows overlap on one maximum). A tie goes to the first maximum in the
    window (row by row), as PyTorch's CPU kernel. The backward is a scatter-add at fixed
    positions, linear in the gradient, so it differentiates again (to indexing)."""

    op = "max_pool2d"

    @staticmethod
    def forward(ctx: Function, x: Any, kernel: Pair = (1, 1), stride: Pair = (1, 1),
                padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1)) -> np.ndarray:
        out, ctx.argmax = kernels.max_pool2d_forward(x, kernel, stride, padding, dilation)
        ctx.input_shape = x.shape
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        n, c, h, w = ctx.input_shape
        inside = ctx.argmax < h * w  # False only for a window with no pixel in the image
        position = np.where(inside, ctx.argmax, 0)
        index = (np.arange(n).reshape(-1, 1, 1, 1), np.arange(c).reshape(1, -1, 1, 1),
                 position // w, position % w)
        if not inside.all():  # PyTorch drops those windows' gradients
            grad = grad * inside.astype(grad.dtype)
        return ScatterAdd.apply(grad, shape=ctx.input_shape, index=index)

    @staticmethod
    def fast_backward(ctx: Function, grad: np.ndarray) -> np.ndarray:
        return kernels.max_pool2d_backward(grad, ctx.argmax, ctx.input_shape[2:])


# ---------------------------------------------------------------------------------------------
# The functions users call (tn.nn.functional re-exports them)
# ---------------------------------------------------------------------------------------------


def _pair(value: Any, name: str, op: str, minimum: int = 1) -> Pair:
    """An int or an (h, w) pair of ints, each >= ``minimum``."""
    items = tuple(value) if isinstance(value, tuple | list) else (value, value)
    try:
        pair = tuple(operator.index(v) for v in items)
    except TypeError as e:
        raise DTypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from e
    if len(pair) != 2:
        raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueRangeError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def _integer(value: Any, name: str, op: str, minimum: int | None = None) -> int:
    """An integer argument (not a float, not an array), >= ``minimum`` if given."""
    try:
        number = operator.index(value)  # not int(): 2.5 channels is a mistake, not 2
    except TypeError as e:
        raise DTypeError(f"{op}: {name} must be an integer, got {value!r}") from e
    if minimum is not None and number < minimum:
        raise ValueRangeError(f"{op}: {name} must be >= {minimum}, got {number}")
    return number


def _real(value: Any, name: str, op: str, low: float | None = None,
          high: float | None = None) -> float:
    """A real number argument (a Python or numpy scalar), finite, within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DTypeError(f"{op}: {name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (low is not None and number < low) or (
            high is not None and number > high):
        where = f" between {low:g} and {high:g}" if high is not None else (
            f" >= {low:g}" if low is not None else "")
        raise ValueRangeError(f"{op}: {name} has to be a finite number{where}, but got {value}")
    return number


def _image(input: Any, op: str, min_ndim: int = 3) -> tuple[Tensor, bool]:
    """(N, C, H, W) input as a float Tensor, and whether a (C, H, W) one was batched here."""
    x = as_floating(input, op)
    if x.ndim not in (3, 4) or x.ndim < min_ndim:
        raise ShapeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.shape}"
        )
    return (x.unsqueeze(0), True) if x.ndim == 3 else (x, False)


def _check_fits(op: str, x: Tensor, kernel: Pair, padding: Padding, dilation: Pair) -> None:
    """Refuse a kernel larger than the padded image, naming both."""
    h = x.shape[2] + padding[0] + padding[1]
    w = x.shape[3] + padding[2] + padding[3]
    span = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    if span[0] > h or span[1] > w:
        raise ShapeError(
            f"{op}: the (dilated) kernel {span[0]}x{span[1]} is larger than the padded input "
            f"{h}x{w} (input shape {x.shape}); use a smaller kernel or more padding"
        )


def unfold(input: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
           stride: Any = 1) -> Tensor:
    """im2col, PyTorch's ``F.unfold``: (N, C, H, W) -> (N, C*kh*kw, L), one column per
    window position."""
    x, _ = _image(input, "unfold", min_ndim=4)
    kernel = _pair(kernel_size, "kernel_size", "unfold")
    ph, pw = _pair(padding, "padding", "unfold", minimum=0)
    pads, dil = (ph, ph, pw, pw), _pair(dilation, "dilation", "unfold")
    _check_fits("unfold", x, kernel, pads, dil)
    return Im2Col.apply(x, kernel=kernel, stride=_pair(stride, "stride", "unfold"),
                        padding=pads, dilation=dil)


def fold(input: Any, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1) -> Tensor:
    """col2im, PyTorch's ``F.fold``: (N, C*kh*kw, L) -> (N, C, H, W), overlaps summed."""
    cols = as_floating(input, "fold")
    size = _pair(output_size, "output_size", "fold")
    kernel = _pair(kernel_size, "kernel_size", "fold")
    ph, pw = _pair(padding, "padding", "fold", minimum=0)
    pads, dil = (ph, ph, pw, pw), _pair(dilation, "dilation", "fold")
    st = _pair(stride, "stride", "fold")
    oh = positions(size[0], kernel[0], st[0], ph, ph, dil[0])
    ow = positions(size[1], kernel[1], st[1], pw, pw, dil[1])
    if cols.ndim != 3 or cols.shape[1] % (kernel[0] * kernel[1]) or cols.shape[2] != oh * ow:
        raise ShapeError(
            f"fold: expected input (N, C*{kernel[0]}*{kernel[1]}, {oh * ow}) for output size "
            f"{size}, got {cols.shape}"
        )
    return Col2Im.apply(cols, size=size, kernel=kernel, stride=st, padding=pads, dilation=dil)


def _conv_padding(padding: Any, kernel: Pair, stride: Pair, dilation: Pair) -> Padding:
    """int, pair, "valid" (none) or "same" (output size = input size; stride 1 only). For an
    even kernel "same" pads one more at the bottom/right, as PyTorch."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueRangeError(
                f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
            )
        if stride != (1, 1):
            raise ValueRangeError(
                "conv2d: padding='same' is not supported for strided convolutions "
                f"(stride {stride}); give the padding as numbers"
            )
        total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        return (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
    ph, pw = _pair(padding, "padding", "conv2d", minimum=0)
    return (ph, ph, pw, pw)


def conv2d(input: Any, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution (PyTorch's cross-correlation: the filter is not flipped).

    input (N, C, H, W) or (C, H, W); weight (O, C/groups, kh, kw); bias (O,) or None ->
    (N, O, OH, OW) with OH = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1 (same for OW).
    """
    x, unbatched = _image(input, "conv2d")
    if not isinstance(weight, Tensor):
        weight = as_floating(weight, "conv2d")
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: weight must be 4-D (out, in/groups, kh, kw), got shape "
                         f"{weight.shape}")
    if bias is not None and not isinstance(bias, Tensor):
        bias = as_floating(bias, "conv2d")
    dtypes_seen = {x.dtype, weight.dtype} | ({bias.dtype} if bias is not None else set())
    if len(dtypes_seen) > 1:
        raise DTypeError(
            f"conv2d: input, weight and bias must share one dtype, got input {x.dtype}, weight "
            f"{weight.dtype}" + (f", bias {bias.dtype}" if bias is not None else "")
            + "; cast one of them (.double() / .float())"
        )
    groups = _integer(groups, "groups", "conv2d", minimum=1)
    if 0 in weight.shape:  # PyTorch refuses an empty filter bank too
        raise ShapeError(f"conv2d: weight {weight.shape} is empty; it needs at least one output "
                         "channel, one input channel and a kernel of at least 1x1")
    out_channels, in_per_group, kh, kw = weight.shape
    if groups < 1 or out_channels % groups or x.shape[1] != in_per_group * groups:
        raise ShapeError(
            f"conv2d: input {x.shape} has {x.shape[1]} channels but weight {weight.shape} with "
            f"groups={groups} expects {in_per_group * groups} (and out channels divisible by "
            "groups)"
        )
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(f"conv2d: bias must have shape ({out_channels},), got {bias.shape}")
    st = _pair(stride, "stride", "conv2d")
    dil = _pair(dilation, "dilation", "conv2d")
    pads = _conv_padding(padding, (kh, kw), st, dil)
    _check_fits("conv2d", x, (kh, kw), pads, dil)
    out = Convolution.apply(x, weight, bias, stride=st, padding=pads, dilation=dil,
                            groups=groups)
    return out.squeeze(0) if unbatched else out


def _pool_geometry(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
                   dilation: Any, ceil_mode: bool) -> tuple[Pair, Pair, Padding, Pair]:
    """kernel, stride (None: the kernel size), padding as (top, bottom, left, right) and
    dilation. ``ceil_mode`` adds bottom/right padding so the last partial window counts
    (PyTorch's rule: a window must start inside the image or the left padding)."""
    kernel = _pair(kernel_size, "kernel_size", op)
    no_stride = stride is None or (isinstance(stride, tuple | list) and len(stride) == 0)
    st = kernel if no_stride else _pair(stride, "stride", op)
    ph, pw = _pair(padding, "padding", op, minimum=0)
    dil = _pair(dilation, "dilation", op)
    if ph > kernel[0] // 2 or pw > kernel[1] // 2:
        raise ValueRangeError(
            f"{op}: pad should be at most half of effective kernel size, but got pad="
            f"{(ph, pw)}, kernel_size={kernel} and dilation={dil}"
        )
    extra = [0, 0]
    for axis, (size, p) in enumerate(zip(x.shape[2:], (ph, pw), strict=True)):
        if ceil_mode:
            span = dil[axis] * (kernel[axis] - 1) + 1
            out = -(-(size + 2 * p - span) // st[axis]) + 1
            if (out - 1) * st[axis] >= size + p:
                out -= 1
            extra[axis] = max((out - 1) * st[axis] + span - (size + 2 * p), 0)
    pads = (ph, ph + extra[0], pw, pw + extra[1])
    _check_fits(op, x, kernel, pads, dil)
    return kernel, st, pads, dil


def max_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False
               ) -> Any:
    """The max of each kernel_size window (stride defaults to kernel_size; padding counts as
    -inf). ``return_indices=True`` also gives each max's position h*W + w, as PyTorch."""
    x, unbatched = _image(input, "max_pool2d")
    kernel, st, pads, dil = _pool_geometry("max_pool2d", x, kernel_size, stride, padding,
                                           dilation, ceil_mode)
    out = MaxPool.apply(x, kernel=kernel, stride=st, padding=pads, dilation=dil)
    if return_indices:  # the node keeps them; without a graph, ask the kernel again
        argmax = out.grad_fn.argmax if out.grad_fn is not None else kernels.max_pool2d_forward(
            x.data, kernel, st, pads, dil)[1]
        indices = Tensor._make(argmax[0] if unbatched else argmax)
        return (out.squeeze(0) if unbatched else out), indices
    return out.squeeze(0) if unbatched else out


def avg_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """The mean of each window: im2col on every channel alone, then a mean down each column.

    The divisor is kh*kw, or, with ``count_include_pad=False``, the number of real pixels in
    the window (PyTorch's rules, ceil_mode windows included); ``divisor_override`` replaces it.
    """
    x, unbatched = _image(input, "avg_pool2d")
    kernel, st, pads, dil = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1,
                                           ceil_mode)
    n, c, h, w = x.shape
    planes = x.reshape(n * c, 1, h, w)  # every channel pooled on its own
    cols = Im2Col.apply(planes, kernel=kernel, stride=st, padding=pads, dilation=dil)
    oh = positions(h, kernel[0], st[0], pads[0], pads[1], 1)
    ow = positions(w, kernel[1], st[1], pads[2], pads[3], 1)
    if divisor_override is not None:
        if _integer(divisor_override, "divisor_override", "avg_pool2d") == 0:
            raise ValueRangeError("avg_pool2d: divisor_override must be non-zero")
        divisor: Any = np.asarray(divisor_override, dtype=x.dtype)
    else:
        # Count each window's pixels with im2col of ones: over the padded image (PyTorch
        # counts the padding but not what ceil_mode adds past it), or over the image only.
        ph, pw = pads[0], pads[2]
        if count_include_pad:
            ones, count_pads = np.ones((1, 1, h + 2 * ph, w + 2 * pw)), (
                0, pads[1] - ph, 0, pads[3] - pw)
        else:
            ones, count_pads = np.ones((1, 1, h, w)), pads
        divisor = kernels.im2col(ones, kernel, st, count_pads, dil).sum(axis=1)[0]
        divisor = divisor.astype(x.dtype)
    # the divisor follows from the shapes and options alone: a constant of a tn.compile trace
    out = (cols.sum(1) / made_from_literals(divisor)).reshape(n, c, oh, ow)
    return out.squeeze(0) if unbatched else out


def _adaptive_windows(size: int, out: int, dtype: np.dtype, transposed: bool = False
                      ) -> np.ndarray:
    """(out, size) averaging matrix: row i averages [floor(i*size/out), ceil((i+1)*size/out));
    with ``transposed``, its (size, out) transpose (C-contiguous). Made from the sizes alone:
    a constant of a tn.compile trace."""
    matrix = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        matrix[i, start:end] = 1 / (end - start)
    return made_from_literals(np.ascontiguousarray(matrix.T) if transposed else matrix)


def adaptive_avg_pool2d(input: Any, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size (OH, OW) (an int, a pair, None keeps a side).

    Window i covers rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1 (PyTorch's), so the pooling
    is separable: out = A_h @ x @ A_w^T with A the (OH, H) and (OW, W) averaging matrices,
    and its gradient is the matrix product's."""
    x, unbatched = _image(input, "adaptive_avg_pool2d")
    sizes = output_size if isinstance(output_size, tuple | list) else (output_size,) * 2
    if len(sizes) != 2:
        raise ShapeError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got "
                         f"{output_size!r}")
    h, w = x.shape[2:]
    if h == 0 or w == 0:  # no pixel to average: PyTorch refuses too
        raise ShapeError(
            f"adaptive_avg_pool2d: expected an input with non-zero height and width, got shape "
            f"{x.shape[1:] if unbatched else x.shape}"
        )
    oh, ow = (h if sizes[0] is None else sizes[0]), (w if sizes[1] is None else sizes[1])
    oh, ow = _pair((oh, ow), "output_size", "adaptive_avg_pool2d")
    if (oh, ow) == (1, 1):
        out = x.mean((2, 3), keepdim=True)
    else:
        rows = _adaptive_windows(h, oh, x.dtype)
        columns = _adaptive_windows(w, ow, x.dtype, transposed=True)
        out = Tensor._make(rows) @ x @ Tensor._make(columns)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------------------------------------
# Channel dropout: zero whole feature maps
# ---------------------------------------------------------------------------------------------


def _channel_mask(rng: np.random.Generator, *, shape: tuple[int, ...], p: float,
                  dtype: np.dtype) -> np.ndarray:
    """1/(1-p) for each kept channel (a uniform draw >= p), 0 for a dropped one."""
    keep = rng.random(shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return (keep * scale).astype(dtype)


def dropout2d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False
              ) -> Tensor:
    """Zero each channel (a whole H x W map) of each sample with probability p and scale the
    kept ones by 1/(1-p), so the expected value is unchanged (PyTorch's ``F.dropout2d``).

    Neighbouring pixels of a map are strongly correlated, so dropping single pixels (plain
    dropout) hardly regularises a convolutional layer; dropping whole maps does (Tompson et
    al., 2015). The mask, drawn from tinynet's generator (``tn.manual_seed``), is a constant:
    the gradient is the same mask times the incoming gradient. Identity when not training.
    A 3-D input is read as (N, C, L), with a warning, exactly as PyTorch 2.x still does.
    """
    p = _real(p, "dropout probability", "dropout2d", 0.0, 1.0)
    x = as_floating(input, "dropout2d")
    if x.ndim not in (3, 4):
        raise ShapeError(
            f"dropout2d: expected a 4-D (N, C, H, W) input (or 3-D, read as (N, C, L)), got "
            f"shape {x.shape}"
        )
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W)", stacklevel=2)
    if not training or p == 0.0:
        return input if isinstance(input, Tensor) else x
    # a recorded draw from tinynet's generator: tn.compile draws a new mask at every replay
    mask = draw(functools.partial(_channel_mask, shape=x.shape[:2] + (1,) * (x.ndim - 2),
                                  p=p, dtype=x.dtype), source(None, "dropout2d"))
    if inplace and x is input:
        x.mul_(mask)
        return x
    return x * mask
