"""Adadelta (Zeiler, 2012, "ADADELTA: an adaptive learning rate method"), as
``torch.optim.Adadelta``."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinynet.errors import ValueRangeError
from tinynet.kernels.updates import Rule
from tinynet.optim.optimizer import (
    Optimizer,
    check_eps_fits,
    check_execution_switches,
    check_flag,
    check_non_negative,
    check_number,
)
from tinynet.tensor import Tensor


class Adadelta(Optimizer):
    """Scale each step by the ratio of two running root mean squares: of past updates over
    past gradients, so the step has the parameter's units and needs no learning rate (lr=1.0).

    For each parameter p with gradient g (PyTorch's rule and order; ``adadelta_rule`` below):

        g     = -g                                            (if maximize)
        g     = g + weight_decay * p                          (if weight_decay != 0)
        v     = rho v + (1 - rho) g^2                         ("square_avg")
        delta = sqrt(u + eps) / sqrt(v + eps) * g             (u: "acc_delta")
        u     = rho u + (1 - rho) delta^2
        p     = p - lr delta

    The state also counts steps ("step"), as PyTorch's does.
    """

    _STATE_KEYS = ("step", "square_avg", "acc_delta")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_execution_switches("Adadelta", foreach, capturable, differentiable)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize}
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _required_state(self, group: dict[str, Any]) -> tuple[str, ...]:
        return self._STATE_KEYS

    def _check_group(self, group: dict[str, Any]) -> None:
        check_flag(group["maximize"], "maximize", "Adadelta")
        check_non_negative(group, (("lr", "learning rate"), ("eps", "epsilon value"),
                                   ("weight_decay", "weight_decay value")), "Adadelta")
        rho = check_number(group["rho"], "rho", "Adadelta")
        if not 0.0 <= rho <= 1.0:
            raise ValueRangeError(f"Adadelta: Invalid rho value: {rho} (must be in [0, 1])")

    def _check_before_step(self) -> None:
        check_eps_fits(self, "sqrt(u + eps) / sqrt(v + eps) * g")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "square_avg": Tensor._make(np.zeros_like(p._data)),
                "acc_delta": Tensor._make(np.zeros_like(p._data))}

    def _form(self, group: dict[str, Any]) -> tuple:
        return (group["weight_decay"] != 0,)

    def _rule(self, group: dict[str, Any], state: dict[str, Any] | None) -> Rule:
        return adadelta_rule(group["weight_decay"] != 0)

    def _numbers(self, group: dict[str, Any]) -> dict[str, float]:
        return {"lr": group["lr"], "rho": group["rho"], "one_minus_rho": 1 - group["rho"],
                "eps": group["eps"], "weight_decay": group["weight_decay"]}


@functools.cache
def adadelta_rule(decay: bool) -> Rule:
    """Adadelta's rule for one parameter, per element, in PyTorch's order of operations."""
    each = ["g = g + weight_decay * p"] if decay else []
    each += ["square_avg = square_avg * rho + one_minus_rho * g * g",
             "delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g",
             "acc_delta = acc_delta * rho + one_minus_rho * delta * delta",
             "p = p - lr * delta"]
    numbers = ("lr", "rho", "one_minus_rho", "eps") + (("weight_decay",) if decay else ())
    return Rule(f"Adadelta({'weight_decay' if decay else ''})", ("p", "g", "square_avg",
                "acc_delta"), ("p", "square_avg", "acc_delta"), numbers, tuple(each),
                counts=("step",))
