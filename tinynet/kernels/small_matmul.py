"""The products of a small linear layer, as plain loops (numba).

For a 4x2 @ 2x4 product, calling BLAS costs more than the arithmetic. Up to
``kernels.SMALL_MATMUL`` multiply-adds a linear layer's three products (forward ``x W^T``, the
input's gradient ``dz W``, the weight's ``dz^T x``) run these loops, in eager mode
(``kernels.linear_product``) and inside tn.compile's segments alike: each sum is taken in the
same order in both, so a compiled step equals the eager one bit for bit. (BLAS's order depends
on the CPU's kernel family; a last-bit difference there is harmless until an optimizer like
Adam divides a gradient that is only rounding noise, a bias before BatchNorm, by its own size.)
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, error_model="numpy")
def mm_nt(a, b, out):  # pragma: no cover - compiled
    """out = a @ b.T;  a (N, K), b (M, K), out (N, M): dot products of rows."""
    n, k = a.shape
    m = b.shape[0]
    for i in range(n):
        for j in range(m):
            acc = out.dtype.type(0.0)
            for p in range(k):
                acc += a[i, p] * b[j, p]
            out[i, j] = acc


@njit(cache=True, error_model="numpy")
def mm_tn(a, b, out):  # pragma: no cover - compiled
    """out = a.T @ b;  a (N, M), b (N, K), out (M, K)."""
    n, m = a.shape
    k = b.shape[1]
    out[:, :] = 0
    for i in range(n):
        for j in range(m):
            aij = a[i, j]
            for p in range(k):
                out[j, p] += aij * b[i, p]


@njit(cache=True, error_model="numpy")
def mm_nn(a, b, out):  # pragma: no cover - compiled
    """out = a @ b;  a (N, M), b (M, K), out (N, K)."""
    n, m = a.shape
    k = b.shape[1]
    out[:, :] = 0
    for i in range(n):
        for j in range(m):
            aij = a[i, j]
            for p in range(k):
                out[i, p] += aij * b[j, p]
