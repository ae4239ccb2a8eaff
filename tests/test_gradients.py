"""Every differentiable op: autograd against central differences, forward against numpy.

For each op in ``tinynet.autograd.Function.registry`` hypothesis draws shapes (0-d, size-1
dims, broadcasting pairs), float64 values away from the op's kinks, and a random memory layout
for each input (see ``strategies.py``). ``tn.gradcheck`` then compares every element of the
autograd Jacobian with central differences, with atol 1e-7 and rtol 1e-6 (its defaults are
1e-5 and 1e-3; in float64 central differences are good to about 1e-9 here).

Where an op has a kink, the convention tinynet picks there is tested by hand below: ties of
max/min split the gradient evenly, |x|, relu and step have derivative 0 at 0, clip passes the
gradient at its bounds. Step's true derivative is exactly zero; its training surrogates are
checked against their documented formulas.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import (
    CASES,
    Case,
    Layout,
    lay_out,
    layouts,
    registered_ops,
    shapes,
    values,
    with_layouts,
)

import tinynet as tn

OPS = sorted(CASES)


def _leaves(case: Case) -> list[tn.Tensor]:
    return [tn.tensor(a, dtype=tn.float64, requires_grad=True) for a in case.inputs]


def test_every_registered_op_has_a_gradient_check() -> None:
    from opdb import STAND_IN_GRADIENTS, functions_reached_by_entries  # (the others)

    registered = registered_ops()
    missing = sorted(registered - set(CASES) - functions_reached_by_entries()
                     - STAND_IN_GRADIENTS)
    stale = sorted(set(CASES) - registered)
    assert not missing, (f"ops without a gradient check in strategies.CASES or an entry in "
                         f"tests/opdb.py: {missing}")
    assert not stale, f"strategies.CASES names ops that no longer exist: {stale}"


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_op_matches_numpy_and_finite_differences(op: str, data: st.DataObject) -> None:
    case = data.draw(CASES[op]().flatmap(with_layouts), label="case")
    leaves = _leaves(case)
    out = case.fn(*leaves)
    assert isinstance(out, tn.Tensor)
    assert out.dtype == np.float64
    assert out.shape == np.shape(case.expected)
    np.testing.assert_allclose(out.data, case.expected, rtol=1e-12, atol=1e-12)
    assert out.requires_grad
    assert tn.gradcheck(case.fn, leaves, eps=case.eps, atol=case.atol, rtol=case.rtol)


# ---- the layouts really are what they claim ---------------------------------------------------


@given(data=st.data())
def test_lay_out_gives_an_equal_tensor_in_the_drawn_memory_layout(data: st.DataObject) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(values(shape))
    layout = data.draw(layouts(len(shape)))
    laid = lay_out(tn.tensor(x), layout)
    np.testing.assert_array_equal(laid.data, x)
    for memory_axis, step in enumerate(layout.steps):
        axis = layout.order[memory_axis]
        if shape[axis] > 1 and step < 0:
            assert laid.data.strides[axis] < 0
        if shape[axis] > 1 and abs(step) == 2:
            assert not laid.data.flags.c_contiguous


def test_lay_out_of_a_matrix_stored_transposed_with_gaps_and_reversed() -> None:
    x = np.arange(6.0).reshape(2, 3)
    # memory axis 0 is tensor axis 1, with a gap after each element; axis 0 is stored reversed
    laid = lay_out(tn.tensor(x), Layout(order=(1, 0), steps=(2, -1)))
    np.testing.assert_array_equal(laid.data, x)
    assert laid.data.strides == (-8, 2 * 2 * 8)


# ---- kinks and ties, by hand -------------------------------------------------------------------


def test_max_over_a_dim_sends_the_gradient_to_the_first_maximum_as_torch() -> None:
    x = tn.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=tn.float64, requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.tolist() == [1, 0]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 0], [1, 0, 0]])


def test_amax_ties_split_the_gradient_evenly() -> None:
    x = tn.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=tn.float64, requires_grad=True)
    x.amax(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])

    y = tn.tensor([[1.0, 3.0], [3.0, 0.0]], dtype=tn.float64, requires_grad=True)
    y.max().backward()  # over everything: two elements share the max
    np.testing.assert_array_equal(y.grad.data, [[0, 0.5], [0.5, 0]])


def test_min_ties_over_a_dim_pick_the_first_and_amin_splits() -> None:
    x = tn.tensor([[5.0, -1.0, -1.0, 0.0]], dtype=tn.float64, requires_grad=True)
    (x.min(dim=-1, keepdim=True).values * 4).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 4, 0, 0]])
    x.grad = None
    (x.amin(dim=-1, keepdim=True) * 4).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 2, 2, 0]])


def test_maximum_and_minimum_ties_split_the_gradient_evenly() -> None:
    a = tn.tensor([1.0, 2.0, 3.0], dtype=tn.float64, requires_grad=True)
    b = tn.tensor([1.0, 5.0, 0.0], dtype=tn.float64, requires_grad=True)
    tn.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 0, 1])
    np.testing.assert_array_equal(b.grad.data, [0.5, 1, 0])
    a.grad = b.grad = None
    tn.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 1, 0])
    np.testing.assert_array_equal(b.grad.data, [0.5, 0, 1])


def test_maximum_with_a_broadcast_tie_sums_the_halves() -> None:
    a = tn.tensor([2.0, 2.0, 7.0], dtype=tn.float64, requires_grad=True)
    b = tn.tensor(2.0, dtype=tn.float64, requires_grad=True)
    tn.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 0.5, 1])
    assert b.grad.item() == 1.0  # two halves


def test_abs_relu_and_step_have_zero_derivative_at_zero() -> None:
    for fn in (tn.abs, tn.relu, tn.step):
        x = tn.tensor([0.0, -0.0], dtype=tn.float64, requires_grad=True)
        fn(x).sum().backward()
        np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_clip_passes_the_gradient_at_its_bounds_and_blocks_it_outside() -> None:
    x = tn.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=tn.float64, requires_grad=True)
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0])


# ---- step: zero derivative, and its surrogates ---------------------------------------------------


@given(x=hnp.arrays(np.float64, shapes(), elements=st.floats(-5, 5)), data=st.data())
def test_step_true_derivative_is_exactly_zero(x: np.ndarray, data: st.DataObject) -> None:
    t = tn.tensor(x, requires_grad=True)
    upstream = data.draw(values(x.shape))
    tn.step(t).backward(upstream)
    assert t.grad is not None
    np.testing.assert_array_equal(t.grad.data, np.zeros_like(x))


@given(x=hnp.arrays(np.float64, shapes(), elements=st.floats(-3, 3)), data=st.data())
def test_step_straight_through_surrogate_is_one_inside_the_unit_interval(
    x: np.ndarray, data: st.DataObject
) -> None:
    upstream = data.draw(values(x.shape))
    t = tn.tensor(x, requires_grad=True)
    y = t.step(surrogate="straight_through")
    np.testing.assert_array_equal(y.data, (x >= 0).astype(np.float64))  # forward unchanged
    y.backward(upstream)
    np.testing.assert_array_equal(t.grad.data, upstream * (np.abs(x) <= 1))


@given(x=hnp.arrays(np.float64, shapes(), elements=st.floats(-30, 30)), data=st.data())
def test_step_sigmoid_surrogate_is_the_sigmoid_derivative(
    x: np.ndarray, data: st.DataObject
) -> None:
    upstream = data.draw(values(x.shape))
    t = tn.tensor(x, requires_grad=True)
    y = tn.step(t, surrogate="sigmoid")
    np.testing.assert_array_equal(y.data, (x >= 0).astype(np.float64))
    y.backward(upstream)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(t.grad.data, upstream * s * (1 - s), rtol=1e-12, atol=1e-300)


def test_fused_linear_step_has_exactly_zero_gradients() -> None:
    rng = np.random.default_rng(0)
    x = tn.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = tn.tensor(rng.standard_normal(2), requires_grad=True)
    tn.ops.linear(x, w, b, activation="step").backward(rng.standard_normal((5, 2)))
    for t in (x, w, b):
        np.testing.assert_array_equal(t.grad.data, np.zeros(t.shape))


def test_step_rejects_an_unknown_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        tn.step(tn.tensor([1.0]), surrogate="tanh")


# ---- shapes at the edges ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x * 2,
        lambda x: x.exp(),
        lambda x: x.sum(dim=0),
        lambda x: x.mean(dim=1),
        lambda x: x.reshape(3, 0),
        lambda x: x.T @ x,
        lambda x: x.softmax(dim=1),
    ],
)
def test_backward_through_empty_tensors_gives_empty_gradients(fn) -> None:  # noqa: ANN001
    x = tn.zeros((0, 3), dtype=tn.float64, requires_grad=True)
    fn(x).sum().backward()
    assert x.grad is not None
    assert x.grad.shape == (0, 3)
    assert x.grad.dtype == np.float64


def test_gradient_of_a_broadcast_operand_is_summed_back_to_its_shape() -> None:
    a = tn.ones((2, 3, 4), dtype=tn.float64, requires_grad=True)
    b = tn.tensor(np.arange(4.0).reshape(1, 4), requires_grad=True)  # (1, 4) -> (2, 3, 4)
    c = tn.tensor(2.0, dtype=tn.float64, requires_grad=True)  # 0-d
    (a * b * c).sum().backward()
    np.testing.assert_array_equal(b.grad.data, np.full((1, 4), 2.0 * 6))
    assert c.grad.shape == ()
    assert c.grad.item() == np.arange(4.0).sum() * 6
