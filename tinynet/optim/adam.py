"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.errors import DTypeError
from tinynet.nn.errors import ValueRangeError
from tinynet.optim.optimizer import Optimizer, check_gradient, check_number
from tinynet.tensor import Tensor


class Adam(Optimizer):
    """Adam with L2 weight decay (added to the gradient, as ``torch.optim.Adam``; not AdamW).

    For each parameter p with gradient g, at step t = 1, 2, ... (PyTorch's rule;
    ``tinynet.kernels.adam_update_`` runs it in one pass, in place):

        g = g + weight_decay * p                             (if weight_decay != 0)
        m = beta1 m + (1 - beta1) g                          (first moment, "exp_avg")
        v = beta2 v + (1 - beta2) g^2                        (second moment, "exp_avg_sq")
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The two bias corrections undo the pull of m and v towards their zero start.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ) -> None:
        if amsgrad:
            raise NotImplementedError("Adam: amsgrad=True is not implemented in tinynet")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        lr = check_number(group["lr"], "lr", "Adam")
        eps = check_number(group["eps"], "eps", "Adam")
        weight_decay = check_number(group["weight_decay"], "weight_decay", "Adam")
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise DTypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(betas)
        # `not x >= 0` rather than `x < 0`: NaN fails every comparison and must be refused
        if not lr >= 0:
            raise ValueRangeError(f"Adam: Invalid learning rate: {lr} (must be >= 0)")
        if not eps >= 0:
            raise ValueRangeError(f"Adam: Invalid epsilon value: {eps} (must be >= 0)")
        for i, beta in enumerate(betas):
            beta = check_number(beta, f"betas[{i}]", "Adam")
            if not 0.0 <= beta < 1.0:
                raise ValueRangeError(
                    f"Adam: Invalid beta parameter at index {i}: {beta} (must be in [0, 1))"
                )
        if not weight_decay >= 0:
            raise ValueRangeError(
                f"Adam: Invalid weight_decay value: {weight_decay} (must be >= 0)"
            )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._closure_loss(closure)
        self._check_eps_fits()
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                grad = check_gradient("Adam", p)
                if grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {
                        "step": 0,
                        "exp_avg": Tensor._make(np.zeros_like(p.data)),
                        "exp_avg_sq": Tensor._make(np.zeros_like(p.data)),
                    }
                state["step"] += 1
                kernels.adam_update_(p.data, grad, state["exp_avg"].data,
                                     state["exp_avg_sq"].data, state["step"], lr, beta1, beta2,
                                     eps, weight_decay)
                p._version.value += 1  # changed in place: graphs that saved p must notice
        return loss

    def _check_eps_fits(self) -> None:
        """Refuse an eps that rounds to 0 in a parameter's dtype (float16 cannot hold the
        default 1e-8): the update m / (sqrt(v) + eps) would be 0/0 = nan wherever a gradient has
        been 0, silently (PyTorch gives those nans). Checked before any parameter changes."""
        for group in self.param_groups:
            eps = group["eps"]
            if eps <= 0 or np.float16(eps) != 0:  # float16 is the only dtype that loses it
                continue
            for p in group["params"]:
                if p.grad is not None and p.data.dtype.type(eps) == 0:
                    raise ValueRangeError(
                        f"Adam: eps={eps} rounds to 0 in {p.data.dtype} (a parameter of shape "
                        f"{p.shape}), so the update m / (sqrt(v) + eps) would be 0/0 = nan "
                        "wherever the gradient has been 0; use an eps the dtype can hold (e.g. "
                        "eps=1e-4 for float16) or keep the parameters in float32"
                    )
