"""The peer columns: what a user would pick instead of ``tn.compile``.

- ``torch.compile``: the torch implementation with its model and loss wrapped by
  ``torch.compile`` (inductor, the default backend; it writes and compiles C++ for the CPU, so
  it needs a C++ compiler). Backward runs through the compiled graph's backward; the optimizer
  step stays eager, as in most user code.
- ``jax.jit``: the MLP step written in jax (``value_and_grad`` and an SGD update under one
  ``jax.jit``, parameters donated), float64 with ``jax_enable_x64``. jax is not a dependency;
  without it the column is skipped with a note.

Both are optional: a factory raises ``harness.Skip`` (listed under the table as skipped, not
a failure) when the library is absent, when ``--no-peers`` was given, or when compilation
fails on its first call. A compiled step that runs but computes different numbers is a
failure like any other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from . import torch_ref
from .harness import Skip
from .numpy_conv import LeNetSpec
from .numpy_ref import MLPSpec, Params

TORCH_COMPILE = "torch.compile"
JAX_JIT = "jax.jit"
NAMES = (TORCH_COMPILE, JAX_JIT)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class _CompiledOnFirstCall:
    """Turns an exception raised while a peer compiles (its first calls) into ``Skip``."""

    compiled_calls = 0

    def _guarded(self, run: Callable[[], None], what: str) -> None:
        if self.compiled_calls >= 2:
            run()
            return
        try:
            run()
        except Exception as exc:  # the peer's compiler failed: a note, not a failure
            raise Skip(f"{what} failed on this machine: {_first_line(exc)}") from exc
        self.compiled_calls += 1


def _torch_compile(torch: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    compile_ = getattr(torch, "compile", None)
    if compile_ is None:
        raise Skip(f"torch {torch.__version__} has no torch.compile (needs torch 2.0+)")
    return compile_(fn)


class TorchCompiledMLP(torch_ref.TorchMLP, _CompiledOnFirstCall):
    """``torch_ref.TorchMLP`` with model + loss under ``torch.compile``."""

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        super().__init__(spec, params, x, y, lr)
        model, F, mse = self.model, self.F, self.mse

        def forward_loss(x: Any, y: Any) -> Any:
            out = model(x)
            return F.mse_loss(out, y) if mse else F.cross_entropy(out, y)

        self.forward_loss = _torch_compile(self.torch, forward_loss)

    def _step(self) -> None:
        self.opt.zero_grad()
        loss = self.forward_loss(self.x, self.y)
        loss.backward()
        self.opt.step()
        self.loss = loss

    def step(self) -> None:
        self._guarded(self._step, TORCH_COMPILE)


class TorchCompiledLeNet(torch_ref.TorchLeNet, _CompiledOnFirstCall):
    """``torch_ref.TorchLeNet`` with model + loss under ``torch.compile``."""

    def __init__(
        self,
        spec: LeNetSpec,
        weights: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        lr: float,
    ) -> None:
        super().__init__(spec, weights, x, y, lr)
        model, F = self.model, self.F
        self.forward_loss = _torch_compile(
            torch_ref.load_torch(), lambda x, y: F.cross_entropy(model(x), y)
        )

    def _step(self) -> None:
        self.opt.zero_grad()
        loss = self.forward_loss(self.x, self.y)
        loss.backward()
        self.opt.step()
        self.loss = loss

    def step(self) -> None:
        self._guarded(self._step, TORCH_COMPILE)


def load_jax() -> Any:
    """Import jax (its XLA threads follow ``--cores`` through XLA_FLAGS), float64 enabled."""
    try:
        jax = importlib.import_module("jax")
    except ImportError as exc:
        raise Skip(f"jax not installed ({exc}); pip install 'jax[cpu]' to add this column") from exc
    jax.config.update("jax_enable_x64", True)
    return jax


class JaxMLP(_CompiledOnFirstCall):
    """The MLP step in jax: sigmoid layers, MSE or softmax cross-entropy, SGD, one ``jax.jit``.

    ``step()`` waits for the result (``block_until_ready``): jax dispatches asynchronously, and
    a step that returned before its work finished would time nothing.
    """

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        jax = load_jax()
        jnp = jax.numpy
        self.jax = jax
        self.dtype = np.dtype(spec.dtype)
        last, mse, batch = len(params) - 1, spec.loss == "mse", x.shape[0]
        lr = float(lr)

        def loss_fn(weights: Any, x: Any, y: Any) -> Any:
            h = x
            for i, (w, b) in enumerate(weights):
                h = h @ w.T + b
                if i < last or mse:
                    h = jax.nn.sigmoid(h)
            if mse:
                return jnp.mean((h - y) ** 2)
            return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(batch), y])

        def sgd_step(weights: Any, x: Any, y: Any) -> Any:
            loss, grads = jax.value_and_grad(loss_fn)(weights, x, y)
            new = jax.tree_util.tree_map(lambda p, g: p - lr * g, weights, grads)
            return new, loss

        self._jitted = jax.jit(sgd_step, donate_argnums=0)
        self.weights = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self.loss: Any = None

    def _step(self) -> None:
        self.weights, self.loss = self._jitted(self.weights, self.x, self.y)
        self.loss.block_until_ready()

    def step(self) -> None:
        self._guarded(self._step, JAX_JIT)

    def loss_value(self) -> float:
        return float(self.loss)

    def check_dtypes(self) -> None:
        for w, b in self.weights:
            for array in (w, b):
                if np.dtype(array.dtype) != self.dtype:
                    raise AssertionError(f"jax parameter is {array.dtype}, expected {self.dtype}")
        if np.dtype(self.loss.dtype) != self.dtype:
            raise AssertionError(f"jax loss is {self.loss.dtype}, expected {self.dtype}")


def _skipped(reason: str) -> Callable[[], Any]:
    def factory() -> Any:
        raise Skip(reason)

    return factory


def mlp_factories(
    enabled: bool, torch_error: str | None, spec: MLPSpec, params: Params, x: np.ndarray,
    y: np.ndarray, lr: float,
) -> dict[str, Callable[[], Any]]:
    """``{name: factory}`` for the peer columns of an MLP workload (factories may ``Skip``)."""
    if not enabled:
        return {name: _skipped("left out by --no-peers") for name in NAMES}
    torch_factory = (
        _skipped(f"torch not importable: {torch_error}")
        if torch_error
        else lambda: TorchCompiledMLP(spec, params, x, y, lr)
    )
    return {TORCH_COMPILE: torch_factory, JAX_JIT: lambda: JaxMLP(spec, params, x, y, lr)}


def lenet_factories(
    enabled: bool, torch_error: str | None, spec: LeNetSpec, weights: dict[str, np.ndarray],
    x: np.ndarray, y: np.ndarray, lr: float,
) -> dict[str, Callable[[], Any]]:
    """``{torch.compile: factory}`` for a LeNet workload (no jax LeNet is written)."""
    if not enabled:
        return {TORCH_COMPILE: _skipped("left out by --no-peers")}
    if torch_error:
        return {TORCH_COMPILE: _skipped(f"torch not importable: {torch_error}")}
    return {TORCH_COMPILE: lambda: TorchCompiledLeNet(spec, weights, x, y, lr)}

