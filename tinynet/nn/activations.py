"""Activation modules. Each wraps the op of the same name in ``tinynet.ops``."""

from __future__ import annotations

import warnings
from typing import Any

from tinynet import ops
from tinynet.nn.module import Module
from tinynet.tensor import Tensor


class Sigmoid(Module):
    """y = 1 / (1 + e^-x), elementwise."""


    def forward(self, input: Tensor) -> Tensor:
        return ops.sigmoid(input)


class Tanh(Module):
    """y = tanh(x), elementwise."""


    def forward(self, input: Tensor) -> Tensor:
        return ops.tanh(input)


class ReLU(Module):
    """y = max(x, 0), elementwise."""


    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        if inplace:
            raise NotImplementedError(
                "ReLU(inplace=True) is not supported: tinynet's activations always make a new "
                "tensor; use ReLU()"
            )

    def forward(self, input: Tensor) -> Tensor:
        return ops.relu(input)


class Step(Module):
    """Heaviside step: y = 1 where x >= 0, else 0 (McCulloch-Pitts / perceptron units).

    Its derivative is 0 everywhere, so nothing before it learns by gradient descent; a
    ``surrogate`` ("straight_through" or "sigmoid") substitutes a usable derivative in the
    backward pass (see ``tinynet.ops.step``).
    """

    def __init__(self, surrogate: str | None = None) -> None:
        super().__init__()
        if surrogate not in (None, "straight_through", "sigmoid"):
            raise ValueError(
                f"Step: surrogate must be None, 'straight_through' or 'sigmoid', got "
                f"{surrogate!r}"
            )
        self.surrogate = surrogate

    def forward(self, input: Tensor) -> Tensor:
        return ops.step(input, self.surrogate)

    def extra_repr(self) -> str:
        return "" if self.surrogate is None else f"surrogate={self.surrogate!r}"


class Softmax(Module):
    """y_i = e^(x_i) / sum_j e^(x_j) along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.softmax(input, implicit_dim(self.dim, input.ndim, "Softmax"))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """y_i = x_i - log sum_j e^(x_j) along ``dim`` (stable: max-shifted)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.log_softmax(input, implicit_dim(self.dim, input.ndim, "LogSoftmax"))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def implicit_dim(dim: Any, ndim: int, name: str) -> int:
    """PyTorch's legacy rule when softmax gets no ``dim``: 0 for 0-, 1- and 3-d inputs, else 1,
    with the same deprecation warning. Pass ``dim`` explicitly."""
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {name.lower()} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1
