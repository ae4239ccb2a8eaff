"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as ``torch.optim.Adam`` and
``torch.optim.AdamW``, with AMSGrad (Reddi et al., 2018) and ``maximize``."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ValueRangeError
from tinynet.kernels.updates import Rule
from tinynet.optim.optimizer import (
    Optimizer,
    check_eps_fits,
    check_execution_switches,
    check_flag,
    check_number,
)
from tinynet.tensor import Tensor


class Adam(Optimizer):
    """Adam with L2 weight decay added to the gradient (or, with
    ``decoupled_weight_decay=True``, applied to the weights: AdamW).

    For each parameter p with gradient g, at step t = 1, 2, ... (PyTorch's rule, stated once
    per element in ``adam_rule`` below, the numbers that depend on t with it):

        g = -g                                               (if maximize)
        p = p (1 - lr weight_decay)                          (if decoupled_weight_decay)
        g = g + weight_decay * p                             (otherwise, if weight_decay != 0)
        m = beta1 m + (1 - beta1) g                          (first moment, "exp_avg")
        v = beta2 v + (1 - beta2) g^2                        (second moment, "exp_avg_sq")
        v_max = max(v_max, v)                                (if amsgrad: "max_exp_avg_sq")
        p = p - lr / (1 - beta1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

    The two bias corrections undo the pull of m and v towards their zero start; AMSGrad's
    running maximum keeps the step size from growing again when gradients shrink.
    """

    _STATE_KEYS = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_execution_switches(type(self).__name__, foreach, capturable, differentiable, fused)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _required_state(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["amsgrad"]:
            return self._STATE_KEYS
        return ("step", "exp_avg", "exp_avg_sq")

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        lr = check_number(group["lr"], "lr", name)
        eps = check_number(group["eps"], "eps", name)
        weight_decay = check_number(group["weight_decay"], "weight_decay", name)
        for switch in ("amsgrad", "maximize", "decoupled_weight_decay"):
            check_flag(group[switch], switch, name)
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise DTypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(betas)
        # `not x >= 0` rather than `x < 0`: NaN fails every comparison and must be refused
        if not lr >= 0:
            raise ValueRangeError(f"{name}: Invalid learning rate: {lr} (must be >= 0)")
        if not eps >= 0:
            raise ValueRangeError(f"{name}: Invalid epsilon value: {eps} (must be >= 0)")
        for i, beta in enumerate(betas):
            beta = check_number(beta, f"betas[{i}]", name)
            if not 0.0 <= beta < 1.0:
                raise ValueRangeError(
                    f"{name}: Invalid beta parameter at index {i}: {beta} (must be in [0, 1))"
                )
        if not weight_decay >= 0:
            raise ValueRangeError(
                f"{name}: Invalid weight_decay value: {weight_decay} (must be >= 0)"
            )

    def _check_before_step(self) -> None:
        check_eps_fits(self, "m / (sqrt(v) + eps)")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "exp_avg": Tensor._make(np.zeros_like(p._data)),
                 "exp_avg_sq": Tensor._make(np.zeros_like(p._data))}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = Tensor._make(np.zeros_like(p._data))
        return state

    def _form(self, group: dict[str, Any]) -> tuple:
        return (group["weight_decay"] != 0,)

    def _rule(self, group: dict[str, Any], state: dict[str, Any] | None) -> Rule:
        return adam_rule(group["weight_decay"] != 0, group["decoupled_weight_decay"],
                         group["amsgrad"])

    def _numbers(self, group: dict[str, Any]) -> dict[str, float]:
        lr, (beta1, beta2) = group["lr"], group["betas"]
        return {"lr": lr, "beta1": beta1, "w": 1 - beta1, "beta2": beta2,
                "one_minus_beta2": 1 - beta2, "eps": group["eps"],
                "weight_decay": group["weight_decay"], "shrink": 1 - lr * group["weight_decay"]}


@functools.cache
def adam_rule(decay: bool, decoupled: bool, amsgrad: bool) -> Rule:
    """Adam's rule for one parameter, per element, in PyTorch's order of operations. The bias
    corrections are computed once per update from the step count, in float64 as PyTorch
    computes them in Python. The first moment moves as ``torch.lerp`` computes: m + w (g - m)
    when |w| < 0.5, else g - (g - m)(1 - w)."""
    each = []
    if decay:
        each.append("p = p * shrink" if decoupled else "g = g + weight_decay * p")
    each += ["exp_avg = exp_avg + w * (g - exp_avg) if abs(w) < 0.5 else "
             "g - (g - exp_avg) * keep",
             "exp_avg_sq = exp_avg_sq * beta2 + one_minus_beta2 * g * g"]
    if amsgrad:
        each += ["max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq)",
                 "p = p - step_size * (exp_avg / (sqrt(max_exp_avg_sq) / bias_correction2_sqrt"
                 " + eps))"]
    else:
        each.append("p = p - step_size * exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt"
                    " + eps)")
    numbers = ["lr", "beta1", "w", "beta2", "one_minus_beta2", "eps"]
    if decay:
        numbers.append("shrink" if decoupled else "weight_decay")
    state = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
    switches = [s for s, on in (("weight_decay", decay and not decoupled),
                                ("decoupled_weight_decay", decay and decoupled),
                                ("amsgrad", amsgrad)) if on]
    return Rule(f"Adam({', '.join(switches)})", ("p", "g", *state), ("p", *state),
                tuple(numbers), tuple(each), before=("keep = one - w",), counts=("step",),
                prepare=("step_size = lr / (1 - beta1 ** step)",
                         "bias_correction2_sqrt = sqrt(1 - beta2 ** step)"))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the weights shrink by
    ``lr * weight_decay`` each step, outside the moments, instead of the decay being added to
    the gradient. ``Adam(..., decoupled_weight_decay=True)`` with a default weight_decay of
    0.01, as ``torch.optim.AdamW``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def _restore_options(self, group: dict[str, Any], saved: dict[str, Any],
                         i: int) -> dict[str, Any]:
        # PyTorch's AdamW always decays decoupled, whatever a loaded group says
        new = super()._restore_options(group, saved, i)
        new["decoupled_weight_decay"] = True
        return new
