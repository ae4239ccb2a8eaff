"""Second derivatives of every op: ``tn.gradgradcheck`` differentiates the backward pass itself
(``create_graph=True``) and compares it with central differences of first derivatives.

The cases are the same as in ``test_gradients.py`` (every op in the registry, broadcasting,
0-d and size-1 dims, random memory layouts), drawn a little smaller because each check runs a
create_graph backward per input element. Ops whose plain backward runs a fused kernel
(sigmoid, tanh, relu, linear, softmax cross-entropy...) must switch to differentiable ops here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import CASES, registered_ops, shapes, with_layouts

import tinynet as tn

OPS = sorted(CASES)
SIDE = 3  # largest dim drawn; a double-backward check costs about (elements)^2 node visits


def test_every_registered_op_has_a_second_derivative_check() -> None:
    from opdb import STAND_IN_GRADIENTS, functions_reached_by_entries  # (the others)

    registered = registered_ops()
    missing = sorted(registered - set(CASES) - functions_reached_by_entries()
                     - STAND_IN_GRADIENTS)
    assert not missing, (f"ops without a double-backward check in strategies.CASES or an "
                         f"entry in tests/opdb.py: {missing}")


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_second_derivatives_match_finite_differences_of_first_derivatives(
    op: str, data: st.DataObject
) -> None:
    case = data.draw(CASES[op](max_side=SIDE).flatmap(with_layouts), label="case")
    leaves = [tn.tensor(a, dtype=tn.float64, requires_grad=True) for a in case.inputs]
    assert tn.gradgradcheck(case.fn, leaves, eps=case.eps, atol=case.atol, rtol=case.rtol)


# ---- hand-computed second derivatives, so a gradgradcheck bug cannot hide one ---------------


def _hessian_diagonal(fn, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    t = tn.tensor(x, requires_grad=True)
    (g,) = tn.autograd.grad(fn(t).sum(), t, create_graph=True)
    (h,) = tn.autograd.grad(g.sum(), t)
    return h.data


X = np.array([-1.5, -0.3, 0.4, 2.0])


@pytest.mark.parametrize(
    ("fn", "second"),
    [
        (lambda t: t.sigmoid(), lambda s: s * (1 - s) * (1 - 2 * s)),
        (lambda t: t.tanh(), lambda t: -2 * t * (1 - t * t)),
        (lambda t: t.exp(), lambda e: e),
    ],
    ids=["sigmoid", "tanh", "exp"],
)
def test_second_derivative_of_fused_activations_by_formula(fn, second) -> None:  # noqa: ANN001
    y = fn(tn.tensor(X)).data
    np.testing.assert_allclose(_hessian_diagonal(fn, X), second(y), rtol=1e-12, atol=1e-15)


def test_second_derivative_of_x_cubed_through_pow_and_mul() -> None:
    np.testing.assert_allclose(_hessian_diagonal(lambda t: t**3, X), 6 * X, rtol=1e-12)
    np.testing.assert_allclose(_hessian_diagonal(lambda t: t * t * t, X), 6 * X, rtol=1e-12)


def test_hessian_vector_product_of_linear_sigmoid_layer() -> None:
    # f(w) = sum(sigmoid(x @ w)) for one input row x: H = x x^T * sum_j s_j(1-s_j)(1-2s_j)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3))
    w = tn.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    v = rng.standard_normal((2, 3))
    out = tn.ops.linear(tn.tensor(x), w, activation="sigmoid").sum()
    (g,) = tn.autograd.grad(out, w, create_graph=True)
    (hv,) = tn.autograd.grad((g * tn.tensor(v)).sum(), w)
    s = 1 / (1 + np.exp(-(x @ w.data.T)))[0]  # (2,)
    curvature = s * (1 - s) * (1 - 2 * s)  # second derivative of sigmoid, per output unit
    expected = (curvature * (v @ x[0]))[:, None] * x  # row j: c_j (v_j . x) x
    np.testing.assert_allclose(hv.data, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("surrogate", ["sigmoid", "straight_through"])
@given(data=st.data())
def test_step_surrogate_gradients_are_differentiable(surrogate: str, data: st.DataObject) -> None:
    """The surrogate is not the derivative of the step, so gradgradcheck (which differentiates
    the forward) does not apply; instead the surrogate gradient, as a function of x, is
    checked against finite differences of itself. (Inputs stay off the kinks at |x| = 1.)"""
    x = data.draw(hnp.arrays(np.float64, shapes(max_side=SIDE), elements=st.floats(-3, 3).filter(
        lambda v: abs(abs(v) - 1) > 0.05)))

    @tn.enable_grad()  # gradcheck evaluates finite differences under no_grad
    def surrogate_gradient(t: tn.Tensor) -> tn.Tensor:
        (g,) = tn.autograd.grad(tn.step(t, surrogate).sum(), t, create_graph=True)
        return g

    leaf = tn.tensor(x, requires_grad=True)
    assert tn.gradcheck(surrogate_gradient, [leaf], atol=1e-7, rtol=1e-6)


def test_create_graph_backward_of_cross_entropy_is_differentiable() -> None:
    logits = tn.tensor(np.array([[1.0, -0.5, 0.2], [0.3, 0.3, -1.0]]), requires_grad=True)
    target = np.array([2, 0])
    loss = tn.ops.softmax_cross_entropy(logits, target, "sum")
    (g,) = tn.autograd.grad(loss, logits, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    # d/dz sum_ij g_ij = d/dz sum_i (sum_j p_ij - 1) = 0: softmax rows sum to one
    (h,) = tn.autograd.grad(g.sum(), logits)
    np.testing.assert_allclose(h.data, 0.0, atol=1e-15)
