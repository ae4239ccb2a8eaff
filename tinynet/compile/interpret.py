"""Replay a traced program step by step, through the same ops and kernels eager mode uses.

This is the reference replay: every step runs the way it ran during the trace (``cls.apply``
for an op, an optimizer's ``_Update`` included, the op's backward rule for a backward step), on
the arrays of this call. It allocates like eager mode does and is about as fast; what it saves
is the Python around the ops (modules, the graph walk, the optimizer loop). ``codegen.py``
makes the fast version; this one runs when a program has a step no fusion rule covers and
numba is off, and the tests use it as a second opinion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.autograd import Function, no_grad, set_grad_enabled
from tinynet.compile.ir import Program, Ref, Returned, Step, Value
from tinynet.errors import CompileError
from tinynet.tensor import Tensor


def bind(value: Value, args: tuple) -> np.ndarray:
    """The array a value starts from at this call (inputs, outside tensors, constants)."""
    if value.kind == "input":
        if isinstance(value.source, tuple) and value.source[0] == "item":
            return bind_item(args, value.source[1:])
        if isinstance(value.source, tuple):  # converted inside the function: convert again
            i, dtype = value.source
            return np.asarray(bind_input(args[i])).astype(dtype)
        return bind_input(args[value.source])
    if value.kind == "param":
        return value.source.data
    if value.kind == "grad":
        return grad_owner(value.source, args).grad.data
    if value.kind == "state":
        opt, param, key = value.source
        return opt.state[param][key].data
    if value.kind == "const":
        return value.source
    raise AssertionError(value.kind)


def grad_owner(source: Any, args: tuple) -> Tensor:
    """The tensor whose .grad a value is: an outside tensor, or argument i (("arg", i))."""
    return args[source[1]] if isinstance(source, tuple) else source


def bind_item(args: tuple, path: tuple) -> np.ndarray:
    """The array of a tensor inside a list, tuple or dict argument: ``args[i][k1][k2]...``."""
    found: Any = args
    for key in path:
        found = found[key]
    return bind_input(found)


def bind_input(arg: Any) -> np.ndarray:
    """A call argument's array."""
    return arg.data if isinstance(arg, Tensor) else np.asarray(arg)


def run(program: Program, args: tuple) -> list[Any]:
    """Replay ``program`` on ``args``; returns the environment (value index -> array)."""
    env: list[Any] = [None] * len(program.values)
    for value in program.values:
        if value.kind != "temp":
            env[value.index] = bind(value, args)
    nodes: dict[int, Any] = {}
    for step in program.steps:
        if step.kind == "op":  # (an optimizer's _Update too: it writes its parameter in place)
            run_op(step, env, nodes)
        else:
            run_backward(step, env, nodes)
    for param in program.updated:  # as Optimizer.step bumps them, once per update
        param._version.value += 1
    return env


def _literal(x: Any, env: list[Any]) -> Any:
    if isinstance(x, Ref):
        return env[x.value]
    if isinstance(x, tuple | list):
        return type(x)(_literal(v, env) for v in x)
    return x


def run_op(step: Step, env: list[Any], nodes: dict[int, Any]) -> None:
    inputs = []
    for x, needs in zip(step.inputs, step.needs_input_grad or [False] * len(step.inputs),
                        strict=True):
        if isinstance(x, Ref):
            t = Tensor._make(env[x.value])
            t._requires_grad = bool(needs and step.differentiated)
            inputs.append(t)
        else:
            inputs.append(_literal(x, env))
    options = {k: _literal(v, env) for k, v in step.options.items()}
    with set_grad_enabled(step.differentiated):
        result = step.cls.apply(*inputs, **options)
    for tensor in step.bumps:  # an op that wrote an outside tensor in place (running stats)
        tensor._version.value += 1
    if step.differentiated:
        nodes[step.index] = result.grad_fn
    _store(step.outputs[0], result.data, env)


def run_backward(step: Step, env: list[Any], nodes: dict[int, Any]) -> None:
    node = nodes[step.node]
    grad = env[step.inputs[0].value]
    with no_grad():
        if step.fast:
            grads = step.cls.fast_backward(node, grad)
        else:
            grads = step.cls.backward(node, Tensor._make(grad))
    if type(grads) is not tuple:
        grads = (grads,)
    for out, g in zip(step.outputs, grads, strict=True):
        if out is not None and g is not None:
            _store(out, g.data if isinstance(g, Tensor) else np.asarray(g), env)


def _store(out: Any, array: np.ndarray, env: list[Any]) -> None:
    if isinstance(out, Ref):
        env[out.value] = array


def build_result(result: Any, env: list[Any]) -> Any:
    """The returned structure with fresh tensors (copies: buffers are reused next call)."""
    if isinstance(result, Ref):
        return Tensor._make(np.array(env[result.value], copy=True))
    if isinstance(result, Returned):
        if result.tensor is not None:
            return result.tensor
        if result.value is not None:  # eager mode returned it with a graph: see _NoGraph
            node = _NoGraph()
            node.parents, node.needs_input_grad, node.saved = (), (), None
            node.program = result.name
            return Tensor._make(np.array(env[result.value], copy=True), node)
        return Tensor._make(result.constant.copy())
    if isinstance(result, tuple | list):
        return type(result)(build_result(v, env) for v in result)
    if isinstance(result, dict):
        return {k: build_result(v, env) for k, v in result.items()}
    return result


class _NoGraph(Function):
    """The node of a replayed result that eager mode would return with a graph (a model's
    output): it requires grad, as in eager mode, and refuses ``backward()`` with a message
    instead of silently giving no gradients (the replay built no graph)."""

    program = "fn"

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        raise CompileError(
            f"tn.compile({ctx.program}): backward() through the result of a compiled call: a "
            "replay computes values, not a graph. Call backward() inside the compiled function "
            "(def step(x, y): loss = ...; loss.backward(); opt.step(); return loss), or call the "
            "model without tn.compile where you need its graph")
