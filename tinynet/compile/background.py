"""Compiling in the background, so that no call waits for numba.

A new program with generated code replays step by step (``interpret.py``) from its first
replay on, while one thread per process, the compiler thread, takes the programs in turn
(``api.Entry.compile``):

1. segments whose machine code is already in numba's disk cache (an earlier run, another
   program with the same segments) load in this thread (``codegen.Runner.load``);
2. the others compile in a child process (``Runner.fill_cache``): it uses another core and
   not this process's GIL, so the calls replaying meanwhile are not slowed; then they load;
3. the entry's ``run`` becomes the generated replay: one assignment, so each call runs wholly
   one way or the other, and both give the same numbers.

One program at a time: a program with many distinct segments, or many programs at once, make
the switch come later, never a call wait. ``CompiledFunction.wait()`` blocks until its
programs switched (benchmarks, tests that look at the generated code).
"""

from __future__ import annotations

import queue
import threading
import weakref
from typing import Any

_work: queue.SimpleQueue = queue.SimpleQueue()  # weak references to entries to compile
_thread: threading.Thread | None = None
_lock = threading.Lock()


def submit(entry: Any) -> None:
    """Queue ``entry`` (an ``api.Entry``) for the compiler thread, starting the thread if it
    is not running. The queue holds it weakly: a program dropped meanwhile is skipped."""
    global _thread
    _work.put(weakref.ref(entry))
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_compile_forever, name="tn.compile background",
                                       daemon=True)
            _thread.start()


def _compile_forever() -> None:
    while True:
        entry = _work.get()()
        if entry is not None:
            entry.compile()
        del entry  # (not kept alive while the thread waits for the next)
