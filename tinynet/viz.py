"""See the graph autograd recorded: ``to_dot`` writes it as Graphviz DOT text, ``render`` draws it.

    import tinynet as tn
    w = tn.randn(3, requires_grad=True)
    loss = (w * 2).sigmoid().sum()
    print(tn.viz.to_dot(loss, params={"w": w}))
    tn.viz.render(loss, "graph.svg", params={"w": w})   # needs the `dot` program (Graphviz)

What the picture shows (arrows follow the forward pass; backward walks them in reverse):

- **op nodes** (yellow ellipses): one per ``Function`` node, named like ``grad_fn``
  (``MulBackward``). After a backward without ``retain_graph`` they say *saved values freed*:
  the graph's shape survives, the arrays its backward needed are gone.
- **tensor nodes** (boxes) with shape and dtype: the output (green), leaves that require grad
  (blue; named when ``params`` names them), intermediate results (white), and constants
  (dashed: tensors that don't require grad, and plain arrays or numbers an op received).
  A tensor whose ``.grad`` is set (leaves after backward, ``retain_grad()`` tensors) shows the
  gradient's shape too.

The graph is found by following ``tensor.grad_fn`` and each node's ``parents`` with an explicit
queue (no recursion), so a 100,000-op chain is fine. Intermediate tensors are identified by the
node that made them: several ``Tensor`` objects that share a ``grad_fn`` are one box.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinynet.autograd import Function
from tinynet.errors import TinynetError
from tinynet.tensor import Tensor

__all__ = ["GraphvizNotFoundError", "render", "to_dot"]

FORMATS = ("svg", "png")

_STYLE = {
    "op": 'shape=ellipse, style=filled, fillcolor="lightyellow"',
    "output": 'shape=box, style="filled,bold", fillcolor="darkseagreen1"',
    "leaf": 'shape=box, style=filled, fillcolor="lightblue"',
    "intermediate": "shape=box",
    "constant": 'shape=box, style=dashed, fontcolor="gray30"',
}


class GraphvizNotFoundError(TinynetError, RuntimeError):
    """The Graphviz ``dot`` program, which ``render`` runs, is not installed."""


def to_dot(
    tensor: Tensor,
    show_data: bool = False,
    params: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]] | None = None,
) -> str:
    """The graph that computed ``tensor``, as Graphviz DOT text.

    Args:
        tensor: the result whose graph to draw (usually the loss).
        show_data: also print (abbreviated) values of every tensor and of its ``.grad``.
        params: names for leaf tensors, e.g. ``{"w": w}`` or ``model.named_parameters()``.

    Works before and after ``backward()``: backward frees saved arrays, not the graph's edges.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    names = {id(t): name for name, t in (dict(params) if params is not None else {}).items()}
    lines = [
        "digraph autograd {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [color="gray40"];',
    ]
    ids: dict[Any, str] = {}  # key of a tensor or op -> its DOT node id

    def declare(key: Any, kind: str, label_lines: list[str]) -> str:
        node_id = f"n{len(ids)}"
        ids[key] = node_id
        label = "\n".join(label_lines)
        lines.append(f'  "{node_id}" [label="{_escape(label)}", {_STYLE[kind]}];')
        return node_id

    def edge(tail: str, head: str) -> None:
        lines.append(f'  "{tail}" -> "{head}";')

    def op_node(node: Function) -> str:
        """Declare ``node`` (once) and queue it; return its id."""
        key = ("op", id(node))
        if key not in ids:
            label = [node.name]
            if getattr(node, "saved", ()) is None:
                label.append("saved values freed")
            declare(key, "op", label)
            queue.append(node)
        return ids[key]

    def tensor_node(t: Tensor, kind: str) -> str:
        """Declare ``t`` (once: by its grad_fn if it has one, else by identity)."""
        key = ("op-output", id(t.grad_fn)) if t.grad_fn is not None else ("tensor", id(t))
        if key in ids:
            return ids[key]
        if kind == "leaf" and id(t) in names:
            title = f"{names[id(t)]} (leaf)"
        else:
            title = {"output": "output", "leaf": "leaf", "constant": "constant"}.get(kind, "")
        label = ([title] if title else []) + [_type(t.shape, t.dtype)]
        if show_data:
            label.append(f"data {_values(t.data)}")
        if t.grad is not None:
            label.append(f"grad {_shape(t.grad.shape)}")
            if show_data:
                label.append(f"grad {_values(t.grad.data)}")
        node_id = declare(key, kind, label)
        if t.grad_fn is not None:
            edge(op_node(t.grad_fn), node_id)
        return node_id

    queue: deque[Function] = deque()
    tensor_node(tensor, "output")
    while queue:
        node = queue.popleft()
        here = ids[("op", id(node))]
        for position, parent in enumerate(node.parents):
            if parent is None:
                continue  # an optional input left out (linear without a bias)
            if isinstance(parent, Tensor):
                if parent.grad_fn is not None:
                    kind = "intermediate"
                else:
                    kind = "leaf" if parent.requires_grad else "constant"
                edge(tensor_node(parent, kind), here)
            else:
                edge(_constant_node(parent, (node, position), declare, show_data), here)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _constant_node(value: Any, key: Any, declare: Any, show_data: bool) -> str:
    """A plain array or number an op received: one box per use, the value shown if it is one
    number (``x * 2``) or if ``show_data``."""
    array = np.asarray(value)
    title = "constant"
    if array.size == 1:
        title += f" {array.item():.6g}" if array.dtype.kind in "fiub" else f" {array.item()!r}"
    label = [title, _type(array.shape, array.dtype)]
    if show_data and array.size > 1:
        label.append(f"data {_values(array)}")
    return declare(("constant", id(key[0]), key[1]), "constant", label)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


@functools.lru_cache(maxsize=64)
def _type(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``(2, 3) float32``; cached, as str(dtype) is slow and a graph repeats a few of these."""
    return f"{_shape(shape)} {dtype}"


def _values(array: np.ndarray) -> str:
    """At most a few numbers on one line: a label is not a printout."""
    text = np.array2string(
        np.asarray(array), threshold=6, edgeitems=2, separator=", ", max_line_width=10_000,
        formatter={"float_kind": lambda v: f"{v:.4g}"},
    )
    return " ".join(text.split())


def _escape(text: str) -> str:
    r"""A DOT double-quoted string: escape backslashes and quotes, newlines become ``\n``."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    tensor_or_dot: Tensor | str,
    path: str | os.PathLike[str],
    format: str | None = None,  # noqa: A002 - graphviz's and torchviz's name
    *,
    show_data: bool = False,
    params: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]] | None = None,
) -> Path:
    """Draw a graph (a Tensor's, or DOT text from ``to_dot``) to an SVG or PNG file.

    ``format`` is ``"svg"`` or ``"png"``; by default it comes from the file's suffix (``.svg``
    if there is none). Runs Graphviz's ``dot`` program, which must be on PATH. Returns the path.
    """
    path = Path(path)
    if format is None:
        format = path.suffix.lstrip(".").lower() or "svg"
    if format not in FORMATS:
        raise ValueError(f"render: format must be one of {FORMATS}, got {format!r}")
    if isinstance(tensor_or_dot, Tensor):
        dot_text = to_dot(tensor_or_dot, show_data=show_data, params=params)
    elif isinstance(tensor_or_dot, str):
        dot_text = tensor_or_dot
    else:
        raise TypeError(
            f"render: expected a Tensor or DOT text, got {type(tensor_or_dot).__name__}"
        )
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            "render: the Graphviz program `dot` was not found on PATH, so the graph can't be "
            "drawn. Install Graphviz (Debian/Ubuntu: `sudo apt-get install graphviz`; macOS: "
            "`brew install graphviz`; conda: `conda install -c conda-forge graphviz`; Windows: "
            "`winget install graphviz`), or save the text of tn.viz.to_dot(tensor) to a .dot "
            "file and open it in any Graphviz viewer."
        )
    result = subprocess.run(
        [program, f"-T{format}", "-o", str(path)],
        input=dot_text.encode("utf-8"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise TinynetError(
            f"render: `dot -T{format}` failed with exit code {result.returncode}: "
            f"{result.stderr.decode('utf-8', 'replace').strip()}"
        )
    return path
