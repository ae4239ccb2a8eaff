"""Errors raised by ``tinynet.nn`` and ``tinynet.optim``, beside the core ones in
``tinynet.errors``. Each also subclasses what a PyTorch user would catch for the same mistake."""

from __future__ import annotations

from tinynet.errors import TinynetError, ValueRangeError

__all__ = ["ClassIndexError", "StateDictError", "ValueRangeError"]


class ClassIndexError(ValueRangeError, IndexError):
    """A class index outside 0..C-1 given to cross_entropy or nll_loss (PyTorch raises
    IndexError here, so this is one too)."""


class StateDictError(TinynetError, ValueError, RuntimeError):
    """A state dict that does not fit: missing or unexpected keys, parameter groups of the
    wrong size. PyTorch raises RuntimeError for modules and ValueError for optimizers; this is
    both, so either ``except`` keeps working."""
