"""What the generated code calls besides the kernels: addresses, sums in numpy's order, and
``split``, which runs a large elementwise loop on two threads. (A small linear layer's products
are the loops eager mode runs, ``kernels/small_matmul.py``.)
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from tinynet import kernels


def addresses(*arrays: np.ndarray) -> np.ndarray:
    """The data addresses of ``arrays`` (C-contiguous), for ``address`` inside a segment. The
    caller keeps the arrays alive and the same objects (the guards do)."""
    for a in arrays:
        if not a.flags.c_contiguous:
            raise AssertionError("addresses: compiled code reads C-contiguous arrays only")
    return np.array([a.__array_interface__["data"][0] for a in arrays], dtype=np.int64)


@intrinsic
def address(typingctx, value):  # pragma: no cover - compiled
    """An int64 address as a pointer, for ``numba.carray(address(a), shape, dtype)``."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(types.int64), codegen


@njit(cache=True, error_model="numpy")
def row_sum(a, start, n):  # pragma: no cover - compiled
    """a[start:start + n].sum() in numpy's order (pairwise summation, as ``np.add.reduce``
    along a contiguous axis), so a row summed here equals the eager sum bit for bit: up to 128
    numbers in 8 running sums (``block_sum``); a longer run is split in two (the first part a
    multiple of 8 long) and the parts' sums added. numpy recurses; numba's disk cache cannot
    keep a recursive function, so the same tree is walked here with a stack."""
    if n <= 128:
        return block_sum(a, start, n)
    starts = np.empty(64, np.int64)  # the frames: a part of the run, and how far it got
    sizes = np.empty(64, np.int64)
    stages = np.zeros(64, np.int64)  # 0: start the first half, 1: the second, 2: add them
    firsts = np.empty(64, a.dtype)  # each frame's first half's sum
    depth, value = 0, a.dtype.type(0.0)
    starts[0], sizes[0] = start, n
    while depth >= 0:
        at, size = starts[depth], sizes[depth]
        half = size // 2 - (size // 2) % 8
        if size <= 128:
            value = block_sum(a, at, size)
            depth -= 1
        elif stages[depth] == 0:
            stages[depth] = 1
            depth += 1
            starts[depth], sizes[depth], stages[depth] = at, half, 0
        elif stages[depth] == 1:
            firsts[depth] = value
            stages[depth] = 2
            depth += 1
            starts[depth], sizes[depth], stages[depth] = at + half, size - half, 0
        else:
            value = firsts[depth] + value
            depth -= 1
    return value


@njit(cache=True, error_model="numpy")
def block_sum(a, start, n):  # pragma: no cover - compiled
    """numpy's pairwise sum of up to 128 numbers: 8 running sums added as a tree, then the
    numbers left over one by one (fewer than 8: one running sum)."""
    if n < 8:
        total = a.dtype.type(0.0)
        for i in range(n):
            total += a[start + i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[start + i]
        r1 += a[start + i + 1]
        r2 += a[start + i + 2]
        r3 += a[start + i + 3]
        r4 += a[start + i + 4]
        r5 += a[start + i + 5]
        r6 += a[start + i + 6]
        r7 += a[start + i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[start + i]
        i += 1
    return total


# ---- two threads for a large elementwise loop ----------------------------------------------

class _Helper:
    """The second thread: runs ``segment(*args)`` jobs from ``jobs``, answers on
    ``done`` (None, or the exception the job raised)."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="tinynet-loops", daemon=True).start()

    def _serve(self) -> None:
        while True:
            segment, args = self.jobs.get()
            try:
                segment(*args)
                self.done.put(None)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self.done.put(error)


_helper: _Helper | None = None
_busy = threading.Lock()  # one split at a time; a call meanwhile (another thread) runs whole


def _forget_helper() -> None:  # a forked child has no helper thread: it starts its own
    global _helper, _busy
    _helper, _busy = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helper)


def split(segment: Any, args: tuple) -> None:
    """``segment(*args, 0)`` and ``segment(*args, 1)``, the two halves of a large elementwise
    loop or sum (``codegen``), the second on the helper thread when ``tn.get_num_threads()``
    allows two; then ``segment(*args, 2)`` (a sum adds its halves' sums). The segment is
    compiled ``nogil``; each element is computed as in one pass, and a sum's halves are the two
    parts numpy's pairwise sum adds, so the numbers are the same either way."""
    global _helper
    if kernels.get_num_threads() < 2 or not _busy.acquire(blocking=False):
        segment(*args, 0)
        segment(*args, 1)
        segment(*args, 2)
        return
    try:
        if _helper is None:
            _helper = _Helper()
        helper = _helper
        helper.jobs.put((segment, (*args, 1)))
        try:
            segment(*args, 0)
        finally:
            try:
                error = helper.done.get()  # (never leave the helper writing after we return)
            except BaseException:  # interrupted while waiting (Ctrl-C): that helper's answer
                _helper = None  # would come late, so the next split starts a new one
                raise
        if error is not None:
            raise error
    finally:
        _busy.release()
    segment(*args, 2)
