"""Samplers, as ``torch.utils.data``: which dataset indices a ``DataLoader`` visits, in which
order, and how they are grouped into batches.

    loader = DataLoader(dataset, batch_size=32, sampler=RandomSampler(dataset))
    loader = DataLoader(dataset, batch_sampler=BatchSampler(SequentialSampler(dataset), 32,
                                                            drop_last=True))

A sampler is any iterable of indices (with ``__len__`` when it knows its length). The random
ones draw each epoch's order from ``generator`` (a ``tn.Generator``, a numpy Generator or an
int seed) or, without one, from tinynet's global generator (``tn.manual_seed``); the numbers
are numpy's, not PyTorch's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any

import numpy as np

from tinynet.errors import DTypeError, ValueRangeError
from tinynet.random import get_generator

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler",
           "SubsetRandomSampler", "WeightedRandomSampler"]


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices) and usually ``__len__``."""

    def __init__(self, data_source: Any = None) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


def _positive_int(value: Any, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DTypeError(f"{label} should be a positive integer value, but got {value!r}")
    if value <= 0:
        raise ValueRangeError(f"{label} should be a positive integer value, but got {value}")
    return int(value)


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random permutation each epoch; with ``replacement=True``, ``num_samples``
    independent uniform draws instead (``num_samples`` defaults to the dataset's length)."""

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None, generator: Any = None) -> None:
        if not isinstance(replacement, bool):
            raise DTypeError(f"RandomSampler: replacement should be a boolean value, but got "
                             f"{replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None:
            _positive_int(num_samples, "RandomSampler: num_samples")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = get_generator(self.generator, "RandomSampler")
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        # without replacement, num_samples may exceed n: whole permutations, then a part
        full, rest = divmod(self.num_samples, n) if n else (0, 0)
        order = [rng.permutation(n) for _ in range(full)] + [rng.permutation(n)[:rest]]
        return iter(np.concatenate(order).astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices``, in a fresh random order each epoch."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[Any]:
        rng = get_generator(self.generator, "SubsetRandomSampler")
        return (self.indices[i] for i in rng.permutation(len(self.indices)).tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probability proportional to ``weights``."""

    def __init__(self, weights: Any, num_samples: int, replacement: bool = True,
                 generator: Any = None) -> None:
        self.num_samples = _positive_int(num_samples, "WeightedRandomSampler: num_samples")
        weights = np.asarray(getattr(weights, "data", weights), dtype=np.float64)
        if weights.ndim != 1 or (weights < 0).any() or not np.isfinite(weights).all() or (
                weights.sum() <= 0):
            raise ValueRangeError("WeightedRandomSampler: weights must be a 1-d sequence of "
                                  "non-negative finite numbers, not all zero")
        if not replacement and num_samples > np.count_nonzero(weights):
            raise ValueRangeError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                f"from {np.count_nonzero(weights)} nonzero weights")
        self.weights, self.replacement, self.generator = weights, replacement, generator

    def __iter__(self) -> Iterator[int]:
        rng = get_generator(self.generator, "WeightedRandomSampler")
        draws = rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                           p=self.weights / self.weights.sum())
        return iter(draws.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless
    ``drop_last``); give it to ``DataLoader(batch_sampler=...)``."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(drop_last, bool):
            raise DTypeError(f"BatchSampler: drop_last should be a boolean value, but got "
                             f"{drop_last!r}")
        self.sampler = sampler
        self.batch_size = _positive_int(batch_size, "BatchSampler: batch_size")
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[Any]]:
        batch: list[Any] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
