"""``tn.distributions.Categorical``, as ``torch.distributions.Categorical``: what policy-gradient
scripts (pytorch/examples' reinforce.py, actor_critic.py) use to sample actions and score them.

    m = Categorical(probs)          # or Categorical(logits=scores)
    action = m.sample()             # int64, shape = batch shape; not differentiable
    loss = -m.log_prob(action) * reward        # differentiable in probs / logits

The last dimension indexes the categories. ``probs`` are normalised to sum to 1 and
``logits`` to log-probabilities (``logits - logsumexp(logits)``), as in PyTorch, so
``log_prob`` and ``entropy`` are the same numbers. Samples come from tinynet's generator
(``tn.manual_seed``), not PyTorch's.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tinynet import ops
from tinynet.errors import ShapeError, ValueRangeError
from tinynet.ops.datadep import draw
from tinynet.random import source
from tinynet.tensor import Tensor

__all__ = ["Categorical"]


def _tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(value)


def _inverse_cdf(rng: np.random.Generator, probs: np.ndarray, *,
                 shape: tuple[int, ...]) -> np.ndarray:
    """Category indices of ``shape`` (int64): the first category whose cumulative probability
    exceeds a uniform draw, row by row of ``probs`` (..., K)."""
    cumulative = np.cumsum(np.asarray(probs, dtype=np.float64), axis=-1)
    cumulative /= cumulative[..., -1:]
    u = rng.random(shape + (1,))
    index = (u >= np.broadcast_to(cumulative, shape + (probs.shape[-1],))).sum(-1)
    return np.minimum(index, probs.shape[-1] - 1).astype(np.int64)


class Categorical:
    """A distribution over ``0 .. K-1`` for each row of ``probs`` (or ``logits``), shape
    (..., K)."""

    def __init__(self, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueRangeError("Categorical: either `probs` or `logits` must be specified, "
                                  "but not both")
        if probs is not None:
            probs = _tensor(probs)
            if probs.ndim < 1:
                raise ShapeError("Categorical: probs must have at least one dimension")
            if validate_args is not False and (probs.data < 0).any():
                raise ValueRangeError("Categorical: probs must be non-negative")
            self.probs = probs / probs.sum(-1, keepdim=True)
            eps = float(np.finfo(probs.data.dtype).eps)  # PyTorch's clamp_probs
            self.logits = self.probs.clamp(min=eps, max=1 - eps).log()
        else:
            logits = _tensor(logits)
            if logits.ndim < 1:
                raise ShapeError("Categorical: logits must have at least one dimension")
            self.logits = logits - ops.logsumexp(logits, -1, keepdim=True)
            self.probs = ops.softmax(logits, -1)
        self._num_events = self.probs.shape[-1]
        self.batch_shape = tuple(self.probs.shape[:-1])

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(self.probs.shape)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        """Category indices of shape ``sample_shape + batch_shape`` (int64), by inverting each
        row's cumulative distribution at a uniform draw."""
        shape = tuple(sample_shape) + self.batch_shape
        # a recorded draw: tn.compile draws again at every replay, from that call's probs
        return draw(functools.partial(_inverse_cdf, shape=shape), source(None, "Categorical"),
                    self.probs.detach())

    def log_prob(self, value: Any) -> Tensor:
        """log p(value) for category indices ``value`` (broadcast against the batch shape)."""
        value = _tensor(value)
        if value.data.dtype.kind not in "iu":
            raise ValueRangeError(f"Categorical.log_prob: value must hold integer category "
                                  f"indices, got dtype {value.data.dtype}")
        if ((value.data < 0) | (value.data >= self._num_events)).any():
            raise ValueRangeError(f"Categorical.log_prob: values must be in 0..."
                                  f"{self._num_events - 1}")
        # tensor ops all the way (no numpy on .data), so tn.compile records where the indices
        # come from: a sampled action is replayed with that call's draw
        index = value if value.data.dtype == np.int64 else value.long()
        shape = np.broadcast_shapes(index.shape, self.batch_shape)
        logits = ops.broadcast_to(self.logits, shape + (self._num_events,))
        picked = ops.gather(logits, -1, ops.broadcast_to(index, shape).unsqueeze(-1))
        return picked.squeeze(-1)

    def entropy(self) -> Tensor:
        """-sum p log p over the categories."""
        return -(self.probs * self.logits).sum(-1)

    def __repr__(self) -> str:
        return f"Categorical(probs: {tuple(self.probs.shape)})"
