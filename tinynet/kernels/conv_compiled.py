"""Numba kernels for convolution and pooling: the same math as the twins in `conv.py`, in
loops that touch each element once and allocate nothing. Same rules as `compiled.py`
(module-level, ``cache=True``, called only through the dispatch in `conv.py` with
C-contiguous float32/float64 arrays of one dtype and int64 indices); imported on the first
call that wants one, so ``import tinynet`` never loads numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def im2col(x, cols, stride, pad, dilation):
    """cols[n, c, i, j, p, q] = x[n, c, p*sh - pt + i*dh, q*sw - pl + j*dw], 0 outside."""
    n_, c_, h_, w_ = x.shape
    kh, kw, oh, ow = cols.shape[2], cols.shape[3], cols.shape[4], cols.shape[5]
    sh, sw = stride
    pt, pl = pad
    dh, dw = dilation
    zero = x.dtype.type(0)
    for n in range(n_):
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    for p in range(oh):
                        row = p * sh - pt + i * dh
                        if row < 0 or row >= h_:
                            for q in range(ow):
                                cols[n, c, i, j, p, q] = zero
                            continue
                        for q in range(ow):
                            column = q * sw - pl + j * dw
                            if 0 <= column < w_:
                                cols[n, c, i, j, p, q] = x[n, c, row, column]
                            else:
                                cols[n, c, i, j, p, q] = zero


@njit(cache=True, error_model="numpy")
def col2im(cols, x, stride, pad, dilation):
    """x[n, c, row, column] = sum of the cols entries copied from there (im2col's adjoint)."""
    n_, c_, h_, w_ = x.shape
    kh, kw, oh, ow = cols.shape[2], cols.shape[3], cols.shape[4], cols.shape[5]
    sh, sw = stride
    pt, pl = pad
    dh, dw = dilation
    x[...] = 0
    for n in range(n_):
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    for p in range(oh):
                        row = p * sh - pt + i * dh
                        if row < 0 or row >= h_:
                            continue
                        for q in range(ow):
                            column = q * sw - pl + j * dw
                            if 0 <= column < w_:
                                x[n, c, row, column] += cols[n, c, i, j, p, q]


@njit(cache=True, error_model="numpy")
def max_pool2d_forward(x, out, argmax, kernel, stride, pad, dilation):
    """PyTorch's CPU loop: scan each window's real pixels row by row, keep the first
    maximum (``>``) and any NaN; padding is skipped, never compared."""
    n_, c_, h_, w_ = x.shape
    oh, ow = out.shape[2], out.shape[3]
    kh, kw = kernel
    sh, sw = stride
    pt, pl = pad
    dh, dw = dilation
    for n in range(n_):
        for c in range(c_):
            for p in range(oh):
                h0 = p * sh - pt
                h1 = min(h0 + (kh - 1) * dh + 1, h_)
                while h0 < 0:
                    h0 += dh
                for q in range(ow):
                    w0 = q * sw - pl
                    w1 = min(w0 + (kw - 1) * dw + 1, w_)
                    while w0 < 0:
                        w0 += dw
                    best_index = h0 * w_ + w0
                    best = -np.inf
                    for row in range(h0, h1, dh):
                        for column in range(w0, w1, dw):
                            value = x[n, c, row, column]
                            if value > best or np.isnan(value):
                                best = value
                                best_index = row * w_ + column
                    out[n, c, p, q] = best
                    argmax[n, c, p, q] = best_index


@njit(cache=True, error_model="numpy")
def max_pool2d_backward(grad, argmax, grad_input):
    """grad_input = 0, then each output's gradient added at its argmax."""
    n_, c_, h_, w_ = grad_input.shape
    oh, ow = grad.shape[2], grad.shape[3]
    grad_input[...] = 0
    for n in range(n_):
        for c in range(c_):
            for p in range(oh):
                for q in range(ow):
                    k = argmax[n, c, p, q]
                    grad_input[n, c, k // w_, k % w_] += grad[n, c, p, q]
