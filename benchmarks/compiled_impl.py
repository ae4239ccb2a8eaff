"""The workloads under ``tn.compile``: tinynet_impl's code with the step compiled.

Same interface as ``tinynet_impl`` (``CompiledMLP``/``CompiledChain`` mirror ``TinynetMLP``/
``TinynetChain``): build, ``step()``, ``loss_value()``, ``check_dtypes()``. The first two
steps run eagerly while tracing (the first with no ``.grad`` yet, the second with), so they are
the harness's correctness check; from the third on, steps replay compiled code.
``import_problem`` says whether ``tn.compile`` imports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import tinynet_impl
from .numpy_ref import MLPSpec, Params


def import_problem(part: str) -> str | None:
    problem = tinynet_impl.import_problem(part)
    if problem is not None:
        return problem
    import tinynet as tn

    return None if hasattr(tn, "compile") else "tinynet.compile is missing"


class CompiledMLP(tinynet_impl.TinynetMLP):
    """``TinynetMLP`` with its step function under ``tn.compile``."""

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        super().__init__(spec, params, x, y, lr)
        model, opt, F, mse = self.model, self.opt, self.F, self.mse

        def train_step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            out = model(x)
            loss = F.mse_loss(out, y) if mse else F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            return loss

        self.train_step = self.tn.compile(train_step, background=False)

    def step(self) -> None:
        self.loss = self.train_step(self.x, self.y)


class CompiledChain(tinynet_impl.TinynetChain):
    """``TinynetChain`` with its step under ``tn.compile``."""

    def __init__(self, x: np.ndarray, a: float, b: float) -> None:
        super().__init__(x, a, b)
        leaf, a_, b_ = self.x, self.a, self.b

        def chain_step() -> Any:
            leaf.grad = None
            loss = (leaf * a_ + b_).sigmoid().tanh().sum()
            loss.backward()
            return loss

        self.chain_step = tinynet_impl._tinynet().compile(chain_step, background=False)

    def step(self) -> None:
        self.loss = self.chain_step()
