"""Ops the sequence models need: tril/triu (causal masks), bmm, cumsum, repeat, pad, take along
a dim (embedding lookup and reflect/replicate padding), one_hot and multinomial sampling.

Each differentiable op's backward is written in Tensor ops (so it can be differentiated again):

    tril:     out = x * L              d/dx: grad * L           (L: the lower-triangle mask)
    cumsum:   out_i = sum_{j<=i} x_j   d/dx_j = sum_{i>=j} grad_i   (a cumsum from the end)
    repeat:   out = tile(x, sizes)     d/dx: add up the copies
    take:     out = x[index] on a dim  d/dx: scatter-add grad back (repeated indices add up)
    pad:      constant: a bigger array with x inside; d/dx crops grad (pad with -pads)
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np

from tinynet import dtypes, random
from tinynet.autograd import Function
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.ops.datadep import draw
from tinynet.ops.elementwise import compare
from tinynet.ops.linalg import matmul
from tinynet.ops.operands import as_tensor, normalize_dim
from tinynet.tensor import Tensor, made_from_literals, read_values

# ---------------------------------------------------------------------------------------------
# tril / triu
# ---------------------------------------------------------------------------------------------


class Triangle(Function):
    """Keep the lower (tril) or upper (triu) triangle of the last two dims, zero the rest.
    d/dx is the same mask applied to the gradient."""

    @staticmethod
    def forward(ctx: Function, x: Any, diagonal: int = 0, upper: bool = False) -> np.ndarray:
        ctx.diagonal, ctx.upper = diagonal, upper
        return (np.triu if upper else np.tril)(x, diagonal)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Triangle.apply(grad, diagonal=ctx.diagonal, upper=ctx.upper)


def _triangle(input: Any, diagonal: int, upper: bool) -> Tensor:  # noqa: A002
    name = "triu" if upper else "tril"
    x = as_tensor(input, name)
    if x.ndim < 2:
        raise ShapeError(f"{name}: input must have at least 2 dimensions, got shape {x.shape}")
    try:
        diagonal = operator.index(diagonal)
    except TypeError as e:
        raise DTypeError(f"{name}: diagonal must be an integer, got {diagonal!r}") from e
    return Triangle.apply(x, diagonal=diagonal, upper=upper)


def tril(input: Any, diagonal: int = 0) -> Tensor:  # noqa: A002 - PyTorch's name
    """The lower triangle of the last two dims (``j <= i + diagonal``), zeros above it."""
    return _triangle(input, diagonal, upper=False)


def triu(input: Any, diagonal: int = 0) -> Tensor:  # noqa: A002 - PyTorch's name
    """The upper triangle of the last two dims (``j >= i + diagonal``), zeros below it."""
    return _triangle(input, diagonal, upper=True)


# ---------------------------------------------------------------------------------------------
# bmm
# ---------------------------------------------------------------------------------------------


def bmm(input: Any, mat2: Any) -> Tensor:  # noqa: A002 - PyTorch's names
    """Batched matrix product of (b, n, m) and (b, m, p) tensors, no broadcasting (torch.bmm);
    ``@``/``matmul`` is the broadcasting one."""
    a, b = as_tensor(input, "bmm"), as_tensor(mat2, "bmm")
    if a.ndim != 3 or b.ndim != 3:
        raise ShapeError(f"bmm: both operands must be 3-D (batch, rows, cols), got shapes "
                         f"{a.shape} and {b.shape}; use matmul (@) for other shapes")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"bmm: shapes {a.shape} and {b.shape} don't fit: expected (b, n, m) "
                         "and (b, m, p) with the same b and m")
    return matmul(a, b)


# ---------------------------------------------------------------------------------------------
# cumsum
# ---------------------------------------------------------------------------------------------


class Cumsum(Function):
    """out_i = x_0 + ... + x_i along ``dim``; d/dx_j = grad_j + ... + grad_last (ReverseCumsum)."""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = 0) -> np.ndarray:
        ctx.dim = dim
        return np.cumsum(x, axis=dim, dtype=x.dtype)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return ReverseCumsum.apply(grad, dim=ctx.dim)


class ReverseCumsum(Function):
    """out_i = x_i + ... + x_last along ``dim`` (the gradient of Cumsum; its own is Cumsum)."""

    @staticmethod
    def forward(ctx: Function, x: Any, dim: int = 0) -> np.ndarray:
        ctx.dim = dim
        return np.flip(np.cumsum(np.flip(x, dim), axis=dim, dtype=x.dtype), dim).copy()

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Cumsum.apply(grad, dim=ctx.dim)


def cumsum(input: Any, dim: int, *, dtype: Any = None) -> Tensor:  # noqa: A002
    """Running sums along ``dim`` (torch.cumsum). Integer and bool inputs sum in int64, as in
    PyTorch; ``dtype`` casts the input first."""
    x = as_tensor(input, "cumsum")
    if dtype is not None:
        x = x.to(dtypes.to_dtype(dtype))
    elif x.dtype.kind in "biu":
        x = x.to(np.int64)
    if x.ndim == 0:
        return x.clone()
    return Cumsum.apply(x, dim=normalize_dim(dim, x.ndim, "cumsum"))


# ---------------------------------------------------------------------------------------------
# repeat
# ---------------------------------------------------------------------------------------------


class Repeat(Function):
    """np.tile: ``sizes[i]`` copies along dim i. d/dx adds the copies up: the gradient reshaped
    to (copies_0, n_0, copies_1, n_1, ...) and summed over the copy dims."""

    @staticmethod
    def forward(ctx: Function, x: Any, sizes: tuple[int, ...] = ()) -> np.ndarray:
        ctx.sizes, ctx.shape = sizes, x.shape
        return np.tile(x, sizes)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        shape = (1,) * (len(ctx.sizes) - len(ctx.shape)) + tuple(ctx.shape)
        split = [n for pair in zip(ctx.sizes, shape, strict=True) for n in pair]
        summed = grad.reshape(split).sum(dim=tuple(range(0, len(split), 2)))
        return summed.reshape(ctx.shape)


def repeat(input: Any, *sizes: Any) -> Tensor:  # noqa: A002
    """``x.repeat(2, 3)``: tile the tensor (torch.Tensor.repeat; numpy's tile). ``sizes`` may
    have more entries than x has dims (new leading dims), never fewer."""
    x = as_tensor(input, "repeat")
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = tuple(sizes[0])
    try:
        sizes = tuple(operator.index(s) for s in sizes)
    except TypeError as e:
        raise DTypeError(f"repeat: sizes must be integers, got {sizes!r}") from e
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller "
                         f"than the number of tensor dims ({x.ndim}, shape {x.shape}); give one "
                         "count per dim")
    if any(s < 0 for s in sizes):
        raise ValueRangeError(f"repeat: repeat counts must be >= 0, got {sizes}")
    return Repeat.apply(x, sizes=sizes)


# ---------------------------------------------------------------------------------------------
# take along one dim: embedding lookup, reflect/replicate/circular padding
# ---------------------------------------------------------------------------------------------


class Take(Function):
    """out = x.take(index, axis=dim): the slices of x at ``index`` along ``dim`` (index may have
    any shape; it replaces that dim). d/dx scatter-adds the gradient back (TakeAdd)."""

    @staticmethod
    def forward(ctx: Function, x: Any, index: Any = None, dim: int = 0) -> np.ndarray:
        ctx.index, ctx.dim, ctx.size = index, dim, x.shape[dim]
        return np.take(x, index, axis=dim)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return TakeAdd.apply(grad, index=ctx.index, dim=ctx.dim, size=ctx.size)


class TakeAdd(Function):
    """zeros with ``size`` along ``dim``, and grad's slices added at ``index`` (repeated indices
    add up): the gradient of Take; its own gradient is Take again."""

    op = "take_add"

    @staticmethod
    def forward(ctx: Function, grad: Any, index: Any = None, dim: int = 0,
                size: int = 0) -> np.ndarray:
        ctx.index, ctx.dim = index, dim
        lead = grad.shape[:dim]
        rest = grad.shape[dim + index.ndim:]
        out = np.zeros(lead + (size,) + rest, dtype=grad.dtype)
        # move the taken dim to the front so np.add.at can scatter whole slices
        g = np.moveaxis(grad.reshape(lead + (index.size,) + rest), dim, 0)
        np.add.at(np.moveaxis(out, dim, 0), index.reshape(-1), g)
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return Take.apply(grad, index=ctx.index, dim=ctx.dim)


def _index_array(index: Any, op: str) -> np.ndarray:
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{op}: indices must be an integer tensor (int64), got {idx.dtype}; "
                         "use .long()")
    return idx.astype(np.int64, copy=False)


class EmbeddingLookup(Function):
    """out[..., :] = weight[index[...], :]. d/dweight scatter-adds each position's gradient
    into its row, times ``scale`` (0 at padding_idx, 1/count with scale_grad_by_freq)."""

    op = "embedding"

    @staticmethod
    def forward(ctx: Function, weight: Any, index: Any = None, scale: Any = None) -> np.ndarray:
        ctx.index, ctx.scale, ctx.rows = index, scale, weight.shape[0]
        return np.take(weight, index, axis=0)

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        if ctx.scale is not None:
            grad = grad * ctx.scale.astype(grad.dtype)[..., None]
        return TakeAdd.apply(grad, index=ctx.index, dim=0, size=ctx.rows)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None,  # noqa: A002
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """``F.embedding``: the rows of ``weight`` (num_embeddings, embedding_dim) at the integer
    indices ``input`` (any shape); the result has shape input.shape + (embedding_dim,).

    The gradient of a row is the sum of the gradients at every position that looked it up;
    ``padding_idx``'s row gets none. ``max_norm`` rescales, in place and without a gradient, the
    looked-up rows whose ``norm_type`` norm exceeds it (as PyTorch's embedding_renorm_).
    """
    if sparse:
        raise ValueRangeError("embedding: sparse=True (sparse gradients) is not supported by "
                              "tinynet; use sparse=False (dense gradients, same numbers)")
    idx = _index_array(input, "embedding")
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be a 2-D tensor (num_embeddings, "
                         f"embedding_dim), got {getattr(weight, 'shape', type(weight))}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueRangeError(f"embedding: index out of range: indices go from {idx.min()} to "
                              f"{idx.max()} but the table has {n} rows (0..{n - 1})")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueRangeError(f"embedding: padding_idx {padding_idx} must be within "
                                  f"num_embeddings ({n})")
        padding_idx = padding_idx % n
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    scale = None
    if padding_idx is not None or scale_grad_by_freq:
        scale = np.ones(idx.shape, dtype=np.float64)
        if scale_grad_by_freq:
            counts = np.bincount(idx.reshape(-1), minlength=n)
            scale = scale / counts[idx]
        if padding_idx is not None:
            scale = np.where(idx == padding_idx, 0.0, scale)
    return EmbeddingLookup.apply(weight, index=idx, scale=scale)


def _renorm_rows(weight: Tensor, idx: np.ndarray, max_norm: float, norm_type: float) -> None:
    from tinynet.autograd import no_grad
    from tinynet.ops.inplace import inplace

    rows = np.unique(idx)

    def renorm(data: np.ndarray) -> None:
        norms = np.linalg.norm(data[rows], ord=norm_type, axis=1)
        # PyTorch's embedding_renorm_: scale = max_norm / (norm + 1e-7) where norm > max_norm
        factor = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        data[rows] *= factor[:, None].astype(data.dtype)

    with no_grad():
        inplace(weight, "embedding_renorm_", renorm)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """``F.one_hot``: int64 (..., num_classes) with a 1 at each index (num_classes = -1: one
    more than the largest index)."""
    idx = _index_array(tensor, "one_hot")
    if idx.size and idx.min() < 0:
        raise ValueRangeError(f"one_hot: class values must be non-negative, got {idx.min()}")
    if num_classes == -1:
        if idx.size == 0:
            raise ValueRangeError("one_hot: can not infer the number of classes of an empty "
                                  "tensor; give num_classes")
        read_values("one_hot(num_classes=-1) (the number of classes is the largest index "
                    "plus one: give num_classes)")
        num_classes = int(idx.max()) + 1
    if idx.size and idx.max() >= num_classes:
        raise ValueRangeError(f"one_hot: class values must be smaller than num_classes "
                              f"({num_classes}), got {idx.max()}")
    # a comparison op, not numpy on the values: tn.compile recomputes it at every replay
    index = tensor if isinstance(tensor, Tensor) else Tensor._make(idx)
    classes = Tensor._make(made_from_literals(np.arange(num_classes)))
    return compare(np.equal, index.unsqueeze(-1), classes).to(np.int64)


# ---------------------------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------------------------


class ConstantPad(Function):
    """A bigger (or, for negative pads, cropped) array with x inside and ``value`` around it.
    d/dx: the gradient cropped back, i.e. padded with the negated pads (zeros where x was
    cropped)."""

    op = "constant_pad"

    @staticmethod
    def forward(ctx: Function, x: Any, pads: tuple[tuple[int, int], ...] = (),
                value: float = 0.0) -> np.ndarray:
        ctx.pads = pads
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pads, strict=True))
        out = np.full(shape, value, dtype=x.dtype)
        source = tuple(slice(max(-lo, 0), n - max(-hi, 0))
                       for n, (lo, hi) in zip(x.shape, pads, strict=True))
        target = tuple(slice(max(lo, 0), m - max(hi, 0))
                       for m, (lo, hi) in zip(shape, pads, strict=True))
        out[target] = x[source]
        return out

    @staticmethod
    def backward(ctx: Function, grad: Tensor) -> Tensor:
        return ConstantPad.apply(grad, pads=tuple((-lo, -hi) for lo, hi in ctx.pads), value=0.0)


def _source_index(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each output position along one dim, the input position it copies."""
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    i = np.abs(i)  # reflect: mirror around 0 and around n - 1, edges not repeated
    return np.where(i > n - 1, 2 * (n - 1) - i, i)


def pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:  # noqa: A002
    """``F.pad``: pad the last dims. ``pad`` lists (left, right) for the last dim first, then
    (top, bottom) for the one before, and so on, as in PyTorch. Modes: ``"constant"`` (with
    ``value``, default 0; negative pads crop), ``"reflect"`` (mirror, edge not repeated: pads
    < the size), ``"replicate"`` (repeat the edge) and ``"circular"`` (wrap around)."""
    x = as_tensor(input, "pad")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: the padding length ({len(pad)}) must be even and at most twice "
                         f"the number of dims of the input (shape {x.shape})")
    try:
        pad = tuple(operator.index(p) for p in pad)
    except TypeError as e:
        raise DTypeError(f"pad: paddings must be integers, got {pad!r}") from e
    k = len(pad) // 2
    pairs = [(0, 0)] * (x.ndim - k) + [(pad[2 * j], pad[2 * j + 1]) for j in reversed(range(k))]
    if mode == "constant":
        shape = [n + lo + hi for n, (lo, hi) in zip(x.shape, pairs, strict=True)]
        if any(m < 0 for m in shape):
            raise ShapeError(f"pad: the padding {pad} would give a negative size for input "
                             f"{x.shape}")
        fill = 0.0 if value is None else value
        dtypes.check_storable(fill, x.dtype, "pad")
        return ConstantPad.apply(x, pads=tuple(pairs), value=fill)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueRangeError(f"pad: mode must be 'constant', 'reflect', 'replicate' or "
                              f"'circular', got {mode!r}")
    if value not in (None, 0, 0.0):
        raise ValueRangeError(f"pad: padding mode {mode!r} doesn't take in value argument")
    out = x
    for d in range(x.ndim - k, x.ndim):
        lo, hi = pairs[d]
        n = x.shape[d]
        if lo < 0 or hi < 0:
            raise ValueRangeError(f"pad: {mode} padding must be non-negative, got {pad}")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueRangeError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the "
                                  f"size {n} of dim {d} (input {x.shape})")
        if mode != "reflect" and n == 0 and (lo or hi):
            raise ShapeError(f"pad: can't {mode}-pad an empty dim {d} (input {x.shape})")
        if mode == "circular" and (lo > n or hi > n):
            raise ValueRangeError(f"pad: circular padding ({lo}, {hi}) must be at most the size "
                                  f"{n} of dim {d} (input {x.shape})")
        if lo or hi:
            out = Take.apply(out, index=_source_index(n, lo, hi, mode), dim=d)
    return out if out is not x else x.clone()


# ---------------------------------------------------------------------------------------------
# multinomial
# ---------------------------------------------------------------------------------------------


def multinomial(input: Any, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator: Any = None) -> Tensor:
    """Draw ``num_samples`` category indices per row from the (unnormalised, non-negative)
    weights ``input`` (1-D, or 2-D: one distribution per row), int64, from tinynet's generator
    (``tn.manual_seed`` makes it reproducible). Without replacement each index comes at most
    once (a category is removed once drawn)."""
    x = as_tensor(input, "multinomial")
    if x.ndim not in (1, 2):
        raise ShapeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise DTypeError(f"multinomial: only floating-point weights are supported, got "
                         f"{x.dtype}; use .float()")
    n = x.shape[-1]
    num_samples = operator.index(num_samples)
    if num_samples <= 0:
        raise ValueRangeError(f"multinomial: cannot sample n_sample <= 0 samples (got "
                              f"{num_samples})")
    if not replacement and num_samples > n:
        raise ValueRangeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) "
                              f"samples without replacement ({num_samples} > {n})")
    sample = functools.partial(_multinomial, num_samples=num_samples, replacement=replacement)
    # a recorded draw: tn.compile draws again from the generator, on that call's weights
    return draw(sample, random.source(generator, "multinomial"), x.detach())


def _multinomial(rng: np.random.Generator, given: np.ndarray, *, num_samples: int,
                 replacement: bool) -> np.ndarray:
    """``num_samples`` indices per row of the weights ``given`` (1-D or 2-D), int64: each draw
    inverts the row's cumulative weights at a uniform number; without replacement a drawn
    category's weight becomes 0. The weights are checked here, at every draw (a replay's
    too)."""
    rows = given.reshape(-1, given.shape[-1]).astype(np.float64)
    n = rows.shape[1]
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise ValueRangeError("multinomial: probability tensor contains either inf, nan or "
                              "element < 0")
    if (rows.sum(axis=1) <= 0).any():
        raise ValueRangeError("multinomial: invalid multinomial distribution (sum of "
                              "probabilities <= 0)")
    if not replacement and ((rows > 0).sum(axis=1) < num_samples).any():
        raise ValueRangeError("multinomial: invalid multinomial distribution (with replacement"
                              "=False, not enough non-negative category to sample)")
    out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
    weights = rows.copy()
    for s in range(num_samples):
        cdf = np.cumsum(weights, axis=1)
        u = rng.random(rows.shape[0]) * cdf[:, -1]
        # the first category whose cumulative weight exceeds u (zero weights are never picked)
        pick = np.minimum((cdf <= u[:, None]).sum(axis=1), n - 1)
        out[:, s] = pick
        if not replacement:
            weights[np.arange(rows.shape[0]), pick] = 0.0
    return out.reshape(given.shape[:-1] + (num_samples,))
