"""Ops whose results depend on the values in a way no gradient flows through: comparisons and
masks, where the extreme is (argmax, the indices of ``max(dim)``), the order of the values
(sort, topk), random draws, and the in-place updates of running statistics and gradients.

They are ops like the others (``Function`` subclasses), so the engine's observers see them
and ``tn.compile`` records them: at every replay they run again on that call's arrays (a mask
is recomputed, a dropout mask drawn anew from tinynet's generator, in eager order), instead of
replaying the values the trace saw. None of them has a gradient: their results are bool,
integer, or (draws) numbers that do not depend on an input that requires grad. (The classes
are private: machinery reached through the public functions, x > 0, argmax, tn.rand...)

An op that writes into its inputs (``_WriteInPlace``) names them in its ``writes`` option: the
output is then input 0's array, changed in place, and the tracer knows whose memory moved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinynet.autograd import Function
from tinynet.tensor import Tensor


class _NoGradient(Function):
    """Base: the result carries no gradient back to any input."""

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Any:
        return (None,) * len(ctx.parents)


class _Compare(_NoGradient):
    """A comparison or a mask op, elementwise: ``fn(*arrays)`` (``np.less``, ``&``, ``~``...),
    a bool (or, for ``&``/``|``/``^`` of integers, integer) array."""

    op = "compare"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, fn: Callable[..., Any]) -> np.ndarray:
        return np.asarray(fn(*arrays))


class _Compute(_NoGradient):
    """Any computation on arrays that no gradient flows through: ``fn(*arrays)`` (the total
    norm ``clip_grad_norm_`` clips by)."""

    op = "compute"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, fn: Callable[..., Any]) -> np.ndarray:
        return np.asarray(fn(*arrays))


class _ArgExtreme(_NoGradient):
    """Where the largest (``np.argmax``) or smallest value is, along ``axis`` (None: of the
    flattened array), as int64: the first such index on ties (NaN counts as the extreme)."""

    op = "argextreme"

    @staticmethod
    def forward(ctx: Function, x: Any, fn: Callable[..., Any], axis: int | None,
                keepdims: bool) -> np.ndarray:
        return np.asarray(fn(x, axis=axis, keepdims=keepdims), dtype=np.int64)


class _Order(_NoGradient):
    """The indices that sort ``x`` along ``dim`` (stable: equal values keep their order; NaN
    sorts as the largest), the first ``k`` of them if ``k`` is given (topk)."""

    op = "order"

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int, descending: bool,
                k: int | None = None) -> np.ndarray:
        if not descending:
            index = np.argsort(x, axis=dim, kind="stable")
        else:  # sort the reversed array ascending, then reverse: equal values keep their order
            n = x.shape[dim]
            flipped = np.argsort(np.flip(x, dim), axis=dim, kind="stable")
            index = (n - 1 - np.flip(flipped, dim)).astype(np.int64)
        if k is not None:
            index = np.take(index, np.arange(k), axis=dim)
        return np.asarray(index, dtype=np.int64)


class _Draw(_NoGradient):
    """Random numbers: ``sample(generator, *arrays)``, where ``source()`` gives the generator
    at the moment of the draw (tinynet's global one after the latest ``tn.manual_seed``,
    dropout's stream, or a ``tn.Generator`` the caller passed). ``sample`` must depend only
    on the generator, the arrays and the Python numbers it was made with."""

    op = "draw"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, sample: Callable[..., np.ndarray],
                source: Callable[[], np.random.Generator]) -> np.ndarray:
        return np.asarray(sample(source(), *arrays))


def draw(sample: Callable[..., np.ndarray], source: Callable[[], np.random.Generator],
         *inputs: Any) -> Tensor:
    """A tensor of random numbers, recorded as an op (see ``Draw``)."""
    return _Draw.apply(*inputs, sample=sample, source=source)


class _WriteInPlace(_NoGradient):
    """``update(*arrays)`` writes into inputs ``writes`` in place (running statistics, the
    gradients clipping rescales); the result is input 0's array. The caller bumps the
    written tensors' version counters, as for any in-place edit."""

    op = "write_in_place"

    in_place = True  # options["writes"]: the inputs it writes (the tracer reads it)

    @staticmethod
    def forward(ctx: Function, *arrays: Any, update: Callable[..., None],
                writes: tuple[int, ...]) -> np.ndarray:
        update(*arrays)
        return arrays[0]


def write_in_place(update: Callable[..., None], writes: tuple[int, ...],
                   *inputs: Tensor) -> None:
    """Run ``update(*arrays)``, which writes into inputs ``writes``, as a recorded op, and
    bump those tensors' version counters (a graph that saved them notices)."""
    from tinynet.autograd import no_grad

    with no_grad():
        _WriteInPlace.apply(*inputs, update=update, writes=writes)
    for i in writes:
        inputs[i]._version.value += 1
