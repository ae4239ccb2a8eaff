"""Feeding data to a model: datasets, a batching loader, and small generated toy problems.

    X, y = tn.data.two_moons(200, noise=0.1, seed=0)  # arrays (200, 2) float64, (200,) int64
    dataset = tn.data.TensorDataset(*tn.data.to_tensors(X, y))
    loader = tn.data.DataLoader(dataset, batch_size=32, shuffle=True, seed=0)
    for xb, yb in loader:  # Tensors (32, 2) float32 and (32,) int64; the last batch has 8 rows
        ...

``Dataset`` / ``TensorDataset`` / ``Subset`` / ``random_split`` / ``DataLoader`` /
``default_collate`` follow ``torch.utils.data`` (also importable as ``tinynet.utils.data``).
The toy data sets (``logic_gate``, ``two_moons``, ``circles``, ``spirals``, ``blobs``) are
computed from a seed, with no files and no network; the moons, circles and blobs use the same
recipes as scikit-learn's ``make_moons``, ``make_circles`` and ``make_blobs``. ``load_digits``
reads the 8x8 handwritten digits scikit-learn ships, from a copy inside tinynet (a 45 KB
``.npz``), so the demo and examples need no scikit-learn.

Randomness: an int ``seed`` (or a ``numpy.random.Generator``) makes a result reproducible on its
own; with neither, the numbers come from tinynet's global generator, so ``tn.manual_seed(n)``
makes them reproducible.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
import os
import warnings
from collections.abc import (
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    MutableSequence,
    Sequence,
)
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.autograd import is_grad_enabled
from tinynet.creation import as_tensor, from_numpy, randperm
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops import stack
from tinynet.random import Generator, check_seed, get_generator
from tinynet.tensor import Tensor

Seed = int | np.random.Generator | None

__all__ = [
    "ConcatDataset", "DataLoader", "Dataset", "IterableDataset", "Subset", "TensorDataset",
    "blobs", "circles", "default_collate", "default_convert", "get_worker_info", "load_digits",
    "logic_gate", "random_split", "spirals", "to_tensors", "two_moons",
]


# ---- datasets -------------------------------------------------------------------------------


class Dataset:
    """A map from an index ``0 <= i < len(dataset)`` to one sample (as ``torch.utils.data``).

    Subclass it and define ``__len__`` and ``__getitem__``; a sample is usually a tuple
    ``(input, target)`` of Tensors, arrays or numbers. ``DataLoader`` accepts any object with
    these two methods, subclass or not.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples are rows: sample ``i`` is ``(tensors[0][i], tensors[1][i], ...)``.

    Every tensor needs the same size N in its first dimension (one row per sample). Arrays and
    nested lists are accepted too and turned into Tensors (arrays without a copy).
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueRangeError(
                "TensorDataset: give at least one tensor, e.g. TensorDataset(X, y)"
            )
        self.tensors = tuple(as_tensor(t) for t in tensors)
        for position, t in enumerate(self.tensors):
            if t.ndim == 0:
                raise ShapeError(
                    f"TensorDataset: tensor {position} is 0-d (a single number); every tensor "
                    "needs a first dimension with one entry per sample"
                )
        sizes = [t.shape[0] for t in self.tensors]
        if len(set(sizes)) > 1:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ShapeError(
                f"TensorDataset: all tensors must have the same size in their first dimension "
                f"(one row per sample), got shapes {shapes}"
            )

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (as ``torch.utils.data.Subset``):
    ``subset[i]`` is ``dataset[indices[i]]``, and a list ``[i, j]`` asks ``dataset`` for
    ``[indices[i], indices[j]]``."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class IterableDataset(Dataset):
    """A stream of samples (as ``torch.utils.data.IterableDataset``): define ``__iter__``.

    A ``DataLoader`` batches the samples in the order the stream gives them (no ``shuffle``,
    ``sampler`` or ``batch_sampler``: there are no indices); ``len(loader)`` needs the dataset
    to define ``__len__``."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __getitem__(self, index: int) -> Any:
        raise TypeError(f"{type(self).__name__} is an IterableDataset: iterate over it, it has "
                        "no indices")


class ConcatDataset(Dataset):
    """Several datasets one after another: index ``i`` runs through the first, then the
    second... (as ``torch.utils.data.ConcatDataset``); ``cumulative_sizes`` holds the ends."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueRangeError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise DTypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if index < 0:
            if -index > n:
                raise ValueRangeError(f"ConcatDataset: absolute value of index {index} should "
                                      f"not exceed dataset length {n}")
            index += n
        if index >= n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: np.random.Generator | int | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    As ``torch.utils.data.random_split``: ``lengths`` are counts summing to ``len(dataset)``,
    or fractions summing to 1 -- then split k gets ``floor(N * fraction_k)`` samples and the
    ``N - sum`` left over go one each to splits 0, 1, 2, ... (round robin); an empty split
    warns. (Like PyTorch, counts that sum to 1, such as ``[0, 1]``, are read as fractions.)
    The order is ``randperm(N)`` from ``generator`` (a numpy Generator or a seed) or tinynet's
    global generator. Unlike PyTorch, a negative length is refused (PyTorch returns
    overlapping subsets).
    """
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise DTypeError(
            f"random_split: the dataset must define __len__ and __getitem__, got "
            f"{type(dataset).__name__}"
        )
    if isinstance(lengths, str) or not isinstance(lengths, Sequence) or not all(
        isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)
        for x in lengths
    ):
        raise DTypeError(
            f"random_split: lengths must be a list of ints (counts) or floats (fractions "
            f"summing to 1), got {lengths!r}"
        )
    n = len(dataset)
    if lengths and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueRangeError(
                    f"random_split: fraction at index {i} is not between 0 and 1: {fraction}"
                )
            counts.append(math.floor(n * fraction))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0. This might "
                              "result in an empty dataset.", stacklevel=2)
        lengths = counts
    if any(not float(x).is_integer() for x in lengths) or any(x < 0 for x in lengths):
        raise ValueRangeError(
            f"random_split: lengths must be non-negative whole counts summing to "
            f"len(dataset) = {n}, or fractions summing to 1; got {list(lengths)}"
        )
    counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueRangeError(
            f"random_split: the lengths {counts} sum to {sum(counts)}, not to len(dataset) = {n}"
        )
    order = randperm(n, generator=get_generator(generator, "random_split")).data.tolist()
    ends = list(itertools.accumulate(counts))
    return [Subset(dataset, order[end - count : end])
            for end, count in zip(ends, counts, strict=True)]


# ---- batching -------------------------------------------------------------------------------


def default_collate(samples: Sequence[Any]) -> Any:
    """Turn a list of B samples into one batch, as PyTorch's ``default_collate``.

    - tuples of fields -> a list with one batch per field (PyTorch's choice, kept for
      backward compatibility there); lists -> lists; namedtuples -> the same namedtuple;
    - dicts (and other mappings) -> the same kind of mapping with one batch per key;
    - Tensors, arrays and numbers of shape S -> one Tensor of shape (B, *S). Python ints become
      int64, floats float64 and bools bool (as in PyTorch); arrays and tensors keep their dtype;
    - strings and bytes -> the B values as they came (a list, or a tuple inside a tuple field).
    """
    if not isinstance(samples, Sequence) or isinstance(samples, str | bytes) or not samples:
        raise ValueRangeError(
            f"default_collate: expected a non-empty list of samples, got {type(samples).__name__}"
            + (" of length 0" if isinstance(samples, Sequence) and not samples else "")
        )
    first = samples[0]
    if isinstance(first, Mapping):
        fields = {key: default_collate([sample[key] for sample in samples]) for key in first}
        return _like(first, fields)
    if isinstance(first, str | bytes):
        return samples
    if isinstance(first, Sequence) and not isinstance(first, Tensor):
        width = len(first)
        for i, sample in enumerate(samples):
            if not isinstance(sample, Sequence) or len(sample) != width:
                raise ShapeError(
                    f"DataLoader: sample 0 has {width} fields but sample {i} of the batch is "
                    f"{_describe(sample)}; every sample must have the same number of fields"
                )
        columns = [default_collate(column) for column in zip(*samples, strict=True)]
        return _like(first, columns)
    return _stack(samples)


def default_convert(sample: Any) -> Any:
    """Arrays (and numpy scalars) in ``sample`` -> Tensors, the rest as it is: what
    ``DataLoader(batch_size=None)`` does to each sample, as PyTorch's ``default_convert``.
    Tuples become lists, as there; strings, numbers and Tensors stay."""
    if isinstance(sample, Tensor | str | bytes):
        return sample
    if isinstance(sample, np.ndarray | np.generic):
        return sample if sample.dtype.kind in "OSUV" else as_tensor(sample)
    if isinstance(sample, Mapping):
        return _like(sample, {key: default_convert(value) for key, value in sample.items()})
    if isinstance(sample, Sequence):
        return _like(sample, [default_convert(value) for value in sample])
    return sample


def _like(container: Any, values: Any) -> Any:
    """``values`` (a dict or a list) in the container type of ``container``, as PyTorch's
    collate rebuilds it: a namedtuple stays one, a plain tuple becomes a list, a dict
    subclass (``OrderedDict``) or a list subclass is copied and filled."""
    if isinstance(container, tuple):
        return type(container)(*values) if hasattr(container, "_fields") else values
    try:
        if isinstance(container, MutableMapping | MutableSequence):
            clone = copy.copy(container)
            if isinstance(clone, MutableMapping):
                clone.update(values)
            else:
                clone[:] = values
            return clone
        return type(container)(values)
    except TypeError:
        return values


def _stack(values: Sequence[Any]) -> Tensor:
    """Stack B equal-shaped values along a new first dimension, with numpy when no graph is
    needed (one np.stack is much faster than B small tensor ops)."""
    if is_grad_enabled() and any(isinstance(v, Tensor) and v.requires_grad for v in values):
        return stack(values)  # keeps the samples' autograd history, as torch.stack would
    arrays = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in values]
    for i, array in enumerate(arrays):
        if array.dtype.kind not in "biuf":
            raise DTypeError(
                f"DataLoader: cannot batch a sample field of type {type(values[i]).__name__} "
                f"(dtype {array.dtype}); fields must be Tensors, arrays, numbers or strings"
            )
        if array.shape != arrays[0].shape:
            raise ShapeError(
                f"DataLoader: cannot stack samples of different shapes into one batch: sample 0 "
                f"has shape {arrays[0].shape}, sample {i} has {array.shape}"
            )
    return from_numpy(np.stack(arrays))


def _describe(sample: Any) -> str:
    if isinstance(sample, Sequence) and not isinstance(sample, str | bytes):
        return f"a {type(sample).__name__} of {len(sample)} fields"
    return f"a single {type(sample).__name__}"


class DataLoader:
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader``, in this process.

    Each iteration (epoch) visits every index once: in order, or in a fresh random order when
    ``shuffle=True``, or in the order ``sampler`` (any iterable of indices) gives. Batches have
    ``batch_size`` samples; the last one is smaller when ``batch_size`` does not divide the
    number of indices, unless ``drop_last=True`` drops it. ``batch_sampler`` (an iterable of
    lists of indices) gives the batches itself instead. ``len(loader)`` is the number of
    batches: ``ceil(N / batch_size)`` (``floor`` with ``drop_last``).

    Each batch is ``collate_fn(list_of_samples)``, ``default_collate`` unless given: a
    ``TensorDataset`` sample ``(x, y)`` gives the list ``[xb, yb]``, as in PyTorch. With
    ``batch_size=None`` there is no batching: each sample is passed through ``collate_fn``
    (default ``default_convert``) alone. A ``TensorDataset`` (or a ``Subset`` of one) with the
    default collate is cut with one numpy fancy index per tensor, the same values, faster.

    Shuffling order comes from ``generator`` (a ``numpy.random.Generator``) if given, else from a
    generator created once from ``seed`` (so two loaders with the same seed give the same orders,
    epoch after epoch, and successive epochs differ), else from tinynet's global generator at the
    start of each epoch (so ``tn.manual_seed`` makes it reproducible).

    The arguments are PyTorch's, in its order. tinynet loads in the main process only:
    ``num_workers > 0`` is accepted with a note shown once per process, and gives the batches
    ``num_workers=0`` gives (no worker processes, so ``worker_init_fn`` is never called and
    ``get_worker_info()`` is None); with it, the worker options (``multiprocessing_context``,
    ``prefetch_factor``, ``persistent_workers``) are accepted and unused. With
    ``num_workers=0`` they are refused, as PyTorch refuses them; ``timeout`` and ``in_order``
    are accepted and unused; ``pin_memory=True`` warns (tinynet has no accelerator to pin
    for).

    Batches are new tensors: editing one never changes the dataset. Batches of data that requires
    grad keep their history (as PyTorch's stacking would).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[Sequence[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Generator | np.random.Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
    ) -> None:
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
                raise DTypeError(
                    f"DataLoader: batch_size must be a positive int (or None for no batching), "
                    f"got {type(batch_size).__name__}"
                )
            if batch_size < 1:
                raise ValueRangeError(
                    f"DataLoader: batch_size must be a positive int, got {batch_size}"
                )
        _check_in_process_only(num_workers, timeout, multiprocessing_context, prefetch_factor,
                               persistent_workers)
        if pin_memory:
            warnings.warn("DataLoader: pin_memory=True has no effect: tinynet runs on the CPU "
                          "and has no accelerator to pin memory for", stacklevel=2)
        if sampler is not None and shuffle:
            raise ValueRangeError(
                "DataLoader: sampler option is mutually exclusive with shuffle (the sampler "
                "chooses the order)"
            )
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueRangeError(
                    "DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                    "shuffle, sampler, and drop_last (the batch sampler makes the batches)"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueRangeError(
                "DataLoader: batch_size=None option disables auto-batching and is mutually "
                "exclusive with drop_last"
            )
        if collate_fn is not None and not callable(collate_fn):
            raise DTypeError(
                f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}"
            )
        if generator is not None and seed is not None:
            raise ValueRangeError("DataLoader: give generator or seed, not both")
        if generator is not None and not isinstance(generator, np.random.Generator | Generator):
            raise DTypeError(
                f"DataLoader: generator must be a tn.Generator or a numpy.random.Generator, got "
                f"{type(generator).__name__}; for an int use seed={generator!r}"
            )
        if isinstance(dataset, IterableDataset):
            if shuffle or sampler is not None or batch_sampler is not None:
                raise ValueRangeError(
                    "DataLoader with IterableDataset: expected unspecified shuffle, sampler and "
                    "batch_sampler (a stream has no indices to reorder)")
        elif not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise DTypeError(
                f"DataLoader: the dataset must define __len__ and __getitem__ (a Dataset), got "
                f"{type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)  # accepted; loading stays in this process
        self.collate_fn = collate_fn
        self.pin_memory = bool(pin_memory)
        self.drop_last = bool(drop_last)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self.generator = (generator if seed is None
                          else np.random.default_rng(check_seed(seed, "DataLoader")))

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # type: ignore[arg-type] - TypeError without __len__
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)  # type: ignore[arg-type]
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            return self._stream()
        # The order is drawn now, when the epoch starts, not at the first next().
        if self.batch_sampler is not None:
            return (self._fetch(list(batch)) for batch in self.batch_sampler)
        order = self._epoch_order()
        if self.batch_size is None:
            convert = self.collate_fn or default_convert
            return (convert(self.dataset[int(i)]) for i in order)
        return self._batches(order)

    def _stream(self) -> Iterator[Any]:
        """An IterableDataset's samples, batched in the order they come."""
        if self.batch_size is None:
            convert = self.collate_fn or default_convert
            yield from (convert(sample) for sample in self.dataset)
            return
        collate = self.collate_fn or default_collate
        samples = iter(self.dataset)
        while batch := list(itertools.islice(samples, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield collate(batch)

    def _epoch_order(self) -> Iterable[int]:
        if self.sampler is not None:
            return self.sampler
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return get_generator(self.generator).permutation(n)

    def _batches(self, order: Iterable[int]) -> Iterator[Any]:
        size = self.batch_size
        assert size is not None
        if isinstance(order, np.ndarray):  # our own order: cut it in slices (fast)
            n = len(order)
            stop = n - n % size if self.drop_last else n
            for start in range(0, stop, size):
                yield self._fetch(order[start : start + size])
            return
        batch: list[int] = []
        for index in order:  # a sampler's order: any iterable, maybe without a length
            batch.append(index)
            if len(batch) == size:
                yield self._fetch(batch)
                batch = []
        if batch and not self.drop_last:
            yield self._fetch(batch)

    def _fetch(self, indices: Sequence[int] | np.ndarray) -> Any:
        if self.collate_fn is None:
            rows = _tensor_rows(self.dataset, indices)
            if rows is not None:
                return rows
            return default_collate([self.dataset[int(i)] for i in indices])
        return self.collate_fn([self.dataset[int(i)] for i in indices])


_workers_noted = [False]


def _note_workers_once(num_workers: int) -> None:
    """The first ``DataLoader(num_workers > 0)`` of a process says, once, what happens."""
    if _workers_noted[0]:
        return
    _workers_noted[0] = True
    warnings.warn(
        f"DataLoader: num_workers={num_workers} is accepted, but tinynet loads every batch in "
        "the main process: there are no worker processes (a TensorDataset batch is one numpy "
        "index, quicker than shipping it between processes, and tinynet never pickles), so "
        "worker_init_fn is not called and get_worker_info() is None. The batches are the ones "
        "num_workers=0 gives. (This note is shown once.)", stacklevel=4)


def get_worker_info() -> None:
    """``None``: the caller is not in a loader worker (tinynet loads in the main process), as
    ``torch.utils.data.get_worker_info()`` answers in the main process."""
    return None


def _check_in_process_only(num_workers: Any, timeout: Any, multiprocessing_context: Any,
                           prefetch_factor: Any, persistent_workers: Any) -> None:
    """Refuse the worker-process options (see ``DataLoader``)."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int | np.integer):
        raise DTypeError(f"DataLoader: num_workers must be an int, got "
                         f"{type(num_workers).__name__}")
    if num_workers < 0:
        raise ValueRangeError(
            f"DataLoader: num_workers option should be non-negative, got {num_workers}; use "
            "num_workers=0 to disable multiprocessing"
        )
    if num_workers > 0:
        _note_workers_once(num_workers)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise ValueRangeError(
            f"DataLoader: timeout option should be a non-negative number, got {timeout!r}"
        )
    if num_workers > 0:  # the worker options are accepted with workers, as in PyTorch
        return
    if multiprocessing_context is not None:
        raise ValueRangeError(
            "DataLoader: multiprocessing_context can only be used with multi-process loading "
            "(num_workers > 0), and tinynet loads in the main process (num_workers=0)"
        )
    if prefetch_factor is not None:
        raise ValueRangeError(
            "DataLoader: prefetch_factor only applies to worker processes (num_workers > 0), "
            "which tinynet does not use; leave it None"
        )
    if persistent_workers:
        raise ValueRangeError(
            "DataLoader: persistent_workers option needs num_workers > 0, and tinynet loads in "
            "the main process (num_workers=0); leave it False"
        )


def _tensor_rows(dataset: Any, indices: Sequence[int] | np.ndarray) -> list[Tensor] | None:
    """The batch ``default_collate`` would make of ``dataset[i] for i in indices``, cut with one
    fancy index per tensor, when ``dataset`` is a TensorDataset (through any Subsets); else
    None. Only when ``__getitem__`` is TensorDataset's (or Subset's) own: a subclass that
    transforms its samples must see every one of them."""
    positions: Any = indices
    while type(dataset).__getitem__ is Subset.__getitem__:
        positions = [dataset.indices[i] for i in np.asarray(positions).tolist()]
        dataset = dataset.dataset
    if type(dataset).__getitem__ is not TensorDataset.__getitem__:
        return None
    rows = np.asarray(positions, dtype=np.int64)
    return [_take_rows(t, rows) for t in dataset.tensors]


def _take_rows(t: Tensor, indices: np.ndarray) -> Tensor:
    """Rows ``indices`` of ``t`` as a new tensor (a fancy index copies)."""
    if t.requires_grad and is_grad_enabled():
        return t[indices]
    return from_numpy(t.data[indices])


# ---- toy data sets --------------------------------------------------------------------------


def to_tensors(X: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
    """``(X, y)`` arrays -> Tensors: X in the default float dtype (float32 unless changed with
    ``tn.set_default_dtype``), y int64 (class indices, as cross-entropy losses want)."""
    return (
        Tensor._make(np.asarray(X, dtype=dtypes.get_default_dtype()).copy()),
        Tensor._make(np.asarray(y, dtype=np.int64).copy()),
    )


def _result(X: np.ndarray, y: np.ndarray, as_tensors: bool) -> Any:
    return to_tensors(X, y) if as_tensors else (X, y)


_GATES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
    "xor": (0, 1, 1, 0),
}


def logic_gate(name: str, as_tensors: bool = False) -> Any:
    """The truth table of a two-input logic gate: ``and``, ``or``, ``nand``, ``nor``, ``xor``.

    Returns ``X`` (4, 2) float64, the inputs ``[[0, 0], [0, 1], [1, 0], [1, 1]]`` in that order,
    and ``y`` (4,) int64, the gate's output for each row (``xor``: 0, 1, 1, 0). XOR is the
    classic problem no single perceptron can solve: its classes are not linearly separable.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _GATES:
        raise ValueRangeError(
            f"logic_gate: unknown gate {name!r}; choose one of {', '.join(sorted(_GATES))}"
        )
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array(_GATES[key], dtype=np.int64)
    return _result(X, y, as_tensors)


def _check_counts(
    function: str, n: int, classes: int, spread: float, spread_name: str = "noise"
) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < classes:
        raise ValueRangeError(
            f"{function}: n must be an int of at least {classes} (one point per class), got {n!r}"
        )
    if not spread >= 0:  # also refuses NaN
        raise ValueRangeError(
            f"{function}: {spread_name} is a standard deviation and must be >= 0, got {spread}"
        )


def _split(n: int, classes: int) -> list[int]:
    """n points over ``classes`` classes as evenly as possible (the first ones get the extra)."""
    return [n // classes + (k < n % classes) for k in range(classes)]


def _shuffled(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[Any, Any]:
    order = rng.permutation(len(y))
    return X[order], y[order]


def two_moons(
    n: int = 100, noise: float = 0.1, seed: Seed = None, as_tensors: bool = False
) -> Any:
    """Two interleaving half circles (scikit-learn's ``make_moons``).

    Class 0 (``n // 2`` points) lies on the upper half circle ``(cos t, sin t)``, class 1 (the
    other ``n - n // 2``) on the lower one ``(1 - cos t, 1/2 - sin t)``, ``t`` evenly spaced in
    [0, pi]; Gaussian noise of standard deviation ``noise`` is added to every coordinate, then
    the rows are shuffled. Returns ``X`` (n, 2) float64 and ``y`` (n,) int64.
    """
    _check_counts("two_moons", n, 2, noise)
    rng = get_generator(seed)
    n_upper, n_lower = n // 2, n - n // 2
    t_upper, t_lower = np.linspace(0, np.pi, n_upper), np.linspace(0, np.pi, n_lower)
    X = np.concatenate([
        np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1),
        np.stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1),
    ])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_upper, n_lower])
    X = X + rng.normal(0.0, noise, size=X.shape)
    return _result(*_shuffled(X, y, rng), as_tensors)


def circles(
    n: int = 100,
    noise: float = 0.05,
    factor: float = 0.5,
    seed: Seed = None,
    as_tensors: bool = False,
) -> Any:
    """A small circle inside a large one (scikit-learn's ``make_circles``).

    Class 0 (``n // 2`` points) on the unit circle, class 1 (``n - n // 2``) on the circle of
    radius ``factor`` (0 <= factor < 1), angles evenly spaced; Gaussian noise of standard
    deviation ``noise`` on every coordinate, then the rows are shuffled. Returns ``X`` (n, 2)
    float64 and ``y`` (n,) int64.
    """
    _check_counts("circles", n, 2, noise)
    if not 0 <= factor < 1:
        raise ValueRangeError(
            f"circles: factor is the inner radius over the outer one and must be in [0, 1), "
            f"got {factor}"
        )
    rng = get_generator(seed)
    n_outer, n_inner = n // 2, n - n // 2
    t_outer = np.linspace(0, 2 * np.pi, n_outer, endpoint=False)
    t_inner = np.linspace(0, 2 * np.pi, n_inner, endpoint=False)
    X = np.concatenate([
        np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
        factor * np.stack([np.cos(t_inner), np.sin(t_inner)], axis=1),
    ])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_outer, n_inner])
    X = X + rng.normal(0.0, noise, size=X.shape)
    return _result(*_shuffled(X, y, rng), as_tensors)


def spirals(
    n: int = 100,
    noise: float = 0.1,
    classes: int = 2,
    turns: float = 1.0,
    seed: Seed = None,
    as_tensors: bool = False,
) -> Any:
    """``classes`` interleaved spiral arms, one per class (the CS231n spiral data set).

    Arm k holds about ``n / classes`` points (the first ``n % classes`` arms one more). Its j-th
    of m points has radius ``r = j / m`` (j = 1..m) and angle
    ``theta = 2 pi (turns r + k / classes)``: the point is ``r (cos theta, sin theta)`` plus
    Gaussian noise of standard deviation ``noise`` (relative to the outer radius 1). Rows are
    shuffled. Returns ``X`` (n, 2) float64 and ``y`` (n,) int64 in ``0..classes-1``.
    """
    if isinstance(classes, bool) or not isinstance(classes, int | np.integer) or classes < 1:
        raise ValueRangeError(f"spirals: classes must be a positive int, got {classes!r}")
    _check_counts("spirals", n, classes, noise)
    rng = get_generator(seed)
    points, labels = [], []
    for k, m in enumerate(_split(n, classes)):
        r = np.arange(1, m + 1) / m
        theta = 2 * np.pi * (turns * r + k / classes)
        points.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        labels.append(np.full(m, k, dtype=np.int64))
    X, y = np.concatenate(points), np.concatenate(labels)
    X = X + rng.normal(0.0, noise, size=X.shape)
    return _result(*_shuffled(X, y, rng), as_tensors)


def blobs(
    n: int = 100,
    centers: int | Any = 3,
    std: float = 1.0,
    seed: Seed = None,
    as_tensors: bool = False,
) -> Any:
    """Gaussian blobs, one per class (scikit-learn's ``make_blobs``).

    ``centers`` is a number k of classes (centres drawn uniformly in the box [-10, 10]^2) or an
    array of centres of shape (k, d). Class i gets about ``n / k`` points (the first ``n % k``
    one more), each its centre plus Gaussian noise of standard deviation ``std``; rows are
    shuffled. Returns ``X`` (n, 2) float64 -- (n, d) for given (k, d) centres -- and ``y``
    (n,) int64 in ``0..k-1``.
    """
    rng = get_generator(seed)
    if isinstance(centers, int | np.integer) and not isinstance(centers, bool):
        if centers < 1:
            raise ValueRangeError(
                f"blobs: centers must be a positive int or a (k, d) array, got {centers}"
            )
        _check_counts("blobs", n, int(centers), std, "std")
        centre_points = rng.uniform(-10.0, 10.0, size=(int(centers), 2))
    else:
        centre_points = np.asarray(centers, dtype=np.float64)
        if centre_points.ndim != 2 or len(centre_points) == 0:
            raise ShapeError(
                f"blobs: centers must be a positive int or an array of shape (k, d), got shape "
                f"{centre_points.shape}"
            )
        _check_counts("blobs", n, len(centre_points), std, "std")
    counts = _split(n, len(centre_points))
    y = np.repeat(np.arange(len(centre_points), dtype=np.int64), counts)
    X = centre_points[y] + rng.normal(0.0, std, size=(n, centre_points.shape[1]))
    return _result(*_shuffled(X, y, rng), as_tensors)


# ---- the 8x8 digits -------------------------------------------------------------------------

DIGITS_FILE = os.path.join(os.path.dirname(__file__), "data_files", "digits.npz")


def load_digits(as_tensors: bool = False) -> Any:
    """The 1,797 8x8 handwritten digits of scikit-learn's ``load_digits``, in its order.

    Returns ``images`` (1797, 8, 8) float64, pixel counts 0..16 (``images.reshape(-1, 64)`` is
    scikit-learn's ``data``), and ``target`` (1797,) int64, the digit 0-9. With
    ``as_tensors=True``, Tensors (default float dtype, int64) as ``to_tensors`` makes them.

    Read from ``tinynet/data_files/digits.npz`` (uint8 arrays, no pickle). The data: the test
    set of E. Alpaydin and C. Kaynak's Optical Recognition of Handwritten Digits, UCI Machine
    Learning Repository (1998), CC BY 4.0, as scikit-learn distributes it.
    """
    with np.load(DIGITS_FILE, allow_pickle=False) as archive:
        images, target = archive["images"], archive["target"]
    return _result(images.astype(np.float64), target.astype(np.int64), as_tensors)
