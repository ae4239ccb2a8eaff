"""Plain-numpy references with hand-written backprop, and the shared workload data.

Every reference is written the way a careful numpy programmer would write a training step
that runs many times: all buffers are allocated once in ``__init__`` and every array op
writes into one of them through ``out=`` or an in-place operator, so a step allocates
nothing but a few scalars. Scalars are Python floats, which numpy 2 (NEP 50) never lets
upcast a float32 array.

Layouts follow PyTorch: a linear layer holds ``weight`` of shape (out, in) and ``bias`` of
shape (out,), and computes ``z = x @ weight.T + bias``. BLAS reads the transposed view
directly, so no copy is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- shared data


@dataclass(frozen=True)
class MLPSpec:
    """A multilayer perceptron workload: layer widths, batch size, loss and dtype."""

    name: str
    sizes: tuple[int, ...]
    batch: int
    loss: str  # "mse" (sigmoid output) or "cross_entropy" (raw logits)
    dtype: np.dtype

    @property
    def flops_per_step(self) -> int:
        """Matmul FLOPs in one training step, counting 2*m*n*k per matmul that is computed.

        Forward: one matmul per layer. Backward: the weight gradient for every layer and the
        input gradient for every layer but the first (the data needs no gradient).
        """
        total = 0
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            one = 2 * self.batch * fan_in * fan_out
            total += one * (2 if i == 0 else 3)
        return total


def init_linear_params(sizes: tuple[int, ...], dtype: np.dtype, seed: int = 0) -> Params:
    """PyTorch-style init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Drawn in float64 from one seeded generator and then cast, so the float32 and float64
    variants of a workload start from the same numbers (up to rounding).
    """
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(dtype)
        bias = rng.uniform(-bound, bound, size=(fan_out,)).astype(dtype)
        params.append((weight, bias))
    return params


def make_batch(spec: MLPSpec, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The fixed batch a workload trains on.

    XOR uses its four points with float targets of shape (4, 1); the classifiers get
    standard-normal inputs and int64 class labels.
    """
    if spec.loss == "mse":
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=spec.dtype)
        y = np.array([[0], [1], [1], [0]], dtype=spec.dtype)
        return x, y
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec.batch, spec.sizes[0])).astype(spec.dtype)
    y = rng.integers(0, spec.sizes[-1], size=spec.batch, dtype=np.int64)
    return x, y


def make_perceptron_data(n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in the plane, labelled 1 above the line x1 = 0.5 * x0 + 0.2, else 0.

    Points closer than 0.05 to the line are pushed away from it so the classes are
    separable with a margin.
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    distance = X[:, 1] - (0.5 * X[:, 0] + 0.2)
    X[:, 1] += np.where(distance >= 0, 0.05, -0.05)
    y = (distance >= 0).astype(np.int64)
    return X, y


# --------------------------------------------------------------------------- MLP


class NumpyMLP:
    """Sigmoid hidden layers; sigmoid output + MSE, or logits + softmax cross-entropy.

    ``step()`` runs forward, loss, backward and an SGD update (no momentum).
    """

    def __init__(
        self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, lr: float = 0.1
    ) -> None:
        self.spec = spec
        self.lr = float(lr)
        self.x = x
        self.y = y
        dtype = spec.dtype
        batch = x.shape[0]
        self.weights = [w.copy() for w, _ in params]
        self.biases = [b.copy() for _, b in params]
        self.grad_weights = [np.empty_like(w) for w in self.weights]
        self.grad_biases = [np.empty_like(b) for b in self.biases]
        # acts[i] is the output of layer i (post-activation for hidden layers, logits or
        # sigmoid output for the last one); grads[i] is d loss / d pre-activation of layer i.
        self.acts = [np.empty((batch, w.shape[0]), dtype) for w in self.weights]
        self.grads = [np.empty((batch, w.shape[0]), dtype) for w in self.weights]
        self.scratch = [np.empty((batch, w.shape[0]), dtype) for w in self.weights]
        n_out = self.weights[-1].shape[0]
        self.row_max = np.empty((batch, 1), dtype)
        self.row_sum = np.empty((batch, 1), dtype)
        self.rows = np.arange(batch)
        self.loss = 0.0
        self.n_out = n_out

    @staticmethod
    def _sigmoid_(z: np.ndarray) -> None:
        """In place: z <- 1 / (1 + exp(-z))."""
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1.0
        np.reciprocal(z, out=z)

    def step(self) -> None:
        last = len(self.weights) - 1
        h = self.x
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = self.acts[i]
            np.matmul(h, w.T, out=z)
            z += b
            if i < last or self.spec.loss == "mse":
                self._sigmoid_(z)
            h = z

        g = self.grads[last]
        if self.spec.loss == "mse":
            # L = mean((p - y)^2);  dL/dz = 2 (p - y) / N * p (1 - p)
            p = self.acts[last]
            np.subtract(p, self.y, out=g)
            self.loss = float(np.vdot(g, g)) / g.size
            tmp = self.scratch[last]
            np.subtract(1.0, p, out=tmp)
            tmp *= p
            g *= tmp
            g *= 2.0 / g.size
        else:
            # L = mean(logsumexp(z) - z[target]);  dL/dz = (softmax(z) - onehot) / B
            z = self.acts[last]
            batch = z.shape[0]
            np.max(z, axis=1, keepdims=True, out=self.row_max)
            z -= self.row_max
            picked = float(z[self.rows, self.y].sum())
            np.exp(z, out=g)
            np.sum(g, axis=1, keepdims=True, out=self.row_sum)
            np.log(self.row_sum, out=self.row_max)  # the row maxima are no longer needed
            self.loss = (float(self.row_max.sum()) - picked) / batch
            g /= self.row_sum
            g[self.rows, self.y] -= 1.0
            g *= 1.0 / batch

        for i in range(last, -1, -1):
            g = self.grads[i]
            h_in = self.x if i == 0 else self.acts[i - 1]
            np.matmul(g.T, h_in, out=self.grad_weights[i])
            np.sum(g, axis=0, out=self.grad_biases[i])
            if i > 0:
                # Through the matmul, then through the sigmoid: d/dz s = s (1 - s).
                g_prev = self.grads[i - 1]
                np.matmul(g, self.weights[i], out=g_prev)
                s = self.acts[i - 1]
                tmp = self.scratch[i - 1]
                np.subtract(1.0, s, out=tmp)
                tmp *= s
                g_prev *= tmp

        for w, b, gw, gb in zip(
            self.weights, self.biases, self.grad_weights, self.grad_biases, strict=True
        ):
            gw *= self.lr
            w -= gw
            gb *= self.lr
            b -= gb

    def loss_value(self) -> float:
        return float(self.loss)

    def arrays(self) -> list[np.ndarray]:
        """Every array a step touches, for the dtype check."""
        return [
            *self.weights,
            *self.biases,
            *self.grad_weights,
            *self.grad_biases,
            *self.acts,
            *self.grads,
            *self.scratch,
        ]


class NumpyMatmuls(NumpyMLP):
    """Only the matrix products of ``NumpyMLP.step``, on the same arrays into the same buffers:
    forward ``h @ W.T``, and per layer ``g.T @ h`` (the weight's gradient) and ``g @ W`` (the
    gradient passed down). A step made of nothing but its matmuls: the yardstick issue 20's
    "95% of the speed of its matmuls alone" is measured against (the "vs numpy-matmuls"
    column). It trains nothing, so it has no loss."""

    def step(self) -> None:
        h = self.x
        for i, w in enumerate(self.weights):
            np.matmul(h, w.T, out=self.acts[i])
            h = self.acts[i]
        for i in range(len(self.weights) - 1, -1, -1):
            g = self.grads[i]
            np.matmul(g.T, self.x if i == 0 else self.acts[i - 1], out=self.grad_weights[i])
            if i > 0:
                np.matmul(g, self.weights[i], out=self.grads[i - 1])

    def loss_value(self) -> float:
        return float("nan")


# --------------------------------------------------------------------------- elementwise chain


class NumpyChain:
    """``y = tanh(sigmoid(x * a + b)); loss = y.sum()`` and its gradient wrt x.

    dloss/dx = (1 - y^2) * s (1 - s) * a, with s = sigmoid(x * a + b).
    """

    def __init__(self, x: np.ndarray, a: float, b: float) -> None:
        self.x = x
        self.a = float(a)
        self.b = float(b)
        self.s = np.empty_like(x)
        self.y = np.empty_like(x)
        self.grad = np.empty_like(x)
        self.loss = 0.0

    def step(self) -> None:
        s, y, g = self.s, self.y, self.grad
        np.multiply(self.x, self.a, out=s)
        s += self.b
        NumpyMLP._sigmoid_(s)
        np.tanh(s, out=y)
        self.loss = y.sum()
        np.multiply(y, y, out=g)
        np.subtract(1.0, g, out=g)
        np.subtract(1.0, s, out=y)  # y is no longer needed: reuse it for 1 - s
        y *= s
        g *= y
        g *= self.a

    def loss_value(self) -> float:
        return float(self.loss)

    def grad_value(self) -> np.ndarray:
        return self.grad


# --------------------------------------------------------------------------- perceptron


def perceptron_fit_python(
    X: list[list[float]],
    y: list[int],
    weights: list[float],
    bias: float,
    lr: float,
    max_epochs: int,
) -> tuple[list[float], float, int]:
    """Rosenblatt's rule in plain Python lists: y_hat = [w . x + b >= 0], and on a mistake
    w += lr (y - y_hat) x, b += lr (y - y_hat). Samples in order; stops after an epoch with
    no mistakes. The dot product is summed left to right and then b is added, the order
    tinynet's kernel uses, so the float64 results agree bit for bit.

    Returns the final weights, bias and the number of epochs run.
    """
    w = list(weights)
    epochs = 0
    for _ in range(max_epochs):
        epochs += 1
        errors = 0
        for xi, target in zip(X, y, strict=True):
            activation = 0.0
            for w_j, x_j in zip(w, xi, strict=True):
                activation += w_j * x_j
            activation += bias
            predicted = 1 if activation >= 0.0 else 0
            if predicted != target:
                delta = lr * (target - predicted)
                for j, x_j in enumerate(xi):
                    w[j] += delta * x_j
                bias += delta
                errors += 1
        if errors == 0:
            break
    return w, bias, epochs


def perceptron_fit_numpy(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, bias: float, lr: float, max_epochs: int
) -> tuple[np.ndarray, float, int]:
    """The same rule with one numpy dot product and one vector update per sample."""
    w = np.array(weights, dtype=np.float64)
    epochs = 0
    for _ in range(max_epochs):
        epochs += 1
        errors = 0
        for xi, target in zip(X, y.tolist(), strict=True):
            predicted = 1 if float(np.dot(w, xi)) + bias >= 0.0 else 0
            if predicted != target:
                delta = lr * (target - predicted)
                w += delta * xi
                bias += delta
                errors += 1
        if errors == 0:
            break
    return w, bias, epochs


# --------------------------------------------------------------------------- matmul ceiling


def matmul_operands(n: int, dtype: np.dtype, seed: int = 3) -> tuple[np.ndarray, ...]:
    """Two n x n operands and an output buffer for the BLAS ceiling."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    return a, b, np.empty((n, n), dtype)
