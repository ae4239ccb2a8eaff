"""In-place update rules: an optimizer's step for one parameter, written once, per element.

An optimizer (``tinynet/optim``) states its rule as a ``Rule``: the arrays it reads (the
parameter, its gradient, its state), the ones it writes back, the numbers it takes, and the
statements for one element, in Python syntax::

    Rule("SGD(momentum)", arrays=("p", "g", "buf"), writes=("p", "buf"),
         numbers=("lr", "momentum", "keep"),
         each=("buf = momentum * buf + keep * g",
               "p = p - lr * buf"))

Everything that runs the rule is derived from that one text:

- ``source(rule)``: a numba function looping over the elements (``@njit(cache=True)``), written
  to a module file in the cache folder so numba's disk cache finds it next time
  (``kernels.apply_rule`` runs it eagerly; ``tn.compile`` pastes the same function into the
  code it generates, so a compiled step runs the very loop an eager step runs);
- ``run_numpy(rule, arrays, numbers)``: the numpy twin, the statements run on whole arrays.

Numbers arrive as Python floats (what the optimizer read from its parameter group, in
float64, as PyTorch computes them), followed by the parameter's step counts (``counts``: Adam's
``step``, advanced by the optimizer before each update). ``prepare`` statements compute more
numbers from them once, still in float64, where PyTorch computes in Python (Adam's bias
corrections ``lr / (1 - beta1 ** step)``); then every number is rounded to the arrays' dtype, so
float32 stays float32, and ``before`` statements compute in that dtype (``keep = one - w``).
Names a rule can use: its arrays and numbers, ``one``, ``sqrt``, ``maximum``, ``abs``; no
number literals in ``before`` and ``each`` (a bare ``1.0`` would be a float64 in numba and
turn float32 maths into float64), only in ``prepare``, which is float64 maths.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)  # compared by identity: a dict key, hashed often
class Rule:
    """One optimizer's update of one parameter, per element (see the module docstring)."""

    name: str  # shown by explain() and in messages: "SGD(momentum, nesterov)"
    arrays: tuple[str, ...]  # element names, in the order the arrays are passed
    writes: tuple[str, ...]  # the arrays whose new values are stored back
    numbers: tuple[str, ...]  # scalars from the parameter group, passed as floats in this order
    each: tuple[str, ...]  # the statements for one element
    before: tuple[str, ...] = ()  # statements on numbers only, once, in the arrays' dtype
    counts: tuple[str, ...] = ()  # the state's step counts, passed after the numbers
    prepare: tuple[str, ...] = ()  # statements on numbers only, once, in float64, first

    def __repr__(self) -> str:
        return f"<rule {self.name}>"

    @functools.cached_property
    def written(self) -> tuple[int, ...]:
        """Positions (in ``arrays``) of the arrays the rule writes."""
        return tuple(self.arrays.index(w) for w in self.writes)

    @functools.cached_property
    def prepared(self) -> tuple[str, ...]:
        """The names the ``prepare`` statements assign (``step_size = ...``), in order."""
        return tuple(statement.split("=", 1)[0].strip() for statement in self.prepare)

    def pick(self, numbers: dict[str, Any]) -> tuple[float, ...]:
        """The rule's numbers from a dict of them (and maybe more), as floats in order."""
        return tuple([float(numbers[name]) for name in self.numbers])

    def count(self, state: dict[str, Any]) -> tuple[float, ...]:
        """Advance the step counts of a parameter's ``state`` that the rule takes by one; their
        new values, as floats (what follows the numbers)."""
        counted: tuple[float, ...] = ()  # a loop, not a comprehension: called per parameter
        for name in self.counts:
            state[name] += 1
            counted += (float(state[name]),)
        return counted


_NUMBA_NAMES = {"sqrt": "np.sqrt", "maximum": "np.maximum"}


def _numba_text(statement: str) -> str:
    return re.sub(r"\b(sqrt|maximum)\(", lambda m: _NUMBA_NAMES[m.group(1)] + "(", statement)


def source(rule: Rule, name: str = "update") -> str:
    """The numba function ``name(*arrays, numbers)`` of ``rule``: C-contiguous arrays of one
    dtype and shape (at least 1-d), ``numbers`` a tuple of floats in ``rule.numbers`` order,
    then ``rule.counts``."""
    arrays = [f"{a}_" for a in rule.arrays]
    lines = ['@njit(cache=True, error_model="numpy")',
             f"def {name}({', '.join(arrays)}, numbers):",
             f'    """{rule.name} (tinynet/kernels/updates.py: generated from the rule)"""',
             f"    dt = {arrays[0]}.dtype.type",
             "    one = dt(1.0)"]
    given = rule.numbers + rule.counts
    if rule.prepare:  # float64 first, then every number in the arrays' dtype
        lines += [f"    {n} = numbers[{i}]" for i, n in enumerate(given)]
        lines += ["    " + _numba_text(s) + "  # float64" for s in rule.prepare]
        used = " ".join(rule.before + rule.each)  # cast only what the loop reads
        lines += [f"    {n} = dt({n})" for n in given + rule.prepared
                  if re.search(rf"\b{n}\b", used)]
    else:
        lines += [f"    {n} = dt(numbers[{i}])" for i, n in enumerate(given)]
    lines += ["    " + _numba_text(s) for s in rule.before]
    lines.append(f"    n = {arrays[0]}.size")
    lines += [f"    {a}_ = flat({a}_)  # (C-contiguous: a view)" for a in rule.arrays]
    lines.append("    for e in range(n):")
    lines += [f"        {a} = {a}_[e]" for a in rule.arrays]
    lines += ["        " + _numba_text(s) for s in rule.each]
    lines += [f"        {w}_[e] = {w}" for w in rule.writes]
    return "\n".join(lines) + "\n"


def module_source(rule: Rule) -> str:
    """A module holding ``source(rule)`` as ``update``, for numba's disk cache."""
    return ("\"\"\"Generated by tinynet/kernels/updates.py (do not edit).\"\"\"\n"
            "import numpy as np\nfrom numba import njit\n\n"
            "from tinynet.kernels.flat import flat\n\n\n" + source(rule))


_CODE: dict[Rule, tuple[Any, Any]] = {}  # rule -> compiled (before, each) code objects


def run_numpy(rule: Rule, arrays: Sequence[np.ndarray], numbers: tuple[float, ...]) -> None:
    """The twin: ``rule`` on whole arrays with numpy, writing ``rule.writes`` in place."""
    code = _CODE.get(rule)
    if code is None:
        code = _CODE[rule] = tuple(compile("\n".join(part) or "pass", f"<{rule.name}>", "exec")
                                   for part in (rule.prepare, rule.before, rule.each))
    dt = arrays[0].dtype.type
    given = rule.numbers + rule.counts
    scope: dict[str, Any] = {"sqrt": np.sqrt, "maximum": np.maximum, "abs": abs}
    scope.update(zip(given, map(float, numbers), strict=True))
    exec(code[0], scope)  # noqa: S102 - an optimizer's own rule text, float64
    scope.update((n, dt(scope[n])) for n in given + rule.prepared)
    scope["one"] = dt(1.0)
    exec(code[1], scope)  # noqa: S102 - in the arrays' dtype
    scope.update(zip(rule.arrays, arrays, strict=True))
    with np.errstate(all="ignore"):
        exec(code[2], scope)  # noqa: S102
    for i in rule.written:
        np.copyto(arrays[i], scope[rule.arrays[i]], casting="same_kind")
