"""Training steps as a new user would write them: no numpy reference, tinynet against torch.

- ``cnn-dropout-adam-f32``: a small CNN on digits-sized images (batch 64 of 1x8x8, 10
  classes): conv 3x3 1->8 (padding 1), ReLU, max pool 2, conv 3x3 8->16 (padding 1), ReLU,
  max pool 2, flatten 64, Dropout(0.25), 64-64 ReLU, Dropout(0.25), 64-10; softmax
  cross-entropy; ``optim.Adam(lr=1e-3)``.
- ``mlp-adamw-accum-f32``: 64-256-256-10 with ReLU; gradient accumulation over 4 micro-batches
  of 16 (each loss divided by 4, ``backward`` per micro-batch), ``clip_grad_norm_(max_norm=0.25)``,
  ``optim.AdamW(lr=1e-3, weight_decay=0.01)``; the step returns the summed micro-batch losses.

Implementations: ``tinynet`` (eager), ``tinynet-compiled`` (the same step under ``tn.compile``;
a ``CompileError`` becomes the column's skip reason), ``torch`` (eager) and ``torch.compile``
(the model compiled). Each is built as ``cls(spec, state, x, y)`` from the same numpy
weights (``state``: a state dict of ``nn.Sequential`` keys) and batch; ``step()``,
``loss_value()``, ``train(mode)``.

Checked before timing: with dropout off (``train(False)``) every implementation's loss after
each of three steps (Adam's update included) agrees with the reference's (torch when it
imports, else tinynet eager); then in training mode three more steps give finite losses,  not all
three of the CNN's equal to their dropout-off values (dropout really on).
Dropout's masks come from each library's own generator, so training-mode numbers are not
compared.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import torch_ref
from .harness import Skip
from .peers import TORCH_COMPILE, _first_line

COMPILED = "tinynet-compiled"


@dataclass(frozen=True)
class CNNSpec:
    """The small CNN with Dropout and Adam."""

    name: str = "cnn-dropout-adam-f32"
    batch: int = 64
    side: int = 8
    classes: int = 10
    dropout: float = 0.25
    lr: float = 1e-3
    dtype: np.dtype = np.dtype(np.float32)

    def layers(self, nn: Any) -> list[Any]:
        flat = 16 * (self.side // 4) ** 2
        return [
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Dropout(self.dropout), nn.Linear(flat, 64), nn.ReLU(),
            nn.Dropout(self.dropout), nn.Linear(64, self.classes),
        ]  # fmt: skip

    def shapes(self) -> dict[int, tuple[int, ...]]:
        """Weight shape per Sequential index (the bias is the first dimension)."""
        return {0: (8, 1, 3, 3), 3: (16, 8, 3, 3), 8: (64, 16 * (self.side // 4) ** 2),
                11: (self.classes, 64)}

    def data(self, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.batch, 1, self.side, self.side)).astype(self.dtype)
        return x, rng.integers(0, self.classes, size=self.batch, dtype=np.int64)


@dataclass(frozen=True)
class AccumSpec:
    """The MLP with AdamW, weight decay, gradient accumulation and gradient clipping."""

    name: str = "mlp-adamw-accum-f32"
    sizes: tuple[int, ...] = (64, 256, 256, 10)
    micro_batch: int = 16
    micro_batches: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.01
    max_norm: float = 0.25
    dtype: np.dtype = np.dtype(np.float32)

    @property
    def batch(self) -> int:
        return self.micro_batch * self.micro_batches

    def layers(self, nn: Any) -> list[Any]:
        out: list[Any] = []
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            out.append(nn.Linear(a, b))
            if i < len(self.sizes) - 2:
                out.append(nn.ReLU())
        return out

    def shapes(self) -> dict[int, tuple[int, ...]]:
        return {2 * i: (b, a) for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:],
                                                            strict=True))}

    def data(self, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.batch, self.sizes[0])).astype(self.dtype)
        return x, rng.integers(0, self.sizes[-1], size=self.batch, dtype=np.int64)


Spec = CNNSpec | AccumSpec


def initial_state(spec: Spec, seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch's default init for every layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
    rng = np.random.default_rng(seed)
    state = {}
    for index, shape in spec.shapes().items():
        bound = 1.0 / math.sqrt(math.prod(shape[1:]))
        state[f"{index}.weight"] = rng.uniform(-bound, bound, shape).astype(spec.dtype)
        state[f"{index}.bias"] = rng.uniform(-bound, bound, shape[:1]).astype(spec.dtype)
    return state


# --------------------------------------------------------------------------- the step, once


def train_step(lib: Any, spec: Spec, model: Any, opt: Any, batch: tuple[Any, ...]) -> Any:
    """The training step, written once for both libraries (``lib`` is tinynet or torch).

    CNN: ``batch = (x, y)``. MLP: ``batch = (x_1..x_k, y_1..y_k)`` for k micro-batches.
    Returns the loss (the CNN) or the summed micro-batch losses (the MLP), detached.
    """
    F = lib.nn.functional
    opt.zero_grad()
    if isinstance(spec, CNNSpec):
        x, y = batch
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    k = spec.micro_batches
    total = None
    for x, y in zip(batch[:k], batch[k:], strict=True):
        loss = F.cross_entropy(model(x), y) / k
        loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    lib.nn.utils.clip_grad_norm_(model.parameters(), spec.max_norm)
    opt.step()
    return total


def _split(spec: Spec, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    if isinstance(spec, CNNSpec):
        return x, y
    m, k = spec.micro_batch, spec.micro_batches
    parts = [slice(i * m, (i + 1) * m) for i in range(k)]
    return (*(x[part] for part in parts), *(y[part] for part in parts))


def _optimizer(lib: Any, spec: Spec, params: Any) -> Any:
    if isinstance(spec, CNNSpec):
        return lib.optim.Adam(params, lr=spec.lr)
    return lib.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)


class _Impl:
    """What the implementations share: the step, the loss, the training switch."""

    lib: Any
    model: Any
    spec: Spec
    loss: Any = None

    def _setup(self, lib: Any, spec: Spec, state: dict[str, np.ndarray], x: np.ndarray,
               y: np.ndarray, to_tensor: Callable[[np.ndarray], Any]) -> None:
        self.lib, self.spec = lib, spec
        self.model = lib.nn.Sequential(*spec.layers(lib.nn))
        if spec.dtype == np.float64:
            self.model.double()
        self.model.load_state_dict({k: to_tensor(v.copy()) for k, v in state.items()})
        self.opt = _optimizer(lib, spec, self.model.parameters())
        self.batch = tuple(to_tensor(np.ascontiguousarray(a)) for a in _split(spec, x, y))

    def eager_step(self, *batch: Any) -> Any:
        return train_step(self.lib, self.spec, self.model, self.opt, batch)

    def step(self) -> None:
        self.loss = self.eager_step(*self.batch)

    def train(self, mode: bool) -> None:
        self.model.train(mode)

    def loss_value(self) -> float:
        return float(self.loss.item())


class TinynetStep(_Impl):
    """The step in tinynet, eager."""

    def __init__(self, spec: Spec, state: dict[str, np.ndarray], x: np.ndarray,
                 y: np.ndarray) -> None:
        tn = importlib.import_module("tinynet")
        self._setup(tn, spec, state, x, y, tn.tensor)

    def check_dtypes(self) -> None:
        for name, p in self.model.named_parameters():
            for what, array in (("parameter", p.data), ("grad", p.grad.data)):
                if np.asarray(array).dtype != self.spec.dtype:
                    raise AssertionError(f"tinynet {what} of {name} is {np.asarray(array).dtype},"
                                         f" expected {self.spec.dtype}")


class TinynetCompiledStep(TinynetStep):
    """The same step under ``tn.compile``; a ``CompileError`` becomes a skip with its text."""

    def __init__(self, spec: Spec, state: dict[str, np.ndarray], x: np.ndarray,
                 y: np.ndarray) -> None:
        super().__init__(spec, state, x, y)
        self.compiled = self.lib.compile(self.eager_step, background=False)

    def step(self) -> None:
        try:
            self.loss = self.compiled(*self.batch)
        except self.lib.CompileError as exc:
            raise Skip(f"tn.compile refuses this step today: {exc}") from exc


class TorchStep(_Impl):
    """The step in PyTorch, eager."""

    def __init__(self, spec: Spec, state: dict[str, np.ndarray], x: np.ndarray,
                 y: np.ndarray) -> None:
        torch = torch_ref.load_torch()
        self._setup(torch, spec, state, x, y, torch.from_numpy)


class TorchCompiledStep(TorchStep):
    """The torch step with the model under ``torch.compile`` (loss, clipping and the optimizer
    eager, as in most user code)."""

    def __init__(self, spec: Spec, state: dict[str, np.ndarray], x: np.ndarray,
                 y: np.ndarray) -> None:
        super().__init__(spec, state, x, y)
        self.compiled_model = self.lib.compile(self.model)

    def eager_step(self, *batch: Any) -> Any:
        return train_step(self.lib, self.spec, self.compiled_model, self.opt, batch)

    def step(self) -> None:
        try:
            super().step()
        except Exception as exc:  # inductor failed (a first call, or a retrace): a note
            raise Skip(f"{TORCH_COMPILE} failed on this machine: {_first_line(exc)}") from exc
