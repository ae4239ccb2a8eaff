"""Checks on Functions written outside tinynet (your own ``class MyOp(tn.autograd.Function)``).

tinynet's own ops are trusted; a user's Function is wrapped once, when the class is defined
(``Function.__init_subclass__`` calls ``guard``): its ``forward`` receives Tensors, as in
PyTorch (tinynet's own ops receive numpy arrays), and its mistakes are reported by name:
forward returning something other than a Tensor, backward returning the wrong number of
gradients or gradients of a shape that can't belong to their input.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tinynet.errors import GraphError, ShapeError
from tinynet.tensor import Tensor


def guard(cls: type, grad_mode: Any) -> None:
    """Wrap ``cls.forward`` and ``cls.backward`` with the checks below; ``grad_mode`` is the
    engine's switch, off while your forward runs."""
    forward, backward = cls.__dict__.get("forward"), cls.__dict__.get("backward")
    if isinstance(forward, staticmethod):
        cls.forward = staticmethod(_checked_forward(cls, forward.__func__, grad_mode))  # type: ignore
    if isinstance(backward, staticmethod):
        cls.backward = staticmethod(_checked_backward(cls, backward.__func__))  # type: ignore


def _checked_forward(cls: type, forward: Any, grad_mode: Any) -> Any:
    """Your ``forward`` receives Tensors, as in PyTorch (``input.clamp(min=0)`` works), and runs
    without recording (its ops are not part of the graph: your ``backward`` is). What it
    returns (a Tensor, an array or a number) and what it saves with ``ctx.save_for_backward``
    (its inputs or its output) are handed to the engine as the arrays tinynet's own ops use."""

    @functools.wraps(forward)
    def run(ctx: Any, *arrays: Any, **options: Any) -> Any:
        tensors = [Tensor._make(a) if isinstance(a, np.ndarray) else a for a in arrays]
        previous, grad_mode.enabled = grad_mode.enabled, False
        try:
            out = forward(ctx, *tensors, **options)
        finally:
            grad_mode.enabled = previous
        if isinstance(out, Tensor):
            out_tensor, out = out, out.data
        elif isinstance(out, bool | int | float):
            out_tensor, out = None, np.asarray(out, dtype=np.result_type(*arrays) if arrays
                                               else None)
        else:
            out_tensor = None
        if not isinstance(out, np.ndarray | np.generic):
            hint = ("a tinynet Function has exactly one output" if isinstance(out, tuple | list)
                    else "return a Tensor")
            raise GraphError(
                f"{cls.__name__}.forward returned {type(out).__name__}, not a Tensor; {hint}"
            )
        # the engine saves by identity with the arrays it passed in and the one it gets back
        by_id = {id(t): a for t, a in zip(tensors, arrays, strict=True)}
        if out_tensor is not None:
            by_id[id(out_tensor)] = out
        ctx.to_save = tuple(by_id.get(id(t), t) for t in ctx.to_save)
        return out

    return run


def _checked_backward(cls: type, backward: Any) -> Any:
    @functools.wraps(backward)
    def run(ctx: Any, grad: Any) -> Any:
        grads = backward(ctx, grad)
        given = grads if type(grads) is tuple else (grads,)
        inputs = ctx.parents
        if len(given) != len(inputs):
            raise GraphError(
                f"{cls.__name__}.backward returned {len(given)} gradient(s) for "
                f"{len(inputs)} input(s) of forward; return one per input, None for inputs "
                "that need none"
            )
        for i, (g, x) in enumerate(zip(given, inputs, strict=True)):
            if g is None:
                continue
            if not isinstance(g, Tensor | np.ndarray | np.generic | int | float):
                raise GraphError(f"{cls.__name__}.backward returned a {type(g).__name__} as "
                                 f"gradient {i}; return Tensors (or None)")
            shape, target = np.shape(g.data if isinstance(g, Tensor) else g), np.shape(
                x.data if isinstance(x, Tensor) else x)
            try:
                fits = np.broadcast_shapes(shape, target) == shape
            except ValueError:
                fits = False
            if not fits:
                raise ShapeError(
                    f"{cls.__name__}.backward returned a gradient of shape {shape} for input "
                    f"{i} of shape {target}; the gradient must have the input's shape"
                )
        return grads

    return run
