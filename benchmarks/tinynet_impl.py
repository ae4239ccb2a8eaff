"""The workloads written with tinynet, the way its users would write them.

Nothing imports tinynet at module level. ``import_problem(part)`` says whether the part of
tinynet a workload needs imports, so the harness can print "tinynet not importable: ..." and
still time numpy and torch while tinynet is incomplete or broken.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from .numpy_conv import LENET_INDEX, LeNetSpec
from .numpy_ref import MLPSpec, Params

# What each kind of workload uses, as dotted paths below the ``tinynet`` package.
REQUIREMENTS = {
    "tensor": ("tensor",),
    "nn": (
        "tensor",
        "nn.Sequential",
        "nn.Linear",
        "nn.Sigmoid",
        "nn.functional.cross_entropy",
        "nn.functional.mse_loss",
        "optim.SGD",
    ),
    "perceptron": ("perceptron.Perceptron",),
    "conv": (
        "tensor",
        "nn.Sequential",
        "nn.Conv2d",
        "nn.MaxPool2d",
        "nn.ReLU",
        "nn.Flatten",
        "nn.Linear",
        "nn.functional.cross_entropy",
        "optim.SGD",
    ),
    "realistic": (
        "tensor",
        "nn.Sequential",
        "nn.Conv2d",
        "nn.MaxPool2d",
        "nn.ReLU",
        "nn.Flatten",
        "nn.Dropout",
        "nn.Linear",
        "nn.functional.cross_entropy",
        "nn.utils.clip_grad_norm_",
        "optim.Adam",
        "optim.AdamW",
    ),
}


def import_problem(part: str) -> str | None:
    """None if everything ``REQUIREMENTS[part]`` names is importable, else what is wrong."""
    try:
        tn = importlib.import_module("tinynet")
    except Exception as exc:  # any import failure is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    for dotted in REQUIREMENTS[part]:
        obj: Any = tn
        for attr in dotted.split("."):
            try:
                obj = getattr(obj, attr)
            except Exception as exc:  # e.g. a lazy submodule failing to import
                return f"tinynet.{dotted} is missing ({type(exc).__name__}: {exc})"
    return None


def _tinynet() -> Any:
    return importlib.import_module("tinynet")


class DtypeError(AssertionError):
    """A tinynet array came out in a dtype other than the workload's."""


def _expect_dtype(what: str, array: Any, dtype: np.dtype) -> None:
    actual = np.asarray(array).dtype
    if actual != dtype:
        raise DtypeError(f"tinynet {what} is {actual}, expected {np.dtype(dtype)}")


class TinynetMLP:
    """tn.nn.Sequential of Linear/Sigmoid, F.mse_loss or F.cross_entropy, tn.optim.SGD(lr)."""

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        tn = _tinynet()
        self.tn = tn
        self.F = tn.nn.functional
        self.dtype = np.dtype(spec.dtype)
        self.layers: list[Any] = []
        state: dict[str, np.ndarray] = {}
        for i, (w, b) in enumerate(params):
            state[f"{len(self.layers)}.weight"] = w.copy()
            state[f"{len(self.layers)}.bias"] = b.copy()
            self.layers.append(tn.nn.Linear(w.shape[1], w.shape[0]))
            if i < len(params) - 1 or spec.loss == "mse":
                self.layers.append(tn.nn.Sigmoid())
        self.model = tn.nn.Sequential(*self.layers)
        # Layers are created in the default dtype (float32), as in PyTorch: cast, then load.
        if self.dtype == np.float64:
            self.model.double()
        else:
            self.model.float()
        self.model.load_state_dict(state)
        for name, array in self.model.state_dict().items():
            loaded = array.data if hasattr(array, "data") else array
            _expect_dtype(f"parameter {name} after load_state_dict", loaded, self.dtype)
            if not np.array_equal(np.asarray(loaded), state[name]):
                raise AssertionError(f"tinynet load_state_dict did not copy {name}")
        self.x = tn.tensor(x)
        self.y = tn.tensor(y)
        self.mse = spec.loss == "mse"
        self.opt = tn.optim.SGD(self.model.parameters(), lr=lr)
        self.loss: Any = None

    def step(self) -> None:
        self.opt.zero_grad()
        out = self.model(self.x)
        loss = self.F.mse_loss(out, self.y) if self.mse else self.F.cross_entropy(out, self.y)
        loss.backward()
        self.opt.step()
        self.loss = loss

    def loss_value(self) -> float:
        return float(np.asarray(self.loss.data))

    def check_dtypes(self) -> None:
        """Every parameter, activation, gradient and the loss keep the workload's dtype.

        numpy 2 promotes float32 to float64 when a float64 scalar or array sneaks in, so a
        float32 model can silently run in float64; this catches it. Runs one extra step.
        """
        h = self.x
        _expect_dtype("input", h.data, self.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            _expect_dtype(
                f"activation after layer {i} ({type(layer).__name__})", h.data, self.dtype
            )
        self.step()
        _expect_dtype("loss", self.loss.data, self.dtype)
        for i, p in enumerate(self.model.parameters()):
            _expect_dtype(f"parameter {i}", p.data, self.dtype)
            if p.grad is None:
                raise AssertionError(f"tinynet parameter {i} has no grad after backward()")
            _expect_dtype(f"grad of parameter {i}", p.grad.data, self.dtype)


class TinynetChain:
    """``y = tanh(sigmoid(x * a + b)); y.sum().backward()``; the gradient lands in x.grad."""

    def __init__(self, x: np.ndarray, a: float, b: float) -> None:
        tn = _tinynet()
        self.dtype = x.dtype
        self.x = tn.tensor(x, requires_grad=True)
        self.a = float(a)
        self.b = float(b)
        self.loss: Any = None

    def step(self) -> None:
        self.x.grad = None
        loss = (self.x * self.a + self.b).sigmoid().tanh().sum()
        loss.backward()
        self.loss = loss

    def loss_value(self) -> float:
        return float(np.asarray(self.loss.data))

    def check_dtypes(self) -> None:
        """The input, every intermediate, the loss and x.grad keep the input's dtype."""
        z = self.x * self.a
        _expect_dtype("x * a", z.data, self.dtype)
        z = z + self.b
        _expect_dtype("x * a + b", z.data, self.dtype)
        s = z.sigmoid()
        _expect_dtype("sigmoid", s.data, self.dtype)
        t = s.tanh()
        _expect_dtype("tanh", t.data, self.dtype)
        self.step()
        _expect_dtype("loss", self.loss.data, self.dtype)
        _expect_dtype("x.grad", self.x.grad.data, self.dtype)

    def grad_value(self) -> np.ndarray:
        return np.asarray(self.x.grad.data)


class TinynetLeNet:
    """The LeNet step of ``numpy_conv``: nn.Sequential of Conv2d/ReLU/MaxPool2d/Flatten/Linear,
    F.cross_entropy, tn.optim.SGD(lr)."""

    def __init__(
        self,
        spec: LeNetSpec,
        weights: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        lr: float,
    ) -> None:
        tn = _tinynet()
        nn = tn.nn
        self.F = nn.functional
        self.dtype = np.dtype(spec.dtype)
        self.layers = [
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(spec.shapes["fc1"][1], 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, spec.classes),
        ]  # fmt: skip
        self.model = nn.Sequential(*self.layers)
        if self.dtype == np.float64:
            self.model.double()
        self.names = {}  # "conv1.weight" -> the Sequential's "0.weight"
        for key in weights:
            layer, kind = key.split(".")
            self.names[key] = f"{LENET_INDEX[layer]}.{kind}"
        self.model.load_state_dict({self.names[k]: v.copy() for k, v in weights.items()})
        self.parameters = dict(self.model.named_parameters())
        self.x = tn.tensor(x)
        self.y = tn.tensor(y)
        self.opt = tn.optim.SGD(self.model.parameters(), lr=lr)
        self.loss: Any = None

    def step(self) -> None:
        self.opt.zero_grad()
        loss = self.F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        self.loss = loss

    def loss_value(self) -> float:
        return float(np.asarray(self.loss.data))

    def grads(self) -> dict[str, np.ndarray]:
        return {
            key: np.asarray(self.parameters[name].grad.data) for key, name in self.names.items()
        }

    def check_dtypes(self) -> None:
        """Input, every activation, the loss, every parameter and gradient keep the dtype."""
        h = self.x
        _expect_dtype("input", h.data, self.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            _expect_dtype(
                f"activation after layer {i} ({type(layer).__name__})", h.data, self.dtype
            )
        self.step()
        _expect_dtype("loss", self.loss.data, self.dtype)
        for name, p in self.parameters.items():
            _expect_dtype(f"parameter {name}", p.data, self.dtype)
            _expect_dtype(f"grad of parameter {name}", p.grad.data, self.dtype)


def perceptron_initial(n_inputs: int, lr: float, seed: int) -> tuple[np.ndarray, float]:
    """The weights and bias a fresh ``tinynet.perceptron.Perceptron`` starts from."""
    from tinynet.perceptron import Perceptron

    p = Perceptron(n_inputs=n_inputs, lr=lr, seed=seed)
    return np.array(p.weight, dtype=np.float64), float(p.bias)


def perceptron_fit(
    X: np.ndarray, y: np.ndarray, lr: float, seed: int, max_epochs: int
) -> tuple[np.ndarray, float, int]:
    """Train a fresh tinynet Perceptron; return its final weights, bias and epochs run."""
    from tinynet.perceptron import Perceptron

    p = Perceptron(n_inputs=X.shape[1], lr=lr, seed=seed)
    result = p.fit(X, y, max_epochs)
    return np.asarray(p.weight, dtype=np.float64), float(p.bias), int(result.epochs)
