"""Numba kernels for convolution and pooling: the same math as the twins in `conv.py`, in
loops that touch each element once and allocate nothing. Same rules as `compiled.py`
(module-level, ``cache=True``, called only through the dispatch in `conv.py` with
C-contiguous float32/float64 arrays of one dtype and int64 indices); imported on the first
call that wants one, so ``import tinynet`` never loads numba.

There is no im2col kernel: numpy's copy of a strided window view (the twin) ran 2-3x faster
than every numba loop tried (element-wise 6-D indexing, flat offsets, slice copies) on
LeNet's layers, so the dispatch always uses the twin for it. col2im's twin needs a
slice-add per kernel tap over the whole batch; its kernel below ran 1.5-2.5x faster, and
the max-pooling kernels 5x (forward) and 2-3x (backward) faster than their twins (batch 64,
float32, one thread, thread CPU time on the shared 2-core machine).

In col2im the innermost loop runs along an output row, over the positions q whose input
column ``q * stride + base`` lies inside the image: that range is computed once per row
(``_inside``), so the loop has no bounds test.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tinynet.kernels.flat import flat


@njit(cache=True, inline="always")
def _inside(base, step, size, count):
    """(lo, hi): the positions q in [0, count) with 0 <= q * step + base < size."""
    lo = 0 if base >= 0 else (-base + step - 1) // step
    last = size - 1 - base
    hi = 0 if last < 0 else min(count, last // step + 1)
    return min(lo, count), max(hi, min(lo, count))


@njit(cache=True, error_model="numpy")
def col2im(cols, x, stride, pad, dilation):
    """x[n, c, row, column] = sum of the cols entries copied from there (im2col's adjoint).

    On flat views with the offsets computed by hand: indexing 6-D arrays element by element
    recomputes six strides per access. cols is read in order, one output row at a time."""
    n_, c_, h_, w_ = x.shape
    kh, kw, oh, ow = cols.shape[2], cols.shape[3], cols.shape[4], cols.shape[5]
    sh, sw = stride
    pt, pl = pad
    dh, dw = dilation
    target = flat(x)
    source = flat(cols)
    target[:] = 0
    t = 0
    for plane in range(n_ * c_):
        x_plane = plane * h_ * w_
        for i in range(kh):
            for j in range(kw):
                base = j * dw - pl
                lo, hi = _inside(base, sw, w_, ow)
                for p in range(oh):
                    row = p * sh - pt + i * dh
                    if 0 <= row < h_:
                        s = x_plane + row * w_ + base
                        if sw == 1:
                            for q in range(lo, hi):
                                target[s + q] += source[t + q]
                        else:
                            for q in range(lo, hi):
                                target[s + q * sw] += source[t + q]
                    t += ow


@njit(cache=True, error_model="numpy")
def max_pool2d_forward(x, out, argmax, kernel, stride, pad, dilation):
    """PyTorch's CPU loop: scan each window's real pixels row by row, keep the first
    maximum (``>``) and any NaN (``v != v``: the last NaN); padding is skipped, never
    compared. Written branch-free: the test ``value > best or value != value`` at every pixel
    stayed a branch and cost 6x, and tracking the last NaN's position beside the maximum
    another 4x (LeNet's pool: 430-790 us against 100 us). So a row of windows keeps only a
    flag, "a NaN was seen", and a flagged row is scanned again for each window's last NaN."""
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    kh, kw = kernel
    sh, sw = stride
    pt, pl = pad
    dh, dw = dilation
    lowest = x.dtype.type(-np.inf)
    for n in range(n_):
        for c in range(c_):
            plane = x[n, c]
            for p in range(oh):
                h0 = p * sh - pt
                h1 = min(h0 + (kh - 1) * dh + 1, h_)
                while h0 < 0:
                    h0 += dh
                nan = False
                for q in range(ow):
                    w0, w1 = _window(q, sw, pl, kw, dw, w_)
                    best_index = h0 * w_ + w0
                    best = lowest
                    for row in range(h0, h1, dh):
                        for column in range(w0, w1, dw):
                            value = plane[row, column]
                            better = value > best
                            best = value if better else best
                            best_index = row * w_ + column if better else best_index
                            nan |= value != value
                    out[n, c, p, q] = best
                    argmax[n, c, p, q] = best_index
                if nan:  # rare: in each window holding a NaN, the last NaN wins
                    for q in range(ow):
                        w0, w1 = _window(q, sw, pl, kw, dw, w_)
                        nan_index = -1
                        for row in range(h0, h1, dh):
                            for column in range(w0, w1, dw):
                                value = plane[row, column]
                                nan_index = row * w_ + column if value != value else nan_index
                        if nan_index >= 0:
                            out[n, c, p, q] = plane[nan_index // w_, nan_index % w_]
                            argmax[n, c, p, q] = nan_index


@njit(cache=True, inline="always")
def _window(q, sw, pl, kw, dw, w_):
    """The columns of output column q's window that lie in the image: range(w0, w1, dw)."""
    w0 = q * sw - pl
    w1 = min(w0 + (kw - 1) * dw + 1, w_)
    while w0 < 0:
        w0 += dw
    return w0, w1


@njit(cache=True, error_model="numpy")
def max_pool2d_backward(grad, argmax, grad_input):
    """grad_input = 0, then each output's gradient added at its argmax. A window with no
    pixel inside the image (possible with dilation and padding) has an argmax past the
    plane, as in PyTorch, and its gradient is dropped, as PyTorch drops it."""
    n_, c_, h_, w_ = grad_input.shape
    oh, ow = grad.shape[2], grad.shape[3]
    size = h_ * w_
    grad_input[...] = 0
    for n in range(n_):
        for c in range(c_):
            plane = flat(grad_input[n, c])
            for p in range(oh):
                for q in range(ow):
                    k = argmax[n, c, p, q]
                    if k < size:
                        plane[k] += grad[n, c, p, q]
