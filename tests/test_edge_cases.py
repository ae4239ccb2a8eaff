"""Regression tests for the edge cases a differential fuzzer against PyTorch found (issue 12):
wrong-shaped masks, 0-d bool and empty-list indices, ignored targets, clamp ties, infinite
upstream gradients, tiny divisors, mixed-precision pow, empty tensors, non-bool requires_grad,
huge layer sizes and same-shape views. Each compares against PyTorch (skipped without it) or
numpy, never against a number written here by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tolerance import assert_close

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def t64(values: Any, requires_grad: bool = False) -> tuple[tn.Tensor, Any]:
    """The same float64 values as a tinynet leaf and a torch leaf."""
    array = np.array(values, dtype=np.float64)
    return (tn.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def same(a: Any, b: Any, rtol: float = 1e-12) -> None:
    """Equal values (NaN where the other has NaN, infinities equal, shapes and dtypes equal)."""
    a = a.data if isinstance(a, tn.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert_close(a, b, rtol)


# ---- 1 and 8: indexing -----------------------------------------------------------------------


@pytest.mark.parametrize("mask", [[True, False, True], [True] * 6, [[True] * 5]])
def test_a_boolean_mask_of_the_wrong_shape_is_refused_reading(mask: list[Any]) -> None:
    x = tn.arange(5.0)
    with pytest.raises(IndexError):
        torch.arange(5.0)[torch.tensor(mask)]
    for index in (np.array(mask), tn.tensor(mask)):
        with pytest.raises(tn.IndexShapeError, match=r"mask of shape .* dims .* \(5,\)") as e:
            x[index]
        assert isinstance(e.value, IndexError) and isinstance(e.value, tn.TinynetError)


def test_a_boolean_mask_of_the_wrong_shape_is_refused_writing() -> None:
    y = tn.zeros(5)
    with pytest.raises(IndexError):
        torch.zeros(5)[torch.tensor([True, True])] = 7.0
    with pytest.raises(tn.IndexShapeError):
        y[np.array([True, True])] = 7.0
    assert y._version.value == 0 and np.array_equal(y.data, np.zeros(5, np.float32))


def test_masks_after_other_indices_are_checked_against_the_dims_they_select() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    good = [(slice(None), np.ones(3, bool)), (Ellipsis, np.ones(4, bool)),
            (None, 0, np.ones((3, 4), bool)), (np.ones((2, 3), bool), 1)]
    for index in good:
        same(tn.tensor(x)[index], torch.tensor(x)[tuple(
            torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index)])
    for index in [(slice(None), np.ones(4, bool)), (Ellipsis, np.ones(3, bool)),
                  (0, np.ones((3, 3), bool))]:
        with pytest.raises(IndexError):
            np.asarray(x)[index]
        with pytest.raises(tn.IndexShapeError):
            tn.tensor(x)[index]


@pytest.mark.parametrize("flag", [True, False])
def test_a_0d_bool_index_adds_a_dim_as_torch(flag: bool) -> None:
    x, tx = t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    weights = np.random.default_rng(0).standard_normal((1, 2, 3))[:int(flag)]
    for index, tindex in [(tn.tensor(flag), torch.tensor(flag)), (flag, flag),
                          (np.array(flag), torch.tensor(flag))]:
        y, ty = x[index], tx[tindex]
        same(y, ty)
        (y * weights).sum().backward()
        (ty * torch.tensor(weights)).sum().backward()
        same(x.grad, tx.grad)
        x.grad = tx.grad = None


def test_an_empty_list_index_gives_an_empty_result() -> None:
    x, tx = t64(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y, ty = x[[]], tx[[]]
    same(y, ty)
    y.sum().backward()
    ty.sum().backward()
    same(x.grad, tx.grad)
    z = tn.zeros(3)
    z[[]] = 1.0
    assert np.array_equal(z.data, np.zeros(3, np.float32))


def test_bool_minus_bool_is_refused_naming_the_fix() -> None:
    a, b = tn.tensor([True, False]), tn.tensor([True, True])
    with pytest.raises(RuntimeError, match="logical_xor"):
        torch.tensor([True]) - torch.tensor([False])
    for left, right in [(a, b), (a, True), (False, b)]:
        with pytest.raises(tn.DTypeError, match=r"two bool tensors.*a != b"):
            left - right
    same(a != b, torch.tensor([True, False]) ^ torch.tensor([True, True]))
    same(a.float() - b.float(), torch.tensor([0.0, -1.0]))


# ---- 2: cross-entropy with ignored targets ----------------------------------------------------


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_target_ignored_gives_torchs_loss_and_zero_gradients(
        loss: str, reduction: str, weighted: bool) -> None:
    rng = np.random.default_rng(1)
    for shape, target in [((1, 3), [0]), ((3,), 0), ((2, 3), [2, 2]), ((2, 3, 2), [[1, 1]] * 2)]:
        x, tx = t64(rng.standard_normal(shape), requires_grad=True)
        options: dict[str, Any] = {"ignore_index": int(np.ravel(target)[0]),
                                   "reduction": reduction}
        w = rng.uniform(0.5, 2.0, 3)
        ours = getattr(F, loss)(x, target, weight=w if weighted else None, **options)
        theirs = getattr(TF, loss)(tx, torch.tensor(target),
                                   weight=torch.tensor(w) if weighted else None, **options)
        same(ours, theirs)
        ours.sum().backward()
        theirs.sum().backward()
        same(x.grad, tx.grad)
        assert not np.isnan(x.grad.data).any()


def test_a_minus_inf_score_in_an_ignored_row_does_not_poison_the_loss() -> None:
    rows = [[1.0, 2.0, 3.0], [-np.inf, 0.0, 1.0], [0.5, -np.inf, 2.0]]
    for reduction in ("mean", "sum", "none"):
        x, tx = t64(rows, requires_grad=True)
        target = [1, 0, 2]
        ours = F.cross_entropy(x, target, ignore_index=0, reduction=reduction)
        theirs = TF.cross_entropy(tx, torch.tensor(target), ignore_index=0,
                                  reduction=reduction)
        same(ours, theirs)
        assert np.isfinite(ours.data).all()
        ours.sum().backward()
        theirs.sum().backward()
        same(x.grad, tx.grad)


def test_an_all_padding_batch_leaves_the_weights_finite_after_a_step() -> None:
    tn.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = tn.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(tn.randn(2, 4)), [-100, -100])
    assert np.isnan(loss.item())
    loss.backward()
    optimizer.step()
    assert all(np.isfinite(p.data).all() for p in model.parameters())


# ---- 3: no NaN from an infinite upstream gradient where no gradient flows ---------------------


@pytest.mark.parametrize("op", ["clamp", "clamp_tensor", "maximum", "minimum", "relu", "where",
                                "abs", "max"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_an_infinite_upstream_gradient_gives_zero_where_no_gradient_flows(
        op: str, create_graph: bool) -> None:
    """sqrt(f(x)) at f(x) = 0 sends an infinite gradient back; elements f ignores get 0.

    PyTorch agrees for clamp, maximum, minimum, relu and where. For abs at 0 and for the
    elements of a max/min reduction that are not the extreme it multiplies, inf * 0 = nan;
    tinynet gives 0 there too (one rule: no gradient flows, so none arrives), and equals
    PyTorch everywhere else."""
    values = {"minimum": [2.0, 0.0, -1.0], "abs": [0.0, 1.0, -2.0]}.get(op, [-1.0, 0.0, 2.0])

    def f(lib: Any, x: Any) -> Any:
        zero = lib.zeros(3, dtype=lib.float64)
        return {
            "clamp": lambda: x.clamp(min=0.0), "clamp_tensor": lambda: x.clamp(min=zero),
            "maximum": lambda: lib.maximum(x, zero), "minimum": lambda: -lib.minimum(x, zero),
            "relu": lambda: lib.relu(x), "where": lambda: lib.where(x > 0, x, zero),
            "abs": lambda: lib.abs(x),
            "max": lambda: (lib.stack([x, zero]).amax(0) if lib is torch else
                            lib.stack([x, zero]).amax(0)),
        }[op]()

    x, tx = t64(values, requires_grad=True)
    (g,) = tn.autograd.grad(tn.sqrt(f(tn, x)).sum(), [x], create_graph=create_graph)
    (tg,) = torch.autograd.grad(torch.sqrt(f(torch, tx)).sum(), [tx],
                                create_graph=create_graph)
    torch_nan = np.isnan(tg.detach().numpy())
    assert torch_nan.any() == (op in ("abs", "max"))
    assert np.all(g.data[torch_nan] == 0)
    same(np.where(torch_nan, 0.0, g.data), np.where(torch_nan, 0.0, tg.detach().numpy()))


# ---- 4: clamp with tensor bounds ---------------------------------------------------------------


def test_clamp_with_tensor_bounds_gives_gradients_as_torch_at_ties_and_crossed_bounds() -> None:
    x0 = [0.0, 1.0, -1.0, 2.0, 5.0, 3.0, np.nan, 1.0, 4.0]
    lo0 = [0.0, 0.0, 0.0, 3.0, 5.0, 3.0, 0.0, np.nan, 3.0]
    hi0 = [4.0, 1.0, 4.0, 1.0, 5.0, 3.0, 4.0, 4.0, 3.0]
    weights = np.arange(1.0, 10.0)
    for which in ("min", "max", "both"):
        x, tx = t64(x0, True)
        lo, tlo = t64(lo0, True)
        hi, thi = t64(hi0, True)
        kwargs = {"min": lo if which != "max" else None, "max": hi if which != "min" else None}
        tkwargs = {"min": tlo if which != "max" else None,
                   "max": thi if which != "min" else None}
        ours, theirs = tn.clamp(x, **kwargs), torch.clamp(tx, **tkwargs)
        same(ours, theirs)
        (ours * weights).sum().backward()
        (theirs * torch.tensor(weights)).sum().backward()
        for a, b in [(x, tx), (lo, tlo), (hi, thi)]:
            if b.grad is None:
                assert a.grad is None
            else:
                same(a.grad, b.grad)


def test_clamp_with_a_tensor_min_at_a_tie_gives_x_all_the_gradient_like_a_number() -> None:
    x, tx = t64([0.0, 1.0], requires_grad=True)
    tn.clamp(x, min=tn.tensor(0.0, dtype=tn.float64)).sum().backward()
    torch.clamp(tx, min=torch.tensor(0.0, dtype=torch.float64)).sum().backward()
    same(x.grad, tx.grad)
    by_number = tn.tensor([0.0, 1.0], requires_grad=True, dtype=tn.float64)
    tn.clamp(by_number, min=0.0).sum().backward()
    same(by_number.grad, x.grad)


def test_clamp_with_broadcast_tensor_bounds_sums_their_gradients_back() -> None:
    x, tx = t64([[0.0, 2.0], [5.0, 1.0]], requires_grad=True)
    lo, tlo = t64([1.0, 1.0], requires_grad=True)
    tn.clamp(x, min=lo).sum().backward()
    torch.clamp(tx, min=tlo).sum().backward()
    same(x.grad, tx.grad)
    same(lo.grad, tlo.grad)
    big = tn.clamp(tn.zeros(2, dtype=tn.float64), min=tn.zeros(3, 2, dtype=tn.float64))
    assert big.shape == torch.clamp(torch.zeros(2), min=torch.zeros(3, 2)).shape


def test_clamp_with_tensor_bounds_has_second_derivatives() -> None:
    x = tn.tensor([0.5, -1.0, 3.0], dtype=tn.float64, requires_grad=True)
    lo = tn.tensor([0.0, 0.0, 0.0], dtype=tn.float64, requires_grad=True)
    assert tn.gradcheck(lambda a, b: tn.clamp(a, min=b) ** 2, (x, lo))
    assert tn.gradgradcheck(lambda a, b: tn.clamp(a, min=b) ** 2, (x, lo))


# ---- 5 and 6: division by tiny numbers, pow's exponent gradient in mixed precision -----------


@pytest.mark.parametrize("dtype, a, b", [("float32", 1e-30, 1e-25), ("float64", 1e-300, 1e-160),
                                         ("float64", 1e300, 1e160)])
def test_the_gradient_of_a_division_by_its_divisor_neither_overflows_nor_underflows(
        dtype: str, a: float, b: float) -> None:
    x = tn.tensor([a], dtype=getattr(tn, dtype))
    y = tn.tensor([b], dtype=getattr(tn, dtype), requires_grad=True)
    tx = torch.tensor([a], dtype=getattr(torch, dtype))
    ty = torch.tensor([b], dtype=getattr(torch, dtype), requires_grad=True)
    (x / y).sum().backward()
    (tx / ty).sum().backward()
    same(y.grad, ty.grad, rtol=1e-6 if dtype == "float32" else 1e-14)
    assert np.isfinite(y.grad.data).all()


def test_pow_exponent_gradient_is_taken_in_the_result_dtype() -> None:
    base = np.array([0.3, 1.7, 2.9], dtype=np.float32)
    exponent = np.array([1.1, -0.7, 2.3])
    a = tn.tensor(base, requires_grad=True)
    b = tn.tensor(exponent, requires_grad=True)
    ta = torch.tensor(base, requires_grad=True)
    tb = torch.tensor(exponent, requires_grad=True)
    out, tout = a**b, ta**tb
    assert out.dtype == np.float64 and tout.dtype == torch.float64
    out.sum().backward()
    tout.sum().backward()
    same(b.grad, tb.grad, rtol=1e-14)
    same(a.grad, ta.grad, rtol=1e-6)


# ---- 7 and 12: empty tensors --------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["mse_loss", "binary_cross_entropy",
                                  "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_of_empty_tensors_are_torchs(loss: str, reduction: str) -> None:
    for shape in [(0,), (2, 0)]:
        x, tx = t64(np.zeros(shape), requires_grad=True)
        ours = getattr(F, loss)(x, np.zeros(shape), reduction=reduction)
        theirs = getattr(TF, loss)(tx, torch.zeros(shape, dtype=torch.float64),
                                   reduction=reduction)
        same(ours, theirs)
        ours.sum().backward()
        theirs.sum().backward()
        same(x.grad, tx.grad)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_a_zero_size_dim_is_empty(name: str) -> None:
    for shape, dim in [((3, 0), 1), ((0, 3), 0), ((0, 3), 1), ((2, 0, 4), -1)]:
        x, tx = t64(np.zeros(shape), requires_grad=True)
        ours, theirs = getattr(F, name)(x, dim=dim), getattr(TF, name)(tx, dim=dim)
        same(ours, theirs)
        ours.sum().backward()
        theirs.sum().backward()
        same(x.grad, tx.grad)


def test_flatten_and_reductions_of_empty_tensors_are_torchs() -> None:
    x, tx = t64(np.zeros((0, 3)), requires_grad=True)
    same(x.flatten(1), tx.flatten(1))
    same(x.flatten(), tx.flatten())
    same(tn.zeros(2, 0, 3).flatten(0, 1), torch.zeros(2, 0, 3).flatten(0, 1))
    for ours, theirs in [(x.sum(), tx.sum()), (x.mean(), tx.mean()), (x.mean(0), tx.mean(0)),
                         (x.sum(1), tx.sum(1)), (x.amax(1), tx.amax(1)),
                         (x.amin(1), tx.amin(1))]:
        same(ours, theirs)
        ours.sum().backward()
        theirs.sum().backward()
        same(x.grad, tx.grad)
        x.grad = tx.grad = None
    for ours_call, theirs_call in [(lambda: x.max(), lambda: tx.max()),
                                   (lambda: x.amax(0), lambda: tx.amax(0)),
                                   (lambda: x.min(), lambda: tx.min())]:
        with pytest.raises((RuntimeError, IndexError)):
            theirs_call()
        with pytest.raises(tn.TinynetError, match="empty"):
            ours_call()


# ---- 11: bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["no", "", 1, 0, np.array(True), np.bool_(True), None, 1.0])
def test_requires_grad_refuses_anything_but_a_bool_as_torch(flag: Any) -> None:
    with pytest.raises(TypeError):
        torch.zeros(2).requires_grad_(flag)
    x = tn.zeros(2)
    with pytest.raises(tn.DTypeError, match="must be bool"):
        x.requires_grad_(flag)
    assert not x.requires_grad
    assert x.requires_grad_(True).requires_grad and not x.requires_grad_(False).requires_grad


@pytest.mark.parametrize("sizes", [(2**70, 3), (3, 2**70), (2**40, 2**40)])
def test_a_linear_layer_too_big_for_any_array_is_refused(sizes: tuple[int, int]) -> None:
    with pytest.raises(tn.ValueRangeError, match="Linear: .*more elements than an array"):
        nn.Linear(*sizes)


# ---- worth deciding: views to the same shape are new tensors -----------------------------------


@pytest.mark.parametrize("make", ["reshape", "view", "expand", "broadcast_to", "flatten",
                                  "squeeze"])
def test_a_view_to_the_same_shape_is_a_new_tensor_sharing_memory(make: str) -> None:
    def view(x: Any) -> Any:
        return {"reshape": lambda: x.reshape(x.shape), "view": lambda: x.view(x.shape),
                "expand": lambda: x.expand(x.shape),
                "broadcast_to": lambda: (x.expand(x.shape) if isinstance(x, torch.Tensor)
                                         else x.broadcast_to(x.shape)),
                "flatten": lambda: x.flatten(), "squeeze": lambda: x.squeeze()}[make]()

    x, tx = tn.arange(3.0), torch.arange(3.0)
    y, ty = view(x), view(tx)
    assert (y is x) == (ty is tx)
    if make == "flatten":  # flattening one dim returns the input itself, in PyTorch too
        assert y is x
        return
    y.requires_grad_(True)
    ty.requires_grad_(True)
    assert x.requires_grad == tx.requires_grad == False  # noqa: E712
    with tn.no_grad():
        x.add_(1.0)
    assert np.shares_memory(x.data, y.data) and y._version.value == x._version.value == 1
    leaf = tn.arange(3.0).requires_grad_()
    out = view(leaf)
    assert out is not leaf and out.grad_fn is not None and not out.is_leaf
    with pytest.raises(tn.GraphError):
        out.requires_grad_(False)


# ---- non-finite inputs: PyTorch's numbers, and no numpy warning from inside an op --------------


@pytest.mark.parametrize("name", ["max", "softmax", "log_softmax"])
def test_nan_and_inf_inputs_give_torchs_values_and_gradients_without_warnings(name: str) -> None:
    rows = [[np.nan, 1.0, 2.0], [np.inf, 1.0, -np.inf], [0.5, 0.5, -1.0]]
    x, tx = t64(rows, requires_grad=True)
    weights = np.random.default_rng(3).standard_normal((3, 3))
    with np.errstate(all="raise"):
        ours = x.amax(1) if name == "max" else getattr(F, name)(x, dim=1)
        (ours * (weights[:, 0] if name == "max" else weights)).sum().backward()
    theirs = tx.amax(1) if name == "max" else getattr(TF, name)(tx, dim=1)
    (theirs * torch.tensor(weights[:, 0] if name == "max" else weights)).sum().backward()
    same(ours, theirs)
    same(x.grad, tx.grad)


NAN_EXTREMES = {
    "one-nan": [1.0, np.nan, 3.0],
    "nan-ties": [np.nan, 2.0, np.nan, 3.0, 3.0],
    "nan-and-inf": [np.inf, np.nan, -np.inf, np.nan],
    "no-nan-ties": [3.0, -1.0, 3.0, -1.0],
    "rows": [[1.0, np.nan, 2.0], [np.nan, np.nan, 0.0], [4.0, 4.0, -1.0], [-2.0, 5.0, 5.0]],
}
NAN_FORMS = {
    "max()": (lambda t: t.max(), lambda t: t.max()),
    "min()": (lambda t: t.min(), lambda t: t.min()),
    "tn.max(x)": (lambda t: tn.max(t), lambda t: torch.max(t)),
    "amax()": (lambda t: t.amax(), lambda t: t.amax()),
    "amin()": (lambda t: t.amin(), lambda t: t.amin()),
    "amax(-1)": (lambda t: t.amax(-1), lambda t: t.amax(-1)),
    "amin(-1, keepdim)": (lambda t: t.amin(-1, keepdim=True), lambda t: t.amin(-1, keepdim=True)),
    "max(-1)": (lambda t: t.max(-1).values, lambda t: t.max(-1).values),
    "min(0)": (lambda t: t.min(0).values, lambda t: t.min(0).values),
    "max(-1).indices": (lambda t: t.max(-1).indices, lambda t: t.max(-1).indices),
}


@pytest.mark.parametrize("values", list(NAN_EXTREMES))
@pytest.mark.parametrize("form", list(NAN_FORMS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extremes_over_nan_route_the_gradient_as_torch(values: str, form: str,
                                                       dtype: type) -> None:
    """PyTorch's rules, found by running it: full max()/min() split the gradient evenly among
    the NaN elements (its evenly_distribute_backward), amax/amin give a group whose extreme
    is NaN a NaN gradient (0/0: no element equals NaN), max(dim) sends it to the first NaN."""
    array = np.array(NAN_EXTREMES[values], dtype=dtype)
    ours_fn, torch_fn = NAN_FORMS[form]
    x, tx = tn.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)
    ours, theirs = ours_fn(x), torch_fn(tx)
    same(ours, theirs)
    if form.endswith("indices"):
        return
    weights = np.arange(1.0, ours.data.size + 1).reshape(ours.shape).astype(dtype)
    with np.errstate(all="raise"):  # and no numpy warning on the way
        ours.backward(tn.tensor(weights))
    theirs.backward(torch.from_numpy(weights))
    same(x.grad, tx.grad)
