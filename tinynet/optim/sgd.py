"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from tinynet.errors import ValueRangeError
from tinynet.kernels.updates import Rule
from tinynet.optim.optimizer import (
    Optimizer,
    check_execution_switches,
    check_flag,
    check_number,
)
from tinynet.tensor import Tensor


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    For each parameter p with gradient g, PyTorch's rule (stated once, per element, in
    ``sgd_rule`` below; tinynet/kernels/updates.py makes the loop that runs it in place):

        g   = -g                                             (if maximize)
        g   = g + weight_decay * p                           (if weight_decay != 0)
        buf = g on the first step, else momentum * buf + (1 - dampening) * g
        g   = g + momentum * buf if nesterov else buf        (if momentum != 0)
        p   = p - lr * g

    Parameters whose ``grad`` is None are skipped (their momentum is not decayed either).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_execution_switches("SGD", foreach, False, differentiable, fused)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        self._check_group(defaults)
        super().__init__(params, defaults)

    _STATE_KEYS = ("momentum_buffer",)  # optional: a missing buffer starts from the gradient

    def _check_group(self, group: dict[str, Any]) -> None:
        check_flag(group["nesterov"], "nesterov", "SGD")
        check_flag(group["maximize"], "maximize", "SGD")
        lr = check_number(group["lr"], "lr", "SGD")
        momentum = check_number(group["momentum"], "momentum", "SGD")
        dampening = check_number(group["dampening"], "dampening", "SGD")
        weight_decay = check_number(group["weight_decay"], "weight_decay", "SGD")
        # `not x >= 0` rather than `x < 0`: NaN fails every comparison and must be refused
        if not lr >= 0:
            raise ValueRangeError(f"SGD: Invalid learning rate: {lr} (must be >= 0)")
        if not momentum >= 0:
            raise ValueRangeError(f"SGD: Invalid momentum value: {momentum} (must be >= 0)")
        if not dampening == dampening:
            raise ValueRangeError(f"SGD: Invalid dampening value: {dampening}")
        if not weight_decay >= 0:
            raise ValueRangeError(
                f"SGD: Invalid weight_decay value: {weight_decay} (must be >= 0)"
            )
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueRangeError(
                "SGD: Nesterov momentum requires a momentum and zero dampening (got momentum="
                f"{momentum}, dampening={dampening})"
            )

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any] | None:
        return {} if group["momentum"] != 0 else None  # the buffer is made by the first step

    def _form(self, group: dict[str, Any]) -> tuple:
        return (group["momentum"] != 0, group["weight_decay"] != 0)

    def _rule(self, group: dict[str, Any], state: dict[str, Any] | None) -> Rule:
        first = state is not None and state.get("momentum_buffer") is None
        return sgd_rule(group["momentum"] != 0, group["nesterov"], group["weight_decay"] != 0,
                        first)

    def _numbers(self, group: dict[str, Any]) -> dict[str, float]:
        return {"lr": group["lr"], "momentum": group["momentum"],
                "keep": 1 - group["dampening"], "weight_decay": group["weight_decay"]}


@functools.cache
def sgd_rule(momentum: bool, nesterov: bool, decay: bool, first: bool) -> Rule:
    """SGD's rule for one parameter, per element, for these switches (``first``: the momentum
    buffer's first step, which starts it at the gradient)."""
    each = ["g = g + weight_decay * p"] if decay else []
    if momentum:
        each.append("momentum_buffer = g" if first else
                    "momentum_buffer = momentum_buffer * momentum + keep * g")
        each.append("g = g + momentum * momentum_buffer" if nesterov else "g = momentum_buffer")
    each.append("p = p - lr * g")
    switches = [s for s, on in (("momentum", momentum), ("nesterov", nesterov),
                                ("weight_decay", decay), ("first step", first)) if on]
    state = ("momentum_buffer",) if momentum else ()
    numbers = ["lr"] + (["momentum"] if momentum else []) + (["keep"] if momentum and not first
                                                              else []) \
        + (["weight_decay"] if decay else [])
    return Rule(f"SGD({', '.join(switches)})", ("p", "g", *state), ("p", *state),
                tuple(numbers), tuple(each))
