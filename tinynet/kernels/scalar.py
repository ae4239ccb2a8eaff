"""Scalar rules the numba kernels share (hand-written; LLVM inlines them into every loop that
calls them).

These are not formulas but ways of computing two of the table's functions fast and exactly
enough: ``sigmoid`` by the sign split, and float32 ``exp``/``sigmoid``/``tanh`` as plain
arithmetic LLVM can vectorise (numba has no vector math library here, so ``np.exp`` on float32
is one scalar library call per element). They are ordinary numba functions, not
``inline="always"``: LLVM inlines them all the same (and vectorises the loop), while numba's
own inlining copied their code into the caller at every call and made each generated loop
take about 30% longer to compile. The generated kernels (``formulas.kernel_source``)
and the compiler's fused loops call them.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy", inline="always")
def where(condition, a, b):
    """The formulas' where(c, a, b) on scalars."""
    return a if condition else b



@njit(cache=True, error_model="numpy")
def _sigmoid(v, one):
    """1/(1+exp(-v)) by the sign split; branch-free so random signs cost no mispredictions."""
    e = np.exp(-np.abs(v))
    r = one / (one + e)
    return r if v >= 0 else e * r


@njit(cache=True, error_model="numpy")
def _exp_nonpositive_f32(y, out, bits, i):
    """exp(y) for a float32 y <= 0 (or NaN), without calling the C library.

    numba has no vector math library here, so ``np.exp`` on float32 is one scalar call per
    element (~5 ns). This is the Cephes expf recipe, plain arithmetic LLVM can vectorise
    (measured ~6x faster, within 2 ulps of the exact value):
        n = round(y / ln 2),  r = y - n ln 2  (ln 2 split in two for precision),
        exp(r) = 1 + r + r^2 p(r)  (degree-5 polynomial),  exp(y) = exp(r) * 2^n.
    2^n is built from its bit pattern, written through ``bits`` (an int32 view of the
    float32 array ``out``) and read back from ``out[i]``, which the caller overwrites later.
    n can go down to -150 (results below the smallest normal float32), so 2^n is applied as
    two factors 2^(n/2), each a normal number. Below -104 the exact answer rounds to 0.
    """
    if y < np.float32(-104.0):  # not max(): NaN must stay NaN
        y = np.float32(-104.0)
    n = np.floor(y * np.float32(1.44269504) + np.float32(0.5))
    r = y - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    whole = np.int32(n)
    half = whole >> np.int32(1)  # floor(n / 2) without the branches of Python's //
    bits[i] = (half + np.int32(127)) << np.int32(23)
    p = p * out[i]
    bits[i] = (whole - half + np.int32(127)) << np.int32(23)
    return p * out[i]


@njit(cache=True, error_model="numpy")
def _sigmoid_f32(v, out, bits, i):
    """_sigmoid for float32 with the vectorisable exp: same sign split, same rounding order."""
    one = np.float32(1.0)
    e = _exp_nonpositive_f32(-np.abs(v), out, bits, i)
    r = one / (one + e)
    return r if v >= 0 else e * r


@njit(cache=True, error_model="numpy")
def _tanh_f32(v, out, bits, i):
    """tanh for float32, Cephes' tanhf without branches (both halves computed, one kept):
        |v| < 0.625:  v + v^3 q(v^2)                 (odd polynomial: exact sign, no
                                                      cancellation near 0)
        otherwise:    sign(v) (1 - 2e / (1 + e))     with e = exp(-2|v|) in (0, 1]
    """
    one = np.float32(1.0)
    a = np.abs(v)
    e = _exp_nonpositive_f32(np.float32(-2.0) * a, out, bits, i)
    large = one - np.float32(2.0) * e / (one + e)
    large = large if v >= 0 else -large
    z = v * v
    q = np.float32(-5.70498872745e-3) * z + np.float32(2.06390887954e-2)
    q = q * z - np.float32(5.37397155531e-2)
    q = q * z + np.float32(1.33314422036e-1)
    q = q * z - np.float32(3.33332819422e-1)
    small = q * z * v + v
    if a >= np.float32(0.625):
        return large
    return small if a != 0 else v  # v + 0 would turn tanh(-0.0) into +0.0


