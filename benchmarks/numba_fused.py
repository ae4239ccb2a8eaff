"""The "limit" row of the XOR workload: the whole training step fused by hand into one numba
function (forward, MSE, backward, SGD), float32.

It is what a compiler for this step could reach at best on one core: one call from Python,
no allocation, every loop in registers. ``numba-fused`` in the xor-f32 table; the startup
section also times its compilation in a fresh interpreter beside tn.compile's.

numba's dispatcher costs per argument on every call (typing each array: about 4 us for 13
arrays against 1.1 us for 2 on the project's VM), more than the XOR step's arithmetic. So
every array of the step (data, weights, buffers, gradients, learning rate) lives in one
float32 buffer, ``state``, laid out by ``layout``; the call from Python passes that buffer
and the four sizes, and ``packed_step`` cuts the named views out of it inside numba.

``xor_step`` is plain Python on named arrays; ``compiled_step()`` hands it and
``packed_step`` to ``numba.njit`` (so the startup script can compile the same functions cold
in a fresh interpreter and time that).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .numpy_ref import MLPSpec, Params

NAME = "numba-fused"


def xor_step(
    x: np.ndarray,
    y: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    h: np.ndarray,
    dh: np.ndarray,
    gw1: np.ndarray,
    gb1: np.ndarray,
    gw2: np.ndarray,
    gb2: np.ndarray,
    lr: Any,
) -> Any:
    """One SGD step of ``sigmoid(sigmoid(x @ w1.T + b1) @ w2.T + b2)`` under the mean squared
    error against ``y``; updates the weights in place, returns the loss before the update.

    Shapes: x (n, i), y (n, o), w1 (k, i), b1 (k,), w2 (o, k), b2 (o,); buffers h and dh
    (n, k) and the gradients shaped like their weights.

        o   = sigmoid(z2),  L = mean((o - y)^2) over n*o entries
        dz2 = 2 (o - y) / (n*o) * o (1 - o);   gw2 = dz2^T h,  gb2 = sum dz2
        dz1 = (dz2 @ w2) * h (1 - h);          gw1 = dz1^T x,  gb1 = sum dz1
    """
    n, n_in = x.shape
    hidden, n_out = w1.shape[0], w2.shape[0]
    one = np.float32(1.0)
    scale = np.float32(2.0) / np.float32(n * n_out)
    gw1[:] = 0
    gb1[:] = 0
    gw2[:] = 0
    gb2[:] = 0
    dh[:] = 0
    loss = np.float32(0.0)
    for i in range(n):
        for j in range(hidden):
            z = b1[j]
            for m in range(n_in):
                z += x[i, m] * w1[j, m]
            h[i, j] = one / (one + np.exp(-z))
        for j in range(n_out):
            z = b2[j]
            for k in range(hidden):
                z += h[i, k] * w2[j, k]
            o = one / (one + np.exp(-z))
            d = o - y[i, j]
            loss += d * d
            dz = scale * d * o * (one - o)
            gb2[j] += dz
            for k in range(hidden):
                gw2[j, k] += dz * h[i, k]
                dh[i, k] += dz * w2[j, k]
        for k in range(hidden):
            dz = dh[i, k] * h[i, k] * (one - h[i, k])
            gb1[k] += dz
            for m in range(n_in):
                gw1[k, m] += dz * x[i, m]
    for j in range(hidden):
        b1[j] -= lr * gb1[j]
        for m in range(n_in):
            w1[j, m] -= lr * gw1[j, m]
    for j in range(n_out):
        b2[j] -= lr * gb2[j]
        for k in range(hidden):
            w2[j, k] -= lr * gw2[j, k]
    return loss / np.float32(n * n_out)


def layout(n: int, n_in: int, hidden: int, n_out: int) -> list[tuple[str, tuple[int, ...]]]:
    """The arrays in ``state``, in order, with their shapes (``lr`` is one element)."""
    return [
        ("x", (n, n_in)), ("y", (n, n_out)), ("w1", (hidden, n_in)), ("b1", (hidden,)),
        ("w2", (n_out, hidden)), ("b2", (n_out,)), ("h", (n, hidden)), ("dh", (n, hidden)),
        ("gw1", (hidden, n_in)), ("gb1", (hidden,)), ("gw2", (n_out, hidden)),
        ("gb2", (n_out,)), ("lr", (1,)),
    ]  # fmt: skip


def make_packed_step(step: Callable[..., Any]) -> Callable[[np.ndarray, np.ndarray], Any]:
    """``packed_step(state, dims)``: ``step`` on the views ``layout`` names inside ``state``,
    ``dims = [n, n_in, hidden, n_out]``. ``step`` is ``xor_step`` (or its numba version)."""

    def packed_step(state: np.ndarray, dims: np.ndarray) -> Any:
        n, n_in, hidden, n_out = dims[0], dims[1], dims[2], dims[3]
        a = n * n_in
        b = a + n * n_out
        c = b + hidden * n_in
        d = c + hidden
        e = d + n_out * hidden
        f = e + n_out
        g = f + n * hidden
        h = g + n * hidden
        i = h + hidden * n_in
        j = i + hidden
        k = j + n_out * hidden
        m = k + n_out
        return step(
            state[:a].reshape((n, n_in)), state[a:b].reshape((n, n_out)),
            state[b:c].reshape((hidden, n_in)), state[c:d],
            state[d:e].reshape((n_out, hidden)), state[e:f],
            state[f:g].reshape((n, hidden)), state[g:h].reshape((n, hidden)),
            state[h:i].reshape((hidden, n_in)), state[i:j],
            state[j:k].reshape((n_out, hidden)), state[k:m], state[m],
        )  # fmt: skip

    return packed_step


_compiled: list[Any] = []


def compiled_step() -> Any:
    """``packed_step`` over ``xor_step``, both under ``numba.njit`` (compiled on the first
    call, once per process)."""
    if not _compiled:
        from numba import njit

        inner = njit(error_model="numpy")(xor_step)
        _compiled.append(njit(error_model="numpy")(make_packed_step(inner)))
    return _compiled[0]


def supports(spec: MLPSpec) -> str | None:
    """None when the hand-fused step computes ``spec``'s workload, else why not."""
    if len(spec.sizes) != 3 or spec.loss != "mse":
        return "written for a 2-layer sigmoid network with MSE (the XOR workload) only"
    if spec.dtype != np.float32:
        return "written for float32"
    return None


class NumbaFusedMLP:
    """The XOR step as one numba call; same interface as ``numpy_ref.NumpyMLP``."""

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        problem = supports(spec)
        if problem is not None:
            raise ValueError(f"{NAME}: {problem}")
        (w1, b1), (w2, b2) = params
        self.dims = np.array([x.shape[0], x.shape[1], w1.shape[0], w2.shape[0]], np.int64)
        shapes = layout(*(int(v) for v in self.dims))
        self.state = np.zeros(sum(math.prod(shape) for _, shape in shapes), np.float32)
        self.views: dict[str, np.ndarray] = {}
        start = 0
        for name, shape in shapes:
            size = math.prod(shape)
            self.views[name] = self.state[start : start + size].reshape(shape)
            start += size
        for name, value in (("x", x), ("y", y), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2),
                            ("lr", lr)):
            self.views[name][...] = value
        self.weights = [self.views[k] for k in ("w1", "b1", "w2", "b2")]
        self.loss = np.nan
        self.kernel = compiled_step()

    def step(self) -> None:
        self.loss = self.kernel(self.state, self.dims)

    def loss_value(self) -> float:
        return float(self.loss)

    def check_dtypes(self) -> None:
        if self.state.dtype != np.float32:
            raise AssertionError(f"{NAME}: the state is {self.state.dtype}, expected float32")
