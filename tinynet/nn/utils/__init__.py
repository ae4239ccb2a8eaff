"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` rescales all gradients
together so their joint norm is at most ``max_norm``; ``clip_grad_value_`` clamps each
gradient element to ``[-clip_value, clip_value]``. Both edit ``p.grad`` in place, between
``loss.backward()`` and ``optimizer.step()``."""

from __future__ import annotations

import functools
import math
import types
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, GraphError, ShapeError, ValueRangeError
from tinynet.ops.datadep import _Compute, write_in_place
from tinynet.tensor import Tensor, made_from_literals

__all__ = ["NonFiniteNormError", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_",
           "get_total_norm"]


class NonFiniteNormError(ValueRangeError, RuntimeError):
    """clip_grad_norm_(error_if_nonfinite=True) met a NaN or infinite total norm (PyTorch
    raises RuntimeError here, so this is one too)."""


def _parameters(parameters: Any, function: str) -> list[Tensor]:
    """A single Tensor or an iterable of Tensors, as a list."""
    if isinstance(parameters, Tensor):
        return [parameters]
    if not isinstance(parameters, Iterable) or isinstance(parameters, str | bytes | dict):
        raise DTypeError(f"{function}: parameters must be a Tensor or an iterable of Tensors "
                         f"(e.g. model.parameters()), got {type(parameters).__name__}")
    is_generator = isinstance(parameters, types.GeneratorType)
    params = list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise DTypeError(f"{function}: parameters must be Tensors, got one of type "
                             f"{type(p).__name__}")
    if is_generator and not params:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                      UserWarning, stacklevel=3)
    return params


def _grads(params: list[Tensor], function: str) -> list[Tensor]:
    """The gradients of the parameters that have one."""
    grads = []
    for p in params:
        grad = p.grad
        if grad is None:
            continue
        if not isinstance(grad, Tensor) or grad.data.dtype.kind != "f":
            raise DTypeError(f"{function}: a parameter's .grad must be a floating-point Tensor, "
                             f"got {getattr(grad, 'dtype', type(grad).__name__)}")
        if not grad.data.flags.writeable:
            raise GraphError(f"{function}: a .grad of shape {grad.shape} has read-only memory "
                             "and can't be clipped in place; give it its own copy")
        grads.append(grad)
    return grads


def _number(value: Any, what: str, function: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        if not (isinstance(value, Tensor) and value.data.size == 1):
            raise DTypeError(f"{function}: {what} must be a number, got "
                             f"{type(value).__name__}")
    return float(value)


def _vector_norm(x: np.ndarray, norm_type: float, function: str) -> np.ndarray:
    """``torch.linalg.vector_norm(x, norm_type)`` of all elements, in x's dtype:
    max |x| (inf), min |x| (-inf), the number of non-zeros (0), (sum |x|^p)^(1/p) otherwise,
    computed as PyTorch does (without rescaling: 1e200 in float64 gives inf)."""
    a = np.abs(x)
    if math.isinf(norm_type):
        if a.size == 0:
            raise ShapeError(f"{function}: cannot compute the {norm_type} norm of an empty "
                             "gradient (the max/min of nothing is undefined)")
        return a.max() if norm_type > 0 else a.min()
    if norm_type == 0:
        return np.count_nonzero(a).astype(x.dtype)
    if a.size == 1:  # |x| exactly, as PyTorch: no x^2 to underflow (6e-278 stays 6e-278)
        return a.reshape(())
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return np.sqrt((a * a).sum())
    return (a ** x.dtype.type(norm_type)).sum() ** x.dtype.type(1 / norm_type)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of all the tensors' elements taken together, as if concatenated into one
    vector: the norm of the vector of per-tensor norms (``torch.nn.utils.get_total_norm``).
    0-d Tensor of the tensors' (promoted) dtype; ``tensor(0.)`` when there are none.
    ``foreach`` is accepted for PyTorch compatibility (it only chooses PyTorch's kernel)."""
    function = "get_total_norm"
    return _total_norm(_parameters(tensors, function), norm_type, error_if_nonfinite, function)


def _total_norm(tensors: list[Tensor], norm_type: Any, error_if_nonfinite: bool,
                function: str) -> Tensor:
    norm_type = _number(norm_type, "norm_type", function)
    if not tensors:
        return Tensor._make(made_from_literals(np.asarray(0.0,
                                                          dtype=dtypes.get_default_dtype())))
    # one recorded op (ops.datadep._Compute): tn.compile computes the norm anew at every replay
    norm = functools.partial(_norm_of, norm_type=norm_type,
                             error_if_nonfinite=error_if_nonfinite, function=function)
    return _Compute.apply(*[t.detach() for t in tensors], fn=norm)


def _norm_of(*arrays: np.ndarray, norm_type: float, error_if_nonfinite: bool,
             function: str) -> np.ndarray:
    """The norm of the per-array norms (0-d, in the arrays' promoted dtype)."""
    dtype = np.result_type(*arrays)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # inf/NaN as PyTorch's
        norms = np.array([_vector_norm(a, norm_type, function) for a in arrays], dtype=dtype)
        total = np.asarray(_vector_norm(norms, norm_type, function), dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise NonFiniteNormError(
            f"{function}: The total norm of order {norm_type} for gradients from `parameters` "
            f"is non-finite ({float(total)}), so it cannot be clipped. To disable this error and "
            "scale the gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Scale every gradient by ``min(max_norm / (total_norm + 1e-6), 1)``, in place
    (``torch.nn.utils.clip_grads_with_norm_``)."""
    function = "clip_grads_with_norm_"
    grads = _grads(_parameters(parameters, function), function)
    _scale(grads, _number(max_norm, "max_norm", function), total_norm, function)


def _scale(grads: list[Tensor], max_norm: float, total_norm: Any, function: str) -> None:
    if not grads:
        return
    if not isinstance(total_norm, Tensor) or total_norm.data.size != 1:
        raise DTypeError(f"{function}: total_norm must be a one-element Tensor (from "
                         f"get_total_norm), got {type(total_norm).__name__}")
    # one recorded in-place op: tn.compile rescales that call's gradients at every replay
    write_in_place(functools.partial(_rescale, max_norm=max_norm), tuple(range(len(grads))),
                   *grads, total_norm.detach())


def _rescale(*arrays: np.ndarray, max_norm: float) -> None:
    """grads *= min(max_norm / (norm + 1e-6), 1), in place; the norm is the last array."""
    norm = arrays[-1].reshape(())
    dt = norm.dtype.type
    # min(.., 1) with np.minimum, which keeps a NaN (a NaN norm makes every gradient NaN,
    # as in PyTorch; an infinite one makes them 0, and inf * 0 = NaN)
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0: the NaN PyTorch gives
        coef = np.minimum(dt(max_norm) / (norm + dt(1e-6)), dt(1.0))
        for grad in arrays[:-1]:
            grad *= grad.dtype.type(coef)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Rescale the gradients of ``parameters`` together so their total norm is at most
    ``max_norm``; returns the total norm before clipping (a 0-d Tensor).

        total = || (||g_1||_p, ||g_2||_p, ...) ||_p          (p = norm_type; inf: max |g|)
        g_i   = g_i * min(max_norm / (total + 1e-6), 1)      (in place)

    Parameters without a gradient are skipped. With a NaN total norm every gradient becomes
    NaN, with an infinite one the finite elements become 0 (as in PyTorch), unless
    ``error_if_nonfinite=True``, which raises ``NonFiniteNormError`` (a RuntimeError) and
    changes nothing. ``foreach`` is accepted for PyTorch compatibility."""
    function = "clip_grad_norm_"
    grads = _grads(_parameters(parameters, function), function)
    max_norm = _number(max_norm, "max_norm", function)
    total = _total_norm(grads, norm_type, error_if_nonfinite, function)
    _scale(grads, max_norm, total, function)
    return total


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor],
    clip_value: float,
    foreach: bool | None = None,
) -> None:
    """Clamp every gradient element of ``parameters`` to ``[-clip_value, clip_value]``, in
    place (NaN stays NaN). ``foreach`` is accepted for PyTorch compatibility."""
    function = "clip_grad_value_"
    params = _parameters(parameters, function)
    clip_value = _number(clip_value, "clip_value", function)
    grads = _grads(params, function)
    if grads:  # one recorded in-place op: tn.compile clamps that call's gradients each replay
        write_in_place(functools.partial(_clamp, clip_value=clip_value),
                       tuple(range(len(grads))), *grads)


def _clamp(*grads: np.ndarray, clip_value: float) -> None:
    for grad in grads:
        dt = grad.dtype.type
        np.clip(grad, dt(-clip_value), dt(clip_value), out=grad)


def parameters_to_vector(parameters: Any) -> Tensor:
    """All parameters flattened and concatenated into one vector (recorded: differentiable)."""
    from tinynet import ops

    params = _parameters(parameters, "parameters_to_vector")
    return ops.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Any) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in order (the inverse of
    ``parameters_to_vector``); ``vec`` must have exactly as many elements as they do."""
    from tinynet.autograd import no_grad

    if not isinstance(vec, Tensor):
        raise DTypeError(f"vector_to_parameters: expected vec to be a Tensor, got "
                         f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ShapeError(f"vector_to_parameters: vec must be 1-d, got shape {tuple(vec.shape)}")
    params = _parameters(parameters, "vector_to_parameters")
    total = sum(p.data.size for p in params)
    if vec.data.size != total:
        raise ShapeError(f"vector_to_parameters: vec has {vec.data.size} elements, the "
                         f"parameters {total}")
    start = 0
    with no_grad():
        for p in params:
            size = p.data.size
            p.copy_(vec[start:start + size].reshape(p.shape))
            start += size


__all__ += ["parameters_to_vector", "vector_to_parameters"]

from tinynet.nn.utils import rnn  # noqa: E402 - torch.nn.utils.rnn: packed and padded sequences

__all__ += ["rnn"]
