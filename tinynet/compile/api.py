"""``tn.compile``: guards pick a program for each call; a miss traces a new one.

A call goes like this:

1. Find a program whose guard passes (``guard.py``: grad mode, TINYNET_NUMBA, each argument's
   shape/dtype/requires_grad, every outside tensor's array, shape and ``.grad``, the
   optimizers' groups and state; not learning rates, which are read at every replay). The
   program of the last call is tried first, by its fast check while the world stamp has not
   moved since its full check passed (``Guard.fast_check``: the stamp vouches for what
   tinynet's setters change, the fast check tests the rest at every call).
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
import threading
import warnings
from typing import Any

from tinynet.compile import background as compiler
from tinynet.compile import codegen, interpret, pipeline
from tinynet.compile.guard import MISS, Guard
from tinynet.compile.interpret import build_result
from tinynet.compile.ir import Program
from tinynet.compile.trace import World, active_tracer, function_codes
from tinynet.errors import CompileError
from tinynet.tensor import Tensor, world_stamp

MAX_PROGRAMS = 8  # programs kept per function (e.g. full batches and the last, smaller one)


class CompiledFunction:
    """What ``tn.compile(fn)`` returns: call it like ``fn``; ``explain()`` shows the work."""

    def __init__(self, fn: Any, backend: str = "auto", background: bool | None = None) -> None:
        if not callable(fn):
            raise CompileError(f"tn.compile: expected a function or a Module, got "
                               f"{type(fn).__name__}")
        if backend not in ("auto", "interpret"):
            raise CompileError(f"tn.compile: backend must be 'auto' or 'interpret', got "
                               f"{backend!r}")
        if background not in (None, True, False):
            raise CompileError(f"tn.compile: background must be True, False or None (then "
                               f"TINYNET_COMPILE_BACKGROUND decides), got {background!r}")
        if isinstance(fn, CompiledFunction):  # tn.compile(tn.compile(f)) compiles f
            fn = fn.fn
        self.fn = fn
        self.backend = backend
        self.background = background  # compile while replaying step by step (None: the env)
        self.name = getattr(fn, "__qualname__", None) or type(fn).__name__
        self.codes = function_codes(fn)
        self.world: World | None = None
        self.programs: list[Entry] = []  # oldest first
        self.last: Entry | None = None  # the entry of the last call
        self.fast: Any = _miss  # self.last's fast_call (``Guard.fast_call``)
        self.traces = 0  # how many times the function ran eagerly under the tracer
        self.replays = 0
        functools.update_wrapper(self, fn, updated=()) if hasattr(fn, "__name__") else None

    # ---- calling ---------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The fast path: the last call's program, while the world stamp says nothing it covers
        # changed and the few conditions it cannot cover hold: ``Guard.fast_call`` checks those
        # and replays in one generated function, or returns MISS.
        if not kwargs:
            result = self.fast(args)
            if result is not MISS:
                self.replays += 1
                return result
        return self._call(args, kwargs)

    def _call(self, args: tuple, kwargs: dict) -> Any:
        if active_tracer() is not None:  # called inside another trace: part of that one
            return self.fn(*args, **kwargs)
        if kwargs:
            raise CompileError(f"tn.compile({self.name}): pass arguments positionally "
                               f"(got keywords {sorted(kwargs)})")
        if self.world is None or not self.world.roots_unchanged():
            self.world = World(self.fn)  # programs made for the old one are dropped
            self.programs.clear()
            self.last, self.fast = None, _miss
        stamp = world_stamp.value  # read before the checks: a change during them misses
        entry = self.last
        if entry is None or not entry.guard.check(args):
            entry = next((e for e in reversed(self.programs) if e.guard.check(args)), None)
            if entry is None:
                self.world = World(self.fn)  # what the names lead to now (a new weight...)
                return self._trace(args)
        self.last, self.fast = entry, entry.fast_call
        if entry.program is None:  # this kind of call cannot be replayed (a first step)
            return self.fn(*args)
        entry.guard.passed(stamp)
        if entry.runner is not None:  # the numbers the fast check vouches for, read now
            entry.runner.refresh()
        self.replays += 1
        return entry.run(args)

    def _trace(self, args: tuple) -> Any:
        made = pipeline.compile_call(self.fn, args, self.world, self.name, self.codes,
                                     self.backend)
        program = made.program
        self.traces += 1
        entry = Entry(program if made.replayable else None, made.runner, self.name, made.guard,
                      self.background)
        if entry.program is not None:  # (a call that cannot be replayed never takes it)
            entry.fast_check = made.guard.fast_check
            entry.fast_call = made.guard.fast_call(entry)
            if made.runner is not None:
                made.runner.vouched = tuple(made.guard.vouches_for(r) for r in made.runner.reads)
                made.runner.on_moved = made.guard.moved  # a kept .grad let go of
        self.programs.append(entry)
        if len(self.programs) > MAX_PROGRAMS:
            self.programs.pop(0)
        self.last, self.fast = entry, entry.fast_call
        if os.environ.get("TINYNET_COMPILE_DEBUG", "0") not in ("", "0"):
            print(entry.explain(program))
        return made.returned

    def wait(self) -> CompiledFunction:
        """Block until every program's numba code is compiled or loaded (they compile in the
        background while the first calls replay step by step); returns self. For timing
        steady-state steps: ``compiled.wait()`` after the first calls."""
        for entry in list(self.programs):
            entry.wait()
        return self

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

    def __init__(self, program: Program | None, runner: Any, name: str, guard: Guard,
                 in_background: bool | None = None) -> None:
        self.program = program
        self.guard = guard
        self.name = name
        self.runner = runner  # the generated code (codegen.Runner), or None: interpret
        self.compiled: threading.Event | None = None  # set when the background compile ends
        self.compile_error: Exception | None = None
        # fast_check(args): the guard's check for a call right after a checked one (the
        # generated ``Guard.fast_check``, once the guard is finished); False until then
        self.fast_check: Any = _never
        # fast_call(args): fast_check and run in one function (``Guard.fast_call``), or MISS
        self.fast_call: Any = _miss
        # run(args): replays, sets each .grad as the eager call left it, returns fresh tensors
        self.run: Any = None
        if program is not None:
            if self.runner is not None and background(in_background):
                # No call waits for numba: replay step by step until the compiler thread has
                # the machine code loaded, then it switches run (background.py)
                self.compiled = threading.Event()
                self.run = functools.partial(_interpret, program)
                compiler.submit(self)
            elif self.runner is not None:
                self.run = self._first_run
            else:
                self.run = functools.partial(_interpret, program)

    def compile(self) -> None:
        """In the compiler thread (``background.py``): load the segments' machine code from
        numba's disk cache, compiling the missing ones in a child process first; then switch
        ``run`` to the generated replay (one assignment: a call in another thread runs wholly
        one way or the other). If it cannot compile, the program keeps replaying step by
        step, with the same results, and a warning says why."""
        runner = self.runner
        try:
            missing = runner.load()
            if missing:
                child_error = None
                try:
                    runner.fill_cache(missing)
                except Exception as error:  # noqa: BLE001 - try here, below
                    if codegen.exiting():
                        return
                    child_error = error
                if runner.load():  # the child could not leave them in the disk cache
                    try:
                        runner.compile_here()
                    except Exception as error:
                        raise error from child_error
            runner.use_entry_points()
            self.run = runner.replay
        except Exception as error:  # noqa: BLE001 - any failure: keep replaying step by step
            self.compile_error = error
            warnings.warn(f"tn.compile({self.name}): the generated code did not compile "
                          f"({type(error).__name__}: {str(error)[:300]}); this program keeps "
                          "replaying step by step (interpret.py): the same results, slower",
                          RuntimeWarning, stacklevel=1)
        finally:
            self.compiled.set()

    def wait(self) -> None:
        """Block until the machine code of this program is ready (if it is compiling)."""
        if self.compiled is not None:
            self.compiled.wait()

    def _first_run(self, args: tuple) -> Any:
        """The first replay compiles the segments (or loads them from numba's cache); then
        the runner can call their machine code directly (``tn.compile(fn,
        background=False)``, or ``TINYNET_COMPILE_BACKGROUND=0``)."""
        result = self.runner.replay(args)
        self.runner.use_entry_points()
        self.run = self.runner.replay
        return result

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


def background(option: bool | None = None) -> bool:
    """Whether a new program compiles in the background while its calls replay step by step
    (``background.py``): ``option`` (``tn.compile(fn, background=False)``) if given, else
    ``TINYNET_COMPILE_BACKGROUND`` (default on; ``0``: the first replay compiles, and waits)."""
    if option is not None:
        return option
    return os.environ.get("TINYNET_COMPILE_BACKGROUND", "1").strip().lower() not in (
        "0", "false", "off", "no")


def _never(args: tuple) -> bool:
    return False


def _miss(args: tuple) -> Any:
    return MISS


def _interpret(program: Program, args: tuple) -> Any:
    """Replay step by step (``interpret.py``), then leave ``.grad`` and build the result."""
    env = interpret.run(program, args)
    for owner, ref in program.final_grads:
        t = args[owner[1]] if type(owner) is tuple else owner
        t.grad = None if ref is None else Tensor._make(env[ref.value])
    return build_result(program.result, env)
