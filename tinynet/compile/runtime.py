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
from llvmlite import ir
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


@intrinsic
def copy_run(typingctx, dst, dst_at, src, src_at, count):  # pragma: no cover - compiled
    """``dst[dst_at:dst_at + count] = src[src_at:src_at + count]`` as one ``memcpy`` of flat
    C-contiguous arrays that do not overlap (a take into a fresh workspace slice: im2col).
    Written as a loop, a short run (LeNet's 24 pixels) was unrolled into scalar moves, since
    LLVM cannot know the two arrays apart; a memcpy of a constant length becomes vector moves
    (LeNet's im2col 255 -> 80 us). Bounds are the caller's: the generated loops' maps."""
    def codegen(context, builder, signature, args):
        dst_array, dst_start, src_array, src_start, n = args
        dst_type, src_type = signature.args[0], signature.args[2]
        to = context.make_array(dst_type)(context, builder, dst_array)
        source = context.make_array(src_type)(context, builder, src_array)
        itemsize = context.get_abi_sizeof(context.get_data_type(dst_type.dtype))
        cgutils.raw_memcpy(builder, builder.gep(to.data, [dst_start]),
                           builder.gep(source.data, [src_start]), n,
                           context.get_constant(types.intp, itemsize))
        return context.get_dummy_value()
    return types.void(dst, types.intp, src, types.intp, types.intp), codegen


@intrinsic
def add_run(typingctx, dst, dst_at, src, src_at, count):  # pragma: no cover - compiled
    """``dst[dst_at:dst_at + count] += src[src_at:src_at + count]`` (``count`` a literal, a
    short run) as one vector load of each, one add, one store: col2im's runs, which the loop
    form kept scalar for the same reason as ``copy_run``. Each element gets the same single
    add as in the loop, so the sums are the same bits; the two arrays must not overlap."""
    if not isinstance(count, types.IntegerLiteral):
        return None
    width = count.literal_value

    def codegen(context, builder, signature, args):
        dst_array, dst_start, src_array, src_start, _ = args
        dst_type, src_type = signature.args[0], signature.args[2]
        to = context.make_array(dst_type)(context, builder, dst_array)
        source = context.make_array(src_type)(context, builder, src_array)
        vector = ir.VectorType(context.get_data_type(dst_type.dtype), width).as_pointer()
        at = builder.bitcast(builder.gep(to.data, [dst_start]), vector)
        added = builder.load(builder.bitcast(builder.gep(source.data, [src_start]), vector),
                             align=1)
        builder.store(builder.fadd(builder.load(at, align=1), added), at, align=1)
        return context.get_dummy_value()
    return types.void(dst, types.intp, src, types.intp, count), codegen


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
