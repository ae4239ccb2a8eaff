"""RMSprop (Hinton's lecture 6e; the centered form from Graves, 2013), as
``torch.optim.RMSprop``."""

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


class RMSprop(Optimizer):
    """Divide each gradient by a running root mean square of its recent values.

    For each parameter p with gradient g (PyTorch's rule and order; ``rmsprop_rule`` below):

        g   = -g                                             (if maximize)
        g   = g + weight_decay * p                           (if weight_decay != 0)
        v   = alpha v + (1 - alpha) g^2                      ("square_avg")
        avg = sqrt(v) + eps, or, if centered,
        gm  = alpha gm + (1 - alpha) g                       ("grad_avg")
        avg = sqrt(v - gm^2) + eps                           (a running variance)
        buf = momentum buf + g / avg;  p = p - lr buf        (if momentum > 0)
        p   = p - lr g / avg                                 (otherwise)

    The state also counts steps ("step"), as PyTorch's does. In the centered form v - gm^2
    cancels when the gradient barely changes (always, with alpha=0): the square root then acts
    on rounding noise, and PyTorch's fused multiply-add can make that noise negative (NaN)
    where tinynet's loop (no fused multiply-add) gives 0. Elsewhere the two agree to ~1e-15.
    """

    _STATE_KEYS = ("step", "square_avg", "momentum_buffer", "grad_avg")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_execution_switches("RMSprop", foreach, capturable, differentiable)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "maximize": maximize}
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _required_state(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("step", "square_avg") + (("momentum_buffer",) if group["momentum"] > 0 else ()) \
            + (("grad_avg",) if group["centered"] else ())

    def _check_group(self, group: dict[str, Any]) -> None:
        check_flag(group["centered"], "centered", "RMSprop")
        check_flag(group["maximize"], "maximize", "RMSprop")
        check_non_negative(group, (("lr", "learning rate"), ("eps", "epsilon value"),
                          ("momentum", "momentum value"), ("weight_decay", "weight_decay value"),
                          ("alpha", "alpha value")), "RMSprop")

    def _check_before_step(self) -> None:
        check_eps_fits(self, "g / (sqrt(v) + eps)")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "square_avg": Tensor._make(np.zeros_like(p._data))}
        if group["momentum"] > 0:
            state["momentum_buffer"] = Tensor._make(np.zeros_like(p._data))
        if group["centered"]:
            state["grad_avg"] = Tensor._make(np.zeros_like(p._data))
        return state

    def _form(self, group: dict[str, Any]) -> tuple:
        return (group["momentum"] > 0, group["weight_decay"] != 0)

    def _rule(self, group: dict[str, Any], state: dict[str, Any] | None) -> Rule:
        return rmsprop_rule(group["weight_decay"] != 0, group["centered"], group["momentum"] > 0)

    def _numbers(self, group: dict[str, Any]) -> dict[str, float]:
        return {"lr": group["lr"], "alpha": group["alpha"], "one_minus_alpha": 1 - group["alpha"],
                "eps": group["eps"], "weight_decay": group["weight_decay"],
                "momentum": group["momentum"]}


@functools.cache
def rmsprop_rule(decay: bool, centered: bool, momentum: bool) -> Rule:
    """RMSprop's rule for one parameter, per element, in PyTorch's order of operations (the
    running mean of g moves as ``torch.lerp`` computes, see ``adam_rule``)."""
    each = ["g = g + weight_decay * p"] if decay else []
    each.append("square_avg = square_avg * alpha + one_minus_alpha * g * g")
    if centered:
        each += ["grad_avg = grad_avg + w * (g - grad_avg) if abs(w) < 0.5 else "
                 "g - (g - grad_avg) * keep",
                 "avg = sqrt(square_avg - grad_avg * grad_avg) + eps"]
    else:
        each.append("avg = sqrt(square_avg) + eps")
    if momentum:
        each += ["momentum_buffer = momentum_buffer * momentum + g / avg",
                 "p = p - lr * momentum_buffer"]
    else:
        each.append("p = p - lr * (g / avg)")
    state = ("square_avg",) + (("grad_avg",) if centered else ()) \
        + (("momentum_buffer",) if momentum else ())
    numbers = ["lr", "alpha", "one_minus_alpha", "eps"] + (["weight_decay"] if decay else []) \
        + (["momentum"] if momentum else [])
    switches = [s for s, on in (("weight_decay", decay), ("centered", centered),
                                ("momentum", momentum)) if on]
    return Rule(f"RMSprop({', '.join(switches)})", ("p", "g", *state), ("p", *state),
                tuple(numbers), tuple(each), counts=("step",),
                before=("w = one_minus_alpha", "keep = one - w") if centered else ())
