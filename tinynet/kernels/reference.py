"""Plain-numpy twins of the compiled kernels: the textbook version of every fast path.

Each function here has the same name, signature and result as the dispatch function in
`tinynet.kernels`, which runs either this twin or the numba kernel of the same name in
`compiled.py` (that one also takes its output arrays). Read these to learn the math; read
`compiled.py` only to see how the same math runs in one pass.

Conventions:
- results keep the input's floating dtype (float32 in, float32 out);
- every function returns an ndarray (never a numpy scalar, even for 0-d input);
- a saturated sigmoid or softmax legitimately produces numbers that underflow to 0, which is
  the correct answer, so underflow is silenced there and these kernels do not warn under
  `np.errstate(all="raise")` for finite inputs of any size.
"""

from __future__ import annotations

import numpy as np

from tinynet.kernels import formulas

# ----------------------------------------------------------------------------- activations
# Generated from the formula table (formulas.py), one pair per activation:
#     <op>_forward(x, out=None, **params)    y = forward(x)
#     <op>_backward(grad, saved, **params)   dL/dx from grad and the saved x or y
# e.g. sigmoid_forward(x), relu_backward(grad, y), leaky_relu_forward(x, negative_slope=0.2).
globals().update(formulas.numpy_twins())


def erf(x: np.ndarray) -> np.ndarray:
    """erf elementwise, in x's dtype (no numba kernel: GELU's second derivative uses it)."""
    return formulas.NUMPY_FUNCTIONS["erf"](x)

# The activations ops.linear(..., activation=) fuses into a dense layer.
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "step")



def bias_activation_forward(z: np.ndarray, bias: np.ndarray | None, activation: str) -> np.ndarray:
    """y = act(z + bias) for z (N, M) and bias (M,) or None; z is overwritten and returned.

    This is the tail of a dense layer: z is a fresh matmul result nobody else holds.
    """
    if bias is not None:
        np.add(z, bias, out=z)
    return globals()[f"{activation}_forward"](z, out=z)


def activation_backward(grad: np.ndarray, y: np.ndarray, activation: str) -> np.ndarray:
    """dL/dz from dL/dy and the saved output y = act(z) (identity: grad, returned as is)."""
    if activation == "identity":
        return grad
    return globals()[f"{activation}_backward"](grad, y)


# -------------------------------------------------------------------- softmax cross-entropy


def softmax_rows(x: np.ndarray, out: np.ndarray) -> None:
    """out = the softmax of each row of x (rows, n): exp(x - max) / sum. x - max overflows to
    -inf only below the dtype's range, where e^(x - max) is 0 anyway; an infinite input gives
    NaN (inf - inf), as in PyTorch, without numpy's warning."""
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        np.divide(e, e.sum(axis=-1, keepdims=True), out=out)


def softmax_cross_entropy_forward(
    logits: np.ndarray, target: np.ndarray, ignore_index: int = -100
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample cross-entropy of softmax(logits) against class indices.

    logits (N, C), target (N,) int in [0, C) or equal to ``ignore_index``. With
    m_i = max_j logits_ij:
        probs_ij = exp(logits_ij - m_i) / sum_k exp(logits_ik - m_i)
        loss_i   = log(sum_k exp(logits_ik - m_i)) - (logits_i,target_i - m_i)
                 = logsumexp(logits_i) - logits_i,target_i
    and loss_i = 0 where target_i == ignore_index. Returns (loss (N,), probs (N, C)).
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(under="ignore"):
        exp = np.exp(shifted)
        sums = exp.sum(axis=1)
        probs = exp / sums[:, None]
    ignored = target == ignore_index
    safe = np.where(ignored, 0, target)  # any class: the row's loss is replaced by 0
    with np.errstate(invalid="ignore"):  # (an ignored row may hold inf or nan)
        loss = np.log(sums) - shifted[np.arange(n), safe]
    loss[ignored] = 0
    return loss, probs


def softmax_cross_entropy_backward(
    probs: np.ndarray, target: np.ndarray, grad_loss: np.ndarray, ignore_index: int = -100
) -> np.ndarray:
    """dL/dlogits_ij = grad_loss_i * (probs_ij - [j == target_i]), and 0 in the rows whose
    target equals ``ignore_index``; shapes (N, C), (N,), (N,)."""
    n = probs.shape[0]
    ignored = target == ignore_index
    diff = probs.copy()
    kept = np.arange(n)[~ignored]
    diff[kept, target[kept]] -= 1
    with np.errstate(under="ignore", invalid="ignore"):
        out = diff * grad_loss[:, None]
    out[ignored] = 0
    return out


# ------------------------------------------------------------------------------ perceptron


def perceptron_fit(
    X: np.ndarray, targets: np.ndarray, w: np.ndarray, b: float, lr: float, max_epochs: int
) -> tuple[float, int, bool, np.ndarray]:
    """Rosenblatt's learning rule (1958), the story's ``tinynet.perceptron.perceptron_rule``.
    For each sample x (a row of X) and its target t:

        y = step(w . x + b)          the perceptron's answer, 0 or 1
        w <- w + lr (t - y) x        t - y is 0 when the answer is right: nothing changes;
        b <- b + lr (t - y)          +1 when it said 0 for a 1 (w moves toward x), -1 for
                                     the opposite mistake (w moves away from x)

    One *epoch* is one pass over the samples in order. Training stops after the first epoch
    without a mistake (converged) or after ``max_epochs`` epochs.

    Shapes: X (N, F) numbers, targets (N,) 0s and 1s, w (F,) floats, overwritten with the
    learned weights. Returns (b, epochs run, converged, mistakes per epoch (epochs run,) int64).

    This is also the twin of the numba kernel ``tinynet.kernels.compiled.perceptron_fit``:
    both work in float64 and sum w . x left to right, so they give the same weights to the
    last bit. (numpy's ``w @ x`` may add in another order, which is why the sum is spelled
    out in ``_dot``.)
    """
    learned = w  # the caller's array, which receives the result at the end
    w = np.array(w, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    mistakes_per_epoch: list[int] = []
    converged = False
    for _epoch in range(max_epochs):
        mistakes = 0
        for x, t in zip(X, targets, strict=True):
            y = 1 if _dot(w, x) + b >= 0 else 0  # step(w . x + b)
            if y != t:
                w = w + lr * (t - y) * x
                b = b + lr * (t - y)
                mistakes += 1
        mistakes_per_epoch.append(mistakes)
        if mistakes == 0:
            converged = True
            break
    learned[...] = w
    return float(b), len(mistakes_per_epoch), converged, np.array(mistakes_per_epoch, np.int64)


def _dot(w: np.ndarray, x: np.ndarray) -> float:
    """w . x = w_0 x_0 + w_1 x_1 + ..., added left to right (as the numba kernel does)."""
    total = 0.0
    for w_j, x_j in zip(w, x, strict=True):
        total += w_j * x_j
    return total
