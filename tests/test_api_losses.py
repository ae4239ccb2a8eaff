"""Losses, functions and small modules added for issue 21, against torch and central
differences: L1Loss, SmoothL1Loss, HuberLoss, KLDivLoss (and their F forms), F.normalize,
F.cosine_similarity, LeakyReLU, Unflatten, PixelShuffle, ParameterList, ParameterDict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn

F = nn.functional


def torch_or_skip() -> Any:
    return pytest.importorskip("torch")


def inputs(shape: tuple[int, ...], seed: int, ties: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 2
    t = rng.normal(size=shape) * 2
    if ties:  # differences exactly at the thresholds (0, 0.5, 1, 2) and equal elements
        flat_x, flat_t = x.reshape(-1), t.reshape(-1)
        for i, gap in enumerate([0.0, 0.5, 1.0, -1.0, 2.0, -0.5][: flat_x.size]):
            flat_t[i] = flat_x[i] - gap
    return x, t


def check_against_torch(ours: Any, theirs: Any, arrays: tuple[np.ndarray, ...],
                        grad_inputs: tuple[int, ...] = (0,), dtype: Any = np.float64) -> None:
    torch = torch_or_skip()
    tn_args = [tn.tensor(a.astype(dtype), requires_grad=i in grad_inputs)
               for i, a in enumerate(arrays)]
    th_args = [torch.tensor(a.astype(dtype), requires_grad=i in grad_inputs)
               for i, a in enumerate(arrays)]
    out, expected = ours(*tn_args), theirs(*th_args)
    assert out.dtype == np.dtype(dtype) and out.shape == tuple(expected.shape)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    e = expected.detach().numpy()
    np.testing.assert_allclose(out.data, e, rtol=rtol, atol=rtol * (1 + np.abs(e).max(
        initial=0)))
    weights = np.random.default_rng(7).normal(size=e.shape)
    (out * tn.tensor(weights.astype(dtype))).sum().backward()
    (expected * torch.tensor(weights.astype(dtype))).sum().backward()
    for i in grad_inputs:
        g = th_args[i].grad.numpy()
        np.testing.assert_allclose(tn_args[i].grad.data, g, rtol=rtol,
                                   atol=rtol * (1 + np.abs(g).max(initial=0)))


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name, options", [
    ("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {}), ("huber_loss", {"delta": 2.0}),
])
def test_elementwise_losses_match_torch(name: str, options: dict, reduction: str,
                                        ties: bool) -> None:
    torch = torch_or_skip()
    arrays = inputs((3, 4), 1, ties)
    check_against_torch(
        lambda x, t: getattr(F, name)(x, t, reduction=reduction, **options),
        lambda x, t: getattr(torch.nn.functional, name)(x, t, reduction=reduction, **options),
        arrays, grad_inputs=(0, 1))


@pytest.mark.parametrize("cls, options", [("L1Loss", {}), ("SmoothL1Loss", {"beta": 0.3}),
                                          ("HuberLoss", {"delta": 0.7}), ("KLDivLoss", {})])
def test_loss_modules_match_torch_in_float32(cls: str, options: dict) -> None:
    torch = torch_or_skip()
    x, t = inputs((5, 3), 2)
    if cls == "KLDivLoss":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
        t = np.exp(t) / np.exp(t).sum(1, keepdims=True)
    check_against_torch(getattr(nn, cls)(reduction="sum", **options),
                        getattr(torch.nn, cls)(reduction="sum", **options), (x, t),
                        dtype=np.float32)


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch_with_zero_probabilities(reduction: str, log_target: bool) -> None:
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(4, 5)), rng.uniform(size=(4, 5))
    target[0, :2] = 0.0  # 0 log 0 is 0
    target /= target.sum(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    if log_target:
        target = np.log(target + 0.1)
    check_against_torch(
        lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
        lambda x, t: torch.nn.functional.kl_div(x, t, reduction=reduction,
                                                log_target=log_target),
        (log_p, target), grad_inputs=(0,))


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize_matches_torch(p: float, dim: int) -> None:
    torch = torch_or_skip()
    x, _ = inputs((3, 4), 4)
    x[1] = 0.0  # a zero row: divided by eps, as in PyTorch
    check_against_torch(lambda a: F.normalize(a, p=p, dim=dim),
                        lambda a: torch.nn.functional.normalize(a, p=p, dim=dim), (x,))


@pytest.mark.parametrize("shapes, dim", [(((3, 4), (3, 4)), 1), (((3, 4), (1, 4)), 1),
                                         (((2, 3, 4), (2, 3, 4)), 0)])
def test_cosine_similarity_matches_torch(shapes: tuple, dim: int) -> None:
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    a, b = (rng.normal(size=s) for s in shapes)
    check_against_torch(lambda x, y: F.cosine_similarity(x, y, dim=dim),
                        lambda x, y: torch.nn.functional.cosine_similarity(x, y, dim=dim),
                        (a, b), grad_inputs=(0, 1))


def test_leaky_relu_matches_torch_at_zero_too() -> None:
    torch = torch_or_skip()
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0, -1e-3]])
    check_against_torch(lambda a: nn.LeakyReLU(0.2)(a), lambda a: torch.nn.LeakyReLU(0.2)(a),
                        (x,))
    check_against_torch(lambda a: F.leaky_relu(a), lambda a: torch.nn.functional.leaky_relu(a),
                        (x,))


@pytest.mark.parametrize("fn", [
    lambda x, t: F.smooth_l1_loss(x, t, beta=0.7),
    lambda x, t: F.huber_loss(x, t, delta=0.8),
    lambda x, t: F.kl_div(F.log_softmax(x, 1), F.softmax(t, 1), reduction="batchmean"),
    lambda x, t: F.normalize(x, dim=1).sum() + F.cosine_similarity(x, t).sum(),
])
def test_gradients_and_second_derivatives_against_central_differences(fn: Any) -> None:
    x, t = inputs((3, 4), 6)  # no ties: central differences need a smooth neighbourhood
    xt = tn.tensor(x, requires_grad=True)
    tt = tn.tensor(t, requires_grad=True)
    assert tn.gradcheck(fn, [xt, tt])
    assert tn.gradgradcheck(fn, [xt, tt])


def test_bad_arguments_are_refused_naming_the_function() -> None:
    with pytest.raises(tn.ValueRangeError, match="smooth_l1_loss: beta"):
        F.smooth_l1_loss(tn.ones(2), tn.ones(2), beta=-1.0)
    with pytest.raises(tn.ValueRangeError, match="huber_loss: delta"):
        F.huber_loss(tn.ones(2), tn.ones(2), delta=0.0)
    with pytest.raises(tn.ValueRangeError, match="kl_div: 'avg'"):
        F.kl_div(tn.ones(2), tn.ones(2), reduction="avg")
    with pytest.raises(tn.ShapeError, match="l1_loss: target shape"):
        F.l1_loss(tn.ones(2), tn.ones(3))


def test_unflatten_and_pixel_shuffle_match_torch() -> None:
    torch = torch_or_skip()
    x = np.random.default_rng(8).normal(size=(2, 12, 3, 2))
    check_against_torch(nn.Unflatten(1, (3, -1)), torch.nn.Unflatten(1, (3, -1)), (x,))
    check_against_torch(nn.Unflatten(-1, (1, 2)), torch.nn.Unflatten(-1, (1, 2)), (x,))
    check_against_torch(nn.PixelShuffle(2), torch.nn.PixelShuffle(2), (x,))
    with pytest.raises(tn.ShapeError, match="PixelShuffle: the channel count 12"):
        nn.PixelShuffle(3)(tn.tensor(x))


def test_parameter_list_and_dict_register_as_pytorchs() -> None:
    torch = torch_or_skip()

    def build(lib: Any) -> Any:
        class Net(lib.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.ws = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2, 2))
                                                for _ in range(2)])
                self.ws.append(lib.nn.Parameter(lib.zeros(2)))
                self.named = lib.nn.ParameterDict({"scale": lib.nn.Parameter(lib.ones(1))})
                self.named["shift"] = lib.nn.Parameter(lib.zeros(1))

        return Net()

    ours, theirs = build(tn), build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ws = ours.ws
    first = ws[0]
    ws[0] = tn.nn.Parameter(tn.full((2, 2), 3.0))
    assert list(ours.state_dict())[0] == "ws.0" and ws[0] is not first and len(ws) == 3
    assert [p.shape for p in ws] == [(2, 2), (2, 2), (2,)] and ws[-1] is ws[2]
    plain = tn.nn.ParameterList([tn.ones(3)])  # a plain Tensor becomes a Parameter
    assert isinstance(plain[0], tn.nn.Parameter) and plain[0].requires_grad
    named = ours.named
    assert named.keys() == ["scale", "shift"] and "scale" in named and len(named) == 2
    assert named.pop("scale").shape == (1,) and list(ours.state_dict())[-1] == "named.shift"
    with pytest.raises(KeyError):
        del named["missing"]
