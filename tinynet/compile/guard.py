"""Guards: the check that says whether a traced program fits a call.

A program is only right for calls like the one it was traced on. Before tracing, ``Guard``
writes down everything the program depends on and generates a Python function that checks
it, as PyTorch's dynamo does (this one reads like a list of ``if`` lines; ``explain()`` prints
it):

- grad mode and ``TINYNET_NUMBA``;
- each argument: a tensor's shape, dtype, ``requires_grad``, layout and whether it has a
  ``.grad``; an array's shape, dtype and layout; a number or string by value; anything else
  by identity;
- each outside tensor (parameters, buffers): the same array object (the program writes into
  it), its shape, ``requires_grad``, and its ``.grad`` (None, or its shape and dtype);
- each optimizer: its state, entry by entry (the same dict and arrays: the generated code is
  bound to them, so ``load_state_dict`` means a new trace), and every parameter group's keys,
  parameter list and hyperparameters except ``lr``, which the replay reads at every call.

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
        lines = [
            "def check(args):",
            f"    if grad_mode.enabled is not {grad_mode.enabled} or "
            f"kernels.numba_enabled() is not {kernels.numba_enabled()} or len(args) != "
            f"{len(args)}:",
            "        return False",
        ]
        for i, a in enumerate(args):
            lines += [f"    a = args[{i}]"] + self._argument(i, a)
        for i, t in enumerate(world.tensors):
            lines += self._outside(i, t)
        for j, opt in enumerate(world.optimizers):
            lines += self._optimizer(j, opt)
        lines.append("    return True")
        self.source = "\n".join(lines) + "\n"
        exec(compile(self.source, "<tn.compile guard>", "exec"), self.names)
        self.check = self.names["check"]

    def _bind(self, name: str, obj: Any) -> str:
        """Make ``obj`` a global of the generated function (held: identity stays valid)."""
        self.names[name] = obj
        return name

    @staticmethod
    def _refuse_if(*conditions: str) -> list[str]:
        """``if a or b ...: return False``, one condition per line."""
        joined = "\n            or ".join(conditions)
        return [f"    if ({joined}):", "        return False"]

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
        if isinstance(a, np.ndarray):
            return self._refuse_if("type(a) is not ndarray", f"a.shape != {a.shape}",
                                   f"a.dtype.char != {a.dtype.char!r}",
                                   f"a.flags.c_contiguous is not {bool(a.flags.c_contiguous)}")
        if a is None or isinstance(a, bool | int | float | str):
            value = self._bind(f"value{i}", a)
            return self._refuse_if(f"type(a) is not type({value})",
                                   f"a is not {value} and a != {value}")
        return self._refuse_if(f"a is not {self._bind(f'object{i}', a)}")

    def _outside(self, i: int, t: Tensor) -> list[str]:
        tensor, data = self._bind(f"t{i}", t), self._bind(f"data{i}", t._data)
        g = t.grad
        if g is None:
            grad = [f"{tensor}.grad is not None"]
        elif isinstance(g, Tensor):
            grad = [f"not isinstance({tensor}.grad, Tensor)",
                    f"{tensor}.grad._data.shape != {g._data.shape}",
                    f"{tensor}.grad._data.dtype.char != {g._data.dtype.char!r}"]
        else:
            grad = [f"type({tensor}.grad) is not {self._bind(f'grad_type{i}', type(g))}"]
        return self._refuse_if(f"{tensor}._data is not {data}", f"{data}.shape != {t.shape}",
                               f"{tensor}._requires_grad is not {t._requires_grad}", *grad)

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
            for key, value in group.items():
                if key == "lr":
                    continue
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
