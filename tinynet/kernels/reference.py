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

import math

import numpy as np

# ----------------------------------------------------------------------------- activations


def sigmoid_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """s = 1 / (1 + exp(-x)), elementwise; any shape.

    Stable sign split: with e = exp(-|x|) in (0, 1], s = 1/(1+e) for x >= 0 and e/(1+e) for
    x < 0, so exp never overflows and tiny results keep their relative accuracy.
    """
    one = x.dtype.type(1)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
        if out is None:
            out = np.empty(e.shape, dtype=e.dtype)
        return np.divide(np.where(x >= 0, one, e), one + e, out=out)


def sigmoid_backward(grad: np.ndarray, s: np.ndarray) -> np.ndarray:
    """d/dx sigmoid = s (1 - s): returns grad * s * (1 - s) (new array, shape of s)."""
    with np.errstate(under="ignore"):
        return np.asarray(grad * s * (1 - s))


def tanh_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """t = tanh(x), elementwise; any shape."""
    return np.asarray(np.tanh(x, out=out))


def tanh_backward(grad: np.ndarray, t: np.ndarray) -> np.ndarray:
    """d/dx tanh = 1 - t^2: returns grad * (1 - t * t) (new array)."""
    with np.errstate(under="ignore"):  # t * t of a tiny t (float16: |t| < 0.008) is subnormal
        return np.asarray(grad * (1 - t * t))


def relu_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """y = max(x, 0), elementwise; NaN stays NaN."""
    return np.asarray(np.maximum(x, 0, out=out))


def relu_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dx relu = [y > 0]: returns 0 where y <= 0, else grad (new array; a NaN output passes
    its gradient on, as PyTorch's threshold_backward does).

    Written as a select rather than grad * (y > 0) so an inf or NaN gradient at a dead unit
    gives 0, as PyTorch's threshold_backward does.
    """
    return np.where(y <= 0, 0, grad)


def step_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Heaviside step: 1 where x >= 0 (so step(0) = 1), else 0, in x's dtype. No backward:
    the derivative is zero wherever it exists."""
    if out is None:
        out = np.empty(x.shape, dtype=x.dtype)
    return np.greater_equal(x, 0, out=out)


def identity_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """y = x (copied into `out` when one is given)."""
    if out is None:
        return x
    np.copyto(out, x)
    return out


ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "step")

_FORWARD = {
    "identity": identity_forward,
    "sigmoid": sigmoid_forward,
    "tanh": tanh_forward,
    "relu": relu_forward,
    "step": step_forward,
}


def bias_activation_forward(z: np.ndarray, bias: np.ndarray | None, activation: str) -> np.ndarray:
    """y = act(z + bias) for z (N, M) and bias (M,) or None; z is overwritten and returned.

    This is the tail of a dense layer: z is a fresh matmul result nobody else holds.
    """
    if bias is not None:
        np.add(z, bias, out=z)
    return _FORWARD[activation](z, out=z)


def activation_backward(grad: np.ndarray, y: np.ndarray, activation: str) -> np.ndarray:
    """dL/dz from dL/dy and the saved output y = act(z).

    identity: grad (returned as is); sigmoid: grad*y*(1-y); tanh: grad*(1-y^2);
    relu: grad*[y > 0]; step: zeros.
    """
    if activation == "identity":
        return grad
    if activation == "sigmoid":
        return sigmoid_backward(grad, y)
    if activation == "tanh":
        return tanh_backward(grad, y)
    if activation == "relu":
        return relu_backward(grad, y)
    return np.zeros(np.broadcast_shapes(grad.shape, y.shape), dtype=np.result_type(grad, y))


# -------------------------------------------------------------------- softmax cross-entropy


def softmax_cross_entropy_forward(
    logits: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample cross-entropy of softmax(logits) against class indices.

    logits (N, C), target (N,) int in [0, C). With m_i = max_j logits_ij:
        probs_ij = exp(logits_ij - m_i) / sum_k exp(logits_ik - m_i)
        loss_i   = log(sum_k exp(logits_ik - m_i)) - (logits_i,target_i - m_i)
                 = logsumexp(logits_i) - logits_i,target_i
    Returns (loss (N,), probs (N, C)).
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(under="ignore"):
        exp = np.exp(shifted)
        sums = exp.sum(axis=1)
        probs = exp / sums[:, None]
    loss = np.log(sums) - shifted[np.arange(n), target]
    return loss, probs


def softmax_cross_entropy_backward(
    probs: np.ndarray, target: np.ndarray, grad_loss: np.ndarray
) -> np.ndarray:
    """dL/dlogits_ij = grad_loss_i * (probs_ij - [j == target_i]); shapes (N, C), (N,), (N,)."""
    n = probs.shape[0]
    diff = probs.copy()
    diff[np.arange(n), target] -= 1
    with np.errstate(under="ignore"):
        return diff * grad_loss[:, None]


# ------------------------------------------------------------------------------ optimizers


def sgd_update_(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    first_step: bool,
) -> None:
    """One ``tn.optim.SGD`` step, in place on param (and momentum_buffer): the rule in
    ``SGD``'s docstring, line by line. Scalars are rounded to param's dtype and the operations
    run in PyTorch's order, so the result matches PyTorch's single-tensor path up to its use
    of fused multiply-adds."""
    dt = param.dtype.type
    d = grad
    if weight_decay != 0:
        d = grad + dt(weight_decay) * param
    if momentum != 0:
        if first_step:
            np.copyto(momentum_buffer, d)
        else:
            momentum_buffer *= dt(momentum)
            momentum_buffer += dt(1.0 - dampening) * d
        if nesterov:
            d = d + dt(momentum) * momentum_buffer
        else:
            d = momentum_buffer
    param += dt(-lr) * d


def adam_update_(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One ``tn.optim.Adam`` step (amsgrad off, L2 weight decay), in place; step is 1-based:
    the rule in ``Adam``'s docstring, line by line, in PyTorch's order. The first moment's
    update is torch.lerp's: a + w (b - a) when |w| < 0.5, else b - (b - a)(1 - w)."""
    dt = param.dtype.type
    bias_correction1 = 1.0 - beta1 ** float(step)
    bias_correction2 = 1.0 - beta2 ** float(step)
    step_size = lr / bias_correction1
    bias_correction2_sqrt = math.sqrt(bias_correction2)

    g = grad
    if weight_decay != 0:
        g = grad + dt(weight_decay) * param
    weight = dt(1.0 - beta1)
    if abs(weight) < 0.5:
        exp_avg += weight * (g - exp_avg)
    else:
        exp_avg[...] = g - (g - exp_avg) * (dt(1) - weight)
    exp_avg_sq *= dt(beta2)
    exp_avg_sq += dt(1.0 - beta2) * g * g
    denom = np.sqrt(exp_avg_sq) / dt(bias_correction2_sqrt) + dt(eps)
    param += dt(-step_size) * exp_avg / denom


# ------------------------------------------------------------------------------ perceptron


def perceptron_fit(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, lr: float, max_epochs: int
) -> tuple[float, int, bool, np.ndarray]:
    """Rosenblatt's perceptron rule: this twin is the story's own readable version,
    ``tinynet.perceptron.perceptron_rule`` (read it there). X (N, F), y (N,) in {0, 1}, w (F,)
    updated in place; returns (b, epochs_run, converged, errors_per_epoch (epochs_run,) int64).
    """
    # Imported here, not at the top: tinynet.perceptron imports tinynet.kernels.
    from tinynet.perceptron import perceptron_rule

    return perceptron_rule(X, y, w, b, lr, max_epochs)
