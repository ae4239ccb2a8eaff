"""The switch the engine and the optimizer kernels look at: is ``tn.compile`` tracing here?

``Function.apply`` and ``kernels.sgd_update_``/``adam_update_`` each have one line marked
``extra: compile`` that calls into this module while ``state.on`` is true. It is thread-local,
like grad mode: a trace in one thread never records another thread's ops. Everything else of
``tn.compile`` lives in ``trace.py`` and the modules after it.
"""

from __future__ import annotations

import threading
from typing import Any


class _State(threading.local):
    on = False  # True while this thread traces (off again inside backward rules)
    tracer: Any = None  # the active trace.Tracer


state = _State()


def apply(cls: type, ctx: Any, inputs: tuple, options: dict, out: Any, result: Any) -> None:
    """Called by ``Function.apply`` after it ran an op."""
    state.tracer.on_apply(cls, ctx, inputs, options, out, result)


def update(kernel: str, *args: Any) -> None:
    """Called by an optimizer kernel before it updates a parameter in place."""
    state.tracer.on_update(kernel, args)


def refuse(what: str) -> None:
    """Called where tinynet reads values out of the data without an op (comparisons, argmax,
    the indices of max(dim)/sort/topk, random draws): a replay would reuse what the trace
    read, so while tracing this raises ``CompileError`` naming ``what`` and the user's line."""
    if state.on:
        state.tracer.fail(what)
