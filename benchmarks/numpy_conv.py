"""The LeNet-sized convolutional training step in plain numpy, backprop by hand, and its data.

The workload (batch 64 of 1x28x28 images, 10 classes; float32 or float64 throughout)::

    conv 5x5, 1->6  -> relu -> max pool 2  -> (N, 6, 12, 12)
    conv 5x5, 6->16 -> relu -> max pool 2  -> (N, 16, 4, 4) -> flatten 256
    linear 256->120 -> relu -> linear 120->84 -> relu -> linear 84->10 -> cross-entropy

One step is forward, backward and an SGD update. This is what a careful numpy programmer
writes: im2col through a strided view (one copy), one batched matmul per convolution, col2im
as one slice-add per kernel tap, 2x2 max pooling by reshaping into blocks (the fast path that
only non-overlapping windows allow). Scalars are Python floats, which numpy 2 (NEP 50) never
lets upcast a float32 array. Layouts are PyTorch's: conv weight (out, in, k, k), linear
weight (out, in), every layer has a bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

KERNEL = 5
LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")
# Where each layer sits in the nn.Sequential of the tinynet and torch versions.
LENET_INDEX = {"conv1": 0, "conv2": 3, "fc1": 7, "fc2": 9, "fc3": 11}


@dataclass(frozen=True)
class LeNetSpec:
    """A LeNet workload: batch size, image side (square, one channel), dtype."""

    name: str
    batch: int
    side: int
    dtype: np.dtype
    classes: int = 10

    @property
    def sides(self) -> tuple[int, int, int, int]:
        """Spatial sides after conv1, pool1, conv2, pool2 (pooling floors, as PyTorch)."""
        c1 = self.side - KERNEL + 1
        p1 = c1 // 2
        c2 = p1 - KERNEL + 1
        return c1, p1, c2, c2 // 2

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Weight shape of every layer (PyTorch layouts)."""
        flat = 16 * self.sides[3] ** 2
        return {
            "conv1": (6, 1, KERNEL, KERNEL),
            "conv2": (16, 6, KERNEL, KERNEL),
            "fc1": (120, flat),
            "fc2": (84, 120),
            "fc3": (self.classes, 84),
        }

    @property
    def flops_per_step(self) -> int:
        """Matmul FLOPs in one step (2*m*n*k per matmul): every layer's forward and weight
        gradient, and the input gradient of every layer but the first."""
        c1, _, c2, _ = self.sides
        n, shapes = self.batch, self.shapes
        conv1 = 2 * n * 6 * KERNEL**2 * c1**2
        conv2 = 2 * n * 16 * 6 * KERNEL**2 * c2**2
        linear = sum(2 * n * int(np.prod(shapes[name])) for name in ("fc1", "fc2", "fc3"))
        return 2 * conv1 + 3 * conv2 + 3 * linear


def initial_weights(spec: LeNetSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch-style init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), keyed ``conv1.weight``...

    Drawn in float64 and then cast, so the float32 and float64 workloads start from the
    same numbers (up to rounding).
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in spec.shapes.items():
        bound = 1 / np.sqrt(np.prod(shape[1:]))
        weights[name + ".weight"] = rng.uniform(-bound, bound, shape).astype(spec.dtype)
        weights[name + ".bias"] = rng.uniform(-bound, bound, shape[0]).astype(spec.dtype)
    return weights


def make_images(spec: LeNetSpec, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal images (N, 1, side, side) and int64 labels (N,)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec.batch, 1, spec.side, spec.side)).astype(spec.dtype)
    return x, rng.integers(0, spec.classes, spec.batch).astype(np.int64)


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C*k*k, OH*OW), stride 1, no padding: one copy of a strided view."""
    n, c, h, w = x.shape
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, OH, OW, k, k)
    oh, ow = h - k + 1, w - k + 1
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, oh * ow)


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int) -> np.ndarray:
    """The adjoint of ``im2col``: every column entry is added back to the pixel it came from."""
    n, c, h, w = shape
    oh, ow = h - k + 1, w - k + 1
    cols = cols.reshape(n, c, k, k, oh, ow)
    x = np.zeros(shape, dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            x[:, :, i : i + oh, j : j + ow] += cols[:, :, i, j]
    return x


def max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling, stride 2 (odd edges dropped); returns the output and a one-hot mask
    (N, C, OH, OW, 4) of the first maximum of each window (ties go to the first, as PyTorch)."""
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    blocks = x[:, :, : 2 * oh, : 2 * ow].reshape(n, c, oh, 2, ow, 2)
    flat = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, 4)
    first = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(first, flat.argmax(axis=-1)[..., None], True, axis=-1)
    return flat.max(axis=-1), first


def max_unpool_2x2(grad: np.ndarray, first: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Route each window's gradient to its maximum; pixels in no window get zero."""
    n, c, oh, ow = grad.shape
    g = (first * grad[..., None]).reshape(n, c, oh, ow, 2, 2)
    out = np.zeros(shape, dtype=grad.dtype)
    out[:, :, : 2 * oh, : 2 * ow] = g.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * oh, 2 * ow)
    return out


class NumpyLeNet:
    """The LeNet step with hand-written backprop; ``step()`` trains on the fixed batch."""

    def __init__(
        self,
        spec: LeNetSpec,
        weights: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        lr: float,
    ) -> None:
        self.spec = spec
        self.w = {k: v.copy() for k, v in weights.items()}
        self.x, self.y, self.lr = x, y, float(lr)
        self.g: dict[str, np.ndarray] = {}
        self.loss = float("nan")

    def _conv(self, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        weight = self.w[name + ".weight"]
        o, _, k, _ = weight.shape
        cols = im2col(x, k)
        out = np.matmul(weight.reshape(o, -1), cols)  # (N, O, L)
        out += self.w[name + ".bias"][:, None]
        side = x.shape[2] - k + 1
        return out.reshape(x.shape[0], o, side, side), cols

    def _conv_backward(
        self, d: np.ndarray, cols: np.ndarray, name: str, input_shape: tuple[int, ...] | None
    ) -> np.ndarray | None:
        """Weight and bias gradients into ``self.g``; the input gradient unless not needed."""
        weight = self.w[name + ".weight"]
        o = weight.shape[0]
        dr = d.reshape(d.shape[0], o, -1)
        self.g[name + ".weight"] = np.einsum("nol,nkl->ok", dr, cols).reshape(weight.shape)
        self.g[name + ".bias"] = dr.sum(axis=(0, 2))
        if input_shape is None:
            return None
        return col2im(np.matmul(weight.reshape(o, -1).T, dr), input_shape, weight.shape[2])

    def step(self) -> None:
        w, x, y, n = self.w, self.x, self.y, self.x.shape[0]
        z1, cols1 = self._conv(x, "conv1")
        a1 = np.maximum(z1, 0)
        p1, m1 = max_pool_2x2(a1)
        z2, cols2 = self._conv(p1, "conv2")
        a2 = np.maximum(z2, 0)
        p2, m2 = max_pool_2x2(a2)
        f = p2.reshape(n, -1)
        h1 = np.maximum(f @ w["fc1.weight"].T + w["fc1.bias"], 0)
        h2 = np.maximum(h1 @ w["fc2.weight"].T + w["fc2.bias"], 0)
        logits = h2 @ w["fc3.weight"].T + w["fc3.bias"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        probs = e / e.sum(axis=1, keepdims=True)
        self.loss = float(-np.mean(np.log(probs[np.arange(n), y])))
        # backward: d(mean CE)/d logits = (softmax - onehot) / N
        d = probs
        d[np.arange(n), y] -= 1
        d /= n
        g = self.g
        g["fc3.weight"], g["fc3.bias"] = d.T @ h2, d.sum(0)
        d = (d @ w["fc3.weight"]) * (h2 > 0)
        g["fc2.weight"], g["fc2.bias"] = d.T @ h1, d.sum(0)
        d = (d @ w["fc2.weight"]) * (h1 > 0)
        g["fc1.weight"], g["fc1.bias"] = d.T @ f, d.sum(0)
        d = (d @ w["fc1.weight"]).reshape(p2.shape)
        d = max_unpool_2x2(d, m2, a2.shape) * (z2 > 0)
        d = self._conv_backward(d, cols2, "conv2", p1.shape)
        d = max_unpool_2x2(d, m1, a1.shape) * (z1 > 0)
        self._conv_backward(d, cols1, "conv1", None)
        for key, grad in g.items():
            w[key] -= self.lr * grad

    def loss_value(self) -> float:
        return self.loss

    def grads(self) -> dict[str, np.ndarray]:
        """The last step's gradients, keyed like the weights."""
        return {
            f"{layer}.{kind}": self.g[f"{layer}.{kind}"]
            for layer in LAYERS
            for kind in ("weight", "bias")
        }

    def arrays(self) -> list[np.ndarray]:
        """Every weight and gradient (to check that the dtype held)."""
        return [*self.w.values(), *self.g.values()]
