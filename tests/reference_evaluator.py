"""A plain-numpy reference for tinynet's differentiable ops, and the little program language the
random differential tests (``test_random_programs.py``) speak.

A **program** is a list of steps in single-assignment form: step ``i`` computes value ``v_i``
from earlier values (``args``, indices into the values) and options (``params``). Steps whose op
is ``"input"`` create leaves (the program's inputs, and the weights a ``linear`` step needs);
everything else is one tinynet op. The program's scalar **loss** is

    L = sum over sinks k of sum(weight_k * v_k)

where the sinks are the values no later step reads, and ``weight_k`` are fixed random arrays: a
random projection of everything the program computed, so every step counts.

This module evaluates programs *without tinynet*: each op is written again here, directly in
numpy, with its forward, its vector-Jacobian product (``vjp``: the gradient of each argument
given the gradient of the output, before broadcasting is undone) and, for ops with kinks, a
``branches`` signature (which side of each kink each element is on; finite differences are
only meaningful where it does not change). Nothing here imports tinynet: a bug in tinynet's
engine or ops cannot hide by also being in the reference.

Everything runs in float64.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

EPS = float(np.finfo(np.float64).eps)

# ---------------------------------------------------------------------------------------------
# The program language
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    """``v = op(*values[args], *constants, **params)``.

    ``params`` are the op's options, as the reference reads them (``axis``, ``keepdims``...).
    ``const``/``const_side`` (optional) give a constant operand (a number or an array) that
    takes the argument position ``const_side`` (0: left, 1: right) of a binary op. ``form``
    says how the tinynet side spells the call (method, function, operator, module...): the
    reference ignores it.
    """

    op: str
    args: tuple[int, ...] = ()
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    form: str = ""

    def operands(self, values: Sequence[np.ndarray]) -> list[Any]:
        """The arrays this step reads, with its constant operand (if any) in place."""
        arrays: list[Any] = [values[i] for i in self.args]
        if "const" in self.params:
            arrays.insert(self.params["const_side"], np.asarray(self.params["const"],
                                                                 dtype=np.float64))
        return arrays

    def options(self) -> dict[str, Any]:
        """The options the reference reads (``_``-prefixed ones only spell the tinynet call)."""
        return {k: v for k, v in self.params.items()
                if k not in ("const", "const_side") and not k.startswith("_")}

    def __str__(self) -> str:
        args = [f"v{i}" for i in self.args]
        if "const" in self.params:
            const = self.params["const"]
            shown = repr(const) if np.ndim(const) == 0 else f"<const {np.shape(const)}>"
            args.insert(self.params["const_side"], shown)
        options = []
        for key, value in self.options().items():
            if key == "array" or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray) and value.size > 6:
                value = f"<array {value.dtype} {value.shape}>"
            options.append(f"{key}={value!r}" if not isinstance(value, str) else f"{key}={value}")
        return f"{self.op}({', '.join(args + options)})" + (f"  [{self.form}]" if self.form
                                                              else "")


@dataclasses.dataclass
class Program:
    steps: list[Step]
    # sink value index -> the fixed weight array of the loss term sum(weight * value)
    loss_weights: dict[int, np.ndarray]
    # steps that must be refused (wild programs: PyTorch refuses them), not part of the program
    refusals: list[Step] = dataclasses.field(default_factory=list)

    def leaves(self) -> list[int]:
        """Value indices of the ``input`` steps, in order."""
        return [i for i, s in enumerate(self.steps) if s.op == "input"]

    def __str__(self) -> str:
        lines = []
        for i, step in enumerate(self.steps):
            if step.op == "input":
                array = step.params["array"]
                layout = "" if array.flags.c_contiguous else f" strides={array.strides}"
                lines.append(f"v{i} = input {array.shape}{layout}"
                             f"{' read-only' if not array.flags.writeable else ''}")
            else:
                lines.append(f"v{i} = {step}")
        terms = " + ".join(f"sum(w{k} * v{k})" for k in self.loss_weights)
        lines.append(f"loss = {terms}")
        lines += [f"refused: {step}" for step in self.refusals]
        return "\n".join(lines)


def sinks(steps: Sequence[Step]) -> list[int]:
    """Values no later step reads (unused inputs included)."""
    used = {i for step in steps for i in step.args}
    return [i for i in range(len(steps)) if i not in used]


# ---------------------------------------------------------------------------------------------
# Broadcasting helpers
# ---------------------------------------------------------------------------------------------


def sum_to(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched, giving ``shape``."""
    grad = np.asarray(grad)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad.reshape(shape)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axis = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim for a in axis) if ndim else ()


def _keep(grad: np.ndarray, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """A reduced gradient with its reduced axes back as size 1."""
    if keepdims:
        return grad
    shape = [1 if i in _axes(axis, x.ndim) else n for i, n in enumerate(x.shape)]
    return np.reshape(grad, shape)


# ---------------------------------------------------------------------------------------------
# The ops
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RefOp:
    """One op.

    - ``forward(*arrays, **options)``;
    - ``vjp(grad, out, needs, *arrays, **options)``: one gradient per array (None where
      ``needs`` is False; broadcast shapes are fine, the evaluator sums them back);
    - ``branches(*arrays, **options)`` (ops with kinks): which side of each kink;
    - ``scale(out, *arrays, **options)``: per output element, the size of the terms its
      forward rounds (``|out|`` if None: one correctly rounded operation);
    - ``terms(|grad|, out, needs, *arrays, **options)``: the same for the vjp, the sizes of
      the terms each gradient element sums (``|vjp(|grad|, ...)|`` if None, right for every vjp
      that is a single product; ops that subtract or sum inside their vjp say it themselves).
    """

    forward: Callable[..., np.ndarray]
    vjp: Callable[..., tuple[Any, ...]]
    branches: Callable[..., np.ndarray] | None = None
    scale: Callable[..., np.ndarray] | None = None
    terms: Callable[..., tuple[Any, ...]] | None = None


OPS: dict[str, RefOp] = {}


def op(name: str, vjp: Callable[..., tuple[Any, ...]], branches: Any = None,
       scale: Any = None, terms: Any = None
       ) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    def register(forward: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        OPS[name] = RefOp(forward, vjp, branches, scale, terms)
        return forward

    return register


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


# ---- unary elementwise ----------------------------------------------------------------------

op("neg", lambda g, out, needs, x: (-g,))(lambda x: -x)
op("exp", lambda g, out, needs, x: (g * out,))(np.exp)
op("log", lambda g, out, needs, x: (g / x,), scale=lambda out, x: np.abs(out) + 1)(np.log)
op("sqrt", lambda g, out, needs, x: (g / (2 * out),))(np.sqrt)
op("abs", lambda g, out, needs, x: (g * np.sign(x),), lambda x: x > 0)(np.abs)
# s (1 - s) and 1 - t^2 from the rounded output subtract terms of size s and 1
op("sigmoid", lambda g, out, needs, x: (g * out * (1 - out),),
   terms=lambda g, out, needs, x: (g * (out + out * out),))(_sigmoid)
op("tanh", lambda g, out, needs, x: (g * (1 - out * out),),
   terms=lambda g, out, needs, x: (g * (1 + out * out),))(np.tanh)
op("relu", lambda g, out, needs, x: (g * (x > 0),), lambda x: x > 0)(
    lambda x: np.where(x > 0, x, 0.0))
op("step", lambda g, out, needs, x: (np.zeros_like(g),), lambda x: x >= 0)(
    lambda x: (x >= 0).astype(np.float64))
op("clone", lambda g, out, needs, x: (g,))(lambda x: x.copy())
op("sin", lambda g, out, needs, x: (g * np.cos(x),), scale=lambda out, x: np.abs(out) + EPS)(
    np.sin)
op("cos", lambda g, out, needs, x: (-g * np.sin(x),), scale=lambda out, x: np.abs(out) + EPS)(
    np.cos)


@op("clip", lambda g, out, needs, x, low, high: (
    g * ((low is None or x >= low) & (high is None or x <= high)),),
    lambda x, low, high: (x < (-np.inf if low is None else low)) * 1
    + (x > (np.inf if high is None else high)) * 2)
def _clip(x: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    return np.minimum(np.maximum(x, -np.inf if low is None else low),
                      np.inf if high is None else high)


# ---- binary elementwise (numpy broadcasting) ------------------------------------------------

op("add", lambda g, out, needs, a, b: (g, g))(np.add)
op("sub", lambda g, out, needs, a, b: (g, -g))(np.subtract)
op("mul", lambda g, out, needs, a, b: (g * b, g * a))(np.multiply)
op("div", lambda g, out, needs, a, b: (g / b, -g * a / (b * b) if needs[1] else None))(
    np.divide)


def _pow_vjp(g: Any, out: Any, needs: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """d/da = b a^(b-1), which is 0 for b = 0 even at a = 0 (a^0 = 1); d/db = a^b log(a)."""
    grad_a = None
    if needs[0]:
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = np.where(b == 0, 0.0, g * b * a ** (b - 1))
    return grad_a, g * out * np.log(a) if needs[1] else None


def _pow_scale(out: Any, a: Any, b: Any) -> Any:
    """a**b = exp(b log a): the result's relative error grows with |b log a|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.abs(b * np.log(np.abs(a)))
    return np.abs(out) * (1 + np.nan_to_num(spread))


op("pow", _pow_vjp, scale=_pow_scale)(np.power)


def _split(a: Any, b: Any, first_wins: Any) -> tuple[Any, Any]:
    """Share of the gradient that goes to a: 1 where it wins, 1/2 on a tie, else 0."""
    share = first_wins + 0.5 * (a == b)
    return share, 1 - share


op("maximum", lambda g, out, needs, a, b: tuple(g * s for s in _split(a, b, a > b)),
   lambda a, b: a > b)(np.maximum)
op("minimum", lambda g, out, needs, a, b: tuple(g * s for s in _split(a, b, a < b)),
   lambda a, b: a < b)(np.minimum)


@op("where", lambda g, out, needs, a, b, condition: (g * condition, g * ~condition))
def _where(a: np.ndarray, b: np.ndarray, condition: np.ndarray) -> np.ndarray:
    return np.where(condition, a, b)


# ---- reductions -----------------------------------------------------------------------------


def _sum_scale(out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return np.sum(np.abs(x), axis=axis, keepdims=keepdims)


def _count(x: np.ndarray, axis: Any) -> int:
    return int(np.prod([x.shape[a] for a in _axes(axis, x.ndim)], dtype=np.int64))


op("sum", lambda g, out, needs, x, axis, keepdims: (
    np.broadcast_to(_keep(g, x, axis, keepdims), x.shape),), scale=_sum_scale)(
    lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims))
op("mean", lambda g, out, needs, x, axis, keepdims: (
    np.broadcast_to(_keep(g, x, axis, keepdims), x.shape) / _count(x, axis),),
   scale=lambda out, x, axis, keepdims: _sum_scale(out, x, axis, keepdims) / max(
       _count(x, axis), 1))(
    lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims))


def _extreme(reduce: Callable[..., np.ndarray]) -> tuple[Any, Any]:
    """(vjp, branches) of max or min: ties split the gradient evenly."""

    def winners(x: Any, axis: Any) -> Any:
        return x == reduce(x, axis=axis, keepdims=True)

    def vjp(g: Any, out: Any, needs: Any, x: Any, axis: Any, keepdims: bool) -> tuple[Any]:
        hits = winners(x, axis)
        return (_keep(g, x, axis, keepdims) * hits / hits.sum(axis=axis, keepdims=True),)

    return vjp, lambda x, axis, keepdims: winners(x, axis)


for _name, _reduce in (("max", np.max), ("min", np.min)):
    _vjp, _branches = _extreme(_reduce)
    op(_name, _vjp, _branches)(
        lambda x, axis, keepdims, _reduce=_reduce: _reduce(x, axis=axis, keepdims=keepdims))


op("norm", lambda g, out, needs, x, axis, keepdims: (
    _keep(g, x, axis, keepdims) * x / _keep(out, x, axis, keepdims),))(
    lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)))


def _einsum_vjp(g: Any, out: Any, needs: Any, *arrays: Any, equation: str) -> tuple[Any, ...]:
    """d/d(operand i) of einsum: the output's gradient contracted with the other operands onto
    operand i's letters, broadcast over the letters only operand i had."""
    inputs, output = equation.split("->")
    subs = inputs.split(",")
    grads = []
    for i, letters in enumerate(subs):
        others = [a for j, a in enumerate(arrays) if j != i]
        other_subs = [t for j, t in enumerate(subs) if j != i]
        known = set(output).union(*other_subs)
        kept = "".join(c for c in letters if c in known)
        part = np.einsum(",".join([output, *other_subs]) + "->" + kept, g, *others)
        shape = [n if c in known else 1 for c, n in zip(letters, arrays[i].shape, strict=True)]
        grads.append(np.broadcast_to(np.reshape(part, shape), arrays[i].shape))
    return tuple(grads)


op("einsum", _einsum_vjp, scale=lambda out, *arrays, equation: np.einsum(
    equation, *(np.abs(a) for a in arrays)))(
    lambda *arrays, equation: np.einsum(equation, *arrays))


# ---- moving elements around -----------------------------------------------------------------

op("reshape", lambda g, out, needs, x, shape: (np.reshape(g, x.shape),))(
    lambda x, shape: np.reshape(x, shape))
op("flatten", lambda g, out, needs, x, start, end: (np.reshape(g, x.shape),))(
    lambda x, start, end: np.reshape(
        x, x.shape[:start % max(x.ndim, 1)] + (-1,) + x.shape[end % max(x.ndim, 1) + 1:])
    if x.ndim else np.reshape(x, (1,)))
op("squeeze", lambda g, out, needs, x, axis: (np.reshape(g, x.shape),))(
    lambda x, axis: np.squeeze(x, axis=None if axis is None else tuple(
        a for a in (axis if isinstance(axis, tuple) else (axis,)) if x.shape[a] == 1)))
op("unsqueeze", lambda g, out, needs, x, axis: (np.reshape(g, x.shape),))(
    lambda x, axis: np.expand_dims(x, axis))
op("permute", lambda g, out, needs, x, axes: (np.transpose(g, np.argsort(axes)),))(
    lambda x, axes: np.transpose(x, axes))
op("swapaxes", lambda g, out, needs, x, a, b: (np.swapaxes(g, a, b),))(
    lambda x, a, b: np.swapaxes(x, a, b))
op("broadcast_to", lambda g, out, needs, x, shape: (sum_to(g, x.shape),))(
    lambda x, shape: np.broadcast_to(x, shape).copy())


def _index_vjp(g: Any, out: Any, needs: Any, x: Any, index: Any) -> tuple[Any]:
    grad = np.zeros(x.shape)
    np.add.at(grad, _integer_index(index), g)
    return (grad,)


def _integer_index(index: Any) -> Any:
    """Boolean masks as the integer indices they select (what np.add.at needs)."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    for item in items:
        if isinstance(item, np.ndarray) and item.dtype == np.bool_:
            out.extend(np.nonzero(item))
        else:
            out.append(item)
    return tuple(out)


op("getitem", _index_vjp)(lambda x, index: np.array(x[index]))


def _cat_vjp(g: Any, out: Any, needs: Any, *arrays: Any, axis: int) -> tuple[Any, ...]:
    bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
    return tuple(np.take(g, np.arange(bounds[i], bounds[i + 1]), axis=axis)
                 for i in range(len(arrays)))


op("cat", _cat_vjp)(lambda *arrays, axis: np.concatenate(arrays, axis=axis))
op("stack", lambda g, out, needs, *arrays, axis: tuple(
    np.take(g, i, axis=axis) for i in range(len(arrays))))(
    lambda *arrays, axis: np.stack(arrays, axis=axis))


# ---- matrix product -------------------------------------------------------------------------


def _matmul_vjp(g: Any, out: Any, needs: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """As matrices: dA = G B^T, dB = A^T G; 1-D operands become a row (a) or a column (b)."""
    if a.ndim == 1 and b.ndim == 1:  # a dot product
        return g * b, g * a
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = np.asarray(g)
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    grad_a = sum_to(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
    grad_b = sum_to(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
    return grad_a, grad_b


op("matmul", _matmul_vjp, scale=lambda out, a, b: np.abs(a) @ np.abs(b),
   terms=lambda g, out, needs, a, b: _matmul_vjp(g, out, needs, np.abs(a), np.abs(b)))(
    np.matmul)


# ---- softmax --------------------------------------------------------------------------------


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _row_scale(out: Any, x: Any, axis: int) -> Any:
    """log-sum-exp rounds terms of the size of the row's inputs."""
    return np.abs(out) + np.abs(x).max(axis=axis, keepdims=True) + 1


def _softmax_scale(out: Any, x: Any, axis: int) -> Any:
    """e^(x - max) magnifies the rounding of x - max by |x - max|."""
    return np.abs(out) * (1 + np.abs(x - x.max(axis=axis, keepdims=True)))


op("softmax", lambda g, out, needs, x, axis: (
    out * (g - (g * out).sum(axis=axis, keepdims=True)),), scale=_softmax_scale,
   terms=lambda g, out, needs, x, axis: (out * (g + (g * out).sum(axis=axis, keepdims=True)),))(
    _softmax)
op("log_softmax", lambda g, out, needs, x, axis: (
    g - np.exp(out) * g.sum(axis=axis, keepdims=True),), scale=_row_scale,
   terms=lambda g, out, needs, x, axis: (g + np.exp(out) * g.sum(axis=axis, keepdims=True),))(
    _log_softmax)


# ---- the fused linear layer: act(x @ W^T + b) -----------------------------------------------

_ACTIVATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], Any],
                              Callable[[Any, Any], Any]]] = {
    # name: (act(z), act'(z) written with z and y = act(z), the size of act'(z)'s terms)
    "identity": (lambda z: z, lambda z, y: np.ones_like(z), lambda z, y: np.ones_like(z)),
    "sigmoid": (_sigmoid, lambda z, y: y * (1 - y), lambda z, y: y + y * y),
    "tanh": (np.tanh, lambda z, y: 1 - y * y, lambda z, y: 1 + y * y),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z, y: (z > 0) * 1.0,
             lambda z, y: (z > 0) * 1.0),
    "step": (lambda z: (z >= 0) * 1.0, lambda z, y: np.zeros_like(z),
             lambda z, y: np.zeros_like(z)),
}


def _pre_activation(x: Any, weight: Any, bias: Any = None) -> Any:
    z = x @ weight.T
    return z if bias is None else z + bias


def _linear(x: Any, weight: Any, bias: Any = None, *, activation: str) -> Any:
    return _ACTIVATIONS[activation][0](_pre_activation(x, weight, bias))


def _linear_vjp(g: Any, out: Any, needs: Any, x: Any, weight: Any, bias: Any = None, *,
                activation: str, terms: bool = False) -> tuple[Any, ...]:
    z = _pre_activation(x, weight, bias)
    dz = g * _ACTIVATIONS[activation][2 if terms else 1](z, out)
    if terms:
        x, weight = np.abs(x), np.abs(weight)
    rows = int(np.prod(dz.shape[:-1], dtype=np.int64))
    rows_dz = dz.reshape(rows, weight.shape[0])
    rows_x = x.reshape(rows, weight.shape[1])
    grads = (dz @ weight, rows_dz.T @ rows_x)
    return grads + ((rows_dz.sum(axis=0),) if bias is not None else ())


def _linear_scale(out: Any, x: Any, weight: Any, bias: Any = None, *, activation: str) -> Any:
    z = _pre_activation(x, weight, bias)
    magnitude = np.abs(x) @ np.abs(weight).T + (0 if bias is None else np.abs(bias))
    slope = np.abs(_ACTIVATIONS[activation][1](z, out))
    return np.abs(out) + slope * magnitude


op("linear", _linear_vjp,
   lambda x, weight, bias=None, *, activation: _pre_activation(x, weight, bias) > 0
   if activation in ("relu", "step") else np.zeros((), bool),
   _linear_scale, lambda *args, **options: _linear_vjp(*args, **options, terms=True))(_linear)


# ---- losses ---------------------------------------------------------------------------------


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return losses
    total = losses.sum()
    return np.asarray(total / losses.size if reduction == "mean" else total)


def _reduce_grad(g: Any, losses_shape: tuple[int, ...], reduction: str) -> Any:
    if reduction == "none":
        return g
    size = int(np.prod(losses_shape, dtype=np.int64))
    return np.broadcast_to(g / size if reduction == "mean" else g, losses_shape)


def _loss_scale(terms: Any, reduction: str) -> Any:
    return _reduce(np.abs(terms), reduction)


# mse_loss(a, b): reduce((a - b)^2)
op("mse_loss",
   lambda g, out, needs, a, b, reduction: (
       (lambda d: (d, -d))(2 * _reduce_grad(g, a.shape, reduction) * (a - b))),
   terms=lambda g, out, needs, a, b, reduction: (
       (lambda d: (d, d))(2 * _reduce_grad(g, a.shape, reduction) * (np.abs(a) + np.abs(b)))),
   scale=lambda out, a, b, reduction: _loss_scale((np.abs(a) + np.abs(b)) ** 2, reduction))(
    lambda a, b, reduction: _reduce((a - b) ** 2, reduction))


def _class_rows(x: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
    """(C,), (N, C) or (N, C, d...) scores as (M, C) rows and (M,) targets, plus a function
    that puts (M, C) row gradients back into x's layout."""
    if x.ndim == 1:
        return x[None, :], target.reshape(1), lambda rows: rows[0]
    order = (0, *range(2, x.ndim), 1)
    moved = np.transpose(x, order)
    rows = moved.reshape(-1, x.shape[1])

    def back(row_grads: np.ndarray) -> np.ndarray:
        return np.transpose(row_grads.reshape(moved.shape), np.argsort(order))

    return rows, target.reshape(-1), back


def _class_weights(target: np.ndarray, weight: Any, ignore_index: int, classes: int) -> Any:
    """Per-sample weight w[t_i], 0 for ignored samples."""
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    w = np.ones(classes) if weight is None else np.asarray(weight, dtype=np.float64)
    return w[safe] * keep, safe


def _picked_loss(log_probs_rows: Any, target: Any, weight: Any, ignore_index: int,
                 reduction: str, shape: tuple[int, ...]) -> Any:
    w, safe = _class_weights(target, weight, ignore_index, log_probs_rows.shape[1])
    losses = -log_probs_rows[np.arange(len(safe)), safe] * w
    if reduction == "none":
        return losses.reshape(shape)
    if reduction == "sum":
        return np.asarray(losses.sum())
    return np.asarray(losses.sum() / w.sum())


def _picked_grad(g: Any, rows_shape: tuple[int, int], target: Any, weight: Any,
                 ignore_index: int, reduction: str) -> Any:
    """d(loss)/d(log-probabilities) as (M, C) rows."""
    w, safe = _class_weights(target, weight, ignore_index, rows_shape[1])
    if reduction == "none":
        per_row = np.reshape(g, -1) * w
    elif reduction == "sum":
        per_row = g * w
    else:
        per_row = g * w / w.sum()
    grad = np.zeros(rows_shape)
    grad[np.arange(len(safe)), safe] = -per_row
    return grad


def _cross_entropy(x: Any, *, target: Any, weight: Any = None, ignore_index: int = -100,
                   reduction: str) -> Any:
    rows, flat, _ = _class_rows(x, target)
    return _picked_loss(_log_softmax(rows, 1), flat, weight, ignore_index, reduction,
                        target.shape)


def _cross_entropy_vjp(g: Any, out: Any, needs: Any, x: Any, *, target: Any, weight: Any = None,
                       ignore_index: int = -100, reduction: str) -> tuple[Any]:
    rows, flat, back = _class_rows(x, target)
    d_logp = _picked_grad(g, rows.shape, flat, weight, ignore_index, reduction)
    d_rows = d_logp - _softmax(rows, 1) * d_logp.sum(axis=1, keepdims=True)
    return (back(d_rows),)


def _ce_scale(out: Any, x: Any, *, target: Any, weight: Any = None, ignore_index: int = -100,
              reduction: str) -> Any:
    rows, flat, _ = _class_rows(x, target)
    w, _ = _class_weights(flat, weight, ignore_index, rows.shape[1])
    terms = (np.abs(rows).max(axis=1) * 2 + 1 + np.abs(_log_softmax(rows, 1)).max(axis=1)) * w
    if reduction == "none":
        return terms.reshape(target.shape)
    total = terms.sum()
    return np.asarray(total / w.sum() if reduction == "mean" else total)


def _cross_entropy_terms(g: Any, out: Any, needs: Any, x: Any, **options: Any) -> tuple[Any]:
    rows, flat, back = _class_rows(x, options["target"])
    d_logp = np.abs(_picked_grad(g, rows.shape, flat, options.get("weight"),
                                 options.get("ignore_index", -100), options["reduction"]))
    return (back(d_logp + _softmax(rows, 1) * d_logp.sum(axis=1, keepdims=True)),)


op("cross_entropy", _cross_entropy_vjp, scale=_ce_scale, terms=_cross_entropy_terms)(
    _cross_entropy)


def _nll_loss(x: Any, *, target: Any, weight: Any = None, ignore_index: int = -100,
              reduction: str) -> Any:
    rows, flat, _ = _class_rows(x, target)
    return _picked_loss(rows, flat, weight, ignore_index, reduction, target.shape)


def _nll_vjp(g: Any, out: Any, needs: Any, x: Any, *, target: Any, weight: Any = None,
             ignore_index: int = -100, reduction: str) -> tuple[Any]:
    rows, flat, back = _class_rows(x, target)
    return (back(_picked_grad(g, rows.shape, flat, weight, ignore_index, reduction)),)


# scale: the same reduction of the picked |x| (a loss of -|x| is |x| w)
op("nll_loss", _nll_vjp, scale=lambda out, x, **options: _nll_loss(-np.abs(x), **options))(
    _nll_loss)

# PyTorch's clamps: each log at -100; the gradient's denominator at 1e-12 rounded to float32
_LOG_FLOOR = -100.0
_BCE_EPSILON = float(np.float32(1e-12))


def _bce(x: Any, t: Any, *, weight: Any = None, reduction: str) -> Any:
    losses = -(t * np.maximum(np.log(x), _LOG_FLOOR) + (1 - t) * np.maximum(np.log1p(-x),
                                                                           _LOG_FLOOR))
    return _reduce(losses if weight is None else losses * weight, reduction)


def _bce_vjp(g: Any, out: Any, needs: Any, x: Any, t: Any, *, weight: Any = None,
             reduction: str) -> tuple[Any, Any]:
    g = _reduce_grad(g, np.broadcast_shapes(x.shape, t.shape), reduction)
    if weight is not None:
        g = g * weight
    grad_x = g * (x - t) / np.maximum(x * (1 - x), _BCE_EPSILON)
    grad_t = g * (np.log1p(-x) - np.log(x)) if needs[1] else None
    return grad_x, grad_t


def _bce_terms(g: Any, out: Any, needs: Any, x: Any, t: Any, *, weight: Any = None,
               reduction: str) -> tuple[Any, Any]:
    g = _reduce_grad(g, np.broadcast_shapes(x.shape, t.shape), reduction)
    if weight is not None:
        g = g * weight
    return (g * (np.abs(x) + np.abs(t)) / np.maximum(x * (1 - x), _BCE_EPSILON),
            g * (np.abs(np.log1p(-x)) + np.abs(np.log(x))))


op("binary_cross_entropy", _bce_vjp, terms=_bce_terms,
   scale=lambda out, x, t, *, weight=None, reduction: _loss_scale(
       (np.abs(np.log(x)) + np.abs(np.log1p(-x)) + 1) * (1 if weight is None else weight),
       reduction))(_bce)


def _bce_logits(x: Any, t: Any, *, weight: Any = None, pos_weight: Any = None,
                reduction: str) -> Any:
    p = 1.0 if pos_weight is None else pos_weight
    losses = (1 - t) * x - (1 + (p - 1) * t) * _log_sigmoid(x)
    return _reduce(losses if weight is None else losses * weight, reduction)


def _bce_logits_vjp(g: Any, out: Any, needs: Any, x: Any, t: Any, *, weight: Any = None,
                    pos_weight: Any = None, reduction: str) -> tuple[Any, Any]:
    p = 1.0 if pos_weight is None else pos_weight
    g = _reduce_grad(g, np.broadcast_shapes(x.shape, t.shape), reduction)
    if weight is not None:
        g = g * weight
    grad_x = g * ((1 + (p - 1) * t) * _sigmoid(x) - p * t)
    grad_t = g * (-x - (p - 1) * _log_sigmoid(x)) if needs[1] else None
    return grad_x, grad_t


def _bce_logits_terms(g: Any, out: Any, needs: Any, x: Any, t: Any, *, weight: Any = None,
                      pos_weight: Any = None, reduction: str) -> tuple[Any, Any]:
    p = 1.0 if pos_weight is None else pos_weight
    g = _reduce_grad(g, np.broadcast_shapes(x.shape, t.shape), reduction)
    if weight is not None:
        g = g * weight
    grad_x = g * ((1 + np.abs((p - 1) * t)) * _sigmoid(x) + np.abs(p * t))
    grad_t = g * (np.abs(x) + np.abs((p - 1) * _log_sigmoid(x)))
    return grad_x, grad_t


op("binary_cross_entropy_with_logits", _bce_logits_vjp, terms=_bce_logits_terms,
   scale=lambda out, x, t, *, weight=None, pos_weight=None, reduction: _loss_scale(
       (2 * np.abs(x) + 1) * (1 if pos_weight is None else 1 + np.abs(pos_weight))
       * (1 if weight is None else weight), reduction))(_bce_logits)


# ---------------------------------------------------------------------------------------------
# Evaluating programs
# ---------------------------------------------------------------------------------------------


def apply(step: Step, values: Sequence[np.ndarray]) -> np.ndarray:
    """The value of one step, given the values before it."""
    if step.op == "input":
        return np.array(step.params["array"], dtype=np.float64)
    with np.errstate(all="raise", under="ignore"):
        return np.asarray(OPS[step.op].forward(*step.operands(values), **step.options()),
                          dtype=np.float64)


def evaluate(steps: Sequence[Step]) -> list[np.ndarray]:
    """Every value of the program, in order."""
    values: list[np.ndarray] = []
    for step in steps:
        values.append(apply(step, values))
    return values


def loss(program: Program, values: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(w * values[k]) for k, w in program.loss_weights.items()))


def local_gradients(program: Program, index: int, values: Sequence[np.ndarray],
                    grad: np.ndarray, terms: bool = False) -> list[tuple[int, np.ndarray]]:
    """One reverse-mode step through step ``index``: (argument index, contribution to its
    gradient) for each argument, given the gradient ``grad`` of the step's output ``values
    [index]``. With ``terms``, the sizes of the terms each contribution sums instead (from
    ``|grad|``), for error bounds."""
    step = program.steps[index]
    arrays = step.operands(values)
    const_at = step.params.get("const_side") if "const" in step.params else None
    needs = tuple(position != const_at for position in range(len(arrays)))
    rule = OPS[step.op]
    out = values[index]
    with np.errstate(all="raise", under="ignore"):
        if terms:
            local = (rule.terms or rule.vjp)(np.abs(grad), out, needs, *arrays, **step.options())
        else:
            local = rule.vjp(grad, out, needs, *arrays, **step.options())
    local = [g for position, g in enumerate(local) if position != const_at]
    contributions = []
    for arg, g in zip(step.args, local, strict=True):
        if g is not None:
            contributions.append((arg, sum_to(np.abs(g) if terms else g, values[arg].shape)))
    return contributions


def adjoints(program: Program, values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """dL/dv for every value v of the program (reverse mode, one step at a time)."""
    grads = [np.zeros(v.shape) for v in values]
    for k, w in program.loss_weights.items():
        grads[k] = grads[k] + w
    for i in range(len(program.steps) - 1, -1, -1):
        step = program.steps[i]
        if step.op == "input" or not np.any(grads[i]):
            continue
        for arg, contribution in local_gradients(program, i, values, grads[i]):
            grads[arg] = grads[arg] + contribution
    return grads


def branches(steps: Sequence[Step], values: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """Per step, which side of each kink its inputs are on (None for smooth ops)."""
    out: list[np.ndarray | None] = []
    for step in steps:
        rule = OPS[step.op].branches if step.op != "input" else None
        out.append(None if rule is None else np.asarray(
            rule(*step.operands(values), **step.options())))
    return out


def rounding_scale(step: Step, values: Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
    """Per element of the step's output: the size of the terms its computation rounds."""
    rule = OPS[step.op].scale
    if rule is None:
        return np.abs(out)
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.abs(np.asarray(
            rule(out, *step.operands(values), **step.options()))), out.shape)


def loss_error_bound(program: Program, values: Sequence[np.ndarray],
                     grads: Sequence[np.ndarray], ulps: float) -> float:
    """First-order bound on |L computed - L exact| when every step rounds its output by at
    most ``ulps`` units of its terms' size: sum over steps of |dL/dv| * ulps * eps * scale(v)
    (plus the loss's own sum)."""
    total = 0.0
    for i, step in enumerate(program.steps):
        if step.op == "input":
            continue
        total += float(np.sum(np.abs(grads[i]) * rounding_scale(step, values, values[i])))
    terms = sum(float(np.sum(np.abs(w * values[k]))) for k, w in program.loss_weights.items())
    return ulps * EPS * (total + terms)
