"""Check autograd against central finite differences.

For every input element x_j and every output element y_i, compare the autograd Jacobian entry
dy_i/dx_j with (f(x + eps e_j)_i - f(x - eps e_j)_i) / (2 eps), in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinynet import autograd
from tinynet.errors import GradcheckError
from tinynet.tensor import Tensor


def _outputs(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> list[Tensor]:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, tuple | list) else [out]
    return [o for o in outs if isinstance(o, Tensor)]


def numerical_jacobians(
    fn: Callable[..., Any], inputs: Sequence[Tensor], eps: float = 1e-6
) -> list[np.ndarray]:
    """One (total output size, input size) matrix per input, by central differences."""
    jacobians = []
    for x in inputs:
        columns = []
        flat = x.data.reshape(-1)  # a view: perturbations write through to x
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            with autograd.no_grad():
                plus = np.concatenate([o.data.reshape(-1) for o in _outputs(fn, inputs)])
            flat[j] = original - eps
            with autograd.no_grad():
                minus = np.concatenate([o.data.reshape(-1) for o in _outputs(fn, inputs)])
            flat[j] = original
            columns.append((plus - minus) / (2 * eps))
        n_out = sum(o.data.size for o in _outputs(fn, inputs))
        jacobians.append(np.stack(columns, axis=1) if columns else np.zeros((n_out, 0)))
    return jacobians


def analytical_jacobians(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> list[np.ndarray]:
    """The same matrices from autograd, one backward pass per output element."""
    outs = _outputs(fn, inputs)
    sizes = [o.data.size for o in outs]
    rows: list[list[np.ndarray]] = [[] for _ in inputs]
    for k, out in enumerate(outs):
        for i in range(sizes[k]):
            seed = np.zeros(out.shape, dtype=out.dtype)
            seed.reshape(-1)[i] = 1
            if not out.requires_grad:
                grads: tuple[Any, ...] = (None,) * len(inputs)
            else:
                grads = autograd.grad(out, list(inputs), seed, retain_graph=True,
                                      allow_unused=True)
            for j, (x, g) in enumerate(zip(inputs, grads, strict=True)):
                rows[j].append(np.zeros(x.data.size) if g is None else g.data.reshape(-1))
    return [np.stack(r) if r else np.zeros((0, x.data.size)) for r, x in zip(rows, inputs,
                                                                              strict=True)]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """True if autograd matches finite differences for every element of every input that
    requires grad; otherwise raise ``GradcheckError`` naming the worst element and both values
    (or return False with ``raise_exception=False``).

    Inputs should be float64 tensors (finite differences in float32 are too coarse);
    other floating inputs are rejected with a clear error.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    # Private contiguous copies: finite differences perturb them in place.
    inputs = [
        Tensor._make(np.array(x.data, order="C")).requires_grad_(x.requires_grad)
        if isinstance(x, Tensor) and x.is_leaf else x
        for x in inputs
    ]
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise GradcheckError("gradcheck: no input requires grad, nothing to check")
    for x in checked:
        if x.dtype != np.float64:
            raise GradcheckError(
                f"gradcheck: inputs must be float64 for finite differences to be accurate; got "
                f"{x.dtype} for an input of shape {x.shape} (use x.double())"
            )

    def call(*args: Tensor) -> Any:
        return fn(*args)

    analytic = analytical_jacobians(call, inputs)
    numeric = numerical_jacobians(call, inputs, eps)
    worst = None
    for index, (x, a, n) in enumerate(zip(inputs, analytic, numeric, strict=True)):
        if not (isinstance(x, Tensor) and x.requires_grad) or a.size == 0:
            continue
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        excess = np.where(np.isnan(excess), np.inf, excess)
        k = int(np.argmax(excess))
        if excess.flat[k] > 0 and (worst is None or excess.flat[k] > worst[0]):
            out_i, in_j = np.unravel_index(k, a.shape)
            worst = (excess.flat[k], index, x.shape, np.unravel_index(in_j, x.shape), out_i,
                     a.flat[k], n.flat[k])
    if worst is None:
        return True
    _, index, shape, where, out_i, a_val, n_val = worst
    message = (
        f"gradcheck: autograd and finite differences disagree for input {index} (shape {shape}) "
        f"at element {tuple(int(w) for w in where)}, output element {int(out_i)}: "
        f"autograd {a_val!r}, finite differences {n_val!r} (atol={atol}, rtol={rtol})"
    )
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck the function (inputs, v) -> J(inputs)^T v for a
    fixed random v, whose own gradient autograd computes by double backward."""
    inputs = list(inputs)
    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    vs = [Tensor._make(rng.standard_normal(o.shape)) for o in outs]
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]

    @autograd.enable_grad()
    def first_derivative(*args: Tensor) -> tuple[Tensor, ...]:
        outs = _outputs(fn, args)
        wanted = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        grads = autograd.grad(outs, wanted, vs, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor._make(np.zeros(w.shape))
                     for g, w in zip(grads, wanted, strict=True))

    if not diff:
        raise GradcheckError("gradgradcheck: no input requires grad")
    return gradcheck(first_derivative, inputs, eps, atol, rtol, raise_exception)
