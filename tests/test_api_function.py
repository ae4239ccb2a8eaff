"""A ``Function`` written for PyTorch runs unchanged: its ``forward`` receives Tensors (issue 21).

The two Functions of PyTorch's "Learning PyTorch with Examples" (``MyReLU`` with
``input.clamp(min=0)`` and ``LegendrePolynomial3``) are written here exactly as there, with
``tn`` for ``torch``; their values and gradients are checked against torch and central
differences. tinynet's own ops keep receiving numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.autograd import Function


def make_functions(lib: Any) -> tuple[type, type, type]:
    """The tutorial's Functions, written against ``lib`` (tinynet or torch)."""

    class MyReLU(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, input: Any) -> Any:
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            (input,) = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, input: Any) -> Any:
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    class ScaledExp(lib.autograd.Function):  # saves its output; a non-tensor argument
        @staticmethod
        def forward(ctx: Any, input: Any, scale: float) -> Any:
            out = input.exp() * scale
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            (out,) = ctx.saved_tensors
            return grad_output * out, None

    return MyReLU, LegendrePolynomial3, ScaledExp


def test_forward_receives_tensors_and_runs_without_recording() -> None:
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            seen["type"], seen["grad"] = type(x), tn.is_grad_enabled()
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return grad * 2

    x = tn.tensor([1.0, -2.0], requires_grad=True)
    y = Probe.apply(x)
    assert seen == {"type": tn.Tensor, "grad": False}
    assert y.grad_fn is not None and type(y.grad_fn).__name__ == "Probe"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_tinynet_own_ops_still_receive_arrays() -> None:
    from tinynet.ops.elementwise import Mul

    seen = []
    original = Mul.forward

    def spy(ctx: Any, *arrays: Any, **options: Any) -> Any:
        seen.extend(type(a) for a in arrays)
        return original(ctx, *arrays, **options)

    Mul.forward = staticmethod(spy)  # type: ignore[method-assign]
    try:
        tn.ones(2) * tn.ones(2)
    finally:
        Mul.forward = staticmethod(original)  # type: ignore[method-assign]
    assert seen == [np.ndarray, np.ndarray]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_tutorials_functions_match_torch_and_central_differences(index: int) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = make_functions(tn)[index], make_functions(torch)[index]
    args = (2.5,) if index == 2 else ()
    values = np.random.default_rng(index).uniform(-1.5, 1.5, size=(3, 4))
    x = tn.tensor(values, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    y, ty = ours.apply(x, *args), theirs.apply(tx, *args)
    weights = np.random.default_rng(9).normal(size=(3, 4))
    (y * tn.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    scale = 1 + np.abs(ty.detach().numpy()).max()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12,
                               atol=1e-12 * (1 + np.abs(tx.grad.numpy()).max()))
    if index != 0:  # relu has a kink; the smooth ones are checked numerically too
        assert tn.gradcheck(lambda t: ours.apply(t, *args), [tn.tensor(values,
                                                                      requires_grad=True)])


def test_the_legendre_tutorial_trains_as_in_pytorch() -> None:
    """The tutorial's loop (y = a + b P3(c + d x)), a few hundred steps, same numbers."""
    torch = pytest.importorskip("torch")

    def train(lib: Any) -> list[float]:
        P3 = make_functions(lib)[1]
        x = lib.linspace(-np.pi, np.pi, 2000, dtype=lib.float64)
        y = lib.sin(x)
        a, b, c, d = (lib.full((), v, dtype=lib.float64, requires_grad=True)
                      for v in (0.0, -1.0, 0.0, 0.3))
        for _ in range(300):
            y_pred = a + b * P3.apply(c + d * x)
            loss = ((y_pred - y) ** 2).sum()
            loss.backward()
            with lib.no_grad():
                for p in (a, b, c, d):
                    p -= 5e-6 * p.grad
                    p.grad = None
        return [float(p.item()) for p in (a, b, c, d, loss)]

    ours, theirs = train(tn), train(torch)
    # a and c stay near 0 (odd target): compare against the largest value, not themselves
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12 * max(map(abs, theirs)))


def test_saving_an_intermediate_is_refused_naming_what_may_be_saved() -> None:
    class SavesTemp(Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x * 3)
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return grad * 2

    with pytest.raises(tn.TinynetError, match="save"):
        SavesTemp.apply(tn.ones(2, requires_grad=True))
