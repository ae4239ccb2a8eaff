"""Buffer planning: every array the compiled kernels make gets a place in one workspace.

The workspace is one flat array per dtype, allocated once per program; a value is a slice of
it (``w32[16:32]``, reshaped). Planning walks the kernels in order, giving each output a slice
and taking slices back when their value is read for the last time (liveness), so a value
whose life is over lends its memory to a later one of the same size. Values the caller keeps
after the call (a returned loss, a parameter's ``.grad``) are pinned: they never share.

Values the kernels read but do not make (inputs, parameters, optimizer state, constants, the
results of opaque steps) are not planned: they are passed in at each call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinynet.compile.fuse import Kernel
from tinynet.compile.ir import Value


@dataclass
class Slot:
    value: int
    dtype: np.dtype
    offset: int
    size: int
    pinned: bool

    def describe(self, values: list[Value]) -> str:
        tag = _tag(self.dtype)
        shape = "x".join(map(str, values[self.value].shape)) or "scalar"
        kind = "pinned" if self.pinned else "reused" if self.shared else "own"
        return (f"v{self.value:<4} w{tag}[{self.offset}:{self.offset + self.size}]"
                f"  {shape:<10} {kind}")

    shared: bool = False


def _tag(dtype: np.dtype) -> str:
    return {"float32": "32", "float64": "64", "int64": "i64"}.get(np.dtype(dtype).name,
                                                                  np.dtype(dtype).name)


class Plan:
    """value index -> Slot, and each workspace's size."""

    def __init__(self, kernels: list[Kernel], values: list[Value], pinned: set[int]) -> None:
        self.slots: dict[int, Slot] = {}
        self.sizes: dict[np.dtype, int] = {}
        # What an opaque step reads may be kept on its graph node for its backward: never reuse.
        pinned = pinned | {a for k in kernels if k.kind == "opaque" for a in k.args
                           if a is not None}
        made = {o for k in kernels if k.kind != "opaque" for o in k.outs
                if values[o].kind == "temp"}
        last_use: dict[int, int] = {}
        for i, k in enumerate(kernels):
            for a in k.args:
                if a is not None:
                    last_use[a] = i
        free: dict[tuple[np.dtype, int], list[int]] = {}
        for i, k in enumerate(kernels):
            for o in k.outs:
                if o in made and o not in self.slots:
                    v = values[o]
                    size = max(1, int(np.prod(v.shape)))
                    key = (v.dtype, size)
                    if o not in pinned and free.get(key):
                        offset = free[key].pop()
                        self.slots[o] = Slot(o, v.dtype, offset, size, False, True)
                    else:
                        offset = self.sizes.get(v.dtype, 0)
                        self.sizes[v.dtype] = offset + size
                        self.slots[o] = Slot(o, v.dtype, offset, size, o in pinned)
            for o in k.outs:  # made but never read: its slice is free after this kernel
                if o in self.slots and o not in last_use and o not in pinned:
                    last_use[o] = i
            for value, last in list(last_use.items()):
                if last == i and value in self.slots and value not in pinned:
                    slot = self.slots[value]
                    free.setdefault((slot.dtype, slot.size), []).append(slot.offset)
                    del last_use[value]

    def describe(self, values: list[Value]) -> str:
        lines = ["workspaces: " + ", ".join(f"w{_tag(d)}: {n} x {np.dtype(d).name}"
                                             for d, n in self.sizes.items())]
        lines += ["  " + s.describe(values) for s in self.slots.values()]
        return "\n".join(lines)
