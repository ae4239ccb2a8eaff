"""The two ways in: ``Tensor.backward`` (gradients added into the leaves' ``.grad``) and
``tn.autograd.grad`` (gradients returned). Both check their arguments, make the seed gradient
and hand over to ``engine.run_backward``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinynet.autograd import watch
from tinynet.autograd.engine import run_backward
from tinynet.errors import GraphError, ShapeError
from tinynet.tensor import Tensor, made_from_literals


def backward(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    trace: bool = False,
) -> None:
    """What ``tensor.backward()`` does; see ``Tensor.backward``."""
    if not tensor.requires_grad:
        raise GraphError(
            "backward: this tensor does not require grad and has no grad_fn (was it computed "
            "under no_grad, or from tensors without requires_grad=True?)"
        )
    seed = _seed(tensor, gradient, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    if trace:
        with watch.tracing(watch.step_printer([], norms=True, file=None)):
            run_backward([tensor], [seed], retain_graph, create_graph)
    else:
        run_backward([tensor], [seed], retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    As ``torch.autograd.grad``: ``create_graph=True`` makes the result differentiable (for
    Hessian-vector products or gradient penalties); an input the outputs do not depend on raises
    unless ``allow_unused=True`` (then its gradient is None).
    """
    for what, value in (("outputs", outputs), ("inputs", inputs)):
        if not isinstance(value, Tensor | list | tuple):
            raise GraphError(f"grad: {what} must be a Tensor or a sequence of Tensors, got "
                             f"{type(value).__name__}")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs] * len(outputs) if len(outputs) == 1 else grad_outputs
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise GraphError("grad: every input must be a Tensor with requires_grad=True")
    for out in outputs:
        if not isinstance(out, Tensor) or not out.requires_grad:
            raise GraphError("grad: an output does not require grad (no graph leads to it)")
    seeds = [_seed(out, g, "grad") for out, g in zip(outputs, grad_outputs, strict=True)]
    if retain_graph is None:
        retain_graph = create_graph
    unique = list({id(x): x for x in inputs}.values())  # an input may be listed twice
    gradients = run_backward(outputs, seeds, retain_graph, create_graph, unique)
    by_input = {id(x): g for x, g in zip(unique, gradients, strict=True)}
    final: list[Tensor | None] = []
    for x in inputs:
        g = by_input[id(x)]
        if g is None and not allow_unused:
            raise GraphError(
                f"grad: one of the inputs (shape {x.shape}) was not used to compute the "
                "outputs; pass allow_unused=True if that is expected"
            )
        # each result a tensor of its own, even where one gradient reached two inputs (a + b)
        final.append(None if g is None else Tensor._make(g.data, g.grad_fn, g._version)
                     if create_graph else g.detach().clone())
    return tuple(final)


def _seed(out: Tensor, gradient: Any, op: str) -> Tensor:
    """The gradient backward starts from: ones for a scalar, else the given one, checked."""
    if gradient is None:
        if out.data.size != 1 and op == "grad":
            raise GraphError(
                f"grad: grad_outputs is needed for a non-scalar output of shape {out.shape}"
            )
        if out.data.size != 1:
            raise GraphError(
                f"{op}: grad can be implicitly created only for scalar outputs; this tensor "
                f"has shape {out.shape}. Pass a gradient of that shape, or reduce it first "
                "(e.g. loss.sum().backward())."
            )
        return Tensor._make(made_from_literals(np.ones(out.shape, dtype=out.dtype)))
    if not isinstance(gradient, Tensor):
        from tinynet.dtypes import as_array  # strings, objects, ragged lists: DTypeError

        array = as_array(gradient, copy=False, op=op)
        gradient = Tensor._make(array if array.dtype.kind == "f" else array.astype(out.dtype))
    if gradient.shape != out.shape:
        raise ShapeError(
            f"{op}: gradient has shape {gradient.shape} but the tensor has shape {out.shape}"
        )
    return gradient if gradient.dtype == out.dtype else gradient.to(out.dtype)
