"""Autograd internals, one behaviour per test: the backward trace, higher-order gradients
(``create_graph`` and ``tn.autograd.grad``), hooks and ``retain_grad``, anomaly detection, and
the version counters that turn an in-place edit of a saved tensor into an error.

Every numeric check is in float64 against finite differences or a closed form.
"""

from __future__ import annotations

import inspect
import io
import re
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close

import tinynet as tn
from tinynet.errors import AnomalyError, GraphError


def f64(values, requires_grad=False):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def caller_line() -> int:
    """The line number of the code that called this function."""
    return inspect.currentframe().f_back.f_lineno


# ---------------------------------------------------------------------------------------------
# The backward trace
# ---------------------------------------------------------------------------------------------


def test_trace_prints_op_input_shapes_gradient_shapes_and_norms(capsys):
    x = f64([3.0, 4.0], requires_grad=True)
    loss = (x * x).sum() * 3.0
    with tn.autograd.trace() as lines:
        loss.backward()
    assert lines == [
        "MulBackward  inputs (), ()  grad_out () -> grads (), -  |grad_out|=1",
        "SumBackward  inputs (2,)  grad_out () -> grads (2,)  |grad_out|=3",
        # the gradient reaching x * x is 3 * ones(2): its norm is sqrt(18) = 4.243
        "MulBackward  inputs (2,), (2,)  grad_out (2,) -> grads (2,), (2,)  |grad_out|=4.243",
    ]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"backward step {i}: {line}" for i, line in enumerate(lines, 1)]
    np.testing.assert_array_equal(x.grad.data, [18.0, 24.0])


def test_trace_without_norms_and_to_a_file():
    x = f64([3.0, 4.0], requires_grad=True)
    out = io.StringIO()
    with tn.autograd.trace(norms=False, file=out) as lines:
        (x * 2.0).sum().backward()
    assert lines == [
        "SumBackward  inputs (2,)  grad_out () -> grads (2,)",
        "MulBackward  inputs (2,), ()  grad_out (2,) -> grads (2,), -",
    ]
    assert out.getvalue().splitlines() == [
        "backward step 1: SumBackward  inputs (2,)  grad_out () -> grads (2,)",
        "backward step 2: MulBackward  inputs (2,), ()  grad_out (2,) -> grads (2,), -",
    ]


def test_backward_trace_true_prints_the_same_steps_as_the_trace_context(capsys):
    x = f64([3.0, 4.0], requires_grad=True)
    (x.exp() * x).sum().backward(trace=True)
    by_flag = capsys.readouterr().out
    x.grad = None
    with tn.autograd.trace():
        (x.exp() * x).sum().backward()
    assert capsys.readouterr().out == by_flag
    assert by_flag.splitlines()[0].startswith("backward step 1: SumBackward")
    assert by_flag.splitlines()[-1].startswith("backward step 3: ExpBackward")


def test_trace_marks_inputs_without_gradient_and_broadcast_reductions():
    x = f64([[1.0, 2.0], [3.0, 4.0]])  # a constant input: no gradient
    b = f64([0.5, -0.5], requires_grad=True)  # broadcast over x's rows
    with tn.autograd.trace(norms=False) as lines:
        (x * b).sum().backward()
    assert lines[1] == "MulBackward  inputs (2, 2), (2,)  grad_out (2, 2) -> grads -, (2, 2)->(2,)"
    np.testing.assert_array_equal(b.grad.data, [4.0, 6.0])


def test_trace_runs_in_reverse_topological_order_on_a_diamond():
    # x -> h = x * w -> (exp(h), sigmoid(h)) -> add -> sum: every op must be traced after all
    # the ops that consume its output, so h's MulBackward comes last.
    x = f64([0.5, -1.0], requires_grad=True)
    w = f64([2.0, 3.0], requires_grad=True)
    h = x * w
    loss = (h.exp() + h.sigmoid()).sum()
    with tn.autograd.trace(norms=False) as lines:
        loss.backward()
    ops = [line.split()[0] for line in lines]
    assert ops[:2] == ["SumBackward", "AddBackward"]
    assert sorted(ops[2:4]) == ["ExpBackward", "SigmoidBackward"]
    assert ops[4:] == ["MulBackward"]
    # The chain rule really ran: d/dx = w (e^h + s(h)(1 - s(h))).
    hv = x.data * w.data
    s = 1 / (1 + np.exp(-hv))
    np.testing.assert_allclose(x.grad.data, w.data * (np.exp(hv) + s * (1 - s)), rtol=1e-14)


def test_trace_stops_printing_after_the_context(capsys):
    x = f64([1.0], requires_grad=True)
    with tn.autograd.trace():
        pass
    (x * 2.0).sum().backward()
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------
# Higher-order gradients: create_graph and tn.autograd.grad
# ---------------------------------------------------------------------------------------------

# A 2-3-1 network, tanh hidden layer, sigmoid output, MSE; all 13 parameters in one vector.
SHAPES = [(3, 2), (3,), (1, 3), (1,)]  # W1, b1, W2, b2
N_PARAMS = sum(int(np.prod(s)) for s in SHAPES)


def mlp_loss(theta, x, y):
    """mean((sigmoid(W2 tanh(W1 x + b1) + b2) - y)^2) with (W1, b1, W2, b2) cut from theta."""
    params, start = [], 0
    for shape in SHAPES:
        size = int(np.prod(shape))
        params.append(theta[start:start + size].reshape(shape))
        start += size
    w1, b1, w2, b2 = params
    hidden = (x @ w1.T + b1).tanh()
    out = (hidden @ w2.T + b2).sigmoid()
    return ((out - y) ** 2).mean()


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    theta = rng.normal(size=N_PARAMS)
    x = rng.normal(size=(5, 2))
    y = rng.uniform(size=(5, 1))
    return theta, x, y


def loss_gradient(theta, x, y):
    """dL/dtheta at the array ``theta`` (first derivative, no graph kept)."""
    t = tn.tensor(theta, requires_grad=True)
    (g,) = tn.autograd.grad(mlp_loss(t, tn.tensor(x), tn.tensor(y)), t)
    return g.data


def central_difference(f, at, eps):
    """Columns d f / d at_j by central differences; f returns an array (or a float)."""
    columns = []
    for j in range(at.size):
        step = np.zeros_like(at)
        step[j] = eps
        columns.append((np.asarray(f(at + step)) - np.asarray(f(at - step))) / (2 * eps))
    return np.stack(columns, axis=-1)


def test_mlp_gradient_matches_finite_differences(problem):
    theta, x, y = problem

    def loss_at(t):
        return mlp_loss(tn.tensor(t), tn.tensor(x), tn.tensor(y)).item()

    np.testing.assert_allclose(
        loss_gradient(theta, x, y), central_difference(loss_at, theta, 1e-6), rtol=1e-6,
        atol=1e-9,
    )


def hessian(theta, x, y):
    t = tn.tensor(theta, requires_grad=True)
    (g,) = tn.autograd.grad(mlp_loss(t, tn.tensor(x), tn.tensor(y)), t, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None  # the gradient is itself a graph
    rows = [tn.autograd.grad(g[i], t, retain_graph=True)[0].data for i in range(N_PARAMS)]
    assert t.grad is None  # grad() returns gradients, it never accumulates into .grad
    return np.stack(rows)


def test_hessian_of_mlp_loss_matches_finite_differences_of_the_gradient(problem):
    theta, x, y = problem
    h = hessian(theta, x, y)
    h_fd = central_difference(lambda t: loss_gradient(t, x, y), theta, 1e-6)
    assert h.shape == (N_PARAMS, N_PARAMS)
    assert np.abs(h).max() > 1e-2  # a real, non-trivial Hessian
    np.testing.assert_allclose(h, h_fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, h.T, rtol=0, atol=1e-14)


def test_hessian_of_mlp_loss_matches_torch(problem):
    torch = pytest.importorskip("torch")
    theta, x, y = problem
    xt, yt = torch.tensor(x), torch.tensor(y)

    def torch_loss(t):
        w1, b1, w2, b2 = t[:6].reshape(3, 2), t[6:9], t[9:12].reshape(1, 3), t[12:]
        out = torch.sigmoid(torch.tanh(xt @ w1.T + b1) @ w2.T + b2)
        return ((out - yt) ** 2).mean()

    expected = torch.autograd.functional.hessian(torch_loss, torch.tensor(theta)).numpy()
    np.testing.assert_allclose(hessian(theta, x, y), expected, rtol=1e-12, atol=1e-15)


def test_hessian_vector_product_matches_finite_differences(problem):
    theta, x, y = problem
    v = np.random.default_rng(1).normal(size=N_PARAMS)
    t = tn.tensor(theta, requires_grad=True)
    (g,) = tn.autograd.grad(mlp_loss(t, tn.tensor(x), tn.tensor(y)), t, create_graph=True)
    (hv,) = tn.autograd.grad((g * tn.tensor(v)).sum(), t)  # d/dtheta (g . v) = H v
    eps = 1e-6
    hv_fd = (loss_gradient(theta + eps * v, x, y) - loss_gradient(theta - eps * v, x, y)) / (
        2 * eps
    )
    np.testing.assert_allclose(hv.data, hv_fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(hv.data, hessian(theta, x, y) @ v, rtol=1e-12, atol=1e-14)
    assert not hv.requires_grad  # create_graph=False: a plain result


def gradient_penalty(theta, x, y, create_graph):
    """||dL/dx||^2 (the input gradient's squared norm, as in WGAN-GP) and theta."""
    t = tn.tensor(theta, requires_grad=True)
    xs = tn.tensor(x, requires_grad=True)
    (gx,) = tn.autograd.grad(mlp_loss(t, xs, tn.tensor(y)), xs, create_graph=create_graph)
    return (gx * gx).sum(), t, xs


def test_gradient_penalty_gradient_matches_finite_differences(problem):
    theta, x, y = problem
    penalty, t, _ = gradient_penalty(theta, x, y, create_graph=True)
    (d_theta,) = tn.autograd.grad(penalty, t)

    def penalty_at(th):
        return gradient_penalty(th, x, y, create_graph=False)[0].item()

    expected = central_difference(penalty_at, theta, 1e-5)
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(d_theta.data, expected, rtol=1e-6, atol=1e-10)


def test_gradient_penalty_backward_accumulates_the_same_gradient_into_leaves(problem):
    theta, x, y = problem
    penalty, t, _ = gradient_penalty(theta, x, y, create_graph=True)
    (expected,) = tn.autograd.grad(penalty, t, retain_graph=True)
    penalty.backward()
    assert_close(t.grad, expected, 1e-14)


def test_backward_with_create_graph_gives_a_differentiable_grad():
    x = f64([1.0, -2.0, 0.5], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2, rtol=1e-15)
    assert x.grad.requires_grad
    (second,) = tn.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(second.data, 6 * x.data, rtol=1e-15)


def test_backward_through_a_create_graph_grad_accumulates_into_the_leaf_like_pytorch():
    x = f64([1.0, -2.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)  # x.grad = 3 x^2, a graph
    x.grad.sum().backward()  # adds d/dx sum(3 x^2) = 6 x
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2 + 6 * x.data, rtol=1e-15)


def test_grad_leaves_existing_leaf_grads_untouched():
    x = f64([1.0, 2.0], requires_grad=True)
    w = f64([3.0, 4.0], requires_grad=True)
    (x * 5.0).sum().backward()
    before = x.grad
    gx, gw = tn.autograd.grad((x * w).sum(), [x, w])
    assert x.grad is before
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0])
    assert w.grad is None
    np.testing.assert_array_equal(gx.data, w.data)
    np.testing.assert_array_equal(gw.data, x.data)


def test_grad_with_respect_to_an_unused_input_raises_unless_allow_unused():
    x = f64([1.0, 2.0], requires_grad=True)
    unused = f64([3.0], requires_grad=True)
    with pytest.raises(GraphError, match="allow_unused=True"):
        tn.autograd.grad((x * x).sum(), [x, unused])
    gx, g_unused = tn.autograd.grad((x * x).sum(), [x, unused], allow_unused=True)
    np.testing.assert_array_equal(gx.data, 2 * x.data)
    assert g_unused is None


def test_grad_with_respect_to_an_intermediate_and_the_input_it_came_from():
    x = f64([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    gh, gx = tn.autograd.grad((h * h).sum(), [h, x])
    np.testing.assert_array_equal(gh.data, 2 * h.data)  # d(h.h)/dh = 2h
    np.testing.assert_array_equal(gx.data, 18 * x.data)  # d(9 x.x)/dx = 18x


def test_grad_of_a_vector_output_needs_grad_outputs_and_gives_a_vector_jacobian_product():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x  # Jacobian diag(2x)
    with pytest.raises(GraphError, match="grad_outputs"):
        tn.autograd.grad(y, x)
    v = np.array([1.0, 10.0, 100.0])
    (g,) = tn.autograd.grad(y, x, grad_outputs=tn.tensor(v))
    np.testing.assert_array_equal(g.data, 2 * x.data * v)


def test_grad_frees_the_graph_unless_retain_graph_or_create_graph():
    x = f64([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    tn.autograd.grad(y, x, retain_graph=True)
    tn.autograd.grad(y, x)  # the graph was kept for this one
    with pytest.raises(GraphError, match="retain_graph=True"):
        tn.autograd.grad(y, x)
    z = (x.exp() * x).sum()
    tn.autograd.grad(z, x, create_graph=True)  # create_graph keeps it by default
    tn.autograd.grad(z, x)


# ---------------------------------------------------------------------------------------------
# Hooks and retain_grad
# ---------------------------------------------------------------------------------------------


def test_hook_doubling_a_leaf_gradient_changes_only_that_leaf():
    x = f64([1.0, 2.0], requires_grad=True)
    w = f64([3.0, 5.0], requires_grad=True)
    x.register_hook(lambda g: g * 2)
    (x * w).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * w.data)
    np.testing.assert_array_equal(w.grad.data, x.data)


def test_hook_doubling_a_non_leaf_gradient_doubles_every_gradient_upstream_of_it():
    def run(with_hook):
        x = f64([0.3, -0.7], requires_grad=True)
        w = f64([1.5, 2.0], requires_grad=True)
        c = f64([4.0], requires_grad=True)  # not upstream of h
        h = x * w
        if with_hook:
            h.register_hook(lambda g: g * 2)
        (h.sigmoid().sum() + (c * c).sum()).backward()
        return x.grad.data, w.grad.data, c.grad.data

    (x0, w0, c0), (x1, w1, c1) = run(False), run(True)
    np.testing.assert_array_equal(x1, 2 * x0)
    np.testing.assert_array_equal(w1, 2 * w0)
    np.testing.assert_array_equal(c1, c0)


def test_hooks_run_in_registration_order_each_seeing_the_previous_result():
    x = f64([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: g * 10)
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [40.0, 40.0])  # (3 + 1) * 10


def test_removed_hook_no_longer_runs():
    x = f64([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(g.data.copy()))
    (x * 3.0).sum().backward()
    handle.remove()
    handle.remove()  # removing twice is harmless
    x.grad = None
    (x * 3.0).sum().backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_hook_returning_none_observes_the_gradient_and_what_it_saw_stays_intact():
    a = f64([1.0, 2.0], requires_grad=True)
    b = f64([1.0, 1.0], requires_grad=True)
    w = f64([5.0, 7.0])
    seen = []
    h = a + b
    h.register_hook(seen.append)
    # a also gets a second gradient later in the same pass, added into a.grad in place: the
    # tensor the hook kept must not change with it.
    ((a * 2.0).sum() + (h * w).sum()).backward()
    np.testing.assert_array_equal(seen[0].data, w.data)
    np.testing.assert_array_equal(a.grad.data, w.data + 2)
    np.testing.assert_array_equal(b.grad.data, w.data)


def test_hook_that_changes_the_gradient_shape_raises():
    x = f64([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(GraphError, match="register_hook.*shape"):
        (x * 3.0).sum().backward()


def test_register_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(GraphError, match="doesn't require grad"):
        f64([1.0]).register_hook(lambda g: g)


def test_leaf_hook_also_runs_for_autograd_grad_like_pytorch():
    x = f64([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 2)
    (g,) = tn.autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.data, 4 * x.data)


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = f64([1.0, -2.0], requires_grad=True)
    w = f64([3.0, 0.5], requires_grad=True)
    h = x * w
    kept = x * 2.0
    h.retain_grad()
    assert h.retains_grad and not kept.retains_grad
    ((h * h).sum() + kept.sum()).backward()
    np.testing.assert_array_equal(h.grad.data, 2 * h.data)  # d(h.h)/dh
    assert kept.grad is None  # non-leaves drop their gradient unless asked
    np.testing.assert_array_equal(x.grad.data, 2 * h.data * w.data + 2)


def test_retained_grad_accumulates_across_backward_calls_like_a_leaf():
    x = f64([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    loss = (h * h).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(h.grad.data, 2 * (2 * h.data))


def test_retained_grad_shows_what_the_hooks_made_of_it():
    x = f64([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    h.retain_grad()
    h.register_hook(lambda g: g * 2)  # registered after retain_grad: still seen (PyTorch 2)
    h.sum().backward()
    np.testing.assert_array_equal(h.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_retained_grad_is_not_shared_with_a_leaf_that_accumulates_later():
    a = f64([1.0, 2.0], requires_grad=True)
    b = f64([1.0, 1.0], requires_grad=True)
    w = f64([5.0, 7.0])
    h = a + b
    h.retain_grad()
    ((a * 2.0).sum() + (h * w).sum()).backward()
    np.testing.assert_array_equal(h.grad.data, w.data)
    np.testing.assert_array_equal(a.grad.data, w.data + 2)


def test_gradient_passed_to_backward_is_not_modified_by_later_accumulation():
    a = f64([1.0, 2.0], requires_grad=True)
    b = f64([1.0, 1.0], requires_grad=True)
    seed = np.array([1.0, 1.0])
    (a + b).backward(seed)
    (a * 1.0).sum().backward()
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# Anomaly detection
# ---------------------------------------------------------------------------------------------


def test_detect_anomaly_names_log_and_the_line_that_made_minus_inf():
    x = f64([0.0, 1.0], requires_grad=True)
    with tn.autograd.detect_anomaly(), pytest.raises(AnomalyError) as info:
        line = caller_line() + 1
        x.log()
    message = str(info.value)
    assert "Log" in message and "forward" in message and "inf" in message
    assert f"{__file__}:{line}" in message


def test_detect_anomaly_names_div_and_the_line_that_made_nan():
    x = f64([0.0, 1.0], requires_grad=True)
    with tn.autograd.detect_anomaly(), pytest.raises(AnomalyError) as info:
        zero = x * 0.0
        line = caller_line() + 1
        zero / zero
    message = str(info.value)
    assert "Div" in message and "nan" in message
    assert f"{__file__}:{line}" in message


def test_detect_anomaly_catches_an_inf_that_only_backward_produces():
    x = f64([0.0, 4.0], requires_grad=True)
    with tn.autograd.detect_anomaly():
        line = caller_line() + 1
        root = x.sqrt()  # forward is fine: sqrt(0) = 0; backward is 1 / (2 sqrt(0)) = inf
        loss = root.sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert "SqrtBackward" in message and "backward" in message and "inf" in message
    assert f"{__file__}:{line}" in message


def test_without_anomaly_mode_non_finite_values_pass_silently():
    x = f64([0.0, 4.0], requires_grad=True)
    with tn.autograd.detect_anomaly():
        pass
    y = x.log() + x.sqrt()
    assert y.data[0] == -np.inf
    y.sum().backward()
    assert x.grad.data[0] == np.inf  # 1/0 + 1/(2 sqrt(0)): nothing checks it outside the mode


# ---------------------------------------------------------------------------------------------
# In-place edits and version counters
# ---------------------------------------------------------------------------------------------


def set_first(t):
    t[0] = 5.0


INPLACE_EDITS = {
    "add_": lambda t: t.add_(1.0),
    "sub_": lambda t: t.sub_(1.0),
    "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0),
    "zero_": lambda t: t.zero_(),
    "fill_": lambda t: t.fill_(3.0),
    "copy_": lambda t: t.copy_(np.ones(3)),
    "clamp_": lambda t: t.clamp_(min=2.5),
    "setitem": set_first,
}


@pytest.mark.parametrize("edit", INPLACE_EDITS.values(), ids=INPLACE_EDITS.keys())
def test_each_inplace_edit_bumps_the_version_counter_once(edit):
    x = f64([1.0, 2.0, 3.0])
    before = x._version.value
    edit(x)
    assert x._version.value == before + 1


@pytest.mark.parametrize("edit", INPLACE_EDITS.values(), ids=INPLACE_EDITS.keys())
def test_backward_after_an_inplace_edit_of_a_saved_input_raises(edit):
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    w = f64([4.0, 5.0, 6.0], requires_grad=True)
    loss = (x * w).sum()  # Mul saves x (and w) for its backward
    with tn.no_grad():
        edit(x)
    with pytest.raises(GraphError, match="MulBackward.*modified by an in-place operation"):
        loss.backward()


def test_inplace_edit_of_a_tensor_no_backward_saved_is_allowed():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    w = f64([4.0, 5.0, 6.0], requires_grad=True)
    loss = (x + w).sum()  # Add's backward needs neither input
    with tn.no_grad():
        x.mul_(10.0)
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 1.0])


def test_inplace_edit_of_a_leaf_that_requires_grad_is_refused_in_grad_mode():
    x = f64([1.0, 2.0], requires_grad=True)
    with pytest.raises(GraphError, match="no_grad"):
        x.add_(1.0)
    assert x._version.value == 0


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "exp", "sqrt", "relu"])
def test_backward_after_an_inplace_edit_of_a_saved_output_raises(op):
    x = f64([0.5, 1.0, 2.0], requires_grad=True)
    y = getattr(x, op)()  # these ops save their output, not their input
    loss = y.sum()
    with tn.no_grad():
        y.mul_(2.0)
    name = {"sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "sqrt": "Sqrt", "relu": "ReLU"}
    with pytest.raises(GraphError, match=f"{name[op]}Backward.*expected version 0"):
        loss.backward()


def test_detach_shares_the_version_counter_so_edits_through_it_are_caught():
    x = f64([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    alias = x.detach()  # same memory, no graph
    alias.add_(1.0)  # allowed in grad mode: alias doesn't require grad
    assert x._version.value == 1
    with pytest.raises(GraphError, match="in-place"):
        loss.backward()


def test_views_made_under_no_grad_share_the_version_counter():
    x = f64([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    w = f64([1.0, 1.0, 1.0, 1.0], requires_grad=True)
    loss = (x * w).sum()
    with tn.no_grad():
        x.reshape(2, 2)[0].mul_(10.0)  # writes into x's memory
    assert x.data[0] == 10.0 and x._version.value == 1
    with pytest.raises(GraphError, match="in-place"):
        loss.backward()


def test_views_of_a_constant_input_share_its_version_counter():
    data = f64([1.0, 2.0])  # no requires_grad: saved by Mul as w's gradient
    w = f64([1.0, 1.0], requires_grad=True)
    loss = (data * w).sum()
    data.reshape(2, 1).add_(1.0)
    with pytest.raises(GraphError, match="in-place"):
        loss.backward()


def test_a_copy_made_by_integer_array_indexing_has_its_own_counter():
    data = f64([1.0, 2.0])
    w = f64([1.0, 1.0], requires_grad=True)
    loss = (data * w).sum()
    picked = data[[0, 1]]  # numpy copies for an integer-array index
    picked.add_(1.0)
    assert data._version.value == 0
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 2.0])


def test_optimizer_step_between_forward_and_backward_raises():
    sgd = getattr(tn.optim, "SGD", None)
    if sgd is None:
        pytest.skip("tn.optim.SGD is not available yet")
    w = f64([1.0, -2.0], requires_grad=True)
    optimizer = sgd([w], lr=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()  # saves w at its current version
    optimizer.step()  # updates w in place
    assert w._version.value > 0
    with pytest.raises(GraphError, match="in-place"):
        loss.backward()


def test_manual_sgd_update_between_forward_and_backward_raises():
    w = f64([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    loss = (w * w).sum()
    with tn.no_grad():
        w.sub_(0.1 * w.grad.data)
    with pytest.raises(GraphError, match="MulBackward.*in-place"):
        loss.backward()


# ---------------------------------------------------------------------------------------------
# docs/autograd.md stays true to the code
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def quoted_snippets(markdown: str) -> list[tuple[str, list[str]]]:
    """(file, verbatim pieces) for each ```python block whose first line is ``# tinynet/...``;
    a line ``...`` separates pieces."""
    snippets = []
    for block in re.findall(r"```python\n(.*?)```", markdown, flags=re.S):
        first, _, body = block.partition("\n")
        if re.fullmatch(r"# tinynet/[\w/]+\.py", first):
            pieces = re.split(r"^\.\.\.\n", body, flags=re.M)
            snippets.append((first[2:], [p for p in pieces if p.strip()]))
    return snippets


def test_docs_autograd_md_quotes_the_code_verbatim():
    markdown = (REPO / "docs" / "autograd.md").read_text()
    snippets = quoted_snippets(markdown)
    assert len(snippets) >= 15
    for path, pieces in snippets:
        source = (REPO / path).read_text()
        for piece in pieces:
            assert piece in source, (
                f"docs/autograd.md quotes {path}, but this is no longer in it; update the page:\n"
                f"{piece}"
            )
