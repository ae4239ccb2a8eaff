"""tinynet's random number generator. ``tn.manual_seed(n)`` makes every random function and
every initialiser reproducible."""

from __future__ import annotations

import numpy as np

_generator = [np.random.default_rng()]


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator; returns it."""
    _generator[0] = np.random.default_rng(int(seed))
    return _generator[0]


seed = manual_seed


def default_generator() -> np.random.Generator:
    return _generator[0]


def get_generator(generator: np.random.Generator | int | None) -> np.random.Generator:
    """A given generator, a seed for a new one, or the global one."""
    if generator is None:
        return _generator[0]
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(int(generator))
