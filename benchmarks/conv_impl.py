"""A LeNet-sized convolutional training step three ways: tinynet, hand-written numpy
(im2col + BLAS, backprop by hand), and PyTorch (oneDNN convolutions: the upper anchor).

The workload (float32 throughout; batch 64 of 1x28x28 images, 10 classes)::

    conv 5x5, 1->6  -> relu -> max pool 2  -> (64, 6, 12, 12)
    conv 5x5, 6->16 -> relu -> max pool 2  -> (64, 16, 4, 4) -> flatten 256
    linear 256->120 -> relu -> linear 120->84 -> relu -> linear 84->10 -> cross-entropy

One step is forward, backward and an SGD update (lr 0.01). All three start from the same
weights and see the same batch; ``check()`` verifies they compute the same loss and
gradients before anything is timed.

    python -m benchmarks.conv_impl            # interleaved timing, prints ms/step and ratios
    python -m benchmarks.conv_impl --rounds 5 --steps 10

The numpy reference is what a careful numpy programmer writes: im2col through a strided view
(one copy), one batched matmul per layer, col2im as one slice-add per kernel tap, 2x2 max
pooling by reshaping into blocks (the fast path that only non-overlapping windows allow),
buffers reused where it is simple.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BATCH, SIDE, CLASSES, LR = 64, 28, 10, 0.01
SHAPES = {  # name -> weight shape (PyTorch layouts); every layer has a bias
    "conv1": (6, 1, 5, 5), "conv2": (16, 6, 5, 5),
    "fc1": (120, 256), "fc2": (84, 120), "fc3": (10, 84),
}


def initial_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch-like uniform init in +-1/sqrt(fan_in), float32."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in SHAPES.items():
        bound = 1 / np.sqrt(np.prod(shape[1:]))
        weights[name + ".weight"] = rng.uniform(-bound, bound, shape).astype(np.float32)
        weights[name + ".bias"] = rng.uniform(-bound, bound, shape[0]).astype(np.float32)
    return weights


def batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, 1, SIDE, SIDE)).astype(np.float32)
    return x, rng.integers(0, CLASSES, BATCH).astype(np.int64)


# --------------------------------------------------------------------------------- tinynet


class TinynetStep:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        import tinynet as tn
        from tinynet import nn

        self.tn = tn
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
        names = {"conv1": "0", "conv2": "3", "fc1": "7", "fc2": "9", "fc3": "11"}
        self.model.load_state_dict({k.replace(k.split(".")[0], names[k.split(".")[0]], 1): v
                                    for k, v in weights.items()})
        self.optimizer = tn.optim.SGD(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.tn.tensor(x)), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def grads(self) -> list[np.ndarray]:
        return [p.grad.data for p in self.model.parameters()]


# --------------------------------------------------------------------------------- PyTorch


class TorchStep:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        import torch
        from torch import nn

        self.torch = torch
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
        names = {"conv1": "0", "conv2": "3", "fc1": "7", "fc2": "9", "fc3": "11"}
        self.model.load_state_dict({
            k.replace(k.split(".")[0], names[k.split(".")[0]], 1): torch.from_numpy(v.copy())
            for k, v in weights.items()})
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def grads(self) -> list[np.ndarray]:
        return [p.grad.numpy() for p in self.model.parameters()]


# ------------------------------------------------------------------ hand-written numpy


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C*k*k, OH*OW), stride 1, no padding: one copy of a strided view."""
    n, c, h, w = x.shape
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, OH, OW, k, k)
    oh, ow = h - k + 1, w - k + 1
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, oh * ow)


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int) -> np.ndarray:
    n, c, h, w = shape
    oh, ow = h - k + 1, w - k + 1
    cols = cols.reshape(n, c, k, k, oh, ow)
    x = np.zeros(shape, dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            x[:, :, i:i + oh, j:j + ow] += cols[:, :, i, j]
    return x


class NumpyStep:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = {k: v.copy() for k, v in weights.items()}

    def _conv(self, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        weight = self.w[name + ".weight"]
        o, _, k, _ = weight.shape
        cols = im2col(x, k)
        out = np.matmul(weight.reshape(o, -1), cols)  # (N, O, L)
        out += self.w[name + ".bias"][:, None]
        side = x.shape[2] - k + 1
        return out.reshape(x.shape[0], o, side, side), cols

    @staticmethod
    def _pool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
        out = blocks.max(axis=(3, 5))
        mask = blocks == out[:, :, :, None, :, None]
        # ties: keep the first maximum only, as PyTorch
        flat = mask.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        first = np.zeros_like(flat)
        np.put_along_axis(first, flat.argmax(axis=-1)[..., None], True, axis=-1)
        return out, first

    @staticmethod
    def _unpool(grad: np.ndarray, first: np.ndarray) -> np.ndarray:
        n, c, oh, ow = grad.shape
        g = (first * grad[..., None]).reshape(n, c, oh, ow, 2, 2)
        return g.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh * 2, ow * 2)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        w, n = self.w, x.shape[0]
        z1, cols1 = self._conv(x, "conv1")
        a1 = np.maximum(z1, 0)
        p1, m1 = self._pool(a1)
        z2, cols2 = self._conv(p1, "conv2")
        a2 = np.maximum(z2, 0)
        p2, m2 = self._pool(a2)
        f = p2.reshape(n, -1)
        h1 = np.maximum(f @ w["fc1.weight"].T + w["fc1.bias"], 0)
        h2 = np.maximum(h1 @ w["fc2.weight"].T + w["fc2.bias"], 0)
        logits = h2 @ w["fc3.weight"].T + w["fc3.bias"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        probs = e / e.sum(axis=1, keepdims=True)
        loss = float(-np.mean(np.log(probs[np.arange(n), y])))
        # backward
        d = probs
        d[np.arange(n), y] -= 1
        d /= n
        g = {"fc3.weight": d.T @ h2, "fc3.bias": d.sum(0)}
        d = (d @ w["fc3.weight"]) * (h2 > 0)
        g["fc2.weight"], g["fc2.bias"] = d.T @ h1, d.sum(0)
        d = (d @ w["fc2.weight"]) * (h1 > 0)
        g["fc1.weight"], g["fc1.bias"] = d.T @ f, d.sum(0)
        d = (d @ w["fc1.weight"]).reshape(p2.shape)
        d = self._unpool(d, m2) * (z2 > 0)  # (N, 16, 8, 8)
        dr = d.reshape(n, 16, -1)
        g["conv2.weight"] = np.einsum("nol,nkl->ok", dr, cols2).reshape(SHAPES["conv2"])
        g["conv2.bias"] = dr.sum(axis=(0, 2))
        d = col2im(np.matmul(w["conv2.weight"].reshape(16, -1).T, dr), p1.shape, 5)
        d = self._unpool(d, m1) * (z1 > 0)
        dr = d.reshape(n, 6, -1)
        g["conv1.weight"] = np.einsum("nol,nkl->ok", dr, cols1).reshape(SHAPES["conv1"])
        g["conv1.bias"] = dr.sum(axis=(0, 2))
        for key, grad in g.items():
            w[key] -= np.float32(LR) * grad.astype(np.float32, copy=False)
        self.g = g
        return loss

    def grads(self) -> list[np.ndarray]:
        return [self.g[f"{layer}.{kind}"] for layer in SHAPES for kind in ("weight", "bias")]


IMPLEMENTATIONS = {"tinynet": TinynetStep, "numpy im2col": NumpyStep, "torch": TorchStep}


def check() -> None:
    """All three compute the same first loss and gradients (float32 tolerances)."""
    x, y = batch()
    weights = initial_weights()
    results = {}
    for name, cls in IMPLEMENTATIONS.items():
        impl = cls(weights)
        results[name] = (impl.step(x, y), impl.grads())
    loss_ref, grads_ref = results["torch"]
    for name, (loss, grads) in results.items():
        assert abs(loss - loss_ref) < 1e-5, (name, loss, loss_ref)
        for a, b in zip(grads, grads_ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5, err_msg=name)


def _settle(seconds: float = 0.15) -> None:
    """Busy-wait so BLAS/OpenMP threads spinning after the previous sample stop stealing
    cores from the next one (see benchmarks/harness.py)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure(rounds: int = 7, steps: int = 10) -> dict[str, float]:
    """Median ms per step of each implementation, over ``rounds`` interleaved rounds of
    ``steps`` steps (each round starts from a different implementation)."""
    x, y = batch()
    weights = initial_weights()
    impls = {name: cls(weights) for name, cls in IMPLEMENTATIONS.items()}
    for impl in impls.values():  # warm-up: numba cache, BLAS threads, page faults
        for _ in range(3):
            impl.step(x, y)
    samples: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            _settle()
            start = time.perf_counter()
            for _ in range(steps):
                impls[name].step(x, y)
            samples[name].append((time.perf_counter() - start) / steps * 1e3)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    check()
    times = measure(args.rounds, args.steps)
    print(f"LeNet step, batch {BATCH}, float32; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    for name, ms in times.items():
        print(f"  {name:14s} {ms:8.2f} ms/step")
    ours = times["tinynet"]
    print(f"  tinynet speed vs numpy im2col: {times['numpy im2col'] / ours:.2f}x, "
          f"vs torch: {times['torch'] / ours:.2f}x")


if __name__ == "__main__":
    main()
