"""Dropout: during training, zero each element with probability p and scale the rest by
1/(1-p), so the expected value is unchanged; in eval mode, the identity.

    y = x * m / (1 - p),   m_i ~ Bernoulli(1 - p)        dy/dx = m / (1 - p)

The mask comes from a random stream of its own, derived from tinynet's global generator: after
``tn.manual_seed(n)`` the masks are reproducible, and drawing them does not shift the numbers
that initialisers and ``tn.randn`` see.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tinynet import random
from tinynet.errors import ValueRangeError
from tinynet.nn.module import Module
from tinynet.ops.datadep import draw
from tinynet.tensor import Tensor, made_from_literals

_stream: list[Any] = [None, None]  # (the global generator it was derived from, the stream)


def generator() -> np.random.Generator:
    """Dropout's own generator, re-derived whenever ``tn.manual_seed`` replaces the global one."""
    random.default_generator()  # (refused while tn.compile traces: dropout() draws through
    return stream()             # a recorded op instead, see ``stream``)


def stream() -> np.random.Generator:
    """What a dropout mask's draw (``ops.datadep._Draw``) calls for its generator, at the moment
    of each draw: in eager mode and at every tn.compile replay alike."""
    source = random.source(None)()
    if _stream[0] is not source:
        child = source.bit_generator.seed_seq.spawn(1)[0]  # does not draw from the source
        _stream[0], _stream[1] = source, np.random.default_rng(child)
    return _stream[1]


def _check_p(p: Any, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating) or not (
            0 <= p <= 1):
        raise ValueRangeError(
            f"{op}: dropout probability has to be between 0 and 1, but got {p}"
        )
    return float(p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False) -> Tensor:
    """``F.dropout``: the input itself when not training, when p = 0 or when it is empty (as
    PyTorch); zeros (times the input, so gradients are zero) when p = 1."""
    p = _check_p(p, "dropout")
    if not training or p == 0 or input.numel() == 0:
        return input
    if p == 1:
        mask: Any = made_from_literals(np.zeros((), dtype=input.dtype))
    else:  # a recorded draw: tn.compile draws a new mask at every replay, as eager mode does
        mask = draw(functools.partial(_mask, shape=input.shape, p=p, dtype=input.dtype),
                    stream)
    return input.mul_(mask) if inplace else input * mask


def _mask(rng: np.random.Generator, *, shape: tuple[int, ...], p: float,
          dtype: np.dtype) -> np.ndarray:
    """Each element kept with probability 1 - p, and scaled by 1 / (1 - p)."""
    keep = rng.random(shape) < 1 - p
    return keep.astype(dtype) / dtype.type(1 - p)


class Dropout(Module):
    """Zero elements with probability ``p`` in training mode (``model.train()``), scale the
    rest by 1/(1-p); the identity in eval mode (``model.eval()``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p, "Dropout")
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
