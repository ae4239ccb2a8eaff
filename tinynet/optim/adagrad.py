"""Adagrad (Duchi, Hazan & Singer, 2011), as ``torch.optim.Adagrad``."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinynet.kernels.updates import Rule
from tinynet.optim.optimizer import (
    Optimizer,
    check_eps_fits,
    check_execution_switches,
    check_flag,
    check_non_negative,
)
from tinynet.tensor import Tensor


class Adagrad(Optimizer):
    """Scale each coordinate's step by the root of the sum of all its squared gradients, so
    often-updated coordinates slow down.

    For each parameter p with gradient g, at step t = 1, 2, ... (PyTorch's rule and order;
    ``adagrad_rule`` below):

        g   = -g                                             (if maximize)
        g   = g + weight_decay * p                           (if weight_decay != 0)
        clr = lr / (1 + (t - 1) lr_decay)
        s   = s + g^2                                        ("sum", starts at
                                                              initial_accumulator_value)
        p   = p - clr g / (sqrt(s) + eps)

    As in PyTorch, the state of every parameter is created by the constructor (from its
    ``initial_accumulator_value`` argument); parameters of groups added later start from the
    optimizer's default.
    """

    _STATE_KEYS = ("step", "sum")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_execution_switches("Adagrad", foreach, False, differentiable, fused)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize}
        self._check_group(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._fresh_state(p, initial_accumulator_value)

    @staticmethod
    def _fresh_state(p: Tensor, initial_accumulator_value: float) -> dict[str, Any]:
        return {"step": 0,
                "sum": Tensor._make(np.full_like(p.data, initial_accumulator_value))}

    def _required_state(self, group: dict[str, Any]) -> tuple[str, ...]:
        return self._STATE_KEYS

    def _check_group(self, group: dict[str, Any]) -> None:
        check_flag(group["maximize"], "maximize", "Adagrad")
        check_non_negative(group, (("lr", "learning rate"), ("lr_decay", "lr_decay value"),
                          ("weight_decay", "weight_decay value"),
                          ("initial_accumulator_value", "initial_accumulator_value value"),
                          ("eps", "epsilon value")), "Adagrad")

    def _check_before_step(self) -> None:
        if self.defaults["initial_accumulator_value"] == 0:  # else sum > 0: no 0/0
            check_eps_fits(self, "g / (sqrt(sum) + eps)")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return self._fresh_state(p, self.defaults["initial_accumulator_value"])

    def _form(self, group: dict[str, Any]) -> tuple:
        return (group["weight_decay"] != 0,)

    def _rule(self, group: dict[str, Any], state: dict[str, Any] | None) -> Rule:
        return adagrad_rule(group["weight_decay"] != 0)

    def _numbers(self, group: dict[str, Any]) -> dict[str, float]:
        return {"lr": group["lr"], "lr_decay": group["lr_decay"], "eps": group["eps"],
                "weight_decay": group["weight_decay"]}


@functools.cache
def adagrad_rule(decay: bool) -> Rule:
    """Adagrad's rule for one parameter, per element, in PyTorch's order of operations."""
    each = ["g = g + weight_decay * p"] if decay else []
    each += ["sum = sum + g * g",
             "p = p - clr * (g / (sqrt(sum) + eps))"]
    numbers = ("lr", "lr_decay", "eps") + (("weight_decay",) if decay else ())
    return Rule(f"Adagrad({'weight_decay' if decay else ''})", ("p", "g", "sum"), ("p", "sum"),
                numbers, tuple(each), counts=("step",),
                prepare=("clr = lr / (1 + (step - 1) * lr_decay)",))
