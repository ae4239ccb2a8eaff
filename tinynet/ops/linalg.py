"""Matrix multiplication (numpy's matmul, i.e. BLAS) and its gradient.

For C = A @ B: dL/dA = dL/dC @ B^T and dL/dB = A^T @ dL/dC, with batch dims broadcast like
numpy (the engine sums the gradient over broadcast batch dims). 1-D operands are treated as a
row (left) or column (right) vector, as numpy does, and the extra dim is removed again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.autograd import Function
from tinynet.errors import ShapeError
from tinynet.ops.operands import operands
from tinynet.tensor import Tensor


class MatMul(Function):
    """d(A@B)/dA = grad @ B^T, d(A@B)/dB = A^T @ grad"""

    shape_error = "are not aligned"

    @staticmethod
    def forward(ctx: Function, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product: grad is a scalar
            return (grad * b if need_a else None), (grad * a if need_b else None)
        if a.ndim == 1:  # (k,) @ (..., k, n): a is a row vector
            row = grad.unsqueeze(-2)
            return (
                (row @ b.swapaxes(-1, -2)).squeeze(-2) if need_a else None,
                a.unsqueeze(1) @ row if need_b else None,
            )
        if b.ndim == 1:  # (..., m, k) @ (k,): b is a column vector
            column = grad.unsqueeze(-1)
            return (
                column @ b.unsqueeze(0) if need_a else None,
                (a.swapaxes(-1, -2) @ column).squeeze(-1) if need_b else None,
            )
        return (
            grad @ b.swapaxes(-1, -2) if need_a else None,
            a.swapaxes(-1, -2) @ grad if need_b else None,
        )


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with numpy's rules (1-D, 2-D and broadcast batches)."""
    a, b = operands(a, b, "matmul")
    if np.ndim(a.data if isinstance(a, Tensor) else a) == 0 or np.ndim(
        b.data if isinstance(b, Tensor) else b
    ) == 0:
        raise ShapeError(
            f"matmul: shapes {np.shape(a.data if isinstance(a, Tensor) else a)} and "
            f"{np.shape(b.data if isinstance(b, Tensor) else b)}: both operands need at "
            "least one dimension (use * for scalars)"
        )
    return MatMul.apply(a, b)
