"""Convolution, pooling and normalization without PyTorch: the composite ops' gradients and
second derivatives against finite differences, the numba kernels against their numpy twins,
PyTorch's tie rule for max pooling written out by hand, dtypes, modules and error messages.

(The registered ops Im2Col, Col2Im, Convolution and MaxPool are also in strategies.CASES,
checked by test_gradients.py and test_double_backward.py; parity with PyTorch is in
test_conv_parity.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import values

import tinynet as tn
import tinynet.kernels as K
import tinynet.nn.functional as F
from tinynet.kernels import conv as KC

# ---- composite ops: first and second derivatives ------------------------------------------


def _leaves(*arrays: np.ndarray) -> list[tn.Tensor]:
    return [tn.tensor(a, dtype=tn.float64, requires_grad=True) for a in arrays]


@st.composite
def images(draw, max_side: int = 4, min_batch: int = 1):  # noqa: ANN001, ANN201
    n = draw(st.integers(min_batch, 2))
    c = draw(st.integers(1, 2))
    h, w = draw(st.integers(1, max_side + 1)), draw(st.integers(1, max_side + 1))
    return draw(values((n, c, h, w)))


@given(x=images(), data=st.data())
def test_avg_pool2d_gradients_and_second_derivatives(x: np.ndarray, data: st.DataObject) -> None:
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    stride = data.draw(st.sampled_from([None, 1, 2]))
    padding = (data.draw(st.integers(0, kernel[0] // 2)),
               data.draw(st.integers(0, kernel[1] // 2)))
    ceil_mode, include = data.draw(st.booleans()), data.draw(st.booleans())
    assume(x.shape[2] + 2 * padding[0] >= kernel[0] and x.shape[3] + 2 * padding[1] >= kernel[1])

    def fn(t: tn.Tensor) -> tn.Tensor:
        return F.avg_pool2d(t, kernel, stride, padding, ceil_mode, include)

    assert tn.gradcheck(fn, _leaves(x), atol=1e-7, rtol=1e-6)
    assert tn.gradgradcheck(fn, _leaves(x), atol=1e-7, rtol=1e-6)


@given(x=images(), out=st.sampled_from([1, (1, 1), 2, (2, 3), (3, 1), (None, 2)]))
def test_adaptive_avg_pool2d_gradients_and_second_derivatives(x: np.ndarray, out) -> None:  # noqa: ANN001
    def fn(t: tn.Tensor) -> tn.Tensor:
        return F.adaptive_avg_pool2d(t, out)

    assert tn.gradcheck(fn, _leaves(x), atol=1e-7, rtol=1e-6)
    assert tn.gradgradcheck(fn, _leaves(x), atol=1e-7, rtol=1e-6)


@settings(max_examples=15)
@given(data=st.data(), training=st.booleans(), affine=st.booleans(),
       ndim=st.sampled_from([2, 3, 4]))
def test_batch_norm_gradients_and_second_derivatives(data: st.DataObject, training: bool,
                                                     affine: bool, ndim: int) -> None:
    shape = (data.draw(st.integers(2, 3)), data.draw(st.integers(1, 3))) + tuple(
        data.draw(st.integers(1, 3)) for _ in range(ndim - 2))
    x = data.draw(values(shape))
    c = shape[1]
    mean, var = data.draw(values((c,))), data.draw(values((c,), 0.5, 2.0))
    w, b = data.draw(values((c,))), data.draw(values((c,)))

    def fn(t: tn.Tensor, *params: tn.Tensor) -> tn.Tensor:
        # fresh running statistics each call: finite differences must not see them drift
        return F.batch_norm(t, tn.tensor(mean), tn.tensor(var), *params, training=training)

    inputs = _leaves(x, w, b) if affine else _leaves(x)
    assert tn.gradcheck(fn, inputs, atol=1e-6, rtol=1e-5)
    assert tn.gradgradcheck(fn, inputs, atol=1e-6, rtol=1e-5)


@settings(max_examples=15)
@given(data=st.data())
def test_layer_norm_gradients_and_second_derivatives(data: st.DataObject) -> None:
    shape = tuple(data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(1, 3))))
    k = data.draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k:]
    assume(int(np.prod(normalized)) > 1)  # one element normalises to 0: no gradient to check
    x, w, b = (data.draw(values(shape)), data.draw(values(normalized)),
               data.draw(values(normalized)))

    def fn(t: tn.Tensor, u: tn.Tensor, v: tn.Tensor) -> tn.Tensor:
        return F.layer_norm(t, normalized, u, v)

    assert tn.gradcheck(fn, _leaves(x, w, b), atol=1e-6, rtol=1e-5)
    assert tn.gradgradcheck(fn, _leaves(x, w, b), atol=1e-6, rtol=1e-5)


def test_conv2d_second_derivative_of_a_cnn_loss_matches_finite_differences() -> None:
    """conv -> relu -> max pool -> linear -> softmax cross-entropy, differentiated twice."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 5, 5))
    w = rng.standard_normal((2, 1, 3, 3))
    head = tn.tensor(rng.standard_normal((3, 2)))

    def loss(weight: tn.Tensor) -> tn.Tensor:
        h = F.max_pool2d(F.conv2d(tn.tensor(x), weight, padding=1).tanh(), 2)
        logits = h.mean((2, 3)) @ head.T
        return F.cross_entropy(logits, np.array([0, 2]))

    assert tn.gradgradcheck(loss, _leaves(w), atol=1e-7, rtol=1e-6)


def test_fast_backward_equals_the_tensor_backward() -> None:
    """The plain backward (arrays, saved columns, col2im kernel) and the create_graph backward
    (Tensor ops, columns recomputed) are the same derivative."""
    rng = np.random.default_rng(1)
    x, w, b = _leaves(rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2)),
                      rng.standard_normal(6))
    out = F.max_pool2d(F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
                       2, ceil_mode=True)
    seed = tn.tensor(rng.standard_normal(out.shape))
    fast = tn.autograd.grad(out, [x, w, b], seed, retain_graph=True)
    slow = tn.autograd.grad(out, [x, w, b], seed, create_graph=True)
    for a, s in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a.data, s.data, rtol=1e-13, atol=1e-13)


# ---- kernels against their numpy twins ----------------------------------------------------


MODES = ["twin", "compiled"] if K.numba_enabled() else ["twin"]


@st.composite
def geometry(draw):  # noqa: ANN001, ANN201
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[0] // 2)),
            draw(st.integers(0, kernel[1] // 2)), draw(st.integers(0, kernel[1] // 2)))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(h + pads[0] + pads[1] >= dilation[0] * (kernel[0] - 1) + 1)
    assume(w + pads[2] + pads[3] >= dilation[1] * (kernel[1] - 1) + 1)
    return (n, c, h, w), kernel, stride, pads, dilation


@pytest.mark.skipif(not K.numba_enabled(), reason="numba unavailable or TINYNET_NUMBA=0")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(g=geometry(), seed=st.integers(0, 2**16))
def test_conv_kernels_match_their_numpy_twins(dtype, g, seed: int) -> None:  # noqa: ANN001
    shape, kernel, stride, pads, dilation = g
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype) / 2  # ties for max pooling
    x.reshape(-1)[rng.integers(0, x.size)] = np.nan if rng.random() < 0.2 else 0
    results = {}
    for mode in ("twin", "compiled"):
        with K.dispatch_mode(mode):
            cols = K.im2col(x, kernel, stride, pads, dilation)
            back = K.col2im(cols, shape[2:], kernel, stride, pads, dilation)
            out, argmax = K.max_pool2d_forward(x, kernel, stride, pads, dilation)
            grad_in = K.max_pool2d_backward(np.ones_like(out), argmax, shape[2:])
            results[mode] = (cols, back, out, argmax, grad_in)
    for twin, compiled in zip(results["twin"], results["compiled"], strict=True):
        assert twin.dtype == compiled.dtype == (np.int64 if twin.dtype.kind == "i" else dtype)
        # the same additions in the same order: identical, NaN where NaN
        np.testing.assert_array_equal(twin, compiled)


def test_col2im_is_the_adjoint_of_im2col() -> None:
    """<im2col(x), y> = <x, col2im(y)> for every x, y: the transpose, exactly what backward
    needs."""
    rng = np.random.default_rng(2)
    for mode in MODES:
        with K.dispatch_mode(mode):
            x = rng.standard_normal((2, 3, 7, 6))
            geometry_args = ((3, 2), (2, 1), (1, 0, 1, 1), (1, 2))
            cols = K.im2col(x, *geometry_args)
            y = rng.standard_normal(cols.shape)
            back = K.col2im(y, (7, 6), *geometry_args)
            assert np.isclose(np.sum(cols * y), np.sum(x * back), rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(mode: str) -> None:
    """PyTorch's CPU rule: the first maximum in row-major window order wins; overlapping
    windows that share it add their gradients there."""
    x = tn.tensor([[[[1.0, 3.0, 3.0],
                     [3.0, 0.0, 3.0],
                     [2.0, 3.0, 1.0]]]], requires_grad=True)
    with K.dispatch_mode(mode):
        out, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
        out.sum().backward()
    np.testing.assert_array_equal(out.data[0, 0], [[3.0, 3.0], [3.0, 3.0]])
    np.testing.assert_array_equal(indices.data[0, 0], [[1, 1], [3, 5]])
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0, 2, 0], [1, 0, 1], [0, 0, 0]])


def test_max_pool_padding_never_wins_even_against_minus_infinity() -> None:
    x = tn.tensor(np.full((1, 1, 2, 2), -np.inf))
    for mode in MODES:
        with K.dispatch_mode(mode):
            out, indices = F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
        assert np.all(out.data == -np.inf)
        np.testing.assert_array_equal(indices.data[0, 0], [[0, 0], [0, 0]])


# ---- dtypes, shapes, modules ---------------------------------------------------------------


def test_float32_stays_float32_through_a_cnn_forward_and_backward() -> None:
    tn.manual_seed(0)
    model = tn.nn.Sequential(
        tn.nn.Conv2d(1, 4, 3, padding="same"), tn.nn.BatchNorm2d(4), tn.nn.ReLU(),
        tn.nn.MaxPool2d(2), tn.nn.Conv2d(4, 4, 3), tn.nn.AvgPool2d(2, ceil_mode=True),
        tn.nn.AdaptiveAvgPool2d((1, 1)), tn.nn.Flatten(), tn.nn.LayerNorm(4),
    )
    x = tn.randn(3, 1, 9, 9)
    out = model(x)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad.dtype == np.float32, name
    for name, buffer in model.named_buffers():
        assert buffer.dtype == (np.int64 if name.endswith("num_batches_tracked") else
                                np.float32), name


def test_unbatched_input_gives_unbatched_output() -> None:
    conv = tn.nn.Conv2d(2, 3, 3, padding=1)
    x = tn.randn(2, 5, 5)
    np.testing.assert_allclose(conv(x).data, conv(x.unsqueeze(0)).data[0], rtol=1e-6)
    assert F.max_pool2d(x, 2).shape == (2, 2, 2)
    assert F.avg_pool2d(x, 2).shape == (2, 2, 2)
    assert F.adaptive_avg_pool2d(x, 1).shape == (2, 1, 1)


def test_conv2d_same_padding_keeps_the_size_for_even_kernels_and_dilation() -> None:
    for kernel, dilation in [(2, 1), (4, 1), (3, 2), ((2, 3), (2, 1))]:
        conv = tn.nn.Conv2d(1, 2, kernel, padding="same", dilation=dilation)
        assert conv(tn.randn(1, 1, 7, 6)).shape == (1, 2, 7, 6)


def test_conv2d_init_is_uniform_within_one_over_sqrt_fan_in() -> None:
    tn.manual_seed(3)
    conv = tn.nn.Conv2d(4, 64, (3, 5), groups=2)
    bound = 1 / np.sqrt(2 * 3 * 5)  # fan_in = in/groups * kh * kw
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.95 * bound  # spread over the range, not tiny
    assert np.abs(conv.bias.data).max() <= bound
    tn.manual_seed(3)
    again = tn.nn.Conv2d(4, 64, (3, 5), groups=2)
    np.testing.assert_array_equal(conv.weight.data, again.weight.data)


def test_batch_norm_train_updates_running_stats_and_eval_uses_them() -> None:
    bn = tn.nn.BatchNorm1d(3, momentum=None)  # cumulative average of the batch statistics
    batches = [np.random.default_rng(i).standard_normal((5, 3)) for i in range(3)]
    for b in batches:
        bn(tn.tensor(b, dtype=tn.float32))
    assert bn.num_batches_tracked.item() == 3
    np.testing.assert_allclose(bn.running_mean.data, np.mean([b.mean(0) for b in batches], 0),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data,
                               np.mean([b.var(0, ddof=1) for b in batches], 0), rtol=1e-5)
    bn.eval()
    x = tn.tensor(batches[0], dtype=tn.float32)
    before = bn.running_mean.data.copy()
    expected = (batches[0] - bn.running_mean.data) / np.sqrt(bn.running_var.data + 1e-5)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.running_mean.data, before)  # eval leaves them alone
    assert bn.num_batches_tracked.item() == 3


def test_batch_norm_without_running_stats_uses_the_batch_in_eval() -> None:
    bn = tn.nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    x = tn.randn(4, 2, 3, 3)
    out = bn(x).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert list(bn.state_dict()) == []


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: F.conv2d(tn.randn(1, 3, 5, 5), tn.randn(2, 2, 3, 3)), tn.ShapeError,
         "3 channels"),
        (lambda: F.conv2d(tn.randn(1, 1, 2, 2), tn.randn(1, 1, 3, 3)), tn.ShapeError,
         "larger than the padded input"),
        (lambda: F.conv2d(tn.randn(1, 1, 5, 5), tn.randn(1, 1, 3, 3).double()), tn.DTypeError,
         "share one dtype"),
        (lambda: F.conv2d(tn.randn(5, 5), tn.randn(1, 1, 3, 3)), tn.ShapeError, "4-D"),
        (lambda: F.conv2d(tn.randn(1, 1, 5, 5), tn.randn(1, 1, 3, 3), stride=2, padding="same"),
         tn.ValueRangeError, "strided"),
        (lambda: F.conv2d(tn.randn(1, 1, 5, 5), tn.randn(1, 1, 3, 3), padding="full"),
         tn.ValueRangeError, "'same' or 'valid'"),
        (lambda: F.conv2d(tn.randn(1, 1, 5, 5), tn.randn(1, 1, 3, 3), stride=0),
         tn.ValueRangeError, "stride must be >= 1"),
        (lambda: F.max_pool2d(tn.randn(1, 1, 5, 5), 2, padding=2), tn.ValueRangeError,
         "at most half"),
        (lambda: F.batch_norm(tn.randn(1, 3), tn.zeros(3), tn.ones(3), training=True),
         tn.ValueRangeError, "more than 1 value per channel"),
        (lambda: F.batch_norm(tn.randn(4, 3), tn.zeros(2), tn.ones(2)), tn.ShapeError,
         "running_mean must have shape (3,)"),
        (lambda: tn.nn.BatchNorm2d(3)(tn.randn(4, 3)), tn.ShapeError, "expected 4D input"),
        (lambda: F.layer_norm(tn.randn(2, 3), (4,)), tn.ShapeError, "normalized_shape"),
        (lambda: tn.nn.Conv2d(3, 4, 3, groups=2), tn.ValueRangeError, "divisible by groups"),
    ],
)
def test_bad_arguments_raise_errors_that_name_the_op_and_the_fix(call, error, words) -> None:  # noqa: ANN001
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)


def test_ops_are_under_their_pytorch_names() -> None:
    for name in ("conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
                 "layer_norm", "unfold", "fold"):
        assert callable(getattr(F, name))
    for name in ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
                 "BatchNorm2d", "LayerNorm"):
        assert issubclass(getattr(tn.nn, name), tn.nn.Module)
    x = tn.randn(1, 1, 4, 4, requires_grad=True)
    assert F.conv2d(x, tn.randn(1, 1, 2, 2)).grad_fn.name == "ConvolutionBackward"
    assert KC.output_size(28, 5, 1, 0, 0, 1) == 24


# ---- Dropout2d ------------------------------------------------------------------------------


def test_dropout2d_zeroes_whole_channels_with_probability_p_and_rescales_the_rest() -> None:
    tn.manual_seed(0)
    x = tn.ones(400, 50, 3, 2, requires_grad=True)
    y = F.dropout2d(x, 0.3)
    maps = y.data.reshape(400, 50, -1)
    assert np.all(maps.min(axis=2) == maps.max(axis=2))  # a channel is dropped whole or kept
    dropped = (maps[:, :, 0] == 0).mean()
    assert abs(dropped - 0.3) < 0.015  # 20,000 channels: 4.5 standard deviations
    np.testing.assert_allclose(np.unique(y.data), [0, 1 / 0.7], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # d/dx = the same mask


def test_dropout2d_is_reproducible_with_manual_seed_and_the_identity_in_eval() -> None:
    x = tn.randn(4, 6, 5, 5)
    tn.manual_seed(7)
    a = F.dropout2d(x)
    tn.manual_seed(7)
    b = tn.nn.Dropout2d()(x)
    np.testing.assert_array_equal(a.data, b.data)
    layer = tn.nn.Dropout2d(0.9).eval()
    assert layer(x) is x
    assert F.dropout2d(x, 0.5, training=False) is x
    assert np.all(F.dropout2d(x, 1.0).data == 0)
    assert F.dropout2d(x, 0.5).dtype == np.float32
    with pytest.raises(tn.ValueRangeError, match="between 0 and 1"):
        tn.nn.Dropout2d(1.5)


def test_dropout2d_inplace_and_3d_input_read_as_n_c_l_with_pytorchs_warning() -> None:
    tn.manual_seed(1)
    x = tn.ones(8, 4, 5, 5)
    y = F.dropout2d(x, 0.5, inplace=True)
    assert y is x
    assert set(np.unique(x.data)) <= {0.0, 2.0}
    with pytest.warns(UserWarning, match=r"interpreted as shape \(N, C, L\)"):
        z = F.dropout2d(tn.ones(6, 40, 5), 0.5)
    rows = z.data  # each (n, c) row of length L is dropped or kept whole, as in PyTorch
    assert np.all(rows.min(axis=2) == rows.max(axis=2))
    assert 0 < (rows[:, :, 0] == 0).mean() < 1


# ---- a sweep of bad arguments: every refusal is a tinynet error ---------------------------

BAD = {
    "string": lambda: "abc", "None": lambda: None, "dict": lambda: {"a": 1},
    "list of strings": lambda: ["a", "b"], "ragged list": lambda: [[1.0, 2.0], [3.0]],
    "int array": lambda: np.array([1, 2, 3]), "complex array": lambda: np.array([1j, 2.0]),
    "NaN": lambda: float("nan"), "2.5": lambda: 2.5, "-2": lambda: -2,
    "int tensor": lambda: tn.tensor([1, 2, 3]), "empty": lambda: tn.zeros(0),
}


def _x() -> tn.Tensor:
    return tn.randn(2, 3, 6, 6)


SWEEP = {
    "conv2d(a, w)": lambda a: F.conv2d(a, tn.randn(4, 3, 3, 3)),
    "conv2d(x, a)": lambda a: F.conv2d(_x(), a),
    "conv2d(x, w, a)": lambda a: F.conv2d(_x(), tn.randn(4, 3, 3, 3), a),
    "conv2d(stride=a)": lambda a: F.conv2d(_x(), tn.randn(4, 3, 3, 3), stride=a),
    "conv2d(padding=a)": lambda a: F.conv2d(_x(), tn.randn(4, 3, 3, 3), padding=a),
    "conv2d(dilation=a)": lambda a: F.conv2d(_x(), tn.randn(4, 3, 3, 3), dilation=a),
    "conv2d(groups=a)": lambda a: F.conv2d(_x(), tn.randn(4, 3, 3, 3), groups=a),
    "max_pool2d(a)": lambda a: F.max_pool2d(a, 2),
    "max_pool2d(kernel_size=a)": lambda a: F.max_pool2d(_x(), a),
    "max_pool2d(stride=a)": lambda a: F.max_pool2d(_x(), 2, a),
    "avg_pool2d(a)": lambda a: F.avg_pool2d(a, 2),
    "avg_pool2d(divisor_override=a)": lambda a: F.avg_pool2d(_x(), 2, divisor_override=a),
    "adaptive_avg_pool2d(x, a)": lambda a: F.adaptive_avg_pool2d(_x(), a),
    "batch_norm(a)": lambda a: F.batch_norm(a, tn.zeros(3), tn.ones(3), training=True),
    "batch_norm(running_mean=a)": lambda a: F.batch_norm(_x(), a, tn.ones(3)),
    "batch_norm(momentum=a)": lambda a: F.batch_norm(_x(), tn.zeros(3), tn.ones(3), True,
                                                     momentum=a),
    "layer_norm(a)": lambda a: F.layer_norm(a, 3),
    "layer_norm(normalized_shape=a)": lambda a: F.layer_norm(_x(), a),
    "layer_norm(weight=a)": lambda a: F.layer_norm(_x(), 6, a),
    "dropout2d(p=a)": lambda a: F.dropout2d(_x(), a),
    "unfold(a)": lambda a: F.unfold(a, 2),
    "fold(a)": lambda a: F.fold(a, (4, 4), 2),
    "nn.Conv2d(a, 2, 3)": lambda a: tn.nn.Conv2d(a, 2, 3),
    "nn.Conv2d(3, 2, a)": lambda a: tn.nn.Conv2d(3, 2, a),
    "nn.BatchNorm2d(a)": lambda a: tn.nn.BatchNorm2d(a),
    "nn.BatchNorm2d(3)(a)": lambda a: tn.nn.BatchNorm2d(3)(a),
    "nn.LayerNorm(a)": lambda a: tn.nn.LayerNorm(a),
    "nn.AdaptiveAvgPool2d(a)(x)": lambda a: tn.nn.AdaptiveAvgPool2d(a)(_x()),
    "nn.Dropout2d(a)": lambda a: tn.nn.Dropout2d(a),
}


def test_bad_arguments_never_escape_as_raw_python_or_numpy_errors() -> None:
    escaped, refused = [], 0
    with np.errstate(all="ignore"):
        for function, call in SWEEP.items():
            for bad, make in BAD.items():
                try:
                    call(make())
                except tn.TinynetError:
                    refused += 1
                except Exception as e:  # noqa: BLE001 - what the test looks for
                    escaped.append(f"{function} <- {bad}: {type(e).__name__}: {e}")
    assert not escaped, "\n".join(escaped)
    assert refused > 0.8 * len(SWEEP) * len(BAD)  # most are refused: the sweep has teeth


@pytest.mark.parametrize("numba", [True, False], ids=["numba", "twins"])
def test_an_empty_batch_runs_forward_and_backward_with_empty_gradients(numba: bool) -> None:
    """PyTorch answers an empty batch with empty outputs and zero weight gradients; numpy
    cannot infer a reshape's -1 from size 0, so every reshape names its sizes."""
    if numba and not K.numba_enabled():
        pytest.skip("numba is not available")
    with K.dispatch_mode("compiled" if numba else "twin"):
        x = tn.ones(0, 4, 6, 6, requires_grad=True)
        weight = tn.ones(6, 2, 3, 3, requires_grad=True)
        bias = tn.ones(6, requires_grad=True)
        y = F.conv2d(x, weight, bias, groups=2)
        assert y.shape == (0, 6, 4, 4) and y.dtype == np.float32
        pooled = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2)
        assert pooled.shape == (0, 6, 2, 2)
        pooled.sum().backward()
    assert x.grad.shape == (0, 4, 6, 6)
    np.testing.assert_array_equal(weight.grad.data, np.zeros((6, 2, 3, 3), np.float32))
    np.testing.assert_array_equal(bias.grad.data, np.zeros(6, np.float32))
