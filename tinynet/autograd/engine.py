"""The autograd engine, whole: how tinynet records a graph and runs it backwards.

Read it top to bottom; it comes in five parts.

1. **Grad mode.** A thread-local switch. When it is off (``tn.no_grad()``, in grad_mode.py)
   ops still compute, but nothing is recorded.
2. **Function.** One op. ``forward(ctx, *arrays)`` computes the result with numpy;
   ``backward(ctx, grad)`` returns the gradient for each input (the chain rule's local step).
   ``Function.apply`` runs forward and, when an input requires grad, keeps ``ctx`` as the
   output's ``grad_fn``: the context *is* the graph node, and its ``parents`` are the inputs.
3. **Saved tensors.** ``ctx.save_for_backward`` keeps inputs or the output, as in PyTorch
   (anything else is a plain attribute of ctx); ``ctx.saved_tensors`` hands them back, refusing
   if they were freed or modified in place since.
4. **Topological order.** An explicit-stack depth-first walk from the output puts every node
   before the nodes that produced its inputs (no recursion: a 100,000-op chain is fine).
5. **The backward loop.** Visit the nodes in that order; call each ``backward``; undo
   broadcasting once, here (``sum_to_shape``); add up gradients that meet at a node; add the
   leaves' gradients into ``.grad``; free what was saved.

Backward rules receive and return Tensors, and there is one rule per op. For a plain
``backward()`` grad mode is off while they run, so they record nothing; with
``create_graph=True`` it stays on, the gradient is itself a graph, and it can be differentiated
again. A few ops also name a ``fast_backward``: the same derivative on arrays through a compiled
kernel, used for plain backward only.

Graphs die by reference counting alone: a tensor points to its node, a node to its inputs, and
nothing points back from a node to its output. The lines marked ``extra:`` are the only places
where the engine calls out: to ``hooks.py`` (register_hook, retain_grad), ``checks.py``
(mistakes in your own Functions), the observers (``watch.py``'s trace and detect_anomaly,
``tn.compile``'s tracer: section 6, the one hook for tools that watch the engine), and the read
count that in-place ops (``ops/inplace.py``) consult. Skip them on a first reading.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from tinynet import errors
from tinynet.autograd import checks, hooks
from tinynet.tensor import Tensor

# ---------------------------------------------------------------------------------------------
# 1. Grad mode
# ---------------------------------------------------------------------------------------------


class _GradMode(threading.local):
    enabled = True  # per thread: one thread's no_grad never affects another's training


grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops record a graph in this thread (``tn.no_grad()`` etc.: grad_mode.py)."""
    return grad_mode.enabled


# ---------------------------------------------------------------------------------------------
# 2. Function: one op, forward and backward side by side; an instance is ctx and graph node
# ---------------------------------------------------------------------------------------------


class Function:
    """Subclass it with two static methods::

        forward(ctx, *arrays, **options) -> np.ndarray       # numpy in, numpy out
        backward(ctx, grad) -> a Tensor (or None) per input  # Tensors in, Tensors out

    ``backward`` returns gradients *before* broadcasting is undone; the engine sums each back
    to its input's shape. Optionally ``fast_backward(ctx, grad_array)``: the same on arrays.
    """

    op = "function"  # the name in error messages; defaults to the class name, lower case
    is_view = False  # the output may share input 0's memory (reshape, indexing...)
    fast_backward: Callable[..., Any] | None = None
    hooks: list[Callable[[Tensor], Any]] | None = None  # extra: hooks on the output tensor
    registry: dict[str, type[Function]] = {}  # tinynet's ops by name, so tests visit each one

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.op = cls.__dict__.get("op", cls.__name__.lower())
        if not cls.__module__.startswith("tinynet."):  # extra: checks.py (your own Functions)
            checks.guard(cls, grad_mode)
        elif not cls.__name__.startswith("_"):
            Function.registry[cls.__name__] = cls

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if needed, record this node."""
        ctx = cls()
        ctx.to_save = ()
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        try:
            out = cls.forward(ctx, *arrays, **options)
        except ValueError as e:
            raise errors.explain(cls, arrays, e) from e
        # A view shares its input's version counter, so an in-place edit through either is seen.
        view = cls.is_view and np.may_share_memory(out, arrays[0])
        version = inputs[0]._version if view else None
        ctx.needs_input_grad = tuple([isinstance(x, Tensor) and x._requires_grad for x in inputs])
        record = grad_mode.enabled and True in ctx.needs_input_grad and out.dtype.kind == "f"
        result = Tensor._make(out, ctx if record else None, version)
        if record:
            ctx.parents = inputs
            ctx.saved = [ctx._saved_entry(a, arrays, out, result) for a in ctx.to_save]
            for x in inputs:  # extra: ops/inplace.py (an in-place op needs to know who read x)
                if isinstance(x, Tensor):
                    x._version.reads += 1
        if observers.active:  # extra: section 6 (watch.py, tn.compile's tracer see each op)
            for observer in observers.active:
                observer.on_apply(cls, ctx, inputs, options, out, result, record)
        return result

    # ---- 3. saved tensors ------------------------------------------------------------------

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep some of forward's inputs or its output for backward."""
        self.to_save = arrays

    def _saved_entry(self, array: Any, arrays: list[Any], out: Any, result: Tensor) -> tuple:
        """(input index or None for the output, its version counter, the version now)."""
        if array is out:
            self.output = out
            return None, result._version, result._version.value
        for i, a in enumerate(arrays):
            if a is array:
                counter = getattr(self.parents[i], "_version", None)
                return i, counter, counter and counter.value
        raise errors.not_savable(self.op)

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        """What forward saved, as Tensors (connected to the graph under create_graph)."""
        if self.saved is None:
            raise errors.freed(self.name)
        tensors = []
        for index, counter, version in self.saved:
            if counter is not None and counter.value != version:
                raise errors.modified_in_place(self.name, counter.value, version)
            if index is None:  # a fresh handle on the output, routing gradients to this node
                tensors.append(Tensor._make(self.output, self, counter))
            else:
                x = self.parents[index]
                tensors.append(x if isinstance(x, Tensor) else Tensor._make(x))
        return tuple(tensors)

    @property
    def name(self) -> str:
        """As shown in ``grad_fn`` and in messages: ``MulBackward``."""
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"



# ---------------------------------------------------------------------------------------------
# 4. Topological order, iteratively
# ---------------------------------------------------------------------------------------------


def topological_order(roots: Sequence[Tensor]) -> list[Function]:
    """Every node that leads to ``roots``, each one before the nodes that made its inputs.

    Depth-first with an explicit stack: a node is emitted once all its parents' nodes are
    (post-order); reversed, that lists consumers before producers.
    """
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Any, Iterator[Any]]] = [(None, iter(roots))]  # (node, its parents to visit)
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            child = parent.grad_fn if isinstance(parent, Tensor) else None
            if child is not None and id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(child.parents)))
                break
        else:  # every parent done: the node itself is
            stack.pop()
            if node is not None:
                order.append(node)
    order.reverse()
    return order


# ---------------------------------------------------------------------------------------------
# 5. The backward loop
# ---------------------------------------------------------------------------------------------


def sum_to_shape(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Undo broadcasting: sum ``grad`` over the axes broadcasting added or stretched.
    (d/dx of ``broadcast_to(x, s)`` is "add the copies back up".)"""
    extra = grad.ndim - len(shape)
    stretched = [extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1]
    axes = tuple(range(extra)) + tuple(stretched)
    if axes:
        grad = grad.sum(dim=axes, keepdim=True)
    return grad.reshape(shape) if extra else grad


def run_backward(roots: Sequence[Tensor], seeds: Sequence[Tensor], retain_graph: bool,
                 create_graph: bool, inputs: Sequence[Tensor] | None = None) -> list[Any]:
    """Backpropagate from ``roots``, seeded with ``seeds``. Without ``inputs``, add into the
    leaves' ``.grad``; with them, return their gradients instead (``tn.autograd.grad``)."""
    wanted = {id(x): i for i, x in enumerate(inputs or ())}
    results: list[Tensor | None] = [None] * len(wanted)
    grads: dict[Function, Tensor] = {}  # node -> gradient of its output, summed over uses

    def deliver(tensor: Tensor, grad: Tensor) -> None:
        if id(tensor) in wanted:
            if tensor.grad_fn is None and tensor._hooks:  # extra: hooks.py (leaf hooks)
                grad = hooks.run(tensor._hooks, grad)
            i = wanted[id(tensor)]
            results[i] = grad if results[i] is None else results[i] + grad
        node = tensor.grad_fn
        if node is not None:
            grads[node] = grads[node] + grad if node in grads else grad
        elif inputs is None:
            accumulate_grad(tensor, grad)

    previous, grad_mode.enabled = grad_mode.enabled, create_graph  # rules record iff create_graph
    try:
        for root, seed in zip(roots, seeds, strict=True):
            deliver(root, seed)
        for node in topological_order(roots):
            grad = grads.pop(node, None)
            if grad is None:
                continue  # this branch does not lead to the roots
            if node.hooks:  # extra: hooks.py (register_hook, retain_grad on non-leaves)
                grad = hooks.run(node.hooks, grad)
            if observers.active:  # extra: section 6 (observers run around the rule)
                input_grads = observed_rule(node, grad, create_graph, observers.active)
            else:
                input_grads = call_rule(node, grad, create_graph)
            for x, needed, g in zip(node.parents, node.needs_input_grad, input_grads,
                                    strict=True):  # one gradient per input, or backward is wrong
                if needed and g is not None:
                    g = g if isinstance(g, Tensor) else Tensor._make(g)
                    if g.shape != x.shape:
                        g = sum_to_shape(g, x.shape)
                    deliver(x, g if g.dtype == x.dtype else g.to(x.dtype))
            if not retain_graph and node.saved:
                node.saved = node.output = None
    finally:
        grad_mode.enabled = previous
    return results


def call_rule(node: Function, grad: Tensor, create_graph: bool) -> tuple[Any, ...]:
    """One node's backward rule: the gradient for each of its inputs, as a tuple."""
    if create_graph or node.fast_backward is None:
        input_grads = node.backward(node, grad)
    else:  # the named fast path: same derivative, arrays, a compiled kernel
        input_grads = node.fast_backward(node, grad.data)
    return input_grads if type(input_grads) is tuple else (input_grads,)


def accumulate_grad(leaf: Tensor, grad: Tensor) -> None:
    """``leaf.grad += grad``, summed across backward calls until zeroed (as PyTorch).

    A first gradient is copied (the same Tensor may reach several leaves: ``a + b`` hands one
    to each); later ones make a new ``.grad``, so whoever holds the old one keeps its values.
    Both are ordinary ops: recorded under create_graph, and seen by ``tn.compile``'s trace.
    """
    if leaf._hooks:  # extra: hooks.py (register_hook on a leaf)
        grad = hooks.run(leaf._hooks, grad)
    leaf.grad = grad.clone() if leaf.grad is None else leaf.grad + grad


# ---------------------------------------------------------------------------------------------
# 6. Observers (extra): the one hook for tools that watch the engine
# ---------------------------------------------------------------------------------------------


class Observer:
    """Watches this thread's engine: ``watch.py`` (trace, detect_anomaly) and ``tn.compile``'s
    tracer subclass it. Both methods are called only while the observer is registered
    (``observing``), in the thread that registered it. (An optimizer's update is an op too,
    ``optim.optimizer._Update``: observers see it in ``on_apply``.)"""

    def on_apply(self, cls: type, ctx: Function, inputs: tuple, options: dict, out: Any,
                 result: Tensor, recorded: bool) -> None:
        """After ``Function.apply`` ran an op (``recorded``: ``ctx`` became a graph node)."""

    def around_backward(self, node: Function, grad: Tensor, create_graph: bool,
                        rule: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        """Around one backward rule: call ``rule()`` and return what it returns."""
        return rule()


class _Observers(threading.local):
    active: tuple[Observer, ...] = ()  # per thread: one thread's tracer never sees another's


observers = _Observers()


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[None]:
    """Register ``observer`` in this thread for the ``with`` block (always unregistered after,
    whatever the block raises)."""
    previous = observers.active
    observers.active = previous + (observer,)
    try:
        yield
    finally:
        observers.active = previous


def observed_rule(node: Function, grad: Tensor, create_graph: bool,
                  active: tuple[Observer, ...]) -> tuple[Any, ...]:
    """``call_rule`` wrapped by each active observer, the first registered outermost."""
    if not active:
        return call_rule(node, grad, create_graph)
    return active[0].around_backward(
        node, grad, create_graph, lambda: observed_rule(node, grad, create_graph, active[1:]))
