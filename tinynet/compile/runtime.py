"""What the generated code calls besides the kernels: addresses and ``split``, which runs a
large elementwise loop on two threads. (A small linear layer's products are the loops eager
mode runs, ``kernels/small_matmul.py``; sums in numpy's order and softmax rows are eager's
kernels too, ``kernels/compiled.py``.)
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import numpy as np
from numba import types
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
