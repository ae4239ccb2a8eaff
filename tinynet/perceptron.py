"""The first artificial neurons: McCulloch and Pitts (1943) and Rosenblatt's perceptron (1958).

Both are *threshold units*: they add up weighted inputs and fire (output 1) when the sum is
large enough, otherwise stay silent (0).

- ``MCPNeuron(weights, threshold)``: the McCulloch-Pitts neuron. Binary inputs, fixed weights
  set by hand, fires when  sum_i w_i x_i >= threshold.  Nothing is learned.
- ``perceptron_rule``: Rosenblatt's learning rule, written out in plain Python. For each
  sample x with target t (0 or 1):

      y = step(w.x + b)                step(z) = 1 if z >= 0 else 0
      w <- w + lr (t - y) x            b <- b + lr (t - y)

  applied sample by sample. It only changes the weights when it makes a mistake (t != y). If a
  line (a hyperplane) separates the two classes, the rule finds one in finitely many updates
  (the perceptron convergence theorem). If none exists -- XOR -- it never stops making
  mistakes, so training stops at ``max_epochs`` and reports that it did not converge.
- ``Perceptron(n_inputs)``: Rosenblatt's perceptron. Real inputs, a weight vector ``w`` and a
  bias ``b`` (the threshold moved to the left side: w.x + b >= 0); ``fit`` trains it with the
  rule above.
- ``mcp_gate`` / ``perceptron_gate``: AND, OR, NAND (and NOT) with hand-set weights, and
  ``xor_network``: XOR = AND(NAND(a, b), OR(a, b)), a two-layer network of threshold units.
  No single unit computes XOR; two layers do.

Speed: ``Perceptron.fit`` calls ``tinynet.kernels.perceptron_fit``, which runs
``perceptron_rule`` itself on small inputs (the logic gates) and, on large ones, a numba
kernel doing the same arithmetic in the same order (so the weights agree to the last bit),
about 90 times faster. ``TINYNET_NUMBA=0`` always runs ``perceptron_rule``.

This module uses numpy arrays: inputs may be arrays, lists or Tensors; results are arrays.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.errors import DTypeError, ShapeError
from tinynet.kernels import reference
from tinynet.random import get_generator

__all__ = [
    "DecisionBoundary",
    "FitResult",
    "MCPNeuron",
    "Perceptron",
    "TwoLayerNetwork",
    "format_truth_table",
    "mcp_gate",
    "perceptron_gate",
    "perceptron_rule",
    "truth_table",
    "xor_network",
]


# ----------------------------------------------------------------------------- helpers


def _as_array(x: Any, what: str, op: str) -> np.ndarray:
    """Arrays, lists and Tensors (with or without a graph) as a numeric numpy array."""
    from tinynet.tensor import Tensor

    if isinstance(x, Tensor):
        x = x.data  # the values only: nothing here is differentiated
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise DTypeError(f"{op}: {what} must be numbers, got {type(x).__name__} ({e})") from e
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"{op}: {what} must hold numbers, got dtype {array.dtype}")
    return array


def _inputs(x: Any, n_inputs: int, op: str) -> tuple[np.ndarray, bool]:
    """x as a float64 (N, n_inputs) matrix, and whether it was a single sample (n_inputs,)."""
    X = _as_array(x, "inputs", op)
    single = X.ndim == 1
    if single:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != n_inputs:
        raise ShapeError(
            f"{op}: inputs must have shape (N, {n_inputs}) or ({n_inputs},), got {X.shape}"
        )
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{op}: inputs contain NaN or infinity")
    return X, single


def _binary_targets(y: Any, n_samples: int, op: str) -> np.ndarray:
    """y as an int64 (N,) vector of 0s and 1s; (N, 1) columns are accepted too."""
    t = _as_array(y, "targets", op)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != (n_samples,):
        raise ShapeError(
            f"{op}: targets must have shape ({n_samples},) to match X's {n_samples} rows, "
            f"got {t.shape}"
        )
    if not np.all((t == 0) | (t == 1)):
        bad = np.unique(t[(t != 0) & (t != 1)])[:5].tolist()
        hint = " (for -1/+1 labels use (y + 1) // 2)" if np.all((t == -1) | (t == 1)) else ""
        raise ValueError(f"{op}: targets must be 0 or 1, found {bad}{hint}")
    return t.astype(np.int64)


def _binary_inputs(x: Any, n_inputs: int, op: str) -> tuple[np.ndarray, bool]:
    X = _as_array(x, "inputs", op)
    if not np.all((X == 0) | (X == 1)):
        raise ValueError(f"{op}: inputs must be binary (0 or 1), got {np.unique(X)[:5].tolist()}")
    X, single = _inputs(X, n_inputs, op)
    return X.astype(np.int64), single


def _step(z: np.ndarray) -> np.ndarray:
    """Heaviside step with step(0) = 1, as integers 0/1."""
    return (z >= 0).astype(np.int64)


# ----------------------------------------------------------------------------- McCulloch-Pitts


class MCPNeuron:
    """The McCulloch-Pitts neuron (1943): binary inputs x_i in {0, 1}, fixed weights w_i
    (+1 excitatory, -1 inhibitory, or any number), and a threshold theta:

        output = 1  if  sum_i w_i x_i >= theta  else 0

    ``neuron(x)`` takes one input vector (n,) and returns an int, or a batch (N, n) and returns
    an int64 array (N,).

    >>> AND = MCPNeuron([1, 1], threshold=2)
    >>> AND([1, 1]), AND([1, 0])
    (1, 0)
    """

    def __init__(self, weights: Sequence[float], threshold: float) -> None:
        w = _as_array(weights, "weights", "MCPNeuron")
        if w.ndim != 1 or w.size == 0:
            raise ShapeError(f"MCPNeuron: weights must be a non-empty list, got shape {w.shape}")
        if not math.isfinite(float(threshold)):
            raise ValueError(f"MCPNeuron: threshold must be a finite number, got {threshold}")
        self.weights = w.astype(np.float64)
        self.threshold = float(threshold)

    @property
    def n_inputs(self) -> int:
        return self.weights.size

    def __call__(self, x: Any) -> Any:
        X, single = _binary_inputs(x, self.n_inputs, "MCPNeuron")
        fired = (X @ self.weights >= self.threshold).astype(np.int64)
        return int(fired[0]) if single else fired

    def truth_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every binary input (2^n, n) in counting order, and the output for each (2^n,)."""
        return truth_table(self, self.n_inputs)

    def __repr__(self) -> str:
        weights = ", ".join(f"{w:g}" for w in self.weights)
        return f"MCPNeuron(weights=[{weights}], threshold={self.threshold:g})"


# ----------------------------------------------------------------------------- Rosenblatt


# Rosenblatt's rule, written out in plain Python, lives with the kernels as the twin of the
# compiled perceptron (tinynet/kernels/reference.py): read it there. The two share one text,
# so the logic gates (small inputs) run exactly this code.
perceptron_rule = reference.perceptron_fit


@dataclass(frozen=True, eq=False)  # eq=False: == on the array field would be ambiguous
class FitResult:
    """What ``Perceptron.fit`` did: whether an epoch went by with no mistakes (``converged``),
    how many epochs ran, and the number of mistakes (= updates) in each epoch."""

    converged: bool
    epochs: int
    errors_per_epoch: np.ndarray

    def __str__(self) -> str:
        if self.converged:
            return f"converged after {self.epochs} epochs (the last one made no mistakes)"
        return (
            f"did not converge in {self.epochs} epochs "
            f"({int(self.errors_per_epoch[-1])} mistakes during the last one)"
        )


@dataclass(frozen=True)
class DecisionBoundary:
    """The line w0 x + w1 y + b = 0 where a 2-input perceptron changes its answer.

    Points with w0 x + w1 y + b >= 0 are class 1. For w1 != 0 the line is
    y = slope x + intercept with slope = -w0 / w1 and intercept = -b / w1; for w1 = 0 it is
    vertical, x = x_intercept = -b / w0 (``slope`` and ``intercept`` are then None).
    """

    weight: tuple[float, float]
    bias: float

    @property
    def vertical(self) -> bool:
        return self.weight[1] == 0.0

    @property
    def slope(self) -> float | None:
        return None if self.vertical else -self.weight[0] / self.weight[1]

    @property
    def intercept(self) -> float | None:
        return None if self.vertical else -self.bias / self.weight[1]

    @property
    def x_intercept(self) -> float | None:
        """Where the line crosses y = 0 (None when it is horizontal)."""
        return None if self.weight[0] == 0.0 else -self.bias / self.weight[0]

    def y_at(self, x: Any) -> np.ndarray:
        """y on the line at each x. A vertical line has no y(x): use ``x_intercept``."""
        if self.vertical:
            raise ValueError(
                f"DecisionBoundary.y_at: the line is vertical (x = {self.x_intercept:g}); "
                "use x_intercept"
            )
        return self.slope * np.asarray(x, dtype=np.float64) + self.intercept

    def segment(
        self, xlim: tuple[float, float], ylim: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The part of the line inside the box xlim x ylim, as (xs, ys) of its two ends (for
        plotting), or None if the line misses the box."""
        (x0, x1), (y0, y1) = xlim, ylim
        w0, w1 = self.weight
        ends: list[tuple[float, float]] = []
        if w1 != 0.0:  # crossings with the left and right edges
            ends += [(x, float(self.y_at(x))) for x in (x0, x1)]
        if w0 != 0.0:  # crossings with the bottom and top edges
            ends += [(-(w1 * y + self.bias) / w0, y) for y in (y0, y1)]
        tol = 1e-12 * max(1.0, abs(x1 - x0), abs(y1 - y0))
        inside = sorted(
            {(x, y) for x, y in ends if x0 - tol <= x <= x1 + tol and y0 - tol <= y <= y1 + tol}
        )
        if len(inside) < 2:
            return None
        (xa, ya), (xb, yb) = inside[0], inside[-1]
        return np.array([xa, xb]), np.array([ya, yb])

    def __str__(self) -> str:
        if self.vertical:
            return f"x = {self.x_intercept:.4g}"
        sign = "-" if self.intercept < 0 else "+"
        return f"y = {self.slope:.4g} x {sign} {abs(self.intercept):.4g}"


class Perceptron:
    """Rosenblatt's perceptron: y_hat = step(w . x + b), trained by the perceptron rule.

    Args:
        n_inputs: F, the number of inputs.
        lr: the learning rate (step size of each correction).
        seed: an int, a numpy Generator, or None for tinynet's global generator
            (``tn.manual_seed``). Draws the initial weights and bias from U(-0.5, 0.5).

    Attributes: ``weight`` (F,) float64, ``bias`` float, and after ``fit``: ``converged_``,
    ``epochs_``, ``errors_per_epoch_`` (as in the returned ``FitResult``).
    """

    def __init__(self, n_inputs: int, lr: float = 0.1, seed: Any = None) -> None:
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, int | np.integer):
            raise TypeError(f"Perceptron: n_inputs must be an int, got {n_inputs!r}")
        if n_inputs < 1:
            raise ValueError(f"Perceptron: n_inputs must be at least 1, got {n_inputs}")
        is_number = isinstance(lr, numbers.Real) and not isinstance(lr, bool)
        if not (is_number and math.isfinite(lr) and lr > 0):
            raise ValueError(f"Perceptron: lr must be a positive number, got {lr!r}")
        self.n_inputs = int(n_inputs)
        self.lr = float(lr)
        rng = get_generator(seed)
        self.weight = rng.uniform(-0.5, 0.5, size=self.n_inputs)
        self.bias = float(rng.uniform(-0.5, 0.5))
        self.converged_: bool | None = None
        self.epochs_: int | None = None
        self.errors_per_epoch_: np.ndarray | None = None

    @classmethod
    def from_weights(cls, weight: Sequence[float], bias: float) -> Perceptron:
        """A perceptron with hand-set weights (no training needed)."""
        w = _as_array(weight, "weight", "Perceptron.from_weights").astype(np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ShapeError(
                f"Perceptron.from_weights: weight must be a non-empty vector, got shape {w.shape}"
            )
        p = cls(w.size, seed=0)
        p.weight = w.copy()
        p.bias = float(bias)
        return p

    def fit(self, X: Any, y: Any, max_epochs: int = 100) -> FitResult:
        """Run the perceptron rule over X (N, F) with targets y (N,) in {0, 1}, one sample at a
        time in order, starting from the current weights. Stops after the first epoch with no
        mistakes, or after ``max_epochs`` epochs (then ``converged`` is False: on data that no
        line separates, such as XOR, the rule would go on forever).
        """
        X_, _ = _inputs(X, self.n_inputs, "Perceptron.fit")
        if X_.shape[0] == 0:
            raise ValueError("Perceptron.fit: X has no rows; give at least one sample")
        y_ = _binary_targets(y, X_.shape[0], "Perceptron.fit")
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int | np.integer):
            raise TypeError(f"Perceptron.fit: max_epochs must be an int, got {max_epochs!r}")
        if max_epochs < 1:
            raise ValueError(f"Perceptron.fit: max_epochs must be at least 1, got {max_epochs}")
        # perceptron_rule above; on large inputs, the same rule compiled by numba.
        w = np.ascontiguousarray(self.weight, dtype=np.float64)
        b, epochs, converged, errors = kernels.perceptron_fit(
            np.ascontiguousarray(X_), y_, w, self.bias, self.lr, int(max_epochs)
        )
        self.weight, self.bias = w, float(b)
        self.converged_, self.epochs_ = bool(converged), int(epochs)
        self.errors_per_epoch_ = np.asarray(errors, dtype=np.int64)
        return FitResult(self.converged_, self.epochs_, self.errors_per_epoch_)

    def decision_function(self, X: Any) -> Any:
        """w . x + b for each row of X (N, F) -> (N,), or a float for one sample (F,)."""
        X_, single = _inputs(X, self.n_inputs, "Perceptron.decision_function")
        z = X_ @ self.weight + self.bias
        return float(z[0]) if single else z

    def predict(self, X: Any) -> Any:
        """step(w . x + b): 0/1 as int64 (N,) for X (N, F), or an int for one sample (F,)."""
        X_, single = _inputs(X, self.n_inputs, "Perceptron.predict")
        out = _step(X_ @ self.weight + self.bias)
        return int(out[0]) if single else out

    __call__ = predict

    def decision_boundary(self) -> DecisionBoundary | None:
        """The line w . x + b = 0 of a 2-input perceptron, or None when w = 0 (then there is
        no line: every input gets the same answer, step(b))."""
        if self.n_inputs != 2:
            raise ShapeError(
                f"Perceptron.decision_boundary: a line exists for 2 inputs, this perceptron "
                f"has {self.n_inputs}"
            )
        if not np.any(self.weight):
            return None
        return DecisionBoundary((float(self.weight[0]), float(self.weight[1])), self.bias)

    def truth_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every binary input (2^F, F) in counting order, and the prediction for each."""
        return truth_table(self, self.n_inputs)

    def __repr__(self) -> str:
        w = ", ".join(f"{v:.4g}" for v in self.weight)
        return f"Perceptron(weight=[{w}], bias={self.bias:.4g}, lr={self.lr:g})"


# ----------------------------------------------------------------------------- logic gates

# McCulloch-Pitts gates: weights (+1 excitatory, -1 inhibitory) and a threshold.
MCP_GATES: dict[str, tuple[tuple[int, ...], int]] = {
    "AND": ((1, 1), 2),  # both inputs on
    "OR": ((1, 1), 1),  # at least one on
    "NAND": ((-1, -1), -1),  # not both on: -a - b >= -1
    "NOT": ((-1,), 0),  # -a >= 0 only when a = 0
}

# The same gates as perceptrons: w . x + b >= 0, the threshold moved into the bias and set
# halfway between the sums that must fire and those that must not, for a margin of 0.5.
PERCEPTRON_GATES: dict[str, tuple[tuple[float, ...], float]] = {
    "AND": ((1.0, 1.0), -1.5),
    "OR": ((1.0, 1.0), -0.5),
    "NAND": ((-1.0, -1.0), 1.5),
    "NOT": ((-1.0,), 0.5),
}


def _gate_name(name: str, table: dict[str, Any], op: str) -> str:
    key = str(name).upper()
    if key not in table:
        raise ValueError(f"{op}: unknown gate {name!r}; choose one of {sorted(table)}")
    return key


def mcp_gate(name: str) -> MCPNeuron:
    """AND, OR, NAND or NOT as a McCulloch-Pitts neuron with hand-set weights."""
    weights, threshold = MCP_GATES[_gate_name(name, MCP_GATES, "mcp_gate")]
    return MCPNeuron(weights, threshold)


def perceptron_gate(name: str) -> Perceptron:
    """AND, OR, NAND or NOT as a perceptron with hand-set weights and bias."""
    weight, bias = PERCEPTRON_GATES[_gate_name(name, PERCEPTRON_GATES, "perceptron_gate")]
    return Perceptron.from_weights(weight, bias)


ThresholdUnit = Callable[[Any], Any]


class TwoLayerNetwork:
    """Threshold units in two layers: each hidden unit sees the inputs, the output unit sees
    the hidden units' 0/1 answers.

        h = (hidden_1(x), ..., hidden_H(x))      y = output(h)
    """

    def __init__(self, hidden: Sequence[ThresholdUnit], output: ThresholdUnit) -> None:
        if len(hidden) == 0:
            raise ValueError("TwoLayerNetwork: needs at least one hidden unit")
        self.hidden = list(hidden)
        self.output = output
        self.n_inputs = int(getattr(self.hidden[0], "n_inputs", 2))

    def hidden_activations(self, X: Any) -> np.ndarray:
        """The hidden layer's answers, (N, H) int64 for X (N, n_inputs)."""
        X_, _ = _inputs(X, self.n_inputs, "TwoLayerNetwork")
        return np.stack([np.asarray(unit(X_), dtype=np.int64) for unit in self.hidden], axis=1)

    def __call__(self, X: Any) -> Any:
        X_, single = _inputs(X, self.n_inputs, "TwoLayerNetwork")
        out = np.asarray(self.output(self.hidden_activations(X_)), dtype=np.int64)
        return int(out[0]) if single else out

    def truth_table(self) -> tuple[np.ndarray, np.ndarray]:
        return truth_table(self, self.n_inputs)


def xor_network(kind: str = "perceptron") -> TwoLayerNetwork:
    """XOR(a, b) = AND(NAND(a, b), OR(a, b)): NAND and OR in the hidden layer, AND on top.
    ``kind`` picks the units: "perceptron" (hand-set perceptrons) or "mcp" (MCP neurons)."""
    if kind == "perceptron":
        make: Callable[[str], ThresholdUnit] = perceptron_gate
    elif kind == "mcp":
        make = mcp_gate
    else:
        raise ValueError(f"xor_network: kind must be 'perceptron' or 'mcp', got {kind!r}")
    return TwoLayerNetwork(hidden=[make("NAND"), make("OR")], output=make("AND"))


# ----------------------------------------------------------------------------- truth tables


def truth_table(fn: Callable[[Any], Any], n_inputs: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Feed every binary input to ``fn`` (which maps a batch (2^n, n) to (2^n,) answers).

    Returns the inputs (2^n, n) int64 in counting order (00, 01, 10, 11 for n = 2) and the
    outputs (2^n,) int64.
    """
    inputs = np.array(list(itertools.product((0, 1), repeat=n_inputs)), dtype=np.int64)
    outputs = np.asarray(fn(inputs)).astype(np.int64).reshape(len(inputs))
    return inputs, outputs


def format_truth_table(
    inputs: np.ndarray,
    outputs: np.ndarray | Mapping[str, np.ndarray],
    names: Sequence[str] | None = None,
    output_name: str = "out",
    extra: Mapping[str, np.ndarray] | None = None,
) -> str:
    """A truth table as aligned text, one row per input:

        a  b | out
        0  0 |   0

    ``outputs`` is one column (named ``output_name``) or a dict of named columns;
    ``extra`` adds columns between the inputs and the outputs (e.g. hidden units).
    """
    inputs = np.asarray(inputs)
    names = list(names) if names is not None else ["abcdefgh"[i] for i in range(inputs.shape[1])]
    if not isinstance(outputs, Mapping):
        outputs = {output_name: outputs}
    groups = [
        (names, [inputs[:, j] for j in range(inputs.shape[1])]),
        (list(extra or {}), [np.asarray(v) for v in (extra or {}).values()]),
        (list(outputs), [np.asarray(v) for v in outputs.values()]),
    ]
    groups = [(header, cols) for header, cols in groups if header]

    def cell(v: Any) -> str:
        return str(int(v)) if float(v).is_integer() else f"{float(v):.3f}"

    def line(cells_per_group: list[list[str]]) -> str:
        return " | ".join("  ".join(cells) for cells in cells_per_group)

    widths = [
        [max(len(h), *(len(cell(v)) for v in col)) for h, col in zip(header, cols, strict=True)]
        for header, cols in groups
    ]
    rows = [line([[h.rjust(w) for h, w in zip(header, ws, strict=True)]
                  for (header, _), ws in zip(groups, widths, strict=True)])]
    for i in range(len(inputs)):
        rows.append(line([[cell(col[i]).rjust(w) for col, w in zip(cols, ws, strict=True)]
                          for (_, cols), ws in zip(groups, widths, strict=True)]))
    return "\n".join(rows)
