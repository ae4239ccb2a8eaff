"""Guards: the check that says whether a traced program fits a call.

A program is only right for calls like the one it was traced on. Before tracing, ``Guard``
writes down everything the program depends on and generates a Python function that checks
it, as PyTorch's dynamo does (this one reads like a list of ``if`` lines; ``explain()`` prints
it):

- grad mode and ``TINYNET_NUMBA``;
- each argument: a tensor's shape, dtype, ``requires_grad``, layout and whether it has a
  ``.grad``; an array's shape, dtype and layout; a number or string by value; a list, tuple
  or dict item by item (the tensors inside are inputs too); anything else by identity;
- the aliasing pattern of the tensor arguments (``f(x, x)`` is not ``f(x, y)``);
- each outside tensor (parameters, buffers): the same array object (the program writes into
  it), its shape, ``requires_grad``, and its ``.grad`` (None, or its shape, dtype, layout);
- each module, and each other object, dict and list the names of the function (and of the
  user's helpers and methods it reaches: ``trace.World``) lead to: every
  attribute or item as the trace saw it (``training``, ``Dropout.p``, ``LayerNorm.eps``,
  ``cfg["l2"]`` by value; parameters, buffers, submodules and other objects by identity),
  and the class attributes read through them (``self.SCALE``: on its class);
- each optimizer: its state, entry by entry (the same dict and arrays: the generated code is
  bound to them, so ``load_state_dict`` means a new trace), and every parameter group's keys,
  parameter list, switches (``nesterov``, ``amsgrad``...) and the form of its update rule
  (``optimizer._form(group)``: ``weight_decay != 0``...); not its numbers (``lr``, momentum,
  betas...), which each update reads at every replay.

Straight-line code, because it runs at every call: for a small network a loop over these
objects would cost more than the replay itself.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd.engine import grad_mode
from tinynet.compile.trace import _tracing, reads_its_numbers
from tinynet.tensor import Tensor, world_stamp

_PLAIN = (bool, int, float, str, type(None))
MISS = object()  # what the fast path returns when it does not fit (nothing else returns it)


class Seen:
    """The world stamp at which an entry's full guard last passed (-1: never)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = -1


class Guard:
    """``check(args)``: True if the program traced on this call fits a later call."""

    def __init__(self, args: tuple, world: Any) -> None:
        self.left_names: dict[int, str] = {}  # id(outside tensor) -> its left .grad's name
        self.names: dict[str, Any] = {"Tensor": Tensor, "ndarray": np.ndarray,
                                      "grad_mode": grad_mode, "kernels": kernels}
        self.names.update(world_stamp=world_stamp, tracing_state=_tracing, MISS=MISS)
        # (copy, group, keys read) for fast_check
        self.snapshots: list[tuple[dict, dict, tuple]] = []
        numba = kernels.numba_enabled()
        lines = [
            "def check(args):",
            f"    if grad_mode.enabled is not {grad_mode.enabled} or "
            f"kernels.numba_enabled() is not {numba} or len(args) != "
            f"{len(args)}:",
            "        return False",
        ]
        # ``fast``: the conditions the world stamp cannot vouch for, in their cheapest form
        fast = [
            "def fast_check(args):",
            "    if (world_stamp.value != seen.value or tracing_state.tracer is not None",
            f"            or grad_mode.enabled is not {grad_mode.enabled}",
            "            or " + ("kernels._compiled is None" if numba else
                                "kernels.numba_enabled()"),
            f"            or len(args) != {len(args)}):",
            "        return False",
        ]
        fast += self._roots(world)
        outside = self._outside_aliasing(args, world)  # (i, condition): the same in both
        # an outside tensor passed in (``step(self.x)``): the fast check asks for that tensor
        # itself, and reads its array (the stamp vouches that it is still that tensor's)
        passed = {i for i, c in outside if c == f"args[{i}] is not outside_arg{i}"}
        for i, a in enumerate(args):
            lines += [f"    a = args[{i}]"] + self._argument(i, a)
            fast += [f"    a = args[{i}]"] + self._argument(i, a, fast=True,
                                                             passed=i in passed)
        lines += self._aliasing(args) + self._refuse_if(*(c for _, c in outside))
        fast += self._aliasing(args) + self._refuse_if(*(c for i, c in outside
                                                         if i not in passed))
        for i, t in enumerate(world.tensors):
            lines += self._outside(i, t)
            fast += self._outside(i, t, fast=True)
        for j, opt in enumerate(world.optimizers):
            lines += self._optimizer(j, opt)
            fast += self._optimizer(j, opt, fast=True)
        for j, m in enumerate(world.modules):
            lines += self._attributes(f"module{j}", vars(m), skip_registries=True)
        for j, obj in enumerate(world.objects):  # plain Python: no stamp sees these change
            if isinstance(obj, list):
                found = self._attributes(f"outside_list{j}", dict(enumerate(obj)), items=obj)
            elif isinstance(obj, dict):
                found = self._attributes(f"outside{j}", obj)
            else:  # the attributes code can read (World.object_keys)
                found = self._attributes(f"outside{j}", vars(obj),
                                         keys=world.object_keys.get(id(obj)))
            lines += found
            fast += found
        for n, (klass, key, value) in enumerate(world.class_values):  # no stamp sees these
            found = self._attributes(f"class_values{n}", {key: value}, keys={key},
                                     items=vars(klass))
            lines += found
            fast += found
        self.lines = lines
        self.fast_lines = fast
        self.seen = Seen()  # the world stamp at the last full check that passed
        self.names["seen"] = self.seen
        self.namespaces = [self.names]  # the generated functions' globals (``moved``)
        self.source = self.fast_source = ""
        self.check: Any = None
        self.fast_check: Any = None
        self.left_grads: dict[int, Any] = {}
        self.unused: set[int] = set()

    def finish(self, unused: set[int] = frozenset(), left_grads: dict[int, Any] | None = None
               ) -> Guard:
        """Generate ``check`` and ``fast_check`` once the trace is done. ``unused``: ids of
        outside tensors the trace never read nor wrote (``self.loss`` kept from the last call):
        their conditions are dropped, so replacing them does not retrace. ``left_grads``: id of
        an outside tensor -> the ``.grad`` tensor every replay leaves on it (the same object
        each time); ``fast_check`` checks such a ``.grad`` by identity.

        ``check(args)`` is the full guard. ``fast_check(args)`` holds while the world stamp
        (``tensor.WorldStamp``) has not moved since ``check`` last passed (``passed()``) and the
        conditions no stamp covers still hold: the arguments, ``.grad`` attributes, the
        names' targets, optimizer groups and state, plain dicts, lists and objects."""
        self.left_grads = left_grads or {}
        self.unused = set(unused)
        # the .grad arrays replays leave are outside arrays too (``_outside_aliasing``)
        grads = [g._data for g in self.left_grads.values() if isinstance(g, Tensor)]
        self.names["outside_arrays_held"] += grads
        self.names["outside_arrays"].update(id(g) for g in grads)
        self.source = self._generate(self.lines, unused)
        exec(compile(self.source, "<tn.compile guard>", "exec"), self.names)
        self.check = self.names["check"]
        self.fast_source = self._generate(self.fast_lines, unused)
        exec(compile(self.fast_source, "<tn.compile fast guard>", "exec"), self.names)
        self.fast_check = self.names["fast_check"]
        return self

    def fast_call(self, holder: Any) -> Any:
        """``fast_call(args)``: ``fast_check``'s conditions, then ``holder.run(args)`` (the
        replay) in the same function, or ``MISS`` if one fails: the whole per-call path of a
        call right after a checked one is this function and the generated driver."""
        source = self._generate(self.fast_lines, self.unused, done="holder.run(args)")
        source = source.replace("def fast_check(", "def fast_call(").replace(
            "return False", "return MISS")
        names = dict(self.names, holder=holder)
        exec(compile(source, "<tn.compile fast call>", "exec"), names)
        self.namespaces.append(names)
        return names["fast_call"]

    def moved(self, owner: Any, grad: Tensor) -> None:
        """The replay leaves ``grad`` on ``owner`` from now on (``codegen``'s ``move``: the user
        kept the last one): the fast check compares with it, the aliasing checks know its
        array, and the one the user keeps is theirs alone."""
        old = self.left_grads.get(id(owner))
        if old is None:
            return  # an argument's .grad: no check names it
        self.left_grads[id(owner)] = grad
        held, ids = self.names["outside_arrays_held"], self.names["outside_arrays"]
        held[:] = [a for a in held if a is not old._data] + [grad._data]
        ids.discard(id(old._data))
        ids.add(id(grad._data))
        name = self.left_names.get(id(owner))
        for names in self.namespaces if name is not None else ():
            names[name] = grad

    def vouches_for(self, read: Any) -> bool:
        """True if every number ``read`` (an update's ``optim.optimizer.Numbers``) gives stays
        as it is while ``fast_check`` passes: tinynet's own optimizer, whose ``_numbers`` reads
        the group alone, a group the fast check compares in full against the copy ``passed``
        refreshes, and no step counts (Adam's advance at every step). The driver then reads
        those numbers once per full check (``codegen``'s ``refresh``), not at every call."""
        opt, group, rule = (getattr(read, name, None) for name in ("optimizer", "group", "rule"))
        numbers = getattr(type(opt), "_numbers", None)
        return (rule is not None and not rule.counts and reads_its_numbers(opt)
                and getattr(numbers, "__module__", "").startswith("tinynet.optim.")
                and any(g is group for _, g, _ in self.snapshots))

    def passed(self, stamp: int) -> None:
        """``check`` passed with the world stamp at ``stamp`` (read before the check)."""
        for snapshot, group, read in self.snapshots:  # not guarded: read at every replay
            for key in read:
                if key in group:
                    snapshot[key] = group[key]
        self.seen.value = stamp

    def _generate(self, source: list[Any], unused: set[int], done: str = "True") -> str:
        """The function: its first line, then each condition inside one ``try`` (an item
        looked up, ``d["lr"]``, costs half of ``d.get("lr")``; a missing one fails the guard
        as a KeyError or IndexError), then ``return done`` outside it (an error in the replay
        is the caller's)."""
        lines: list[str] = [source[0], "  try:"]
        for line in source[1:]:
            if isinstance(line, str):
                lines.append(line)
                continue
            kept = []
            for c in line:
                if isinstance(c, str):
                    kept.append(c)
                elif id(c[0]) not in unused:
                    kept.append(c[1](self.left_grads.get(id(c[0]))) if callable(c[1]) else c[1])
            if kept:
                joined = "\n            or ".join(kept)
                lines += [f"    if ({joined}):", "        return False"]
        lines += ["  except (KeyError, IndexError):", "    return False", f"  return {done}"]
        return "\n".join(lines) + "\n"

    def _roots(self, world: Any) -> list[Any]:
        """The names' targets (``World.roots``): a rebound global or closure variable."""
        conditions: list[str] = []
        checked: set[tuple[int, str]] = set()  # (globals, name): a name read twice
        for n, (resolve, obj) in enumerate(world.roots):
            o = self._bind(f"root{n}", obj)
            defaults, closure = resolve.__defaults__, resolve.__closure__
            if defaults and closure and isinstance(closure[0].cell_contents, dict):
                names = self._bind(f"root_globals{n}", closure[0].cell_contents)
                if (id(closure[0].cell_contents), defaults[0]) not in checked:
                    checked.add((id(closure[0].cell_contents), defaults[0]))
                    conditions.append(f"{names}[{defaults[0]!r}] is not {o}")
            elif defaults and isinstance(defaults[0], types.CellType):
                cell = self._bind(f"root_cell{n}", defaults[0])
                conditions.append(f"{cell}.cell_contents is not {o}")
            elif defaults and closure:  # a resolver of another kind: ask it
                conditions.append(f"{self._bind(f'root_resolve{n}', resolve)}() is not {o}")
            # else: a constant (the Module compiled, the method's owner, a default value)
        return self._refuse_if(*conditions) if conditions else []

    def _bind(self, name: str, obj: Any) -> str:
        """Make ``obj`` a global of the generated function (held: identity stays valid)."""
        self.names[name] = obj
        return name

    @staticmethod
    def _refuse_if(*conditions: Any) -> list[Any]:
        """``if a or b ...: return False``, one condition per line (made by ``finish``); a
        condition ``(tensor, text)`` is about that tensor and dropped if the trace never used
        it."""
        return [list(conditions)]

    def _argument(self, i: int, a: Any, fast: bool = False, passed: bool = False
                  ) -> list[str]:
        if isinstance(a, Tensor) and fast and type(a) is Tensor:
            d = a._data
            dtype = self._bind(f"dtype_arg{i}", d.dtype)
            layout = (f"d.strides != {d.strides}" if d.flags.c_contiguous else
                      "d.flags.c_contiguous is not False")  # strides: cheaper than flags
            grad = "a.grad is not None" if a.grad is None else "a.grad is None"
            if passed:  # that outside tensor: its array and requires_grad are the stamp's
                return [f"    d = outside_array_arg{i}", *self._refuse_if(
                    f"a is not outside_arg{i}", f"d.shape != {d.shape}",
                    f"d.dtype is not {dtype}", layout, grad)]
            return [
                "    if type(a) is not Tensor:", "        return False", "    d = a._data",
                *self._refuse_if(f"d.shape != {d.shape}", f"d.dtype is not {dtype}", layout,
                                 f"a._requires_grad is not {a._requires_grad}", grad),
            ]
        if isinstance(a, Tensor):
            d = a._data
            return [
                "    if not isinstance(a, Tensor):", "        return False", "    d = a._data",
                *self._refuse_if(f"d.shape != {d.shape}", f"d.dtype.char != {d.dtype.char!r}",
                                 f"a._requires_grad is not {a._requires_grad}",
                                 f"d.flags.c_contiguous is not {bool(d.flags.c_contiguous)}",
                                 "a.grad is not None" if a.grad is None else "a.grad is None",
                                 self._hooks("a", a, f"arg{i}")),
            ]
        return self._refuse_if(*self._item("a", a, f"arg{i}"))

    def _item(self, expr: str, a: Any, name: str) -> list[str]:
        """Conditions that fail when ``expr`` no longer looks like ``a``: arrays by shape,
        dtype and layout; numbers and strings by value; lists, tuples and dicts item by item
        (tensors inside them are the program's inputs); anything else by identity."""
        if isinstance(a, Tensor):
            d = a._data
            return [f"type({expr}) is not Tensor", f"{expr}._data.shape != {d.shape}",
                    f"{expr}._data.dtype.char != {d.dtype.char!r}",
                    f"{expr}._requires_grad is not {a._requires_grad}",
                    f"{expr}._data.flags.c_contiguous is not {bool(d.flags.c_contiguous)}"]
        if isinstance(a, np.ndarray):
            return [f"type({expr}) is not ndarray", f"{expr}.shape != {a.shape}",
                    f"{expr}.dtype.char != {a.dtype.char!r}",
                    f"{expr}.flags.c_contiguous is not {bool(a.flags.c_contiguous)}"]
        if a is None or isinstance(a, bool | int | float | str):
            value = self._bind(f"value_{name}", a)
            return [f"type({expr}) is not type({value})", f"{expr} is not {value} and {expr} "
                    f"!= {value}"]
        if type(a) in (list, tuple) and len(a) <= 64:
            kind = self._bind(f"type_{name}", type(a))
            found = [f"type({expr}) is not {kind}", f"len({expr}) != {len(a)}"]
            for k, item in enumerate(a):
                found += self._item(f"{expr}[{k}]", item, f"{name}_{k}")
            return found
        if type(a) is dict and len(a) <= 64 and all(isinstance(k, str | int) for k in a):
            found = [f"type({expr}) is not dict", f"tuple({expr}) != {tuple(a)!r}"]
            for k, item in a.items():
                found += self._item(f"{expr}[{k!r}]", item, f"{name}_{len(found)}")
            return found
        return [f"{expr} is not {self._bind(f'object_{name}', a)}"]

    @staticmethod
    def _aliasing(args: tuple) -> list[str]:
        """The same tensor passed twice is not two tensors: the pattern must repeat."""
        arrays = [i for i, a in enumerate(args) if isinstance(a, Tensor | np.ndarray)]
        conditions = [f"(args[{i}] is args[{j}]) is not {args[i] is args[j]}"
                      for n, i in enumerate(arrays) for j in arrays[n + 1:]]
        return Guard._refuse_if(*conditions) if conditions else []

    def _outside_aliasing(self, args: tuple, world: Any) -> list[tuple[int, str]]:
        """An argument whose array is an outside array (``step(self.x)``, a parameter passed
        in) was one value with it in the trace: a later call must pass that same tensor (and
        array), or one that is none of the outside arrays (``step(batch)``); else the program
        would read one for the other (the trace's merged value) or miss a write to it."""
        arrays = world.arrays()
        self._bind("outside_arrays_held", arrays)  # (held here: the ids stay theirs)
        self._bind("outside_arrays", {id(a) for a in arrays})
        conditions = []
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                expr, d = f"args[{i}]._data", a._data
            elif isinstance(a, np.ndarray):
                expr, d = f"args[{i}]", a
            else:
                continue
            same = next((array for array in arrays if array is d), None)
            if same is None:
                conditions.append((i, f"id({expr}) in outside_arrays"))
                continue
            conditions.append((i, f"{expr} is not "
                                  f"{self._bind(f'outside_array_arg{i}', same)}"))
            owner = next((t for t in world.tensors if t is a), None)
            if owner is not None:  # the outside tensor itself: its conditions are these
                conditions.append((i, f"args[{i}] is not "
                                      f"{self._bind(f'outside_arg{i}', owner)}"))
        return conditions

    def _attributes(self, name: str, attrs: dict, skip_registries: bool = False,
                    items: list | None = None, keys: set[str] | None = None) -> list[str]:
        """A module's or object's attributes, a dict's or a list's items, as the trace read
        them: numbers, strings, flags (``training``, ``Dropout.p``, ``cfg["l2"]``) by value;
        tensors, modules and other objects by identity (a replaced weight is a new program)."""
        d = self._bind(name, items if items is not None else attrs)
        get = lambda key: f"{d}[{key!r}]"  # noqa: E731 - (a missing key: a KeyError, a miss)
        if keys is None:
            conditions = [f"len({d}) != {len(attrs)}"]
        else:  # only these attributes can be read: each as it was, or still absent (one
            # set operation in C, not a line per name: the names the code uses are many)
            absent = frozenset(keys - set(attrs))
            conditions = [f"not {d}.keys().isdisjoint({self._bind(f'{name}_absent', absent)})"
                          ] if absent else []
            attrs = {key: value for key, value in attrs.items() if key in keys}
        for key, value in list(attrs.items()):
            if skip_registries and key.startswith("_") and isinstance(value, dict):
                continue  # a module's registries: their entries are attributes too
            if isinstance(value, bool | type(None)):
                conditions.append(f"{get(key)} is not {value}")
            elif isinstance(value, int | float | str) or (isinstance(value, tuple) and all(
                    isinstance(v, bool | int | float | str | type(None)) for v in value)):
                v = self._bind(f"{name}_{len(conditions)}", value)
                conditions.append(f"type({get(key)}) is not type({v}) or {get(key)} != {v}")
            else:
                v = self._bind(f"{name}_{len(conditions)}", value)
                condition = f"{get(key)} is not {v}"
                conditions.append((value, condition) if isinstance(value, Tensor) else condition)
        return self._refuse_if(*conditions)

    def _outside(self, i: int, t: Tensor, fast: bool = False) -> list[str]:
        """An outside tensor. The stamp covers ``_data`` and ``requires_grad`` (both change
        through setters that bump it); ``.grad`` is a plain attribute and an array's shape
        can be set in place, so the fast check keeps those."""
        tensor, data = self._bind(f"t{i}", t), self._bind(f"data{i}", t._data)
        g = t.grad
        if g is None:
            grad = [f"{tensor}.grad is not None"]
        elif isinstance(g, Tensor):
            grad = [f"not isinstance({tensor}.grad, Tensor)",
                    f"{tensor}.grad._data.shape != {g._data.shape}",
                    f"{tensor}.grad._data.dtype.char != {g._data.dtype.char!r}",
                    f"{tensor}.grad._data.flags.c_contiguous is not "
                    f"{bool(g._data.flags.c_contiguous)}"]
            if fast:  # the .grad each replay leaves, when it fits this guard: by identity
                full = " or ".join(grad)

                def by_identity(left: Any, full: str = full, g: Any = g) -> str:
                    if not isinstance(left, Tensor) or left._data.shape != g._data.shape or \
                            left._data.dtype != g._data.dtype or not (
                            left._data.flags.c_contiguous or not g._data.flags.c_contiguous):
                        return full
                    self.left_names[id(t)] = f"left_grad{i}"
                    return f"{tensor}.grad is not {self._bind(f'left_grad{i}', left)}"

                grad = [by_identity]
        else:
            grad = [f"type({tensor}.grad) is not {self._bind(f'grad_type{i}', type(g))}"]
        if fast:
            return self._refuse_if(*((t, c) for c in (f"{data}.shape != {t.shape}", *grad)))
        return self._refuse_if(*((t, c) for c in (
            f"{tensor}._data is not {data}", f"{data}.shape != {t.shape}",
            f"{tensor}._requires_grad is not {t._requires_grad}", *grad,
            self._hooks(tensor, t, f"t{i}"))))

    def _hooks(self, expr: str, t: Tensor, name: str) -> str:
        """A tensor's gradient hooks (``register_hook``), as the trace ran them: the ops they
        did are in the program, a hook added or removed since is not (in the full check: a
        hook registered or removed moves the world stamp)."""
        if not t._hooks:
            return f"{expr}._hooks"  # (None, or a list all of whose hooks were removed)
        return f"({expr}._hooks or []) != {self._bind(f'hooks_{name}', list(t._hooks))}"

    def _optimizer(self, j: int, opt: Any, fast: bool = False) -> list[str]:
        """Plain lists and dicts: checked in full by the fast check too (no stamp sees them),
        but against the group dicts themselves (the program reads ``lr`` from those)."""
        o = self._bind(f"opt{j}", opt)
        reads = reads_its_numbers(opt)  # else a step of the user's own: numbers by value
        lines = self._refuse_if(f"len({o}.param_groups) != {len(opt.param_groups)}",
                                f"len({o}.state) != {len(opt.state)}")
        # the state the program will be bound to: each parameter's dict and its arrays
        for n, (param, state) in enumerate(opt.state.items()):
            p, st = self._bind(f"state_param{j}_{n}", param), self._bind(f"state{j}_{n}", state)
            arrays = [f"{st}[{key!r}] is not {self._bind(f'state{j}_{n}_{key}_t', v)}"
                      if fast
                      else f"{st}[{key!r}]._data is not "
                      f"{self._bind(f'state{j}_{n}_{key}', v._data)}"
                      for key, v in state.items() if isinstance(v, Tensor)]
            lines += self._refuse_if(f"{o}.state.get({p}) is not {st}", *arrays)
        for k, group in enumerate(opt.param_groups):
            g = self._bind(f"group{j}_{k}", group)
            if fast and _plain_group(group):
                # one dict comparison (C, ``is`` before ``==`` per value) against a copy whose
                # numbers the updates read (lr, momentum...) ``passed`` refreshes: the same
                # keys, parameter list and hyperparameters
                copy = dict(group)
                snapshot = self._bind(f"group_copy{j}_{k}", copy)
                read = tuple(key for key, value in group.items()
                             if reads and key in opt.defaults and _is_number(value))
                self.snapshots.append((copy, group, read))
                params = self._bind(f"params{j}_{k}", group["params"])
                lines += self._refuse_if(
                    f"{o}.param_groups[{k}] is not {g}", f"{g}['params'] is not {params}",
                    f"{g} != {snapshot}", f"len({params}) != {len(group['params'])}",
                    *(f"{params}[{n}] is not {self._bind(f'param{j}_{k}_{n}', p)}"
                      for n, p in enumerate(group["params"])))
                continue
            form = self._bind(f"form{j}_{k}", opt._form(group))
            if fast:  # the same dict, with as many keys, each holding what it held
                lines.append(f"    group = {g}")
                conditions = [f"{o}.param_groups[{k}] is not {g}", f"len({g}) != {len(group)}",
                              f"{o}._form(group) != {form}"]
            else:
                lines.append(f"    group = {o}.param_groups[{k}]")
                conditions = [f"group is not {g}",  # the replay reads its numbers from this dict
                              f"tuple(group) != {tuple(group)!r}",  # first: the keys exist
                              f"{o}._form(group) != {form}"]
            for key, value in group.items():
                if reads and key in opt.defaults and _is_number(value):  # its own numbers:
                    continue  # read by its updates at every replay
                if key == "params":
                    params = self._bind(f"params{j}_{k}", value)
                    conditions.append(f"group['params'] is not {params}")
                    conditions.append(f"len({params}) != {len(value)}")
                    conditions += [f"{params}[{n}] is not {self._bind(f'param{j}_{k}_{n}', p)}"
                                   for n, p in enumerate(value)]
                elif fast:
                    h = self._bind(f"hyper{j}_{k}_{len(conditions)}", value)
                    conditions.append(f"group.get({key!r}, MISS) is not {h} and "
                                      f"group.get({key!r}, MISS) != {h}")
                else:
                    h = self._bind(f"hyper{j}_{k}_{len(conditions)}", value)
                    conditions.append(f"group[{key!r}] is not {h} and group[{key!r}] != {h}")
            lines += self._refuse_if(*conditions)
        return lines


def _plain_group(group: dict) -> bool:
    """A group the fast check compares as one dict against a copy: plain numbers, strings and
    switches (or tuples of them, as Adam's betas) beside a list of parameters."""
    return isinstance(group.get("params"), list) and all(
        isinstance(v, _PLAIN) or (isinstance(v, tuple) and all(isinstance(x, _PLAIN) for x in v))
        for key, v in group.items() if key != "params")


def _is_number(value: Any) -> bool:
    """A number (or a tuple of numbers, as Adam's betas), not a switch such as nesterov."""
    if isinstance(value, tuple | list):
        return bool(value) and all(_is_number(v) for v in value)
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)
