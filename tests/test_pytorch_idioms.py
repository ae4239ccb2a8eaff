"""PyTorch users are never surprised (issue 11): the idioms of real training scripts give
PyTorch's values, indices, gradients, dtypes and shapes, checked against torch itself.

Part 1 checks each idiom (max/min over a dim, sort/topk/gather, in-place operators, type
promotion, .data, formatting, devices, custom Function errors, containers, dropout, the new
ops, numpy ufuncs); part 2 ports small versions of real scripts and checks they reach torch's
loss from the same initial weights.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import distinct, shapes, values

import tinynet as tn
from tinynet import nn
from tinynet.errors import DTypeError, DTypeMismatchError, GraphError, ShapeError, ValueRangeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = nn.functional
EXAMPLES = settings(max_examples=40, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _torch_dtype(dtype: np.dtype) -> Any:
    return torch.from_numpy(np.zeros(1, dtype)).dtype


def _numpy_dtype(dtype: Any) -> np.dtype:
    return torch.zeros(1, dtype=dtype).numpy().dtype


def _both(fn_tn: Callable[..., Any], fn_torch: Callable[..., Any], *arrays: np.ndarray,
          rtol: float = 1e-12, atol: float = 1e-12,
          grad_reference: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """The same function in both libraries on float64 leaves: same values, shapes, dtypes, and
    the same gradients for a random upstream gradient (``grad_reference`` maps torch's
    gradient to the reference, where the exact answer is known to differ from torch's
    rounding)."""
    xs = [tn.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = fn_tn(*xs), fn_torch(*ts)
    assert out.shape == tuple(expected.shape)
    assert out.dtype == _numpy_dtype(expected.dtype)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    seed = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(tn.tensor(seed))
    expected.backward(torch.tensor(seed))
    for x, t in zip(xs, ts, strict=True):
        want = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        if grad_reference is not None:
            want = grad_reference(want)
        got = np.zeros(x.shape) if x.grad is None else x.grad.data
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _ties(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """Small integers as floats: many ties, where the index rules matter."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float))


# =============================================================================================
# Part 1: idioms
# =============================================================================================

# ---- max / min over a dim: (values, indices) -------------------------------------------------


@EXAMPLES
@given(st.data())
def test_max_and_min_over_a_dim_match_torch_with_ties(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(_ties(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    for name in ("max", "min"):
        result = getattr(tn, name)(tn.tensor(x), dim, keep)
        expected = getattr(torch, name)(torch.tensor(x), dim, keep)
        assert type(result).__name__ == name and result._fields == ("values", "indices")
        np.testing.assert_array_equal(result.values.data, expected.values.numpy())
        np.testing.assert_array_equal(result.indices.data, expected.indices.numpy())
        assert result.indices.dtype == np.int64
        _both(lambda t, n=name: getattr(t, n)(dim, keepdim=keep).values,
              lambda t, n=name: getattr(t, n)(dim, keepdim=keep).values, x)


@EXAMPLES
@given(st.data())
def test_full_max_and_min_split_tied_gradients_as_torch(data: Any) -> None:
    x = data.draw(_ties(data.draw(shapes(min_dims=1))))
    _both(lambda t: t.max(), lambda t: t.max(), x)
    _both(lambda t: tn.min(t), lambda t: torch.min(t), x)
    _both(lambda t: t.amax(0), lambda t: t.amax(0), x)


def test_the_accuracy_idiom_unpacks_predictions() -> None:
    logits = tn.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 3.0], [0.0, 0.0, 0.5]])
    _, pred = tn.max(logits, 1)
    values, indices = logits.max(dim=1)
    assert pred.tolist() == [1, 0, 2] and indices.tolist() == pred.tolist()
    assert (pred == tn.tensor([1, 0, 0])).sum().item() == 2
    assert tn.max(logits, 1).values.tolist() == values.tolist()
    assert isinstance(tn.max(logits), tn.Tensor)  # the full reduction is a tensor
    assert tn.max(logits, tn.zeros(3)).shape == (3, 3)  # torch.max(a, b) is elementwise


def test_zero_dim_max_over_dim_0() -> None:
    result, expected = tn.tensor(3.0).max(0), torch.tensor(3.0).max(0)
    assert result.values.item() == expected.values.item()
    assert result.indices.item() == expected.indices.item() and result.indices.ndim == 0


def test_nan_counts_as_the_extreme_in_max_min_sort_and_topk_as_torch() -> None:
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 1.0, 0.0]])
    for name in ("max", "min"):
        got, want = getattr(tn.tensor(x), name)(1), getattr(torch.tensor(x), name)(1)
        np.testing.assert_array_equal(got.values.data, want.values.numpy())
        assert got.indices.tolist() == want.indices.tolist()
    for descending in (False, True):
        got = tn.tensor(x).sort(1, descending)
        want = torch.sort(torch.tensor(x), dim=1, descending=descending, stable=True)
        assert got.indices.tolist() == want.indices.tolist()
    assert tn.tensor(x).topk(2, 1).indices.tolist() == torch.tensor(x).topk(2, 1).indices.tolist()


# ---- sort / topk / gather --------------------------------------------------------------------


@EXAMPLES
@given(st.data())
def test_sort_matches_torch_stable_sort_with_ties(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(_ties(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    descending = data.draw(st.booleans())
    result = tn.sort(tn.tensor(x), dim, descending)
    expected = torch.sort(torch.tensor(x), dim=dim, descending=descending, stable=True)
    np.testing.assert_array_equal(result.values.data, expected.values.numpy())
    np.testing.assert_array_equal(result.indices.data, expected.indices.numpy())
    _both(lambda t: t.sort(dim, descending).values,
          lambda t: t.sort(dim=dim, descending=descending).values, x)


@EXAMPLES
@given(st.data())
def test_topk_matches_torch(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(distinct(shape))  # torch leaves the order of tied elements unspecified
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(0, shape[dim]))
    largest = data.draw(st.booleans())
    result = tn.tensor(x).topk(k, dim, largest)
    expected = torch.tensor(x).topk(k, dim, largest)
    np.testing.assert_array_equal(result.indices.data, expected.indices.numpy())
    _both(lambda t: t.topk(k, dim, largest).values,
          lambda t: t.topk(k, dim, largest).values, x)


@EXAMPLES
@given(st.data())
def test_gather_matches_torch_with_repeated_indices(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(values(shape))
    dim = data.draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(data.draw(st.integers(1, 4)) if d == dim else
                        data.draw(st.integers(1, n)) for d, n in enumerate(shape))
    index = data.draw(hnp.arrays(np.int64, index_shape,
                                 elements=st.integers(0, shape[dim] - 1)))
    _both(lambda t: t.gather(dim, tn.tensor(index)),
          lambda t: t.gather(dim, torch.tensor(index)), x)


# ---- in-place operators ----------------------------------------------------------------------


def test_in_place_operators_edit_memory_and_views_see_it() -> None:
    h = tn.arange(4.0)
    v = h[:2]
    h += 1
    h *= 2
    t = torch.arange(4.0)
    tv = t[:2]
    t += 1
    t *= 2
    np.testing.assert_array_equal(v.data, tv.numpy())
    np.testing.assert_array_equal(h.data, t.numpy())
    v -= 1  # through the view: the base sees it
    tv -= 1
    np.testing.assert_array_equal(h.data, t.numpy())
    assert h._version.value == t._version


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/="])
def test_in_place_operators_in_a_graph_are_recorded_as_torch(op: str) -> None:
    rng = np.random.default_rng(1)
    a0, b0 = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 3)

    def run(lib: Any, a: Any, b: Any) -> tuple[Any, Any]:
        h = a * 2
        same = h
        if op == "+=":
            h += b
        elif op == "-=":
            h -= b
        elif op == "*=":
            h *= b
        else:
            h /= b
        assert h is same  # never rebound
        (h * h).sum().backward()
        return h, a.grad, b.grad

    got = run(tn, tn.tensor(a0, requires_grad=True), tn.tensor(b0, requires_grad=True))
    want = run(torch, torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.data if isinstance(g, tn.Tensor) else g,
                                   w.detach().numpy(), rtol=1e-14)


def test_in_place_refusals_match_torch() -> None:
    w, tw = tn.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError):
        tw += 1
    with pytest.raises(GraphError, match="leaf tensor that requires grad"):
        w += 1
    with tn.no_grad():
        w -= 0.5  # the optimizer's update
    assert w.tolist() == [0.5, 0.5] and w.is_leaf
    ints, tints = tn.tensor([1, 2]), torch.tensor([1, 2])
    with pytest.raises(RuntimeError):
        tints *= 1.5
    with pytest.raises(DTypeError):
        ints *= 1.5
    assert ints.tolist() == [1, 2]
    # a constant tensor joins the graph when a tensor that requires grad is added in
    acc, tacc = tn.zeros(2), torch.zeros(2)
    acc += w * 3
    tacc += torch.tensor([0.5, 0.5], requires_grad=True) * 3
    assert acc.requires_grad and tacc.requires_grad and not acc.is_leaf


def test_in_place_on_a_tensor_saved_for_backward_is_caught_as_torch() -> None:
    a, ta = tn.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    h, th = a.exp(), ta.exp()  # exp saves its output
    h += 1
    th += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        th.sum().backward()
    with pytest.raises(GraphError, match="modified by an in-place operation"):
        h.sum().backward()


def test_in_place_on_a_tensor_another_op_already_read_is_refused_not_misrouted() -> None:
    # torch: y's gradient goes to the old h (d/da = 2 + 4 = 6). tinynet's nodes point at the
    # tensor h, so recording h *= 2 would send y's gradient through the new node: refused.
    a, ta = tn.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    th = ta * 2
    ty = th + 3
    th *= 2
    (ty + th).sum().backward()
    assert ta.grad.tolist() == [6.0, 6.0]
    h = a * 2
    y = h + 3
    with pytest.raises(GraphError, match=r"mul_: .* already used by another op.*out of place"):
        h *= 2
    h = h * 2  # the fix the message names
    (y + h).sum().backward()
    assert a.grad.tolist() == ta.grad.tolist()


VIEW_PROGRAMS = {
    "base edited, view read": "v = h[:2]; h += 1; out = (v * v).sum() + (h * 3).sum()",
    "view edited, base read": "v = h[1:3]; v *= b[:2]; out = (h * h).sum() + v.sum()",
    "column of a reshape": "m = h.reshape(2, 2); c = m[:, 1]; c -= a[:2]; "
                           "out = (h * h * b).sum() + (m.T * 2).sum() + c.sum()",
    "strided view and transpose": "v = h[1::2]; w = h.reshape(2, 2).T; v /= 2; h *= 3; "
                                  "out = (v * w[0]).sum() + (h ** 2).sum() + w.sum()",
    "view of a view": "v = h[:3]; u = v[1:]; u += a[:2]; v += 1; h *= b; "
                      "out = (u ** 3).sum() + (h * v.sum()).sum()",
}


@pytest.mark.parametrize("program", list(VIEW_PROGRAMS))
def test_in_place_through_views_in_a_graph_matches_torch(program: str) -> None:
    """The issue's case: h = a * b; v = h[:2]; h += 1; v sees the edit, and the gradients
    through v and h are torch's (views re-read from the base, CopySlices for edits through a
    view)."""

    def run(lib: Any) -> list[Any]:
        a = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([0.5, -1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        scope = {"a": a, "b": b, "h": a * b}
        exec(VIEW_PROGRAMS[program], scope)  # noqa: S102 - the same source for both libraries
        scope["out"].backward()
        return [scope["out"].item(), a.grad.tolist(), b.grad.tolist(), scope["h"].tolist(),
                scope.get("v", scope["h"]).tolist()]

    for got, want in zip(run(tn), run(torch), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_in_place_with_a_view_made_outside_the_graph_is_refused_with_the_fix() -> None:
    h = tn.ones(3, requires_grad=True) * 2
    with tn.no_grad():
        h[:2]  # noqa: B018 - a view without a graph can't be re-read from the new h
    with pytest.raises(GraphError, match="outside the graph.*out of place"):
        h += 1


# ---- type promotion --------------------------------------------------------------------------

DTYPES = [tn.bool_, tn.uint8, tn.int8, tn.int16, tn.int32, tn.int64, tn.float16, tn.float32,
          tn.float64]


def test_promotion_of_tensors_with_and_without_dims_matches_torch_result_type() -> None:
    for a, b in itertools.product(DTYPES, DTYPES):
        for shape_a, shape_b in [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())]:
            x, y = tn.ones(shape_a, dtype=a), tn.ones(shape_b, dtype=b)
            expected = torch.result_type(torch.ones(shape_a, dtype=_torch_dtype(a)),
                                         torch.ones(shape_b, dtype=_torch_dtype(b)))
            if a == tn.bool_ and b == tn.bool_:
                got = (x * y).dtype  # bool + bool is refused by numpy's add; mul works
            else:
                got = (x + y).dtype
            assert got == _numpy_dtype(expected), (a, shape_a, b, shape_b)


@EXAMPLES
@given(st.data())
def test_promotion_with_numbers_and_shapes_matches_torch(data: Any) -> None:
    a, b = (data.draw(st.sampled_from(DTYPES)) for _ in range(2))
    shape_a, shape_b = (data.draw(shapes(max_dims=2, max_side=2)) for _ in range(2))
    number = data.draw(st.sampled_from([2, 2.5, True]))
    x, y = tn.ones(shape_a, dtype=a), tn.ones(shape_b, dtype=b)
    tx = torch.ones(shape_a, dtype=_torch_dtype(a))
    ty = torch.ones(shape_b, dtype=_torch_dtype(b))
    if not (a == b == tn.bool_):
        got, want = x + y, tx + ty
        assert got.dtype == _numpy_dtype(want.dtype) and got.shape == tuple(want.shape)
    if a != tn.bool_:
        assert (x * number).dtype == _numpy_dtype((tx * number).dtype), (a, number)
    assert (x < y).dtype == np.bool_


def test_float32_models_stay_float32() -> None:
    assert (tn.tensor([1.5]) * tn.tensor([2])).dtype == tn.float32
    x = tn.ones(3, requires_grad=True)
    y = x.pow(tn.tensor([1, 2, 3]))
    assert y.dtype == torch.ones(3).pow(torch.tensor([1, 2, 3])).numpy().dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    small = tn.ones(3) + tn.tensor(1.0, dtype=tn.float64)  # a 0-d float64 doesn't widen
    assert small.dtype == tn.float32


@pytest.mark.parametrize("dtype", [tn.float64, tn.int64])
def test_linear_refuses_a_dtype_other_than_its_weight_as_torch(dtype: Any) -> None:
    x = np.ones((1, 2), dtype=dtype)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.nn.Linear(2, 2)(torch.from_numpy(x))
    with pytest.raises(DTypeMismatchError, match=f"{np.dtype(dtype)}.*float32") as info:
        nn.Linear(2, 2)(tn.tensor(x))
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, TypeError)
    with pytest.raises(RuntimeError):
        tn.ones(2, 2) @ tn.ones(2, 2, dtype=tn.float64)


# ---- .data, format, Tensor(*sizes), device ---------------------------------------------------


def test_p_data_update_idiom_matches_torch() -> None:
    p, tp = tn.tensor([1.0, -2.0], requires_grad=True), torch.tensor([1.0, -2.0],
                                                                     requires_grad=True)
    (p * p * 3).sum().backward()
    (tp * tp * 3).sum().backward()
    p.data -= 0.1 * p.grad
    tp.data -= 0.1 * tp.grad
    np.testing.assert_array_equal(p.data, tp.detach().numpy())
    assert p.is_leaf and p.requires_grad


def test_assigning_data_swaps_the_values_of_any_shape_as_torch() -> None:
    layer, tlayer = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    layer.weight.data = tn.zeros(2, 3)
    tlayer.weight.data = torch.zeros(2, 3)
    assert isinstance(layer.weight.data, np.ndarray) and layer.weight.data.sum() == 0
    layer.weight.data = tn.ones(4)  # PyTorch accepts any shape; the layer fails when used
    tlayer.weight.data = torch.ones(4)
    with pytest.raises(RuntimeError):
        tlayer(torch.ones(1, 3))
    with pytest.raises(ShapeError):
        layer(tn.ones(1, 3))
    with pytest.raises(DTypeError, match="assign a Tensor or a numpy array"):
        layer.weight.data = [1, 2]


def test_format_of_a_zero_dim_tensor_as_torch() -> None:
    loss, tloss = tn.tensor(0.123456), torch.tensor(0.123456)
    assert f"{loss:.4f}" == f"{tloss:.4f}" == "0.1235"
    assert f"{tn.tensor(7):>3d}" == f"{torch.tensor(7):>3d}"
    assert f"{tn.ones(2)}" == str(tn.ones(2))
    with pytest.raises(TypeError):
        f"{torch.ones(2):.3f}"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{tn.ones(2):.3f}"


def test_tensor_of_sizes_is_an_uninitialised_float_tensor() -> None:
    t, expected = tn.Tensor(2, 3), torch.Tensor(2, 3)
    assert t.shape == tuple(expected.shape) and t.dtype == _numpy_dtype(expected.dtype)
    assert tn.Tensor().shape == tuple(torch.Tensor().shape)
    with pytest.raises(DTypeError, match="tn.empty"):
        tn.Tensor(2, 3.5)


def test_device_idioms() -> None:
    x = tn.ones(2)
    assert str(x.device) == str(torch.ones(2).device) == "cpu"
    assert repr(tn.device("cpu")) == repr(torch.device("cpu"))
    assert x.device == tn.device("cpu") and x.cpu() is x and x.to("cpu") is x
    assert x.to(tn.float64).dtype == tn.float64 and x.to("cpu", tn.float64).dtype == tn.float64
    assert x.to(tn.device("cpu"), dtype=tn.int32).dtype == tn.int32
    assert x.to(tn.ones(1, dtype=tn.int64)).dtype == tn.int64
    assert x.to("cpu", copy=True) is not x
    with pytest.raises(ValueRangeError, match="CPU only"):
        x.to("cuda")


# ---- custom Function mistakes ----------------------------------------------------------------


def test_custom_function_mistakes_name_the_function() -> None:
    class _TwoInputsOneGrad(tn.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, y: Any) -> Any:
            return x * y

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return grad

    class _ReturnsAList(tn.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return [1.0, 2.0]

    class _WrongShape(tn.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x.sum()

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return tn.ones(5)

    a = tn.ones(2, requires_grad=True)
    with pytest.raises(GraphError, match="_TwoInputsOneGrad.backward returned 1 gradient.*2"):
        _TwoInputsOneGrad.apply(a, a).sum().backward()
    with pytest.raises(GraphError, match="_ReturnsAList.forward returned list"):
        _ReturnsAList.apply(a)
    with pytest.raises(ShapeError, match=r"_WrongShape.backward .* shape \(5,\) .* \(2,\)"):
        _WrongShape.apply(a).backward()


# ---- containers and dropout ------------------------------------------------------------------


def test_module_list_and_dict_register_like_torch() -> None:
    def build(lib: Any) -> Any:
        net = lib.Module()
        net.layers = lib.ModuleList([lib.Linear(2, 3), lib.Linear(3, 3)])
        net.layers.append(lib.Linear(3, 1))
        net.heads = lib.ModuleDict({"a": lib.Linear(1, 1), "b": lib.Linear(1, 2)})
        return net

    net, tnet = build(nn), build(torch.nn)
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert len(list(net.parameters())) == len(list(tnet.parameters()))
    assert len(net.layers) == 3 and list(net.heads) == ["a", "b"] and "b" in net.heads
    assert net.layers[-1] is list(net.layers)[2]
    assert len(net.layers[1:]) == 2 and isinstance(net.layers[1:], nn.ModuleList)
    del net.layers[0]
    del tnet.layers[0]
    assert list(net.state_dict()) == list(tnet.state_dict())
    net.heads.pop("a")
    assert list(net.heads.keys()) == ["b"]
    with pytest.raises(NotImplementedError):
        net.layers(tn.ones(1, 3))


def test_dropout_trains_scales_and_evaluates_as_torch() -> None:
    tn.manual_seed(0)
    x = tn.ones(20_000, dtype=tn.float64, requires_grad=True)
    drop = nn.Dropout(0.25)
    assert repr(drop) == repr(torch.nn.Dropout(0.25))
    y = drop(x)
    kept = y.data != 0
    np.testing.assert_array_equal(y.data[kept], 1 / 0.75)  # 1/(1-p), as torch
    assert abs(kept.mean() - 0.75) < 0.02
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.where(kept, 1 / 0.75, 0))
    drop.eval()
    assert drop(x) is x and TF.dropout(torch.ones(2), 0.5, training=False) is not None
    seq = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.9))
    seq.eval()
    assert not seq[1].training
    seq.train()
    assert seq[1].training


def test_dropout_edge_cases_as_torch() -> None:
    x, tx = tn.ones(4, requires_grad=True), torch.ones(4, requires_grad=True)
    assert F.dropout(x, 0.0) is x and TF.dropout(tx, 0.0) is tx
    zeros, tzeros = F.dropout(x, 1.0), TF.dropout(tx, 1.0)
    np.testing.assert_array_equal(zeros.data, tzeros.detach().numpy())
    zeros.sum().backward()
    tzeros.sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            torch.nn.Dropout(p)
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(p)
    plain = tn.ones(6)
    assert F.dropout(plain, 0.5, inplace=True) is plain and plain._version.value == 1


def test_dropout_masks_follow_manual_seed_without_shifting_other_draws() -> None:
    tn.manual_seed(3)
    first = F.dropout(tn.ones(50), 0.5)
    after = tn.randn(3)
    tn.manual_seed(3)
    tn.randn(0)
    again = F.dropout(tn.ones(50), 0.5)
    np.testing.assert_array_equal(first.data, again.data)
    tn.manual_seed(3)
    np.testing.assert_array_equal(tn.randn(3).data, after.data)  # dropout drew nothing here


# ---- new ops ---------------------------------------------------------------------------------


@EXAMPLES
@given(st.data())
def test_elementwise_and_reduction_ops_match_torch(data: Any) -> None:
    shape = data.draw(shapes())
    x = data.draw(values(shape, away_from_zero=0.1))
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim, ndim - 1)) if ndim else None
    keep = data.draw(st.booleans())
    correction = data.draw(st.sampled_from([0, 1, 2]))
    _both(tn.sin, torch.sin, x)
    _both(lambda t: t.cos(), lambda t: t.cos(), x)
    _both(lambda t: np.sin(t), torch.sin, x)  # numpy's ufunc dispatches to tn.sin
    if x.size > correction:
        _both(lambda t: t.var(correction=correction), lambda t: t.var(correction=correction), x)
        _both(lambda t: tn.std(t, correction=correction),
              lambda t: torch.std(t, correction=correction), x,
              grad_reference=_shift_invariant(None))
    if dim is not None and shape[dim] > 1:
        _both(lambda t: t.std(dim, keepdim=keep), lambda t: t.std(dim, keepdim=keep), x,
              grad_reference=_shift_invariant(dim))
        _both(lambda t: t.var(dim, False, keep), lambda t: t.var(dim, False, keep), x)
    if dim is not None:
        _both(lambda t: t.logsumexp(dim, keep), lambda t: t.logsumexp(dim, keep), x)
        for p in (1, 2, float("inf"), -float("inf"), 3):
            _both(lambda t, p=p: t.norm(p, dim, keep), lambda t, p=p: t.norm(p, dim, keep), x)
    _both(lambda t: t.norm(), lambda t: t.norm(), x)


def _shift_invariant(dim: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """std's gradient with its component along (1, 1, ..., 1) removed over ``dim``.

    std(x + c) = std(x), so the exact gradient sums to 0 over each reduced group. PyTorch
    computes g * (x - mean) / ((n - c) * std) directly; where the values of a group are all
    equal its std is a rounding residue (8.9e-16 for [a, a, a] with a = -6.48688758794882)
    and its gradient becomes +-g/n. tinynet differentiates through x - mean, which projects
    the residue out and gives 0 (up to rounding), as for exactly equal values where PyTorch
    masks its formula to 0. Elsewhere PyTorch's gradient already sums to 0 and this changes
    it only by rounding."""
    def project(grad: np.ndarray) -> np.ndarray:
        return grad - grad.mean(axis=dim, keepdims=True)
    return project


@settings(max_examples=60, deadline=None)
@given(a=st.floats(-1e6, 1e6, allow_nan=False), n=st.integers(2, 6),
       correction=st.sampled_from([0, 1]))
@example(a=-6.48688758794882, n=3, correction=0)  # PyTorch's Welford residue: grad +-1/3
@example(a=0.7, n=3, correction=1)
@example(a=1.0, n=3, correction=0)  # exactly equal: PyTorch masks its formula to 0
def test_std_and_var_gradients_at_equal_values_are_zero(a: float, n: int,
                                                         correction: int) -> None:
    """Equal values: std and var are 0 up to rounding and their gradients are 0 (tinynet's
    documented choice; see _shift_invariant for why PyTorch's differs by +-g/n)."""
    for op in ("std", "var"):
        x = tn.tensor(np.full(n, a), requires_grad=True)
        out = getattr(x, op)(correction=correction)
        assert abs(out.item()) <= 8 * np.finfo(np.float64).eps * abs(a) ** (1 if op == "std"
                                                                              else 2)
        out.backward()
        # the mean's rounding leaves each x - mean at most one ulp of a, and the rule sends
        # back (x_i - mean) minus its mean: a few ulp of 1 at most
        np.testing.assert_allclose(x.grad.data, np.zeros(n), atol=8 * np.finfo(np.float64).eps)
    t = torch.tensor(np.full(n, a), requires_grad=True)
    torch.std(t, correction=correction).backward()
    np.testing.assert_allclose(_shift_invariant(None)(t.grad.numpy()), np.zeros(n),
                               atol=8 * np.finfo(np.float64).eps)


def test_norm_and_std_at_zero_have_torch_gradients() -> None:
    zero = np.zeros(3)
    _both(lambda t: t.norm(), lambda t: t.norm(), zero)
    _both(lambda t: t.std(), lambda t: t.std(), np.ones(3))
    _both(lambda t: t.norm(float("inf")), lambda t: t.norm(float("inf")),
          np.array([1.0, -2.0, 2.0]))
    assert tn.tensor([1.0, 0.0, 2.0]).norm(0).item() == 2.0
    for correction in (1, 3):
        got = tn.tensor([1.0, 2.0]).var(correction=correction).item()
        with warnings.catch_warnings():  # torch warns that n - correction <= 0
            warnings.simplefilter("ignore", UserWarning)
            want = torch.tensor([1.0, 2.0]).var(correction=correction).item()
        assert (math.isnan(got) and math.isnan(want)) or got == want
    assert tn.full((2,), -math.inf).logsumexp(0).item() == -math.inf


@EXAMPLES
@given(st.data())
def test_shape_ops_match_torch(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(values(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = data.draw(st.integers(1, 4))
    chunks = data.draw(st.integers(1, 5))
    pieces = tn.tensor(x).split(size, dim)
    expected = torch.tensor(x).split(size, dim)
    assert [p.shape for p in pieces] == [tuple(e.shape) for e in expected]
    for k in range(len(expected)):
        _both(lambda t, k=k: t.split(size, dim)[k], lambda t, k=k: t.split(size, dim)[k], x)
    got = [p.shape for p in tn.chunk(tn.tensor(x), chunks, dim)]
    assert got == [tuple(e.shape) for e in torch.chunk(torch.tensor(x), chunks, dim)]
    mask = data.draw(hnp.arrays(np.bool_, shape[data.draw(st.integers(0, len(shape))):]))
    _both(lambda t: t.masked_fill(tn.tensor(mask), -1.5),
          lambda t: t.masked_fill(torch.tensor(mask), -1.5), x)
    np.testing.assert_array_equal(tn.tensor(x > 0).any(dim).data,
                                  torch.tensor(x > 0).any(dim).numpy())
    np.testing.assert_array_equal(tn.tensor(x > 0).all(dim, True).data,
                                  torch.tensor(x > 0).all(dim, True).numpy())
    other = data.draw(values(shape))
    np.testing.assert_array_equal(tn.tensor(x).eq(tn.tensor(other)).data, x == other)
    np.testing.assert_array_equal(tn.tensor(x).ne(tn.tensor(x)).data, np.zeros(shape, bool))
    _both(lambda t: t.view_as(tn.ones(x.size)), lambda t: t.view_as(torch.ones(x.size)), x)
    if len(shape) <= 2:
        _both(lambda t: t.t(), lambda t: t.t(), x)


@EXAMPLES
@given(st.data())
def test_mm_and_einsum_match_torch(data: Any) -> None:
    n, k, m, b = (data.draw(st.integers(1, 4)) for _ in range(4))
    a_, b_ = data.draw(values((n, k))), data.draw(values((k, m)))
    _both(tn.mm, torch.mm, a_, b_)
    _both(lambda x, y: x.mm(y), lambda x, y: x.mm(y), a_, b_)
    batch_a, batch_b = data.draw(values((b, n, k))), data.draw(values((b, k, m)))
    for equation in ("bij,bjk->bik", "bij,bjk->", "bij,bjk", "bij,bkj->bik" if k == m else
                     "bij,bjk->kib"):
        _both(lambda x, y, e=equation: tn.einsum(e, x, y),
              lambda x, y, e=equation: torch.einsum(e, x, y), batch_a, batch_b)
    _both(lambda x: tn.einsum("ij->j", x), lambda x: torch.einsum("ij->j", x), a_)
    _both(lambda x, y: tn.einsum("ij,kl->ijkl", [x, y]),
          lambda x, y: torch.einsum("ij,kl->ijkl", [x, y]), a_, b_)


def test_numpy_ufuncs_dispatch_to_tinynet() -> None:
    x = tn.tensor([0.5, 1.0], requires_grad=True)
    y = np.exp(x) + np.ones(2) * np.cos(x)  # ndarray + tensor reaches Tensor.__radd__
    assert isinstance(y, tn.Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp([0.5, 1.0]) - np.sin([0.5, 1.0]),
                               rtol=1e-6)
    assert isinstance(np.float64(2.0) * x, tn.Tensor)
    assert (np.ones(2) < x).dtype == np.bool_
    with pytest.raises(DTypeError, match="np.arctan2"):
        np.arctan2(x, x)
    with pytest.raises(DTypeError, match="out="):
        np.add(np.ones(2), np.ones(2), out=tn.zeros(2))


# =============================================================================================
# Part 2: real scripts, written once and run with ``lib`` = tinynet and ``lib`` = torch
# =============================================================================================
# Each script below is the published one, shortened, with ``torch`` replaced by ``lib``; the
# same source runs on both libraries from the same initial weights, in float64, and must reach
# the same losses. (The only tinynet-specific line in any of them: none.)

STEPS = 60


def _copy_weights(model: Any, torch_model: Any) -> None:
    model.load_state_dict({k: tn.tensor(v.detach().numpy()) for k, v in
                           torch_model.state_dict().items()})


def _poly_data(lib: Any) -> tuple[Any, Any]:
    x = lib.linspace(-math.pi, math.pi, 2000, dtype=lib.float64)
    return x, lib.sin(x)


POLY_INIT = [-0.3, 0.8, 0.05, -0.09]  # stands in for the tutorial's torch.randn draws


def polynomial_with_tensors(lib: Any) -> list[float]:
    """"Learning PyTorch with Examples", part 1: tensors and gradients written by hand."""
    x, y = _poly_data(lib)
    a, b, c, d = (lib.tensor(v, dtype=lib.float64) for v in POLY_INIT)
    learning_rate = 1e-6
    losses = []
    for _ in range(STEPS):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_a = grad_y_pred.sum()
        grad_b = (grad_y_pred * x).sum()
        grad_c = (grad_y_pred * x ** 2).sum()
        grad_d = (grad_y_pred * x ** 3).sum()
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
        c -= learning_rate * grad_c
        d -= learning_rate * grad_d
    return losses


def polynomial_with_autograd(lib: Any) -> list[float]:
    """Part 2: autograd, updates inside no_grad, gradients reset to None."""
    x, y = _poly_data(lib)
    a, b, c, d = (lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in POLY_INIT)
    learning_rate = 1e-6
    losses = []
    for _ in range(STEPS):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with lib.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    return losses


def polynomial_with_nn(lib: Any, torch_model: Any) -> list[float]:
    """Part 3: nn.Sequential(Linear, Flatten), MSELoss(sum), parameters updated by hand."""
    x, y = _poly_data(lib)
    p = lib.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = lib.nn.Sequential(lib.nn.Linear(3, 1), lib.nn.Flatten(0, 1)).double()
    _copy_weights(model, torch_model) if lib is tn else model.load_state_dict(
        torch_model.state_dict())
    loss_fn = lib.nn.MSELoss(reduction="sum")
    learning_rate = 1e-6
    losses = []
    for _ in range(STEPS):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with lib.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    return losses


def polynomial_with_a_custom_function(lib: Any) -> list[float]:
    """Part 4: a custom autograd Function, P3(x) = (5x^3 - 3x)/2."""

    class _LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, input: Any) -> Any:  # noqa: A002
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            (input,) = ctx.saved_tensors  # noqa: A001
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    x, y = _poly_data(lib)
    a = lib.full((), 0.0, dtype=lib.float64, requires_grad=True)
    b = lib.full((), -1.0, dtype=lib.float64, requires_grad=True)
    c = lib.full((), 0.0, dtype=lib.float64, requires_grad=True)
    d = lib.full((), 0.3, dtype=lib.float64, requires_grad=True)
    learning_rate = 5e-6
    losses = []
    for _ in range(STEPS):
        P3 = _LegendrePolynomial3.apply  # noqa: N806 - the tutorial's name
        y_pred = a + b * P3(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with lib.no_grad():
            for param in (a, b, c, d):
                param -= learning_rate * param.grad
                param.grad = None
    return losses


@pytest.mark.parametrize("script", [polynomial_with_tensors, polynomial_with_autograd,
                                    polynomial_with_a_custom_function])
def test_polynomial_fit_reaches_torch_loss(script: Callable[[Any], list[float]]) -> None:
    got, want = script(tn), script(torch)
    assert want[-1] < 0.9 * want[0]  # the script does learn
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_polynomial_fit_with_nn_reaches_torch_loss() -> None:
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1)).double()
    want = polynomial_with_nn(torch, torch_model)
    got = polynomial_with_nn(tn, torch_model)  # tinynet starts from torch's initial weights
    np.testing.assert_allclose(got, want, rtol=1e-10)


def digits_training(lib: Any, torch_model: Any, folder: Any) -> tuple[list[float], list[int]]:
    """An MNIST-style loop on scikit-learn's 8x8 digits: mini-batches, SGD with momentum,
    train()/eval(), the ``_, pred = max(out, 1)`` accuracy idiom, and a checkpoint per epoch
    that is loaded back into a fresh model."""
    datasets = pytest.importorskip("sklearn.datasets")
    images, labels = datasets.load_digits(return_X_y=True)
    images = images / 16.0
    train_x, train_y = images[:600], labels[:600]
    test_x, test_y = lib.tensor(images[600:800]), lib.tensor(labels[600:800])

    def make_model() -> Any:
        return lib.nn.Sequential(lib.nn.Linear(64, 32), lib.nn.ReLU(),
                                 lib.nn.Linear(32, 10)).double()

    model = make_model()
    _copy_weights(model, torch_model) if lib is tn else model.load_state_dict(
        torch_model.state_dict())
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    criterion = lib.nn.CrossEntropyLoss()
    losses, correct = [], []
    for epoch in range(2):
        model.train()
        for start in range(0, len(train_x), 64):
            inputs = lib.tensor(train_x[start:start + 64])
            targets = lib.tensor(train_y[start:start + 64])
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with lib.no_grad():
            outputs = model(test_x)
            _, predicted = lib.max(outputs, 1)
            correct.append((predicted == test_y).sum().item())
        path = folder / f"{lib.__name__}-epoch{epoch}.pt"
        lib.save(model.state_dict(), path)
        restored = make_model()
        restored.load_state_dict(lib.load(path))
        restored.eval()
        with lib.no_grad():
            assert (restored(test_x) == outputs).all().item()
    return losses, correct


def test_digits_loop_with_accuracy_and_checkpoints_matches_torch(tmp_path: Any) -> None:
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                      torch.nn.Linear(32, 10)).double()
    got_losses, got_correct = digits_training(tn, torch_model, tmp_path)
    want_losses, want_correct = digits_training(torch, torch_model, tmp_path)
    assert want_correct[-1] > 120  # of 200 (chance: 20): the loop trains
    assert got_correct == want_correct
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-9)


def moons_training(lib: Any, torch_model: Any) -> tuple[list[float], list[float]]:
    """micrograd's demo: a 2-16-16-1 ReLU net on make_moons, max-margin (hinge) loss with L2
    regularisation, lr decaying from 1.0, updates written as ``p.data -= lr * p.grad``."""
    datasets = pytest.importorskip("sklearn.datasets")
    features, labels = datasets.make_moons(n_samples=100, noise=0.1, random_state=1)
    inputs, y = lib.tensor(features), lib.tensor(labels * 2.0 - 1)
    model = lib.nn.Sequential(lib.nn.Linear(2, 16), lib.nn.ReLU(), lib.nn.Linear(16, 16),
                              lib.nn.ReLU(), lib.nn.Linear(16, 1)).double()
    _copy_weights(model, torch_model) if lib is tn else model.load_state_dict(
        torch_model.state_dict())
    losses, accuracies = [], []
    for k in range(STEPS):
        scores = model(inputs).squeeze(1)
        data_loss = (1 + -y * scores).relu().mean()
        alpha = 1e-4
        reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = ((y > 0) == (scores > 0)).float().mean()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(total_loss.item())
        accuracies.append(accuracy.item())
    return losses, accuracies


def test_moons_hinge_loss_demo_matches_torch() -> None:
    torch.manual_seed(1)
    torch_model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
                                      torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                      torch.nn.Linear(16, 1)).double()
    got_losses, got_accuracy = moons_training(tn, torch_model)
    want_losses, want_accuracy = moons_training(torch, torch_model)
    assert want_losses[-1] < want_losses[0] / 2 and want_accuracy[-1] > 0.8
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-9)
    assert got_accuracy == want_accuracy
