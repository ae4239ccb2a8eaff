"""Scalar rules the numba kernels share (hand-written; LLVM inlines them into every loop that
calls them).

These are not formulas but ways of computing two of the table's functions fast and exactly
enough: ``sigmoid`` by the sign split, and ``exp``/``sigmoid``/``tanh`` in float32 and float64
as plain arithmetic LLVM can vectorise (numba has no vector math library here, so ``np.exp``
is one scalar library call per element: float64 tanh took 14.6 ms per 10^6 elements as that
loop, 1.6 ms as this one; numpy's own, 1.7 ms). They are ordinary numba functions, not
``inline="always"``: LLVM inlines them all the same (and vectorises the loop), while numba's
own inlining copied their code into the caller at every call and made each generated loop
take about 30% longer to compile. The generated kernels (``formulas.kernel_source``)
and the compiler's fused loops call them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload


@njit(cache=True, error_model="numpy", inline="always")
def where(condition, a, b):
    """The formulas' where(c, a, b) on scalars."""
    return a if condition else b



@njit(cache=True, error_model="numpy")
def _sign_split(v, e, one):
    """sigmoid(v) = 1/(1+exp(-v)) from e = exp(-|v|), which never overflows: 1/(1+e) for
    v >= 0, e/(1+e) below; branch-free so random signs cost no mispredictions."""
    r = one / (one + e)
    return r if v >= 0 else e * r


@njit(cache=True, error_model="numpy")
def _sigmoid(v, one):
    """sigmoid by the sign split, with the C library's exp (loops with no scratch array)."""
    return _sign_split(v, np.exp(-np.abs(v)), one)


@njit(cache=True, error_model="numpy")
def _times_two_to(p, n, out, bits, i, bias, shift):
    """p * 2^n (n a whole number held as a float), for the exps below: 2^n as two factors
    2^half and 2^(n - half) (half = floor(n / 2), so each is a normal number even when 2^n is
    not), each built from its bit pattern (the exponent field: ``bias`` + the power, shifted
    left by ``shift``, the mantissa's width) written through ``bits`` (an integer view of the
    float array ``out``, of its item size) and read back from ``out[i]``, which the caller
    overwrites later."""
    whole = bits.dtype.type(n)
    half = whole >> bits.dtype.type(1)  # floor(n / 2) without the branches of Python's //
    bits[i] = (half + bias) << shift
    p = p * out[i]
    bits[i] = (whole - half + bias) << shift
    return p * out[i]


@njit(cache=True, error_model="numpy")
def _tanh_halves(v, small, e, one):
    """Cephes' tanh from its two halves, both computed (no branch on the value, so the loop
    vectorises), one kept: ``small`` (the dtype's odd polynomial or rational function) for
    |v| < 0.625, else sign(v) (1 - 2e / (1 + e)) from e = exp(-2|v|) in (0, 1]; tanh(+-0) is
    v itself (v + 0 would turn -0.0 into +0.0). (0.625 is exact in both dtypes, so the
    comparison is the same in either.)"""
    a = np.abs(v)
    large = one - (one + one) * e / (one + e)
    large = large if v >= 0 else -large
    if a >= 0.625:
        return large
    return small if a != 0 else v


@njit(cache=True, error_model="numpy")
def _exp_nonpositive_f32(y, out, bits, i):
    """exp(y) for a float32 y <= 0 (or NaN), without calling the C library.

    numba has no vector math library here, so ``np.exp`` on float32 is one scalar call per
    element (~5 ns). This is the Cephes expf recipe, plain arithmetic LLVM can vectorise
    (measured ~6x faster, within 2 ulps of the exact value):
        n = round(y / ln 2),  r = y - n ln 2  (ln 2 split in two for precision),
        exp(r) = 1 + r + r^2 p(r)  (degree-5 polynomial),  exp(y) = exp(r) * 2^n.
    2^n is applied by ``_times_two_to`` (``bits``: an int32 view of the float32 array
    ``out``), as two factors since n goes down to -150 (results below the smallest normal
    float32). Below -104 the exact answer rounds to 0.
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
    return _times_two_to(p, n, out, bits, i, np.int32(127), np.int32(23))


@njit(cache=True, error_model="numpy")
def _sigmoid_f32(v, out, bits, i):
    """_sigmoid for float32 with the vectorisable exp: same sign split, same rounding order."""
    return _sign_split(v, _exp_nonpositive_f32(-np.abs(v), out, bits, i), np.float32(1.0))


@njit(cache=True, error_model="numpy")
def _tanh_f32(v, out, bits, i):
    """tanh for float32, Cephes' tanhf without branches (both halves computed, one kept):
        |v| < 0.625:  v + v^3 q(v^2)                 (odd polynomial: exact sign, no
                                                      cancellation near 0)
        otherwise:    sign(v) (1 - 2e / (1 + e))     with e = exp(-2|v|) in (0, 1]
    """
    z = v * v
    q = np.float32(-5.70498872745e-3) * z + np.float32(2.06390887954e-2)
    q = q * z - np.float32(5.37397155531e-2)
    q = q * z + np.float32(1.33314422036e-1)
    q = q * z - np.float32(3.33332819422e-1)
    e = _exp_nonpositive_f32(np.float32(-2.0) * np.abs(v), out, bits, i)
    return _tanh_halves(v, q * z * v + v, e, np.float32(1.0))




@njit(cache=True, error_model="numpy")
def _exp_nonpositive_f64(y, out, bits, i):
    """exp(y) for a float64 y <= 0 (or NaN), without calling the C library: the float64 twin
    of ``_exp_nonpositive_f32``, Cephes' exp (within 2 ulps of the exact value):
        n = round(y / ln 2),  r = y - n ln 2  (ln 2 in two parts),  |r| <= ln 2 / 2,
        exp(r) = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2))  (a rational function),
        exp(y) = exp(r) * 2^n,
    2^n by ``_times_two_to`` (``bits``: an int64 view of the float64 array ``out``), as two
    factors since n goes down to -1076. Below -746 the exact answer rounds to 0."""
    if y < np.float64(-746.0):  # not max(): NaN must stay NaN
        y = np.float64(-746.0)
    n = np.floor(y * np.float64(1.4426950408889634) + np.float64(0.5))
    r = y - n * np.float64(6.93145751953125e-1) - n * np.float64(1.42860682030941723212e-6)
    rr = r * r
    p = r * ((np.float64(1.26177193074810590878e-4) * rr
              + np.float64(3.02994407707441961300e-2)) * rr
             + np.float64(9.99999999999999999910e-1))
    q = ((np.float64(3.00198505138664455042e-6) * rr + np.float64(2.52448340349684104192e-3))
         * rr + np.float64(2.27265548208155028766e-1)) * rr + np.float64(2.0)
    p = np.float64(1.0) + np.float64(2.0) * (p / (q - p))
    return _times_two_to(p, n, out, bits, i, np.int64(1023), np.int64(52))


@njit(cache=True, error_model="numpy")
def _sigmoid_f64(v, out, bits, i):
    """_sigmoid for float64 with the vectorisable exp: same sign split, same rounding order."""
    return _sign_split(v, _exp_nonpositive_f64(-np.abs(v), out, bits, i), np.float64(1.0))


@njit(cache=True, error_model="numpy")
def _tanh_f64(v, out, bits, i):
    """tanh for float64, Cephes' tanh without branches (both halves computed, one kept):
        |v| < 0.625:  v + v^3 P(v^2) / Q(v^2)        (a rational function of v^2)
        otherwise:    sign(v) (1 - 2e / (1 + e))     with e = exp(-2|v|) in (0, 1]
    (within 2 ulps of the exact value)."""
    z = v * v
    p = (np.float64(-9.64399179425052238628e-1) * z - np.float64(9.92877231001918586564e1)) \
        * z - np.float64(1.61468768441708447952e3)
    q = ((z + np.float64(1.12811678491632931402e2)) * z
         + np.float64(2.23548839060100448583e3)) * z + np.float64(4.84406305325125486048e3)
    e = _exp_nonpositive_f64(np.float64(-2.0) * np.abs(v), out, bits, i)
    return _tanh_halves(v, v + v * z * (p / q), e, np.float64(1.0))


# -------------------------------------------------- by dtype, for hand-written kernels


def exp_nonpositive(y, out, bits, i):
    """exp(y) for y <= 0 (or NaN) in ``out``'s dtype: inside numba, the vectorisable rule of
    that dtype (``_exp_nonpositive_f32`` or ``_f64``; ``out`` and ``bits = int_view(out)`` its
    scratch at ``i``, overwritten later by the caller), picked when the kernel is compiled.
    The softmax kernels' exps call it, so every exp a kernel takes of a number it has shifted
    below zero is one of these rules."""
    return out.dtype.type(np.exp(y))


def int_view(a):
    """``a`` (float32 or float64, 1-D) seen as integers of its item size: the ``bits`` the
    exps above write 2^n through."""
    return a.view(np.int32 if a.itemsize == 4 else np.int64)


@overload(exp_nonpositive)
def _exp_nonpositive(y, out, bits, i):  # pragma: no cover - compiled
    if out.dtype == types.float32:
        return lambda y, out, bits, i: _exp_nonpositive_f32(y, out, bits, i)
    return lambda y, out, bits, i: _exp_nonpositive_f64(y, out, bits, i)


@overload(int_view)
def _int_view(a):  # pragma: no cover - compiled
    if a.dtype == types.float32:
        return lambda a: a.view(np.int32)
    return lambda a: a.view(np.int64)
