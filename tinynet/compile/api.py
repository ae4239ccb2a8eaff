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
        self.last: Entry | None = None  # the entry of the last call, and its guard key
        self.last_key: tuple | None = None
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
            self.new_world()
        try:
            key = self.guard_key(args)
        except (_Stale, KeyError):  # an optimizer gained a group, a group lost a key
            self.new_world()
            key = self.guard_key(args)
        entry = self.last if key == self.last_key else self.programs.get(key)
        if entry is None:
            return self._trace(key, args)
        if entry.program is None:  # this kind of call cannot be replayed (a first step)
            return self.fn(*args)
        if not entry.still_bound():  # optimizer state replaced (e.g. load_state_dict)
            del self.programs[key]
            return self._trace(key, args)
        self.replays += 1
        self.last, self.last_key = entry, key
        return entry.run(args)

    def new_world(self) -> None:
        """Look at the function's outside objects again; programs made before are dropped."""
        self.world = World(self.fn)
        self.world_key, self.world_key_source = world_guard(self.world)
        self.programs.clear()
        self.last_key = None

    def guard_key(self, args: tuple) -> tuple:
        """Everything a program's validity depends on, as one hashable tuple. Written flat and
        plain: it runs at every call, and for a small network it is most of the call's time.
        The outside tensors and optimizers are always the same objects, so their part is
        generated code (``world_guard``)."""
        key: list[Any] = [grad_mode.enabled, kernels.numba_enabled(), self.backend,
                          self.world_key()]
        append = key.append
        for a in args:
            if isinstance(a, Tensor):
                d = a._data
                append((d.shape, d.dtype.char, a._requires_grad, d.flags.c_contiguous,
                        a.grad is None))
            elif isinstance(a, np.ndarray):
                append(("array", a.shape, a.dtype.char, a.flags.c_contiguous))
            elif a is None or isinstance(a, bool | int | float | str):
                append(("literal", type(a), a))
            else:
                append(("object", id(a)))
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
        self.last, self.last_key = entry, key
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


class _Stale(Exception):
    """The outside world no longer has the shape its generated guard was written for."""


def world_guard(world: World) -> tuple[Any, str]:
    """The outside world's part of the guard key, as a generated function and its source.

    For every outside tensor: its array's identity and shape, requires_grad, and its ``.grad``
    (None, or shape and dtype); for every optimizer: how much state exists and every group's
    keys and hyperparameters but ``lr`` (read at every replay instead). Written as one
    straight-line expression, because a loop over these objects costs more than the replay
    of a small network. Raises ``_Stale`` (or KeyError) once an optimizer's groups change
    shape: the caller then builds a new World and a new guard.
    """
    names: dict[str, Any] = {"_frozen": _frozen, "_grad": _grad_key, "Tensor": Tensor,
                             "_Stale": _Stale}
    lines = ["def world_key():"]
    parts: list[str] = []
    for i, t in enumerate(world.tensors):
        names[f"t{i}"] = t
        parts.append(f"id(t{i}._data), t{i}._data.shape, t{i}._requires_grad, "
                     f"None if t{i}.grad is None else (t{i}.grad._data.shape, "
                     f"t{i}.grad._data.dtype.char) if type(t{i}.grad) is Tensor else "
                     f"_grad(t{i}.grad)")
    for j, opt in enumerate(world.optimizers):
        names[f"opt{j}"] = opt
        lines.append(f"    if len(opt{j}.param_groups) != {len(opt.param_groups)}:")
        lines.append("        raise _Stale")
        parts.append(f"len(opt{j}.state)")  # which state exists: programs check its identity
        for k, group in enumerate(opt.param_groups):
            g = f"group{j}_{k}"
            lines.append(f"    {g} = opt{j}.param_groups[{k}]")
            parts.append(f"tuple({g})")
            parts += [f"_frozen({g}[{name!r}])" if type(v) is list else f"{g}[{name!r}]"
                      for name, v in group.items() if name != "lr"]
    lines.append("    return (")
    lines += [f"        {part}," for part in parts]
    lines.append("    )")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<tn.compile guard of {len(world.tensors)} tensors>", "exec"), names)
    return names["world_key"], source


def _grad_key(g: Any) -> tuple:
    return (g._data.shape, g._data.dtype.char) if isinstance(g, Tensor) else ("object", type(g))


def _frozen(value: list) -> tuple:
    """A list in a parameter group (its ``params``) by the identity of its items and itself."""
    return (id(value), *map(id, value))


class Entry:
    """One traced program and the code that replays it."""

    def __init__(self, program: Program | None, backend: str, name: str) -> None:
        self.program = program
        self.name = name
        self.runner: Any = None
        # (owner, value index or None, the Tensor to set as .grad when its array is the same
        # workspace slice at every call, else None): set after each replay
        self.grads: list[tuple[Any, int | None, Tensor | None]] = []
        if program is not None:
            self.runner = _make_runner(program, backend)
            fixed = getattr(self.runner, "fixed", {})  # value index -> array bound for good
            for owner, ref in program.final_grads:
                index = None if ref is None else ref.value
                grad = Tensor._make(fixed[index]) if index in fixed else None
                self.grads.append((owner, index, grad))

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
        for owner, index, grad in self.grads:
            t = args[owner[1]] if type(owner) is tuple else owner
            t.grad = grad if grad is not None else None if index is None else Tensor._make(
                env[index])
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
