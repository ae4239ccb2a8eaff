"""The everyday helpers of issue 21 that are not ops with values to compare (those are in the op
database, tests/opdb.py): in-place fills on parameters, inference_mode, tensor queries,
new_* constructors, and the errors of the new indexing ops."""

from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn


def test_normal_and_uniform_fill_a_parameter_in_place_under_no_grad() -> None:
    w = tn.zeros(50, 40, requires_grad=True)
    with pytest.raises(tn.GraphError, match="normal_"):
        w.normal_()
    version = w._version.value
    with tn.no_grad():
        same = w.normal_(0.0, 0.02, generator=3)
    assert same is w and w._version.value == version + 1 and w.dtype == np.float32
    assert abs(float(w.data.std()) - 0.02) < 0.002 and abs(float(w.data.mean())) < 0.002
    first = w.data.copy()
    with tn.no_grad():
        w.normal_(0.0, 0.02, generator=3)
    assert np.array_equal(w.data, first)  # a seed makes the fill reproducible
    with tn.no_grad():
        w.uniform_(-0.5, 0.25)
    assert w.data.min() >= -0.5 and w.data.max() < 0.25 and w.data.std() > 0.1


def test_fills_refuse_integer_tensors_and_bad_parameters() -> None:
    with pytest.raises(tn.DTypeError, match="normal_"):
        tn.zeros(3, dtype=tn.int64).normal_()
    with pytest.raises(tn.ValueRangeError, match="std"):
        tn.zeros(3).normal_(0.0, -1.0)
    with pytest.raises(tn.ValueRangeError, match="from <= to"):
        tn.zeros(3).uniform_(1.0, 0.0)


def test_bernoulli_draws_only_zeros_and_ones_with_the_given_probabilities() -> None:
    p = tn.tensor([[0.0, 1.0, 0.5]] * 2000)
    draws = tn.bernoulli(p, generator=0)
    assert draws.dtype == np.float32 and set(np.unique(draws.data)) <= {0.0, 1.0}
    assert draws.data[:, 0].sum() == 0 and draws.data[:, 1].sum() == 2000
    assert abs(draws.data[:, 2].mean() - 0.5) < 0.05
    with pytest.raises(tn.ValueRangeError, match="bernoulli"):
        tn.bernoulli(tn.tensor([1.5]))


def test_normal_takes_tensor_or_number_parameters() -> None:
    mean = tn.tensor([0.0, 10.0], dtype=tn.float64)
    out = tn.normal(mean, tn.tensor([1e-9, 1e-9], dtype=tn.float64), generator=1)
    assert out.dtype == np.float64 and np.allclose(out.data, [0.0, 10.0], atol=1e-6)
    assert tn.normal(2.0, 3.0, size=(4, 5)).shape == (4, 5)
    with pytest.raises(tn.DTypeError, match="size"):
        tn.normal(0.0, 1.0)


def test_inference_mode_records_no_graph_as_a_block_and_as_a_decorator() -> None:
    x = tn.ones(2, requires_grad=True)
    with tn.inference_mode():
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with tn.inference_mode(False):
        assert (x * 2).requires_grad

    @tn.inference_mode()
    def called() -> bool:
        return (x * 2).requires_grad

    @tn.inference_mode
    def bare() -> bool:
        return (x * 2).requires_grad

    assert not called() and not bare() and tn.is_grad_enabled()


def test_queries_about_a_tensor() -> None:
    x = tn.zeros(2, 3)
    assert tn.is_tensor(x) and not tn.is_tensor(np.zeros(2))
    assert x.is_floating_point() and tn.is_floating_point(x)
    assert not tn.tensor([1]).is_floating_point()
    assert x.nelement() == x.numel() == tn.numel(x) == 6
    assert x.is_contiguous() and not x.T.is_contiguous() and x.T.contiguous().is_contiguous()
    like = tn.empty_like(x, dtype=tn.float64)
    assert like.shape == (2, 3) and like.dtype == np.float64


def test_new_constructors_keep_the_dtype_unless_told() -> None:
    x = tn.zeros(2, dtype=tn.float64)
    assert x.new_zeros(2, 3).dtype == np.float64 and x.new_zeros((2, 3)).shape == (2, 3)
    assert x.new_ones(4, dtype=tn.int64).dtype == np.int64
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert x.new_tensor([1, 2]).dtype == np.float64
    assert x.new_empty(3, requires_grad=True).requires_grad
    with pytest.raises(tn.DTypeError, match="new_zeros"):
        x.new_zeros(2.5)


def test_in_place_index_writes_are_refused_on_a_leaf_that_requires_grad() -> None:
    w = tn.zeros(2, 3, requires_grad=True)
    with pytest.raises(tn.GraphError, match="scatter_"):
        w.scatter_(1, tn.tensor([[0], [2]]), 1.0)
    with tn.no_grad():
        w.scatter_(1, tn.tensor([[0], [2]]), 1.0)
    assert w.data.tolist() == [[1, 0, 0], [0, 0, 1]]
    one_hot = tn.zeros(3, 4).scatter_(1, tn.tensor([[3], [0], [1]]), 1.0)
    assert one_hot.data.argmax(1).tolist() == [3, 0, 1]


def test_index_ops_name_the_problem() -> None:
    x = tn.zeros(2, 3)
    with pytest.raises(tn.ValueRangeError, match="index_select: index out of range"):
        x.index_select(1, tn.tensor([3]))
    with pytest.raises(tn.DTypeError, match="index must be an integer tensor"):
        x.index_select(1, tn.tensor([0.0]))
    with pytest.raises(tn.ValueRangeError, match="scatter: index out of range"):
        x.scatter(1, tn.tensor([[5]]), 1.0)
    with pytest.raises(tn.ShapeError, match="index_add: source"):
        x.index_add(0, tn.tensor([0]), tn.zeros(2, 3))
    with pytest.raises(tn.ShapeError, match="outer: expects two 1-D"):
        tn.outer(x, x)
    with pytest.raises(ZeroDivisionError, match="floor_divide"):
        tn.tensor([1, 2]) // tn.tensor([1, 0])
    with pytest.raises(tn.DTypeError, match="frac"):
        tn.tensor([1]).frac()


def test_floor_divide_and_remainder_follow_python_signs() -> None:
    a, b = tn.tensor([7, -7, 7, -7]), tn.tensor([2, 2, -2, -2])
    assert (a // b).tolist() == [7 // 2, -7 // 2, 7 // -2, -7 // -2]
    assert (a % b).tolist() == [7 % 2, -7 % 2, 7 % -2, -7 % -2]
    assert (7 // tn.tensor([2.0])).tolist() == [3.0] and (7 % tn.tensor([-2])).tolist() == [-1]
