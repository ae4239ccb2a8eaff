"""Random sampling with tensors for parameters: ``normal``, ``bernoulli``, and the in-place
fills ``normal_``, ``uniform_``, ``bernoulli_`` (``x.normal_(0, 0.02)`` as initialisers write
it). Draws come from tinynet's generator (``tn.manual_seed``) or a given one, in float64,
rounded to the result's dtype. Samples are not differentiated (as in PyTorch).

Each draw is a recorded op (``ops.datadep.draw``) whose sample function reads only the
generator it is handed and the arrays passed in (the probabilities, the means): under
``tn.compile`` a replay draws again from the generator as it is then, in eager order, so a
compiled step draws the numbers the eager step draws."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.datadep import draw as recorded_draw
from tinynet.ops.inplace import inplace
from tinynet.ops.operands import shape_args
from tinynet.random import source
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
    where = source(generator, "normal")
    return recorded_draw(_normal_sample(mean, std, shape, target), where,
                         *[x.detach() for x in (mean, std) if isinstance(x, Tensor)])


def _normal_sample(mean: Any, std: Any, shape: tuple[int, ...], target: np.dtype) -> Any:
    """standard_normal(shape) * std + mean, with mean and std read from the arrays handed to
    the draw when they are tensors (a replay reads that call's values)."""
    numbers = [None if isinstance(x, Tensor) else np.asarray(x) for x in (mean, std)]

    def sample(rng: np.random.Generator, *arrays: np.ndarray) -> np.ndarray:
        given = iter(arrays)
        m, s = (n if n is not None else next(given) for n in numbers)
        if np.any(s < 0):
            raise ValueRangeError(f"normal: std must be >= 0, got a minimum of {np.min(s)}")
        return np.asarray(rng.standard_normal(shape) * s + m).astype(target)

    return sample


def bernoulli(input: Any, p: Any = None, *, generator: Any = None) -> Tensor:  # noqa: A002
    """1 with probability ``input`` (or ``p``), else 0, elementwise; the result has input's
    shape and dtype (torch.bernoulli)."""
    probs = _values(input) if p is None else np.broadcast_to(np.asarray(p), _values(input).shape)
    like = _values(input)
    if like.dtype.kind != "f":
        raise DTypeError(f"bernoulli: expects a float tensor of probabilities, got {like.dtype}")
    if probs.size and (np.any(probs < 0) or np.any(probs > 1) or np.any(np.isnan(probs))):
        raise ValueRangeError("bernoulli: probabilities must be in [0, 1]")
    where = source(generator, "bernoulli")
    if p is None:
        return recorded_draw(_bernoulli_sample, where, _detached(input))
    fixed = np.asarray(p)
    return recorded_draw(lambda rng, x: _bernoulli_sample(rng, x, fixed), where,
                         _detached(input))


def _detached(x: Any) -> Any:
    """What a draw reads (no gradient flows through a sample, as before: not part of a graph)."""
    return x.detach() if isinstance(x, Tensor) else x


def _bernoulli_sample(rng: np.random.Generator, like: np.ndarray,
                      probs: Any = None) -> np.ndarray:
    """1 where a uniform draw falls below the probability (``like``'s values, or ``probs``),
    in like's shape and dtype; the probabilities are checked at every draw (a replay too)."""
    probs = like if probs is None else np.broadcast_to(probs, like.shape)
    if probs.size and (np.any(probs < 0) or np.any(probs > 1) or np.any(np.isnan(probs))):
        raise ValueRangeError("bernoulli: probabilities must be in [0, 1]")
    return (rng.random(like.shape) < probs).astype(like.dtype)


def _fill(x: Tensor, op: str, sample: Any, generator: Any) -> Tensor:
    """Draw ``sample(rng, shape)`` (a recorded draw) and write it into x, in place."""
    if x.data.dtype.kind != "f":
        raise DTypeError(f"{op}: fills float tensors, this one is {x.dtype}")
    shape = x.data.shape
    new = recorded_draw(lambda rng: sample(rng, shape), source(generator, op))
    return inplace(x, op, _write, (new,))


def _write(data: np.ndarray, new: np.ndarray) -> None:
    data[...] = new


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill x with samples of N(mean, std^2), in place (under ``tn.no_grad()`` for a
    parameter, as ``nn.init`` does)."""
    if std < 0:
        raise ValueRangeError(f"normal_: std must be >= 0, got {std}")
    return _fill(x, "normal_", lambda rng, shape: rng.standard_normal(shape) * std + mean,
                 generator)


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill x with samples of U[a, b), in place (PyTorch names the bounds from and to)."""
    if a > b:
        raise ValueRangeError(f"uniform_: expects from <= to, got from={a}, to={b}")
    return _fill(x, "uniform_", lambda rng, shape: rng.random(shape) * (b - a) + a, generator)


def bernoulli_(x: Tensor, p: Any = 0.5, *, generator: Any = None) -> Tensor:
    """Fill x with 1 (probability p) or 0, in place."""
    probs = _values(p)
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueRangeError("bernoulli_: p must be in [0, 1]")
    shape = x.data.shape
    where = source(generator, "bernoulli_")
    if isinstance(p, Tensor):  # the probabilities are read again at every replay
        new = recorded_draw(lambda rng, q: rng.random(shape) < q, where, p.detach())
    else:
        new = recorded_draw(lambda rng: rng.random(shape) < probs, where)
    return inplace(x, "bernoulli_", _write, (new,))


def empty_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    """An uninitialised tensor with input's shape and (unless ``dtype``) dtype."""
    like = _values(input)
    target = like.dtype if dtype is None else dtypes.to_dtype(dtype)
    return Tensor._make(np.empty(like.shape, dtype=target)).requires_grad_(requires_grad)
