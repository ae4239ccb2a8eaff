"""tn.compile lowers convolutions and pooling (issue 20): compiled equals eager.

A convolution compiles to what eager's ``Convolution`` runs, in the same order: im2col as a
gather through an affine index map (a ``take``, after a copy into zeros when there is padding),
the product as eager's ``np.matmul`` (BLAS, in the driver), the bias and the activation in one
pass; its backward the two products, col2im as a scatter-add visiting the columns in eager's
order, and numpy's sums. Max pooling is eager's loop with the sizes written in (the first
maximum of a window wins a tie, a NaN wins), its backward adds each gradient at the argmax.
So compiled and eager give the same numbers: every test compares the value and every
``.grad`` on every call (the first traces, the others replay), in float64 and float32, and
checks that ``explain()`` runs none of these ops opaque.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from compile_support import close_typed, opaque_ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import kernels, nn
from tinynet.ops import conv as ops_conv

CONV_OPS = {"convolution", "max_pool2d", "im2col", "col2im"}

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


def close(got: Any, want: Any, dtype: Any, what: str) -> None:
    """close_typed, and the values are of ``dtype`` (a conv step keeps its dtype)."""
    assert np.asarray(got).dtype == np.dtype(dtype), (what, np.asarray(got).dtype, dtype)
    close_typed(got, want, dtype, what)


def assert_lowered(compiled: Any) -> None:
    """With numba the program runs generated code and no conv/pool step is opaque (without
    numba every program is interpreted)."""
    if kernels.numba_enabled():
        text = compiled.explain()
        assert "== IR after lowering" in text
        assert not opaque_ops(text) & CONV_OPS, opaque_ops(text) & CONV_OPS


def leaf(array: np.ndarray, grad: bool = True) -> tn.Tensor:
    return tn.tensor(array.copy(), requires_grad=grad)


def compare_calls(fn: Any, make_inputs: Any, dtype: Any, calls: int = 3) -> Any:
    """Run ``fn`` eagerly and compiled on the same fresh inputs, ``calls`` times; compare the
    result and the .grad of every input that requires grad."""
    compiled = tn.compile(fn)
    for call in range(calls):
        arrays, needs = make_inputs(call)
        eager = [leaf(a, n) for a, n in zip(arrays, needs, strict=True)]
        other = [leaf(a, n) for a, n in zip(arrays, needs, strict=True)]
        want = fn(*eager)
        got = compiled(*other)
        close(got.detach().numpy(), want.detach().numpy(), dtype, f"value, call {call}")
        for i, (a, b) in enumerate(zip(other, eager, strict=True)):
            if b.requires_grad:
                close(a.grad.numpy(), b.grad.numpy(), dtype, f"grad of input {i}, call {call}")
    return compiled


@st.composite
def conv_case(draw: Any) -> dict[str, Any]:
    """A conv2d's shapes and options that fit: kernel, stride, padding, dilation, groups."""
    groups = draw(st.sampled_from([1, 1, 2]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    side = [draw(st.integers(max(1, s - 2 * p), s + 4))
            for s, p in zip(span, padding, strict=True)]
    return {"n": draw(st.integers(1, 3)), "c": groups * draw(st.integers(1, 2)),
            "o": groups * draw(st.integers(1, 3)), "side": side, "kernel": kernel,
            "stride": (draw(st.integers(1, 2)), draw(st.integers(1, 2))), "padding": padding,
            "dilation": dilation, "groups": groups, "bias": draw(st.booleans()),
            "act": draw(st.sampled_from(["none", "relu", "tanh", "leaky_relu", "elu"])),
            "input_grad": draw(st.booleans())}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_case(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_conv2d_compiled_equals_eager_values_and_grads(case: dict, dtype: Any,
                                                       seed: int) -> None:
    rng = np.random.default_rng(seed)
    c, o, g = case["c"], case["o"], case["groups"]
    acts = {"none": lambda y: y, "relu": F.relu, "tanh": tn.tanh, "elu": F.elu,
            "leaky_relu": lambda y: F.leaky_relu(y, 0.2)}

    def step(x: Any, w: Any, b: Any, r: Any) -> Any:
        y = acts[case["act"]](F.conv2d(x, w, b if case["bias"] else None, stride=case["stride"],
                                       padding=case["padding"], dilation=case["dilation"],
                                       groups=g))
        (y * r).sum().backward()
        return y

    out_hw = [(s + 2 * p - (k - 1) * d - 1) // st_ + 1 for s, p, k, d, st_ in zip(
        case["side"], case["padding"], case["kernel"], case["dilation"], case["stride"],
        strict=True)]

    def inputs(call: int) -> tuple[list[np.ndarray], list[bool]]:
        arrays = [rng.standard_normal((case["n"], c, *case["side"])),
                  rng.standard_normal((o, c // g, *case["kernel"])),
                  rng.standard_normal(o), rng.standard_normal((case["n"], o, *out_hw))]
        return [a.astype(dtype) for a in arrays], [case["input_grad"], True, case["bias"], False]

    assert_lowered(compare_calls(step, inputs, dtype))


@st.composite
def pool_case(draw: Any) -> dict[str, Any]:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return {"shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
                      draw(st.integers(3, 7)), draw(st.integers(3, 7))),
            "kernel": kernel, "stride": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
            "padding": (draw(st.integers(0, kernel[0] // 2)),
                        draw(st.integers(0, kernel[1] // 2))),
            "dilation": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
            "ceil_mode": draw(st.booleans())}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pool_case(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_max_pool2d_with_ties_compiled_equals_eager(case: dict, dtype: Any, seed: int) -> None:
    """Pixels drawn from {-1, 0, 1}: most windows tie, and the gradient must go to the same
    (first) maximum as in eager mode; overlapping windows add up at a shared maximum."""
    rng = np.random.default_rng(seed)
    pool = nn.MaxPool2d(case["kernel"], case["stride"], case["padding"], case["dilation"],
                        ceil_mode=case["ceil_mode"])

    def step(x: Any) -> Any:
        y = pool(x)
        (y * y.detach() + y).sum().backward()
        return y

    def inputs(call: int) -> tuple[list[np.ndarray], list[bool]]:
        return [rng.integers(-1, 2, case["shape"]).astype(dtype)], [True]

    assert_lowered(compare_calls(step, inputs, dtype))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pool_case(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_max_pool2d_with_several_nans_and_infinities_per_window_is_eager_bit_for_bit(
        case: dict, dtype: Any, seed: int) -> None:
    """Pixels from {nan, -nan, -inf, inf, -1, 0, 1}: windows hold several NaNs (the last one
    wins, its own bits), infinities and ties. The compiled loop, eager's numba kernel and the
    numpy twin give the same values bit for bit and the same positions; the gradient goes
    there."""
    rng = np.random.default_rng(seed)
    choices = np.array([np.nan, -np.nan, -np.inf, np.inf, -1.0, 0.0, 1.0], dtype=dtype)
    x = rng.choice(choices, case["shape"])
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"])

    def step(x: Any) -> Any:
        y = F.max_pool2d(x, *args, ceil_mode=case["ceil_mode"])
        y.sum().backward()
        return y

    compiled = tn.compile(step)
    for _ in range(2):
        want_x, got_x = leaf(x), leaf(x)
        with np.errstate(invalid="ignore"):  # the sum of inf and -inf outputs is NaN
            want, got = step(want_x), compiled(got_x)
        bits = np.int32 if dtype == np.float32 else np.int64
        assert np.array_equal(got.detach().numpy().view(bits), want.detach().numpy().view(bits))
        assert np.array_equal(got_x.grad.numpy(), want_x.grad.numpy())
    assert_lowered(compiled)
    kernel, stride, pads, dilation = ops_conv._pool_geometry(
        "max_pool2d", tn.tensor(x), *args, case["ceil_mode"])
    out, index = kernels.max_pool2d_forward(x, kernel, stride, pads, dilation)  # numba's
    twin_out, twin_index = np.empty_like(out), np.empty_like(index)
    kernels.max_pool2d_forward_twin(x, twin_out, twin_index, kernel, stride,
                                    (pads[0], pads[2]), dilation)
    assert np.array_equal(out.view(bits), twin_out.view(bits))
    assert np.array_equal(index, twin_index)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pool_case(), include_pad=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_avg_pool2d_compiled_equals_eager(case: dict, include_pad: bool, dtype: Any,
                                          seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = nn.AvgPool2d(case["kernel"], case["stride"], case["padding"],
                        ceil_mode=case["ceil_mode"], count_include_pad=include_pad)

    def step(x: Any) -> Any:
        y = pool(x).tanh()
        y.sum().backward()
        return y

    def inputs(call: int) -> tuple[list[np.ndarray], list[bool]]:
        return [rng.standard_normal(case["shape"]).astype(dtype)], [True]

    assert_lowered(compare_calls(step, inputs, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unfold_and_fold_compiled_equal_eager(dtype: Any) -> None:
    """im2col and col2im on their own (F.unfold, F.fold), padded and strided, with their
    gradients (each other)."""
    rng = np.random.default_rng(0)

    def step(x: Any, cols: Any) -> Any:
        a = F.unfold(x, (2, 3), dilation=(2, 1), padding=(1, 2), stride=(2, 1))
        b = F.fold(cols, (5, 6), (2, 3), dilation=(2, 1), padding=(1, 2), stride=(2, 1))
        out = a.sum() * 0.5 + (b * b).sum()
        out.backward()
        return out

    def inputs(call: int) -> tuple[list[np.ndarray], list[bool]]:
        return [rng.standard_normal((2, 3, 5, 6)).astype(dtype),
                rng.standard_normal((2, 18, 24)).astype(dtype)], [True, True]

    assert_lowered(compare_calls(step, inputs, dtype))


def test_max_pool2d_nan_wins_its_window_compiled_as_eager() -> None:
    """A NaN is the window's maximum (PyTorch's rule), in the value and in the gradient."""
    x = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
    x[0, 0, 1, 0] = np.nan
    x[0, 1, 2, 3] = np.nan

    def step(x: Any) -> Any:
        y = F.max_pool2d(x, 2)
        y.sum().backward()
        return y

    compare_calls(step, lambda call: ([x], [True]), np.float64)


def lenet(dtype: Any) -> tuple[Any, Any]:
    tn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(6 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, 5))
    if dtype == np.float64:
        model.double()
    return model, tn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lenet_training_step_compiled_equals_eager_over_several_calls(dtype: Any) -> None:
    """A LeNet-like training step (conv, relu, max pool, padded conv, avg pool, linear layers,
    cross-entropy, SGD with momentum): after each call the loss, every parameter and every
    .grad agree."""
    (m1, o1), (m2, o2) = lenet(dtype), lenet(dtype)

    def make_step(model: Any, opt: Any) -> Any:
        def step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return step

    eager, compiled = make_step(m1, o1), tn.compile(make_step(m2, o2))
    rng = np.random.default_rng(1)
    for call in range(5):
        x = rng.standard_normal((8, 1, 12, 12)).astype(dtype)
        y = rng.integers(0, 5, 8)
        want, got = eager(tn.tensor(x), tn.tensor(y)), compiled(tn.tensor(x), tn.tensor(y))
        close(got.detach().numpy(), want.detach().numpy(), dtype, f"loss, call {call}")
        for (name, p), q in zip(m2.named_parameters(), m1.parameters(), strict=True):
            close(p.detach().numpy(), q.detach().numpy(), dtype, f"{name}, call {call}")
            close(p.grad.numpy(), q.grad.numpy(), dtype, f"{name}.grad, call {call}")
    assert_lowered(compiled)


def test_float64_convolution_gradients_are_the_eager_numbers_exactly() -> None:
    """The same calls in the same order (eager's np.matmul, col2im's order of additions,
    numpy's sums): not only close, equal."""
    rng = np.random.default_rng(3)

    def step(x: Any, w: Any, b: Any) -> Any:
        y = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1, stride=(1, 2))), 2)
        (y * y).sum().backward()
        return y

    def inputs(call: int) -> tuple[list[np.ndarray], list[bool]]:
        return [rng.standard_normal((3, 2, 9, 10)), rng.standard_normal((4, 2, 3, 3)),
                rng.standard_normal(4)], [True, True, True]

    compiled = tn.compile(step)
    for call in range(3):
        arrays, needs = inputs(call)
        eager = [leaf(a, n) for a, n in zip(arrays, needs, strict=True)]
        other = [leaf(a, n) for a, n in zip(arrays, needs, strict=True)]
        np.testing.assert_array_equal(compiled(*other).detach().numpy(),
                                      step(*eager).detach().numpy())
        for a, b in zip(other, eager, strict=True):
            np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    assert_lowered(compiled)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "elu", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_bias_activation_fused_compiled_equals_eager(act: str, dtype: Any) -> None:
    """conv + bias + activation: the values and every gradient equal eager's, with negative
    and NaN pre-activations. relu, and sigmoid in float64, are fused into the bias loop with
    their formula written in; float32 sigmoid as a call of eager's kernel on each plane;
    leaky_relu and elu keep their input for the backward, so their loops stay apart."""
    fn = {"relu": F.relu, "leaky_relu": lambda y: F.leaky_relu(y, 0.3), "elu": F.elu,
          "sigmoid": tn.sigmoid}[act]
    rng = np.random.default_rng(7)

    def step(x: Any, w: Any, b: Any, r: Any) -> Any:
        y = fn(F.conv2d(x, w, b))
        (y * r).sum().backward()
        return y

    def inputs(call: int) -> tuple[list[np.ndarray], list[bool]]:
        x = rng.standard_normal((2, 3, 6, 5))
        x[1, 2, 3, 3] = np.nan
        return [a.astype(dtype) for a in (x, rng.standard_normal((4, 3, 3, 2)),
                                          rng.standard_normal(4) - 1.0,
                                          rng.standard_normal((2, 4, 4, 4)))], \
            [True, True, True, False]

    compiled = compare_calls(step, inputs, dtype)
    assert_lowered(compiled)
    if kernels.numba_enabled():
        assert "channel_bias" in compiled.explain()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 3, 8, 24, 63])
def test_runs_copied_and_added_at_once_equal_the_loops(dtype: Any, width: int) -> None:
    """im2col's runs are copied by one memcpy and col2im's added as one vector
    (``runtime.copy_run``, ``add_run``): the same numbers as element-by-element loops, runs
    that overlap on the target added in order, nothing written outside each run."""
    pytest.importorskip("numba")
    from numba import njit

    from tinynet.compile.runtime import add_run, copy_run

    @njit(cache=False)
    def runs(target: Any, source: Any, starts: Any, copy: Any) -> None:
        for r in range(starts.size):
            copy_run(copy, r * width, source, starts[r], width)
            add_run(target, starts[r], source, r * width, width)

    rng = np.random.default_rng(width)
    count = 9
    source = rng.standard_normal(count * width + 50).astype(dtype)
    starts = rng.integers(0, 40, count)  # overlapping runs of the target
    target = rng.standard_normal(50 + width).astype(dtype)
    copy = np.full(count * width + 5, -7.0, dtype)
    want_target, want_copy = target.copy(), copy.copy()
    for r, s in enumerate(starts):
        want_copy[r * width:(r + 1) * width] = source[s:s + width]
        for i in range(width):  # one add per element, runs in order
            want_target[s + i] += source[r * width + i]
    runs(target, source, starts, copy)
    np.testing.assert_array_equal(copy, want_copy)
    np.testing.assert_array_equal(target, want_target)
