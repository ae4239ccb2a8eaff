"""Losses: values against their formulas, gradients against finite differences (float64),
second derivatives, every target check, and dtype preservation."""

import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from tinynet import nn

F = nn.functional
REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture
def rng(request):
    """Each test's own generator, seeded from its name: the same draws in any order."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def _reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


def _t(array, requires_grad=True):
    return tn.tensor(np.array(array, dtype=np.float64), requires_grad=requires_grad)


def _probs(rng, *shape):
    return rng.uniform(0.05, 0.95, shape)


# ---- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_value(reduction, rng):
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    out = F.mse_loss(_t(x), t, reduction=reduction)
    np.testing.assert_allclose(out.data, _reduce((x - t) ** 2, reduction), rtol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_value(reduction, rng):
    x, t = _probs(rng, 5, 2), rng.uniform(0, 1, (5, 2))
    w = rng.uniform(0.5, 2, (2,))
    expected = -(t * np.log(x) + (1 - t) * np.log(1 - x)) * w
    out = F.binary_cross_entropy(_t(x), t, weight=w, reduction=reduction)
    np.testing.assert_allclose(out.data, _reduce(expected, reduction), rtol=1e-13)


def test_binary_cross_entropy_clamps_each_log_at_minus_100():
    out = F.binary_cross_entropy(_t([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]),
                                 reduction="none")
    np.testing.assert_array_equal(out.data, [100.0, 100.0, 0.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits_value(reduction, rng):
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    pw, w = rng.uniform(0.5, 3, (3,)), rng.uniform(0.5, 2, (4, 3))
    s = 1 / (1 + np.exp(-x))
    expected = -w * (pw * t * np.log(s) + (1 - t) * np.log(1 - s))
    out = F.binary_cross_entropy_with_logits(_t(x), t, weight=w, pos_weight=pw,
                                             reduction=reduction)
    np.testing.assert_allclose(out.data, _reduce(expected, reduction), rtol=1e-12)


def test_binary_cross_entropy_with_logits_is_stable_for_huge_logits():
    out = F.binary_cross_entropy_with_logits(_t([1000.0, -1000.0, 1000.0]),
                                             np.array([1.0, 0.0, 0.0]), reduction="none")
    np.testing.assert_allclose(out.data, [0.0, 0.0, 1000.0])
    x = _t([800.0, -800.0])
    F.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0]), reduction="sum").backward()
    np.testing.assert_allclose(x.grad.data, [1.0, -1.0])


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_value(reduction, rng):
    x, t = rng.standard_normal((6, 4)) * 5, rng.integers(0, 4, 6)
    expected = -_log_softmax(x, 1)[np.arange(6), t]
    out = F.cross_entropy(_t(x), t, reduction=reduction)
    np.testing.assert_allclose(out.data, _reduce(expected, reduction), rtol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_weight_and_ignore_index(reduction, rng):
    x = rng.standard_normal((6, 4))
    t = np.array([0, 3, -100, 2, 3, 1])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    logp = _log_softmax(x, 1)
    keep = t != -100
    safe = np.where(keep, t, 0)
    per = -logp[np.arange(6), safe] * w[safe] * keep
    expected = {"none": per, "sum": per.sum(), "mean": per.sum() / (w[safe] * keep).sum()}
    out = F.cross_entropy(_t(x), t, weight=w, reduction=reduction)
    np.testing.assert_allclose(out.data, expected[reduction], rtol=1e-13)


def test_cross_entropy_ignore_index_may_be_a_valid_class(rng):
    x, t = rng.standard_normal((4, 3)), np.array([0, 1, 2, 1])
    out = F.cross_entropy(_t(x), t, ignore_index=1)
    per = -_log_softmax(x, 1)[np.arange(4), t]
    np.testing.assert_allclose(out.data, per[[0, 2]].mean(), rtol=1e-13)


def test_cross_entropy_all_targets_ignored_gives_nan_like_pytorch(rng):
    out = F.cross_entropy(_t(rng.standard_normal((2, 3))), np.array([-100, -100]))
    assert np.isnan(out.data)


def test_cross_entropy_spatial_and_unbatched_inputs(rng):
    x, t = rng.standard_normal((2, 3, 4, 5)), rng.integers(0, 3, (2, 4, 5))
    expected = -np.take_along_axis(_log_softmax(x, 1), t[:, None], axis=1)[:, 0]
    out = F.cross_entropy(_t(x), t, reduction="none")
    assert out.shape == (2, 4, 5)
    np.testing.assert_allclose(out.data, expected, rtol=1e-13)
    np.testing.assert_allclose(F.cross_entropy(_t(x), t).data, expected.mean(), rtol=1e-13)
    single = rng.standard_normal(5)
    out = F.cross_entropy(_t(single), np.array(3), reduction="none")
    assert out.shape == ()
    np.testing.assert_allclose(out.data, -_log_softmax(single, 0)[3], rtol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_of_log_softmax_equals_cross_entropy(reduction, rng):
    x, t = _t(rng.standard_normal((5, 4))), rng.integers(0, 4, 5)
    a = F.nll_loss(F.log_softmax(x, dim=1), t, reduction=reduction)
    b = F.cross_entropy(x, t, reduction=reduction)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-14)


def test_targets_may_be_tensors_arrays_or_lists(rng):
    x = _t([[0.2, 0.7], [0.4, 0.9]])
    values = [F.mse_loss(x, target).item() for target in
              ([[0.0, 1.0], [1.0, 0.0]], np.array([[0.0, 1.0], [1.0, 0.0]]),
               tn.tensor([[0.0, 1.0], [1.0, 0.0]]))]
    assert values[0] == values[1] == pytest.approx(values[2])
    logits = _t(rng.standard_normal((2, 3)))
    assert F.cross_entropy(logits, [0, 2]).item() == F.cross_entropy(logits, tn.tensor([0, 2])
                                                                     ).item()


def test_loss_modules_match_the_functions(rng):
    x, p = _t(rng.standard_normal((4, 3))), _t(_probs(rng, 4, 3))
    t, c = rng.uniform(0, 1, (4, 3)), rng.integers(0, 3, 4)
    w = np.array([1.0, 2.0, 3.0])
    pairs = [
        (nn.MSELoss(reduction="sum")(x, t), F.mse_loss(x, t, reduction="sum")),
        (nn.BCELoss(weight=w)(p, t), F.binary_cross_entropy(p, t, w)),
        (nn.BCEWithLogitsLoss(pos_weight=w)(x, t),
         F.binary_cross_entropy_with_logits(x, t, pos_weight=w)),
        (nn.CrossEntropyLoss(weight=w, reduction="none")(x, c),
         F.cross_entropy(x, c, w, reduction="none")),
        (nn.NLLLoss(ignore_index=0)(x.log_softmax(1), c),
         F.nll_loss(x.log_softmax(1), c, ignore_index=0)),
    ]
    for module_out, function_out in pairs:
        np.testing.assert_array_equal(module_out.data, function_out.data)


def test_loss_weight_is_a_buffer_in_the_state_dict_like_pytorch():
    loss = nn.CrossEntropyLoss(weight=tn.tensor([1.0, 2.0]))
    assert list(loss.state_dict()) == ["weight"]
    assert repr(loss) == "CrossEntropyLoss()"
    assert list(nn.CrossEntropyLoss().state_dict()) == []


# ---- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_gradients_in_input_and_target(reduction, rng):
    x, t = _t(rng.standard_normal((3, 2))), _t(rng.standard_normal((3, 2)))
    assert tn.gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [x, t],
                        atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_gradients_in_input_and_target(reduction, rng):
    x, t = _t(_probs(rng, 3, 2)), _t(rng.uniform(0, 1, (3, 2)))
    w = rng.uniform(0.5, 2, (3, 2))
    assert tn.gradcheck(
        lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction), [x, t],
        atol=1e-8, rtol=1e-6,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, np.array([0.5, 2.0])])
def test_binary_cross_entropy_with_logits_gradients(reduction, pos_weight, rng):
    x, t = _t(rng.standard_normal((3, 2)) * 2), _t(rng.uniform(0, 1, (3, 2)))
    w = rng.uniform(0.5, 2, (3, 2))
    assert tn.gradcheck(
        lambda a, b: F.binary_cross_entropy_with_logits(
            a, b, weight=w, reduction=reduction, pos_weight=pos_weight), [x, t],
        atol=1e-8, rtol=1e-6,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_gradients(reduction, weighted, rng):
    x = _t(rng.standard_normal((4, 3)) * 2)
    t = np.array([0, 2, -100, 1]) if weighted else np.array([0, 2, 2, 1])
    w = np.array([0.5, 1.0, 2.0]) if weighted else None
    assert tn.gradcheck(lambda a: F.cross_entropy(a, t, weight=w, reduction=reduction), [x],
                        atol=1e-8, rtol=1e-6)


def test_cross_entropy_spatial_gradients(rng):
    x, t = _t(rng.standard_normal((2, 3, 2))), rng.integers(0, 3, (2, 2))
    assert tn.gradcheck(lambda a: F.cross_entropy(a, t), [x], atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_gradients(reduction, rng):
    x, t = _t(rng.standard_normal((4, 3))), np.array([2, 0, 1, 1])
    assert tn.gradcheck(lambda a: F.nll_loss(a, t, reduction=reduction), [x],
                        atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, b: F.mse_loss(a, b),
        lambda a, b: F.binary_cross_entropy(a.sigmoid(), b.sigmoid(), reduction="sum"),
        lambda a, b: F.binary_cross_entropy_with_logits(a, b.sigmoid()),
        lambda a, b: F.binary_cross_entropy_with_logits(a, b.sigmoid(),
                                                        pos_weight=np.array([2.0, 0.5])),
    ],
    ids=["mse", "bce", "bce_logits", "bce_logits_pos_weight"],
)
def test_elementwise_losses_have_second_derivatives(loss, rng):
    x, t = _t(rng.standard_normal((2, 2))), _t(rng.standard_normal((2, 2)))
    assert tn.gradgradcheck(loss, [x, t], atol=1e-7, rtol=1e-5)


# ---- float32 -------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_every_loss_keeps_float32(reduction, rng):
    x = tn.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    p = tn.tensor(_probs(rng, 4, 3).astype(np.float32), requires_grad=True)
    t64, c = rng.uniform(0, 1, (4, 3)), rng.integers(0, 3, 4)
    w64 = np.array([1.0, 2.0, 3.0])
    outs = [
        (x, F.mse_loss(x, t64, reduction=reduction)),
        (p, F.binary_cross_entropy(p, t64, weight=w64, reduction=reduction)),
        (x, F.binary_cross_entropy_with_logits(x, t64, w64, reduction, w64)),
        (x, F.cross_entropy(x, c, reduction=reduction)),
        (x, F.cross_entropy(x, c, weight=w64, reduction=reduction)),
        (x, F.nll_loss(x, c, reduction=reduction)),
    ]
    for leaf, out in outs:
        assert out.dtype == np.float32
        leaf.grad = None
        out.sum().backward()
        assert leaf.grad.dtype == np.float32


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.mse_loss(_t(np.zeros((4, 1))), np.zeros(4)),
        lambda: F.binary_cross_entropy(_t(np.full((2, 3), 0.5)), np.zeros((3, 2))),
        lambda: F.binary_cross_entropy_with_logits(_t(np.zeros(3)), np.zeros(4)),
        lambda: F.cross_entropy(_t(np.zeros((4, 3))), np.zeros(3, np.int64)),
        lambda: F.cross_entropy(_t(np.zeros((4, 3))), np.zeros((4, 1), np.int64)),
        lambda: F.nll_loss(_t(np.zeros((4, 3))), np.zeros((4, 3), np.int64)),
    ],
    ids=["mse", "bce", "bce_logits", "ce_length", "ce_column", "nll"],
)
def test_wrong_target_shape_raises(call):
    with pytest.raises(tn.ShapeError, match="target"):
        call()


def test_wrong_shape_message_suggests_the_reshape():
    with pytest.raises(tn.ShapeError, match=r"reshape\(4, 1\)"):
        F.mse_loss(_t(np.zeros((4, 1))), np.zeros(4))


@pytest.mark.parametrize("bad", [3, -1, 7])
def test_class_index_out_of_range_raises(bad):
    with pytest.raises(nn.ClassIndexError, match=f"target {bad} is out of bounds") as info:
        F.cross_entropy(_t(np.zeros((2, 3))), np.array([0, bad]))
    assert isinstance(info.value, IndexError)
    with pytest.raises(IndexError):
        F.nll_loss(_t(np.zeros((2, 3))), np.array([bad, 0]))


def test_float_targets_for_cross_entropy_raise():
    with pytest.raises(tn.DTypeError, match="integer class indices"):
        F.cross_entropy(_t(np.zeros((2, 3))), np.array([0.0, 1.0]))
    with pytest.raises(tn.DTypeError, match="integer class indices"):
        nn.NLLLoss()(_t(np.zeros((2, 3))), tn.tensor([[0.2, 0.3, 0.5]] * 2))
    # a float target of the input's shape holds class probabilities, as in PyTorch
    probs = nn.CrossEntropyLoss()(_t(np.zeros((2, 3))), tn.tensor([[0.2, 0.3, 0.5]] * 2))
    assert np.isclose(probs.item(), np.log(3))


@pytest.mark.parametrize(
    ("x", "t", "what"),
    [([0.5, 1.5], [0.0, 1.0], "input"), ([-0.1, 0.5], [0.0, 1.0], "input"),
     ([0.5, 0.5], [0.0, 2.0], "target"), ([0.5, np.nan], [0.0, 1.0], "input")],
)
def test_probabilities_outside_zero_one_raise(x, t, what):
    with pytest.raises(nn.ValueRangeError, match=f"elements of {what} should be between 0 and 1"):
        F.binary_cross_entropy(_t(x), np.array(t))


def test_invalid_reduction_and_unsupported_options_raise():
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(_t([1.0]), [1.0], reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(_t(np.zeros((2, 3))), [0, 1], label_smoothing=1.5)
    with pytest.raises(tn.ShapeError, match="one entry per class"):
        F.cross_entropy(_t(np.zeros((2, 3))), [0, 1], weight=np.ones(2))
    with pytest.raises(tn.ShapeError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(_t(np.zeros((2, 3))), np.zeros((2, 3)),
                                           pos_weight=np.ones(2))


def test_integer_model_output_raises():
    with pytest.raises(tn.DTypeError, match="floating"):
        F.mse_loss(tn.tensor([1, 2]), [1, 2])


# ---- properties over random shapes ---------------------------------------------------------


@given(n=st.integers(1, 6), c=st.integers(1, 5), scale=st.floats(0.1, 50), seed=st.integers(0, 99))
def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(n, c, scale, seed):
    r = np.random.default_rng(seed)
    x = _t(r.standard_normal((n, c)) * scale)
    t = r.integers(0, c, n)
    loss = F.cross_entropy(x, t)
    loss.backward()
    logp = _log_softmax(x.data, 1)
    np.testing.assert_allclose(loss.item(), -logp[np.arange(n), t].mean(), rtol=1e-12,
                               atol=1e-12)
    expected = np.exp(logp)
    expected[np.arange(n), t] -= 1
    np.testing.assert_allclose(x.grad.data, expected / n, rtol=1e-10, atol=1e-14)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 99))
def test_bce_with_logits_equals_bce_of_sigmoid_away_from_saturation(shape, seed):
    r = np.random.default_rng(seed)
    x = _t(r.uniform(-8, 8, shape))
    t = r.uniform(0, 1, shape)
    a = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    b = F.binary_cross_entropy(x.sigmoid(), t, reduction="none")
    np.testing.assert_allclose(a.data, b.data, rtol=1e-9, atol=1e-12)
