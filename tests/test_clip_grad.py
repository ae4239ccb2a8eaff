"""tinynet.nn.utils.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils: the returned
total norm, the clipped gradients (every norm type, inf and NaN norms, error_if_nonfinite),
dtypes, and the inputs they refuse."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerance import assert_close

import tinynet as tn
from tinynet import nn
from tinynet.nn.utils import (
    NonFiniteNormError,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)

torch = pytest.importorskip("torch")

NORM_TYPES = [2.0, 1.0, 3.5, 0.5, math.inf, -math.inf, 0.0]


def _pair(grads, dtype=np.float64):
    """tinynet and torch parameters with the given gradients (None: no gradient)."""
    ours, theirs = [], []
    for g in grads:
        shape = (2,) if g is None else np.shape(g)
        p = nn.Parameter(tn.zeros(*shape, dtype=dtype))
        q = torch.nn.Parameter(torch.zeros(shape, dtype=torch.from_numpy(np.zeros(1, dtype)).dtype))
        if g is not None:
            p.grad = tn.tensor(np.array(g, dtype=dtype))
            q.grad = torch.from_numpy(np.array(g, dtype=dtype))
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def _assert_same_grads(ours, theirs, rtol):
    for p, q in zip(ours, theirs, strict=True):
        if q.grad is None:
            assert p.grad is None
            continue
        assert p.grad.dtype == q.grad.numpy().dtype
        assert_close(p.grad, q.grad, rtol)


GRADS = [[[3.0, -4.0], None, [[0.5, 1.5, -2.0]]], [[1e-3, 2e-3]], [[7.0], [-7.0, 0.0, 1.0]]]


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
@pytest.mark.parametrize("grads", GRADS)
def test_clip_grad_norm_matches_pytorch(grads, max_norm, norm_type):
    ours, theirs = _pair(grads)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, tn.Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-14)
    _assert_same_grads(ours, theirs, rtol=1e-14)


@settings(max_examples=40, deadline=None)
@given(
    arrays=st.lists(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                               elements=st.floats(-1e3, 1e3)), min_size=1, max_size=4),
    max_norm=st.floats(1e-3, 1e3),
    norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]),
)
def test_clip_grad_norm_matches_pytorch_for_drawn_gradients(arrays, max_norm, norm_type):
    if norm_type == math.inf and any(a.size == 0 for a in arrays):
        return  # no identity for max over nothing: tested separately
    ours, theirs = _pair(arrays)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    _assert_same_grads(ours, theirs, rtol=1e-12)


def test_float32_gradients_stay_float32_and_the_norm_is_float32():
    grads = [np.array([3.0, 4.0]), np.array([[1.0, -2.0]])]
    ours, theirs = _pair(grads, dtype=np.float32)
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.dtype == np.float32 and expected.dtype == torch.float32
    assert total.item() == expected.item()
    _assert_same_grads(ours, theirs, rtol=0)


def test_an_infinite_norm_zeroes_finite_gradients_and_nans_infinite_ones_as_pytorch():
    ours, theirs = _pair([[1.0, math.inf, 2.0], [5.0]])
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.item() == expected.item() == math.inf
    np.testing.assert_array_equal(ours[0].grad.data, [0.0, np.nan, 0.0])
    np.testing.assert_array_equal(ours[1].grad.data, [0.0])
    _assert_same_grads(ours, theirs, rtol=0)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_a_nan_norm_makes_every_gradient_nan_as_pytorch(norm_type):
    ours, theirs = _pair([[1.0, math.nan], [5.0, 6.0]])
    total = clip_grad_norm_(ours, 1.0, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type)
    assert math.isnan(total.item()) and math.isnan(expected.item())
    assert np.isnan(ours[1].grad.data).all()
    _assert_same_grads(ours, theirs, rtol=0)


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_error_if_nonfinite_raises_a_runtime_error_and_changes_nothing(bad):
    ours, theirs = _pair([[1.0, bad], [5.0, 6.0]])
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    with pytest.raises(NonFiniteNormError, match="non-finite") as info:
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, tn.TinynetError)
    assert "error_if_nonfinite=False" in str(info.value)
    np.testing.assert_array_equal(ours[1].grad.data, [5.0, 6.0])


def test_no_gradients_give_a_zero_norm_of_the_default_dtype():
    ours, theirs = _pair([None, None])
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.item() == expected.item() == 0.0
    assert total.dtype == np.float32 and expected.dtype == torch.float32


def test_a_single_tensor_and_a_generator_are_accepted():
    (p,), _ = _pair([[3.0, 4.0]])
    assert clip_grad_norm_(p, 10.0).item() == 5.0
    model = nn.Linear(2, 1)
    (model(tn.ones(1, 2)) * 100).sum().backward()
    total = clip_grad_norm_(model.parameters(), 1.0)
    assert total.item() > 1.0
    assert get_total_norm([q.grad for q in model.parameters()]).item() == pytest.approx(
        1.0, rel=1e-5)


def test_an_empty_generator_warns_as_pytorch():
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((p for p in []), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clip_grad_norm_([], 1.0)  # an empty list is not suspicious


def test_get_total_norm_and_clip_grads_with_norm_match_pytorch():
    ours, theirs = _pair([[3.0, -4.0], [[1.0, 2.0]]])
    total = get_total_norm([p.grad for p in ours], norm_type=3.0)
    expected = torch.nn.utils.get_total_norm([q.grad for q in theirs], norm_type=3.0)
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-14)
    clip_grads_with_norm_(ours, 2.0, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 2.0, expected)
    _assert_same_grads(ours, theirs, rtol=1e-14)


def test_the_infinity_norm_of_an_empty_gradient_is_refused():
    ours, theirs = _pair([np.zeros(0)])
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=math.inf)
    with pytest.raises(tn.ShapeError, match="inf norm of an empty gradient"):
        clip_grad_norm_(ours, 1.0, norm_type=math.inf)


@pytest.mark.parametrize("clip_value", [0.5, 2.0, 0.0, -1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_value_matches_pytorch(clip_value, dtype):
    grads = [[3.0, -0.25, math.nan, -4.0], None, [[1.0, -2.0, 0.75]]]
    ours, theirs = _pair(grads, dtype=dtype)
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_same_grads(ours, theirs, rtol=0)


def test_clipping_bumps_the_gradients_version_counter():
    (p,), _ = _pair([[3.0, 4.0]])
    before = p.grad._version.value
    clip_grad_norm_([p], 1.0)
    clip_grad_value_([p], 0.1)
    assert p.grad._version.value == before + 2


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: clip_grad_norm_(3.0, 1.0), tn.DTypeError, "iterable of Tensors"),
        (lambda p: clip_grad_norm_([p, "w"], 1.0), tn.DTypeError, "str"),
        (lambda p: clip_grad_norm_([p], "1.0"), tn.DTypeError, "max_norm must be a number"),
        (lambda p: clip_grad_norm_([p], 1.0, norm_type=None), tn.DTypeError, "norm_type"),
        (lambda p: clip_grad_value_([p], None), tn.DTypeError, "clip_value must be a number"),
    ],
)
def test_bad_arguments_raise_tinynet_errors(call, error, match):
    (p,), _ = _pair([[3.0, 4.0]])
    with pytest.raises(error, match=match):
        call(p)
    np.testing.assert_array_equal(p.grad.data, [3.0, 4.0])


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_mixed_float32_and_float64_gradients_match_pytorch(norm_type):
    p32, q32 = _pair([[3.0, 4.0, 0.1]], dtype=np.float32)
    p64, q64 = _pair([[1.0, -2.0]], dtype=np.float64)
    total = clip_grad_norm_(p32 + p64, 0.5, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(q32 + q64, 0.5, norm_type)
    assert total.dtype == np.float64 and expected.dtype == torch.float64
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-14)
    assert p32[0].grad.dtype == np.float32
    _assert_same_grads(p32 + p64, q32 + q64, rtol=0)
