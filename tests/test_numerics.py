"""Numerics: float32 against float64, saturating functions at extreme inputs, float16, and no
floating-point warnings from tinynet's own arithmetic.

1. **float32 and float64 agree to float32 precision.** Random programs (the generator of
   ``test_random_programs.py``) run in float32: every value and gradient stays float32; every
   op's output, and every op's backward step, is within ``ULPS_32`` float32 rounding units of
   float64 arithmetic on the same float32 values; the loss is within the first-order float32
   rounding bound of the float64 loss.
2. **Saturation.** sigmoid, tanh, softmax, log_softmax, cross-entropy, BCE and BCE-with-logits,
   forward and backward, in float16, float32 and float64, at |x| up to 1e4 (and float16's
   largest values): finite, and equal to a stable float64 reference computed from the same
   rounded inputs. Everything runs under ``np.errstate(all="raise")`` (underflow included) with
   Python warnings as errors, so no numpy warning can escape.
3. **Edges tinynet answers silently, as numpy's values:** log(0), x/0, sqrt of a negative,
   0**0's gradient, the mean of nothing, float16 means whose sum would overflow.

Decision (see docs/reliability.md): when the exact result of add/sub/mul/matmul/sum itself
exceeds the dtype's range (1e308 * 10), tinynet returns inf and numpy's own overflow warning is
left alone (silencing it would cost every op ~3 us); the tests here cover the functions that must
not warn because their true result is representable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import reference_evaluator as R
import test_random_programs as P
from reference_evaluator import Program, Step

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import nn

FLOATS = [np.float16, np.float32, np.float64]
EXTREMES = [-1e4, -1e3, -100.0, -30.0, -17.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 17.0, 30.0, 100.0,
            1e3, 1e4]
# float32 arithmetic: every op within ULPS_32 units of float32 rounding of its terms
ULPS_32 = 8
EPS_32 = float(np.finfo(np.float32).eps)
PROGRAMS_32 = 120 if not P.NIGHTLY else 3000


class strict:  # noqa: N801 - used like np.errstate
    """Every numpy floating-point signal (underflow too) raises; Python warnings are errors."""

    def __enter__(self) -> None:
        self._errstate = np.errstate(all="raise")
        self._errstate.__enter__()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc: object) -> None:
        self._warnings.__exit__(*exc)
        self._errstate.__exit__(*exc)


def assert_matches(got: tn.Tensor | np.ndarray, expected: np.ndarray, dtype: Any,
                   scale: Any = 0.0, ulps: float = 8) -> None:
    """``got`` (dtype ``dtype``) is finite and within ``ulps`` rounding units of the dtype of
    the float64 ``expected``, measured against |expected| + ``scale`` (the size of the terms
    the computation rounds), or below the dtype's smallest normal number."""
    array = got.data if isinstance(got, tn.Tensor) else got
    assert array.dtype == np.dtype(dtype), (array.dtype, dtype)
    assert np.all(np.isfinite(array)), array
    info = np.finfo(dtype)
    with np.errstate(all="ignore"):
        error = np.abs(array.astype(np.float64) - expected)
        allowed = ulps * float(info.eps) * (np.abs(expected) + scale) + float(info.tiny)
    assert np.all(error <= allowed), (array, expected, error.max(), allowed)


# ---------------------------------------------------------------------------------------------
# 1. float32 programs against float64
# ---------------------------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    """A constant rounded to float32 as tinynet will round it, keeping its kind: arrays become
    float32 arrays, numbers stay numbers (a scalar never changes a tensor's dtype)."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32) if value.dtype.kind == "f" else value
    if isinstance(value, float | np.floating):
        return type(value)(np.float32(value))
    return value


def in_float32(program: Program) -> Program | None:
    """The program with its inputs, constants (operands, clip bounds, loss weights) and loss
    weights rounded to float32, so that float32 and float64 runs differ only by their
    arithmetic. None if rounding moved a value too close to a kink or a pole (the two runs
    would then branch apart)."""
    steps = []
    for step in program.steps:
        params = dict(step.params)
        if step.op == "input":
            params["array"] = np.asarray(params["array"], dtype=np.float32)
        for key in ("const", "low", "high", "weight", "pos_weight"):
            if key in params:
                params[key] = _rounded(params[key])
        steps.append(Step(step.op, step.args, params, step.form))
    weights = {k: w.astype(np.float32) for k, w in program.loss_weights.items()}
    rounded = Program(steps, weights)
    values = R.evaluate(rounded.steps)
    for step, out in zip(rounded.steps, values, strict=True):
        if step.op != "input" and not P.admissible(step, step.operands(values), out):
            return None
    return rounded


def check_float32_program(program: Program) -> None:
    """Forward and backward in float32, op by op against float64 arithmetic on the same float32
    values, and the loss against the float64 loss within its float32 rounding bound."""
    reference = R.evaluate(program.steps)  # float64 arithmetic on the float32-rounded inputs
    adjoints = R.adjoints(program, reference)
    values, snapshots, loss, adjoint = P.run_retaining_grads(program)
    for i, (step, array) in enumerate(zip(program.steps, snapshots, strict=True)):
        assert array.dtype == np.float32, P._describe(program, i, f"dtype {array.dtype}")
        assert adjoint[i].dtype == np.float32 or not values[i].requires_grad, i
        if step.op == "input":
            continue
        wide = [a.astype(np.float64) for a in snapshots]  # the same inputs, float64 arithmetic
        expected = R.apply(step, wide)
        scale = R.rounding_scale(step, wide, expected)
        close = np.abs(array - expected) <= ULPS_32 * EPS_32 * (np.abs(expected) + scale)
        assert np.all(close), P._describe(program, i, f"float32 {array} vs float64 {expected}")
    assert loss.dtype == np.float32
    bound = R.loss_error_bound(program, reference, adjoints, ULPS_32) * EPS_32 / R.EPS
    assert abs(float(loss.item()) - R.loss(program, reference)) <= bound, (
        f"float32 loss {loss.item()!r}, float64 {R.loss(program, reference)!r}, bound {bound}"
        f"\nprogram:\n{program}")
    P.check_backward_op_by_op(program, values, [a.astype(np.float64) for a in snapshots],
                              [a.astype(np.float64) for a in adjoint], ULPS_32 * EPS_32)


@pytest.mark.parametrize("chunk", range(4))
def test_float32_programs_agree_with_float64_to_float32_precision(chunk: int) -> None:
    count = PROGRAMS_32 // 4
    checked = 0
    for seed in range(chunk * count, (chunk + 1) * count):
        program = in_float32(P.generate(P.SeededChooser(700_000 + seed)))
        if program is None:
            continue
        checked += 1
        try:
            with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
                warnings.simplefilter("error")
                check_float32_program(program)
        except Exception as e:
            raise AssertionError(f"float32 program {700_000 + seed}: {e}") from e
    assert checked >= count * 0.8, checked


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "exp", "softmax", "log_softmax",
                                  "sum", "mean", "max", "matmul", "linear"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_results_keep_their_dtype(name: str, dtype: Any) -> None:
    x = tn.tensor(np.linspace(-2, 2, 12).reshape(3, 4), dtype=dtype, requires_grad=True)
    op: dict[str, Callable[[tn.Tensor], tn.Tensor]] = {
        "sigmoid": tn.sigmoid, "tanh": tn.tanh, "relu": tn.relu, "exp": tn.exp,
        "softmax": lambda t: t.softmax(1), "log_softmax": lambda t: t.log_softmax(0),
        "sum": lambda t: t.sum(1), "mean": lambda t: t.mean(), "max": lambda t: t.max(0).values,
        "matmul": lambda t: t @ t.T,
        "linear": lambda t: tn.ops.linear(t, tn.ones(2, 4, dtype=dtype), None, "sigmoid"),
    }
    out = op[name](x)
    assert out.dtype == dtype
    (out * 2.0).sum().backward()  # a Python float never changes the dtype
    assert x.grad.dtype == dtype


# ---------------------------------------------------------------------------------------------
# 2. Saturating functions at extreme inputs
# ---------------------------------------------------------------------------------------------


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _log_sigmoid64(x: np.ndarray) -> np.ndarray:
    with np.errstate(under="ignore"):
        return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def _log_softmax64(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _extremes(dtype: Any) -> np.ndarray:
    return np.array(EXTREMES, dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("form", ["function", "F", "module", "fused linear"])
def test_sigmoid_and_tanh_are_finite_and_exact_at_extreme_inputs(dtype: Any, form: str) -> None:
    data = _extremes(dtype)
    wide = data.astype(np.float64)
    for name, forward, slope in (
        ("sigmoid", _sigmoid64, lambda y: y * (1 - y)),
        ("tanh", np.tanh, lambda y: 1 - y * y),
    ):
        x = tn.tensor(data, requires_grad=True)
        with strict():
            if form == "function":
                y = getattr(tn, name)(x)
            elif form == "F":
                y = getattr(F, name)(x)
            elif form == "module":
                y = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[name]()(x)
            else:
                y = tn.ops.linear(x.reshape(-1, 1), tn.ones(1, 1, dtype=dtype), None,
                                  name).reshape(-1)
            y.sum().backward()
        expected = forward(wide)
        assert_matches(y, expected, dtype)
        # backward from the saved output, as PyTorch: exact up to rounding of y
        assert_matches(x.grad, slope(expected), dtype, scale=0.25)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax_are_finite_and_exact_at_extreme_inputs(dtype: Any,
                                                                        name: str) -> None:
    rows = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4],
                     [30.0, -30.0, 1e-3], [0.0, 0.0, 0.0]], dtype=dtype)
    grad_out = np.array([[1.0, -2.0, 0.5]] * 5, dtype=dtype)
    wide = rows.astype(np.float64)
    for dim in (1, 0):
        x = tn.tensor(rows, requires_grad=True)
        with strict():
            y = getattr(x, name)(dim=dim)
            y.backward(grad_out)
        log_p = _log_softmax64(wide, dim)
        p = np.exp(log_p)
        g = grad_out.astype(np.float64)
        if name == "softmax":
            assert_matches(y, p, dtype)
            expected_grad = p * (g - (g * p).sum(axis=dim, keepdims=True))
        else:
            assert_matches(y, log_p, dtype, scale=np.abs(wide).max(axis=dim, keepdims=True))
            expected_grad = g - p * g.sum(axis=dim, keepdims=True)
        assert_matches(x.grad, expected_grad, dtype, scale=np.abs(g).sum(axis=dim,
                                                                         keepdims=True))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("variant", ["fused", "weighted", "ignore_index", "module", "3-d"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_is_finite_and_exact_at_extreme_logits(dtype: Any, variant: str,
                                                             reduction: str) -> None:
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4],
                       [30.0, -30.0, 1e-3]], dtype=dtype)
    target = np.array([2, 2, 0, 1])
    weight = np.array([0.5, 2.0, 1.0])
    ignore = 1 if variant == "ignore_index" else -100
    kwargs: dict[str, Any] = {"reduction": reduction}
    if variant == "weighted":
        kwargs["weight"] = weight
    if variant == "ignore_index":
        kwargs["ignore_index"] = ignore
    x = tn.tensor(logits, requires_grad=True)
    with strict():
        if variant == "module":
            loss = nn.CrossEntropyLoss(**kwargs)(x, target)
        elif variant == "3-d":  # (N, C, d): the class dim second
            loss = F.cross_entropy(x.T.unsqueeze(0), target.reshape(1, -1), **kwargs)
        else:
            loss = F.cross_entropy(x, target, **kwargs)
        loss.sum().backward()
    wide = logits.astype(np.float64)
    log_p = _log_softmax64(wide, 1)
    w = (weight[target] if variant == "weighted" else np.ones(4)) * (target != ignore)
    losses = -log_p[np.arange(4), target] * w
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.sum() / w.sum()}[reduction]
    if variant == "3-d" and reduction == "none":
        expected = expected.reshape(1, -1)
    assert_matches(loss, expected, dtype, scale=np.abs(wide).max() * (4 if reduction != "none"
                                                                     else 1))
    per_row = w / (w.sum() if reduction == "mean" else 1.0)
    onehot = np.eye(3)[target]
    assert_matches(x.grad, (np.exp(log_p) - onehot) * per_row[:, None], dtype, scale=1.0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", ["plain", "weight", "pos_weight", "module"])
def test_bce_with_logits_is_finite_and_exact_at_extreme_logits(dtype: Any, reduction: str,
                                                                options: str) -> None:
    z = np.repeat(_extremes(dtype), 3)
    t = np.tile(np.array([0.0, 1.0, 0.25], dtype=dtype), len(EXTREMES))
    kwargs: dict[str, Any] = {"reduction": reduction}
    weight = np.linspace(0.5, 2.0, z.size).astype(dtype)
    if options == "weight":
        kwargs["weight"] = weight
    if options == "pos_weight":
        kwargs["pos_weight"] = np.array([3.0], dtype=dtype)
    x = tn.tensor(z, requires_grad=True)
    with strict():
        if options == "module":
            loss = nn.BCEWithLogitsLoss(**kwargs)(x, t)
        else:
            loss = F.binary_cross_entropy_with_logits(x, t, **kwargs)
        loss.sum().backward()
    x64, t64 = z.astype(np.float64), t.astype(np.float64)
    p = 3.0 if options == "pos_weight" else 1.0
    w = weight.astype(np.float64) if options == "weight" else 1.0
    losses = ((1 - t64) * x64 - (1 + (p - 1) * t64) * _log_sigmoid64(x64)) * w
    n = 1.0 if reduction != "mean" else z.size
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]
    terms = (np.abs(x64) + 1) * p * w
    assert_matches(loss, expected, dtype, scale=terms if reduction == "none" else terms.sum() / n)
    s = _sigmoid64(x64)
    assert_matches(x.grad, ((1 + (p - 1) * t64) * s - p * t64) * w / n, dtype, scale=p * 2 / n)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_on_saturated_probabilities_is_finite(dtype: Any, reduction: str) -> None:
    """Probabilities from a sigmoid of |x| up to 1e4 are exactly 0 or 1: each log is clamped at
    -100 (the loss is at most 100 per element) and the gradient's denominator x(1 - x) at
    PyTorch's 1e-12. float16 cannot hold 1e-12: its gradient is computed in float32, as
    PyTorch does, and clipped to float16's largest value (PyTorch's float16 gives inf there,
    and nan where x = t = 0)."""
    probabilities = tn.sigmoid(tn.tensor(np.repeat(_extremes(dtype), 3)))
    t = np.tile(np.array([0.0, 1.0, 0.25], dtype=dtype), len(EXTREMES))
    x = probabilities.detach().requires_grad_()
    with strict():
        loss = F.binary_cross_entropy(x, t, reduction=reduction)
        loss.sum().backward()
    x64, t64 = x.data.astype(np.float64), t.astype(np.float64)
    with np.errstate(divide="ignore"):
        losses = -(t64 * np.maximum(np.log(x64), -100) + (1 - t64) * np.maximum(np.log1p(-x64),
                                                                                -100))
    n = 1.0 if reduction != "mean" else x64.size
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]
    assert_matches(loss, expected, dtype, scale=100.0 * (1 if reduction == "none" else
                                                         x64.size / n))
    grad = (x64 - t64) / np.maximum(x64 * (1 - x64), float(np.float32(1e-12))) / n
    limit = float(np.finfo(dtype).max)
    assert_matches(x.grad, np.clip(grad, -limit, limit), dtype, scale=1.0)


def test_bce_gradient_at_saturated_probabilities_matches_pytorch_in_float32() -> None:
    torch = pytest.importorskip("torch")
    x = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 1e-30], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0], dtype=np.float32)
    ours = tn.tensor(x, requires_grad=True)
    F.binary_cross_entropy(ours, t, reduction="sum").backward()
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(theirs, torch.tensor(t), reduction="sum").backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
def test_float16_extremes_of_its_range_do_not_overflow_softmax_or_sigmoid(dtype: Any) -> None:
    """The largest finite values of each dtype: the max-shift keeps softmax's exponentials in
    range, and sigmoid never computes exp of a positive number."""
    big = float(np.finfo(dtype).max)
    data = np.array([[big, 0.0, -big / 2], [-big / 2, -big / 2, -big / 2]], dtype=dtype)
    x = tn.tensor(data, requires_grad=True)
    with strict():
        s = x.sigmoid()
        p = x.softmax(dim=1)
        (s.sum() + p[:, 0].sum()).backward()
    np.testing.assert_array_equal(s.data, np.array([[1, 0.5, 0], [0, 0, 0]], dtype=dtype))
    np.testing.assert_array_equal(p.data, np.array([[1, 0, 0], [1 / 3] * 3], dtype=dtype))
    assert np.all(np.isfinite(x.grad.data))


# ---------------------------------------------------------------------------------------------
# 3. Edge values answered silently with numpy's values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("name", "fn", "data", "expected"), [
    ("log(0)", tn.log, [0.0, -0.0, 1.0], [-np.inf, -np.inf, 0.0]),
    ("log of negative", tn.log, [-1.0], [np.nan]),
    ("sqrt of negative", tn.sqrt, [-1.0, 0.0, 4.0], [np.nan, 0.0, 2.0]),
    ("1 / 0", lambda x: 1.0 / x, [0.0, -0.0, 2.0], [np.inf, -np.inf, 0.5]),
    ("0 / 0", lambda x: x / x, [0.0], [np.nan]),
    ("0 ** -1", lambda x: x**-1, [0.0], [np.inf]),
    ("exp(large)", tn.exp, [1e4, -1e4], [np.inf, 0.0]),
    ("mean of nothing", lambda x: x[:0].mean(), [1.0], np.nan),
])
def test_edge_values_give_numpys_answer_without_warnings(dtype: Any, name: str, fn: Callable,
                                                         data: list, expected: Any) -> None:
    x = tn.tensor(np.array(data, dtype=dtype), requires_grad=True)
    with strict():
        y = fn(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, np.asarray(expected, dtype=dtype), err_msg=name)


@pytest.mark.parametrize("dtype", FLOATS)
def test_x_to_the_power_0_has_gradient_0_even_at_0(dtype: Any) -> None:
    """d/dx x^0 = 0 everywhere, as PyTorch (the rule b x^(b-1) would give 0 * inf = nan at 0);
    also with a tensor exponent, and d/dx x^b at 0 for b >= 1 is finite."""
    x = tn.tensor(np.array([0.0, 2.0, -3.0], dtype=dtype), requires_grad=True)
    with strict():
        (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])
    e = tn.tensor(np.array([0.0, 0.0, 1.0], dtype=dtype), requires_grad=True)
    x.grad = None
    with strict():
        (x**e).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 1.0])
    x.grad = None
    with strict():
        (x**2 + x**1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 5.0, -5.0])


def test_float16_mean_accumulates_in_float32_without_overflowing() -> None:
    """numpy (and PyTorch) accumulate a float16 mean in float32: 1000 values of 1000 have a
    representable mean although their float16 sum would overflow."""
    x = tn.tensor(np.full((1000,), 1000.0, dtype=np.float16), requires_grad=True)
    with strict():
        m = x.mean()
        m.backward()
        rows = x.reshape(10, 100).mean(dim=1)
    assert m.dtype == np.float16 and m.item() == 1000.0
    np.testing.assert_array_equal(rows.data, np.full(10, 1000.0, np.float16))
    np.testing.assert_array_equal(x.grad.data, np.full(1000, 1e-3, np.float16))


@pytest.mark.parametrize("dtype", FLOATS)
def test_training_step_on_extreme_inputs_stays_finite(dtype: Any) -> None:
    """A whole step (fused linear + sigmoid, BCE-with-logits, cross-entropy, SGD and Adam) on
    inputs of size 1e4 in each dtype: no warning, finite parameters. (Underflow is allowed
    here: a float16 update lr * grad may legitimately round to a subnormal or 0.)"""
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 3)).to(dtype)
    x = tn.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 30.0]], dtype=dtype))
    eps = 1e-4 if dtype == np.float16 else 1e-8  # float16 cannot hold Adam's default 1e-8
    for optimizer in (tn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      tn.optim.Adam(model.parameters(), lr=1e-3, eps=eps)):
        with strict(), np.errstate(under="ignore"):
            optimizer.zero_grad()
            scores = model(x)
            loss = F.cross_entropy(scores, [0, 2]) + F.binary_cross_entropy_with_logits(
                scores, np.ones((2, 3), dtype=dtype))
            loss.backward()
            optimizer.step()
        assert np.isfinite(loss.item())
        assert all(np.all(np.isfinite(p.data)) for p in model.parameters())


def test_adam_refuses_an_eps_that_float16_rounds_to_zero() -> None:
    """With eps = 0 in float16, m / (sqrt(v) + eps) is 0/0 = nan wherever a gradient has been 0
    (PyTorch silently returns those nans): tinynet refuses before changing anything."""
    weight = nn.Parameter(tn.ones(3, dtype=tn.float16))
    other = nn.Parameter(tn.ones(2))
    optimizer = tn.optim.Adam([other, weight], lr=1e-3)
    other.grad = tn.ones(2)
    weight.grad = tn.tensor(np.array([0.0, 1.0, 0.0], dtype=np.float16))
    with pytest.raises(tn.nn.ValueRangeError, match=r"Adam: eps=1e-08 rounds to 0 in float16.*"
                                                    r"eps=1e-4"):
        optimizer.step()
    np.testing.assert_array_equal(other.data, [1.0, 1.0])  # nothing changed
    np.testing.assert_array_equal(weight.data, [1.0, 1.0, 1.0])
