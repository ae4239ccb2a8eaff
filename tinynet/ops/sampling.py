"""Random sampling with tensors for parameters: ``normal``, ``bernoulli``, and the in-place
fills ``normal_``, ``uniform_``, ``bernoulli_`` (``x.normal_(0, 0.02)`` as initialisers write
it). Draws come from tinynet's generator (``tn.manual_seed``) or a given one, in float64,
rounded to the result's dtype. Samples are not differentiated (as in PyTorch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.inplace import inplace
from tinynet.ops.operands import shape_args
from tinynet.random import get_generator
from tinynet.tensor import Tensor


def _values(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Any = None,
           dtype: Any = None) -> Tensor:
    """Samples of N(mean, std^2) (torch.normal): ``mean`` and ``std`` are tensors (broadcast
    together; the result has their shape and float dtype) or numbers with ``size``."""
    m, s = _values(mean), _values(std)
    tensors = isinstance(mean, Tensor) or isinstance(std, Tensor)
    if size is not None:
        shape = shape_args((size,) if not isinstance(size, tuple | list) else tuple(size),
                           "normal")
    elif tensors:
        try:
            shape = np.broadcast_shapes(m.shape, s.shape)
        except ValueError as e:
            raise ShapeError(f"normal: mean {m.shape} and std {s.shape} cannot be "
                             "broadcast") from e
    else:
        raise DTypeError("normal: give size when mean and std are numbers, e.g. "
                         "tn.normal(0.0, 1.0, size=(2, 3))")
    if np.any(s < 0):
        raise ValueRangeError(f"normal: std must be >= 0, got a minimum of {np.min(s)}")
    if dtype is not None:
        target = dtypes.to_dtype(dtype)
    else:  # the float dtype of the tensor parameters (float64 if either is), else the default
        floats = [x.dtype for x in (mean, std) if isinstance(x, Tensor) and x.dtype.kind == "f"]
        target = max(floats, key=lambda d: d.itemsize) if floats else dtypes.get_default_dtype()
    if target.kind != "f":
        raise DTypeError(f"normal: samples need a float dtype, got {target}")
    rng = get_generator(generator, "normal")
    draw = rng.standard_normal(shape) * s + m
    return Tensor._make(np.asarray(draw).astype(target))


def bernoulli(input: Any, p: Any = None, *, generator: Any = None) -> Tensor:  # noqa: A002
    """1 with probability ``input`` (or ``p``), else 0, elementwise; the result has input's
    shape and dtype (torch.bernoulli)."""
    probs = _values(input) if p is None else np.broadcast_to(np.asarray(p), _values(input).shape)
    like = _values(input)
    if like.dtype.kind != "f":
        raise DTypeError(f"bernoulli: expects a float tensor of probabilities, got {like.dtype}")
    if probs.size and (np.any(probs < 0) or np.any(probs > 1) or np.any(np.isnan(probs))):
        raise ValueRangeError("bernoulli: probabilities must be in [0, 1]")
    rng = get_generator(generator, "bernoulli")
    return Tensor._make((rng.random(like.shape) < probs).astype(like.dtype))


def _fill(x: Tensor, op: str, draw: Any) -> Tensor:
    if x.data.dtype.kind != "f":
        raise DTypeError(f"{op}: fills float tensors, this one is {x.dtype}")

    def change(data: np.ndarray) -> None:
        data[...] = draw(data.shape)

    return inplace(x, op, change)


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill x with samples of N(mean, std^2), in place (under ``tn.no_grad()`` for a
    parameter, as ``nn.init`` does)."""
    if std < 0:
        raise ValueRangeError(f"normal_: std must be >= 0, got {std}")
    rng = get_generator(generator, "normal_")
    return _fill(x, "normal_", lambda shape: rng.standard_normal(shape) * std + mean)


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill x with samples of U[a, b), in place (PyTorch names the bounds from and to)."""
    if a > b:
        raise ValueRangeError(f"uniform_: expects from <= to, got from={a}, to={b}")
    rng = get_generator(generator, "uniform_")
    return _fill(x, "uniform_", lambda shape: rng.random(shape) * (b - a) + a)


def bernoulli_(x: Tensor, p: Any = 0.5, *, generator: Any = None) -> Tensor:
    """Fill x with 1 (probability p) or 0, in place."""
    probs = _values(p)
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueRangeError("bernoulli_: p must be in [0, 1]")
    rng = get_generator(generator, "bernoulli_")

    def change(data: np.ndarray) -> None:
        data[...] = rng.random(data.shape) < probs

    return inplace(x, "bernoulli_", change)


def empty_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    """An uninitialised tensor with input's shape and (unless ``dtype``) dtype."""
    like = _values(input)
    target = like.dtype if dtype is None else dtypes.to_dtype(dtype)
    return Tensor._make(np.empty(like.shape, dtype=target)).requires_grad_(requires_grad)
