"""``tn.compile``: guards pick a program for each call; a miss traces a new one.

A call goes like this:

1. Build the guard key: grad mode, TINYNET_NUMBA, each argument's shape/dtype/requires_grad,
   and for every outside tensor its array's identity and shape, whether it has a ``.grad``,
   and the optimizers' groups and state. Anything that changes what the step does to arrays
   is in the key; learning rates are not (they are read at every replay).
2. A known key replays its program (``codegen.py``'s compiled code, or ``interpret.py``);
   an unknown one runs the function eagerly while tracing (``trace.py``), so the first call
   of each kind returns eager results, and keeps the program for next time.
3. After a replay the world looks as after an eager call: parameters and optimizer state
   updated in place, version counters bumped, ``.grad`` set (or None), fresh returned tensors.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd.engine import grad_mode
from tinynet.compile import interpret, recorder
from tinynet.compile.ir import Program, Ref, Returned
from tinynet.compile.trace import Tracer, World, function_codes, tracing
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
        self.programs: OrderedDict[tuple, Entry] = OrderedDict()
        self.last: Entry | None = None
        self.traces = 0  # how many times the function ran eagerly under the tracer
        self.replays = 0
        functools.update_wrapper(self, fn, updated=()) if hasattr(fn, "__name__") else None

    # ---- calling ---------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if recorder.state.on:  # called from inside another trace: just part of that one
            return self.fn(*args, **kwargs)
        if kwargs:
            raise CompileError(f"tn.compile({self.name}): pass arguments positionally "
                               f"(got keywords {sorted(kwargs)})")
        if self.world is None or not self.world.roots_unchanged():
            self.world = World(self.fn)
            self.programs.clear()
        key = self.guard_key(args)
        entry = self.programs.get(key)
        if entry is None:
            return self._trace(key, args)
        if entry.program is None:  # this kind of call cannot be replayed (a first step)
            return self.fn(*args)
        if not entry.still_bound():  # optimizer state replaced (e.g. load_state_dict)
            del self.programs[key]
            return self._trace(key, args)
        self.replays += 1
        return entry.run(args)

    def guard_key(self, args: tuple) -> tuple:
        """Everything a program's validity depends on, as one hashable tuple. Written flat and
        plain: it runs at every call, and for a small network it is most of the call's time."""
        key: list[Any] = [grad_mode.enabled, kernels.numba_enabled(), self.backend]
        append = key.append
        for a in args:
            if isinstance(a, Tensor):
                d = a.data
                append((d.shape, d.dtype.char, a._requires_grad, d.flags.c_contiguous,
                        a.grad is None))
            elif isinstance(a, np.ndarray):
                append(("array", a.shape, a.dtype.char, a.flags.c_contiguous))
            elif a is None or isinstance(a, bool | int | float | str):
                append(("literal", type(a), a))
            else:
                append(("object", id(a)))
        for t in self.world.tensors:
            d, g = t.data, t.grad
            append(id(d))
            append(d.shape)
            append(t._requires_grad)
            append(None if g is None else (g.data.shape, g.data.dtype.char)
                   if isinstance(g, Tensor) else ("object", type(g)))
        for opt in self.world.optimizers:
            append(len(opt.state))  # which state exists: the programs check its identity
            for group in opt.param_groups:
                params = group["params"]
                append(id(params))
                append(len(params))
                append(tuple([(k, _frozen(v)) for k, v in group.items()
                              if k != "lr" and k != "params"]))
        return tuple(key)

    def _trace(self, key: tuple, args: tuple) -> Any:
        tracer = Tracer(self.name, self.codes, args, self.world)
        with tracing(tracer):
            returned = self.fn(*args)
        program = tracer.finish(returned)
        self.traces += 1
        entry = Entry(None if tracer.fresh_state else program, self.backend, self.name)
        self.programs[key] = entry
        if len(self.programs) > MAX_PROGRAMS:
            self.programs.popitem(last=False)
        self.last = entry
        if os.environ.get("TINYNET_COMPILE_DEBUG", "0") not in ("", "0"):
            print(entry.explain(program))
        return returned

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


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(id(v) for v in value)
    if isinstance(value, tuple):
        return value
    return value


class Entry:
    """One traced program and the code that replays it."""

    def __init__(self, program: Program | None, backend: str, name: str) -> None:
        self.program = program
        self.name = name
        self.runner: Any = None
        self.grads: list[tuple[Any, int | None]] = []
        if program is not None:
            self.grads = [(owner, None if ref is None else ref.value)
                          for owner, ref in program.final_grads]
            self.runner = _make_runner(program, backend)

    def still_bound(self) -> bool:
        """The optimizer state arrays the generated code was bound to are still the state."""
        for opt, param, state, arrays in getattr(self.runner, "bound_state", ()):
            if opt.state.get(param) is not state:
                return False
            for key, array in arrays:
                entry = state.get(key)
                if entry is None or entry.data is not array:
                    return False
        return True

    def run(self, args: tuple) -> Any:
        env = self.runner(args)
        for owner, index in self.grads:
            t = args[owner[1]] if type(owner) is tuple else owner
            t.grad = None if index is None else Tensor._make(env[index])
        result = self.program.result
        if type(result) is Ref:
            return Tensor._make(env[result.value].copy())
        return _build(result, env)

    def explain(self, program: Program | None) -> str:
        if program is None:
            return (f"tn.compile({self.name}): this call created optimizer state (a first "
                    "step), so it runs eagerly; the next call is traced and replayed")
        parts = [f"== tn.compile({self.name}): trace", program.describe()]
        describe = getattr(self.runner, "describe", None)
        if describe is not None:
            parts.append(describe())
        else:
            parts.append("== replay: step by step (interpret.py)")
        return "\n".join(parts)


def _make_runner(program: Program, backend: str) -> Any:
    if backend == "auto":
        from tinynet.compile import codegen

        runner = codegen.build(program)
        if runner is not None:
            return runner
    return functools.partial(interpret.run, program)


def _build(result: Any, env: list[Any]) -> Any:
    """The returned structure with fresh tensors (copies: buffers are reused next call)."""
    if isinstance(result, Ref):
        return Tensor._make(np.array(env[result.value], copy=True))
    if isinstance(result, Returned):
        if result.tensor is not None:
            return result.tensor
        return Tensor._make(result.constant.copy())
    if isinstance(result, tuple | list):
        return type(result)(_build(v, env) for v in result)
    if isinstance(result, dict):
        return {k: _build(v, env) for k, v in result.items()}
    return result
