"""Watching the engine work: ``trace`` prints each backward step, ``detect_anomaly`` stops at
the first NaN or inf and names the op and the user's line that created it. While one of them
is on, ``Watcher`` is registered as an observer of the engine (engine.py, section 6)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tinynet.autograd import engine
from tinynet.errors import AnomalyError


class _State(threading.local):
    anomaly = False
    tracer: Callable[[str], None] | None = None
    on = False  # anomaly or tracer: the watcher is registered with the engine


state = _State()


class Watcher(engine.Observer):
    """What the engine calls while trace or detect_anomaly is on in this thread."""

    def on_apply(self, cls: type, ctx: Any, inputs: tuple, options: dict, out: Any,
                 result: Any, recorded: bool) -> None:
        forward(ctx, out, recorded)

    def around_backward(self, node: Any, grad: Any, create_graph: bool,
                        rule: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        input_grads = rule()
        backward_step(node, grad, input_grads)
        return input_grads


_WATCHER = Watcher()


def _update() -> None:
    state.on = state.anomaly or state.tracer is not None
    active = engine.observers.active
    if state.on and _WATCHER not in active:
        engine.observers.active = active + (_WATCHER,)
    elif not state.on and _WATCHER in active:
        engine.observers.active = tuple(o for o in active if o is not _WATCHER)


def forward(ctx: Any, out: np.ndarray, recorded: bool) -> None:
    """After each op's forward: check the output, remember where a recorded node was made."""
    if state.anomaly:
        where = _user_location()
        if recorded:
            ctx.created_at = where
        if out.dtype.kind in "fc" and not np.isfinite(out).all():
            node = _node_in_backward()  # an op that a backward rule ran: blame that rule
            if node is not None:
                _check_finite(out, node.name, "backward", getattr(node, "created_at", None))
            _check_finite(out, type(ctx).__name__, "forward", where)


def _node_in_backward() -> Any:
    """The node whose backward is running in this thread, if any (found on the call stack)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "run_backward" and "node" in frame.f_locals:
            return frame.f_locals["node"]
        frame = frame.f_back
    return None


def backward_step(node: Any, grad: Any, input_grads: tuple[Any, ...]) -> None:
    """After each node's backward: print the step, check the gradients."""
    if state.tracer is not None:
        state.tracer(_describe_step(node, grad, input_grads))
    if state.anomaly:
        for g in input_grads:
            if g is not None:
                _check_finite(getattr(g, "data", g), node.name, "backward",
                              getattr(node, "created_at", None))


# ---- trace ---------------------------------------------------------------------------------


@contextlib.contextmanager
def tracing(printer: Callable[[str], None] | None) -> Iterator[None]:
    previous = state.tracer
    if printer is not None:
        state.tracer = printer
    _update()
    try:
        yield
    finally:
        state.tracer = previous
        _update()


@contextlib.contextmanager
def trace(norms: bool = True, file: Any = None) -> Iterator[list[str]]:
    """Print each backward step as it runs: the op, its input shapes and gradient shapes.

    ``with tn.autograd.trace(): loss.backward()`` — the yielded list also collects the lines.
    """
    lines: list[str] = []
    with tracing(step_printer(lines, norms, file)):
        yield lines


def step_printer(lines: list[str], norms: bool, file: Any) -> Callable[[str], None]:
    """What ``trace()`` and ``backward(trace=True)`` print: numbered steps, kept in ``lines``."""

    def printer(line: str) -> None:
        if not norms:
            line = line.split("  |")[0]
        lines.append(line)
        print(f"backward step {len(lines)}: {line}", file=file or sys.stdout)

    return printer


def _describe_step(node: Any, grad: Any, input_grads: tuple[Any, ...]) -> str:
    """``MulBackward  inputs (2, 3), (3,)  grad_out (2, 3) -> grads (2, 3), (2, 3)->(3,)``:
    ``-`` for an input that gets no gradient, ``a->b`` where broadcasting is summed away."""
    shapes = ", ".join(str(getattr(p, "shape", np.shape(p))) for p in node.parents)
    outs = []
    for parent, needed, g in zip(node.parents, node.needs_input_grad, input_grads, strict=False):
        if not needed or g is None:
            outs.append("-")
        else:
            outs.append(str(g.shape) + ("" if g.shape == parent.shape else f"->{parent.shape}"))
    norm = float(np.linalg.norm(getattr(grad, "data", grad)))
    return (
        f"{node.name}  inputs {shapes}  grad_out {grad.shape} -> grads {', '.join(outs)}"
        f"  |grad_out|={norm:.4g}"
    )


# ---- anomaly detection ---------------------------------------------------------------------


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Raise as soon as an op produces NaN or inf, naming the op and the user's line.

    Slow (every op checks its output and records where it was created): for debugging.
    """

    def __enter__(self) -> None:
        self._previous = state.anomaly
        state.anomaly = True
        _update()

    def __exit__(self, *exc: object) -> None:
        state.anomaly = self._previous
        _update()


def is_anomaly_enabled() -> bool:
    """Whether ``detect_anomaly`` is on in this thread."""
    return state.anomaly


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
