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
- sigmoid and tanh do not call the C library's exp/tanh (one scalar call per element: numba
  has no vector math library here) but `_exp_nonpositive_f32`/`_f64` (scalar.py), plain
  arithmetic that LLVM vectorises (float32 4-6x faster, float64 tanh 9x, within 2 ulps), the
  rules tn.compile's loops call too; so do the softmax kernels' exps (``exp_nonpositive``:
  the exponents are shifted below zero);
- one thread. `parallel=True` with `prange` was measured and left out: on the 2-core target
  it gave at best 1.8x (sigmoid, >= 10^6 elements, idle machine), while with the other core
  busy, or right after an OpenBLAS matmul whose threads still hold both cores, the two-thread
  kernel ran 2x to 7x slower than this one-thread loop.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from numba import njit

from tinynet.kernels import formulas
from tinynet.kernels.flat import flat
from tinynet.kernels.scalar import (  # noqa: F401 - for codegen
    _sigmoid,
    _sigmoid_f32,
    _sigmoid_f64,
    _tanh_f32,
    _tanh_f64,
    exp_nonpositive,
    int_view,
)

# ----------------------------------------------------------- elementwise, from the table
# Every activation's kernels (<op>_forward, <op>_backward, bias_<op>_forward) are generated
# from tinynet/kernels/formulas.py as a module file in the cache folder, so numba's disk cache
# (cache=True) finds them again in the next process.


def cache_dir() -> Path:
    """Where generated modules live: ``$TINYNET_CACHE_DIR`` or ``~/.cache/tinynet``."""
    root = os.environ.get("TINYNET_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinynet")
    return Path(root)


def load_source(source: str, folder: str, prefix: str) -> ModuleType:
    """Import generated ``source`` from ``<cache dir>/<folder>/<prefix>_<hash>.py`` (written
    first if new or different; atomically, so another process never reads half a file)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"tinynet_{folder}_{prefix}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    path = cache_dir() / folder / f"{prefix}_{digest}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_generated = load_source(formulas.kernel_source(), "kernels", "elementwise")
ELEMENTWISE_KERNELS = tuple(
    f"{kind}" for row in formulas.ROWS if row.activation
    for kind in (f"{row.name}_forward", f"{row.name}_backward", f"bias_{row.name}_forward"))
globals().update({name: getattr(_generated, name) for name in ELEMENTWISE_KERNELS})


def generated_module_name() -> str:
    """The generated module's name (it changes with the table: its hash is in it)."""
    return _generated.__name__


# ----------------------------------------------------------- softmax cross-entropy (N, C)


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_forward(logits, target, loss, probs, ignore_index):
    """Fills probs (N, C) = row softmax of logits and loss (N,) = logsumexp - target logit
    (0 for a target equal to ignore_index): each row's max; x - max for every element; their
    exps in one pass over the whole array (scalar.py's vectorisable rule of the dtype: the
    exponents are <= 0; a pass per row of ten classes would not vectorise); each row's sum in
    order, the scale, the loss. probs must be C-contiguous (the exps' scratch); loss holds
    each row's max until its loss is written."""
    zero = logits.dtype.type(0.0)
    n, c = logits.shape
    p = flat(probs)
    bits = int_view(p)
    for i in range(n):
        m = logits[i, 0]
        for j in range(1, c):
            if logits[i, j] > m:
                m = logits[i, j]
        loss[i] = m
        for j in range(c):
            p[i * c + j] = logits[i, j] - m
    for e in range(n * c):
        p[e] = exp_nonpositive(p[e], p, bits, e)
    for i in range(n):
        b = i * c
        total = zero
        for j in range(c):
            total += p[b + j]
        for j in range(c):
            p[b + j] = p[b + j] / total
        t = target[i]
        if t == ignore_index:  # an ignored target adds nothing
            loss[i] = zero
            continue
        if t < 0 or t >= c:  # numba does not check bounds: refuse to read past the row
            raise IndexError("softmax_cross_entropy_forward: target index out of range")
        loss[i] = np.log(total) - (logits[i, t] - loss[i])


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_backward(probs, target, grad_loss, out, ignore_index):
    """out (N, C) = grad_loss[:, None] * (probs - onehot(target)); 0 in the rows whose target
    equals ignore_index."""
    one = probs.dtype.type(1.0)
    zero = probs.dtype.type(0.0)
    n, c = probs.shape
    for i in range(n):
        t = target[i]
        if t == ignore_index:
            for j in range(c):
                out[i, j] = zero
            continue
        g = grad_loss[i]
        for j in range(c):
            out[i, j] = probs[i, j] * g
        if t < 0 or t >= c:
            raise IndexError("softmax_cross_entropy_backward: target index out of range")
        out[i, t] = (probs[i, t] - one) * g


# ----------------------------------------------------- numpy's sum, softmax along a row


@njit(cache=True, error_model="numpy")
def row_sum(a, start, n):
    """a[start:start + n].sum() in numpy's order (pairwise summation, as ``np.add.reduce``
    along a contiguous axis), so a row summed here equals the eager sum bit for bit: up to 128
    numbers in 8 running sums (``block_sum``); a longer run is split in two (the first part a
    multiple of 8 long) and the parts' sums added (``pairwise_sum``)."""
    if n <= 128:
        return block_sum(a, start, n)
    frames, firsts = sum_scratch(a)
    return pairwise_sum(a, start, n, frames, firsts)


@njit(cache=True, error_model="numpy")
def row_sums(src, dst, rows, n):
    """dst[r] = row_sum(src, r * n, n) for each of ``rows`` contiguous runs (one scratch for
    all: allocating it per row cost more than the sums of LeNet's 576-pixel planes)."""
    frames, firsts = sum_scratch(src)
    for r in range(rows):
        dst[r] = pairwise_sum(src, r * n, n, frames, firsts)


@njit(cache=True, error_model="numpy")
def sum_scratch(a):
    """The frames ``pairwise_sum`` walks the tree with: (start, size, stage) per depth, and
    each frame's first half's sum (64 levels: more than any array has)."""
    return np.empty((3, 64), np.int64), np.empty(64, a.dtype)


@njit(cache=True, error_model="numpy")
def pairwise_sum(a, start, n, frames, firsts):
    """``row_sum`` with the caller's scratch (``sum_scratch``). numpy recurses; numba's disk
    cache cannot keep a recursive function, so the same tree is walked here with a stack: a
    frame is a part of the run and how far it got (stage 0: start the first half, 1: the
    second, 2: add them)."""
    if n <= 128:
        return block_sum(a, start, n)
    starts, sizes, stages = frames[0], frames[1], frames[2]
    depth, value = 0, a.dtype.type(0.0)
    starts[0], sizes[0], stages[0] = start, n, 0
    while depth >= 0:
        at, size = starts[depth], sizes[depth]
        half = size // 2 - (size // 2) % 8
        if size <= 128:
            value = block_sum(a, at, size)
            depth -= 1
        elif stages[depth] == 0:
            stages[depth] = 1
            depth += 1
            starts[depth], sizes[depth], stages[depth] = at, half, 0
        elif stages[depth] == 1:
            firsts[depth] = value
            stages[depth] = 2
            depth += 1
            starts[depth], sizes[depth], stages[depth] = at + half, size - half, 0
        else:
            value = firsts[depth] + value
            depth -= 1
    return value


@njit(cache=True, error_model="numpy")
def block_sum(a, start, n):
    """numpy's pairwise sum of up to 128 numbers: 8 running sums added as a tree, then the
    numbers left over one by one (fewer than 8: one running sum)."""
    if n < 8:
        total = a.dtype.type(0.0)
        for i in range(n):
            total += a[start + i]
        return total
    v = a[start:start + n]  # indices from 0 up: numba drops its wraparound of negative ones
    r0, r1, r2, r3 = v[0], v[1], v[2], v[3]
    r4, r5, r6, r7 = v[4], v[5], v[6], v[7]
    m = n - n % 8
    for j in range(1, m // 8):
        w = v[j * 8:j * 8 + 8]  # (with v[i + 1]... each load kept a test: 2x slower)
        r0 += w[0]
        r1 += w[1]
        r2 += w[2]
        r3 += w[3]
        r4 += w[4]
        r5 += w[5]
        r6 += w[6]
        r7 += w[7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(m, n):
        total += v[i]
    return total


@njit(cache=True, error_model="numpy")
def softmax_rows(x, out):
    """out = the softmax of each row of x (rows, n), both C-contiguous: e = exp(x - max) (a
    NaN wins the max, as numpy's max), then e / sum(e), the sum in numpy's pairwise order
    (``row_sum``): eager's ``np.exp(x - x.max(-1)) / e.sum(-1)``, each exp by scalar.py's
    vectorisable rule of the dtype. Eager softmax along the last axis runs this, and so do
    tn.compile's loops: one exp for both (numpy's own, its SIMD code on an AVX-512 CPU,
    differs from the C library's in the last bit, and both from the rule's)."""
    rows, n = x.shape
    a = flat(x)
    dst = flat(out)
    bits = int_view(dst)
    frames, firsts = sum_scratch(dst)
    for row in range(rows):
        b = row * n
        top = a[b]
        for col in range(1, n):
            if a[b + col] > top or a[b + col] != a[b + col]:
                top = a[b + col]
        for col in range(n):
            dst[b + col] = exp_nonpositive(a[b + col] - top, dst, bits, b + col)
        total = pairwise_sum(dst, b, n, frames, firsts)
        for col in range(n):
            dst[b + col] = dst[b + col] / total


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
