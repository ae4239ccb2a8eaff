"""The "tinynet-compiled" implementation: the eager workloads, run through ``tn.compile``.

It is registered only when ``hasattr(tinynet, "compile")``; until ``tn.compile`` exists the
factories below return nothing and the tables, the JSON, ``compare`` and the plot show the
implementations that do exist. Nothing else in ``benchmarks/`` names this module's classes:
adding or changing a compiled implementation happens here.

The interface an implementation provides (the same as ``tinynet_impl``'s eager classes, which
the workloads already know how to check and time):

- MLP workloads (``mlp_factories``): built as ``cls(spec, params, x, y, lr)`` from the shared
  numpy data; ``step()`` runs one SGD training step; ``loss_value() -> float`` is the loss of
  the last step (checked against numpy after steps 1 and 2); optional ``check_dtypes()``
  raises when a parameter, gradient or the loss leaves the workload's dtype.
- Chain workloads (``chain_factories``): built as ``cls(x, a, b)``; ``step()`` computes
  ``tanh(sigmoid(x * a + b)).sum()`` and its backward; ``loss_value() -> float``;
  ``grad_value() -> np.ndarray`` is ``x.grad`` as an array; optional ``check_dtypes()``.

- Conv workloads (``lenet_factories``): built as ``cls(spec, weights, x, y, lr)``; the
  interface of ``tinynet_impl.TinynetLeNet``. Under ``tn.compile`` the convolutions and
  pools run as opaque steps (their own forward and backward, as in eager mode); the linear
  layers, activations, loss and SGD are generated code.

The compiled step is the eager step written as the function ``tn.compile`` takes (the
``@tn.compile def train_step(x, y)`` form of its issue): it reads the model and optimizer
from its scope, so the module, parameters and optimizer state stay the eager ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .numpy_conv import LeNetSpec
from .numpy_ref import MLPSpec, Params
from .tinynet_impl import TinynetChain, TinynetLeNet, TinynetMLP

NAME = "tinynet-compiled"


def available() -> bool:
    """True when tinynet imports and has ``compile``."""
    try:
        tn = importlib.import_module("tinynet")
    except Exception:  # an unimportable tinynet is reported by the eager implementation
        return False
    return hasattr(tn, "compile")


class CompiledMLP(TinynetMLP):
    """``TinynetMLP`` with its training step wrapped by ``tn.compile``."""

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        super().__init__(spec, params, x, y, lr)
        self.train_step = self.tn.compile(self._eager_step, background=False)

    def _eager_step(self, x: Any, y: Any) -> Any:
        self.opt.zero_grad()
        out = self.model(x)
        loss = self.F.mse_loss(out, y) if self.mse else self.F.cross_entropy(out, y)
        loss.backward()
        self.opt.step()
        return loss

    def step(self) -> None:
        self.loss = self.train_step(self.x, self.y)


class CompiledChain(TinynetChain):
    """``TinynetChain`` with its forward + backward wrapped by ``tn.compile``."""

    def __init__(self, x: np.ndarray, a: float, b: float) -> None:
        super().__init__(x, a, b)
        self.forward_backward = importlib.import_module("tinynet").compile(
            self._eager_step, background=False)

    def _eager_step(self, x: Any) -> Any:
        x.grad = None
        loss = (x * self.a + self.b).sigmoid().tanh().sum()
        loss.backward()
        return loss

    def step(self) -> None:
        self.loss = self.forward_backward(self.x)


class CompiledLeNet(TinynetLeNet):
    """``TinynetLeNet`` with its training step wrapped by ``tn.compile``."""

    def __init__(
        self,
        spec: LeNetSpec,
        weights: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        lr: float,
    ) -> None:
        super().__init__(spec, weights, x, y, lr)
        self.train_step = importlib.import_module("tinynet").compile(
            self._eager_step, background=False)

    def _eager_step(self, x: Any, y: Any) -> Any:
        self.opt.zero_grad()
        loss = self.F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def step(self) -> None:
        self.loss = self.train_step(self.x, self.y)


def lenet_factories(
    spec: LeNetSpec, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, lr: float
) -> dict[str, Callable[[], Any]]:
    """``{NAME: factory}`` for a conv workload, or ``{}`` while ``tn.compile`` is missing."""
    if not available():
        return {}
    return {NAME: lambda: CompiledLeNet(spec, weights, x, y, lr)}


def mlp_factories(
    spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float
) -> dict[str, Callable[[], Any]]:
    """``{NAME: factory}`` for an MLP workload, or ``{}`` while ``tn.compile`` is missing."""
    if not available():
        return {}
    return {NAME: lambda: CompiledMLP(spec, params, x, y, lr)}


def chain_factories(x: np.ndarray, a: float, b: float) -> dict[str, Callable[[], Any]]:
    """``{NAME: factory}`` for a chain workload, or ``{}`` while ``tn.compile`` is missing."""
    if not available():
        return {}
    return {NAME: lambda: CompiledChain(x, a, b)}
