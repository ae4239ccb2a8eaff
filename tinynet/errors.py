"""tinynet's exception types.

Each one also subclasses the Python exception a numpy or PyTorch user would already catch, so
``except ValueError`` keeps working while ``except tinynet.TinynetError`` catches everything
tinynet raises on purpose.
"""

from __future__ import annotations


class TinynetError(Exception):
    """Base class of every error tinynet raises on purpose."""


class ShapeError(TinynetError, ValueError):
    """Shapes that do not fit together (broadcasting, matmul, reshape, loss targets...)."""


class IndexShapeError(ShapeError, IndexError):
    """A boolean mask whose shape differs from the dims it indexes (numpy and PyTorch raise
    IndexError there; this is one too)."""


class DTypeError(TinynetError, TypeError):
    """A dtype an operation cannot take (e.g. grad on an integer tensor, an object array)."""


class GraphError(TinynetError, RuntimeError):
    """Misuse of the autograd graph (backward twice, in-place edit of a saved tensor...)."""


class AnomalyError(TinynetError, RuntimeError):
    """A NaN or inf produced while anomaly detection is on."""


class GradcheckError(TinynetError, RuntimeError):
    """Autograd and finite differences disagree."""


class FileFormatError(TinynetError, ValueError):
    """A weight file that is missing, truncated, corrupt or unsafe to load."""


class ValueRangeError(TinynetError, ValueError):
    """A value outside the range an operation accepts: a probability outside [0, 1] given to a
    binary cross-entropy, a negative or NaN learning rate, a batch size of 0, an empty list of
    tensors to concatenate... (Also ``tinynet.nn.ValueRangeError``.)"""


class ClassIndexError(ValueRangeError, IndexError):
    """A class index outside 0..C-1 given to cross_entropy or nll_loss (PyTorch raises
    IndexError here, so this is one too)."""


class StateDictError(TinynetError, ValueError, RuntimeError):
    """A state dict that does not fit: missing or unexpected keys, parameter groups of the
    wrong size. PyTorch raises RuntimeError for modules and ValueError for optimizers; this is
    both, so either ``except`` keeps working."""


def shape_str(*arrays_or_shapes: object) -> str:
    """Format shapes for messages: ``(2, 3) and (4, 5)``."""
    shapes = [getattr(a, "shape", a) for a in arrays_or_shapes]
    return " and ".join(str(tuple(s)) for s in shapes)


def explain(op: type, arrays: list[object], error: ValueError) -> Exception:
    """numpy's message from inside an op's forward names neither the op nor the user's shapes;
    this one does both. ``op`` is the Function class (its ``op`` name and ``shape_error``)."""
    if isinstance(error, TinynetError):
        return error
    text = str(error)
    shapes = shape_str(*(a for a in arrays if hasattr(a, "shape")))
    if any(word in text for word in ("broadcast", "mismatch", "shape", "dimension", "size")):
        wrong = getattr(op, "shape_error", "are not compatible")
        return ShapeError(f"{op.op}: shapes {shapes} {wrong} (numpy: {text})")  # type: ignore
    return type(error)(f"{op.op}: {text} (input shapes {shapes})")  # type: ignore


class DTypeMismatchError(DTypeError, RuntimeError):
    """Two tensors an op needs in one dtype arrive in two (``x_float64 @ w_float32``,
    ``nn.Linear`` on an int input). PyTorch raises RuntimeError here, so this is one too."""


class CompileError(TinynetError, RuntimeError):
    """``tn.compile`` cannot trace a function: it reads a tensor's value while tracing
    (``.item()``, ``bool(t)``, ``print``), branches on data, or edits an outside tensor in place.
    The message names the function and the line."""


# The autograd engine's three refusals, worded here so the engine reads as the algorithm.


def freed(node: str) -> GraphError:
    return GraphError(
        f"{node}: trying to backward through the graph a second time (or after the saved "
        "values were freed). Specify retain_graph=True on the first backward() if you need to "
        "backward twice."
    )


def modified_in_place(node: str, now: int, expected: int) -> GraphError:
    return GraphError(
        f"{node}: one of the tensors saved for its backward has been modified by an in-place "
        f"operation (it is at version {now}; expected version {expected}). Don't modify "
        "tensors in place between forward and backward, or clone() them first."
    )


def not_savable(op: str) -> GraphError:
    return GraphError(
        f"{op}: save_for_backward accepts the op's inputs or its output only; keep other "
        "values as attributes of ctx (ctx.mask = ...)"
    )
