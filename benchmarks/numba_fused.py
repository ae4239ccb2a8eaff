"""The "limit" row of the XOR workload: the whole training step fused by hand into one numba
function (forward, MSE, backward, SGD), float32.

It is what a compiler for this step could reach at best on one core: one call from Python,
no allocation, every loop in registers. ``numba-fused`` in the xor-f32 table; the startup
section also times its compilation in a fresh interpreter beside tn.compile's.

``xor_step`` is plain Python; ``compiled_step()`` hands it to ``numba.njit`` (so the startup
script can compile the same function cold in a fresh interpreter and time that).
"""

from __future__ import annotations

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


_compiled: list[Any] = []


def compiled_step() -> Any:
    """``xor_step`` under ``numba.njit`` (compiled on its first call, once per process)."""
    if not _compiled:
        from numba import njit

        _compiled.append(njit(error_model="numpy")(xor_step))
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
        self.weights = [a.copy() for a in (w1, b1, w2, b2)]
        self.grads = [np.empty_like(a) for a in self.weights]
        self.x, self.y = x, y
        self.h = np.empty((x.shape[0], w1.shape[0]), np.float32)
        self.dh = np.empty_like(self.h)
        self.lr = np.float32(lr)
        self.loss = np.float32(np.nan)
        self.kernel = compiled_step()
        w1_, b1_, w2_, b2_ = self.weights
        gw1, gb1, gw2, gb2 = self.grads
        self.args = (x, y, w1_, b1_, w2_, b2_, self.h, self.dh, gw1, gb1, gw2, gb2, self.lr)

    def step(self) -> None:
        self.loss = self.kernel(*self.args)

    def loss_value(self) -> float:
        return float(self.loss)

    def check_dtypes(self) -> None:
        for array in (*self.weights, *self.grads, self.h, self.dh):
            if array.dtype != np.float32:
                raise AssertionError(f"{NAME}: an array is {array.dtype}, expected float32")
