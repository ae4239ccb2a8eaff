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
- each module, and each other object, dict and list the function's names lead to: every
  attribute or item as the trace saw it (``training``, ``Dropout.p``, ``LayerNorm.eps``,
  ``cfg["l2"]`` by value; parameters, buffers, submodules and other objects by identity);
- each optimizer: its state, entry by entry (the same dict and arrays: the generated code is
  bound to them, so ``load_state_dict`` means a new trace), and every parameter group's keys,
  parameter list, switches (``nesterov``, ``amsgrad``...) and the form of its update rule
  (``optimizer._form(group)``: ``weight_decay != 0``...); not its numbers (``lr``, momentum,
  betas...), which each update reads at every replay.

Straight-line code, because it runs at every call: for a small network a loop over these
objects would cost more than the replay itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.autograd.engine import grad_mode
from tinynet.tensor import Tensor


class Guard:
    """``check(args)``: True if the program traced on this call fits a later call."""

    def __init__(self, args: tuple, world: Any) -> None:
        self.names: dict[str, Any] = {"Tensor": Tensor, "ndarray": np.ndarray,
                                      "grad_mode": grad_mode, "kernels": kernels}
        self.blocks: list[Any] = []  # lines, and refusal blocks (see ``finish``)
        lines = [
            "def check(args):",
            f"    if grad_mode.enabled is not {grad_mode.enabled} or "
            f"kernels.numba_enabled() is not {kernels.numba_enabled()} or len(args) != "
            f"{len(args)}:",
            "        return False",
        ]
        for i, a in enumerate(args):
            lines += [f"    a = args[{i}]"] + self._argument(i, a)
        lines += self._aliasing(args)
        for i, t in enumerate(world.tensors):
            lines += self._outside(i, t)
        for j, opt in enumerate(world.optimizers):
            lines += self._optimizer(j, opt)
        for j, m in enumerate(world.modules):
            lines += self._attributes(f"module{j}", vars(m), skip_registries=True)
        for j, obj in enumerate(world.objects):
            if isinstance(obj, list):
                lines += self._attributes(f"outside_list{j}", dict(enumerate(obj)), items=obj)
            elif isinstance(obj, dict):
                lines += self._attributes(f"outside{j}", obj)
            else:  # the attributes code can read (World.object_keys)
                lines += self._attributes(f"outside{j}", vars(obj),
                                          keys=world.object_keys.get(id(obj)))
        self.lines = lines
        self.source = ""
        self.check: Any = None

    def finish(self, unused: set[int] = frozenset()) -> Guard:
        """Generate ``check`` once the trace is done. ``unused``: ids of outside tensors the
        trace never read nor wrote (``self.loss`` kept from the last call): their conditions
        are dropped, so replacing them does not retrace."""
        lines: list[str] = []
        for line in self.lines:
            if isinstance(line, str):
                lines.append(line)
                continue
            kept = [c if isinstance(c, str) else c[1] for c in line
                    if isinstance(c, str) or id(c[0]) not in unused]
            if kept:
                joined = "\n            or ".join(kept)
                lines += [f"    if ({joined}):", "        return False"]
        lines.append("    return True")
        self.source = "\n".join(lines) + "\n"
        exec(compile(self.source, "<tn.compile guard>", "exec"), self.names)
        self.check = self.names["check"]
        return self

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

    def _argument(self, i: int, a: Any) -> list[str]:
        if isinstance(a, Tensor):
            d = a._data
            return [
                "    if not isinstance(a, Tensor):", "        return False", "    d = a._data",
                *self._refuse_if(f"d.shape != {d.shape}", f"d.dtype.char != {d.dtype.char!r}",
                                 f"a._requires_grad is not {a._requires_grad}",
                                 f"d.flags.c_contiguous is not {bool(d.flags.c_contiguous)}",
                                 "a.grad is not None" if a.grad is None else "a.grad is None"),
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

    def _attributes(self, name: str, attrs: dict, skip_registries: bool = False,
                    items: list | None = None, keys: set[str] | None = None) -> list[str]:
        """A module's or object's attributes, a dict's or a list's items, as the trace read
        them: numbers, strings, flags (``training``, ``Dropout.p``, ``cfg["l2"]``) by value;
        tensors, modules and other objects by identity (a replaced weight is a new program)."""
        d = self._bind(name, items if items is not None else attrs)
        get = (lambda key: f"{d}[{key!r}]") if items is not None else (
            lambda key: f"{d}.get({key!r})")
        if keys is None:
            conditions = [f"len({d}) != {len(attrs)}"]
        else:  # only these attributes can be read: each as it was, or still absent
            conditions = [f"{key!r} in {d}" for key in sorted(keys - set(attrs))]
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

    def _outside(self, i: int, t: Tensor) -> list[str]:
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
        else:
            grad = [f"type({tensor}.grad) is not {self._bind(f'grad_type{i}', type(g))}"]
        return self._refuse_if(*((t, c) for c in (
            f"{tensor}._data is not {data}", f"{data}.shape != {t.shape}",
            f"{tensor}._requires_grad is not {t._requires_grad}", *grad)))

    def _optimizer(self, j: int, opt: Any) -> list[str]:
        o = self._bind(f"opt{j}", opt)
        lines = self._refuse_if(f"len({o}.param_groups) != {len(opt.param_groups)}",
                                f"len({o}.state) != {len(opt.state)}")
        # the state the program will be bound to: each parameter's dict and its arrays
        for n, (param, state) in enumerate(opt.state.items()):
            p, st = self._bind(f"state_param{j}_{n}", param), self._bind(f"state{j}_{n}", state)
            arrays = [f"{st}[{key!r}]._data is not {self._bind(f'state{j}_{n}_{key}', v._data)}"
                      for key, v in state.items() if isinstance(v, Tensor)]
            lines += self._refuse_if(f"{o}.state.get({p}) is not {st}", *arrays)
        for k, group in enumerate(opt.param_groups):
            lines.append(f"    group = {o}.param_groups[{k}]")
            conditions = [f"tuple(group) != {tuple(group)!r}"]  # first: the keys below exist
            form = self._bind(f"form{j}_{k}", opt._form(group))
            conditions.append(f"{o}._form(group) != {form}")
            for key, value in group.items():
                if key in opt.defaults and _is_number(value):  # the optimizer's own numbers:
                    continue  # read by its updates at every replay
                if key == "params":
                    params = self._bind(f"params{j}_{k}", value)
                    conditions.append(f"group['params'] is not {params}")
                    conditions.append(f"len({params}) != {len(value)}")
                    conditions += [f"{params}[{n}] is not {self._bind(f'param{j}_{k}_{n}', p)}"
                                   for n, p in enumerate(value)]
                else:
                    h = self._bind(f"hyper{j}_{k}_{len(conditions)}", value)
                    conditions.append(f"group[{key!r}] is not {h} and group[{key!r}] != {h}")
            lines += self._refuse_if(*conditions)
        return lines


def _is_number(value: Any) -> bool:
    """A number (or a tuple of numbers, as Adam's betas), not a switch such as nesterov."""
    if isinstance(value, tuple | list):
        return bool(value) and all(_is_number(v) for v in value)
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)
