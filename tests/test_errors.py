"""Errors are part of the interface: each names the op, the shapes or dtypes, and the fix.

tinynet's exceptions (``tinynet/errors.py``) also subclass the Python exception a numpy or
PyTorch user already catches: ShapeError and FileFormatError are ValueErrors, DTypeError is a
TypeError, GraphError, AnomalyError and GradcheckError are RuntimeErrors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.errors import (
    AnomalyError,
    DTypeError,
    FileFormatError,
    GradcheckError,
    GraphError,
    ShapeError,
    TinynetError,
)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ShapeError, ValueError),
        (FileFormatError, ValueError),
        (DTypeError, TypeError),
        (GraphError, RuntimeError),
        (AnomalyError, RuntimeError),
        (GradcheckError, RuntimeError),
    ],
)
def test_exception_classes_subclass_the_builtin_users_already_catch(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, TinynetError) and issubclass(error, builtin)
    assert getattr(tn, error.__name__) is error  # exported at the top level


def test_a_shape_error_is_caught_by_except_value_error() -> None:
    try:
        tn.zeros(3) + tn.zeros(4)
    except ValueError as e:
        assert isinstance(e, TinynetError)
    else:
        pytest.fail("no error raised")


# ---- shapes -----------------------------------------------------------------------------------


def test_matmul_names_the_shapes_that_are_not_aligned() -> None:
    with pytest.raises(ShapeError, match=r"^matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        tn.zeros(2, 3) @ tn.zeros(4, 5)
    with pytest.raises(ShapeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        tn.matmul(tn.zeros(2, 3), np.zeros((4, 5)))
    with pytest.raises(ShapeError, match=r"matmul: shapes \(\) and \(2,\).*use \* for scalars"):
        tn.tensor(1.0) @ tn.zeros(2)


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
        ("maximum", tn.maximum),
        ("minimum", tn.minimum),
    ],
)
def test_binary_ops_name_the_shapes_that_cannot_be_broadcast(name: str, fn: Callable) -> None:
    message = rf"^{name}: shapes \(3,\) and \(4,\) cannot be broadcast"
    with pytest.raises(ShapeError, match=message):
        fn(tn.zeros(3), tn.ones(4))
    with pytest.raises(ShapeError, match=message):
        fn(tn.zeros(3), np.ones(4))  # a numpy array operand: same message, not numpy's


def test_add_message_exactly() -> None:
    with pytest.raises(ShapeError) as info:
        tn.zeros(3) + tn.zeros(4)
    assert str(info.value).startswith("add: shapes (3,) and (4,) cannot be broadcast")


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda: tn.zeros(3) < tn.zeros(4), r"less: shapes \(3,\) and \(4,\) cannot be broadcast"),
        (lambda: tn.where(tn.tensor([True, False]), tn.zeros(3), tn.zeros(2)),
         r"where: shapes .*cannot be broadcast"),
        (lambda: tn.zeros(3).reshape(2, 2), r"reshape: shapes \(3,\) cannot be reshaped"),
        (lambda: tn.zeros(3).broadcast_to(4), r"broadcast_to: shapes \(3,\) cannot be broadcast"),
        (lambda: tn.cat([tn.zeros(2, 3), tn.zeros(3, 2)]),
         r"cat: shapes \(2, 3\) and \(3, 2\) cannot be concatenated"),
        (lambda: tn.stack([tn.zeros(2), tn.zeros(3)]),
         r"stack: shapes \(2,\) and \(3,\) cannot be stacked"),
        (lambda: tn.zeros(2, 3).permute(0, 0), r"permute: dims \(0, 0\) are not a permutation"),
        (lambda: tn.zeros(2, 3).sum(dim=2), r"sum: dim 2 is out of range .* 2 dimension"),
        (lambda: tn.zeros(2, 3).sum(dim=(1, -1)), r"sum: dim \(1, -1\) repeats a dimension"),
        (lambda: tn.zeros(2, 3).softmax(dim=-3), r"softmax: dim -3 is out of range"),
        (lambda: tn.zeros(2, 3).size(2), r"size: dim 2 is out of range"),
        (lambda: tn.tensor(1.0).size(0), r"size: .*0-d tensor has no dimensions"),
        (lambda: tn.zeros(0).max(), r"max: cannot reduce an empty tensor of shape \(0,\)"),
        (lambda: tn.zeros(3).__setitem__(slice(None), np.zeros(4)),
         r"setitem: value of shape \(4,\) cannot be assigned"),
        (lambda: tn.ops.linear(tn.zeros(2, 3), tn.zeros(4, 5)),
         r"linear: shapes \(2, 3\) and \(4, 5\) are not aligned \(x is \(\.\.\., in_features\)"),
        (lambda: (tn.zeros(2, requires_grad=True) * 2).backward(np.ones(3)),
         r"backward: gradient has shape \(3,\) but the tensor has shape \(2,\)"),
    ],
)
def test_shape_errors_name_the_op_and_the_shapes(fn: Callable[[], Any], message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        fn()


def test_index_out_of_range_names_the_shape() -> None:
    with pytest.raises(IndexError, match=r"index 5 is out of bounds.*tensor of shape \(3,\)"):
        tn.zeros(3)[5]


# ---- dtypes and data ------------------------------------------------------------------------


def test_requires_grad_on_an_integer_tensor_names_the_dtype_and_the_fix() -> None:
    with pytest.raises(DTypeError, match=r"only floating point tensors.*int64.*x\.float\(\)"):
        tn.tensor([1, 2], requires_grad=True)
    with pytest.raises(DTypeError, match="only floating point"):
        tn.zeros(2, dtype=tn.int64, requires_grad=True)
    with pytest.raises(DTypeError, match="only floating point"):
        tn.tensor([True]).requires_grad = True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([[1, 2], [3]], r"cannot make a tensor from this data \(list\).*must be rectangular"),
        ([[1.0], [2.0, 3.0]], r"must be rectangular"),
        ("abc", r"cannot make a tensor from a string \('abc'\)"),
        (b"abc", r"cannot make a tensor from a string"),
        (["a", "b"], r"dtype <U1 is not supported"),
        (np.array([1, None], dtype=object), r"dtype object is not supported"),
        ([1, None], r"dtype object is not supported"),
        ({"a": 1}, r"dtype object is not supported"),
        ([1 + 2j], r"dtype complex128 is not supported"),
    ],
)
def test_data_a_tensor_cannot_hold_raises_dtype_error(data: Any, message: str) -> None:
    with pytest.raises(DTypeError, match=message):
        tn.tensor(data)


def test_from_numpy_refuses_object_arrays_and_non_arrays() -> None:
    with pytest.raises(DTypeError, match="dtype object is not supported"):
        tn.from_numpy(np.array([None]))
    with pytest.raises(DTypeError, match="from_numpy: expected a numpy array, got list"):
        tn.from_numpy([1.0])


def test_dtype_arguments_that_are_not_dtypes() -> None:
    with pytest.raises(DTypeError, match="not a dtype tinynet understands"):
        tn.zeros(2, dtype="not-a-dtype")
    with pytest.raises(DTypeError, match="complex128 is not supported"):
        tn.zeros(2, dtype=np.complex128)
    with pytest.raises(DTypeError, match="only floating dtypes can be the default, got int64"):
        tn.set_default_dtype(tn.int64)


def test_operands_a_tensor_cannot_combine_with() -> None:
    with pytest.raises(DTypeError, match="mul: unsupported operand type str"):
        tn.zeros(2) * "a"
    with pytest.raises(DTypeError, match="complex numbers are not supported"):
        tn.zeros(2) + 1j
    with pytest.raises(DTypeError, match="tensors used as indices must be integer or bool"):
        tn.zeros(3)[tn.tensor([0.0])]


# ---- graph misuse -----------------------------------------------------------------------------


def test_numpy_on_a_tensor_that_requires_grad_names_the_fix() -> None:
    with pytest.raises(GraphError, match=r"use tensor\.detach\(\)\.numpy\(\)"):
        tn.zeros(2, requires_grad=True).numpy()


def test_item_and_bool_of_several_elements() -> None:
    with pytest.raises(GraphError, match=r"item: only one-element tensors.*shape \(2,\)"):
        tn.zeros(2).item()
    with pytest.raises(GraphError, match=r"ambiguous; use \.any\(\) or \.all\(\)"):
        bool(tn.zeros(2))


def test_in_place_on_a_tensor_in_a_graph_names_no_grad() -> None:
    x = tn.zeros(2, requires_grad=True)
    with pytest.raises(GraphError, match=r"add_: a leaf tensor that requires grad .*no_grad"):
        x.add_(1)
    with pytest.raises(GraphError, match=r"fill_: a tensor that is part of a graph"):
        (x * 2).fill_(2)
    y = x * 2
    (y + 1).sum()
    with pytest.raises(GraphError, match=r"mul_: this tensor was already used by another op"):
        y.mul_(2)  # the Add node reads y: rebinding y's grad_fn would reroute its gradient
    with pytest.raises(GraphError, match="setitem: assigning a tensor that requires grad"):
        tn.zeros(2)[0] = x[0]


def test_changing_requires_grad_of_a_non_leaf() -> None:
    y = tn.zeros(2, requires_grad=True) * 2
    with pytest.raises(GraphError, match=r"only change requires_grad of leaf tensors.*detach"):
        y.requires_grad = False


def test_register_hook_on_a_tensor_without_grad() -> None:
    with pytest.raises(GraphError, match="doesn't require grad"):
        tn.zeros(2).register_hook(lambda g: g)


def test_anomaly_mode_names_the_op_that_produced_nan() -> None:
    x = tn.tensor([-1.0, 1.0], requires_grad=True)
    with tn.autograd.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"Log: forward produced nan.*test_errors\.py"):
            x.log()
        z = tn.tensor([0.0, 4.0], requires_grad=True)
        y = z.sqrt().sum()  # a finite forward, but d/dz sqrt(z) = 1/(2 sqrt(z)) is inf at 0
        with pytest.raises(AnomalyError, match=r"SqrtBackward: backward produced inf"):
            y.backward()


# ---- gradcheck ----------------------------------------------------------------------------------


def test_gradcheck_rejects_float32_inputs() -> None:
    with pytest.raises(GradcheckError, match=r"inputs must be float64.*float32.*x\.double\(\)"):
        tn.gradcheck(lambda t: t * 2, [tn.zeros(2, requires_grad=True)])


def test_gradcheck_names_the_element_where_a_wrong_backward_disagrees() -> None:
    from tinynet.autograd import Function

    class _WrongSquare(Function):  # leading underscore: kept out of the op registry
        @staticmethod
        def forward(ctx: Function, x: np.ndarray) -> np.ndarray:
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx: Function, grad: Any) -> Any:
            (x,) = ctx.saved_tensors
            return grad * x  # should be 2x

    x = tn.tensor([1.0, 3.0], dtype=tn.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2,\)\) at element \(1,\)"):
        tn.gradcheck(_WrongSquare.apply, [x])
    assert tn.gradcheck(_WrongSquare.apply, [x], raise_exception=False) is False


def test_gradcheck_without_inputs_that_require_grad() -> None:
    with pytest.raises(GradcheckError, match="no input requires grad"):
        tn.gradcheck(lambda t: t * 2, [tn.zeros(2, dtype=tn.float64)])


# ---- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "error", "message"),
    [
        (lambda: tn.zeros(2).sum(dim=0, axis=0), TypeError, r"sum\(\): give dim or axis"),
        (lambda: tn.zeros(2).mean(dims=0), TypeError, r"mean\(\) got unexpected keyword"),
        (lambda: tn.zeros(2).squeeze(dims=0), TypeError, r"squeeze\(\) got unexpected"),
        (lambda: tn.zeros(2).sum(dim="a"), DTypeError, r"sum: dim must be an integer"),
        (lambda: tn.zeros(2).reshape("a"), DTypeError, r"shape must be integers"),
        (lambda: tn.step(tn.zeros(2), surrogate="tanh"), ValueError,
         r"step: surrogate must be None, 'straight_through' or 'sigmoid', got 'tanh'"),
        (lambda: tn.ops.linear(tn.zeros(1, 2), tn.zeros(3, 2), activation="gelu"), ValueError,
         r"linear: activation must be one of"),
        (lambda: tn.zeros(2).clip(), ValueError, r"clip: at least one of min and max"),
        (lambda: tn.cat([]), ValueError, r"cat: expected a non-empty sequence"),
        (lambda: tn.stack([]), ValueError, r"stack: expected a non-empty sequence"),
        (lambda: tn.zeros(2, 2).argmax(dim=(0, 1)), ValueError, r"argmax: dim must be a single"),
    ],
)
def test_bad_arguments_name_the_function(fn: Callable[[], Any], error: type[Exception],
                                         message: str) -> None:
    with pytest.raises(error, match=message):
        fn()
