"""Tracing: run the step function eagerly once and write down everything it did to arrays.

What is recorded (see ``ir.py`` for the result):

- every ``Function.apply`` (forward ops, and the ops the engine itself runs: ``+`` to add
  gradients up, ``clone`` for a leaf's first gradient, ``sum``/``reshape`` to undo
  broadcasting, ``cast``);
- every backward rule the engine calls, as one opaque step (the ops inside it are not recorded:
  at replay the rule runs again on the replayed node, so masks, targets and everything else it
  keeps on ``ctx`` are recomputed from the new inputs);
- ops that write into their inputs in place (``ctx.writes``): an optimizer's ``_Update`` of
  one parameter, recorded like any other op, its written arrays (the parameter, the optimizer's
  state) marked as written by the program and its ``read`` option kept, so a replay reads the
  learning rate and the other numbers from the parameter group again, never baked in.

Arrays are named by identity (``id``) while the trace runs; the tracer keeps each one alive so
an id is never reused. An array the tracer has not seen before is an outside tensor's data or
gradient or optimizer state (found by ``World`` before the call), a function input, or else a
constant made inside the function (the ``ones`` seeding ``backward()``).

What cannot be traced raises ``CompileError`` naming the function and the line: reading values
(``.item()``, ``bool(t)``, ``float(t)``, ``.numpy()``, ``.tolist()``, printing a tensor),
double backward, hooks, and writing into tensors behind the recorder's back.
"""

from __future__ import annotations

import contextlib
import dis
import functools
import sys
import sysconfig
import threading
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

from tinynet.autograd.engine import Observer, observing
from tinynet.compile import fuse
from tinynet.compile.ir import Program, Ref, Returned, Step, Value
from tinynet.errors import CompileError
from tinynet.tensor import Tensor, value_reads

_TINYNET_DIR = __file__.rsplit("/compile/", 1)[0]
# where the standard library and installed packages live: their objects' insides (a lock's,
# a barrier's) are theirs, not the step's numbers
_LIBRARY_DIRS = tuple({sysconfig.get_paths()[key] + "/" for key in (
    "stdlib", "platstdlib", "purelib", "platlib")} | {"<frozen"})
_CODE = (types.ModuleType, type, types.FunctionType, types.MethodType, types.BuiltinFunctionType,
         functools.partial)
_MAX_ITEMS = 64  # larger containers and objects are not looked into (nor guarded item by item)


# ---------------------------------------------------------------------------------------------
# The world: outside tensors, modules and optimizers the function uses
# ---------------------------------------------------------------------------------------------


class World:
    """The outside objects a step function reads: found by looking at the names its code uses
    (globals, closure cells, defaults, ``self``), one level into lists, dicts and objects.

    ``roots`` re-resolve those names at every call (a rebound global is a guard miss);
    ``tensors`` are the outside tensors (module parameters and buffers, optimizer parameters,
    tensors named directly); ``optimizers`` the optimizers.
    """

    def __init__(self, fn: Any) -> None:
        # the names code can read: the step's and, found on the way, those of the user's
        # functions and methods the walk reaches (a helper the step calls, a module's
        # forward); walked again while it finds more
        names = _code_names(fn)
        while True:
            found = self._walk(fn, names)
            if found <= names:
                break
            names |= found

    def _walk(self, fn: Any, step_names: set[str]) -> set[str]:
        """Find the world from the step's outside names; returns the names the user's code
        reached on the way uses (a method of a module, a function held by an object)."""
        from tinynet.nn import Module
        from tinynet.optim.optimizer import Optimizer
        from tinynet.random import Generator

        self.roots: list[tuple[Any, Any]] = []  # (resolver, object it gave at trace time)
        self.tensors: list[Tensor] = []
        self.optimizers: list[Any] = []
        self.modules: list[Any] = []  # every module reached, submodules included
        self.objects: list[Any] = []  # other objects, lists and dicts the names lead to
        # an object's attributes that code can read: the names the step's code and the
        # object's own methods use (``self.loss = step(...)`` after the call is not read)
        self.object_keys: dict[int, set[str]] = {}
        # (class, name, value): a class attribute the user's code reads through an object
        # (``self.SCALE``, ``cfg.v``): it belongs to the class, so no instance check sees it
        self.class_values: list[tuple[type, str, Any]] = []
        seen: set[int] = set()
        names: set[str] = set()

        def walk(functions: list[Any]) -> None:
            """The user's functions reached (a helper, a module's ``forward``): the globals,
            cells and defaults they read are roots like the step's own."""
            for f in functions:
                if id(f.__code__) not in seen:
                    seen.add(id(f.__code__))
                    names.update(_names_in(f.__code__))
                    for resolve in _function_resolvers(f):
                        root(resolve)

        def root(resolve: Any) -> None:
            try:
                obj = resolve()
            except (KeyError, ValueError, AttributeError):
                return
            self.roots.append((resolve, obj))
            add(obj, 2)

        def add(obj: Any, depth: int) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if isinstance(obj, Tensor):
                self.tensors.append(obj)
            elif isinstance(obj, Module):
                for m in obj.modules():
                    if not any(m is known for known in self.modules):
                        self.modules.append(m)
                        users = not type(m).__module__.startswith("tinynet.")
                        # plain tensor attributes (self.scale = tn.tensor(...)) are read too,
                        # and a module of the user's own reads its objects' attributes
                        # (``self.cfg.scale``) and the globals of its methods
                        for key, value in list(vars(m).items()):
                            if isinstance(value, Tensor):
                                add(value, 0)
                            elif users and not key.startswith("_"):
                                add(value, 1)
                        if users:
                            reached: list[Any] = []
                            keys = _method_names(type(m), step_names | {"forward"}, reached)
                            names.update(keys)
                            self.class_values += _class_values(m, keys)
                            walk(reached)
                for t in list(obj.parameters()) + [b for _, b in obj.named_buffers()]:
                    add(t, 0)
            elif isinstance(obj, Optimizer):
                self.optimizers.append(obj)
                for group in obj.param_groups:
                    for p in group["params"]:
                        add(p, 0)
                if not reads_its_numbers(obj):  # a step of the user's own reads attributes too
                    self.objects.append(obj)
                    self.object_keys[id(obj)] = _method_names(type(obj)) - {
                        "state", "param_groups", "defaults"}
            elif isinstance(obj, Generator):
                return  # its draws read its stream as it is at each replay (random.source):
                # a reseed (``g.manual_seed(epoch)``) is not a new program
            elif isinstance(obj, _CODE) or type(obj).__module__.startswith("tinynet.compile"):
                # modules, classes, functions, compiled functions: not the step's state; but
                # what a function of the user's own reads is (``self.act = my_activation``)
                obj = getattr(obj, "__wrapped__", obj)
                if _user_function(obj):
                    walk([obj])
            elif depth > 0 and isinstance(obj, list | tuple) and len(obj) <= _MAX_ITEMS:
                if isinstance(obj, list):
                    self.objects.append(obj)
                for item in obj:
                    add(item, depth - 1)
            elif depth > 0 and isinstance(obj, dict) and len(obj) <= _MAX_ITEMS:
                self.objects.append(obj)
                for item in list(obj.values()):
                    add(item, depth - 1)
            elif depth > 0 and hasattr(obj, "__dict__") and len(vars(obj)) <= _MAX_ITEMS:
                self.objects.append(obj)
                reached = []
                keys = _method_names(type(obj), step_names, reached)
                names.update(keys)
                self.object_keys[id(obj)] = keys
                self.class_values += _class_values(obj, keys)
                walk(reached)
                for key, item in list(vars(obj).items()):
                    if key in keys:
                        add(item, depth - 1)

        for resolve in _root_resolvers(fn):
            root(resolve)
        return names

    def roots_unchanged(self) -> bool:
        for resolve, obj in self.roots:
            try:
                if resolve() is not obj:
                    return False
            except (KeyError, ValueError, AttributeError):
                return False
        return True

    def slots(self) -> dict[int, tuple]:
        """id(array) -> where it lives: ("param", t), ("grad", t), ("state", opt, p, key)."""
        found: dict[int, tuple] = {}
        for t in self.tensors:
            found.setdefault(id(t.data), ("param", t))
            if isinstance(t.grad, Tensor):
                found.setdefault(id(t.grad.data), ("grad", t))
        for opt in self.optimizers:
            for p, entries in opt.state.items():
                for key, v in entries.items():
                    if isinstance(v, Tensor):
                        found.setdefault(id(v.data), ("state", opt, p, key))
        return found

    def arrays(self) -> list[np.ndarray]:
        out = []
        for t in self.tensors:
            out.append(t.data)
            if isinstance(t.grad, Tensor):
                out.append(t.grad.data)
        for opt in self.optimizers:
            for entries in opt.state.values():
                out += [v.data for v in entries.values() if isinstance(v, Tensor)]
        return out


def _class_values(obj: Any, keys: set[str]) -> list[tuple[type, str, Any]]:
    """The class attributes among ``keys`` that ``obj`` reads from its class: values (numbers,
    strings, tensors, other objects), not methods, properties or classes (code)."""
    if type(obj).__module__.startswith("tinynet."):
        return []  # tinynet's own classes: their class attributes are tinynet's constants
    found = []
    instance = vars(obj)
    for key in sorted(keys - set(instance)):
        for klass in type(obj).__mro__:
            if key in vars(klass):
                value = vars(klass)[key]
                if not (callable(value) or hasattr(type(value), "__get__")):  # (methods,
                    found.append((klass, key, value))  # properties, classes: code)
                break
    return found


def _root_resolvers(fn: Any) -> list[Any]:
    """Functions that look up, at call time, each outside object ``fn``'s code names."""
    from tinynet.nn import Module

    resolvers: list[Any] = []
    if isinstance(fn, Module):
        return [lambda: fn]
    target = getattr(fn, "__func__", fn)
    if hasattr(fn, "__self__"):
        owner = fn.__self__
        resolvers.append(lambda: owner)
    if getattr(target, "__code__", None) is None:  # a callable object: its __call__ and its
        resolvers.append(lambda: fn)  # attributes
        call = getattr(type(fn), "__call__", None)  # noqa: B004 - the method, not callable()
        return resolvers + (_root_resolvers(call) if hasattr(call, "__code__") else [])
    return resolvers + _function_resolvers(target)


def _function_resolvers(target: Any) -> list[Any]:
    """A Python function's outside names, each looked up again at every call: the globals its
    code loads, its closure cells, its defaults."""
    names: list[str] = []  # the globals the code loads (co_names also lists attribute names:
    for c in _code_objects(target.__code__):  # opt.step() must not make a global ``step``
        names += [i.argval for i in dis.get_instructions(c)  # part of the world)
                  if i.opname in ("LOAD_GLOBAL", "LOAD_NAME") and i.argval not in names]
    globals_ = target.__globals__
    resolvers = [lambda name=name: globals_[name] for name in names if name in globals_]
    resolvers += [lambda cell=cell: cell.cell_contents for cell in target.__closure__ or ()]
    return resolvers + [lambda default=default: default for default in target.__defaults__ or ()]


def _user_function(obj: Any) -> bool:
    """A Python function of the user's own (not tinynet's, the standard library's or an
    installed package's): when the step calls it, the globals and closure it reads are part
    of the step's world as much as the step's own."""
    return isinstance(obj, types.FunctionType) and not _library_code(obj.__code__) and not (
        obj.__code__.co_filename.startswith(_TINYNET_DIR + "/"))


def _library_code(code: Any) -> bool:
    """Code of the standard library or an installed package (not tinynet's, not the user's)."""
    return code.co_filename.startswith(_LIBRARY_DIRS)


def _code_names(fn: Any) -> set[str]:
    """Every name the step's code uses (globals and attributes alike)."""
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None:
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)  # noqa: B004 - the method
    return _names_in(code) if code is not None else set()


# special methods that run when an object is made, not on one that exists: not reached
_MADE_ONCE = frozenset({"__init__", "__new__", "__init_subclass__", "__set_name__"})


def _method_names(cls: type, roots: set[str] | None = None,
                  reached_functions: list[Any] | None = None) -> set[str]:
    """The names the methods of a user class use (``self.helper()`` reads what it reads).

    With ``roots`` (the names the step's code uses): ``roots`` and the names of the methods
    those names can reach, name by name (a method reached adds the names its code uses), from
    the roots and every special method but ``__init__`` and its kind (``self(x)``,
    ``len(self)`` and operators call those without naming them); a method no chain of names
    reaches cannot run on this object, so what only it reads is not part of the step's world
    (``__init__`` reading ``self.layers`` does not make a list the step never reads a
    condition of every call). Without: every method's names. A library's methods (a
    ``threading.Barrier``'s ``wait``) are not followed: what they read is the library's
    business; of its object, the attributes the user's code names are read (``args.lr`` of an
    ``argparse.Namespace``). ``reached_functions``: a list that gets the functions of the
    methods reached that are the user's own (``forward`` reading a global ``CONFIG``: its
    globals are outside names of the step too)."""
    methods: dict[str, list[Any]] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        for name, value in vars(klass).items():
            functions = []
            for part in ((value.fget, value.fset, value.fdel) if isinstance(value, property)
                         else (value,)):
                while hasattr(part, "__wrapped__"):  # a decorated method (@tn.no_grad())
                    part = part.__wrapped__
                part = getattr(part, "__func__", part)
                if getattr(part, "__code__", None) is not None:
                    functions.append(part)
            if functions:
                methods.setdefault(name, []).extend(functions)
    if roots is None:
        return {n for functions in methods.values() for f in functions
                for n in _names_in(f.__code__)}
    names = set(roots)
    reached: set[str] = set()
    todo = [m for m in methods if m in names or (
        m.startswith("__") and m.endswith("__") and m not in _MADE_ONCE)]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        for f in methods[name]:
            if _library_code(f.__code__):
                continue
            found = _names_in(f.__code__)
            todo += [m for m in methods if m in found - names]
            names |= found
            if reached_functions is not None and _user_function(f):
                reached_functions.append(f)
    return names


def _names_in(code: Any) -> set[str]:
    """The names a function's code (and the functions it defines) uses: attribute and global
    names, and the strings that could be one (``getattr(self, "helper")``)."""
    return {n for c in _code_objects(code)
            for n in (*c.co_names, *(k for k in c.co_consts
                                     if isinstance(k, str) and k.isidentifier()))}


def _code_objects(code: Any) -> list[Any]:
    found = [code]
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            found += _code_objects(const)
    return found


def reads_its_numbers(opt: Any) -> bool:
    """True if ``opt.step`` is tinynet's: its updates (``_Update``) read lr, momentum... from
    the groups at every replay. A step of the user's own (a subclass overriding ``step``)
    bakes the numbers it read into the ops it ran, so the guard checks them by value and the
    trace refuses changes to its Python state."""
    return getattr(type(opt).step, "__module__", "").startswith("tinynet.optim")


def function_codes(fn: Any) -> set[Any]:
    """The code objects that count as "the user's function" when naming a line."""
    from tinynet.nn import Module

    if isinstance(fn, Module):
        return {c for m in fn.modules() for c in _code_objects(type(m).forward.__code__)}
    target = getattr(fn, "__func__", fn)
    call = type(fn).__dict__.get("__call__")
    code = getattr(target, "__code__", None) or getattr(call, "__code__", None)
    return set(_code_objects(code)) if code is not None else set()


def user_line(codes: set[Any]) -> str:
    """file:line of the innermost frame in the traced function (or else outside tinynet)."""
    frame = sys._getframe(1)
    fallback = None
    while frame is not None:
        if frame.f_code in codes:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        if fallback is None and not frame.f_code.co_filename.startswith(_TINYNET_DIR):
            fallback = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return fallback or "?"


# ---------------------------------------------------------------------------------------------
# The tracer
# ---------------------------------------------------------------------------------------------


class Tracer(Observer):
    """Collects values and steps while the function runs once, eagerly."""

    def __init__(self, name: str, codes: set[Any], args: tuple, world: World) -> None:
        self.name = name
        self.codes = codes
        self.world = world
        self.values: list[Value] = []
        self.steps: list[Step] = []
        self.by_id: dict[int, int] = {}  # id(array) -> value index
        self.keep: list[Any] = []  # arrays and nodes held so their ids stay unique
        self.node_step: dict[int, int] = {}  # id(graph node) -> the op step that made it
        self.slots = world.slots()
        self.snapshot = {i: a.copy() for i, a in
                         ((id(a), a) for a in world.arrays())}
        self.start_versions = [t._version.value for t in world.tensors]
        self.start_grads = [t.grad for t in world.tensors]
        self.start_data = [t._data for t in world.tensors]
        self.paused = False  # True while a backward rule runs: its ops and reads are its own
        self.versions: dict[int, tuple[Any, int]] = {}  # value index -> (counter, its value)
        self.python_state = python_state(world)  # to find side effects at the end
        self.fresh_state = False  # an update wrote state made in this call: not replayed
        self.updated: list[Tensor] = []  # parameters ops wrote in place, once per write
        self.bumped: list[Tensor] = []  # outside tensors recorded in-place ops wrote
        self.writing: set[int] = set()  # ids of the arrays the op being recorded wrote
        self.written: set[int] = set()  # outside arrays ops wrote in place
        self.inputs: list[tuple[int, np.ndarray]] = []
        # id -> (array, its values when made) for the arrays tinynet made from Python numbers
        self.literals: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Tensor arguments are outside tensors too, for their .grad (the object changes per
        # call, so they are named by position: ("arg", i)).
        self.arg_tensors = [(("arg", i), a) for i, a in enumerate(args)
                            if isinstance(a, Tensor) and a.requires_grad]
        self.args = args
        self.start_arg_grads = [t.grad for _, t in self.arg_tensors]
        for where, t in self.arg_tensors:
            if isinstance(t.grad, Tensor):
                self.slots.setdefault(id(t.grad.data), ("grad", where))
                self.snapshot.setdefault(id(t.grad.data), t.grad.data.copy())
        for i, arg in enumerate(args):
            array = arg.data if isinstance(arg, Tensor) else arg
            if not isinstance(array, np.ndarray) or id(array) in self.by_id:
                continue
            slot = self.slots.get(id(array))
            if slot is not None and slot[0] in ("param", "state"):
                # an outside tensor passed in (``step(model.weight)``, ``step(self.x)``): the
                # program binds it as the outside tensor it is (the guard asks for that same
                # tensor and array in this place, ``Guard._outside_aliasing``), so an
                # optimizer may update it as any parameter
                self._outside_value(array, slot)
                continue
            self.inputs.append((i, array))
            self._new(array, "input", i)
        for i, arg in enumerate(args):  # tensors inside lists, tuples and dicts are inputs too
            if type(arg) in (list, tuple, dict):
                self._nested_inputs(arg, (i,))

    def _nested_inputs(self, container: Any, path: tuple) -> None:
        items = container.items() if type(container) is dict else enumerate(container)
        for key, item in items:
            if type(item) in (list, tuple, dict):
                self._nested_inputs(item, path + (key,))
                continue
            array = item.data if isinstance(item, Tensor) else item
            if not isinstance(array, np.ndarray) or id(array) in self.by_id:
                continue
            if isinstance(item, Tensor) and item.requires_grad:
                self.fail("passes a tensor that requires grad inside a list, tuple or dict "
                          "argument; tn.compile sets .grad only on positional tensor "
                          "arguments: pass it as an argument of its own", line="")
            self._new(array, "input", ("item",) + path + (key,))

    # ---- values ----------------------------------------------------------------------------

    def _new(self, array: np.ndarray, kind: str, source: Any = None,
             producer: int | None = None) -> Ref:
        value = Value(len(self.values), kind, tuple(array.shape), array.dtype, source, producer,
                      bool(array.flags.c_contiguous))
        self.values.append(value)
        self.by_id[id(array)] = value.index
        self.keep.append(array)
        return Ref(value.index)

    def _outside_value(self, array: np.ndarray, slot: tuple) -> Ref:
        """A new value for an outside array (``World.slots``): a parameter's, a ``.grad``'s
        (its source the tensor) or optimizer state (its source (optimizer, parameter, key))."""
        return self._new(array, slot[0], slot[1] if slot[0] != "state" else slot[1:])

    def ref(self, x: Any) -> Any:
        """A Ref for a Tensor or array the step reads; literals for anything else."""
        if isinstance(x, Tensor):
            array = x.data
        elif isinstance(x, np.ndarray):
            array = x
        elif isinstance(x, tuple | list):
            return type(x)(self.ref(v) for v in x)
        else:
            return x
        index = self.by_id.get(id(array))
        if index is not None:
            seen = self.versions.get(index)
            if seen is not None and seen[0].value != seen[1]:
                self.fail("reads a tensor that was edited in place earlier in the call (x += "
                          "..., x.add_(...), x[i] = ..., under no_grad or on a non-graph "
                          "tensor; gradient clipping, clip_grad_norm_/clip_grad_value_, edits "
                          ".grad this way); a replay repeats recorded ops, not writes into "
                          "arrays. Use the out-of-place op (x = x + ...), or do the edit "
                          "outside the compiled function")
            return Ref(index)
        slot = self.slots.get(id(array))
        if slot is not None:
            if id(array) not in self.writing and not _same(array, self.snapshot[id(array)]):
                self.fail("reads an outside tensor that was modified in place earlier in the "
                          "call, outside the ops tn.compile records")
            return self._outside_value(array, slot)
        if isinstance(x, Tensor) and x.requires_grad and x.grad_fn is None:
            self.fail(
                f"uses a tensor of shape {x.shape} that requires grad but is not reachable from "
                "the names the function uses (its globals, closure, defaults, self); refer to "
                "its module or optimizer in the function, or pass it as an argument"
            )
        literal = self.literals.get(id(array))
        if literal is None:
            self.fail(f"uses a {array.dtype} array of shape {array.shape} that tn.compile "
                      "cannot trace to its source: not an argument, nor a tensor the function's "
                      "names lead to, nor made by a tinynet op or from Python numbers. It comes "
                      "from numpy work on .data (or .numpy()), a copy such as tn.tensor(x) or "
                      "tn.as_tensor(array) of a tensor or numpy array, or a tensor kept where "
                      "the function's names do not lead. A replay would reuse this call's "
                      "values forever. Compute it with tensor ops (x > 0, x.clone(), "
                      "x.detach(), x.to(dtype)), or pass it in as an argument")
        if not _same(array, literal[1]):
            self.fail(f"writes into a tensor of shape {array.shape} made in the function from "
                      "numbers (tn.zeros, tn.tensor([...])) outside tinynet's ops (through .data "
                      "or numpy); a replay repeats recorded ops, not such writes. Build it with "
                      "tensor ops (tn.where, tn.cat...), or pass it in as an argument")
        return self._new(array, "const", literal[1])

    def on_constant(self, array: np.ndarray) -> None:
        """tinynet made ``array`` from Python numbers alone (``tensor.made_from_literals``):
        a constant, unless something writes into it behind the recorder's back."""
        if not self.paused:
            self.literals[id(array)] = (array, array.copy())

    def produce(self, x: Any, step: int) -> Any:
        if x is None:
            return None
        array = x.data if isinstance(x, Tensor) else np.asarray(x)
        index = self.by_id.get(id(array))
        if index is not None and self.values[index].kind not in ("temp", "const"):
            return Ref(index)  # an op handed back an outside array unchanged (a no-op view)
        return self._new(array, "temp", producer=step)

    # ---- what the engine calls (the tracer is its observer while tracing) ------------------

    def on_apply(self, cls: type, ctx: Any, inputs: tuple, options: dict, out: Any,
                 result: Tensor, recorded: bool) -> None:
        if self.paused:  # an op inside a backward rule: the rule reruns whole at replay
            return
        if cls.__name__ in fuse.UNSUPPORTED:
            self.fail(f"edits a tensor in place through a view ({cls.__name__}), which tn.compile "
                      "cannot replay; write it out of place (h = h + 1)")
        for i in options["writes"] if getattr(cls, "in_place", False) else ():
            self._fresh_copy(inputs[i])  # (a write into a constant: into a copy of it)
        index = len(self.steps)
        writes = getattr(ctx, "writes", ())  # inputs the op wrote in place (an optimizer's)
        in_place = getattr(cls, "in_place", False)  # ops.datadep._WriteInPlace
        # (its forward already wrote the outside arrays it writes: not a write behind our back)
        self.writing = {id(inputs[i].data) for i in options["writes"]} if in_place else set()
        step = Step(index, "op", cls.op, [self._written(x) if i in writes else self.ref(x)
                                          for i, x in enumerate(inputs)], [],
                    {k: self.ref(v) for k, v in options.items()}, cls=cls,
                    needs_input_grad=tuple(isinstance(x, Tensor) and x.requires_grad
                                           for x in inputs),
                    line=user_line(self.codes))
        self.writing = set()
        if in_place:
            self._writes(step, inputs, options["writes"])
        step.outputs = ([step.inputs[i] for i in writes] if writes
                        else [self.produce(result, index)])
        self.steps.append(step)
        out_ref = step.outputs[0]
        if isinstance(out_ref, Ref) and self.values[out_ref.value].kind == "temp":
            self.versions[out_ref.value] = (result._version, result._version.value)
        for x, r in zip(inputs, step.inputs, strict=True):  # an argument edited later is read
            if isinstance(x, Tensor) and isinstance(r, Ref) and \
                    self.values[r.value].kind == "input" and r.value not in self.versions:
                self.versions[r.value] = (x._version, x._version.value)
        if result.grad_fn is ctx:  # a graph node: its backward rule is recorded when it runs
            self.node_step[id(ctx)] = index
            self.keep.append(ctx)

    def _fresh_copy(self, x: Tensor) -> None:
        """A recorded op writes in place into a tensor made in the function from numbers
        (``tn.zeros_like(x).bernoulli_(p)``, a first step's ``tn.zeros_like(p)`` momentum
        buffer): it writes into a copy of the constant, made by a recorded ``clone`` step, so
        at every replay it starts from the numbers again and the constant stays as made."""
        from tinynet.ops.elementwise import Clone

        array = x.data
        index = self.by_id.get(id(array))
        if index is None and id(array) in self.literals:
            const = self._new(array, "const", self.literals[id(array)][1])
        elif index is not None and self.values[index].kind == "const":
            const = Ref(index)
        else:
            return
        at = len(self.steps)
        self.steps.append(Step(at, "op", Clone.op, [const], [self._new(array, "temp",
                                                                         producer=at)],
                               cls=Clone, needs_input_grad=(False,), line=user_line(self.codes)))

    def _writes(self, step: Step, inputs: tuple, writes: tuple[int, ...]) -> None:
        """A recorded op writes inputs ``writes`` in place (running statistics, clipped
        gradients): at replay it writes that call's arrays again. Its caller bumps the
        tensors' version counters once the op returns."""
        for i in writes:
            x, r = inputs[i], step.inputs[i]
            value = self.values[r.value]
            if value.kind == "const":
                self.fail(f"writes in place into a tensor of shape {value.shape} made in the "
                          "function from numbers (tn.zeros, tn.tensor([...])); a replay would "
                          "start from the written values. Make it outside the function (a "
                          "buffer), or build it with out-of-place ops")
            if value.kind in ("param", "grad", "state"):
                self.written.add(id(x.data))
            if value.kind == "param" and x is value.source:  # (p.data += ...: no bump)
                step.bumps.append(value.source)
                self.bumped.append(value.source)
            elif r.value in self.versions or value.kind == "input":  # the bump to come is
                self.versions[r.value] = (x._version, x._version.value + 1)  # recorded

    def around_backward(self, node: Any, grad: Tensor, create_graph: bool,
                        rule: Any) -> tuple[Any, ...]:
        """One backward rule the engine runs: recorded as one step (its own ops are not: at
        replay the rule runs again on the replayed node)."""
        if self.paused:
            return rule()
        if create_graph:
            self.fail("backward(create_graph=True) (double backward) cannot be compiled")
        if node.hooks:
            self.fail("tensor hooks (register_hook, retain_grad) cannot be compiled")
        node_step = self.node_step.get(id(node))
        if node_step is None:
            self.fail("runs backward through a graph built before the compiled call (its "
                      "saved values are not the call's); build the graph inside the compiled "
                      "function, or call backward() outside it")
        cls = type(node)
        grad_ref = self.ref(grad)
        self.paused = True
        try:
            # a rule may return numbers or arrays: made Tensors here, so the arrays the engine
            # goes on with are the ones recorded as this step's outputs
            grads = tuple(g if g is None or isinstance(g, Tensor) else Tensor._make(g)
                          for g in rule())
        finally:
            self.paused = False
        index = len(self.steps)
        self.steps.append(Step(
            index, "backward", cls.op, [grad_ref], [self.produce(g, index) for g in grads],
            cls=cls, node=node_step, fast=node.fast_backward is not None,
            line=user_line(self.codes)))
        self.steps[node_step].differentiated = True
        return grads

    def refuse_read(self, what: str) -> None:
        """A value read (``tensor.read_values``): refused, except inside backward rules."""
        if not self.paused:
            self.fail(_READERS[what] + _HOW if what in _READERS else what)

    def _written(self, x: Tensor) -> Ref:
        """An input an op writes in place (``ctx.writes``: an optimizer's ``_Update``): an outside
        array the program owns, written at every replay (a parameter, or optimizer state), the
        writes counted so the version counters and the end checks agree."""
        array = x.data
        slot = self.slots.get(id(array))
        index = self.by_id.get(id(array))
        if index is None and slot is None:  # made during this call (a first step's state):
            if x.requires_grad:
                self.fail("updates a parameter that is not reachable from the function's "
                          "names; refer to its model or optimizer in the function")
            self.fresh_state = True  # this call is not replayed (the next one is traced)
            return self._new(array, "const", array)
        kind = self.values[index].kind if index is not None else slot[0]
        if kind not in ("param", "state"):
            self.fail("writes in place into a tensor made in the function; write into the "
                      "model's parameters or the optimizer's state only")
        self.written.add(id(array))
        if kind == "param":
            self.updated.append(x if slot is None else slot[1])
        if index is not None:
            return Ref(index)
        return self._outside_value(array, slot)

    # ---- the end ---------------------------------------------------------------------------

    def finish(self, returned: Any) -> Program:
        """Check nothing changed behind the recorder's back; describe what the call leaves."""
        changed = python_changes(self.python_state)
        if changed and ".state[a parameter" in changed:  # a hand-written optimizer's step
            self.fail(f"changes {changed} in Python (a step count, or a state tensor replaced "
                      "by a new one): a replay runs the recorded ops only and would not repeat "
                      "it. Keep counts in tensors (state['step'] = tn.tensor(0.0), then "
                      "state['step'] += 1) and update state tensors in place under "
                      "tn.no_grad() (buf.mul_(momentum).add_(p.grad)), as PyTorch's "
                      "optimizers do", line="")
        if changed:
            self.fail(f"changes {changed} (a scheduler.step(), an assignment into "
                      "param_groups, a counter or an append to an outside list?): a replay runs "
                      "the recorded ops only and would not repeat it. Do it outside the "
                      "compiled function, after each call", line="")
        # A view of a parameter the recorded optimizer update wrote (MultiheadAttention's
        # bias slices) shares its counter: that write is recorded, and reading the view after
        # it is refused in ``ref``.
        updated = {id(p._version) for p in self.updated}
        for index, (counter, version) in self.versions.items():
            if counter.value != version and id(counter) not in updated:
                what = "an argument" if self.values[index].kind == "input" else "a tensor"
                self.fail(f"edits {what} of shape {self.values[index].shape} in place (x += "
                          "..., x.add_(...), x[i] = ...; gradient clipping, clip_grad_norm_/"
                          "clip_grad_value_, edits .grad this way); a replay repeats recorded "
                          "ops, not writes into arrays. Use the out-of-place op (x = x + ...), "
                          "or do the edit outside the compiled function", line="")
        written = self.written | {id(p.data) for p in self.updated}
        for array in self.world.arrays():
            if id(array) in self.snapshot and id(array) not in written and not _same(
                    array, self.snapshot[id(array)]):
                self.fail(self._who_writes(array), line="")
        counts: dict[int, int] = {}
        for p in self.updated + self.bumped:
            counts[id(p)] = counts.get(id(p), 0) + 1
        for t, start in zip(self.world.tensors, self.start_versions, strict=True):
            if t._version.value != start + counts.get(id(t), 0):
                self.fail(f"modifies an outside tensor of shape {t.shape} in place; do it "
                          "outside the compiled function")
        final_grads: list[tuple[Any, Any]] = []
        owners = [(t, t) for t in self.world.tensors] + self.arg_tensors
        outside = {id(t) for t in self.world.tensors}
        for (where, t), start in zip(owners, self.start_grads + self.start_arg_grads,
                                     strict=True):
            if t.grad is start or (where is not t and id(t) in outside):
                continue  # (an outside tensor passed in: its .grad is left once, as its own)
            if t.grad is None:
                final_grads.append((where, None))
            elif not isinstance(t.grad, Tensor) or id(t.grad.data) not in self.by_id:
                self.fail(f"sets .grad of a tensor of shape {t.shape} to something no "
                          "recorded op made")
            else:
                final_grads.append((where, Ref(self.by_id[id(t.grad.data)])))
        result = self._result(returned)
        return Program(self.values, self.steps, result, final_grads, self.updated, self.name)

    def unused_tensors(self) -> set[int]:
        """ids of the world's tensors the call never read, wrote nor gave a new ``.grad``
        (a tensor an object keeps from the last call), or read only as an argument (the same
        tensor object passed in: ``step(self.x)``; the guard then asks for that object and
        its array in that place, ``Guard._outside_aliasing``): the guard need not check them."""
        used = {id(p) for p in self.updated}
        passed = {id(a) for a in self.args if isinstance(a, Tensor)}
        return {id(t) for t, data, grad in zip(self.world.tensors, self.start_data,
                                               self.start_grads, strict=True)
                if (id(data) not in self.by_id or id(t) in passed) and id(t) not in used
                and t.grad is grad and t._data is data}

    def _who_writes(self, array: np.ndarray) -> str:
        """The message for an outside array changed behind the recorder's back."""
        return ("modifies an outside tensor in place (tn.compile records ops, not writes into "
                "arrays: numpy work on .data, as in a hand-written optimizer step); use tensor "
                "ops (in-place ones under tn.no_grad(), p.add_(p.grad, alpha=-lr), are "
                "recorded), or do it outside the compiled function")

    def _result(self, value: Any) -> Any:
        if isinstance(value, Tensor):
            for t in self.world.tensors:
                if value is t:
                    return Returned(tensor=t)
            index = self.by_id.get(id(value.data))
            if index is None:
                return Returned(constant=value.data.copy())
            if value.grad_fn is not None and not any(s.kind == "backward" for s in self.steps):
                return Returned(value=index, name=self.name)  # a graph eager mode hands back
            return Ref(index)
        if isinstance(value, tuple | list):
            return type(value)(self._result(v) for v in value)
        if isinstance(value, dict):
            return {k: self._result(v) for k, v in value.items()}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        self.fail(f"returns a {type(value).__name__}; a compiled function returns tensors, "
                  "numbers, None, or tuples/lists/dicts of them")
        raise AssertionError  # unreachable

    def fail(self, what: str, line: str | None = None) -> None:
        """Raise CompileError naming the user's line (``line=""``: the whole call)."""
        where = "the function" if line == "" else f"line {line or user_line(self.codes)}"
        raise CompileError(f"tn.compile({self.name}): {where} {what}")


_PLAIN = (bool, int, float, str, type(None))


def _state_of(obj: Any, keys: set[str] | None = None) -> Any:
    """What of ``obj`` a side effect would change: plain values by value, the rest by
    identity (lists and dicts item by item, objects attribute by attribute: those in ``keys``,
    the ones code can read and write, if given)."""
    if isinstance(obj, list):
        return ("list", [v if isinstance(v, _PLAIN) else id(v) for v in obj])
    items = obj.items() if isinstance(obj, dict) else vars(obj).items()
    if keys is not None:
        items = [(k, v) for k, v in items if k in keys]
    return ("items", {k: v if isinstance(v, _PLAIN) or (
        isinstance(v, tuple) and all(isinstance(x, _PLAIN) for x in v)) else id(v)
        for k, v in list(items)})


def python_state(world: World) -> list[tuple[str, Any, Any, Any]]:
    """A snapshot of the Python values of the world: modules' attributes, optimizers' groups
    (except their parameter lists), the other objects, lists and dicts the names lead to
    (an object's attributes that code can read: ``World.object_keys``)."""
    found: list[tuple[str, Any, Any, Any]] = []
    for m in world.modules:
        found.append((f"an attribute of {type(m).__name__}", m, None, _state_of(m)))
    for opt in world.optimizers:
        for k, group in enumerate(opt.param_groups):
            where = f"{type(opt).__name__}.param_groups[{k}]"
            found.append((where, group, None, _state_of({key: v for key, v in group.items()
                                                         if key != "params"})))
        found.append((f"{type(opt).__name__}.param_groups", opt.param_groups, None,
                      _state_of(opt.param_groups)))
        if not reads_its_numbers(opt) and not type(opt)._STATE_KEYS:
            for p, entries in list(opt.state.items()):  # a step of the user's own
                found.append((f"{type(opt).__name__}.state[a parameter of shape {p.shape}]",
                              entries, None, _state_of(entries)))
    for obj in world.objects:
        if not any(obj is g for opt in world.optimizers for g in opt.param_groups):
            keys = world.object_keys.get(id(obj))
            found.append((f"an outside {type(obj).__name__}", obj, keys, _state_of(obj, keys)))
    return found


def python_changes(before: list[tuple[str, Any, Any, Any]]) -> str | None:
    """Where the world's Python values differ from the snapshot, or None."""
    for where, obj, keys, state in before:
        if isinstance(obj, dict) and "params" in obj:
            now = _state_of({key: v for key, v in obj.items() if key != "params"})
        else:
            now = _state_of(obj, keys)
        if now != state:
            if state[0] == "items":
                changed = [k for k in set(state[1]) | set(now[1])
                           if state[1].get(k, "?") != now[1].get(k, "?")]
                detail = ", ".join(f"{k!r}: {_show(state[1].get(k))} -> {_show(now[1].get(k))}"
                                   for k in sorted(changed, key=str)[:3])
                return f"{where} ({detail})"
            return f"{where} (its items)"
    return None


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, _PLAIN) or isinstance(value, tuple) else "an object"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


# ---------------------------------------------------------------------------------------------
# Reading values while tracing is refused
# ---------------------------------------------------------------------------------------------

_READERS = {
    "item": ".item() reads a value",
    "numpy": ".numpy() hands out the array",
    "tolist": ".tolist() reads the values",
    "__bool__": "bool(tensor) (an `if` or `while` on a tensor) branches on data",
    "__float__": "float(tensor) reads a value",
    "__int__": "int(tensor) reads a value",
    "__index__": "using a tensor as an index reads a value",
    "__repr__": "printing a tensor reads its values",
    "__format__": "formatting a tensor reads its values",
    "__array__": "converting a tensor to a numpy array reads its values",
}

_HOW = ("; the trace records ops, not values, so a replay could not repeat it. Return the "
        "tensor and read it after the call (loss = step(x, y); print(loss.item())), keep "
        "data-dependent branches outside the compiled function, or compute with tensor ops "
        "(tn.where instead of if)")


class _Tracing(threading.local):
    tracer: Tracer | None = None  # the tracer at work in this thread, if any


_tracing = _Tracing()


def active_tracer() -> Tracer | None:
    """The tracer recording in this thread (a compiled function called inside another's trace
    is just part of that trace)."""
    return _tracing.tracer


@contextlib.contextmanager
def tracing(tracer: Tracer) -> Iterator[None]:
    """Register ``tracer`` with this thread's engine and refuse value reads, for the block.
    Everything is restored whatever the block raises; other threads never see any of it."""
    previous = _tracing.tracer, value_reads.refuse, value_reads.constant
    _tracing.tracer, value_reads.refuse = tracer, tracer.refuse_read
    value_reads.constant = tracer.on_constant
    try:
        with observing(tracer):
            yield
    finally:
        _tracing.tracer, value_reads.refuse, value_reads.constant = previous
