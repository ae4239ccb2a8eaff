"""Variable-length sequences, as ``torch.nn.utils.rnn``.

A batch of sequences of different lengths is either padded to one length (``pad_sequence``,
``pad_packed_sequence``: shape (T, B, *) or (B, T, *) with ``padding_value`` past each end) or
packed (``pack_padded_sequence``, ``pack_sequence``): a ``PackedSequence`` whose ``data`` holds
only the valid steps, time step by time step, longest sequence first:

    lengths (3, 1, 2)  ->  sorted (3, 2, 1), batch_sizes = (3, 2, 1)
    data = [a0 c0 b0 | a1 c1 | a2]      (step t holds the batch_sizes[t] sequences still going)

``sorted_indices`` (the original batch index of each sorted column) and ``unsorted_indices``
(its inverse) are None when the batch was already sorted (enforce_sorted=True). nn.RNN, LSTM
and GRU take a PackedSequence and run each sequence only over its valid steps.

Every function here moves elements with one integer-array index (``x[index]``) and ``cat``,
so gradients flow back to the valid elements and padding gets none.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import numpy as np

from tinynet import ops
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "unpack_sequence", "unpad_sequence"]


class PackedSequence(NamedTuple):
    """The valid steps of a batch of sequences, time-major (see the module's docstring)."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    @property
    def is_cuda(self) -> bool:
        return False

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        return self._replace(data=self.data.to(*args, **kwargs))


def _int_tensor(values: Any) -> Tensor:
    return Tensor._make(np.asarray(values, dtype=np.int64))


def _lengths(lengths: Any, batch: int) -> np.ndarray:
    if isinstance(lengths, Tensor):
        lengths = lengths.numpy()
    array = np.asarray(lengths)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DTypeError(f"pack_padded_sequence: lengths must be a 1-D list or tensor of "
                         f"integers, got {lengths!r}")
    if array.shape[0] != batch:
        raise ShapeError(f"pack_padded_sequence: Expected `len(lengths)` to be equal to "
                         f"batch_size, but got {array.shape[0]} (batch_size={batch})")
    if array.size and array.min() <= 0:
        raise ValueRangeError("pack_padded_sequence: Length of all samples has to be greater "
                              f"than 0, but found an element in 'lengths' that is <= 0 "
                              f"({array.tolist()}); drop empty sequences before packing")
    return array.astype(np.int64)


def _with_padding(rows: Tensor, padding_value: float) -> Tensor:
    """``rows`` (N, *) with one more row of ``padding_value`` at the end (index N)."""
    pad = Tensor._make(np.full((1, *rows.shape[1:]), padding_value, dtype=rows.dtype))
    return ops.cat([rows, pad], 0)


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,  # noqa: A002
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *) with batch_first) of sequences of the
    given lengths. With enforce_sorted the lengths must be decreasing; otherwise the batch is
    sorted here and ``sorted_indices`` / ``unsorted_indices`` record how."""
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ShapeError("pack_padded_sequence: input must be a tensor of shape (T, B, *) or "
                         f"(B, T, *) with batch_first=True, got {getattr(input, 'shape', input)}")
    batch_dim = 0 if batch_first else 1
    lengths = _lengths(lengths, input.shape[batch_dim])
    if lengths.max(initial=0) > input.shape[1 - batch_dim]:
        raise ShapeError(f"pack_padded_sequence: a length ({lengths.max()}) exceeds the "
                         f"padded time dimension ({input.shape[1 - batch_dim]}) of input "
                         f"{input.shape}")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueRangeError(
                "pack_padded_sequence: `lengths` array must be sorted in decreasing order "
                f"when `enforce_sorted` is True (got {lengths.tolist()}). You can pass "
                "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                "sidestep this requirement if you do not need ONNX exportability.")
        order = None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
    time_major = input.transpose(0, 1) if batch_first else input
    steps, batch = int(lengths[0]), time_major.shape[1]
    batch_sizes = (lengths[None, :] > np.arange(steps)[:, None]).sum(1)
    columns = np.arange(batch) if order is None else order
    # data row r is (t, b) with b < batch_sizes[t], time-major: flat index t * batch + column
    flat = np.concatenate([t * batch + columns[:n] for t, n in enumerate(batch_sizes)])
    data = time_major.reshape(-1, *time_major.shape[2:])[_int_tensor(flat)]
    if order is None:
        return PackedSequence(data, _int_tensor(batch_sizes))
    return PackedSequence(data, _int_tensor(batch_sizes), _int_tensor(order),
                          _int_tensor(np.argsort(order)))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None
                        ) -> tuple[Tensor, Tensor]:
    """The inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths), in the
    original batch order; T is the longest length, or ``total_length``."""
    if not isinstance(sequence, PackedSequence):
        raise DTypeError("pad_packed_sequence: expected a PackedSequence (from "
                         f"pack_padded_sequence), got {type(sequence).__name__}")
    batch_sizes = sequence.batch_sizes.numpy().astype(np.int64)
    steps, batch = len(batch_sizes), int(batch_sizes[0])
    if total_length is not None:
        total_length = operator.index(total_length)
        if total_length < steps:
            raise ValueRangeError(
                "pad_packed_sequence: Expected total_length to be at least the length of the "
                f"longest sequence in input, but got total_length={total_length} and max "
                f"sequence length being {steps}")
        steps_out = total_length
    else:
        steps_out = steps
    # (t, sorted column b) -> its data row, or the padding row past the end
    index = np.full((steps_out, batch), batch_sizes.sum(), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    for t, (start, n) in enumerate(zip(starts, batch_sizes, strict=True)):
        index[t, :n] = start + np.arange(n)
    lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(1)
    if sequence.unsorted_indices is not None:
        unsorted = sequence.unsorted_indices.numpy()
        index, lengths = index[:, unsorted], lengths[unsorted]
    if batch_first:
        index = index.T
    rows = _with_padding(sequence.data, padding_value)
    padded = rows[_int_tensor(index.reshape(-1))].reshape(*index.shape, *rows.shape[1:])
    return padded, _int_tensor(lengths)


def pad_sequence(sequences: Any, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into (T, B, *) (or (B, T, *)), T the longest L_i,
    filling with ``padding_value`` after each one (or before it, padding_side="left")."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if padding_side not in ("left", "right"):
        raise ValueRangeError(f"pad_sequence: Expected padding_side to be one of left or "
                              f"right, but got {padding_side!r}")
    if not sequences or not all(isinstance(s, Tensor) and s.ndim >= 1 for s in sequences):
        raise ShapeError("pad_sequence: expected a non-empty list of tensors of shape (L, *)")
    tail = sequences[0].shape[1:]
    if any(s.shape[1:] != tail for s in sequences):
        raise ShapeError("pad_sequence: every sequence must have the same trailing shape, got "
                         f"{[tuple(s.shape) for s in sequences]}")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    steps, batch, total = int(lengths.max()), len(sequences), int(lengths.sum())
    index = np.full((batch, steps), total, dtype=np.int64)  # the padding row
    start = 0
    for b, n in enumerate(lengths):
        where = slice(0, n) if padding_side == "right" else slice(steps - n, steps)
        index[b, where] = start + np.arange(n)
        start += n
    if not batch_first:
        index = index.T
    rows = _with_padding(ops.cat(sequences, 0), padding_value)
    return rows[_int_tensor(index.reshape(-1))].reshape(*index.shape, *tail)


def pack_sequence(sequences: Any, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *): pad_sequence, then pack_padded_sequence."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False
                   ) -> list[Tensor]:
    """The list of sequences a padded batch holds (the inverse of pad_sequence)."""
    if isinstance(lengths, Tensor):
        lengths = lengths.numpy()
    padded = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [padded[b, :int(n)] for b, n in enumerate(lengths)]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences a PackedSequence holds (the inverse of pack_sequence)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
