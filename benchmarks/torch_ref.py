"""PyTorch CPU versions of the workloads, written the idiomatic way.

torch is optional: nothing here imports it at module level. Call ``load_torch()`` first; it
returns the module or raises ImportError, and sets torch's threads (``threads.limit_torch``:
two intra-op threads, or ``--cores``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import threads
from .numpy_conv import LENET_INDEX, LeNetSpec
from .numpy_ref import MLPSpec, Params


def load_torch() -> Any:
    """Import torch lazily and set its thread counts (see ``threads``)."""
    import torch

    threads.limit_torch(torch)
    return torch


def _torch_dtype(torch: Any, dtype: np.dtype) -> Any:
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]


class TorchMLP:
    """nn.Sequential of Linear/Sigmoid, MSE or cross-entropy loss, optim.SGD(lr)."""

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        torch = load_torch()
        self.torch = torch
        self.F = torch.nn.functional
        layers: list[Any] = []
        for i, (w, _) in enumerate(params):
            layers.append(torch.nn.Linear(w.shape[1], w.shape[0]))
            if i < len(params) - 1 or spec.loss == "mse":
                layers.append(torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers).to(_torch_dtype(torch, spec.dtype))
        linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for layer, (w, b) in zip(linears, params, strict=True):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y)
        self.mse = spec.loss == "mse"
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss: Any = None

    def step(self) -> None:
        self.opt.zero_grad()
        out = self.model(self.x)
        loss = self.F.mse_loss(out, self.y) if self.mse else self.F.cross_entropy(out, self.y)
        loss.backward()
        self.opt.step()
        self.loss = loss

    def loss_value(self) -> float:
        return float(self.loss.item())


class TorchChain:
    """``y = tanh(sigmoid(x * a + b)); y.sum().backward()``; the gradient lands in x.grad."""

    def __init__(self, x: np.ndarray, a: float, b: float) -> None:
        torch = load_torch()
        self.x = torch.from_numpy(x).requires_grad_(True)
        self.a = float(a)
        self.b = float(b)
        self.loss: Any = None

    def step(self) -> None:
        self.x.grad = None
        loss = (self.x * self.a + self.b).sigmoid().tanh().sum()
        loss.backward()
        self.loss = loss

    def loss_value(self) -> float:
        return float(self.loss.item())

    def grad_value(self) -> np.ndarray:
        return self.x.grad.numpy()


class TorchLeNet:
    """The LeNet step of ``numpy_conv`` in PyTorch (its oneDNN convolutions: the upper anchor)."""

    def __init__(
        self,
        spec: LeNetSpec,
        weights: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        lr: float,
    ) -> None:
        torch = load_torch()
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(spec.shapes["fc1"][1], 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, spec.classes),
        ).to(_torch_dtype(torch, spec.dtype))  # fmt: skip
        self.names = {}
        for key in weights:
            layer, kind = key.split(".")
            self.names[key] = f"{LENET_INDEX[layer]}.{kind}"
        self.model.load_state_dict(
            {self.names[k]: torch.from_numpy(v.copy()) for k, v in weights.items()}
        )
        self.parameters = dict(self.model.named_parameters())
        self.F = torch.nn.functional
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss: Any = None

    def step(self) -> None:
        self.opt.zero_grad()
        loss = self.F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        self.loss = loss

    def loss_value(self) -> float:
        return float(self.loss.item())

    def grads(self) -> dict[str, np.ndarray]:
        return {key: self.parameters[name].grad.numpy() for key, name in self.names.items()}
