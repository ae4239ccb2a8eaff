"""Kernels: the one room where speed lives.

Every function here computes one named piece of math on numpy arrays. Each has a plain-numpy
twin in `reference.py` (read that to learn the math) and, for most, a numba version in
`compiled.py` (same name, same signature, one pass over memory). Ops call these dispatch
functions and never numba directly.

Which one runs is decided in one place, `_pick_kernel`:
- `TINYNET_NUMBA=0` (read once, at the first kernel call) or a missing numba: always the twin;
- float16, integer or mixed dtypes, non-C-contiguous, read-only or misaligned arrays: the twin
  (numpy handles every layout and dtype correctly; the compiled kernels see only the layouts
  they were written for, so nothing is ever silently wrong or recompiled);
- empty arrays (under `_MIN_SIZE` elements) and ops numba does not speed up: the twin;
- everything else: the one-thread numba kernel.

numba is imported on the first call that wants a compiled kernel, never by `import tinynet`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType

import numpy as np

from tinynet.kernels import formulas, reference, updates
from tinynet.kernels.conv import (
    Pair,
    col2im_twin,
    im2col_twin,
    max_pool2d_backward_twin,
    max_pool2d_forward_twin,
    output_size,
)

__all__ = [
    "activation_backward",
    "apply_rule",
    "bias_activation_forward",
    "dispatch_mode",
    "elementwise_backward",
    "elementwise_forward",
    "erf",
    "get_num_threads",
    "numba_enabled",
    "perceptron_fit",
    "relu_backward",
    "relu_forward",
    "set_num_threads",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "step_forward",
    "tanh_backward",
    "tanh_forward",
    "warm_up",
]

ACTIVATIONS = reference.ACTIVATIONS

# ----------------------------------------------------------------------------- the policy

# Arrays with fewer elements than this use the twin: only empty ones. The compiled kernels
# win at every size (sigmoid forward on 16 float32s: ~1.5 us against ~10 us for the stable
# numpy twin), and tiny networks (XOR 2-4-1) are made of exactly such calls. The price is
# numba's import (~0.4 s) and cache loads at the first kernel call of a process, paid back
# within a few hundred training steps.
_MIN_SIZE = 1

# Ops that have a numba kernel (same name in `compiled`). Measured on the project machine
# (2-core AMD EPYC, numpy 2.4, numba 0.68 without SVML), each beats its twin from ~10
# elements up: 2-4x for the activations, 3-7x for softmax-CE and the optimizer steps, ~90x
# for the perceptron over its Python loop. An op missing here always runs its numpy twin.
# Every activation of the formula table has three, generated from its row (formulas.py).
_COMPILED_OPS = frozenset(
    {
        *(f"{kind}" for name in formulas.ACTIVATIONS
          for kind in (f"{name}_forward", f"{name}_backward", f"bias_{name}_forward")),
        "softmax_cross_entropy_forward",
        "softmax_cross_entropy_backward",
        "softmax_rows",
        "perceptron_fit",
    }
)

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# (sigmoid and tanh are the vectorised rules of scalar.py in both eager kernels and tn.compile's
# loops, float32 and float64: numpy's own tanh differs from them in the last bit of a third of
# the values, which Adam turns into a 1e-10 drift when a gradient is only rounding noise.)

_compiled: ModuleType | None = None
_numba_checked = False
_load_lock = threading.Lock()


def _load() -> ModuleType | None:
    """Import `compiled` (and so numba) once; None if disabled or unavailable.

    Thread-safe: when two threads make their first kernel call at once, one imports while the
    other waits, and `_numba_checked` turns True only after `_compiled` is set (a thread that
    took "loading in progress" for "no numba" would run the twins for a while, with different
    rounding)."""
    global _compiled, _numba_checked
    if _numba_checked:
        return _compiled
    with _load_lock:
        if not _numba_checked:
            _compiled = _import_compiled()
            _numba_checked = True
    return _compiled


def _import_compiled() -> ModuleType | None:
    if os.environ.get("TINYNET_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from tinynet.kernels import compiled
    except ModuleNotFoundError as error:
        if error.name != "numba":
            raise
        return None
    except Exception as error:  # a broken numba install must not break tinynet
        warnings.warn(
            f"tinynet.kernels: numba failed to load ({type(error).__name__}: {error}); "
            "using the numpy kernels. If no cache folder is writable, point NUMBA_CACHE_DIR "
            "at one; set TINYNET_NUMBA=0 to silence this.",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return compiled


def numba_enabled() -> bool:
    """True if the compiled kernels are in use (numba importable and TINYNET_NUMBA != 0)."""
    return _load() is not None


@contextlib.contextmanager
def dispatch_mode(mode: str) -> Iterator[None]:
    """For tests: run a block under one dispatch policy, then restore the previous one.

    - ``"twin"``: every kernel runs its numpy twin, as with ``TINYNET_NUMBA=0``;
    - ``"compiled"``: every eligible array (float32/float64, C-contiguous...) runs the numba
      kernel, however small (the `_MIN_SIZE` floor is lifted); raises RuntimeError if numba is
      unavailable or switched off;
    - ``"auto"``: the normal policy.

    It switches module globals, so it affects every thread: not for use while another thread
    computes.

        with kernels.dispatch_mode("twin"):
            expected = model(x)
    """
    global _MIN_SIZE, _compiled, _numba_checked
    if mode not in ("twin", "compiled", "auto"):
        raise ValueError(f"dispatch_mode: mode must be 'twin', 'compiled' or 'auto', got {mode!r}")
    if mode == "compiled" and _load() is None:
        raise RuntimeError("dispatch_mode: the numba kernels are unavailable or switched off")
    saved = _MIN_SIZE, _compiled, _numba_checked
    if mode == "twin":
        _compiled, _numba_checked = None, True  # _load() now answers "no numba"
    elif mode == "compiled":
        _MIN_SIZE = 0
    try:
        yield
    finally:
        _MIN_SIZE, _compiled, _numba_checked = saved


def _pick_kernel(op: str, *arrays: np.ndarray) -> Callable | None:
    """The whole dispatch policy: the numba kernel for `op` on these arrays, or None for the
    numpy twin. The arrays must share one dtype, float32 or float64, and be C-contiguous,
    aligned and writeable (any other layout would make numba compile a new specialisation);
    the size that counts is the first array's.

    This runs on every kernel call, and tiny networks make thousands of calls per second, so
    it is written to be cheap: ``flags.carray`` is numpy's one flag for "C-contiguous, aligned
    and writeable", and numba is looked for only once.
    """
    module = _compiled if _numba_checked else _load()
    if module is None or op not in _COMPILED_OPS:
        return None
    first = arrays[0]
    dtype = first.dtype
    if first.size < _MIN_SIZE or dtype not in _FLOAT_DTYPES:
        return None
    for array in arrays:
        if array.dtype != dtype or not array.flags.carray:
            return None
    return getattr(module, op)


def _indices(array: np.ndarray) -> np.ndarray:
    """Integer labels as an int64, C-contiguous, writeable array (copied only if needed), the
    one layout the compiled kernels accept for them. (Checked by hand first: np.require takes
    ~2 us even when it has nothing to do, and cross-entropy calls this twice a step.)"""
    if type(array) is np.ndarray and array.dtype == np.int64 and array.flags.carray:
        return array
    return np.require(array, np.int64, "CAW")


def _flat(array: np.ndarray) -> np.ndarray:
    """1-D view of a C-contiguous array (0-d arrays included)."""
    return array.reshape(-1)


def _unary_forward(op: str, x: np.ndarray, out: np.ndarray | None, **params: float
                   ) -> np.ndarray:
    """Shared glue of the elementwise forwards: compiled kernel on flat views, else the twin.
    ``params`` are the row's parameters (formulas.py), passed to the kernel in row order."""
    x = np.asarray(x)
    if out is None:
        kernel = _pick_kernel(op, x)
        if kernel is not None:
            out = np.empty_like(x)
            kernel(_flat(x), _flat(out), *params.values())
            return out
    elif out.shape == x.shape and (out is x or not np.may_share_memory(x, out)):
        # In place (out is x) is safe element by element; a partial overlap is left to numpy,
        # which buffers it.
        kernel = _pick_kernel(op, x, out)
        if kernel is not None:
            kernel(_flat(x), _flat(out), *params.values())
            return out
    return getattr(reference, op)(x, out=out, **params)


def _unary_backward(op: str, grad: np.ndarray, saved: np.ndarray, **params: float
                    ) -> np.ndarray:
    """Shared glue of the elementwise backwards (grad and the saved input or output)."""
    grad = np.asarray(grad)
    saved = np.asarray(saved)
    if grad.shape == saved.shape:
        if not grad.flags.carray and grad.dtype in _FLOAT_DTYPES:
            # a broadcast gradient (from sum or mean) is read-only: one copy, then the kernel,
            # beats the twin's several numpy passes
            grad = np.array(grad, order="C")
        kernel = _pick_kernel(op, grad, saved)
        if kernel is not None:
            out = np.empty_like(grad)
            kernel(_flat(grad), _flat(saved), _flat(out), *params.values())
            return out
    return getattr(reference, op)(grad, saved, **params)


def _params(name: str, given: dict[str, float]) -> dict[str, float]:
    """The row's parameters in row order, as floats (one numba specialisation per kernel)."""
    row = formulas.TABLE[name]
    return {key: float(given.get(key, default)) for key, default in row.params}


def elementwise_forward(name: str, x: np.ndarray, out: np.ndarray | None = None,
                        **params: float) -> np.ndarray:
    """y = forward(x) of the formula table's activation ``name``, elementwise, any shape
    (``elementwise_forward("leaky_relu", x, negative_slope=0.2)``). Writes ``out`` if given."""
    return _unary_forward(f"{name}_forward", x, out, **_params(name, params))


def elementwise_backward(name: str, grad: np.ndarray, saved: np.ndarray, **params: float
                         ) -> np.ndarray:
    """dL/dx of the table's activation ``name`` (new array) from grad = dL/dy and what its row
    saves (``formulas.TABLE[name].saves``: the input x or the output y)."""
    return _unary_backward(f"{name}_backward", grad, saved, **_params(name, params))


# ----------------------------------------------------------------------------- activations


def sigmoid_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """s = 1 / (1 + exp(-x)), elementwise, any shape; stable for any |x|. Writes `out` if given."""
    return _unary_forward("sigmoid_forward", x, out)


def sigmoid_backward(grad: np.ndarray, s: np.ndarray) -> np.ndarray:
    """grad * s * (1 - s) (new array), with s = sigmoid(x) the saved output."""
    return _unary_backward("sigmoid_backward", grad, s)


def tanh_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """t = tanh(x), elementwise, any shape. Writes `out` if given."""
    return _unary_forward("tanh_forward", x, out)


def tanh_backward(grad: np.ndarray, t: np.ndarray) -> np.ndarray:
    """grad * (1 - t * t) (new array), with t = tanh(x) the saved output."""
    return _unary_backward("tanh_backward", grad, t)


def relu_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """y = max(x, 0), elementwise, any shape (NaN stays NaN). Writes `out` if given."""
    return _unary_forward("relu_forward", x, out)


def relu_backward(grad: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad where y > 0 else 0 (new array), with y = relu(x) the saved output."""
    return _unary_backward("relu_backward", grad, y)


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x), elementwise, in x's dtype (the numpy twin only: a rarely hot op)."""
    return reference.erf(np.asarray(x))


def step_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Heaviside step in x's dtype: 1 where x >= 0 (step(0) = 1), else 0. Zero derivative."""
    return _unary_forward("step_forward", x, out)


def _check_activation(op: str, activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{op}: unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}"
        )


def bias_activation_forward(z: np.ndarray, bias: np.ndarray | None, activation: str) -> np.ndarray:
    """y = act(z + bias) in one pass: z (N, M) C-contiguous, bias (M,) or None.

    z is a fresh matmul result: it is overwritten with y and returned.
    activation is one of "identity", "sigmoid", "tanh", "relu", "step".
    """
    _check_activation("bias_activation_forward", activation)
    if bias is None:
        if activation == "identity":
            return z
        return _unary_forward(activation + "_forward", z, z)
    if z.ndim != 2 or bias.shape != (z.shape[1],):
        raise ValueError(
            f"bias_activation_forward: z must be (N, M) and bias (M,); got z {z.shape} "
            f"and bias {bias.shape}"
        )
    kernel = _pick_kernel(f"bias_{activation}_forward", z, bias)
    if kernel is None or np.may_share_memory(z, bias):
        return reference.bias_activation_forward(z, bias, activation)
    kernel(z, bias)
    return z


def activation_backward(grad: np.ndarray, y: np.ndarray, activation: str) -> np.ndarray:
    """dL/dz from grad = dL/dy and the saved output y = act(z); same shapes.

    identity: grad (the same array); sigmoid: grad*y*(1-y); tanh: grad*(1-y*y);
    relu: grad where y > 0 else 0; step: zeros.
    """
    _check_activation("activation_backward", activation)
    if activation == "identity":
        return grad
    return _unary_backward(activation + "_backward", grad, y)


# -------------------------------------------------------------------- softmax


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Softmax along the last axis of x (a new C-contiguous array of x's shape and dtype):
    exp(x - max) / sum, each row's sum in numpy's pairwise order. The numba kernel is the one
    tn.compile's loops call, so the two modes agree to the last bit (numpy's own exp, its
    AVX-512 code, can differ from the C library's that numba calls)."""
    if not x.flags.c_contiguous:  # (not np.ascontiguousarray always: it makes 0-d arrays 1-d)
        x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    if x.size == 0:
        return out
    rows = (-1, x.shape[-1]) if x.ndim else (1, 1)
    kernel = _pick_kernel("softmax_rows", x, out)
    (kernel or reference.softmax_rows)(x.reshape(rows), out.reshape(rows))
    return out


# -------------------------------------------------------------------- softmax cross-entropy


def softmax_cross_entropy_forward(
    logits: np.ndarray, target: np.ndarray, ignore_index: int = -100
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample softmax cross-entropy, max-shifted for stability.

    logits (N, C) float, target (N,) class indices in [0, C) or equal to ``ignore_index``
    (already validated). Returns loss (N,) with loss_i = logsumexp(logits_i) -
    logits_i,target_i (0 for an ignored target) and probs (N, C), the row softmax.
    """
    target = _indices(target)
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise ValueError(
            f"softmax_cross_entropy_forward: logits must be (N, C) and target (N,); got "
            f"logits {logits.shape} and target {target.shape}"
        )
    kernel = _pick_kernel("softmax_cross_entropy_forward", logits)
    if kernel is None or logits.shape[1] == 0:
        return reference.softmax_cross_entropy_forward(logits, target, ignore_index)
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    probs = np.empty(logits.shape, dtype=logits.dtype)  # C order: the kernel's exp scratch
    kernel(logits, target, loss, probs, int(ignore_index))
    return loss, probs


def softmax_cross_entropy_backward(
    probs: np.ndarray, target: np.ndarray, grad_loss: np.ndarray, ignore_index: int = -100
) -> np.ndarray:
    """grad_logits_ij = grad_loss_i * (probs_ij - [j == target_i]) (new array, probs' dtype),
    0 in the rows whose target equals ``ignore_index``.

    probs (N, C), target (N,) int, grad_loss (N,) per-sample upstream gradient (a scalar is
    broadcast to every sample).
    """
    target = _indices(target)
    if probs.ndim != 2 or target.shape != (probs.shape[0],):
        raise ValueError(
            f"softmax_cross_entropy_backward: probs must be (N, C) and target (N,); got "
            f"probs {probs.shape} and target {target.shape}"
        )
    n = probs.shape[0]
    grad_loss = np.asarray(grad_loss, dtype=probs.dtype)
    if grad_loss.shape != (n,):  # one for the whole batch (a mean or sum): one per sample
        grad_loss = np.full(n, grad_loss, dtype=probs.dtype)
    kernel = _pick_kernel("softmax_cross_entropy_backward", probs, grad_loss)
    if kernel is None:
        return reference.softmax_cross_entropy_backward(probs, target, grad_loss, ignore_index)
    out = np.empty_like(probs)
    kernel(probs, target, grad_loss, out, int(ignore_index))
    return out


# ------------------------------------------------------------------------------ optimizers


def apply_rule(rule: updates.Rule, arrays: Sequence[np.ndarray],
               numbers: tuple[float, ...]) -> None:
    """Run an optimizer's update ``rule`` (``updates.Rule``) in place on ``arrays`` (the
    parameter, its gradient, its state: one shape) with ``numbers`` (floats, in
    ``rule.numbers`` order): the numba loop generated from the rule, or its numpy twin."""
    kernel = _rule_kernel(rule, arrays)
    if kernel is None:
        updates.run_numpy(rule, arrays, numbers)
    elif arrays[0].ndim:
        kernel(*arrays, numbers)
    else:  # numba's loops want at least one dimension
        kernel(*[a.reshape(1) for a in arrays], numbers)


_rule_kernels: dict[updates.Rule, Callable] = {}


def _rule_kernel(rule: updates.Rule, arrays: Sequence[np.ndarray]) -> Callable | None:
    """The policy of ``_pick_kernel`` for a rule's kernel, generated once per rule (and then
    found in numba's disk cache): arrays of one float dtype and shape, each C-contiguous."""
    module = _compiled if _numba_checked else _load()
    if module is None:
        return None
    first = arrays[0]
    dtype, shape = first.dtype, first.shape
    if dtype not in _FLOAT_DTYPES or first.size < _MIN_SIZE:
        return None
    for array in arrays:
        if array.dtype is not dtype or array.shape != shape or not array.flags.carray:
            if array.dtype != dtype or array.shape != shape or not array.flags.carray:
                return None
    kernel = _rule_kernels.get(rule)
    if kernel is None:
        kernel = module.load_source(updates.module_source(rule), "kernels", "rule").update
        _rule_kernels[rule] = kernel
    return kernel


# ------------------------------------------------------------------------------ perceptron

# The perceptron's twin is the story's readable rule (tinynet/perceptron.py), and on small
# inputs it is fast enough: the four rows of a logic gate for 100 epochs take ~6 ms, less than
# loading numba (0.4-1 s at a process's first compiled call). So X with fewer numbers than this
# runs the twin, and larger X (from 512 two-feature samples) the kernel, ~90x faster there.
# A lifted floor (_MIN_SIZE = 0, as under dispatch_mode("compiled")) lifts this one too.
_PERCEPTRON_MIN_SIZE = 1024


def perceptron_fit(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, lr: float, max_epochs: int
) -> tuple[float, int, bool, np.ndarray]:
    """Rosenblatt's online rule, sample by sample in order, until an epoch has no errors.

    X (N, F) float, y (N,) in {0, 1}, w (F,) float updated in place. Per sample:
    y_hat = [w . x + b >= 0] (dot summed left to right, then + b); on a mistake
    w += lr (y - y_hat) x and b += lr (y - y_hat). Arithmetic is float64, so the result is
    identical to a pure-Python loop. Returns (b, epochs_run, converged, errors_per_epoch).

    Inputs X with fewer than ``_PERCEPTRON_MIN_SIZE`` numbers run the twin, which is the
    readable rule in ``tinynet.perceptron.perceptron_rule``; larger ones the numba kernel.
    """
    if np.size(X) < _PERCEPTRON_MIN_SIZE and _MIN_SIZE > 0:
        return reference.perceptron_fit(X, y, w, b, lr, max_epochs)
    # The kernel runs in float64 on C-contiguous arrays; copies are made only when needed.
    X64 = np.require(X, np.float64, "CAW")
    y64 = _indices(y)
    w64 = np.require(w, np.float64, "CAW")
    kernel = None
    if X64.ndim == 2 and y64.shape == (X64.shape[0],) and w64.shape == (X64.shape[1],):
        kernel = _pick_kernel("perceptron_fit", X64, w64)
    if kernel is None:
        return reference.perceptron_fit(X, y, w, b, lr, max_epochs)
    b, epochs_run, converged, errors = kernel(X64, y64, w64, float(b), float(lr), int(max_epochs))
    if w64 is not w:
        w[...] = w64
    return float(b), int(epochs_run), bool(converged), errors


# ------------------------------------------------------------------------------- warm-up


def warm_up() -> None:
    """Compile (or load from numba's disk cache) every kernel for float32 and float64.

    Benchmarks call this to separate cold start from steady state; it does nothing when the
    compiled kernels are off. The convolution and pooling kernels (`conv.py`) are warmed too.
    """
    module = _load()
    if module is None:
        return
    _warm_up_conv()
    for dtype in (np.float32, np.float64):
        x = np.linspace(-2, 2, 6, dtype=dtype)
        z = x.reshape(2, 3)
        bias = np.zeros(3, dtype=dtype)
        target = np.array([0, 2], dtype=np.int64)
        loss = np.empty(2, dtype=dtype)
        for op in sorted(_COMPILED_OPS):
            kernel = getattr(module, op)
            name = op.removeprefix("bias_").rsplit("_", 1)[0]
            params = formulas.TABLE[name].defaults().values() if name in formulas.TABLE else ()
            if op == "perceptron_fit":
                if dtype is np.float64:  # the perceptron kernel is float64 only
                    kernel(z, target, np.zeros(3), 0.0, 1.0, 1)
            elif op.startswith("bias_"):
                kernel(z.copy(), bias, *params)
            elif op.startswith("softmax_cross_entropy_"):
                kernel(z, target, loss, np.empty_like(z), -100)
            elif op == "softmax_rows":
                kernel(z, np.empty_like(z))
            elif op.endswith("_backward"):
                kernel(x, x, np.empty_like(x), *params)
            else:
                kernel(x, np.empty_like(x), *params)


# ------------------------------------------------------------------ a linear layer's products

# Multiply-adds up to which a linear layer's products are numba loops. Measured (2-core EPYC,
# OpenBLAS): 32 of them take 0.5-0.9 us as a loop against 1.5-4.8 us through numpy's BLAS; the
# two meet around 4,000; at 16,384 a loop took up to 3x BLAS's time.
SMALL_MATMUL = 4096


def linear_product(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A product of a linear layer on matrices: ``"nt"`` a @ b.T (the forward, x W^T), ``"nn"``
    a @ b (the input's gradient, dz W), ``"tn"`` a.T @ b (the weight's gradient, dz^T x).

    Up to ``SMALL_MATMUL`` multiply-adds it runs the loops of small_matmul.py (calling BLAS
    costs more than such arithmetic), larger products numpy's matmul (BLAS); tn.compile's
    segments make the same choice with the same loops, so the two modes agree bit for bit.
    Twin: numpy's matmul (TINYNET_NUMBA=0, other dtypes, shapes that do not fit: numpy's
    error). Written for speed: XOR's step makes six of these calls."""
    if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype and a.dtype in _FLOAT_DTYPES:
        shape = small_product(kind, a.shape, b.shape)
        if shape is not None and _load() is not None:
            loop = _SMALL_LOOPS.get(kind) or _small_loop(kind)
            out = np.empty(shape, dtype=a.dtype)
            loop(a if a.flags.c_contiguous else np.ascontiguousarray(a),
                 b if b.flags.c_contiguous else np.ascontiguousarray(b), out)
            return out
    return np.matmul(a.T if kind == "tn" else a, b.T if kind == "nt" else b)


def small_product(kind: str, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int] | None:
    """The output shape of ``linear_product(kind)`` on matrices of shapes ``a`` and ``b`` when
    it runs small_matmul's loop (the shapes fit, at most ``SMALL_MATMUL`` multiply-adds), else
    None (numpy's matmul). tn.compile's segments decide by this too."""
    if kind == "nt":  # out (rows, cols); both sum over their second axis
        (rows, summed), (cols, summed_b) = a, b
    elif kind == "nn":
        (rows, summed), (summed_b, cols) = a, b
    else:  # "tn"
        (summed, rows), (summed_b, cols) = a, b
    if summed != summed_b or rows * summed * cols > SMALL_MATMUL:
        return None
    return rows, cols


_SMALL_LOOPS: dict[str, Callable] = {}  # "nt"/"nn"/"tn" -> small_matmul's loop, once imported


def _small_loop(kind: str) -> Callable:
    from tinynet.kernels import small_matmul

    _SMALL_LOOPS[kind] = loop = getattr(small_matmul, f"mm_{kind}")
    return loop


# ------------------------------------------------------------------ convolution and pooling
# Twins in conv.py, numba in conv_compiled.py (imported on the first call that wants one), and
# here their dispatch, with the same policy as above.


def _pick_conv(name: str, *arrays: np.ndarray) -> Callable | None:
    """The numba kernel ``name`` of conv_compiled.py for these arrays, or None for the twin:
    `_pick_kernel`'s policy (numba on, float32/float64 of one dtype, C-contiguous, aligned and
    writeable). Integer index arrays (argmax) are int64 by construction."""
    if _load() is None:  # TINYNET_NUMBA=0, numba missing, or dispatch_mode("twin")
        return None
    first = arrays[0]
    if first.size < _MIN_SIZE or first.dtype not in _FLOAT_DTYPES:
        return None
    for array in arrays:
        if array.dtype.kind == "f" and array.dtype != first.dtype:
            return None
        if not array.flags.carray:
            return None
    from tinynet.kernels import conv_compiled

    return getattr(conv_compiled, name)


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: tuple[int, int, int, int],
           dilation: Pair) -> np.ndarray:
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW); ``padding`` is (top, bottom, left, right).
    See the module docstring for the formula."""
    n, c, h, w = x.shape
    oh = output_size(h, kernel[0], stride[0], padding[0], padding[1], dilation[0])
    ow = output_size(w, kernel[1], stride[1], padding[2], padding[3], dilation[1])
    cols = np.empty((n, c, kernel[0], kernel[1], oh, ow), dtype=x.dtype)
    # Always the twin: numpy's copy of the strided window view beat every numba loop tried
    # (see conv_compiled.py), so there is no compiled im2col to dispatch to.
    im2col_twin(x, cols, stride, (padding[0], padding[2]), dilation)
    return cols.reshape(n, c * kernel[0] * kernel[1], oh * ow)


def col2im(cols: np.ndarray, size: Pair, kernel: Pair, stride: Pair,
           padding: tuple[int, int, int, int], dilation: Pair) -> np.ndarray:
    """cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W) with (H, W) = ``size``: the adjoint of
    ``im2col`` with the same arguments (overlapping patches add up)."""
    n, rows, _ = cols.shape
    c = rows // (kernel[0] * kernel[1])
    oh = output_size(size[0], kernel[0], stride[0], padding[0], padding[1], dilation[0])
    ow = output_size(size[1], kernel[1], stride[1], padding[2], padding[3], dilation[1])
    cols = np.ascontiguousarray(cols).reshape(n, c, kernel[0], kernel[1], oh, ow)
    x = np.empty((n, c) + tuple(size), dtype=cols.dtype)
    args = (stride, (padding[0], padding[2]), dilation)
    kernel_fn = _pick_conv("col2im", cols, x)
    if kernel_fn is None:
        col2im_twin(cols, x, *args)
    else:
        kernel_fn(cols, x, *args)
    return x


def max_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair,
                       padding: tuple[int, int, int, int], dilation: Pair
                       ) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) -> (max of each window (N, C, OH, OW), its position h*W + w, int64)."""
    n, c, h, w = x.shape
    oh = output_size(h, kernel[0], stride[0], padding[0], padding[1], dilation[0])
    ow = output_size(w, kernel[1], stride[1], padding[2], padding[3], dilation[1])
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    args = (kernel, stride, (padding[0], padding[2]), dilation)
    kernel_fn = _pick_conv("max_pool2d_forward", x, out, argmax)
    if kernel_fn is None:
        max_pool2d_forward_twin(x, out, argmax, *args)
    else:
        kernel_fn(x, out, argmax, *args)
    return out, argmax


def max_pool2d_backward(grad: np.ndarray, argmax: np.ndarray, size: Pair) -> np.ndarray:
    """grad (N, C, OH, OW) -> grad_input (N, C, H, W): each gradient at its window's argmax."""
    grad = np.ascontiguousarray(grad)
    grad_input = np.empty(grad.shape[:2] + tuple(size), dtype=grad.dtype)
    kernel_fn = _pick_conv("max_pool2d_backward", grad, argmax, grad_input)
    if kernel_fn is None:
        max_pool2d_backward_twin(grad, argmax, grad_input)
    else:
        kernel_fn(grad, argmax, grad_input)
    return grad_input


def _warm_up_conv() -> None:
    """Compile (or load from numba's cache) the convolution kernels for float32 and float64."""
    for dtype in (np.float32, np.float64):
        x = np.ones((1, 1, 3, 3), dtype=dtype)
        cols = im2col(x, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1))
        col2im(cols, (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1))
        out, argmax = max_pool2d_forward(x, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1))
        max_pool2d_backward(out, argmax, (3, 3))


__all__ += ["col2im", "im2col", "max_pool2d_backward", "max_pool2d_forward"]


# ----------------------------------------------------------------------------- threads

_threads: int | None = None  # set_num_threads's number, or None: the CPUs this process may use


def set_num_threads(n: int) -> None:
    """``torch.set_num_threads``: how many threads tinynet's own loops may use (tn.compile
    splits a large elementwise loop over them: ``compile/runtime.py``'s ``split``). numpy's
    BLAS keeps its own threads (``OPENBLAS_NUM_THREADS``, threadpoolctl)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):  # RuntimeError, as torch
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {n}")
    global _threads
    _threads = int(n)


def get_num_threads() -> int:
    """``torch.get_num_threads``: the threads tinynet's own loops may use: ``set_num_threads``'s
    number, else the CPUs this process may run on (its affinity: ``taskset -c 1`` gives 1)."""
    if _threads is not None:
        return _threads
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
