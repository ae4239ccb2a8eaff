"""Convolution, pooling and normalization against PyTorch (the oracle), in float64: values and
gradients of every input within 1e-10 relative (to the largest reference entry), batch norm's
running statistics after several training steps, eval outputs, and state dicts of a small CNN
moving from tinynet to PyTorch and back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinynet as tn
import tinynet.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL = 1e-10


def assert_matches(ours: tn.Tensor | np.ndarray, theirs, what: str = "") -> None:  # noqa: ANN001
    a = ours.data if isinstance(ours, tn.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    finite = np.isfinite(b)
    np.testing.assert_array_equal(a[~finite], b[~finite], err_msg=what)  # -inf where -inf
    a, b = a[finite], b[finite]
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    error = np.abs(a - b).max(initial=0.0) / scale
    assert error <= RTOL, f"{what}: relative error {error:.3g}"


def _pair_of_leaves(array: np.ndarray) -> tuple[tn.Tensor, object]:
    return (tn.tensor(array, requires_grad=True),
            torch.tensor(array, requires_grad=True))


def _backward_both(ours: tn.Tensor, theirs, seed: int) -> None:  # noqa: ANN001
    grad = np.random.default_rng(seed).standard_normal(ours.shape)
    ours.backward(tn.tensor(grad))
    theirs.backward(torch.tensor(grad))


@st.composite
def conv_settings(draw):  # noqa: ANN001, ANN201
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    n = draw(st.integers(1, 3))
    c, o = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1):
        padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3),
                                 st.tuples(st.integers(0, 3), st.integers(0, 3))))
    else:
        padding = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3),
                                                             st.integers(0, 3))))
    size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    pads = (0, 0) if padding in ("same", "valid") else (
        padding if isinstance(padding, tuple) else (padding, padding))
    for axis in (0, 1):
        if padding != "same":
            assume(size[axis] + 2 * pads[axis] >= dilation[axis] * (kernel[axis] - 1) + 1)
    return {"n": n, "c": c, "o": o, "kernel": kernel, "stride": stride, "padding": padding,
            "dilation": dilation, "groups": groups, "size": size,
            "bias": draw(st.booleans()), "seed": draw(st.integers(0, 2**16))}


@given(s=conv_settings())
def test_conv2d_values_and_gradients_match_torch(s: dict) -> None:
    rng = np.random.default_rng(s["seed"])
    x, tx = _pair_of_leaves(rng.standard_normal((s["n"], s["c"]) + s["size"]))
    w, tw = _pair_of_leaves(rng.standard_normal((s["o"], s["c"] // s["groups"]) + s["kernel"]))
    b, tb = _pair_of_leaves(rng.standard_normal(s["o"])) if s["bias"] else (None, None)
    args = (s["stride"], s["padding"], s["dilation"], s["groups"])
    ours, theirs = F.conv2d(x, w, b, *args), TF.conv2d(tx, tw, tb, *args)
    assert_matches(ours, theirs, "conv2d")
    _backward_both(ours, theirs, s["seed"])
    assert_matches(x.grad, tx.grad, "d/dx")
    assert_matches(w.grad, tw.grad, "d/dweight")
    if s["bias"]:
        assert_matches(b.grad, tb.grad, "d/dbias")


def test_conv2d_second_derivatives_match_torch() -> None:
    """d/dw of (sum of (d loss/dx)^2): a gradient penalty, which differentiates the backward."""
    rng = np.random.default_rng(0)
    x, tx = _pair_of_leaves(rng.standard_normal((2, 4, 7, 6)))
    w, tw = _pair_of_leaves(rng.standard_normal((6, 2, 3, 2)))
    results = []
    for lib, fn, xx, ww in ((tn, F, x, w), (torch, TF, tx, tw)):
        out = fn.max_pool2d(fn.conv2d(xx, ww, None, 2, 1, (1, 2), 2).tanh(), 2, ceil_mode=True)
        (gx,) = lib.autograd.grad(out.sum(), [xx], create_graph=True)
        (gw,) = lib.autograd.grad((gx * gx).sum(), [ww])
        results.append(gw)
    assert_matches(results[0], results[1], "second derivative")


@given(settings=st.fixed_dictionaries({
    "kernel": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "stride": st.sampled_from([None, 1, 2, 3, (1, 2)]),
    "ceil_mode": st.booleans(), "count_include_pad": st.booleans(),
    "size": st.tuples(st.integers(1, 11), st.integers(1, 11)),
    "seed": st.integers(0, 2**16), "pad_h": st.integers(0, 2), "pad_w": st.integers(0, 2),
    "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
}))
def test_max_and_avg_pooling_match_torch(settings: dict) -> None:
    kernel, size = settings["kernel"], settings["size"]
    padding = (min(settings["pad_h"], kernel[0] // 2), min(settings["pad_w"], kernel[1] // 2))
    dilation = settings["dilation"]
    for axis in (0, 1):
        assume(size[axis] + 2 * padding[axis] >= dilation[axis] * (kernel[axis] - 1) + 1)
    rng = np.random.default_rng(settings["seed"])
    values = np.round(rng.standard_normal((2, 3) + size) * 2) / 2  # many ties
    x, tx = _pair_of_leaves(values)
    stride, ceil = settings["stride"], settings["ceil_mode"]
    ours, indices = F.max_pool2d(x, kernel, stride, padding, dilation, ceil, True)
    theirs, their_indices = TF.max_pool2d(tx, kernel, stride, padding, dilation, ceil, True)
    assert_matches(ours, theirs, "max_pool2d")
    np.testing.assert_array_equal(indices.data, their_indices.numpy())
    # a window with no pixel in the image: PyTorch's backward writes out of bounds (see the
    # test below), so only windows that see the image go on to the gradient comparison
    assume((indices.data < size[0] * size[1]).all())
    _backward_both(ours, theirs, 1)
    assert_matches(x.grad, tx.grad, "max_pool2d d/dx")

    x, tx = _pair_of_leaves(values)
    include = settings["count_include_pad"]
    ours = F.avg_pool2d(x, kernel, stride, padding, ceil, include)
    theirs = TF.avg_pool2d(tx, kernel, stride, padding, ceil, include)
    assert_matches(ours, theirs, "avg_pool2d")
    _backward_both(ours, theirs, 2)
    assert_matches(x.grad, tx.grad, "avg_pool2d d/dx")


def test_avg_pool2d_divisor_override_matches_torch() -> None:
    x, tx = _pair_of_leaves(np.random.default_rng(3).standard_normal((1, 2, 5, 5)))
    assert_matches(F.avg_pool2d(x, 3, 2, 1, divisor_override=7),
                   TF.avg_pool2d(tx, 3, 2, 1, divisor_override=7))


@pytest.mark.parametrize("output_size", [1, (1, 1), 2, (3, 2), (5, 7), (None, 3), (4, None)])
@pytest.mark.parametrize("size", [(1, 1), (4, 4), (5, 7), (9, 3)])
def test_adaptive_avg_pool2d_matches_torch(output_size, size) -> None:  # noqa: ANN001
    x, tx = _pair_of_leaves(np.random.default_rng(4).standard_normal((2, 3) + size))
    ours, theirs = F.adaptive_avg_pool2d(x, output_size), TF.adaptive_avg_pool2d(tx, output_size)
    assert_matches(ours, theirs, "adaptive_avg_pool2d")
    _backward_both(ours, theirs, 5)
    assert_matches(x.grad, tx.grad, "d/dx")


@pytest.mark.parametrize("kernel", [(2, 2), (3, 2)])
def test_unfold_and_fold_match_torch(kernel) -> None:  # noqa: ANN001
    x, tx = _pair_of_leaves(np.random.default_rng(6).standard_normal((2, 3, 7, 6)))
    args = {"dilation": (1, 2), "padding": 1, "stride": (2, 1)}
    ours, theirs = F.unfold(x, kernel, **args), TF.unfold(tx, kernel, **args)
    assert_matches(ours, theirs, "unfold")
    cols, tcols = _pair_of_leaves(ours.data)
    folded, tfolded = F.fold(cols, (7, 6), kernel, **args), TF.fold(tcols, (7, 6), kernel, **args)
    assert_matches(folded, tfolded, "fold")
    _backward_both(folded, tfolded, 7)
    assert_matches(cols.grad, tcols.grad, "fold d/dcols")


@pytest.mark.parametrize(("module", "shape"), [
    ("BatchNorm1d", (8, 4)), ("BatchNorm1d", (6, 4, 5)), ("BatchNorm2d", (5, 4, 3, 3)),
    ("BatchNorm2d", (1, 4, 2, 3)),
])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batch_norm_modules_match_torch_over_training_steps_and_in_eval(
    module: str, shape: tuple, momentum: float | None
) -> None:
    ours = getattr(tn.nn, module)(4, momentum=momentum, eps=1e-3).double()
    theirs = getattr(torch.nn, module)(4, momentum=momentum, eps=1e-3).double()
    rng = np.random.default_rng(8)
    with torch.no_grad():  # non-trivial affine parameters, the same in both
        for name in ("weight", "bias"):
            value = rng.standard_normal(4)
            getattr(ours, name).data[...] = value
            getattr(theirs, name).copy_(torch.tensor(value))
    for step in range(4):
        batch = rng.standard_normal(shape) * (step + 1) + step
        x, tx = _pair_of_leaves(batch)
        out, their_out = ours(x), theirs(tx)
        assert_matches(out, their_out, f"train step {step}")
        _backward_both(out, their_out, step)
        assert_matches(x.grad, tx.grad, f"d/dx step {step}")
        assert_matches(ours.weight.grad, theirs.weight.grad, f"d/dweight step {step}")
        assert_matches(ours.bias.grad, theirs.bias.grad, f"d/dbias step {step}")
        ours.zero_grad()
        theirs.zero_grad()
        for name in ("running_mean", "running_var"):
            assert_matches(getattr(ours, name), getattr(theirs, name), f"{name} step {step}")
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == step + 1
    ours.eval()
    theirs.eval()
    x, tx = _pair_of_leaves(rng.standard_normal(shape))
    out, their_out = ours(x), theirs(tx)
    assert_matches(out, their_out, "eval")
    _backward_both(out, their_out, 9)
    assert_matches(x.grad, tx.grad, "eval d/dx")


@pytest.mark.parametrize("shape, normalized", [((3, 5), 5), ((2, 3, 4), (3, 4)),
                                                ((2, 3, 4), (4,))])
def test_layer_norm_matches_torch(shape, normalized) -> None:  # noqa: ANN001
    ours = tn.nn.LayerNorm(normalized, eps=1e-4).double()
    theirs = torch.nn.LayerNorm(normalized, eps=1e-4).double()
    rng = np.random.default_rng(10)
    with torch.no_grad():
        for name in ("weight", "bias"):
            value = rng.standard_normal(getattr(ours, name).shape)
            getattr(ours, name).data[...] = value
            getattr(theirs, name).copy_(torch.tensor(value))
    x, tx = _pair_of_leaves(rng.standard_normal(shape))
    out, their_out = ours(x), theirs(tx)
    assert_matches(out, their_out, "layer_norm")
    _backward_both(out, their_out, 11)
    assert_matches(x.grad, tx.grad, "d/dx")
    assert_matches(ours.weight.grad, theirs.weight.grad, "d/dweight")
    assert_matches(ours.bias.grad, theirs.bias.grad, "d/dbias")


def _cnn(lib):  # noqa: ANN001, ANN202
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding="same", groups=2, bias=False), nn.ReLU(),
        nn.AvgPool2d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LayerNorm(6),
        nn.Linear(6, 3),
    )


def test_cnn_state_dict_loads_into_torch_and_back() -> None:
    tn.manual_seed(0)
    ours = _cnn(tn)
    ours(tn.randn(8, 1, 8, 8))  # one training step moves the running statistics
    theirs = _cnn(torch)
    state = ours.state_dict()
    their_state = theirs.state_dict()
    assert list(state) == list(their_state)
    for key, value in state.items():
        assert value.shape == tuple(their_state[key].shape), key
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in state.items()})
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(12).standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(ours(tn.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    # ... and back: a fresh tinynet model takes PyTorch's state dict and gives its outputs.
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1)
    fresh = _cnn(tn)
    fresh.load_state_dict(theirs.state_dict())
    fresh.eval()
    np.testing.assert_allclose(fresh(tn.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    assert fresh.state_dict()["1.num_batches_tracked"] == 1


def test_conv2d_weight_shapes_and_init_ranges_match_torch() -> None:
    for args, kwargs in [((3, 8, 5), {}), ((4, 6, (3, 2)), {"groups": 2, "bias": False})]:
        ours, theirs = tn.nn.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs)
        assert ours.weight.shape == tuple(theirs.weight.shape)
        # kaiming_uniform_(a=sqrt(5)) draws from U(-b, b) with b = 1/sqrt(fan_in): both
        # libraries stay inside b and, with 72 or more draws, come close to it (comparing with
        # torch's own largest draw failed whenever that draw fell short of b)
        fan_in = int(np.prod(ours.weight.shape[1:]))
        bound = 1 / np.sqrt(fan_in)
        assert theirs.weight.abs().max().item() <= bound * (1 + 1e-6)
        assert 0.8 * bound <= np.abs(ours.weight.data).max() <= bound * (1 + 1e-6)
        assert (ours.bias is None) == (theirs.bias is None)
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize(("name", "args", "kwargs"), [
    ("Conv2d", (1, 6, 5), {}),
    ("Conv2d", (2, 4, (3, 2)), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2,
                                "bias": False}),
    ("Conv2d", (2, 4, 3), {"padding": "same"}),
    ("MaxPool2d", (2,), {}), ("MaxPool2d", (3, 1, 1), {"ceil_mode": True}),
    ("AvgPool2d", (2,), {}), ("AdaptiveAvgPool2d", ((1, 1),), {}),
    ("BatchNorm1d", (4,), {}), ("BatchNorm2d", (4,), {"momentum": None, "affine": False}),
    ("LayerNorm", ((3, 4),), {}), ("Dropout2d", (0.3,), {}),
])
def test_modules_print_like_torch(name: str, args: tuple, kwargs: dict) -> None:
    assert repr(getattr(tn.nn, name)(*args, **kwargs)) == repr(
        getattr(torch.nn, name)(*args, **kwargs))


@pytest.mark.parametrize(("shape", "args"), [
    ((1, 1, 1, 3), (2, 1, 1, 2)), ((2, 2, 1, 1), (2, 1, 1, 2)), ((1, 2, 2, 1), ((2, 2), 1, 1, 2)),
])
def test_max_pool_windows_with_no_pixel_in_the_image_match_torch(shape, args) -> None:  # noqa: ANN001
    """Dilation and padding can leave a window entirely in the padding: PyTorch gives -inf and
    an index past the image; so does tinynet. Its backward then drops that window's gradient
    (PyTorch's CPU backward adds it past the plane, out of bounds: not called here)."""
    values = np.random.default_rng(13).standard_normal(shape)
    theirs, their_indices = TF.max_pool2d(torch.tensor(values), *args, return_indices=True)
    for mode in ("twin", "compiled") if tn.kernels.numba_enabled() else ("twin",):
        x = tn.tensor(values, requires_grad=True)
        with tn.kernels.dispatch_mode(mode):
            ours, indices = F.max_pool2d(x, *args, return_indices=True)
            np.testing.assert_array_equal(ours.data, theirs.numpy())
            np.testing.assert_array_equal(indices.data, their_indices.numpy())
            ours.sum().backward()
        plane = shape[2] * shape[3]
        expected = np.zeros(values.shape).reshape(shape[0], shape[1], -1)
        for n, c, p, q in np.ndindex(indices.shape):
            if indices.data[n, c, p, q] < plane:
                expected[n, c, indices.data[n, c, p, q]] += 1
        np.testing.assert_array_equal(x.grad.data, expected.reshape(shape))
