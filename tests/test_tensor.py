"""The Tensor API as a PyTorch user meets it: attributes, creation, dtype rules, operators.

Dtype rules (see ``tinynet/dtypes.py``): Python floats become the default dtype (float32
unless ``set_default_dtype`` says otherwise); numpy arrays keep theirs; a number (Python or
numpy scalar, or a 0-d array) never changes a tensor's dtype unless it is of a higher kind
(bool < int < float); two tensors, or a tensor and an array with dimensions, promote as numpy
does; true division of integers gives the default float dtype; only floating tensors may
require grad.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.errors import DTypeError, GraphError


@pytest.fixture
def float64_default() -> Iterator[None]:
    tn.set_default_dtype(tn.float64)
    try:
        yield
    finally:
        tn.set_default_dtype(tn.float32)


# ---- attributes ---------------------------------------------------------------------------


def test_attributes_of_a_leaf() -> None:
    x = tn.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert isinstance(x.data, np.ndarray)
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert x.ndim == 2 and x.dim() == 2
    assert x.numel() == 6
    assert x.size() == (2, 3) and x.size(0) == 2 and x.size(-1) == 3
    assert x.dtype == np.float32 and isinstance(x.dtype, np.dtype)
    assert x.requires_grad is False
    assert x.grad is None and x.grad_fn is None and x.is_leaf
    assert len(x) == 2


def test_attributes_of_an_op_result() -> None:
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    assert y.grad_fn is not None and y.grad_fn.name == "MulBackward"
    assert x.is_leaf and x.grad_fn is None


def test_numpy_shares_memory_and_refuses_tensors_that_require_grad() -> None:
    x = tn.tensor([1.0, 2.0])
    array = x.numpy()
    array[0] = 10
    assert x[0].item() == 10
    x.requires_grad_()
    with pytest.raises(GraphError, match=r"detach\(\)\.numpy\(\)"):
        x.numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [10, 2])


def test_T_reverses_dims_and_is_a_view() -> None:
    x = tn.tensor(np.arange(6.0).reshape(2, 3))
    assert x.T.shape == (3, 2)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    assert np.shares_memory(x.T.data, x.data)
    assert tn.zeros(2, 3, 4).T.shape == (4, 3, 2)


@pytest.mark.parametrize(
    ("values", "python_type"),
    [([2.5], float), (3, int), ([[True]], bool), (np.float16(1.5), float)],
)
def test_item_gives_a_python_number(values: Any, python_type: type) -> None:
    value = tn.tensor(values).item()
    assert type(value) is python_type


def test_detach_shares_memory_and_version_but_not_the_graph() -> None:
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert d.requires_grad is False and d.is_leaf
    assert np.shares_memory(d.data, x.data)
    d.add_(1)  # allowed: d does not require grad ...
    assert x._version.value == 1  # ... and x sees the change, as in PyTorch
    np.testing.assert_array_equal(x.data, [2, 3])


def test_requires_grad_underscore_returns_the_tensor_and_sets_the_flag() -> None:
    x = tn.tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    assert x.requires_grad_(False) is x and not x.requires_grad


def test_repr_looks_like_pytorch() -> None:
    assert repr(tn.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tn.tensor([1.0, 2.0], requires_grad=True)) == (
        "tensor([1., 2.], requires_grad=True)"
    )
    assert repr(tn.tensor([1.0], requires_grad=True) * 2) == "tensor([2.], grad_fn=<MulBackward>)"
    assert repr(tn.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tn.tensor([1.5], dtype=tn.float64)) == "tensor([1.5], dtype=float64)"


# ---- creation ---------------------------------------------------------------------------------


def test_tensor_copies_and_from_numpy_shares() -> None:
    source = np.array([1.0, 2.0])
    copied, shared = tn.tensor(source), tn.from_numpy(source)
    source[0] = 7
    assert copied[0].item() == 1 and shared[0].item() == 7
    assert shared.dtype == np.float64  # numpy arrays keep their dtype
    assert tn.as_tensor(shared) is shared


@pytest.mark.parametrize(
    ("make", "shape", "dtype", "fill"),
    [
        (lambda: tn.zeros(2, 3), (2, 3), np.float32, 0),
        (lambda: tn.zeros((2, 3)), (2, 3), np.float32, 0),
        (lambda: tn.ones(4, dtype=tn.int64), (4,), np.int64, 1),
        (lambda: tn.full((2, 2), 1.5), (2, 2), np.float32, 1.5),
        (lambda: tn.full((2,), 3), (2,), np.int64, 3),
        (lambda: tn.full((2,), True), (2,), np.bool_, True),
        (lambda: tn.zeros_like(tn.tensor([1, 2, 3])), (3,), np.int64, 0),
        (lambda: tn.ones_like(tn.zeros(2, 2), dtype=tn.float64), (2, 2), np.float64, 1),
        (lambda: tn.full_like(tn.zeros(3), 2.0), (3,), np.float32, 2.0),
        (lambda: tn.zeros(()), (), np.float32, 0),
    ],
)
def test_filled_creation_functions(make: Callable[[], tn.Tensor], shape: tuple[int, ...],
                                   dtype: type, fill: Any) -> None:
    t = make()
    assert t.shape == shape and t.dtype == dtype
    assert (t.data == fill).all()


def test_ranges_and_eye() -> None:
    a = tn.arange(5)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4]
    b = tn.arange(0, 1, 0.25)
    assert b.dtype == np.float32 and b.tolist() == [0, 0.25, 0.5, 0.75]
    c = tn.linspace(0, 1, 5)
    assert c.dtype == np.float32
    np.testing.assert_allclose(c.data, [0, 0.25, 0.5, 0.75, 1])
    e = tn.eye(3)
    assert e.dtype == np.float32
    np.testing.assert_array_equal(e.data, np.eye(3))
    assert tn.eye(2, 3).shape == (2, 3)


def test_random_creation_is_reproducible_with_manual_seed() -> None:
    tn.manual_seed(123)
    first = (tn.randn(2, 3), tn.rand(4), tn.randint(0, 10, (5,)))
    tn.manual_seed(123)
    second = (tn.randn(2, 3), tn.rand(4), tn.randint(0, 10, (5,)))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    randn, rand, randint = first
    assert randn.shape == (2, 3) and randn.dtype == np.float32
    assert rand.dtype == np.float32 and ((rand.data >= 0) & (rand.data < 1)).all()
    assert randint.dtype == np.int64 and ((randint.data >= 0) & (randint.data < 10)).all()
    assert tn.randint(10, size=4).shape == (4,)
    assert tn.randn(3, generator=7).tolist() == tn.randn(3, generator=7).tolist()


def test_creation_functions_accept_requires_grad() -> None:
    for t in (tn.zeros(2, requires_grad=True), tn.ones(2, requires_grad=True),
              tn.randn(2, requires_grad=True), tn.full((2,), 1.0, requires_grad=True),
              tn.tensor([1.0], requires_grad=True)):
        assert t.requires_grad and t.is_leaf


# ---- dtype rules -------------------------------------------------------------------------


def test_python_floats_become_float32_ints_int64_bools_bool() -> None:
    assert tn.tensor(1.5).dtype == np.float32
    assert tn.tensor([1, 2.5]).dtype == np.float32
    assert tn.tensor([]).dtype == np.float32
    assert tn.tensor([1, 2]).dtype == np.int64
    assert tn.tensor([True, False]).dtype == np.bool_


def test_set_default_dtype_changes_what_python_floats_become(float64_default: None) -> None:
    assert tn.get_default_dtype() == np.float64
    assert tn.tensor(1.5).dtype == np.float64
    assert tn.zeros(2).dtype == np.float64
    assert tn.randn(2).dtype == np.float64
    assert (tn.tensor([1, 2]) * 0.5).dtype == np.float64
    assert (tn.tensor([1, 2]) / 2).dtype == np.float64


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]
)
def test_numpy_arrays_keep_their_dtype(dtype: type) -> None:
    array = np.zeros(3, dtype=dtype)
    assert tn.tensor(array).dtype == dtype
    assert tn.from_numpy(array).dtype == dtype
    assert tn.tensor(np.float64(2.0)).dtype == np.float64  # numpy scalars too


@pytest.mark.parametrize("dtype", [tn.float16, tn.float32, tn.float64])
def test_floating_tensors_may_require_grad(dtype: np.dtype) -> None:
    x = tn.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad.data, [2, 4])


@pytest.mark.parametrize("dtype", [tn.int8, tn.int32, tn.int64, tn.uint8, tn.bool_])
def test_only_floating_tensors_may_require_grad(dtype: np.dtype) -> None:
    with pytest.raises(DTypeError, match=f"only floating point.*{dtype}"):
        tn.tensor([1, 0], dtype=dtype, requires_grad=True)
    with pytest.raises(DTypeError):
        tn.tensor([1, 0], dtype=dtype).requires_grad_()
    tn.tensor([1, 0], dtype=dtype).requires_grad_(False)  # switching it off is fine


def test_conversions() -> None:
    x = tn.tensor([1.7, -2.2])
    assert x.double().dtype == np.float64 and x.half().dtype == np.float16
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.to(tn.float64).dtype == np.float64 and x.float() is x
    assert x.astype("float16").dtype == np.float16 and x.type(tn.float64).dtype == np.float64


SCALARS: list[Any] = [
    2, 2.5, True, np.float64(2.5), np.float32(2.5), np.float16(2.5), np.int64(2), np.int8(2),
    np.array(2.5), np.array(2), np.bool_(True),
]
TENSOR_DTYPES = [tn.float16, tn.float32, tn.float64, tn.int32, tn.int64, tn.bool_]
ARITHMETIC = {"+": operator.add, "*": operator.mul, "-": operator.sub, "/": operator.truediv,
              "**": operator.pow}


def _expected_dtype(tensor_dtype: np.dtype, scalar: Any, op: str) -> np.dtype:
    """PyTorch's rule for tensor-op-scalar: the tensor's dtype unless the scalar is of a
    higher kind (bool < int < float); true division of integers gives the default float."""
    kind = np.asarray(scalar).dtype.kind
    rank = {"b": 0, "i": 1, "u": 1, "f": 2}
    if op == "/" and tensor_dtype.kind != "f":
        return tn.get_default_dtype()
    if rank[kind] <= rank[tensor_dtype.kind]:
        return tensor_dtype
    return tn.get_default_dtype() if kind == "f" else np.dtype(np.int64)


def test_scalars_never_change_a_tensors_dtype() -> None:
    wrong = []
    for dtype, scalar, op, scalar_on_the_left in itertools.product(
        TENSOR_DTYPES, SCALARS, sorted(ARITHMETIC), (False, True)
    ):
        if dtype == np.bool_ and np.asarray(scalar).dtype == np.bool_ and op in ("-", "**"):
            continue  # numpy has no boolean subtraction or power (PyTorch no subtraction)
        x = tn.tensor([1, 2], dtype=dtype)
        fn = ARITHMETIC[op]
        result = fn(scalar, x) if scalar_on_the_left else fn(x, scalar)
        expected_dtype = _expected_dtype(x.dtype, scalar, op)
        a, b = np.asarray(scalar).astype(expected_dtype), x.data.astype(expected_dtype)
        expected = fn(a, b) if scalar_on_the_left else fn(b, a)
        if not isinstance(result, tn.Tensor) or result.dtype != expected_dtype or not np.allclose(
            result.data.astype(np.float64), expected.astype(np.float64), rtol=1e-3
        ):
            where = f"scalar {op} tensor" if scalar_on_the_left else f"tensor {op} scalar"
            wrong.append(f"{where}: {dtype} tensor, scalar {scalar!r} -> "
                         f"{getattr(result, 'dtype', type(result))}, expected {expected_dtype}")
    assert not wrong, "\n".join(wrong)


def test_float32_times_numpy_float64_stays_float32() -> None:
    x = tn.tensor([1.0, 2.0])
    for y in (x * np.float64(2.0), np.float64(2.0) * x, x + np.array(2.0), x / np.float64(3)):
        assert y.dtype == np.float32
    assert (tn.tensor([1.0], dtype=tn.float16) * 1e-3).dtype == np.float16


PROMOTION_DTYPES = [tn.bool_, tn.uint8, tn.int8, tn.int32, tn.int64, tn.float16, tn.float32,
                    tn.float64]


def test_two_tensors_promote_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for a, b, b_is_array in itertools.product(PROMOTION_DTYPES, PROMOTION_DTYPES, (False, True)):
        x = tn.tensor([1, 0], dtype=a)
        other_array = np.array([1, 1], dtype=b)
        other = other_array if b_is_array else tn.tensor(other_array)
        promoted = torch.promote_types(torch.from_numpy(np.ones(1, a)).dtype,
                                       torch.from_numpy(np.ones(1, b)).dtype)
        want = torch.zeros(1, dtype=promoted).numpy().dtype
        assert (x + other).dtype == want, (a, b)
        assert (other * x).dtype == want, (a, b)
        both_integer = a.kind in "biu" and b.kind in "biu"  # true division gives floats
        expected = tn.get_default_dtype() if both_integer else want
        assert (x / other).dtype == expected, (a, b)


# ---- operators -------------------------------------------------------------------------------


OTHER_OPERANDS: list[Any] = [
    3, 1.5, np.float64(1.5), np.int64(3), np.array(1.5), np.array([1.5, 2.5]), [1.5, 2.5],
]
BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
          ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("other", OTHER_OPERANDS, ids=lambda o: f"{type(o).__name__}:{o}")
def test_operators_with_numbers_and_arrays_on_either_side_return_tensors(
    op: str, other: Any
) -> None:
    x = tn.tensor([2.0, 3.0], requires_grad=True)
    fn = BINARY[op]
    # numbers keep float32; an array with dimensions promotes as numpy (float64 here)
    promotes = isinstance(other, np.ndarray) and other.ndim > 0
    dtype = np.result_type(np.float32, other) if promotes else np.dtype(np.float32)
    for result, expected in (
        (fn(x, other), fn(x.data.astype(dtype), np.asarray(other, dtype=dtype))),
        (fn(other, x), fn(np.asarray(other, dtype=dtype), x.data.astype(dtype))),
    ):
        assert isinstance(result, tn.Tensor), type(result)
        np.testing.assert_allclose(result.data, expected, rtol=1e-6)
        if op in ("<", "<=", ">", ">=", "==", "!="):
            assert result.dtype == np.bool_ and not result.requires_grad
        else:
            assert result.dtype == dtype and result.requires_grad


def test_matmul_with_numpy_arrays_on_either_side() -> None:
    x = tn.tensor(np.ones((2, 2)), requires_grad=True)
    m = np.arange(4.0).reshape(2, 2)
    for result in (x @ m, m @ x, tn.matmul(m, x)):
        assert isinstance(result, tn.Tensor) and result.requires_grad


def test_comparisons_give_bool_tensors_without_grad() -> None:
    x = tn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tn.tensor([3.0, 2.0, 1.0], requires_grad=True)
    for result, expected in (
        (x < y, [True, False, False]), (x <= y, [True, True, False]),
        (x > y, [False, False, True]), (x >= y, [False, True, True]),
        (x == y, [False, True, False]), (x != y, [True, False, True]),
    ):
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        assert result.tolist() == expected
    assert (~(x < y)).tolist() == [False, True, True]


def test_tensors_hash_by_identity_and_compare_elementwise() -> None:
    x = tn.tensor([1.0])
    assert len({x, x, tn.tensor([1.0])}) == 2  # usable as dict keys / in sets
    assert bool(x == tn.tensor([1.0]))


# ---- dim/axis and keepdim/keepdims ------------------------------------------------------------


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "argmax", "argmin"])
def test_reductions_take_dim_or_axis_and_keepdim_or_keepdims(name: str) -> None:
    data = np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 6.0]])
    x = tn.tensor(data)
    reference = getattr(np, name)
    method, function = getattr(x, name), getattr(tn, name)
    for result in (method(dim=1), method(axis=1), method(1), function(x, dim=1),
                   function(x, axis=1)):
        if name in ("max", "min"):  # over one dim: (values, indices), as torch.max
            np.testing.assert_array_equal(result.indices.data, getattr(np, "arg" + name)(data, 1))
            result = result.values
        np.testing.assert_allclose(result.data, reference(data, axis=1))
    for result in (method(dim=0, keepdim=True), method(axis=0, keepdims=True),
                   method(0, True), function(x, dim=0, keepdims=True)):
        result = result.values if name in ("max", "min") else result
        assert result.shape == (1, 3)
        np.testing.assert_allclose(result.data, reference(data, axis=0, keepdims=True))
    with pytest.raises(TypeError, match="dim or axis"):
        method(dim=0, axis=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        method(dims=0)


def test_reductions_over_several_dims_and_negative_dims() -> None:
    data = np.arange(24.0).reshape(2, 3, 4)
    x = tn.tensor(data)
    np.testing.assert_array_equal(x.sum(dim=(0, -1)).data, data.sum(axis=(0, 2)))
    np.testing.assert_array_equal(x.max(axis=(-2, -1), keepdims=True).data,
                                  data.max(axis=(1, 2), keepdims=True))
    np.testing.assert_array_equal(x.mean().data, data.mean())


def test_other_functions_take_dim_or_axis() -> None:
    x = tn.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(x.softmax(axis=0).data, x.softmax(dim=0).data)
    np.testing.assert_allclose(x.log_softmax(axis=0).data, tn.log_softmax(x, dim=0).data)
    assert tn.cat([x, x], axis=1).shape == tn.cat([x, x], dim=1).shape == (2, 6)
    assert tn.stack([x, x], axis=2).shape == tn.stack([x, x], dim=2).shape == (2, 3, 2)
    assert tn.zeros(2, 1).squeeze(axis=1).shape == tn.zeros(2, 1).squeeze(dim=1).shape == (2,)


# ---- shapes, indexing and in-place ------------------------------------------------------------


def test_shape_methods() -> None:
    x = tn.zeros(2, 3, 4)
    assert x.reshape(6, 4).shape == x.view(-1, 4).shape == x.reshape((6, 4)).shape == (6, 4)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.unsqueeze(1).shape == (2, 1, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert tn.zeros(1, 3, 1).squeeze().shape == (3,)
    assert tn.zeros(1, 3).expand(2, -1).shape == (2, 3)
    assert tn.zeros(3).broadcast_to(2, 3).shape == (2, 3)


def test_indexing_matches_numpy() -> None:
    data = np.arange(12.0).reshape(3, 4)
    x = tn.tensor(data)
    for index in (1, (1, 2), slice(None, None, -1), (Ellipsis, 1), [0, 2, 2],
                  (np.array([0, 1]), np.array([3, 3])), data > 5, None):
        np.testing.assert_array_equal(x[index].data, data[index])
    np.testing.assert_array_equal(x[tn.tensor([2, 0])].data, data[[2, 0]])
    np.testing.assert_array_equal(x[tn.tensor(data > 5)].data, data[data > 5])


def test_setitem_and_in_place_methods_bump_the_version_counter() -> None:
    x = tn.zeros(4, dtype=tn.float64)
    steps: list[Callable[[], Any]] = [
        lambda: x.__setitem__(slice(0, 2), 1.0), lambda: x.add_(1), lambda: x.sub_(0.5),
        lambda: x.mul_(4), lambda: x.div_(2), lambda: x.clamp_(0, 2), lambda: x.fill_(3),
        lambda: x.copy_(np.arange(4.0)), lambda: x.zero_(),
    ]
    for count, change in enumerate(steps, start=1):
        change()
        assert x._version.value == count
    np.testing.assert_array_equal(x.data, [0, 0, 0, 0])
    x[1:3] = tn.tensor([5.0, 6.0])
    np.testing.assert_array_equal(x.data, [0, 5, 6, 0])


def test_in_place_arithmetic_with_a_numpy_scalar_keeps_the_dtype() -> None:
    y = tn.tensor([1.0, 2.0])
    y.add_(np.float64(0.5))
    y.mul_(np.float64(2.0))
    assert y.dtype == np.float32 and y.tolist() == [3.0, 5.0]


def test_augmented_assignment_updates_a_parameter_in_place_inside_no_grad() -> None:
    w = tn.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    same = w
    with tn.no_grad():
        w -= 0.5 * w.grad
        w *= 2.0
    assert w is same and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.data, [0.0, 0.0])
    assert w._version.value == 2


def test_augmented_assignment_on_a_leaf_requiring_grad_in_grad_mode_raises() -> None:
    w = tn.tensor([1.0], requires_grad=True)
    with pytest.raises(GraphError, match="add_: a leaf tensor that requires grad"):
        w += 1.0


def test_augmented_assignment_in_a_graph_is_recorded_and_writes_in_place() -> None:
    x = tn.tensor([1.0, 2.0], dtype=tn.float64, requires_grad=True)
    acc = tn.zeros(2, dtype=tn.float64)
    memory = acc.data
    acc += x * x  # as PyTorch: acc joins the graph, its own memory is written
    acc *= 3.0
    assert acc.data is memory and acc._version.value == 2
    assert acc.grad_fn is not None and not acc.is_leaf
    acc.sum().backward()
    np.testing.assert_allclose(x.grad.data, [6.0, 12.0])


def test_in_place_ops_refuse_what_the_tensor_cannot_hold() -> None:
    ints = tn.tensor([1, 2])
    with pytest.raises(DTypeError, match="mul_: the result can't be stored in place in a int64"):
        ints.mul_(2.5)
    assert ints.tolist() == [1, 2]
    with pytest.raises(tn.ShapeError, match="add_: shapes \\(3,\\) and \\(2, 3\\)"):
        tn.zeros(3).add_(np.ones((2, 3)))


def test_in_place_op_with_an_operand_requiring_grad_is_recorded() -> None:
    b = tn.tensor([1.0], requires_grad=True)
    z = tn.zeros(1).add_(b, alpha=2)
    assert z.grad_fn is not None
    z.sum().backward()
    assert b.grad.tolist() == [2.0]
