"""Convolution and pooling kernels: im2col, col2im and max pooling. Each has a numpy twin
(read these to learn the math); col2im and max pooling also have a numba kernel of the same
name and signature in `conv_compiled.py` (one pass over memory, no temporaries). im2col has
none: numpy's copy of a strided view is the fast way (measured, see `conv_compiled.py`).

Shapes (N batch, C channels, H x W image, kh x kw kernel, OH x OW output positions):

- ``im2col(x, cols, stride, pad, dilation)``: x (N, C, H, W) -> cols (N, C, kh, kw, OH, OW),
  cols[n, c, i, j, p, q] = x[n, c, p*sh - pt + i*dh, q*sw - pl + j*dw], 0 outside the image.
  Reshaped to (N, C*kh*kw, OH*OW) (free), each column is the patch one output pixel sees, so a
  convolution is one matrix product: W (O, C*kh*kw) @ cols.
- ``col2im(cols, x, ...)``: the adjoint (transpose) of im2col: every patch entry is added back
  onto the pixel it was copied from; overlapping patches add up. It is im2col's gradient.
- ``max_pool2d_forward(x, out, argmax, kernel, stride, pad, dilation)``: the max of each
  window, and where it was (h * W + w in the H x W plane, PyTorch's ``indices``). Ties go to
  the first maximum in row-major window order, a NaN wins (the last one), and padding never
  wins, exactly as PyTorch's CPU kernel.
- ``max_pool2d_backward(grad, argmax, grad_input)``: each output's gradient lands on its
  argmax; windows that share a maximum add up.

Only the top/left padding (pt, pl) appears: the bottom/right padding decides OH and OW, which
the caller has already put into the shapes of ``cols`` and ``out``.

The dispatch functions (the ones ops call: ``tinynet.kernels.im2col`` ...) live with every
other kernel's dispatch in `tinynet/kernels/__init__.py`: they allocate the outputs and choose
twin or numba by the same policy; this file imports nothing of tinynet.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pair = tuple[int, int]

# ------------------------------------------------------------------------------ numpy twins


def _windows(padded: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair
             ) -> np.ndarray:
    """A read-only view (N, C, OH, OW, kh, kw) of every window of a padded (N, C, Hp, Wp)
    array: no copy, just strides (moving one output pixel moves ``stride`` pixels, one kernel
    tap moves ``dilation`` pixels)."""
    n, c, _, _ = padded.shape
    s0, s1, s2, s3 = padded.strides
    shape = (n, c, out_hw[0], out_hw[1], kernel[0], kernel[1])
    strides = (s0, s1, s2 * stride[0], s3 * stride[1], s2 * dilation[0], s3 * dilation[1])
    return as_strided(padded, shape, strides, writeable=False)


def _pad(x: np.ndarray, cols_hw: Pair, kernel: Pair, stride: Pair, pad: Pair, dilation: Pair,
         value: float) -> np.ndarray:
    """x with ``pad`` rows/columns of ``value`` before and as many after as the windows need."""
    need_h = (cols_hw[0] - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    need_w = (cols_hw[1] - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1
    after_h = max(need_h - pad[0] - x.shape[2], 0)
    after_w = max(need_w - pad[1] - x.shape[3], 0)
    if pad == (0, 0) and after_h == after_w == 0:
        return x  # nothing to add: no copy
    return np.pad(x, ((0, 0), (0, 0), (pad[0], after_h), (pad[1], after_w)),
                  constant_values=value)


def im2col_twin(x: np.ndarray, cols: np.ndarray, stride: Pair, pad: Pair, dilation: Pair
                ) -> None:
    """cols (N, C, kh, kw, OH, OW) <- every patch of x (N, C, H, W); zeros in the padding."""
    kernel, out_hw = cols.shape[2:4], cols.shape[4:6]
    padded = _pad(x, out_hw, kernel, stride, pad, dilation, 0.0)
    windows = _windows(padded, kernel, stride, dilation, out_hw)  # (N, C, OH, OW, kh, kw)
    cols[...] = windows.transpose(0, 1, 4, 5, 2, 3)


def col2im_twin(cols: np.ndarray, x: np.ndarray, stride: Pair, pad: Pair, dilation: Pair
                ) -> None:
    """x (N, C, H, W) <- the sum of every patch entry of cols put back where it came from.

    One numpy slice-add per kernel tap (kh * kw of them): tap (i, j) of all output pixels
    came from a strided grid of pixels starting at (i*dh, j*dw) in the padded image.
    """
    n, c, kh, kw, oh, ow = cols.shape
    sh, sw = stride
    hp = max((oh - 1) * sh + (kh - 1) * dilation[0] + 1, pad[0] + x.shape[2])
    wp = max((ow - 1) * sw + (kw - 1) * dilation[1] + 1, pad[1] + x.shape[3])
    padded = np.zeros((n, c, hp, wp), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation[0], j * dilation[1]
            padded[:, :, h0:h0 + sh * (oh - 1) + 1:sh, w0:w0 + sw * (ow - 1) + 1:sw] += (
                cols[:, :, i, j])
    x[...] = padded[:, :, pad[0]:pad[0] + x.shape[2], pad[1]:pad[1] + x.shape[3]]


def max_pool2d_forward_twin(x: np.ndarray, out: np.ndarray, argmax: np.ndarray, kernel: Pair,
                            stride: Pair, pad: Pair, dilation: Pair) -> None:
    """out (N, C, OH, OW) <- the max of each window; argmax <- where (h * W + w)."""
    h, w = x.shape[2:]
    out_hw = out.shape[2:]
    padded = _pad(x, out_hw, kernel, stride, pad, dilation, -np.inf)
    valid = _pad(np.ones((1, 1, h, w), dtype=bool), out_hw, kernel, stride, pad, dilation, 0)
    taps = kernel[0] * kernel[1]  # not -1: numpy cannot infer it for an empty batch
    windows = _windows(padded, kernel, stride, dilation, out_hw).reshape(out.shape + (taps,))
    inside = _windows(valid, kernel, stride, dilation, out_hw).reshape((1, 1) + out_hw + (-1,))
    with np.errstate(invalid="ignore"):
        best = np.where(inside, windows, -np.inf).max(axis=-1, keepdims=True)
    hits = inside & (windows == best)
    first = np.argmax(hits, axis=-1)  # the first maximum wins a tie
    nans = inside & np.isnan(windows)
    last_nan = nans.shape[-1] - 1 - np.argmax(nans[..., ::-1], axis=-1)  # NaN: the last one
    # A window with no pixel inside the image (dilation + padding) gives -inf and, as in
    # PyTorch, points at its first tap at row >= 0 and column >= 0 (past the image).
    tap_rows = (np.arange(out_hw[0])[:, None, None] * stride[0] - pad[0]
                + np.arange(kernel[0])[:, None] * dilation[0]).reshape(out_hw[0], 1, -1, 1)
    tap_columns = (np.arange(out_hw[1])[:, None] * stride[1] - pad[1]
                   + np.arange(kernel[1]) * dilation[1]).reshape(1, out_hw[1], 1, -1)
    nonnegative = ((tap_rows >= 0) & (tap_columns >= 0)).reshape(out_hw + (-1,))
    fallback = np.argmax(nonnegative, axis=-1)
    tap = np.where(nans.any(axis=-1), last_nan, np.where(hits.any(axis=-1), first, fallback))
    rows = np.arange(out_hw[0])[:, None] * stride[0] - pad[0] + (tap // kernel[1]) * dilation[0]
    columns = np.arange(out_hw[1]) * stride[1] - pad[1] + (tap % kernel[1]) * dilation[1]
    argmax[...] = rows * w + columns
    out[...] = np.take_along_axis(windows, tap[..., None], axis=-1)[..., 0]


def max_pool2d_backward_twin(grad: np.ndarray, argmax: np.ndarray, grad_input: np.ndarray
                             ) -> None:
    """grad_input (N, C, H, W) <- zeros plus each grad (N, C, OH, OW) at its argmax (dropped
    where the argmax lies past the image: a window with no pixel inside, as in PyTorch)."""
    n, c, h, w = grad_input.shape
    planes = np.arange(n * c).reshape(n, c, 1, 1) * (h * w)  # where each (n, c) plane starts
    inside = argmax < h * w
    grad_input[...] = 0
    # np.add.at, not +=: windows that share a maximum must add up, not overwrite
    np.add.at(grad_input.reshape(-1), (planes + np.where(inside, argmax, 0))[inside],
              grad[inside])


# ------------------------------------------------------------------------------ shapes


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                dilation: int) -> int:
    """Output positions along one axis: floor((size + pads - dilation*(kernel-1) - 1) / stride)
    + 1 (PyTorch's formula)."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1
