"""The program a trace produces: values (arrays) and the steps that read and write them.

A ``Value`` is one array the step function touches. Where it comes from is its ``kind``:

- ``input``: the array of positional argument ``source`` (bound anew at every call);
- ``param``: the ``.data`` of an outside tensor (a parameter): the same array at every call,
  checked by the guards, written in place by the optimizer's ``update`` ops;
- ``grad``: the ``.grad`` an outside tensor had when the call began (read at every call);
- ``state``: an optimizer's state array (a momentum buffer, Adam's moments);
- ``const``: an array made during the trace that depends on no input (the ``ones`` that seeds
  ``backward()``, a ``tn.ones`` in the function): captured once;
- ``temp``: made by a step.

A ``Step`` is one of:

- ``op``: one ``Function.apply`` (a forward op, an op the engine ran for gradient plumbing:
  accumulation ``+``, ``clone``, undoing broadcasting, or an optimizer's ``update`` of one
  parameter, whose outputs are the parameter and state arrays it writes in place);
- ``backward``: the engine calling an op's backward rule (``fast`` if it took the array path);
  ``node`` is the index of the ``op`` step that made the graph node.

This is the "trace" and the input of everything after it: fusion (``fuse.py``), buffer
planning (``plan.py``), code generation (``codegen.py``) and the interpreter (``interpret.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Value:
    """One array of the program: ``v<index>`` in printed programs."""

    index: int
    kind: str  # input / param / grad / state / const / temp
    shape: tuple[int, ...]
    dtype: np.dtype
    source: Any = None  # input position, the outside Tensor, (optimizer, param, key), the const
    producer: int | None = None  # index of the step that writes it (temps)
    contiguous: bool = True  # C-contiguous when traced (a transpose's result is not)

    @property
    def name(self) -> str:
        return f"v{self.index}"

    def describe(self) -> str:
        where = {
            "input": lambda: f"argument {self.source}" if not isinstance(self.source, tuple)
            else f"argument item {list(self.source[1:])}" if self.source[0] == "item"
            else f"argument {self.source[0]} as {self.source[1]}",
            "param": lambda: "outside tensor .data",
            "grad": lambda: "outside tensor .grad at call start",
            "state": lambda: f"optimizer state {self.source[2]!r}",
            "const": lambda: "constant captured at trace",
            "temp": lambda: f"made by step {self.producer}",
        }[self.kind]()
        shape = "x".join(map(str, self.shape)) or "scalar"
        return f"{self.name}: {self.dtype} {shape:<12} {self.kind:<6} ({where})"


@dataclass
class Ref:
    """An argument of a step that is a program value (the rest are Python literals)."""

    value: int

    def __repr__(self) -> str:
        return f"v{self.value}"


@dataclass
class Returned:
    """A returned tensor that is not a plain program value: an outside tensor (returned as
    itself), a constant (returned as a fresh copy), or a value that eager mode returns with a
    graph (``value``: a fresh copy whose ``backward()`` raises CompileError)."""

    tensor: Any = None
    constant: Any = None
    value: int | None = None
    name: str = "fn"


@dataclass
class Step:
    """One recorded call. ``inputs``/``outputs`` hold Refs (or literals / None)."""

    index: int
    kind: str  # "op", "backward"
    name: str  # op name (``linear``)
    inputs: list[Any]
    outputs: list[Any]
    options: dict[str, Any] = field(default_factory=dict)
    cls: Any = None  # the Function subclass (op / backward)
    node: int | None = None  # backward: the op step whose graph node it differentiates
    fast: bool = False  # backward: the engine took the array path (fast_backward)
    needs_input_grad: tuple[bool, ...] = ()  # op: which inputs required grad
    differentiated: bool = False  # op: a later backward step uses this op's node
    line: str = ""  # where in the user's code the trace saw it
    bumps: list[Any] = field(default_factory=list)  # op: outside tensors it writes in place

    def describe(self) -> str:
        ins = ", ".join(repr(x) if isinstance(x, Ref) else _short(x) for x in self.inputs)
        outs = ", ".join("_" if x is None else repr(x) for x in self.outputs)
        opts = "".join(f", {k}={_short(v)}" for k, v in self.options.items())
        if self.kind == "backward":
            head = f"{self.name}.{'fast_backward' if self.fast else 'backward'}"
            return f"{outs} = {head}(node=s{self.node}, grad={ins})"
        return f"{outs} = {self.name}({ins}{opts})"


def _short(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"array{list(x.shape)}"
    if isinstance(x, tuple | list):
        return "(" + ", ".join(_short(v) for v in x) + ")"
    if isinstance(x, Ref):
        return repr(x)
    return repr(x)


@dataclass
class Program:
    """A traced step function: values, steps, what it returns and leaves behind."""

    values: list[Value]
    steps: list[Step]
    result: Any  # the returned structure with Refs in place of tensors
    final_grads: list[tuple[Any, Any]]  # (outside tensor, Ref | None | "keep") after the call
    updated: list[Any]  # outside tensors whose version counter each update bumps (in order)
    name: str = "fn"

    def describe(self) -> str:
        lines = [f"values ({len(self.values)}):"]
        lines += ["  " + v.describe() for v in self.values]
        lines.append(f"steps ({len(self.steps)}):")
        lines += [f"  s{s.index:<3} {s.describe()}" for s in self.steps]
        return "\n".join(lines)
