"""tinynet's random number generator. ``tn.manual_seed(n)`` makes every random function and
every initialiser reproducible."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ValueRangeError
from tinynet.tensor import read_values

_initial_seed = [int(np.random.SeedSequence().generate_state(1, np.uint64)[0])]
_generator = [np.random.default_rng(_initial_seed[0])]

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
    _initial_seed[0] = check_seed(seed, "manual_seed")
    _generator[0] = np.random.default_rng(_initial_seed[0])
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
    read_values("draws random numbers outside tinynet's recorded draws (a shuffled loader "
                "or sampler, random_split...): a compiled step would replay the same numbers "
                "at every call. Use tn.rand/tn.randn/tn.randperm/tn.bernoulli/x.normal_()/"
                "dropout/nn.init, which draw anew at every replay, or draw outside the "
                "compiled function and pass the numbers in as an argument")


class Generator:
    """A random number stream of its own, as ``torch.Generator``: pass it as ``generator=`` to
    ``tn.randn``, ``tn.rand``, ``tn.randint``, ``tn.randperm``, the initialisers, a
    ``DataLoader`` or ``random_split``, and its draws do not touch the global stream.

        g = tn.Generator().manual_seed(0)
        a = tn.randn(3, generator=g)

    It wraps a ``numpy.random.Generator`` (``.numpy_generator``), so its numbers are not
    PyTorch's for the same seed. ``get_state()`` is a uint8 Tensor (the numpy state as JSON
    bytes) that ``set_state`` takes back, as torch's ByteTensor state.
    """

    def __init__(self, device: Any = "cpu") -> None:
        from tinynet.tensor import device as device_type

        self.device = device_type(device)  # refuses anything but the CPU
        self.seed()

    def manual_seed(self, seed: Any) -> Generator:
        """Reseed (``int(seed)``, as ``tn.manual_seed``); returns the generator itself."""
        self._initial_seed = check_seed(seed, "Generator.manual_seed")
        self.numpy_generator = np.random.default_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy; returns the new seed."""
        new_seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.manual_seed(new_seed)
        return new_seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> Any:
        from tinynet.tensor import Tensor

        state = json.dumps(self.numpy_generator.bit_generator.state).encode()
        return Tensor(np.frombuffer(state, dtype=np.uint8).copy())

    def set_state(self, new_state: Any) -> Generator:
        """Restore a state from ``get_state()`` (of this or another tinynet Generator)."""
        from tinynet.tensor import Tensor

        array = new_state.data if isinstance(new_state, Tensor) else np.asarray(new_state)
        try:
            state = json.loads(array.astype(np.uint8).tobytes().decode())
            self.numpy_generator.bit_generator.state = state
        except (ValueError, TypeError, KeyError) as e:
            raise ValueRangeError(
                "Generator.set_state: not a state from tinynet's Generator.get_state() "
                f"({e}); a torch.Generator's state cannot be used"
            ) from e
        return self

    def __repr__(self) -> str:
        return f"<tinynet.Generator seed={self._initial_seed}>"


def initial_seed() -> int:
    """The seed of the global generator (the last ``manual_seed``, or the one drawn at import)."""
    return _initial_seed[0]


def get_generator(generator: Generator | np.random.Generator | int | None,
                  function: str = "generator") -> np.random.Generator:
    """A given generator, a seed for a new one (checked as ``manual_seed`` checks it), or the
    global one. (Code that draws inside a step tn.compile may replay uses ``source``.)"""
    _refuse_while_compiling()
    return source(generator, function)()


def _global() -> np.random.Generator:
    return _generator[0]


def source(generator: Generator | np.random.Generator | int | None,
           function: str = "generator") -> Callable[[], np.random.Generator]:
    """Where a draw takes its numbers, as a function called at the moment of each draw: the
    global generator as it is then (after the latest ``tn.manual_seed``), a ``tn.Generator``'s
    or numpy Generator's own stream, or a new generator from an int seed each time (as each
    eager call makes one). A draw recorded by tn.compile (``ops.datadep._Draw``) calls it again
    at every replay, so a compiled step draws what the eager step draws."""
    if generator is None:
        return _global
    if isinstance(generator, np.random.Generator):
        return lambda: generator
    if isinstance(generator, Generator):
        return lambda: generator.numpy_generator  # manual_seed replaces it
    try:
        seed = check_seed(generator, function)
    except DTypeError as e:  # e.g. a torch.Generator from a ported script
        raise DTypeError(
            f"{function}: generator must be a tn.Generator, a numpy.random.Generator, an int "
            f"seed or None, got {type(generator).__module__}.{type(generator).__name__}; e.g. "
            "generator=tn.Generator().manual_seed(42) or np.random.default_rng(42)"
        ) from e
    return lambda: np.random.default_rng(seed)
