"""tinynet's random number generator. ``tn.manual_seed(n)`` makes every random function and
every initialiser reproducible."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ValueRangeError
from tinynet.tensor import read_values

_generator = [np.random.default_rng()]

# torch.manual_seed takes any seed that fits a 64-bit integer, signed or unsigned.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


def manual_seed(seed: Any) -> np.random.Generator:
    """Reseed the global generator; returns it.

    ``seed`` is read as ``torch.manual_seed`` reads it: ``int(seed)`` (so ``3``, ``"3"``,
    ``3.7``, ``True`` and a one-element tensor are accepted, a float is truncated), which must
    lie in ``[-2**63, 2**64 - 1]``. A negative seed counts modulo ``2**64``, as in PyTorch
    (``manual_seed(-1)`` is ``manual_seed(2**64 - 1)``). ``None``, lists, non-numeric strings,
    NaN, infinities and larger ints are refused with a tinynet error.
    """
    _generator[0] = np.random.default_rng(check_seed(seed, "manual_seed"))
    return _generator[0]


seed = manual_seed


def check_seed(seed: Any, function: str) -> int:
    """``seed`` as the non-negative int numpy wants, by ``torch.manual_seed``'s rules."""
    try:
        value = int(seed)
    except TypeError as e:
        raise DTypeError(
            f"{function}: the seed must be an int, got {type(seed).__name__} {seed!r}"
        ) from e
    except (ValueError, OverflowError) as e:  # "abc", NaN, infinities
        raise ValueRangeError(
            f"{function}: the seed must be a whole number, got {seed!r} ({e})"
        ) from e
    if not SEED_MIN <= value <= SEED_MAX:
        raise ValueRangeError(
            f"{function}: the seed must fit in 64 bits, from {SEED_MIN} to {SEED_MAX} (as in "
            f"torch.manual_seed), got {value}"
        )
    return value % 2**64


def default_generator() -> np.random.Generator:
    _refuse_while_compiling()
    return _generator[0]


def _refuse_while_compiling() -> None:
    # extra: tensor.read_values (a compiled step would replay the traced draws forever)
    read_values("draws random numbers (dropout, tn.rand, a shuffled loader...): a compiled "
                "step would replay the same numbers at every call; draw them outside the "
                "compiled function and pass them in as an argument, or run the step eagerly")


def get_generator(generator: np.random.Generator | int | None,
                  function: str = "generator") -> np.random.Generator:
    """A given generator, a seed for a new one (checked as ``manual_seed`` checks it), or the
    global one."""
    _refuse_while_compiling()
    if generator is None:
        return _generator[0]
    if isinstance(generator, np.random.Generator):
        return generator
    try:
        return np.random.default_rng(check_seed(generator, function))
    except DTypeError as e:  # e.g. a torch.Generator from a ported script
        raise DTypeError(
            f"{function}: generator must be a numpy.random.Generator, an int seed or None "
            f"(tinynet draws its random numbers with numpy), got {type(generator).__name__}; "
            "e.g. generator=np.random.default_rng(42) or generator=42"
        ) from e
