"""``tn.compile``: guards pick a program for each call; a miss traces a new one.

A call goes like this:

1. Find a program whose guard passes (``guard.py``: grad mode, TINYNET_NUMBA, each argument's
   shape/dtype/requires_grad, every outside tensor's array, shape and ``.grad``, the
   optimizers' groups and state; not learning rates, which are read at every replay). The
   program of the last call is tried first.
2. A program found replays (``codegen.py``'s compiled code, or ``interpret.py``); if none
   fits, ``pipeline.compile_call`` runs the function eagerly while tracing and turns the
   trace into code (trace -> lower -> fuse -> plan -> generate -> guard), so the first call
   of each kind returns eager results, and the new program is kept for next time.
3. After a replay the world looks as after an eager call: parameters and optimizer state
   updated in place, version counters bumped, ``.grad`` set (or None), fresh returned tensors.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from tinynet.compile import interpret, pipeline
from tinynet.compile.guard import Guard
from tinynet.compile.interpret import build_result
from tinynet.compile.ir import Program
from tinynet.compile.trace import World, active_tracer, function_codes
from tinynet.errors import CompileError
from tinynet.tensor import Tensor

MAX_PROGRAMS = 8  # programs kept per function (e.g. full batches and the last, smaller one)


class CompiledFunction:
    """What ``tn.compile(fn)`` returns: call it like ``fn``; ``explain()`` shows the work."""

    def __init__(self, fn: Any, backend: str = "auto") -> None:
        if not callable(fn):
            raise CompileError(f"tn.compile: expected a function or a Module, got "
                               f"{type(fn).__name__}")
        if backend not in ("auto", "interpret"):
            raise CompileError(f"tn.compile: backend must be 'auto' or 'interpret', got "
                               f"{backend!r}")
        if isinstance(fn, CompiledFunction):  # tn.compile(tn.compile(f)) compiles f
            fn = fn.fn
        self.fn = fn
        self.backend = backend
        self.name = getattr(fn, "__qualname__", None) or type(fn).__name__
        self.codes = function_codes(fn)
        self.world: World | None = None
        self.programs: list[Entry] = []  # oldest first
        self.last: Entry | None = None  # the entry of the last call
        self.traces = 0  # how many times the function ran eagerly under the tracer
        self.replays = 0
        functools.update_wrapper(self, fn, updated=()) if hasattr(fn, "__name__") else None

    # ---- calling ---------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if active_tracer() is not None:  # called inside another trace: part of that one
            return self.fn(*args, **kwargs)
        if kwargs:
            raise CompileError(f"tn.compile({self.name}): pass arguments positionally "
                               f"(got keywords {sorted(kwargs)})")
        if self.world is None or not self.world.roots_unchanged():
            self.world = World(self.fn)  # programs made for the old one are dropped
            self.programs.clear()
            self.last = None
        entry = self.last
        if entry is None or not entry.guard.check(args):
            entry = next((e for e in reversed(self.programs) if e.guard.check(args)), None)
            if entry is None:
                self.world = World(self.fn)  # what the names lead to now (a new weight...)
                return self._trace(args)
        if entry.program is None:  # this kind of call cannot be replayed (a first step)
            return self.fn(*args)
        self.replays += 1
        self.last = entry
        return entry.run(args)

    def _trace(self, args: tuple) -> Any:
        made = pipeline.compile_call(self.fn, args, self.world, self.name, self.codes,
                                     self.backend)
        program = made.program
        self.traces += 1
        entry = Entry(program if made.replayable else None, made.runner, self.name, made.guard)
        self.programs.append(entry)
        if len(self.programs) > MAX_PROGRAMS:
            self.programs.pop(0)
        self.last = entry
        if os.environ.get("TINYNET_COMPILE_DEBUG", "0") not in ("", "0"):
            print(entry.explain(program))
        return made.returned

    # ---- showing the work ------------------------------------------------------------------

    def explain(self) -> str:
        """Print (and return) the last trace, fused IR, buffer plan and generated source."""
        if self.last is None:
            text = f"tn.compile({self.name}): not traced yet; call it once first"
        else:
            text = self.last.explain(self.last.program)
        print(text)
        return text

    def __repr__(self) -> str:
        return (f"<compiled {self.name}: {len(self.programs)} program(s), {self.traces} "
                f"trace(s), {self.replays} replay(s)>")


class Entry:
    """One traced program and the code that replays it."""

    def __init__(self, program: Program | None, runner: Any, name: str, guard: Guard) -> None:
        self.program = program
        self.guard = guard
        self.name = name
        self.runner = runner  # the generated code (codegen.Runner), or None: interpret
        # run(args): replays, sets each .grad as the eager call left it, returns fresh tensors
        self.run: Any = None
        if program is not None:
            if self.runner is not None:
                self.run = self.runner.replay
            else:
                self.run = functools.partial(_interpret, program)

    def explain(self, program: Program | None) -> str:
        if program is None:
            return (f"tn.compile({self.name}): this call created optimizer state (a first "
                    "step), so it runs eagerly; the next call is traced and replayed")
        parts = [f"== tn.compile({self.name}): trace", program.describe(),
                 "== guard (guard.py: checked before each replay)", self.guard.source.rstrip()]
        describe = getattr(self.runner, "describe", None)
        if describe is not None:
            parts.append(describe())
        else:
            parts.append("== replay: step by step (interpret.py)")
        return "\n".join(parts)


def _interpret(program: Program, args: tuple) -> Any:
    """Replay step by step (``interpret.py``), then leave ``.grad`` and build the result."""
    env = interpret.run(program, args)
    for owner, ref in program.final_grads:
        t = args[owner[1]] if type(owner) is tuple else owner
        t.grad = None if ref is None else Tensor._make(env[ref.value])
    return build_result(program.result, env)
