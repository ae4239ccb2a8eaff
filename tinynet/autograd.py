"""The autograd engine: how tinynet records a graph and runs it backwards.

Read this file top to bottom; it is the whole engine.

1. **Grad mode.** ``no_grad`` / ``enable_grad`` flip a thread-local switch. When it is off,
   operations still compute, but no graph is recorded.
2. **Function and its context.** Every differentiable operation is a ``Function`` subclass with
   two static methods side by side: ``forward(ctx, *arrays)`` computes the result with numpy and
   may stash what backward needs with ``ctx.save_for_backward``; ``backward(ctx, grad)`` returns
   the gradient for each input (the chain rule's local step). ``Function.apply`` runs forward
   and, when an input requires grad, keeps the context as the output's ``grad_fn``: that
   context *is* the graph node (its ``parents`` are the input tensors).
3. **Topological order.** ``topological_order`` walks from the output to the leaves with an
   explicit stack (no recursion, so a 100,000-op chain is fine) and returns every node after all
   nodes that consume it.
4. **Backward.** ``run_backward`` visits the nodes in that order, calls each ``backward``,
   reduces broadcast gradients to the input's shape (``sum_to_shape``, once, here and not in each
   op), adds gradients that meet at the same node, and accumulates into the leaves' ``.grad``.
   Afterwards each node frees its saved arrays unless ``retain_graph=True``.
5. **Higher order.** With ``create_graph=True`` the backward rules run on Tensors with grad mode
   on, so the gradient is itself a graph and can be differentiated again. The rules are written
   once, with operators and numpy-style methods that arrays and Tensors share; ``namespace(x)``
   gives ``numpy`` or ``tinynet.ops`` for the few functions (``exp``, ``log``...) they need.

Graphs die by reference counting alone: a tensor points to its ``grad_fn``, a node points to its
input tensors, and nothing points back from a node to its output.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tinynet.errors import AnomalyError, GraphError, ShapeError, TinynetError, shape_str

if TYPE_CHECKING:
    from tinynet.tensor import Tensor

# ---------------------------------------------------------------------------------------------
# 1. Grad mode (thread-local: two threads training two models never see each other's switch)
# ---------------------------------------------------------------------------------------------


class _State(threading.local):
    grad_enabled: bool = True
    anomaly: bool = False
    trace: Callable[[str], None] | None = None


_state = _State()


def is_grad_enabled() -> bool:
    """Whether operations record a graph in this thread."""
    return _state.grad_enabled


class _GradModeSwitch:
    """Context manager *and* decorator that sets grad mode, restoring it on exit."""

    mode: bool

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        # ``@tn.no_grad`` without parentheses hands us the function directly.
        if func is not None and callable(func):
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func: Callable[..., Any] | None = None) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_state.grad_enabled)
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous.pop()

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        cls = type(self)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with cls():  # a fresh switch per call keeps recursion and threads independent
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradModeSwitch):  # noqa: N801 - PyTorch's name
    """Stop recording graphs: ``with tn.no_grad(): ...`` or ``@tn.no_grad()``."""

    mode = False


class enable_grad(_GradModeSwitch):  # noqa: N801 - PyTorch's name
    """Record graphs again inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """``with tn.set_grad_enabled(flag):`` sets grad mode to ``flag`` for the block."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous = _state.grad_enabled
        _state.grad_enabled = self.mode  # PyTorch also applies it when used as a plain call

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous


# ---------------------------------------------------------------------------------------------
# 2. Function: one operation, its forward and backward side by side, and the graph node
# ---------------------------------------------------------------------------------------------

# What a saved array is, so double backward can hand the rule the right Tensor.
_CONSTANT, _OUTPUT = -1, -2


class Function:
    """Base class of every differentiable operation; an instance is the context *and* the node.

    Subclasses define::

        @staticmethod
        def forward(ctx, *arrays, **options) -> np.ndarray
        @staticmethod
        def backward(ctx, grad) -> gradient or tuple of gradients, one per input (None: none)

    ``forward`` gets numpy arrays (the inputs' data) and returns an array. ``backward`` gets the
    gradient of the loss with respect to the output and returns the gradient with respect to
    each input, *before* broadcasting is undone (the engine sums it back to the input's shape).
    """

    __slots__ = (
        "parents",  # the inputs as given: Tensors (graph edges) or plain arrays (constants)
        "needs_input_grad",  # one bool per input
        "saved",  # arrays from save_for_backward, None once freed
        "_saved_roles",  # for each saved array: input index, _OUTPUT or _CONSTANT
        "_saved_versions",  # (version counter, value at save time) for in-place checks
        "output_shape",
        "output_dtype",
        "output_version",  # the output tensor's version counter
        "__dict__",  # ops keep their own options on ctx (ctx.axis, ctx.shape, ...)
    )
    # Rarely set, so they live on the class until an instance needs its own value.
    differentiable = False  # True while backward runs with create_graph=True
    hooks: list[Callable[[Any], Any]] | None = None  # register_hook on the output tensor
    retained: Any = None  # weak reference to the output tensor after retain_grad()
    created_at: str | None = None  # "file:line" of the user's code (anomaly mode only)

    # ---- recording -------------------------------------------------------------------------

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if needed, record this node in the graph."""
        ctx = cls.__new__(cls)
        ctx.saved = None
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        try:
            out = cls.forward(ctx, *arrays, **options)
        except ValueError as e:
            raise _explain(cls, arrays, e) from e
        if _state.anomaly:
            _check_finite(out, cls.__name__, "forward", _user_location())
        # A view shares its input's version counter even when no graph is recorded (no_grad, or
        # an input without requires_grad): an in-place edit through the view changes memory a
        # graph may have saved.
        version = (
            inputs[0]._version
            if cls.is_view and isinstance(inputs[0], Tensor) and np.may_share_memory(out, arrays[0])
            else None
        )
        if not _state.grad_enabled:
            return Tensor._make(out, None, version)
        needs = tuple([isinstance(x, Tensor) and x._requires_grad for x in inputs])
        if True not in needs or out.dtype.kind != "f":
            return Tensor._make(out, None, version)
        ctx.parents = inputs
        ctx.needs_input_grad = needs
        ctx.output_shape = out.shape
        ctx.output_dtype = out.dtype
        if _state.anomaly:
            ctx.created_at = _user_location()
        result = Tensor._make(out, ctx, version)
        ctx.output_version = result._version
        if ctx.saved is not None:
            ctx._remember_saved(inputs, out)
        return result

    # Name used in error messages (``add``, ``matmul``); defaults to the lower-case class name.
    op = "function"
    shape_error = "are not compatible"
    # Every op, by name, so tests can check that each one has a gradient test.
    registry: dict[str, type[Function]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "op" not in cls.__dict__:
            cls.op = cls.__name__.lower()
        if not cls.__name__.startswith("_"):
            Function.registry[cls.__name__] = cls

    # Ops whose output may share memory with input 0 (reshape, transpose, indexing...) share its
    # version counter, so an in-place edit through either one is seen by both.
    is_view = False

    @classmethod
    def call(cls, *inputs: Any, **options: Any) -> Any:
        """Use this op inside a backward rule: recorded (``apply``) when the rule runs on
        Tensors under create_graph, a plain ``forward`` on arrays otherwise."""
        if any(isinstance(x, Tensor) for x in inputs):
            return cls.apply(*inputs, **options)
        return cls.forward(cls.__new__(cls), *inputs, **options)

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward. Save inputs or the output where possible: those become
        differentiable Tensors again under ``create_graph``; anything else is a constant."""
        self.saved = arrays

    def _remember_saved(self, inputs: Sequence[Any], out: np.ndarray) -> None:
        roles, versions = [], []
        for array in self.saved:
            role = _CONSTANT
            if array is out:
                role = _OUTPUT
                versions.append((self.output_version, self.output_version.value))
            else:
                for i, x in enumerate(inputs):
                    if isinstance(x, Tensor) and x.data is array:
                        role = i
                        versions.append((x._version, x._version.value))
                        break
            roles.append(role)
        self._saved_roles = roles
        self._saved_versions = versions

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The saved arrays; Tensors connected to the graph while running with create_graph."""
        if self.saved is None:
            raise GraphError(
                f"{self.name}: trying to backward through the graph a second time (or after the "
                "saved values were freed). Specify retain_graph=True on the first backward() "
                "if you need to backward twice."
            )
        for counter, value in getattr(self, "_saved_versions", ()):
            if counter.value != value:
                raise GraphError(
                    f"{self.name}: one of the tensors saved for its backward has been modified "
                    f"by an in-place operation (it is at version {counter.value}; expected "
                    f"version {value}). Don't modify tensors in place between forward and "
                    "backward, or clone() them first."
                )
        if not self.differentiable:
            return self.saved
        tensors = []
        for array, role in zip(self.saved, self._saved_roles, strict=True):
            if role >= 0:
                tensors.append(self.parents[role])
            elif role == _OUTPUT:
                # A fresh handle on the output that routes gradients through this very node.
                tensors.append(Tensor._make(array, self, self.output_version))
            else:
                tensors.append(None if array is None else Tensor._make(array))
        return tuple(tensors)

    @property
    def name(self) -> str:
        """The op's name as shown in messages and in ``grad_fn``: ``MulBackward``."""
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"

    @staticmethod
    def forward(ctx: Function, *arrays: Any, **options: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        raise NotImplementedError


def _explain(cls: type[Function], arrays: Sequence[Any], error: ValueError) -> Exception:
    """numpy's message names neither our op nor the user's shapes; ours does both."""
    if isinstance(error, TinynetError):
        return error
    text = str(error)
    shapes = shape_str(*(a for a in arrays if hasattr(a, "shape")))
    if any(word in text for word in ("broadcast", "mismatch", "shape", "dimension", "size")):
        return ShapeError(f"{cls.op}: shapes {shapes} {cls.shape_error} (numpy: {text})")
    return type(error)(f"{cls.op}: {text} (input shapes {shapes})")


def namespace(x: Any) -> Any:
    """``numpy`` for arrays, ``tinynet.ops`` for Tensors: backward rules call ``xp.exp(...)``."""
    if isinstance(x, Tensor):
        from tinynet import ops

        return ops
    return np


# ---------------------------------------------------------------------------------------------
# 3. Topological order, iteratively
# ---------------------------------------------------------------------------------------------


def topological_order(root: Function) -> list[Function]:
    """Every node reachable from ``root``, each one before the nodes that produced its inputs.

    Depth-first search with an explicit stack: a node is emitted after all its parents (post-
    order), and the reversed post-order is a topological order from output to leaves.
    """
    order: list[Function] = []
    visited = {id(root)}
    stack: list[tuple[Function, Iterator[Any]]] = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            child = parent.grad_fn if isinstance(parent, Tensor) else None
            if child is not None and id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(child.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


# ---------------------------------------------------------------------------------------------
# 4. The backward pass
# ---------------------------------------------------------------------------------------------


def sum_to_shape(grad: Any, shape: tuple[int, ...]) -> Any:
    """Undo broadcasting: sum ``grad`` over the axes that broadcasting added or stretched.

    d/dx of ``broadcast_to(x, s)`` is "sum the copies back"; works on arrays and Tensors.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if extra:
        grad = grad.reshape(shape)
    if grad.shape != shape:
        raise ShapeError(f"internal: gradient of shape {grad.shape} does not fit {shape}")
    return grad


def run_backward(
    roots: Sequence[Tensor],
    grad_roots: Sequence[Any],
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
) -> list[Any] | None:
    """Backpropagate from ``roots`` (seeded with ``grad_roots``).

    With ``inputs=None`` gradients accumulate into leaves' ``.grad`` (``Tensor.backward``);
    otherwise the gradients of ``inputs`` are returned and ``.grad`` is untouched
    (``autograd.grad``).
    """
    # A virtual node whose parents are the roots gives one graph to sort.
    top = _Roots.__new__(_Roots)
    top.parents = tuple(roots)
    order = topological_order(top)[1:]
    wanted = {id(t): i for i, t in enumerate(inputs)} if inputs is not None else None
    results: list[Any] = [None] * len(inputs) if inputs is not None else []

    grads: dict[Function, Any] = {}  # node -> gradient of its output, summed over consumers
    # Arrays someone else may hold (the caller's seed, a hook, a retained .grad, another leaf):
    # a leaf copies these before adopting one as its .grad, which later ``+=`` edits in place.
    owned: set[int] = {id(_data(g)) for g in grad_roots}
    tracer, anomaly = _state.trace, _state.anomaly

    def deliver(tensor: Tensor, grad: Any) -> None:
        """Route ``grad`` (already shaped like ``tensor``) to a node, a leaf or a result."""
        if wanted is not None and id(tensor) in wanted:
            if tensor.grad_fn is None and tensor._hooks:
                grad = _run_hooks(tensor._hooks, grad)
            i = wanted[id(tensor)]
            results[i] = grad if results[i] is None else results[i] + grad
            # no return: a wanted non-leaf still passes its gradient on to earlier inputs
        node = tensor.grad_fn
        if node is not None:
            grads[node] = grads[node] + grad if node in grads else grad
        elif wanted is None:
            accumulate_grad(tensor, grad, create_graph, owned)

    previous_mode = _state.grad_enabled
    _state.grad_enabled = create_graph  # backward rules record a graph only for create_graph
    try:
        for root, grad in zip(roots, grad_roots, strict=True):
            deliver(root, grad)
        for node in order:
            grad = grads.pop(node, None)
            if grad is None:
                continue  # this branch does not lead to the roots' gradient
            if node.hooks:
                grad = _run_hooks(node.hooks, grad)
                owned.add(id(_data(grad)))  # the hook may have kept it
            if node.retained is not None:
                kept = node.retained()
                if kept is not None:
                    accumulate_grad(kept, grad, create_graph, owned)
            if create_graph:
                node.differentiable = True  # saved_tensors now hands out graph-connected Tensors
                try:
                    input_grads = type(node).backward(node, grad)
                finally:
                    del node.differentiable
            else:
                input_grads = type(node).backward(node, grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            if tracer is not None:
                tracer(_describe_step(node, grad, input_grads))
            if anomaly:
                for g in input_grads:
                    if g is not None:
                        _check_finite(_data(g), node.name, "backward", node.created_at)
            # one gradient per input, or the op's backward is wrong
            for parent, needed, g in zip(
                node.parents, node.needs_input_grad, input_grads, strict=True
            ):
                if not needed or g is None:
                    continue
                data = parent.data
                if g.shape != data.shape:
                    g = sum_to_shape(g, data.shape)
                if g.dtype != data.dtype:
                    g = g.astype(data.dtype)
                deliver(parent, g)
            if not retain_graph:
                node.saved = None
    finally:
        _state.grad_enabled = previous_mode
    if inputs is not None:
        return results
    return None


class _Roots(Function):
    """The virtual node above the roots; never run."""


def accumulate_grad(leaf: Tensor, grad: Any, create_graph: bool, owned: set[int]) -> None:
    """``leaf.grad += grad``, as PyTorch does: summed across backward calls until zeroed."""
    if leaf._hooks:
        grad = _run_hooks(leaf._hooks, grad)
        owned.add(id(_data(grad)))  # the hook may have kept it
    if create_graph:
        new = grad if isinstance(grad, Tensor) else Tensor._make(grad)
        if leaf.grad is not None:
            leaf.grad = leaf.grad + new
            return
        # Same rule as below, with a differentiable copy: a later backward may add into it.
        if id(new.data) in owned or not new.data.flags.owndata or not new.data.flags.writeable:
            new = new.clone()
        owned.add(id(new.data))
        leaf.grad = new
        return
    array = _data(grad)
    if leaf.grad is None:
        # Keep an array of our own: the same gradient array may reach several leaves (``a + b``
        # hands ``grad`` to both), and later accumulation adds into it in place.
        if id(array) in owned or not array.flags.owndata or not array.flags.writeable:
            array = array.copy()
        owned.add(id(array))
        leaf.grad = Tensor._make(array)
    elif id(leaf.grad.data) in owned or leaf.grad.requires_grad:
        # Adopted earlier in this pass: the same array may still be waiting to be read by
        # another node (``a + b`` hands one array to ``a`` and to ``b``), so don't change it.
        # A .grad from create_graph is part of a graph: it is replaced, never edited (PyTorch).
        leaf.grad = Tensor._make(leaf.grad.data + array)
    else:
        leaf.grad.data += array
        leaf.grad._version.value += 1  # a graph may have saved the old .grad


def _run_hooks(hooks: list[Callable[[Any], Any]], grad: Any) -> Any:
    for hook in hooks:
        wrapped = grad if isinstance(grad, Tensor) else Tensor._make(grad)
        replaced = hook(wrapped)
        if replaced is not None:
            if np.shape(replaced) != wrapped.shape or getattr(replaced, "dtype", None) != (
                wrapped.dtype
            ):
                raise GraphError(
                    f"register_hook: a hook returned {type(replaced).__name__} of shape "
                    f"{np.shape(replaced)}, dtype {getattr(replaced, 'dtype', None)} for a "
                    f"gradient of shape {wrapped.shape}, dtype {wrapped.dtype}; a hook may "
                    "change the values only (return a Tensor shaped like its argument, or None)"
                )
            grad = replaced if isinstance(grad, Tensor) else _data(replaced)
    return grad


def _data(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else x


def backward(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    trace: bool = False,
) -> None:
    """What ``tensor.backward()`` does; see ``Tensor.backward``."""
    if not tensor.requires_grad:
        raise GraphError(
            "backward: this tensor does not require grad and has no grad_fn (was it computed "
            "under no_grad, or from tensors without requires_grad=True?)"
        )
    if gradient is None:
        if tensor.data.size != 1:
            raise GraphError(
                f"backward: grad can be implicitly created only for scalar outputs; this tensor "
                f"has shape {tensor.shape}. Pass a gradient of that shape, or reduce it first "
                "(e.g. loss.sum().backward())."
            )
        seed: Any = np.ones(tensor.shape, dtype=tensor.dtype)
    else:
        seed = _as_gradient(gradient, tensor, "backward")
    if create_graph:
        seed = Tensor._make(seed) if not isinstance(seed, Tensor) else seed
    elif isinstance(seed, Tensor):
        seed = seed.data
    if retain_graph is None:
        retain_graph = create_graph
    if trace:
        with _tracing(_step_printer([], norms=True, file=None)):
            run_backward([tensor], [seed], retain_graph, create_graph)
    else:
        run_backward([tensor], [seed], retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    As ``torch.autograd.grad``: ``create_graph=True`` makes the result differentiable (for
    Hessian-vector products or gradient penalties); an input the outputs do not depend on raises
    unless ``allow_unused=True`` (then its gradient is None).
    """
    for what, value in (("outputs", outputs), ("inputs", inputs)):
        if not isinstance(value, Tensor | list | tuple):
            raise GraphError(f"grad: {what} must be a Tensor or a sequence of Tensors, got "
                             f"{type(value).__name__}")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs] * len(outputs) if len(outputs) == 1 else grad_outputs
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise GraphError("grad: every input must be a Tensor with requires_grad=True")
    seeds = []
    for out, g in zip(outputs, grad_outputs, strict=True):
        if not out.requires_grad:
            raise GraphError("grad: an output does not require grad (no graph leads to it)")
        if g is None:
            if out.data.size != 1:
                raise GraphError(
                    f"grad: grad_outputs is needed for a non-scalar output of shape {out.shape}"
                )
            g = np.ones(out.shape, dtype=out.dtype)
        else:
            g = _as_gradient(g, out, "grad")
        seeds.append(
            (g if isinstance(g, Tensor) else Tensor._make(g)) if create_graph else _data(g)
        )
    if retain_graph is None:
        retain_graph = create_graph
    unique = list({id(x): x for x in inputs}.values())  # an input may be listed twice
    gradients = run_backward(outputs, seeds, retain_graph, create_graph, unique)
    assert gradients is not None
    by_input = {id(x): g for x, g in zip(unique, gradients, strict=True)}
    final: list[Tensor | None] = []
    for x in inputs:
        r = by_input[id(x)]
        if r is None:
            if not allow_unused:
                raise GraphError(
                    f"grad: one of the inputs (shape {x.shape}) was not used to compute the "
                    "outputs; pass allow_unused=True if that is expected"
                )
            final.append(None)
        else:
            final.append(r if isinstance(r, Tensor) else Tensor._make(r))
    return tuple(final)


def _as_gradient(gradient: Any, like: Tensor, op: str) -> Any:
    if not isinstance(gradient, Tensor):
        from tinynet.dtypes import as_array  # strings, objects, ragged lists: DTypeError

        gradient_array = as_array(gradient, copy=False, op=op)
        if gradient_array.dtype.kind != "f":
            gradient_array = gradient_array.astype(like.dtype)
    g = gradient if isinstance(gradient, Tensor) else Tensor._make(gradient_array)
    if g.shape != like.shape:
        raise ShapeError(
            f"{op}: gradient has shape {g.shape} but the tensor has shape {like.shape}"
        )
    if g.dtype != like.dtype:
        g = g.astype(like.dtype) if isinstance(gradient, Tensor) else Tensor._make(
            g.data.astype(like.dtype)
        )
    return g if isinstance(gradient, Tensor) else g.data


# ---------------------------------------------------------------------------------------------
# 5. Watching the engine: backward trace and anomaly detection
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tracing(printer: Callable[[str], None] | None) -> Iterator[None]:
    previous = _state.trace
    if printer is not None:
        _state.trace = printer
    try:
        yield
    finally:
        _state.trace = previous


@contextlib.contextmanager
def trace(norms: bool = True, file: Any = None) -> Iterator[list[str]]:
    """Print each backward step as it runs: the op, its input shapes and gradient shapes.

    ``with tn.autograd.trace(): loss.backward()`` — the yielded list also collects the lines.
    """
    lines: list[str] = []
    with _tracing(_step_printer(lines, norms, file)):
        yield lines


def _step_printer(lines: list[str], norms: bool, file: Any) -> Callable[[str], None]:
    """What ``trace()`` and ``backward(trace=True)`` print: numbered steps, kept in ``lines``."""

    def printer(line: str) -> None:
        if not norms:
            line = line.split("  |")[0]
        lines.append(line)
        print(f"backward step {len(lines)}: {line}", file=file or sys.stdout)

    return printer


def _describe_step(node: Function, grad: Any, input_grads: tuple[Any, ...]) -> str:
    """``MulBackward  inputs (2, 3), (3,)  grad_out (2, 3) -> grads (2, 3), (2, 3)->(3,)``:
    ``-`` for an input that gets no gradient, ``a->b`` where broadcasting is summed away."""
    shapes = ", ".join(str(getattr(p, "shape", np.shape(p))) for p in node.parents)
    outs = []
    for parent, needed, g in zip(node.parents, node.needs_input_grad, input_grads, strict=False):
        if not needed or g is None:
            outs.append("-")
        else:
            outs.append(str(g.shape) + ("" if g.shape == parent.shape else f"->{parent.shape}"))
    norm = float(np.linalg.norm(_data(grad)))
    return (
        f"{node.name}  inputs {shapes}  grad_out {grad.shape} -> grads {', '.join(outs)}"
        f"  |grad_out|={norm:.4g}"
    )


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Raise as soon as an op produces NaN or inf, naming the op and the user's line.

    Slow (every op checks its output and records where it was created): for debugging.
    """

    def __enter__(self) -> None:
        self._previous = _state.anomaly
        _state.anomaly = True

    def __exit__(self, *exc: object) -> None:
        _state.anomaly = self._previous


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_location() -> str:
    """``file:line`` of the innermost frame outside the tinynet package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def _check_finite(array: Any, op: str, phase: str, where: str | None) -> None:
    array = np.asarray(array)
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        kind = "nan" if np.isnan(array).any() else "inf"
        raise AnomalyError(
            f"{op}: {phase} produced {kind} (output shape {array.shape}); "
            f"the op was created at {where or '<unknown>'}"
        )


# Tensor is needed at run time by apply(); importing it last avoids a circular import
# (tinynet.tensor imports this module first).
from tinynet.tensor import Tensor  # noqa: E402
