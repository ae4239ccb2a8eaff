"""PyTorch as a second reference for the random programs of ``test_random_programs.py``.

``reference_evaluator.py`` writes every op again in numpy, but it shares tinynet's conventions
and needs smooth, finite inputs. PyTorch is an independent implementation with its own answers
at ties, kinks, infinities, NaN, empty tensors and invalid arguments, which is where
tinynet's own reference cannot look. Each program op is mapped here to the PyTorch call a user
would write (``max`` over dims is ``amax``: both split ties evenly; a constant operand becomes
a Python number or a tensor, as it would in PyTorch code). Import only after
``pytest.importorskip("torch")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from reference_evaluator import Step

TF = torch.nn.functional


def as_torch(array: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a copy: torch never shares the program's memory


def _constant(value: Any, like: torch.Tensor) -> Any:
    """A constant as PyTorch code would spell it: numbers stay numbers (they take the tensor's
    floating dtype), arrays become tensors."""
    if isinstance(value, np.ndarray) and value.ndim:
        return as_torch(value)
    return float(value)  # numbers, numpy scalars and 0-d arrays: numbers in tinynet too


def operands(step: Step, arrays: Sequence[np.ndarray]) -> tuple[list[Any], list[torch.Tensor]]:
    """The step's operands (torch leaves, requiring grad where floating, and its constant in
    place), and the leaves alone, one per argument."""
    leaves: list[torch.Tensor] = []
    for i in step.args:
        t = as_torch(arrays[i])
        if t.is_floating_point():
            t.requires_grad_(True)
        leaves.append(t)
    tensors: list[Any] = list(leaves)
    if "const" in step.params:
        tensors.insert(step.params["const_side"], _constant(step.params["const"], leaves[0]))
    return tensors, leaves


def _tensor_operand(value: Any, like: torch.Tensor) -> torch.Tensor:
    """torch.maximum/minimum/where want tensors: a number takes the other side's dtype."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.tensor(value, dtype=like.dtype)


class _Div(torch.autograd.Function):
    """a / b, with PyTorch's d/da = g / b, and d/db as -g ((a / b) / b): PyTorch's own
    -g a / (b b) over- or underflows where the result does not (1e-30 / b at b = 1e-25 in
    float32; 0 / b at b = 1e-200, where b b = 0 gives nan), a deliberate difference (issue 12,
    item 5)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        grad_a = (grad / b).sum_to_size(a.shape) if ctx.needs_input_grad[0] else None
        grad_b = (-grad * ((a / b) / b)).sum_to_size(b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def _div(a: Any, b: Any) -> torch.Tensor:
    like = a if isinstance(a, torch.Tensor) else b
    if not isinstance(a, torch.Tensor):  # a number takes the tensor's dtype
        a = torch.tensor(a, dtype=like.dtype)
    if not isinstance(b, torch.Tensor):
        b = torch.tensor(b, dtype=like.dtype)
    dtype = torch.result_type(a, b)
    return _Div.apply(a.to(dtype), b.to(dtype))


def _binary(name: str) -> Callable[..., torch.Tensor]:
    def binary(step: Step, a: Any, b: Any) -> torch.Tensor:
        if name in ("maximum", "minimum"):
            like = a if isinstance(a, torch.Tensor) else b
            return getattr(torch, name)(_tensor_operand(a, like), _tensor_operand(b, like))
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
                "div": lambda: _div(a, b), "pow": lambda: a ** b}[name]()

    return binary


def _dims(axis: Any, ndim: int) -> Any:
    if axis is None:
        return tuple(range(ndim))
    return axis


def _reduce(name: str) -> Callable[..., torch.Tensor]:
    def reduce(step: Step, x: torch.Tensor) -> torch.Tensor:
        axis, keep = step.params["axis"], step.params["keepdims"]
        if name in ("max", "min") and isinstance(step.params.get("_dim"), int) and x.ndim:
            # over one dim: values at the first extreme, as torch.max(x, dim) (and tinynet)
            return getattr(torch, name)(x, dim=step.params["_dim"], keepdim=keep).values
        if name in ("max", "min") and axis is not None:  # several dims: amax/amin's rule
            return getattr(torch, "a" + name)(x, dim=_dims(axis, x.ndim), keepdim=keep)
        if axis is None:
            out = getattr(torch, name)(x)
            return out.reshape((1,) * x.ndim) if keep else out
        return getattr(torch, name)(x, dim=axis, keepdim=keep)

    return reduce


def _torch_index(index: Any) -> Any:
    items = index if isinstance(index, tuple) else (index,)
    out = tuple(torch.from_numpy(np.array(i)) if isinstance(i, np.ndarray) else i
                for i in items)
    return out if isinstance(index, tuple) else out[0]


def _negative_step(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, slice) and (i.step or 1) < 0 for i in items)


def _getitem(step: Step, x: torch.Tensor) -> torch.Tensor:
    index = step.params["index"]
    if not _negative_step(index):
        return x[_torch_index(index)]
    # PyTorch has no negative slice steps: pick the same elements by their flat positions
    positions = np.arange(int(np.prod(x.shape, dtype=np.int64))).reshape(tuple(x.shape))[index]
    return x.reshape(-1)[torch.from_numpy(np.array(positions, dtype=np.int64))]


def _flatten(step: Step, x: torch.Tensor) -> torch.Tensor:
    return x.flatten(step.params["start"], step.params["end"])


def _squeeze(step: Step, x: torch.Tensor) -> torch.Tensor:
    axis = step.params["axis"]
    return x.squeeze() if axis is None else x.squeeze(axis)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
    "relu": torch.relu, "step": lambda z: _step(z),
}


def _step(z: torch.Tensor) -> torch.Tensor:
    """Heaviside (1 where z >= 0), with a gradient of exactly 0 (even at inf and NaN)."""
    never = torch.zeros(z.shape, dtype=torch.bool)
    return torch.where(never, z, (z.detach() >= 0).to(z.dtype))


def _linear(step: Step, x: torch.Tensor, weight: torch.Tensor, bias: Any = None
            ) -> torch.Tensor:
    dtype = torch.promote_types(x.dtype, weight.dtype)  # (tinynet promotes, as _matmul)
    if bias is not None:
        dtype = torch.promote_types(dtype, bias.dtype)
        bias = bias.to(dtype)
    return _ACTIVATIONS[step.params["activation"]](TF.linear(x.to(dtype), weight.to(dtype),
                                                             bias))


def _like(value: Any, x: torch.Tensor) -> Any:
    """A weight for a loss, in the input's dtype (tinynet casts; PyTorch insists)."""
    if value is None:
        return None
    return as_torch(value).to(x.dtype)


def _bounds(step: Step, values: Sequence[torch.Tensor]) -> tuple[Any, Any]:
    """clamp's bounds: constants in params, or (wild programs) values of the program."""
    low, high = step.params["low"], step.params["high"]
    if values:
        given = iter(values)
        low = None if low is None else next(given)
        high = None if high is None else next(given)
    return low, high


def _clamp(x: torch.Tensor, low: Any, high: Any) -> torch.Tensor:
    bounds = [b if b is None or isinstance(b, torch.Tensor) else _constant(b, x)
              for b in (low, high)]
    if any(isinstance(b, torch.Tensor) for b in bounds):  # clamp takes two numbers or tensors
        bounds = [b if b is None or isinstance(b, torch.Tensor) else torch.tensor(b, dtype=x.dtype)
                  for b in bounds]
        # PyTorch's clamp backward fails when the bounds broadcast x to a larger shape
        x = x.expand(torch.broadcast_shapes(x.shape, *(b.shape for b in bounds if b is not None)))
    return torch.clamp(x, *bounds)


class _FusedCrossEntropy(torch.autograd.Function):
    """PyTorch's cross_entropy value, with the gradient (softmax(x) - onehot(t)) g of the one
    fused node tinynet uses for (N, C) scores without weights or ignored targets. PyTorch
    differentiates log_softmax and nll_loss apart, so an infinite upstream gradient meets
    -inf + inf = nan at the target; the fused form gives (p - 1) inf = -inf there, the
    limit (a deliberate difference)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, target: torch.Tensor, reduction: str) -> Any:
        ctx.save_for_backward(x, target)
        ctx.reduction = reduction
        return TF.cross_entropy(x, target, reduction=reduction)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, None, None]:
        x, target = ctx.saved_tensors
        if ctx.reduction == "mean":
            grad = grad / len(target)
        per_row = grad.reshape(-1, 1) if grad.ndim == 1 else grad
        onehot = TF.one_hot(target, x.shape[1]).to(x.dtype)
        return (torch.softmax(x, dim=1) - onehot) * per_row, None, None


def _class_loss(step: Step, x: torch.Tensor) -> torch.Tensor:
    options = step.options()
    target = torch.from_numpy(np.array(options.pop("target"), dtype=np.int64))
    weight = _like(options.pop("weight", None), x)
    ignore_index = options.get("ignore_index", -100)
    if (step.op == "cross_entropy" and x.ndim == 2 and weight is None and target.numel()
            and not (target == ignore_index).any()):
        return _FusedCrossEntropy.apply(x, target, options["reduction"])
    return getattr(TF, step.op)(x, target, weight=weight, **options)


def _bce(step: Step, x: torch.Tensor, t: Any) -> torch.Tensor:
    options = step.options()
    t = t.to(x.dtype) if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=x.dtype)
    options["weight"] = _like(options.get("weight"), x)
    if "pos_weight" in options:
        options["pos_weight"] = _like(options["pos_weight"], x)
    return getattr(TF, step.op)(x, t, **options)


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two program values (tensors) of different dtypes: refused, by PyTorch and tinynet alike.
    A constant array of another dtype: tinynet (like numpy) promotes, and so does this
    reference (a deliberate difference: an answer, not a refusal)."""
    if a.dtype != b.dtype and a.requires_grad and b.requires_grad:
        raise RuntimeError(f"expected both operands to have the same dtype, got {a.dtype} and "
                           f"{b.dtype}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return torch.matmul(a.to(dtype), b.to(dtype))


def _mse(step: Step, a: Any, b: Any) -> torch.Tensor:
    if not isinstance(b, torch.Tensor):  # a 0-d target (tinynet.ops.mse_loss: numpy's dtype)
        b = torch.tensor(b, dtype=a.dtype if step.form != "ops" else torch.float64)
    elif step.form != "ops":
        b = b.to(a.dtype)  # F.mse_loss and MSELoss cast the target; tinynet.ops.mse_loss not
    return TF.mse_loss(a, b, reduction=step.params["reduction"])


TORCH: dict[str, Callable[..., torch.Tensor]] = {
    "neg": lambda step, x: -x, "exp": lambda step, x: torch.exp(x),
    "log": lambda step, x: torch.log(x), "sqrt": lambda step, x: torch.sqrt(x),
    "abs": lambda step, x: torch.abs(x), "sigmoid": lambda step, x: torch.sigmoid(x),
    "tanh": lambda step, x: torch.tanh(x), "relu": lambda step, x: torch.relu(x),
    "step": lambda step, x: _ACTIVATIONS["step"](x),
    "clone": lambda step, x: x.clone(),
    "sin": lambda step, x: torch.sin(x), "cos": lambda step, x: torch.cos(x),
    "norm": lambda step, x: torch.linalg.vector_norm(
        x, 2, dim=step.params["axis"], keepdim=step.params["keepdims"]),
    "einsum": lambda step, *xs: torch.einsum(
        step.params["equation"], *(_tensor_operand(x, xs[0]) for x in xs)),
    **{name: _binary(name) for name in ("add", "sub", "mul", "div", "pow", "maximum",
                                        "minimum")},
    "where": lambda step, a, b: torch.where(
        torch.from_numpy(np.array(step.params["condition"])), a, b),
    "clip": lambda step, x, *values: _clamp(x, *_bounds(step, values)),
    **{name: _reduce(name) for name in ("sum", "mean", "max", "min")},
    "reshape": lambda step, x: x.reshape(step.params["shape"]),
    "flatten": _flatten, "squeeze": _squeeze,
    "unsqueeze": lambda step, x: x.unsqueeze(step.params["axis"]),
    "permute": lambda step, x: x.permute(step.params["axes"]),
    "swapaxes": lambda step, x: x.swapaxes(step.params["a"], step.params["b"]),
    "broadcast_to": lambda step, x: x.expand(step.params["shape"]),
    "getitem": _getitem,
    "cat": lambda step, *xs: torch.cat(xs, dim=step.params["axis"]),
    "stack": lambda step, *xs: torch.stack(xs, dim=step.params["axis"]),
    "matmul": lambda step, a, b: _matmul(a, b),
    "softmax": lambda step, x: torch.softmax(x, step.params["_dim"]),
    "log_softmax": lambda step, x: torch.log_softmax(x, step.params["_dim"]),
    "linear": _linear, "mse_loss": _mse,
    "cross_entropy": _class_loss, "nll_loss": _class_loss,
    "binary_cross_entropy": _bce, "binary_cross_entropy_with_logits": _bce,
}


def run(step: Step, arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The step's output in PyTorch, and the torch leaves of its arguments."""
    ops, leaves = operands(step, arrays)
    return TORCH[step.op](step, *ops), leaves


def apply(step: Step, values: Sequence[np.ndarray], dtype: Any = np.float64) -> np.ndarray:
    """The value of one step in PyTorch (an input step: its array in ``dtype``)."""
    if step.op == "input":
        return np.array(step.params["array"], dtype=dtype)
    with torch.no_grad():
        out, _ = run(step, values)
    return out.detach().numpy().copy()


def vjp(step: Step, arrays: Sequence[np.ndarray], grad: np.ndarray
        ) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """PyTorch's output, and its gradient for each argument given ``grad`` of the output:
    [(argument index, gradient)] (zeros where PyTorch says the output does not depend on it)."""
    out, leaves = run(step, arrays)
    needed = [t for t in leaves if t.requires_grad]
    grads: Sequence[Any] = (None,) * len(needed)
    if out.requires_grad and needed:
        grads = torch.autograd.grad(out, needed, as_torch(grad).to(out.dtype),
                                    allow_unused=True)
    found = dict(zip([id(t) for t in needed], grads, strict=True))
    contributions = []
    for arg, t in zip(step.args, leaves, strict=True):
        if t.requires_grad:
            g = found[id(t)]
            contributions.append((arg, np.zeros(tuple(t.shape), t.detach().numpy().dtype)
                                  if g is None else g.detach().numpy().copy()))
    return out.detach().numpy().copy(), contributions
