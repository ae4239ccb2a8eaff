"""Specification of tinynet.kernels: every compiled kernel agrees with its numpy twin.

The dispatch functions are exercised in two modes: `compiled` (the size floor removed, so any
eligible array runs the numba kernel) and `twin` (numba switched off). Both must agree with the
plain-numpy functions in `tinynet.kernels.reference`, and with PyTorch for the optimizers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet.kernels as K
from tinynet.kernels import reference as R

REPO = Path(__file__).resolve().parents[1]
FLOATS = [np.float32, np.float64]
# float64: agreement to ~1e-12 relative; float32: to ~1e-5.
TOLERANCE = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-14},
}
# The `mode` fixture only flips the dispatch policy, so sharing it across examples is intended.
FEW = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

needs_numba = pytest.mark.skipif(not K.numba_enabled(), reason="numba kernels are disabled")


def dense(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy that keeps 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return np.array(x, order="C")


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **TOLERANCE[expected.dtype])


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Bit-for-bit equal (same dtype and shape): kernels that do only + - * / and sqrt."""
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@pytest.fixture(params=["compiled", "twin"])
def mode(request):
    """Run the test once with every eligible array compiled, once through the numpy twins
    (``dispatch_mode`` switches the module's state: replacing ``_load`` alone is not enough
    once numba has loaded, since dispatch then reads the loaded module directly)."""
    if request.param == "compiled" and not K.numba_enabled():
        pytest.skip("numba kernels are disabled")
    with K.dispatch_mode(request.param):
        yield request.param


def test_twin_mode_really_runs_the_twins():
    x = np.zeros(4096, dtype=np.float32)
    with K.dispatch_mode("twin"):
        assert K._pick_kernel("sigmoid_forward", x) is None


@st.composite
def arrays(draw, dtype, low=-30.0, high=30.0, min_dims=0, max_dims=3):
    """A float array of random shape (zero-size included) in a random memory layout:
    C-contiguous, transposed, or every other element of a larger array."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=7))
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(low, high, width=width, allow_subnormal=False)
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["c", "c", "transposed", "strided"]))
    if layout == "transposed":
        array = array.T
    elif layout == "strided" and array.ndim:
        array = np.repeat(array, 2, axis=-1)[..., ::2]
    return array


dtypes = st.sampled_from(FLOATS)


# ------------------------------------------------------------------------- elementwise ops


@FEW
@given(data=st.data(), dtype=dtypes)
def test_sigmoid_forward_matches_twin(mode, data, dtype):
    x = data.draw(arrays(dtype, -60, 60))
    assert_close(K.sigmoid_forward(x), R.sigmoid_forward(dense(x)))


@FEW
@given(data=st.data(), dtype=dtypes)
def test_tanh_forward_matches_twin(mode, data, dtype):
    x = data.draw(arrays(dtype))
    assert_close(K.tanh_forward(x), R.tanh_forward(dense(x)))


@FEW
@given(data=st.data(), dtype=dtypes)
def test_relu_and_step_forward_match_twin(mode, data, dtype):
    x = data.draw(arrays(dtype))
    expected = dense(x)
    assert_same(K.relu_forward(x), R.relu_forward(expected))
    assert_same(K.step_forward(x), R.step_forward(expected))


@FEW
@given(data=st.data(), dtype=dtypes, activation=st.sampled_from(["sigmoid", "tanh", "relu"]))
def test_elementwise_backward_matches_twin(mode, data, dtype, activation):
    x = data.draw(arrays(dtype, min_dims=1))
    grad = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-5, 5, width=x.itemsize * 8)))
    y = getattr(R, activation + "_forward")(x)
    expected = getattr(R, activation + "_backward")(grad, y)
    assert_same(getattr(K, activation + "_backward")(grad, y), expected)
    assert_same(K.activation_backward(grad, y, activation), expected)


def test_every_listed_op_has_a_compiled_kernel_and_a_dispatch_function():
    if not K.numba_enabled():
        pytest.skip("numba kernels are disabled")
    compiled = K._load()
    for op in K._COMPILED_OPS:
        assert callable(getattr(compiled, op)), op
        generated = op.removeprefix("bias_").rsplit("_", 1)[0] in K.formulas.ACTIVATIONS
        if generated:  # the table's kernels: one dispatch function for all (elementwise_*)
            public = "elementwise_" + op.rsplit("_", 1)[1]
            assert op.startswith("bias_") or callable(getattr(R, op)), op
        else:
            public = op
        assert callable(getattr(K, public)), op
        if not generated:
            assert callable(getattr(R, public)), op


@needs_numba
def test_contiguous_float_arrays_take_the_compiled_path():
    compiled = K._load()
    x = np.zeros(K._MIN_SIZE, dtype=np.float32)
    assert K._pick_kernel("sigmoid_forward", x) is compiled.sigmoid_forward
    assert K._pick_kernel("sigmoid_forward", x[:-1]) is None  # below the size floor
    big = np.zeros((2, 64))
    assert K._pick_kernel("relu_forward", big.T) is None  # not C-contiguous
    assert K._pick_kernel("relu_forward", big.astype(np.float16)) is None
    assert K._pick_kernel("relu_forward", big.astype(np.int64)) is None
    assert K._pick_kernel("relu_backward", big, big.astype(np.float32)) is None
    # float64 tanh too (numpy's is faster, but tn.compile's loops run the C library's: the
    # same numbers in both modes)
    assert K._pick_kernel("tanh_forward", big) is compiled.tanh_forward


# ------------------------------------------------------------------ edge cases, any mode


@pytest.mark.parametrize("dtype", FLOATS)
def test_zero_size_and_single_element_arrays(mode, dtype):
    for shape in [(0,), (3, 0), (), (1,), (1, 1)]:
        x = np.full(shape, 0.5, dtype=dtype)
        for name in ["sigmoid", "tanh", "relu", "step"]:
            y = getattr(K, name + "_forward")(x)
            assert isinstance(y, np.ndarray) and y.shape == shape and y.dtype == dtype
            assert_close(y, getattr(R, name + "_forward")(x))
        for name in ["sigmoid", "tanh", "relu"]:
            g = getattr(K, name + "_backward")(x, x)
            assert isinstance(g, np.ndarray) and g.shape == shape and g.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sigmoid_and_tanh_stay_finite_and_silent_at_large_inputs(mode, dtype):
    x = np.array([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4] * 8, dtype=dtype)
    with np.errstate(all="raise"):
        s = K.sigmoid_forward(x)
        t = K.tanh_forward(x)
        ds = K.sigmoid_backward(np.ones_like(x), s)
        dt = K.tanh_backward(np.ones_like(x), t)
    for result in (s, t, ds, dt):
        assert result.dtype == dtype
        assert np.all(np.isfinite(result))
    assert s[0] == 0 and s[6] == 1 and s[3] == 0.5
    assert t[0] == -1 and t[6] == 1 and t[3] == 0


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_keeps_relative_accuracy_for_very_negative_inputs(mode, dtype):
    x = np.full(40, -30.0, dtype=dtype)
    np.testing.assert_allclose(K.sigmoid_forward(x), np.exp(-30.0), rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
def test_no_numpy_warnings_on_ordinary_inputs(mode, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16, 8)) * 50).astype(dtype)
    x[0, :4] = [-1e4, 1e4, 0.0, -0.0]
    target = rng.integers(0, 8, 16)
    with np.errstate(all="raise"):
        for name in ["sigmoid", "tanh", "relu", "step"]:
            getattr(K, name + "_forward")(x)
        loss, probs = K.softmax_cross_entropy_forward(x, target)
        K.softmax_cross_entropy_backward(probs, target, np.ones(16, dtype=dtype))
        for activation in K.ACTIVATIONS:
            K.bias_activation_forward(x.copy(), x[0].copy(), activation)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(probs))


@pytest.mark.parametrize("dtype", FLOATS)
def test_non_contiguous_inputs_give_the_same_numbers(mode, dtype):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((40, 30)).astype(dtype)
    for x in (base.T, base[::2, ::3], base[:, 5]):
        copy = dense(x)
        assert_close(K.sigmoid_forward(x), R.sigmoid_forward(copy))
        assert_same(K.relu_backward(x, x), R.relu_backward(copy, copy))
        out = np.empty_like(base).T
        assert K.sigmoid_forward(base.T, out=out) is out
        assert_close(out, R.sigmoid_forward(dense(base.T)))


def test_overlapping_out_gives_numpys_answer(mode):
    base = np.linspace(-3, 3, 101)
    expected = R.sigmoid_forward(base[:-1])
    K.sigmoid_forward(base[:-1], out=base[1:])
    assert_close(base[1:], expected)
    z = np.linspace(-1, 1, 12 * 6).reshape(12, 6)
    expected = R.bias_activation_forward(z.copy(), z[0].copy(), "relu")
    assert_same(K.bias_activation_forward(z, z[0], "relu"), expected)


def test_read_only_inputs_give_the_same_numbers(mode):
    x = np.linspace(-3, 3, 64)
    x.flags.writeable = False
    assert_close(K.sigmoid_forward(x), R.sigmoid_forward(x))


@pytest.mark.parametrize("dtype", FLOATS)
def test_out_argument_is_filled_and_returned_even_in_place(mode, dtype):
    x = np.linspace(-4, 4, 50, dtype=dtype)
    expected = R.sigmoid_forward(x)
    out = np.empty_like(x)
    assert K.sigmoid_forward(x, out=out) is out
    assert_close(out, expected)
    assert K.sigmoid_forward(x, out=x) is x
    assert_close(x, expected)


def test_half_and_integer_inputs_fall_back_to_numpy(mode):
    half = np.linspace(-5, 5, 64).astype(np.float16)
    assert K.sigmoid_forward(half).dtype == np.float16
    assert K.relu_forward(half).dtype == np.float16
    ints = np.arange(-40, 40)
    np.testing.assert_allclose(K.sigmoid_forward(ints), R.sigmoid_forward(ints.astype(float)))
    # (integers compute in float64, as numpy's exp would: every twin comes from formulas.py)
    assert_same(K.step_forward(ints), (ints >= 0).astype(np.float64))


def test_step_of_zero_is_one_and_relu_backward_ignores_dead_units(mode):
    x = np.array([-1.0, -0.0, 0.0, 2.0] * 10)
    assert list(K.step_forward(x)[:4]) == [0, 1, 1, 1]
    grad = np.array([np.inf, np.nan, 3.0, 4.0] * 10)
    assert list(K.relu_backward(grad, K.relu_forward(x))[:4]) == [0, 0, 0, 4]


# ---------------------------------------------------------------- bias + activation


@FEW
@given(
    data=st.data(),
    dtype=dtypes,
    activation=st.sampled_from(["identity", "sigmoid", "tanh", "relu", "step"]),
    with_bias=st.booleans(),
)
def test_bias_activation_forward_matches_twin(mode, data, dtype, activation, with_bias):
    z = data.draw(arrays(dtype, min_dims=2, max_dims=2))
    z = np.ascontiguousarray(z)
    bias = np.linspace(-2, 2, z.shape[1]).astype(dtype) if with_bias else None
    expected = R.bias_activation_forward(z.copy(), bias, activation)
    y = K.bias_activation_forward(z, bias, activation)
    assert y is z  # overwritten in place
    if activation in ("sigmoid", "tanh"):
        assert_close(y, expected)
    else:
        assert_same(y, expected)


def test_bias_activation_rejects_unknown_activation_and_wrong_bias():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        K.bias_activation_forward(z, None, "softplus")
    with pytest.raises(ValueError, match=r"bias \(4,\)"):
        K.bias_activation_forward(z, np.zeros(4), "relu")
    with pytest.raises(ValueError, match="unknown activation"):
        K.activation_backward(z, z, "gelu")


def test_activation_backward_identity_returns_grad_and_step_gives_zeros(mode):
    grad = np.ones((3, 4), dtype=np.float32)
    assert K.activation_backward(grad, grad, "identity") is grad
    zeros = K.activation_backward(grad, grad, "step")
    assert zeros.dtype == np.float32 and not zeros.any()


# ------------------------------------------------------------------ softmax cross-entropy


@st.composite
def logits_and_targets(draw, dtype):
    n = draw(st.integers(0, 12))
    c = draw(st.integers(1, 12))
    width = 32 if dtype == np.float32 else 64
    scale = draw(st.sampled_from([1.0, 30.0, 1e3]))
    logits = draw(hnp.arrays(dtype, (n, c), elements=st.floats(-scale, scale, width=width)))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), np.int64)
    return logits, target


@FEW
@given(data=st.data(), dtype=dtypes)
def test_softmax_cross_entropy_matches_twin(mode, data, dtype):
    logits, target = data.draw(logits_and_targets(dtype))
    loss, probs = K.softmax_cross_entropy_forward(logits, target)
    expected_loss, expected_probs = R.softmax_cross_entropy_forward(logits, target)
    assert_close(probs, expected_probs)
    # loss_i = log(sum) - shifted target: the sums differ in summation order only, so the
    # error is absolute (~C ulps of a number >= 1), not relative to a loss near zero.
    assert loss.dtype == dtype and loss.shape == (logits.shape[0],)
    np.testing.assert_allclose(
        loss, expected_loss, rtol=TOLERANCE[np.dtype(dtype)]["rtol"], atol=100 * np.finfo(dtype).eps
    )
    grad_loss = np.linspace(0.5, 2, logits.shape[0]).astype(dtype)
    grad = K.softmax_cross_entropy_backward(probs, target, grad_loss)
    assert_same(grad, R.softmax_cross_entropy_backward(probs, target, grad_loss))


@FEW
@given(data=st.data(), dtype=dtypes)
def test_softmax_rows_matches_twin(mode, data, dtype):
    """Softmax along the last axis (rows of any leading shape, a NaN or infinity in some):
    the numba kernel against its numpy twin; a row sums to 1 unless it holds a NaN or inf."""
    logits, _ = data.draw(logits_and_targets(dtype))
    if logits.size and data.draw(st.booleans()):
        logits.flat[data.draw(st.integers(0, logits.size - 1))] = data.draw(
            st.sampled_from([np.nan, np.inf, -np.inf]))
    x = logits.reshape(data.draw(st.sampled_from([logits.shape, (1, *logits.shape)])))
    probs = K.softmax_rows(x)
    expected = np.empty_like(x)
    if x.size:
        R.softmax_rows(x.reshape(-1, x.shape[-1]), expected.reshape(-1, x.shape[-1]))
    assert probs.dtype == dtype and probs.shape == x.shape
    assert_close(probs, expected)
    rows = probs.reshape(-1, x.shape[-1])
    plain = np.isfinite(x.reshape(-1, x.shape[-1])).all(axis=1)
    np.testing.assert_allclose(rows[plain].sum(axis=1), 1,
                               rtol=x.shape[-1] * 4 * np.finfo(dtype).eps)


def test_softmax_cross_entropy_values(mode):
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]] * 20)
    target = np.array([2, 1] * 20)
    loss, probs = K.softmax_cross_entropy_forward(logits, target)
    logsumexp = np.log(np.exp(1.0) + np.exp(2.0) + np.exp(3.0))
    np.testing.assert_allclose(loss[:2], [logsumexp - 3.0, 1000.0], rtol=1e-14)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-14)
    grad = K.softmax_cross_entropy_backward(probs, target, np.float64(0.5))  # scalar broadcast
    expected = 0.5 * (probs - np.eye(3)[target])
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=1e-300)


def test_softmax_cross_entropy_keeps_float32_and_accepts_int32_targets(mode):
    logits = np.random.default_rng(2).standard_normal((20, 5)).astype(np.float32)
    target = np.arange(20, dtype=np.int32) % 5
    loss, probs = K.softmax_cross_entropy_forward(logits, target)
    assert loss.dtype == probs.dtype == np.float32
    grad = K.softmax_cross_entropy_backward(probs, target, np.ones(20))  # float64 upstream
    assert grad.dtype == np.float32


def test_softmax_cross_entropy_rejects_mismatched_shapes_and_bad_indices(mode):
    logits = np.zeros((40, 3))
    with pytest.raises(ValueError, match=r"target \(39,\)"):
        K.softmax_cross_entropy_forward(logits, np.zeros(39, dtype=np.int64))
    with pytest.raises(ValueError, match=r"probs \(40,\)"):
        K.softmax_cross_entropy_backward(np.zeros(40), np.zeros(40, dtype=np.int64), 1.0)
    with pytest.raises(IndexError):
        K.softmax_cross_entropy_forward(logits, np.full(40, 3))


# ------------------------------------------------------------------------------ optimizers

def _every_rule():
    """Every optimizer rule tinynet states (tinynet/optim), for every combination of switches."""
    from itertools import product

    from tinynet.optim.adadelta import adadelta_rule
    from tinynet.optim.adagrad import adagrad_rule
    from tinynet.optim.adam import adam_rule
    from tinynet.optim.rmsprop import rmsprop_rule
    from tinynet.optim.sgd import sgd_rule

    rules = [sgd_rule(*s) for s in product([False, True], repeat=4)]
    rules += [adam_rule(*s) for s in product([False, True], repeat=3)]
    rules += [rmsprop_rule(*s) for s in product([False, True], repeat=3)]
    rules += [adagrad_rule(d) for d in (False, True)] + [adadelta_rule(d) for d in (False, True)]
    return rules


RULES = _every_rule()


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("w", [0.1, 0.7])  # lerp's two forms (|w| < 0.5 and not)
def test_update_rule_kernel_matches_its_numpy_twin_bit_for_bit(rule, dtype, w):
    """kernels.updates generates both from the rule's text: the numba loop and the twin must
    agree to the bit on every array the rule writes, over a few steps."""
    if not K.numba_enabled():
        pytest.skip("numba kernels are disabled")
    rng = np.random.default_rng(len(rule.name))
    arrays = [rng.standard_normal((3, 5)).astype(dtype) for _ in rule.arrays]
    for i, name in enumerate(rule.arrays):  # running averages of squares are >= 0
        if name in ("square_avg", "exp_avg_sq", "max_exp_avg_sq", "sum", "acc_delta"):
            arrays[i] = np.abs(arrays[i])
    twins = [a.copy() for a in arrays]
    numbers = {n: 0.05 + 0.1 * i for i, n in enumerate(rule.numbers)}
    numbers["w"] = w
    numbers = tuple(numbers[n] for n in rule.numbers)
    state = dict.fromkeys(rule.counts, 0)  # step counts (Adam's bias corrections use them)
    for _ in range(3):
        g = rng.standard_normal((3, 5)).astype(dtype)
        arrays[1][...] = twins[1][...] = g
        given = numbers + rule.count(state)
        with K.dispatch_mode("compiled"):
            K.apply_rule(rule, arrays, given)
        with K.dispatch_mode("twin"):
            K.apply_rule(rule, twins, given)
        for i in rule.written:
            assert arrays[i].dtype == dtype
            assert_same(arrays[i], twins[i])


def test_update_rules_run_on_non_contiguous_parameters(mode):
    """A strided parameter (a slice) is updated in place through the twin."""
    from tinynet.optim.sgd import sgd_rule

    base = np.ones((8, 10))
    param = base[:, ::2]
    grad = np.full((8, 5), 2.0)
    K.apply_rule(sgd_rule(True, False, False, True), [param, grad, np.zeros((8, 5))], (0.5, 0.9))
    assert_same(base[:, ::2], np.zeros((8, 5)))
    assert_same(base[:, 1::2], np.ones((8, 5)))


def _torch_steps(torch, optimizer_class, config, param0, grads):
    param = torch.tensor(param0, requires_grad=True)
    optimizer = optimizer_class([param], foreach=False, **config)
    for grad in grads:
        param.grad = torch.tensor(grad)
        optimizer.step()
    return param.detach().numpy()


def _tinynet_steps(optimizer_class, config, param0, grads):
    import tinynet as tn

    param = tn.tensor(param0.copy(), requires_grad=True)
    optimizer = optimizer_class([param], **config)
    for grad in grads:
        param.grad = tn.tensor(grad)
        optimizer.step()
    return param.data


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "config",
    [
        {"lr": 0.05, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.2, "weight_decay": 1e-2, "nesterov": False},
        {"lr": 0.02, "momentum": 0.8, "dampening": 0.0, "weight_decay": 1e-3, "nesterov": True},
    ],
)
def test_sgd_rule_matches_pytorch_after_50_steps(mode, dtype, config):
    torch = pytest.importorskip("torch")
    import tinynet as tn

    rng = np.random.default_rng(3)
    param0 = rng.standard_normal(300).astype(dtype)
    grads = [rng.standard_normal(300).astype(dtype) for _ in range(50)]
    param = _tinynet_steps(tn.optim.SGD, config, param0, grads)
    expected = _torch_steps(torch, torch.optim.SGD, config, param0, grads)
    # PyTorch fuses a*b+c (FMA) on AVX2 and tinynet does not: ulp-level drift, relative to
    # the parameters' scale (~1) where a parameter passes near zero.
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert param.dtype == dtype
    np.testing.assert_allclose(param, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "config",
    [
        {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
        {"lr": 1e-3, "betas": (0.3, 0.99), "eps": 1e-6, "weight_decay": 1e-2},
    ],
)
def test_adam_rule_matches_pytorch_after_50_steps(mode, dtype, config):
    torch = pytest.importorskip("torch")
    import tinynet as tn

    rng = np.random.default_rng(4)
    param0 = rng.standard_normal(300).astype(dtype)
    grads = [rng.standard_normal(300).astype(dtype) for _ in range(50)]
    param = _tinynet_steps(tn.optim.Adam, config, param0, grads)
    expected = _torch_steps(torch, torch.optim.Adam, config, param0, grads)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert param.dtype == dtype
    np.testing.assert_allclose(param, expected, rtol=rtol, atol=rtol)


# ------------------------------------------------------------------------------ perceptron


def python_perceptron(X, y, w, b, lr, max_epochs):
    """The textbook loop on Python lists, written independently of the kernels."""
    w = [float(v) for v in w]
    errors = []
    for _ in range(max_epochs):
        n_errors = 0
        for row, label in zip(X.tolist(), y.tolist(), strict=True):
            activation = 0.0
            for w_j, x_j in zip(w, row, strict=True):
                activation += w_j * x_j
            y_hat = 1 if activation + b >= 0 else 0
            if y_hat != label:
                for j, x_j in enumerate(row):
                    w[j] += lr * (label - y_hat) * x_j
                b += lr * (label - y_hat)
                n_errors += 1
        errors.append(n_errors)
        if n_errors == 0:
            break
    return w, b, errors


@FEW
@given(
    X=hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 30), st.integers(1, 4)),
        elements=st.floats(-10, 10, width=64),
    ),
    labels=st.lists(st.integers(0, 1), min_size=30, max_size=30),
    lr=st.sampled_from([1.0, 0.1, 0.37]),
    b0=st.sampled_from([0.0, -0.5]),
    max_epochs=st.integers(0, 6),
)
def test_perceptron_fit_is_identical_to_a_python_loop(mode, X, labels, lr, b0, max_epochs):
    y = np.array(labels[: X.shape[0]], dtype=np.int64)
    w = np.linspace(-0.3, 0.3, X.shape[1])
    expected_w, expected_b, expected_errors = python_perceptron(X, y, w, b0, lr, max_epochs)
    b, epochs_run, converged, errors = K.perceptron_fit(X, y, w, b0, lr, max_epochs)
    assert w.tolist() == expected_w and b == expected_b
    assert errors.dtype == np.int64 and errors.tolist() == expected_errors
    assert epochs_run == len(expected_errors)
    assert converged == (bool(expected_errors) and expected_errors[-1] == 0)


def test_perceptron_learns_and_and_accepts_float32_weights(mode):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, dtype=np.float32)
    y = np.array([0, 0, 0, 1] * 10)
    w = np.zeros(2, dtype=np.float32)
    b, epochs_run, converged, errors = K.perceptron_fit(X, y, w, 0.0, 0.5, 50)
    assert converged and errors[-1] == 0 and len(errors) == epochs_run
    assert w.dtype == np.float32
    predictions = (X @ w + b >= 0).astype(int)
    assert_same(predictions, y)
    b, epochs_run, converged, errors = K.perceptron_fit(X, y, w, b, 0.5, 0)
    assert epochs_run == 0 and not converged and errors.shape == (0,)


# ------------------------------------------------------------------ import and environment


def run_python(code: str, **env: str) -> str:
    environment = {**os.environ, **env}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_kernels_does_not_import_numba():
    code = "import sys, tinynet.kernels; print('numba' in sys.modules)"
    assert run_python(code) == "False"


def test_tinynet_numba_0_uses_the_twins_without_importing_numba():
    code = (
        "import sys, numpy as np, tinynet.kernels as K\n"
        "x = np.linspace(-3, 3, 1000)\n"
        "ok = np.allclose(K.sigmoid_forward(x), 1 / (1 + np.exp(-x)), rtol=1e-14)\n"
        "K.warm_up()\n"
        "print(K.numba_enabled(), 'numba' in sys.modules, ok)"
    )
    assert run_python(code, TINYNET_NUMBA="0") == "False False True"


@needs_numba
def test_kernels_are_cached_where_numba_cache_dir_points(tmp_path):
    code = (
        "import numpy as np, tinynet.kernels as K\n"
        "print(K.relu_forward(np.linspace(-1, 1, 64))[-1])"
    )
    assert run_python(code, NUMBA_CACHE_DIR=str(tmp_path)) == "1.0"
    cached = [p.name for p in tmp_path.rglob("*") if p.suffix in (".nbi", ".nbc")]
    # (the activations are generated from formulas.py into elementwise_<hash>.py)
    assert any(name.startswith("elementwise_") and ".relu_forward-" in name for name in cached), (
        cached)


@needs_numba
def test_warm_up_compiles_every_kernel_for_both_float_dtypes():
    K.warm_up()
    compiled = K._load()
    for op in K._COMPILED_OPS:
        signatures = getattr(compiled, op).signatures
        wanted = 1 if op == "perceptron_fit" else 2  # the perceptron runs in float64 only
        assert len(signatures) >= wanted, (op, signatures)



@needs_numba
def test_warm_up_compiles_the_convolution_kernels_too():
    from tinynet.kernels import conv_compiled

    K.warm_up()
    for name in ("col2im", "max_pool2d_forward", "max_pool2d_backward"):
        dtypes = {str(signature[0].dtype) for signature in getattr(conv_compiled, name).signatures}
        assert {"float32", "float64"} <= dtypes, (name, dtypes)


def test_missing_numba_falls_back_to_the_twins_quietly():
    code = (
        "import sys, warnings, numpy as np\n"
        "sys.modules['numba'] = None  # what Python does for a module that cannot be imported\n"
        "warnings.simplefilter('error')\n"
        "import tinynet.kernels as K\n"
        "x = np.linspace(-3, 3, 1000)\n"
        "print(K.numba_enabled(), np.allclose(K.relu_forward(x), np.maximum(x, 0)))"
    )
    assert run_python(code) == "False True"


def test_broken_numba_falls_back_to_the_twins_with_a_warning(monkeypatch):
    monkeypatch.delenv("TINYNET_NUMBA", raising=False)  # the switch would skip numba's import
    monkeypatch.setitem(sys.modules, "numba", types.ModuleType("numba"))  # no njit inside
    monkeypatch.delitem(sys.modules, "tinynet.kernels.compiled", raising=False)
    monkeypatch.delattr(K, "compiled", raising=False)
    monkeypatch.setattr(K, "_compiled", None)
    monkeypatch.setattr(K, "_numba_checked", False)
    with pytest.warns(RuntimeWarning, match="numba failed to load"):
        assert not K.numba_enabled()
    x = np.linspace(-3, 3, 1000)
    assert_close(K.sigmoid_forward(x), R.sigmoid_forward(x))


@needs_numba
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (7,), (), (0, 4), (4, 0, 2)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_flat_is_a_writable_view_of_every_element_in_c_order(shape, dtype):
    """kernels/flat.py: the kernels' flat view of a C-contiguous array is a header over the
    same memory (no copy: writes reach the array), every element in C order; for another
    layout it is reshape(-1), which a strided array refuses as before."""
    from numba import njit
    from numba.core.errors import TypingError

    from tinynet.kernels.flat import flat

    @njit
    def doubled_in_place(a):
        f = flat(a)
        for i in range(f.size):
            f[i] = f[i] * 2 + i
        return f.shape[0], f.strides[0]

    x = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    expected = (x.reshape(-1) * 2 + np.arange(x.size)).astype(dtype).reshape(shape)
    assert doubled_in_place(x) == (x.size, x.itemsize)
    assert_same(x, expected)
    assert_same(flat(x), expected.reshape(-1))  # plain Python: reshape(-1)
    strided = np.zeros((4, 6), dtype=dtype)[:, ::2]
    with pytest.raises(TypingError, match="reshape"):  # numba's reshape refuses an array of
        doubled_in_place(strided)  # layout 'A', as before: no silent copy written to


def _ulps(actual: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|actual - exact| in units of the last place of exact (of the smallest normal number
    below it: a subnormal result is judged by its absolute error)."""
    info = np.finfo(exact.dtype)
    return np.abs(actual.astype(np.float64) - exact.astype(np.float64)) / np.spacing(
        np.maximum(np.abs(exact), info.tiny)).astype(np.float64)


@needs_numba
@pytest.mark.parametrize("dtype", FLOATS)
def test_vectorisable_exp_sigmoid_and_tanh_are_within_two_ulps(dtype):
    """scalar.py's exp, sigmoid and tanh (the rules the kernels and tn.compile's loops call
    instead of the C library's) over the whole range in each dtype: within 2 ulps of the
    exact value (float64's: from the C library's exp/tanh, which are within 1; float32's:
    from float64), subnormal results within one subnormal step, and NaN, infinities and
    signed zeros as the C library's."""
    from numba import njit

    from tinynet.kernels import scalar

    tag = "f32" if dtype == np.float32 else "f64"
    rules = {name: getattr(scalar, f"_{name}_{tag}")
             for name in ("exp_nonpositive", "sigmoid", "tanh")}
    exp_rule, sigmoid_rule, tanh_rule = rules["exp_nonpositive"], rules["sigmoid"], rules["tanh"]
    bits_type = np.int32 if dtype == np.float32 else np.int64

    @njit
    def apply(x, which):
        out = np.empty_like(x)
        bits = out.view(bits_type)
        for i in range(x.size):
            v = x[i]
            if which == 0:
                out[i] = exp_rule(v, out, bits, i)
            elif which == 1:
                out[i] = sigmoid_rule(v, out, bits, i)
            else:
                out[i] = tanh_rule(v, out, bits, i)
        return out

    rng = np.random.default_rng(7)
    lowest = -110.0 if dtype == np.float32 else -750.0
    wide = np.concatenate([rng.uniform(lowest, 0, 20000), rng.uniform(-1, 0, 20000),
                           -np.geomspace(1e-30, -lowest, 5000)]).astype(dtype)
    both = np.concatenate([wide, -wide, rng.standard_normal(20000) * 3]).astype(dtype)
    b64, e64 = both.astype(np.float64), np.exp(-np.abs(both.astype(np.float64)))
    with np.errstate(under="ignore"):  # sigmoid by the sign split (1 / (1 + exp(709.8)) is 0)
        exact = {0: np.exp(wide.astype(np.float64)),
                 1: np.where(b64 >= 0, 1 / (1 + e64), e64 / (1 + e64)), 2: np.tanh(b64)}
    for which, x in ((0, wide), (1, both), (2, both)):
        got = apply(x, which)
        want = exact[which].astype(dtype)  # (float32: the exact value rounded once)
        errors = _ulps(got, want)
        assert errors.max() <= 2, (which, x[errors.argmax()], got[errors.argmax()])
    special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, np.finfo(dtype).tiny,
                        -np.finfo(dtype).tiny, np.finfo(dtype).smallest_subnormal, 0.625, -0.625],
                       dtype=dtype)
    with np.errstate(over="ignore"):
        want_tanh, want_sigmoid = np.tanh(special), (1 / (1 + np.exp(-special))).astype(dtype)
    assert_same(apply(special, 2)[:8], want_tanh[:8])  # (tanh(tiny) is tiny, exactly)
    assert _ulps(apply(special, 2)[8:], want_tanh[8:]).max() <= 2  # where the two rules meet
    assert np.signbit(apply(special, 2)[1])  # tanh(-0.0) is -0.0
    np.testing.assert_allclose(apply(special, 1), want_sigmoid, rtol=2 * np.finfo(dtype).eps)
    assert np.isnan(apply(np.array([np.nan], dtype=dtype), 0)[0])
    assert apply(np.array([-np.inf, lowest * 2], dtype=dtype), 0).tolist() == [0.0, 0.0]


@needs_numba
@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_kernels_take_their_exps_by_the_rule_of_their_dtype(dtype):
    """The softmax kernels (eager softmax and cross-entropy, and tn.compile's loops) exponentiate
    x - max by scalar.py's rule of their dtype (``exp_nonpositive``), not the C library's:
    their probabilities are exactly the rule's exps divided by their sum (cross-entropy: summed
    in order; softmax: in numpy's pairwise order), -inf gives 0, +inf and NaN rows give NaN, as
    in PyTorch; the loss is log(sum) - (target logit - max) within an ulp of each term."""
    from numba import njit

    from tinynet.kernels import scalar
    from tinynet.kernels.compiled import softmax_cross_entropy_forward, softmax_rows

    rule = getattr(scalar, "_exp_nonpositive_f32" if dtype == np.float32 else
                   "_exp_nonpositive_f64")
    bits_type = np.int32 if dtype == np.float32 else np.int64

    @njit
    def exps(shifted):
        out = np.empty_like(shifted)
        bits = out.view(bits_type)
        for i in range(shifted.size):
            out[i] = rule(shifted[i], out, bits, i)
        return out

    rng = np.random.default_rng(11)
    logits = (rng.standard_normal((40, 13)) * rng.choice([0.1, 5, 200], (40, 1))).astype(dtype)
    logits[3, ::2] = -np.inf
    logits[5, 4] = np.inf
    logits[7, 1] = np.nan
    logits[9] = logits[9, 0]  # ties: every class alike
    with np.errstate(invalid="ignore"):  # (inf - inf)
        shifted = logits - logits.max(axis=1, keepdims=True)
    shifted[7] = np.nan  # (numpy's max is NaN too; the kernels' row max skips it: NaN either way)
    with np.errstate(invalid="ignore"):
        e = exps(shifted.reshape(-1)).reshape(shifted.shape)
    target = rng.integers(0, 13, 40)
    target[2] = -100
    loss, probs = np.empty(40, dtype), np.empty_like(logits)
    softmax_cross_entropy_forward(logits, target, loss, probs, -100)
    in_order = np.add.accumulate(e, axis=1)[:, -1:]  # left to right, as the kernel adds
    assert_same(probs, e / in_order)
    assert np.isnan(probs[[5, 7]]).all() and (probs[3, ::2] == 0).all()
    picked = shifted[np.arange(40), np.where(target == -100, 0, target)]
    with np.errstate(invalid="ignore"):
        want = np.where(target == -100, 0, np.log(in_order[:, 0]) - picked).astype(dtype)
    scale = np.abs(np.log(in_order[:, 0])) + np.abs(picked)
    ok = np.isfinite(want)
    np.testing.assert_array_less(np.abs(loss[ok] - want[ok]), 2 * np.finfo(dtype).eps * scale[ok]
                                 + np.finfo(dtype).tiny)
    np.testing.assert_array_equal(loss[~ok], want[~ok])  # a -inf target logit: inf; NaN: NaN
    assert loss[2] == 0
    out = np.empty_like(logits)
    softmax_rows(logits, out)
    assert_same(out, e / e.sum(axis=1, keepdims=True))  # numpy's pairwise sum: row_sum's order
