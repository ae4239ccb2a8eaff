"""Numba kernels: the same math as `reference.py`, each in one pass over memory.

This is the only module in tinynet that imports numba; `tinynet.kernels` imports it on the
first call that wants a compiled kernel, so `import tinynet` stays fast.

Rules every kernel here follows:
- module-level and specialised per op, `@njit(cache=True, ...)`: no closures and no functions
  passed as arguments, because those never reach numba's on-disk cache;
- `error_model="numpy"`: x / 0 gives inf or nan as in numpy. numba's default (Python's
  ZeroDivisionError) tests every divisor, which also stops LLVM from vectorising the loop
  (measured: Adam 7x slower);
- same parameters as the twin, plus the output arrays, which the dispatch allocates (an
  optional `out=None` would make numba compile every kernel twice);
- called by the dispatch in `tinynet.kernels` only with C-contiguous, aligned, writeable
  float32 or float64 arrays of one dtype; elementwise kernels see flat 1-D views;
- constants are made in the array's dtype (`x.dtype.type(1.0)`): a bare Python float is a
  float64 in numba and would silently turn float32 arithmetic into float64;
- the floating-point operations run in the twin's order, so results agree bit for bit for the
  pure arithmetic kernels and to an ulp or two where exp/log come from different libraries;
- float32 sigmoid and tanh do not call the C library's expf/tanhf (one scalar call per
  element: numba has no vector math library here) but `_exp_nonpositive_f32`, plain
  arithmetic that LLVM vectorises (4-6x faster, within 2 ulps). float64 tanh forward stays in
  numpy (the dispatch never sends it here): a loop over the C library's tanh ran at 0.7x;
- one thread. `parallel=True` with `prange` was measured and left out: on the 2-core target
  it gave at best 1.8x (sigmoid, >= 10^6 elements, idle machine), while with the other core
  busy, or right after an OpenBLAS matmul whose threads still hold both cores, the two-thread
  kernel ran 2x to 7x slower than this one-thread loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ------------------------------------------------------------------ scalar rules (inlined)


@njit(cache=True, error_model="numpy")
def _sigmoid(v, one):
    """1/(1+exp(-v)) by the sign split; branch-free so random signs cost no mispredictions."""
    e = np.exp(-np.abs(v))
    r = one / (one + e)
    return r if v >= 0 else e * r


@njit(cache=True, error_model="numpy", inline="always")
def _exp_nonpositive_f32(y, out, bits, i):
    """exp(y) for a float32 y <= 0 (or NaN), without calling the C library.

    numba has no vector math library here, so ``np.exp`` on float32 is one scalar call per
    element (~5 ns). This is the Cephes expf recipe, plain arithmetic LLVM can vectorise
    (measured ~6x faster, within 2 ulps of the exact value):
        n = round(y / ln 2),  r = y - n ln 2  (ln 2 split in two for precision),
        exp(r) = 1 + r + r^2 p(r)  (degree-5 polynomial),  exp(y) = exp(r) * 2^n.
    2^n is built from its bit pattern, written through ``bits`` (an int32 view of the
    float32 array ``out``) and read back from ``out[i]``, which the caller overwrites later.
    n can go down to -150 (results below the smallest normal float32), so 2^n is applied as
    two factors 2^(n/2), each a normal number. Below -104 the exact answer rounds to 0.
    """
    if y < np.float32(-104.0):  # not max(): NaN must stay NaN
        y = np.float32(-104.0)
    n = np.floor(y * np.float32(1.44269504) + np.float32(0.5))
    r = y - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    whole = np.int32(n)
    half = whole >> np.int32(1)  # floor(n / 2) without the branches of Python's //
    bits[i] = (half + np.int32(127)) << np.int32(23)
    p = p * out[i]
    bits[i] = (whole - half + np.int32(127)) << np.int32(23)
    return p * out[i]


@njit(cache=True, error_model="numpy", inline="always")
def _sigmoid_f32(v, out, bits, i):
    """_sigmoid for float32 with the vectorisable exp: same sign split, same rounding order."""
    one = np.float32(1.0)
    e = _exp_nonpositive_f32(-np.abs(v), out, bits, i)
    r = one / (one + e)
    return r if v >= 0 else e * r


@njit(cache=True, error_model="numpy", inline="always")
def _tanh_f32(v, out, bits, i):
    """tanh for float32, Cephes' tanhf without branches (both halves computed, one kept):
        |v| < 0.625:  v + v^3 q(v^2)                 (odd polynomial: exact sign, no
                                                      cancellation near 0)
        otherwise:    sign(v) (1 - 2e / (1 + e))     with e = exp(-2|v|) in (0, 1]
    """
    one = np.float32(1.0)
    a = np.abs(v)
    e = _exp_nonpositive_f32(np.float32(-2.0) * a, out, bits, i)
    large = one - np.float32(2.0) * e / (one + e)
    large = large if v >= 0 else -large
    z = v * v
    q = np.float32(-5.70498872745e-3) * z + np.float32(2.06390887954e-2)
    q = q * z - np.float32(5.37397155531e-2)
    q = q * z + np.float32(1.33314422036e-1)
    q = q * z - np.float32(3.33332819422e-1)
    small = q * z * v + v
    if a >= np.float32(0.625):
        return large
    return small if a != 0 else v  # v + 0 would turn tanh(-0.0) into +0.0


@njit(cache=True, error_model="numpy")
def _relu(v, zero):
    """max(v, 0) keeping NaN, like np.maximum."""
    return zero if v < zero else v


@njit(cache=True, error_model="numpy")
def _step(v, zero, one):
    """Heaviside with step(0) = 1; NaN gives 0."""
    return one if v >= zero else zero


# ------------------------------------------------------------------ elementwise, flat 1-D


@njit(cache=True, error_model="numpy")
def sigmoid_forward(x, out):
    """out = 1 / (1 + exp(-x)); x, out flat (n,). float32 takes the vectorisable exp (a
    run-time test: both loops are compiled for each dtype, one of them never runs)."""
    if x.itemsize == 4:
        _sigmoid_forward_f32(x, out)
    else:
        _sigmoid_forward(x, out)


@njit(cache=True, error_model="numpy")
def _sigmoid_forward(x, out):
    one = x.dtype.type(1.0)
    for i in range(x.size):
        out[i] = _sigmoid(x[i], one)


@njit(cache=True, error_model="numpy")
def _sigmoid_forward_f32(x, out):
    bits = out.view(np.int32)  # made here, not passed in: passed in, the loop ran 7x slower
    for i in range(x.size):
        out[i] = _sigmoid_f32(x[i], out, bits, i)


@njit(cache=True, error_model="numpy")
def sigmoid_backward(grad, s, out):
    """out = grad * s * (1 - s); all flat (n,)."""
    one = s.dtype.type(1.0)
    for i in range(s.size):
        out[i] = grad[i] * s[i] * (one - s[i])


@njit(cache=True, error_model="numpy")
def tanh_forward(x, out):
    """out = tanh(x); x, out flat (n,). The dispatch calls it for float32 only (see the
    module notes); float64 takes the C library's tanh here, for completeness."""
    if x.itemsize == 4:
        _tanh_forward_f32(x, out)
    else:
        for i in range(x.size):
            out[i] = np.tanh(x[i])


@njit(cache=True, error_model="numpy")
def _tanh_forward_f32(x, out):
    bits = out.view(np.int32)  # made here, not passed in: passed in, the loop ran 7x slower
    for i in range(x.size):
        out[i] = _tanh_f32(x[i], out, bits, i)


@njit(cache=True, error_model="numpy")
def tanh_backward(grad, t, out):
    """out = grad * (1 - t * t); all flat (n,)."""
    one = t.dtype.type(1.0)
    for i in range(t.size):
        out[i] = grad[i] * (one - t[i] * t[i])


@njit(cache=True, error_model="numpy")
def relu_forward(x, out):
    """out = max(x, 0); x, out flat (n,)."""
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        out[i] = _relu(x[i], zero)


@njit(cache=True, error_model="numpy")
def relu_backward(grad, y, out):
    """out = 0 where y <= 0 else grad (a NaN output passes its gradient, as in PyTorch)."""
    zero = grad.dtype.type(0.0)
    for i in range(y.size):
        out[i] = zero if y[i] <= zero else grad[i]


@njit(cache=True, error_model="numpy")
def step_forward(x, out):
    """out = 1 where x >= 0 else 0; x, out flat (n,)."""
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    for i in range(x.size):
        out[i] = _step(x[i], zero, one)


# ------------------------------------------------- bias + activation, z (N, M) in place


@njit(cache=True, error_model="numpy")
def bias_identity_forward(z, bias):
    """z += bias; z (N, M), bias (M,)."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = z[i, j] + bias[j]


@njit(cache=True, error_model="numpy")
def bias_sigmoid_forward(z, bias):
    """z = sigmoid(z + bias); z (N, M), bias (M,). float32 takes the vectorisable exp, as in
    sigmoid_forward."""
    if z.itemsize == 4:
        _bias_sigmoid_forward_f32(z, bias)
    else:
        _bias_sigmoid_forward(z, bias)


@njit(cache=True, error_model="numpy")
def _bias_sigmoid_forward(z, bias):
    one = z.dtype.type(1.0)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = _sigmoid(z[i, j] + bias[j], one)


@njit(cache=True, error_model="numpy")
def _bias_sigmoid_forward_f32(z, bias):
    flat = z.reshape(-1)  # flat indexing only: with z[i, j] too the loop ran 7x slower
    bits = flat.view(np.int32)
    m = z.shape[1]
    for i in range(z.shape[0]):
        row = i * m
        for j in range(m):
            flat[row + j] = _sigmoid_f32(flat[row + j] + bias[j], flat, bits, row + j)


@njit(cache=True, error_model="numpy")
def bias_tanh_forward(z, bias):
    """z = tanh(z + bias); z (N, M), bias (M,). Like tanh_forward, used for float32 only."""
    if z.itemsize == 4:
        _bias_tanh_forward_f32(z, bias)
    else:
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[i, j] = np.tanh(z[i, j] + bias[j])


@njit(cache=True, error_model="numpy")
def _bias_tanh_forward_f32(z, bias):
    flat = z.reshape(-1)  # flat indexing only, as in _bias_sigmoid_forward_f32
    bits = flat.view(np.int32)
    m = z.shape[1]
    for i in range(z.shape[0]):
        row = i * m
        for j in range(m):
            flat[row + j] = _tanh_f32(flat[row + j] + bias[j], flat, bits, row + j)


@njit(cache=True, error_model="numpy")
def bias_relu_forward(z, bias):
    """z = max(z + bias, 0); z (N, M), bias (M,)."""
    zero = z.dtype.type(0.0)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = _relu(z[i, j] + bias[j], zero)


@njit(cache=True, error_model="numpy")
def bias_step_forward(z, bias):
    """z = [z + bias >= 0]; z (N, M), bias (M,)."""
    zero = z.dtype.type(0.0)
    one = z.dtype.type(1.0)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = _step(z[i, j] + bias[j], zero, one)


# ----------------------------------------------------------- softmax cross-entropy (N, C)


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_forward(logits, target, loss, probs):
    """Fills probs (N, C) = row softmax of logits and loss (N,) = logsumexp - target logit;
    three sweeps over each row (max, exp and sum, scale)."""
    zero = logits.dtype.type(0.0)
    n, c = logits.shape
    for i in range(n):
        m = logits[i, 0]
        for j in range(1, c):
            if logits[i, j] > m:
                m = logits[i, j]
        total = zero
        for j in range(c):
            e = np.exp(logits[i, j] - m)
            probs[i, j] = e
            total += e
        for j in range(c):
            probs[i, j] = probs[i, j] / total
        t = target[i]
        if t < 0 or t >= c:  # numba does not check bounds: refuse to read past the row
            raise IndexError("softmax_cross_entropy_forward: target index out of range")
        loss[i] = np.log(total) - (logits[i, t] - m)


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_backward(probs, target, grad_loss, out):
    """out (N, C) = grad_loss[:, None] * (probs - onehot(target))."""
    one = probs.dtype.type(1.0)
    n, c = probs.shape
    for i in range(n):
        g = grad_loss[i]
        for j in range(c):
            out[i, j] = probs[i, j] * g
        t = target[i]
        if t < 0 or t >= c:
            raise IndexError("softmax_cross_entropy_backward: target index out of range")
        out[i, t] = (probs[i, t] - one) * g


# ------------------------------------------------------------------------------ optimizers


@njit(cache=True, error_model="numpy")
def sgd_update_(
    param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, first_step
):
    """PyTorch SGD, one pass; flat arrays. momentum_buffer is never touched if momentum == 0
    (the dispatch then passes param in its place so no None specialisation is compiled)."""
    dt = param.dtype.type
    decay = dt(weight_decay)
    mom = dt(momentum)
    keep = dt(1.0 - dampening)
    neg_lr = dt(-lr)
    use_decay = weight_decay != 0
    use_momentum = momentum != 0
    for i in range(param.size):
        d = grad[i]
        if use_decay:
            d = d + decay * param[i]
        if use_momentum:
            if first_step:
                buf = d
            else:
                buf = momentum_buffer[i] * mom + keep * d
            momentum_buffer[i] = buf
            d = d + mom * buf if nesterov else buf
        param[i] = param[i] + neg_lr * d


@njit(cache=True, error_model="numpy")
def adam_update_(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """PyTorch Adam, one pass; flat arrays. Bias corrections are computed in float64 with the
    C library's pow, as Python does in torch's optimizer loop."""
    dt = param.dtype.type
    step_size = lr / (1.0 - beta1 ** float(step))
    bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** float(step))
    neg_step = dt(-step_size)
    bc2_sqrt = dt(bias_correction2_sqrt)
    eps_ = dt(eps)
    decay = dt(weight_decay)
    use_decay = weight_decay != 0
    weight = dt(1.0 - beta1)
    small_weight = abs(weight) < 0.5
    keep = dt(1.0) - weight
    b2 = dt(beta2)
    one_minus_b2 = dt(1.0 - beta2)
    for i in range(param.size):
        g = grad[i]
        if use_decay:
            g = g + decay * param[i]
        m = exp_avg[i]
        if small_weight:
            m = m + weight * (g - m)
        else:
            m = g - (g - m) * keep
        v = exp_avg_sq[i] * b2 + one_minus_b2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] = param[i] + neg_step * m / (np.sqrt(v) / bc2_sqrt + eps_)


# ------------------------------------------------------------------------------ perceptron


@njit(cache=True, error_model="numpy")
def perceptron_fit(X, y, w, b, lr, max_epochs):
    """Rosenblatt's rule on float64 X (N, F), int64 y (N,), float64 w (F,) in place; same
    left-to-right sums as the pure-Python twin, so the weights agree bit for bit."""
    n, f = X.shape
    errors = np.zeros(max(max_epochs, 0), dtype=np.int64)
    epochs_run = 0
    converged = False
    for epoch in range(max_epochs):
        n_errors = 0
        for i in range(n):
            activation = 0.0
            for j in range(f):
                activation += w[j] * X[i, j]
            activation += b
            y_hat = 1 if activation >= 0.0 else 0
            if y_hat != y[i]:
                delta = lr * (y[i] - y_hat)
                for j in range(f):
                    w[j] += delta * X[i, j]
                b += delta
                n_errors += 1
        errors[epoch] = n_errors
        epochs_run = epoch + 1
        if n_errors == 0:
            converged = True
            break
    return b, epochs_run, converged, errors[:epochs_run].copy()
