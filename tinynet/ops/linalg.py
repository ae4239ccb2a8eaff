"""Matrix multiplication (numpy's matmul, i.e. BLAS) and its gradient.

For C = A @ B: dL/dA = dL/dC @ B^T and dL/dB = A^T @ dL/dC, with batch dims broadcast like
numpy (the engine sums the gradient over broadcast batch dims). 1-D operands are treated as a
row (left) or column (right) vector, as numpy does, and the extra dim is removed again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.autograd import Function
from tinynet.errors import DTypeMismatchError, ShapeError
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
    """Matrix product with numpy's rules (1-D, 2-D and broadcast batches). Two tensors must
    have one dtype, as in PyTorch (no silent float64 model)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype:
        raise DTypeMismatchError(
            f"matmul: expected both operands to have the same dtype, got {a.dtype} and "
            f"{b.dtype}; convert one first (e.g. x.to(w.dtype) or x.float())"
        )
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


def mm(input: Any, mat2: Any) -> Tensor:  # noqa: A002 - PyTorch's names
    """Matrix product of two 2-D tensors (no broadcasting, as torch.mm)."""
    a, b = operands(input, mat2, "mm")
    shapes = [np.shape(t.data if isinstance(t, Tensor) else t) for t in (a, b)]
    if any(len(s) != 2 for s in shapes):
        raise ShapeError(f"mm: both operands must be 2-D matrices, got shapes {shapes[0]} and "
                         f"{shapes[1]}; use matmul (@) for batches or vectors")
    return matmul(a, b)


def _contract(inputs: tuple[str, ...], output: str, arrays: Any) -> np.ndarray:
    """np.einsum, after summing each operand over the letters only it has (and the output
    lacks), as PyTorch does first: with inf and nan the order matters ("i,il->i" with an
    infinite x and a zero in y is inf * sum(y), not a sum holding inf * 0 = nan)."""
    reduced_inputs, reduced = [], []
    for i, (letters, a) in enumerate(zip(inputs, arrays, strict=True)):
        elsewhere = set(output).union(*(s for j, s in enumerate(inputs) if j != i))
        private = tuple(k for k, c in enumerate(letters) if c not in elsewhere)
        if private:
            a = a.sum(axis=private)
            letters = "".join(c for c in letters if c in elsewhere)
        reduced_inputs.append(letters)
        reduced.append(a)
    return np.asarray(np.einsum(",".join(reduced_inputs) + "->" + output, *reduced))


class Einsum(Function):
    """einsum("ij,jk->ik", A, B). The gradient of operand i is einsum again: the output's
    gradient contracted with the other operands, onto operand i's letters (then broadcast over
    the letters only operand i had, which were summed away)."""

    shape_error = "do not fit the subscripts"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, inputs: tuple[str, ...] = (),
                output: str = "") -> np.ndarray:
        ctx.inputs, ctx.output, ctx.shapes = inputs, output, [a.shape for a in arrays]
        ctx.save_for_backward(*arrays)
        return _contract(inputs, output, arrays)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> tuple[Any, ...]:
        operands_ = ctx.saved_tensors
        grads: list[Any] = []
        for i, letters in enumerate(ctx.inputs):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(operands_) if j != i]
            other_letters = [s for j, s in enumerate(ctx.inputs) if j != i]
            known = set(ctx.output).union(*other_letters)
            kept = "".join(c for c in letters if c in known)
            g = Einsum.apply(grad, *others, inputs=(ctx.output, *other_letters), output=kept)
            # letters only this operand had were summed: their gradient is the same everywhere
            shape = tuple(n if c in known else 1 for c, n in zip(letters, ctx.shapes[i],
                                                                  strict=True))
            grads.append(g.reshape(shape).broadcast_to(ctx.shapes[i]))
        return tuple(grads)


def einsum(equation: str, *operands_: Any) -> Tensor:
    """Einstein summation, as torch.einsum: ``einsum("bij,bjk->bik", a, b)``.

    Letters name dims; a letter missing from the output (after ``->``, or, without an arrow,
    every letter that appears once, in alphabetical order) is summed over. Operands may also be
    given as one list. Supported: letters only (no ``...``), and each letter at most once per
    operand.
    """
    if len(operands_) == 1 and isinstance(operands_[0], list | tuple):
        operands_ = tuple(operands_[0])
    tensors = [t if isinstance(t, Tensor) else Tensor._make(np.asarray(t)) for t in operands_]
    equation = equation.replace(" ", "")
    left, arrow, output = equation.partition("->")
    inputs = tuple(left.split(","))
    if "." in equation:
        raise ShapeError(f"einsum: '...' (ellipsis) is not supported in {equation!r}; name every "
                         "dim with a letter")
    if not all(s.isalpha() for s in inputs + (output,) if s):
        raise ShapeError(f"einsum: subscripts must be letters, got {equation!r}")
    if not arrow:
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(inputs) != len(tensors):
        raise ShapeError(f"einsum: {equation!r} names {len(inputs)} operand(s), got "
                         f"{len(tensors)}")
    for s, t in zip(inputs, tensors, strict=True):
        if len(s) != t.ndim:
            raise ShapeError(f"einsum: subscripts {s!r} name {len(s)} dims, but the operand has "
                             f"shape {t.shape}")
        if len(set(s)) != len(s):
            raise ShapeError(f"einsum: a letter repeated within one operand ({s!r}, a diagonal) "
                             "is not supported")
    if len({t.dtype for t in tensors}) > 1:  # as matmul, and as PyTorch
        raise DTypeMismatchError(
            f"einsum: expected every operand to have the same dtype, got "
            f"{', '.join(str(t.dtype) for t in tensors)}; convert them first (e.g. x.float())")
    return Einsum.apply(*tensors, inputs=inputs, output=output)
