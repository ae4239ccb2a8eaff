"""Losses and functions written with existing ops: ``F.l1_loss``, ``smooth_l1_loss``,
``huber_loss``, ``kl_div``, ``normalize``, ``cosine_similarity``.

Each is a few Tensor operations, so its gradient (and second derivative) comes from the ops it
is made of; the formulas, and which side of a threshold a tie falls on, are PyTorch's. With d =
|x - t|:

    l1:        d
    smooth_l1: 0.5 d^2 / beta       if d < beta,  else d - 0.5 beta     (beta = 0: l1)
    huber:     0.5 d^2              if d < delta, else delta (d - 0.5 delta)
    kl_div:    t (log t - x)  (0 where t = 0);  log_target: exp(t) (t - x)
"""

from __future__ import annotations

from typing import Any

from tinynet import ops
from tinynet.nn.errors import ValueRangeError
from tinynet.tensor import Tensor

_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def _pointwise(op: str, input: Any, target: Any) -> tuple[Tensor, Any]:
    from tinynet.nn import functional as F

    input = F._float_input(input, op)
    return input, F._float_target(target, input, op)


def _reduced(losses: Tensor, reduction: str, op: str) -> Tensor:
    from tinynet.nn import functional as F

    F._check_reduction(reduction, op)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error: reduce(|x - t|); target of the input's shape."""
    input, target = _pointwise("l1_loss", input, target)
    return _reduced((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where d = |x - t| < beta, d - 0.5 beta elsewhere; beta = 0 is l1."""
    if beta < 0:
        raise ValueRangeError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    input, target = _pointwise("smooth_l1_loss", input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduced(d, reduction, "smooth_l1_loss")
    losses = ops.where(d.data < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduced(losses, reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Any, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """0.5 d^2 where d = |x - t| < delta, delta (d - 0.5 delta) elsewhere (delta > 0)."""
    if not delta > 0:
        raise ValueRangeError(f"huber_loss: delta must be positive, got {delta}")
    input, target = _pointwise("huber_loss", input, target)
    d = (input - target).abs()
    losses = ops.where(d.data < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduced(losses, reduction, "huber_loss")


def kl_div(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || p) with ``input`` = log p (log-probabilities, e.g. log_softmax):
    t (log t - x) summed as ``reduction`` says ('batchmean': divided by the batch size, the
    KL divergence itself; 'mean', PyTorch's default, divides by the number of elements)."""
    if size_average is not None or reduce is not None:
        raise ValueRangeError("kl_div: size_average and reduce are deprecated in PyTorch and "
                              "not supported; use reduction=")
    if reduction not in _KL_REDUCTIONS:
        raise ValueRangeError(f"kl_div: {reduction!r} is not a valid value for reduction; use "
                              "'batchmean', 'sum', 'mean' or 'none'")
    input, target = _pointwise("kl_div", input, target)
    t = target if isinstance(target, Tensor) else Tensor._make(target)
    if log_target:
        losses = t.exp() * (t - input)
    else:
        positive = t.data != 0
        safe = ops.where(positive, t, 1.0)  # log(0) never computed: 0 log 0 is 0
        losses = ops.where(positive, t * safe.log(), 0.0) - t * input
    if reduction == "batchmean":
        batch = input.shape[0] if input.ndim else 1
        return losses.sum() / batch
    return _reduced(losses, reduction, "kl_div")


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Any = None) -> Tensor:
    """x / max(||x||_p over dim, eps): unit vectors along ``dim``."""
    if out is not None:
        raise ValueRangeError("normalize: out= is not supported; use the returned tensor")
    norm = ops.norm(input, p, dim=dim, keepdim=True)
    return input / norm.clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 x2) / (max(||x1||, eps) max(||x2||, eps)) along ``dim`` (x1, x2 broadcast)."""
    n1 = ops.norm(x1, 2, dim=dim, keepdim=True).clamp(min=eps)
    n2 = ops.norm(x2, 2, dim=dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim=dim)
