"""Hypothesis strategies for tinynet's tests.

Three layers, each built on the one before:

1. **Shapes** (``shapes``, ``broadcast_shapes``): 0-d tensors, size-1 dims and broadcasting
   pairs are all drawn, because that is where gradient bookkeeping goes wrong.
2. **Values** (``values``, ``separated``, ``distinct``): well-conditioned float64 numbers,
   kept away from the points where an op has a kink (|x| at 0, relu at 0, clip at its bounds,
   max/min at ties), so central differences see a smooth function. Ties are tested on purpose,
   with hand-computed expectations, in ``test_gradients.py``.
3. **Memory layouts** (``layouts``, ``lay_out``): as minitorch's strategies do, a tensor's
   values are also placed in a random memory layout (axes permuted, gaps between elements,
   reversed axes) so each op meets non-contiguous, strided and negative-stride arrays.
   ``lay_out`` is written with tinynet's own differentiable ops, so a gradient check through it
   checks the op on that layout in both directions.

On top of these, ``CASES`` maps every op in ``tinynet.autograd.Function.registry`` to a
strategy of ``Case``: a function that applies the op, float64 input values, and what numpy says
the forward result is. ``test_gradients.py`` and ``test_double_backward.py`` iterate over it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from tinynet.ops.elementwise import Cast
from tinynet.ops.shape import ScatterAdd

# Sizes stay small: gradcheck builds the full Jacobian, one backward per output element and two
# forwards per input element. Double backward squares that, so it asks for a smaller side.
MAX_DIMS = 3
MAX_SIDE = 4


# ---------------------------------------------------------------------------------------------
# 1. Shapes
# ---------------------------------------------------------------------------------------------


def shapes(
    min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1, max_side: int = MAX_SIDE
) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, 0-d included."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcast_shapes(
    count: int = 2, max_dims: int = MAX_DIMS, max_side: int = MAX_SIDE
) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """``count`` shapes that broadcast together, e.g. ((3, 1), (4,)) or ((), (2, 2))."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=count, min_dims=0, max_dims=max_dims, max_side=max_side
    ).map(lambda b: b.input_shapes)


# ---------------------------------------------------------------------------------------------
# 2. Values
# ---------------------------------------------------------------------------------------------


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def values(
    shape: tuple[int, ...], low: float = -2.0, high: float = 2.0, away_from_zero: float = 0.0
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays with every element drawn in [low, high] (none filled in by repetition),
    optionally with |x| >= away_from_zero."""
    elements = _floats(low, high)
    if away_from_zero:
        elements = elements.filter(lambda v: abs(v) >= away_from_zero)
    return hnp.arrays(np.float64, shape, elements=elements, fill=st.nothing())


# Grid values: k * GRID plus a jitter far smaller than GRID. Two arrays on grids offset by half a
# step never come closer than GRID / 2 - 2 * JITTER, so max/min/clip never sit on a tie or bound.
GRID, JITTER = 0.25, 0.03


@st.composite
def separated(draw: Any, shape: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    """Values near the grid (k + offset) * GRID, k in -8..8; ``offset=0.5`` gives a second
    array that stays at least 0.065 away from the first everywhere."""
    k = draw(hnp.arrays(np.int64, shape, elements=st.integers(-8, 8), fill=st.nothing()))
    jitter = draw(hnp.arrays(np.float64, shape, elements=_floats(-JITTER, JITTER),
                             fill=st.nothing()))
    return (k + offset) * GRID + jitter


@st.composite
def distinct(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Values that are pairwise at least 0.085 apart: no max/min ties anywhere."""
    k = draw(hnp.arrays(np.int64, shape, elements=st.integers(-60, 60), unique=True,
                        fill=st.nothing()))
    jitter = draw(hnp.arrays(np.float64, shape, elements=_floats(-0.02, 0.02),
                             fill=st.nothing()))
    return k / 8 + jitter


# ---------------------------------------------------------------------------------------------
# 3. Memory layouts
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a tensor's elements sit in memory.

    ``order[i]`` is the tensor axis stored as the i-th memory axis (outermost first); ``steps[i]``
    is the spacing along that memory axis: 2 leaves a gap after every element, and a negative
    step stores the axis reversed (a negative stride in the final view).
    """

    order: tuple[int, ...]
    steps: tuple[int, ...]

    @property
    def is_contiguous(self) -> bool:
        return self.order == tuple(range(len(self.order))) and set(self.steps) <= {1}


@st.composite
def layouts(draw: Any, ndim: int) -> Layout:
    """A random layout for a tensor with ``ndim`` dims (shrinks to the contiguous one)."""
    order = tuple(draw(st.permutations(range(ndim))))
    steps = tuple(draw(st.lists(st.sampled_from([1, -1, 2, -2]), min_size=ndim, max_size=ndim)))
    return Layout(order, steps)


def lay_out(x: tn.Tensor, layout: Layout) -> tn.Tensor:
    """A tensor equal to ``x`` whose data is a view into a bigger buffer laid out as ``layout``.

    Built from differentiable ops (permute, slicing, stack, clone), so gradients flow back to
    ``x`` and an op applied to the result receives (and saves) the non-contiguous array.
    """
    if x.ndim == 0 or layout.is_contiguous:
        return x
    # The buffer holds x's axes in memory order, reversed where the step is negative ...
    y = x.permute(layout.order)
    y = y[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in layout.steps)]
    # ... with a zero after every element along axes whose step is 2.
    for axis, step in enumerate(layout.steps):
        if abs(step) == 2:
            doubled = y.shape[:axis] + (2 * y.shape[axis],) + y.shape[axis + 1:]
            y = tn.stack([y, tn.zeros_like(y)], dim=axis + 1).reshape(doubled)
    buffer = y.clone()  # memory of its own, C-contiguous
    # A strided view picks x's elements back out of the buffer, in x's order.
    picks = []
    for n, step in zip(buffer.shape, layout.steps, strict=True):
        spacing = abs(step)
        if step > 0:
            picks.append(slice(None, None, spacing))
        else:
            count = n // spacing
            picks.append(slice((count - 1) * spacing if count else None, None, -spacing))
    view = buffer[tuple(picks)]
    return view.permute(tuple(int(i) for i in np.argsort(layout.order)))


# ---------------------------------------------------------------------------------------------
# 4. One case per differentiable op
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One application of an op to check.

    ``fn`` takes one float64 Tensor per entry of ``inputs`` and returns the op's result;
    ``expected`` is numpy's answer for the forward pass. ``eps`` is the finite-difference step
    and ``atol``/``rtol`` the gradcheck tolerances: far tighter than gradcheck's defaults
    (atol 1e-5, rtol 1e-3), since in float64 with eps = 1e-6 central differences are accurate
    to about 1e-9 here. Only the Cast case, which rounds to float32 on purpose, is held to
    gradcheck's defaults.
    """

    description: str
    fn: Callable[..., tn.Tensor] = dataclasses.field(repr=False)
    inputs: list[np.ndarray]
    expected: np.ndarray
    eps: float = 1e-6
    atol: float = 1e-7
    rtol: float = 1e-6


@st.composite
def with_layouts(draw: Any, case: Case) -> Case:
    """The same case, with each input handed to the op in a random memory layout."""
    chosen = [draw(layouts(np.ndim(a))) for a in case.inputs]
    if all(c.is_contiguous for c in chosen):
        return case

    def laid_out_fn(*xs: tn.Tensor) -> tn.Tensor:
        return case.fn(*(lay_out(x, c) for x, c in zip(xs, chosen, strict=True)))

    return dataclasses.replace(
        case, description=f"{case.description} with layouts {chosen}", fn=laid_out_fn
    )


Draw = Any  # hypothesis's draw function


def _binary_shapes(draw: Draw, max_side: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    a, b = draw(broadcast_shapes(2, max_side=max_side))
    return a, b


def _elementwise_binary(
    name: str, symbol: str, fn: Callable[[Any, Any], Any], np_fn: Callable[[Any, Any], Any],
    low_b: float = -2.0, high_b: float = 2.0, b_away: float = 0.0,
    low_a: float = -2.0, high_a: float = 2.0,
) -> Callable[..., st.SearchStrategy[Case]]:
    """Cases for a binary op: tensor op tensor (broadcasting), tensor op array constant, and
    Python number op tensor (the reflected operator)."""

    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        sa, sb = _binary_shapes(draw, max_side)
        a = draw(values(sa, low_a, high_a))
        b = draw(values(sb, low_b, high_b, away_from_zero=b_away))
        form = draw(st.sampled_from(["tensors", "constant right", "number left"]))
        if form == "tensors":
            return Case(f"x {symbol} y, shapes {sa}, {sb}", fn, [a, b], np_fn(a, b))
        if form == "constant right":
            return Case(f"x {symbol} array, shapes {sa}, {sb}", lambda x: fn(x, b), [a],
                        np_fn(a, b))
        number = float(draw(values((), low_a, high_a)))
        return Case(f"{number!r} {symbol} y, shape {sb}", lambda y: fn(number, y), [b],
                    np_fn(np.float64(number), b))

    cases.__name__ = name
    return cases


add_cases = _elementwise_binary("add", "+", lambda a, b: a + b, np.add)
sub_cases = _elementwise_binary("sub", "-", lambda a, b: a - b, np.subtract)
mul_cases = _elementwise_binary("mul", "*", lambda a, b: a * b, np.multiply)
div_cases = _elementwise_binary("div", "/", lambda a, b: a / b, np.divide, b_away=0.5)


@st.composite
def pow_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    form = draw(st.sampled_from(["tensors", "integer exponent", "number base"]))
    if form == "tensors":  # d/db needs log(a): positive bases
        sa, sb = _binary_shapes(draw, max_side)
        a, b = draw(values(sa, 0.5, 2.0)), draw(values(sb, -2.0, 2.0))
        return Case(f"x ** y, shapes {sa}, {sb}", lambda x, y: x**y, [a, b], np.power(a, b))
    if form == "integer exponent":  # any sign of base
        k = draw(st.integers(-2, 3))
        shape = draw(shapes(max_side=max_side))
        a = draw(values(shape, away_from_zero=0.3))
        return Case(f"x ** {k}, shape {shape}", lambda x: x**k, [a], np.power(a, float(k)))
    base = draw(_floats(0.5, 3.0))
    shape = draw(shapes(max_side=max_side))
    b = draw(values(shape))
    return Case(f"{base!r} ** y, shape {shape}", lambda y: base**y, [b], np.power(base, b))


def _unary(
    name: str, fn: Callable[[Any], Any], np_fn: Callable[[Any], Any],
    low: float = -2.0, high: float = 2.0, away_from_zero: float = 0.0,
) -> Callable[..., st.SearchStrategy[Case]]:
    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        shape = draw(shapes(max_side=max_side))
        x = draw(values(shape, low, high, away_from_zero))
        return Case(f"{name}(x), shape {shape}", fn, [x], np_fn(x))

    cases.__name__ = name
    return cases


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


neg_cases = _unary("neg", lambda x: -x, np.negative)
exp_cases = _unary("exp", tn.exp, np.exp)
log_cases = _unary("log", tn.log, np.log, 0.2, 3.0)
sqrt_cases = _unary("sqrt", lambda x: x.sqrt(), np.sqrt, 0.2, 3.0)
abs_cases = _unary("abs", abs, np.abs, away_from_zero=0.05)
sigmoid_cases = _unary("sigmoid", lambda x: x.sigmoid(), _sigmoid, -4.0, 4.0)
tanh_cases = _unary("tanh", tn.tanh, np.tanh, -3.0, 3.0)
relu_cases = _unary("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0), away_from_zero=0.05)
# Step: the true derivative (zero); the surrogates are checked against their formulas in
# test_gradients.py, since no finite difference of the step function gives them.
step_cases = _unary("step", tn.step, lambda x: (x >= 0).astype(np.float64), away_from_zero=0.05)
clone_cases = _unary("clone", lambda x: x.clone(), np.copy)


def _extreme_binary(name: str, fn: Any, np_fn: Any) -> Callable[..., st.SearchStrategy[Case]]:
    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        sa, sb = _binary_shapes(draw, max_side)
        a, b = draw(separated(sa)), draw(separated(sb, offset=0.5))
        if draw(st.booleans()):
            a, b = b, a
        return Case(f"{name}(x, y), shapes {sa}, {sb}", fn, [a, b], np_fn(a, b))

    cases.__name__ = name
    return cases


maximum_cases = _extreme_binary("maximum", tn.maximum, np.maximum)
minimum_cases = _extreme_binary("minimum", lambda a, b: a.minimum(b), np.minimum)


@st.composite
def clip_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    x = draw(separated(shape))
    low, high = sorted(draw(st.lists(st.integers(-9, 8), min_size=2, max_size=2, unique=True)))
    low_value, high_value = (low + 0.5) * GRID, (high + 0.5) * GRID  # between grid points
    form = draw(st.sampled_from(["both", "min only", "max only"]))
    lo = None if form == "max only" else low_value
    hi = None if form == "min only" else high_value
    return Case(f"clip(x, {lo}, {hi}), shape {shape}", lambda t: t.clip(lo, hi), [x],
                np.clip(x, lo, hi))


@st.composite
def where_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    sc, sa, sb = draw(broadcast_shapes(3, max_side=max_side))
    condition = draw(hnp.arrays(np.bool_, sc))
    a, b = draw(values(sa)), draw(values(sb))
    return Case(f"where(c, x, y), shapes {sc}, {sa}, {sb}",
                lambda x, y: tn.where(tn.tensor(condition), x, y), [a, b],
                np.where(condition, a, b))


@st.composite
def cast_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape))
    if draw(st.booleans()):
        # The rule itself, float64 -> float64 (cast() skips a cast to the same dtype).
        return Case(f"Cast(x, float64) ** 2, shape {shape}",
                    lambda t: Cast.apply(t, dtype=np.dtype(np.float64)) ** 2, [x], x**2)
    # Through float32 and back: the engine casts each gradient to its input's dtype. The
    # function rounds to float32, so central differences need a step far above float32's
    # resolution; (x+e)^2 - (x-e)^2 = 4xe exactly, so the larger step adds no error of its own.
    rounded = x.astype(np.float32).astype(np.float64)
    return Case(f"x.float().double() ** 2, shape {shape}", lambda t: t.float().double() ** 2,
                [x], rounded**2, eps=1e-2, atol=1e-5, rtol=1e-3)


@st.composite
def _reduction_args(draw: Draw, ndim: int) -> tuple[Any, bool, dict[str, Any], str]:
    """dim (None, an int, or a tuple; negative dims too), keepdim, spelled either way."""
    form = draw(st.sampled_from(["all", "one", "several"]) if ndim else st.just("all"))
    if form == "all":
        dim: Any = None
    elif form == "one":
        dim = draw(st.integers(-ndim, ndim - 1))
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        dim = tuple(a - ndim if draw(st.booleans()) else a for a in axes)
    keep = draw(st.booleans())
    kwargs = (
        {"axis": dim, "keepdims": keep} if draw(st.booleans()) else {"dim": dim, "keepdim": keep}
    )
    return dim, keep, kwargs, ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _reduction(
    name: str, np_fn: Callable[..., np.ndarray], value_strategy: Callable[..., Any]
) -> Callable[..., st.SearchStrategy[Case]]:
    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        shape = draw(shapes(max_side=max_side))
        x = draw(value_strategy(shape))
        dim, keep, kwargs, spelled = draw(_reduction_args(len(shape)))
        axis = tuple(d % len(shape) for d in dim) if isinstance(dim, tuple) else dim
        return Case(f"x.{name}({spelled}), shape {shape}",
                    lambda t: getattr(t, name)(**kwargs), [x],
                    np_fn(x, axis=axis, keepdims=keep))

    cases.__name__ = name
    return cases


sum_cases = _reduction("sum", np.sum, values)
mean_cases = _reduction("mean", np.mean, values)
def _extreme_reduction(name: str, np_fn: Callable[..., np.ndarray]) -> Callable[..., Any]:
    """max/min: over everything (a tensor), over one dim (``.values`` of the named tuple, gathered
    at the index), or over several dims (``amax``/``amin``, numpy's ``axis=(...)`` spelling)."""

    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        shape = draw(shapes(max_side=max_side))
        x = draw(distinct(shape))
        dim, keep, kwargs, spelled = draw(_reduction_args(len(shape)))
        axis = tuple(d % len(shape) for d in dim) if isinstance(dim, tuple) else dim
        expected = np_fn(x, axis=axis, keepdims=keep)
        if isinstance(dim, int):
            return Case(f"x.{name}({spelled}).values, shape {shape}",
                        lambda t: getattr(t, name)(**kwargs).values, [x], expected)
        if isinstance(dim, tuple) and draw(st.booleans()):
            return Case(f"x.a{name}({dim}, {keep}), shape {shape}",
                        lambda t: getattr(t, "a" + name)(dim, keep), [x], expected)
        return Case(f"x.{name}({spelled}), shape {shape}",
                    lambda t: getattr(t, name)(**kwargs), [x], expected)

    cases.__name__ = name
    return cases


max_cases = _extreme_reduction("max", np.max)
min_cases = _extreme_reduction("min", np.min)


@st.composite
def reshape_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape))
    size = int(np.prod(shape))
    # A new shape with the same size: split it into factors, add size-1 dims, maybe one -1.
    factors = [f for f in range(2, size + 1) for _ in range(_multiplicity(size, f))]
    dims = [1] * draw(st.integers(0, 1))
    for f in draw(st.permutations(factors)):
        if dims and draw(st.booleans()):
            dims[-1] *= f
        else:
            dims.append(f)
    dims = list(draw(st.permutations(dims)))
    spelled: list[int] = list(dims)
    if dims and draw(st.booleans()):
        spelled[draw(st.integers(0, len(dims) - 1))] = -1
    target = tuple(dims)
    if draw(st.booleans()):
        return Case(f"x.reshape{tuple(spelled)}, shape {shape}",
                    lambda t: t.reshape(*spelled), [x], x.reshape(target))
    return Case(f"x.view({tuple(spelled)}), shape {shape}",
                lambda t: t.view(tuple(spelled)), [x], x.reshape(target))


def _multiplicity(n: int, f: int) -> int:
    """How many times the prime ``f`` divides ``n`` (0 for composite ``f``)."""
    if any(f % p == 0 for p in range(2, f)):
        return 0
    count = 0
    while n % f == 0:
        n //= f
        count += 1
    return count


@st.composite
def permute_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape))
    ndim = len(shape)
    # permute twice as often: only it reaches orders that are not their own inverse
    form = draw(st.sampled_from(["permute", "permute", "T", "transpose"]) if ndim >= 2 else
                st.sampled_from(["permute", "T"]))
    if form == "T":
        return Case(f"x.T, shape {shape}", lambda t: t.T, [x], x.T)
    if form == "transpose":
        d0, d1 = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=2, max_size=2))
        return Case(f"x.transpose({d0}, {d1}), shape {shape}", lambda t: t.transpose(d0, d1),
                    [x], np.swapaxes(x, d0, d1))
    order = tuple(draw(st.permutations(range(ndim))))
    return Case(f"x.permute{order}, shape {shape}", lambda t: t.permute(*order), [x],
                np.transpose(x, order))


@st.composite
def broadcast_to_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape))
    target = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=1, base_shape=shape, max_dims=MAX_DIMS + 1, max_side=max_side
    )).result_shape
    if draw(st.booleans()):
        return Case(f"broadcast_to(x, {target}), shape {shape}",
                    lambda t: tn.broadcast_to(t, target), [x], np.broadcast_to(x, target))
    lead = len(target) - len(shape)
    # -1 keeps a dim's size, so it may stand wherever the size does not change
    sizes = tuple(
        -1 if i >= lead and n == shape[i - lead] and draw(st.booleans()) else n
        for i, n in enumerate(target)
    )
    return Case(f"x.expand{sizes}, shape {shape}", lambda t: t.expand(*sizes), [x],
                np.broadcast_to(x, target))


def _indices(shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Basic indices (ints, slices with any step, None, ...), integer arrays (repeats
    included) and boolean masks."""
    basic = hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True)
    if not shape:
        return basic
    arrays = hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2,
                                                                             max_side=3))
    masks = hnp.arrays(np.bool_, shape)
    return st.one_of(basic, arrays, masks)


@st.composite
def getitem_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape))
    index = draw(_indices(shape))
    return Case(f"x[{index!r}], shape {shape}", lambda t: t[index], [x], x[index])


@st.composite
def scatter_add_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """ScatterAdd (the gradient of indexing) as an op of its own: zeros(shape) with g added at
    index; repeated integer indices add up."""
    shape = draw(shapes(max_side=max_side))
    index = draw(_indices(shape))
    if isinstance(index, np.ndarray) and index.dtype == np.bool_:
        index = np.nonzero(index)  # what indexing hands its backward
    picked_shape = np.zeros(shape)[index].shape
    g = draw(values(picked_shape))
    expected = np.zeros(shape)
    np.add.at(expected, index, g)
    return Case(f"scatter_add(g, {shape}, {index!r})",
                lambda t: ScatterAdd.apply(t, shape=shape, index=index), [g], expected)


@st.composite
def cat_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(min_dims=1, max_side=max_side))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    count = draw(st.integers(1, 3))
    pieces = []
    for _ in range(count):
        piece_shape = list(shape)
        piece_shape[dim] = draw(st.integers(1, max_side))
        pieces.append(draw(values(tuple(piece_shape))))
    keyword = draw(st.sampled_from(["dim", "axis"]))
    return Case(f"cat(<{count} tensors>, {keyword}={dim}), shapes {[p.shape for p in pieces]}",
                lambda *ts: tn.cat(list(ts), **{keyword: dim}), pieces,
                np.concatenate(pieces, axis=dim))


@st.composite
def stack_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_side=max_side))
    dim = draw(st.integers(-len(shape) - 1, len(shape)))
    count = draw(st.integers(1, 3))
    pieces = [draw(values(shape)) for _ in range(count)]
    return Case(f"stack(<{count} tensors>, dim={dim}), shape {shape}",
                lambda *ts: tn.stack(list(ts), dim=dim), pieces, np.stack(pieces, axis=dim))


@st.composite
def matmul_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """numpy's matmul shapes: 1-D on either side, matrices, and broadcast batches."""
    sa, sb = draw(hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=2, max_side=max_side
    )).input_shapes
    a, b = draw(values(sa)), draw(values(sb))
    if draw(st.booleans()):
        return Case(f"x @ y, shapes {sa}, {sb}", lambda x, y: x @ y, [a, b], a @ b)
    return Case(f"matmul(x, array), shapes {sa}, {sb}", lambda x: tn.matmul(x, b), [a], a @ b)


def _softmax_np(x: np.ndarray, dim: int | None) -> np.ndarray:
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _log_softmax_np(x: np.ndarray, dim: int | None) -> np.ndarray:
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def _softmax_like(name: str, np_fn: Any) -> Callable[..., st.SearchStrategy[Case]]:
    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        shape = draw(shapes(max_side=max_side))
        x = draw(values(shape, -3.0, 3.0))
        ndim = len(shape)
        dim = draw(st.integers(-ndim, ndim - 1)) if ndim else -1
        keyword = draw(st.sampled_from(["dim", "axis"]))
        return Case(f"x.{name}({keyword}={dim}), shape {shape}",
                    lambda t: getattr(t, name)(**{keyword: dim}), [x],
                    np_fn(x, dim if ndim else None))

    cases.__name__ = name
    return cases


softmax_cases = _softmax_like("softmax", _softmax_np)
log_softmax_cases = _softmax_like("log_softmax", _log_softmax_np)

_NP_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: z,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "step": lambda z: (z >= 0).astype(z.dtype),
}


@st.composite
def linear_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """The fused layer act(x @ W^T + b): batch dims 0 to 2, bias or none, every activation."""
    batch = draw(shapes(max_dims=2, max_side=max_side))
    n_in, n_out = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    activation = draw(st.sampled_from(list(_NP_ACTIVATIONS)))
    x = draw(values(batch + (n_in,)))
    weight = draw(values((n_out, n_in)))
    bias = draw(values((n_out,))) if draw(st.booleans()) else None
    z = x @ weight.T + (0 if bias is None else bias)
    if activation in ("relu", "step"):
        assume(np.abs(z).min(initial=1.0) > 1e-3)  # keep away from the kink at 0
    expected = _NP_ACTIVATIONS[activation](z)
    where = f"x {x.shape}, weight {weight.shape}, bias {None if bias is None else bias.shape}"
    if bias is None:
        return Case(f"linear({where}, {activation})",
                    lambda x, w: tn.ops.linear(x, w, None, activation), [x, weight], expected)
    return Case(f"linear({where}, {activation})",
                lambda x, w, b: tn.ops.linear(x, w, b, activation), [x, weight, bias], expected)


@st.composite
def cross_entropy_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    n, c = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    logits = draw(values((n, c), -3.0, 3.0))
    target = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    losses = -_log_softmax_np(logits, 1)[np.arange(n), target]
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    return Case(f"softmax_cross_entropy(logits {logits.shape}, {target}, {reduction})",
                lambda z: tn.ops.softmax_cross_entropy(z, target, reduction), [logits],
                np.asarray(expected))


@st.composite
def mse_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """The fused mean squared error: input and target of one shape; target a tensor that
    requires grad too, or a constant array."""
    shape = draw(shapes(max_side=max_side))
    a, b = draw(values(shape)), draw(values(shape))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    squares = (a - b) ** 2
    expected = np.asarray({"mean": squares.mean(), "sum": squares.sum(), "none": squares}[
        reduction])
    if draw(st.booleans()):
        return Case(f"mse_loss(x, y, {reduction}), shape {shape}",
                    lambda x, y: tn.ops.mse_loss(x, y, reduction), [a, b], expected)
    return Case(f"mse_loss(x, array, {reduction}), shape {shape}",
                lambda x: tn.ops.mse_loss(x, b, reduction), [a], expected)


# ---- the binary cross-entropies of tinynet.nn.functional (registered when it loads) -------


def _functional() -> Any:
    import tinynet.nn.functional as functional

    return functional


def _loss_case(
    name: str, call: Callable[..., tn.Tensor], x: np.ndarray, t: np.ndarray,
    expected_losses: np.ndarray, reduction: str, target_is_tensor: bool, options: str,
) -> Case:
    """A loss case: the target is a second differentiable input, or a constant array."""
    expected = np.asarray({"mean": expected_losses.mean(), "sum": expected_losses.sum(),
                           "none": expected_losses}[reduction])
    where = f"shape {x.shape}, {reduction}{options}"
    if target_is_tensor:  # the loss is differentiable in the target too
        return Case(f"{name}(x, y, {where})", call, [x, t], expected)
    return Case(f"{name}(x, array, {where})", lambda x_: call(x_, t), [x], expected)


@st.composite
def nn_bce_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """Probabilities kept inside [0.05, 0.95]: away from the clamped logs at 0 and 1, and
    (for targets) from the [0, 1] check, which finite differences must not step over."""
    shape = draw(shapes(max_side=max_side))
    x, t = draw(values(shape, 0.05, 0.95)), draw(values(shape, 0.05, 0.95))
    weight = draw(values(shape, 0.5, 2.0)) if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    losses = -(t * np.log(x) + (1 - t) * np.log(1 - x)) * (1 if weight is None else weight)
    return _loss_case(
        "binary_cross_entropy",
        lambda a, b: _functional().binary_cross_entropy(a, b, weight, reduction),
        x, t, losses, reduction, draw(st.booleans()), "" if weight is None else ", weight",
    )


@st.composite
def nn_bce_with_logits_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """Logits away from 0, where the log-sigmoid form has kinks (min(x, 0), |x|)."""
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape, -3.0, 3.0, away_from_zero=0.05))
    t = draw(values(shape, 0.0, 1.0))
    weight = draw(values(shape, 0.5, 2.0)) if draw(st.booleans()) else None
    pos_weight = draw(values(shape[-1:], 0.5, 3.0)) if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    s = _sigmoid(x)
    p = 1 if pos_weight is None else pos_weight
    losses = -(p * t * np.log(s) + (1 - t) * np.log(1 - s)) * (1 if weight is None else weight)
    options = ("" if weight is None else ", weight") + (
        "" if pos_weight is None else ", pos_weight")
    return _loss_case(
        "binary_cross_entropy_with_logits",
        lambda a, b: _functional().binary_cross_entropy_with_logits(
            a, b, weight, reduction, pos_weight),
        x, t, losses, reduction, draw(st.booleans()), options,
    )


# ---- PyTorch-parity ops (issue 11) ------------------------------------------------------------

sin_cases = _unary("sin", tn.sin, np.sin, -4.0, 4.0)
cos_cases = _unary("cos", lambda x: x.cos(), np.cos, -4.0, 4.0)


@st.composite
def _index_along(draw: Draw, shape: tuple[int, ...], dim: int, max_side: int) -> np.ndarray:
    """An int64 index for gather along ``dim``: any length there, at most the input's
    elsewhere, repeats allowed."""
    index_shape = tuple(draw(st.integers(1, max_side)) if d == dim else
                        draw(st.integers(1, n)) for d, n in enumerate(shape))
    return draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[dim] - 1)))


@st.composite
def gather_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(min_dims=1, max_side=max_side))
    x = draw(values(shape))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    index = draw(_index_along(shape, dim % len(shape), max_side))
    crop = tuple(slice(0, n) for n in index.shape)
    expected = np.take_along_axis(x[tuple(slice(None) if d == dim % len(shape) else c
                                          for d, c in enumerate(crop))], index, dim)
    form = draw(st.sampled_from(["gather", "sort", "topk"]))
    if form == "sort":
        x = draw(distinct(shape))
        descending = draw(st.booleans())
        order = np.argsort(-x if descending else x, axis=dim)
        return Case(f"x.sort({dim}, descending={descending}).values, shape {shape}",
                    lambda t: t.sort(dim, descending).values, [x],
                    np.take_along_axis(x, order, dim))
    if form == "topk":
        x = draw(distinct(shape))
        k = draw(st.integers(0, shape[dim]))
        largest = draw(st.booleans())
        order = np.argsort(-x if largest else x, axis=dim)
        picked = np.take(order, np.arange(k), axis=dim)
        return Case(f"x.topk({k}, {dim}, largest={largest}).values, shape {shape}",
                    lambda t: t.topk(k, dim, largest).values, [x],
                    np.take_along_axis(x, picked, dim))
    return Case(f"x.gather({dim}, index {index.tolist()}), shape {shape}",
                lambda t: t.gather(dim, tn.tensor(index)), [x], expected)


@st.composite
def scatter_add_along_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """ScatterAddAlong (the gradient of gather) as an op of its own."""
    from tinynet.ops.select import ScatterAddAlong

    shape = draw(shapes(min_dims=1, max_side=max_side))
    dim = draw(st.integers(0, len(shape) - 1))
    index = draw(_index_along(shape, dim, max_side))
    g = draw(values(index.shape))
    expected = np.zeros(shape)
    grids = np.indices(index.shape, sparse=True)
    np.add.at(expected, tuple(index if d == dim else gr for d, gr in enumerate(grids)), g)
    return Case(f"scatter_add_along(g, {shape}, dim={dim}, {index.tolist()})",
                lambda t: ScatterAddAlong.apply(t, shape=shape, dim=dim, index=index), [g],
                expected)


@st.composite
def norm_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """The 2-norm (and std, built on it) away from 0, where its gradient has a kink."""
    shape = draw(shapes(max_side=max_side))
    x = draw(values(shape, away_from_zero=0.3))
    dim, keep, _, spelled = draw(_reduction_args(len(shape)))
    axis = tuple(d % len(shape) for d in dim) if isinstance(dim, tuple) else dim
    if draw(st.booleans()) or x.size < 2:
        return Case(f"x.norm(dim={dim}, keepdim={keep}), shape {shape}",
                    lambda t: t.norm(dim=dim, keepdim=keep), [x],
                    np.sqrt((x * x).sum(axis=axis, keepdims=keep)))
    n = x.size // np.asarray(x.sum(axis=axis)).size
    assume(n >= 2 and np.all(np.asarray(x.std(axis=axis)) > 0.1))
    return Case(f"x.std(dim={dim}, keepdim={keep}), shape {shape}",
                lambda t: t.std(dim=dim, keepdim=keep), [x],
                np.asarray(x.std(axis=axis, keepdims=keep, ddof=1)))


@st.composite
def einsum_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """Two operands with random letters from 'ijkl': contractions, outer products, traces
    over one operand's own letters, and a random output order."""
    letters = "ijkl"
    sizes = {c: draw(st.integers(1, max_side)) for c in letters}
    a_sub = "".join(draw(st.permutations(letters))[:draw(st.integers(0, 3))])
    b_sub = "".join(draw(st.permutations(letters))[:draw(st.integers(0, 3))])
    used = sorted(set(a_sub + b_sub))
    out = "".join(c for c in draw(st.permutations(used)) if draw(st.booleans()))
    a = draw(values(tuple(sizes[c] for c in a_sub)))
    b = draw(values(tuple(sizes[c] for c in b_sub)))
    equation = f"{a_sub},{b_sub}->{out}"
    return Case(f"einsum({equation!r}), shapes {a.shape}, {b.shape}",
                lambda x, y: tn.einsum(equation, x, y), [a, b], np.einsum(equation, a, b))


@st.composite
def copy_slices_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """CopySlices (an in-place op through a view): base with the elements at ``positions``
    (distinct flat positions) replaced by ``values``."""
    from tinynet.ops.inplace import CopySlices

    shape = draw(shapes(min_dims=1, max_side=max_side))
    base = draw(values(shape))
    size = int(np.prod(shape))
    count = draw(st.integers(1, size))
    positions = np.array(draw(st.permutations(range(size)))[:count], dtype=np.int64)
    replaced = draw(values((count,)))
    expected = base.copy().reshape(-1)
    expected[positions] = replaced
    return Case(f"copy_slices(base {shape}, positions {positions.tolist()})",
                lambda b, v: CopySlices.apply(b, v, positions=positions), [base, replaced],
                expected.reshape(shape))


# Every differentiable op -> the strategy of its cases. Keys are the op classes' names, as in
# ``tinynet.autograd.Function.registry``; tests fail if the two ever disagree.
CASES: dict[str, Callable[..., st.SearchStrategy[Case]]] = {
    "Add": add_cases,
    "Sub": sub_cases,
    "Mul": mul_cases,
    "Div": div_cases,
    "Pow": pow_cases,
    "Neg": neg_cases,
    "Exp": exp_cases,
    "Log": log_cases,
    "Sqrt": sqrt_cases,
    "Abs": abs_cases,
    "Maximum": maximum_cases,
    "Minimum": minimum_cases,
    "Clip": clip_cases,
    "Where": where_cases,
    "Cast": cast_cases,
    "Clone": clone_cases,
    "Sum": sum_cases,
    "Mean": mean_cases,
    "Max": max_cases,
    "Min": min_cases,
    "Reshape": reshape_cases,
    "Permute": permute_cases,
    "BroadcastTo": broadcast_to_cases,
    "GetItem": getitem_cases,
    "ScatterAdd": scatter_add_cases,
    "Cat": cat_cases,
    "Stack": stack_cases,
    "MatMul": matmul_cases,
    "Sigmoid": sigmoid_cases,
    "Tanh": tanh_cases,
    "ReLU": relu_cases,
    "Step": step_cases,
    "Softmax": softmax_cases,
    "LogSoftmax": log_softmax_cases,
    "Linear": linear_cases,
    "SoftmaxCrossEntropy": cross_entropy_cases,
    "MeanSquaredError": mse_cases,
    "BinaryCrossEntropy": nn_bce_cases,
    "BinaryCrossEntropyWithLogits": nn_bce_with_logits_cases,
    "Sin": sin_cases,
    "Cos": cos_cases,
    "Gather": gather_cases,
    "ScatterAddAlong": scatter_add_along_cases,
    "Norm": norm_cases,
    "Einsum": einsum_cases,
    "CopySlices": copy_slices_cases,
}


def registered_ops() -> set[str]:
    """Every op in the registry, with the modules that define ops all loaded (the registry
    fills as modules import, so the answer must not depend on which tests ran first)."""
    import tinynet.nn.functional  # noqa: F401 - registers the element-wise losses

    return {name for name in tn.autograd.Function.registry if not name.startswith("_")}


# ---- convolution and pooling (tinynet/ops/conv.py), checked against plain numpy loops -----


def _taps_np(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             pads: tuple[int, int, int, int], dilation: tuple[int, int]) -> np.ndarray:
    """(N, C, kh, kw, OH, OW): tap (i, j) of every window, by slicing a zero-padded copy
    (a different route from the kernels' strided views and loops)."""
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]))
    padded[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w] = x
    oh = (padded.shape[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (padded.shape[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    taps = np.zeros((n, c, kernel[0], kernel[1], oh, ow))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r, s = i * dilation[0], j * dilation[1]
            taps[:, :, i, j] = padded[:, :, r:r + stride[0] * (oh - 1) + 1:stride[0],
                                      s:s + stride[1] * (ow - 1) + 1:stride[1]]
    return taps


def _col2im_np(cols: np.ndarray, size: tuple[int, int], kernel: tuple[int, int],
               stride: tuple[int, int], pads: tuple[int, int, int, int],
               dilation: tuple[int, int]) -> np.ndarray:
    """The adjoint of ``_taps_np``, one element at a time."""
    n, rows, _ = cols.shape
    c = rows // (kernel[0] * kernel[1])
    oh = (size[0] + pads[0] + pads[1] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (size[1] + pads[2] + pads[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    cols = cols.reshape(n, c, kernel[0], kernel[1], oh, ow)
    out = np.zeros((n, c) + size)
    for index in np.ndindex(cols.shape):
        _, _, i, j, p, q = index
        row = p * stride[0] - pads[0] + i * dilation[0]
        column = q * stride[1] - pads[2] + j * dilation[1]
        if 0 <= row < size[0] and 0 <= column < size[1]:
            out[index[0], index[1], row, column] += cols[index]
    return out


def _smallest_side(kernel: int, dilation: int, padding: int) -> int:
    """The smallest image side that one (dilated) window fits in, after padding."""
    return max(1, dilation * (kernel - 1) + 1 - padding)


@st.composite
def _window_geometry(draw: Draw, max_side: int, max_kernel: int = 3) -> dict[str, Any]:
    """Image size, kernel, stride, (top, bottom, left, right) padding and dilation such that
    at least one window fits: odd and even sizes, strides and dilations of 1 and 2. (The
    sides can reach ``max_side + 1``, or just fit a large dilated kernel.)"""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 1)) for _ in range(4))
    smallest = [_smallest_side(kernel[a], dilation[a], pads[2 * a] + pads[2 * a + 1])
                for a in (0, 1)]
    size = tuple(draw(st.integers(low, max(low, max_side + 1))) for low in smallest)
    return {"size": size, "kernel": kernel, "stride": stride, "padding": pads,
            "dilation": dilation}


@st.composite
def im2col_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    g = draw(_window_geometry(max_side))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(values((n, c) + g["size"]))
    geometry = {k: v for k, v in g.items() if k != "size"}
    taps = _taps_np(x, g["kernel"], g["stride"], g["padding"], g["dilation"])
    expected = taps.reshape(n, -1, taps.shape[4] * taps.shape[5])
    return Case(f"Im2Col(x {x.shape}, {geometry})", lambda t: Im2Col.apply(t, **geometry), [x],
                expected)


@st.composite
def col2im_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    g = draw(_window_geometry(max_side))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    taps_shape = _taps_np(np.zeros((n, c) + g["size"]), g["kernel"], g["stride"],
                          g["padding"], g["dilation"]).shape
    cols = draw(values((n, c * g["kernel"][0] * g["kernel"][1],
                        taps_shape[4] * taps_shape[5])))
    return Case(f"Col2Im(cols {cols.shape}, {g})", lambda t: Col2Im.apply(t, **g), [cols],
                _col2im_np(cols, g["size"], g["kernel"], g["stride"], g["padding"],
                           g["dilation"]))


def _conv2d_np(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
               pads: tuple[int, int, int, int], dilation: tuple[int, int],
               groups: int) -> np.ndarray:
    """out[n, o, p, q] = b[o] + sum over c, i, j of w[o, c, i, j] * tap[n, c, i, j, p, q],
    group by group."""
    taps = _taps_np(x, w.shape[2:], stride, pads, dilation)
    c_in, c_out = x.shape[1] // groups, w.shape[0] // groups
    out = np.concatenate([
        np.einsum("ncijpq,ocij->nopq", taps[:, k * c_in:(k + 1) * c_in],
                  w[k * c_out:(k + 1) * c_out]) for k in range(groups)], axis=1)
    return out if b is None else out + b.reshape(-1, 1, 1)


@st.composite
def convolution_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """F.conv2d: batch 1 or 2, groups 1 or 2, bias or none, padding as an int, a pair,
    'same' (odd and even kernels: the extra pixel goes bottom/right) or 'valid'."""
    g = draw(_window_geometry(max_side))
    groups = draw(st.sampled_from([1, 1, 2]))
    n = draw(st.integers(1, 2))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel, stride, dilation = g["kernel"], g["stride"], g["dilation"]
    spelled: Any = draw(st.sampled_from(["int", "pair", "same", "valid"])
                        if stride == (1, 1) else st.sampled_from(["int", "pair"]))
    if spelled == "int":
        spelled = draw(st.integers(0, 1))
        pads = (spelled,) * 4
    elif spelled == "pair":
        spelled = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
        pads = (spelled[0], spelled[0], spelled[1], spelled[1])
    elif spelled == "valid":
        pads = (0, 0, 0, 0)
    else:
        total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        pads = (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
    size = tuple(max(side, _smallest_side(kernel[a], dilation[a], pads[2 * a] + pads[2 * a + 1]))
                 for a, side in enumerate(g["size"]))
    x = draw(values((n, c) + size))
    w = draw(values((o, c // groups) + kernel))
    b = draw(values((o,))) if draw(st.booleans()) else None
    expected = _conv2d_np(x, w, b, stride, pads, dilation, groups)
    where = (f"x {x.shape}, w {w.shape}, bias {b is not None}, stride={stride}, "
             f"padding={spelled!r}, dilation={dilation}, groups={groups}")
    conv = _functional().conv2d
    if b is None:
        return Case(f"conv2d({where})",
                    lambda t, u: conv(t, u, None, stride, spelled, dilation, groups), [x, w],
                    expected)
    return Case(f"conv2d({where})",
                lambda t, u, v: conv(t, u, v, stride, spelled, dilation, groups), [x, w, b],
                expected)


@st.composite
def max_pool_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """F.max_pool2d on distinct values (no ties, so central differences see one maximum);
    padding up to half the kernel, stride None (= kernel) or drawn, ceil_mode on or off."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([None, 1, 2, (1, 2)]))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ceil_mode = draw(st.booleans())
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    smallest = [_smallest_side(kernel[a], dilation[a], 2 * padding[a]) for a in (0, 1)]
    size = tuple(draw(st.integers(low, max(low, max_side + 1))) for low in smallest)
    x = draw(distinct((n, c) + size))
    st_pair = kernel if stride is None else (stride if isinstance(stride, tuple)
                                             else (stride, stride))
    extra = [0, 0]
    for axis in (0, 1):  # ceil_mode: PyTorch's output size, as extra bottom/right padding
        span = dilation[axis] * (kernel[axis] - 1) + 1
        full = size[axis] + 2 * padding[axis]
        count = (full - span) // st_pair[axis] + 1
        if ceil_mode:
            count = -(-(full - span) // st_pair[axis]) + 1
            if (count - 1) * st_pair[axis] >= size[axis] + padding[axis]:
                count -= 1
        extra[axis] = max((count - 1) * st_pair[axis] + span - full, 0)
    pads = (padding[0], padding[0] + extra[0], padding[1], padding[1] + extra[1])
    taps = _taps_np(x, kernel, st_pair, pads, dilation)
    inside = _taps_np(np.ones((1, 1) + size), kernel, st_pair, pads, dilation) > 0
    # A window with no pixel in the image (dilation + padding) gives -inf, which finite
    # differences cannot check; test_conv_parity.py compares that case with PyTorch.
    assume(inside.any(axis=(2, 3)).all())
    expected = np.where(inside, taps, -np.inf).max(axis=(2, 3))
    return Case(f"max_pool2d(x {x.shape}, {kernel}, {stride}, {padding}, {dilation}, "
                f"ceil_mode={ceil_mode})",
                lambda t: _functional().max_pool2d(t, kernel, stride, padding, dilation,
                                                   ceil_mode), [x], expected)


from tinynet.ops.conv import Col2Im, Im2Col  # noqa: E402 - with the cases that use them

CASES.update({
    "Im2Col": im2col_cases,
    "Col2Im": col2im_cases,
    "Convolution": convolution_cases,
    "MaxPool": max_pool_cases,
})


# ---- sequence-model ops (tinynet/ops/sequence.py, issue 22) ---------------------------------


@st.composite
def triangle_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(min_dims=2, max_side=max_side))
    x = draw(values(shape))
    diagonal = draw(st.integers(-3, 3))
    upper = draw(st.booleans())
    name = "triu" if upper else "tril"
    return Case(f"x.{name}({diagonal}), shape {shape}",
                lambda t: getattr(t, name)(diagonal), [x],
                (np.triu if upper else np.tril)(x, diagonal))


@st.composite
def cumsum_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(min_dims=1, max_side=max_side))
    x = draw(values(shape))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return Case(f"x.cumsum({dim}), shape {shape}", lambda t: t.cumsum(dim), [x],
                np.cumsum(x, axis=dim))


@st.composite
def reverse_cumsum_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    from tinynet.ops.sequence import ReverseCumsum

    shape = draw(shapes(min_dims=1, max_side=max_side))
    x = draw(values(shape))
    dim = draw(st.integers(0, len(shape) - 1))
    return Case(f"ReverseCumsum(x, dim={dim}), shape {shape}",
                lambda t: ReverseCumsum.apply(t, dim=dim), [x],
                np.flip(np.cumsum(np.flip(x, dim), axis=dim), dim))


@st.composite
def repeat_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(max_dims=3, max_side=3))
    x = draw(values(shape))
    sizes = tuple(draw(st.lists(st.integers(1, 3), min_size=len(shape),
                                max_size=len(shape) + 2)))
    return Case(f"x.repeat{sizes}, shape {shape}", lambda t: t.repeat(*sizes), [x],
                np.tile(x, sizes))


@st.composite
def take_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """Take along a dim, as reached through F.pad (reflect/replicate/circular) or as a lookup."""
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=2, max_side=max_side))
    x = draw(values(shape))
    mode = draw(st.sampled_from(["reflect", "replicate", "circular"]))
    k = draw(st.integers(1, len(shape)))
    pads = []
    for d in range(k):
        n = shape[len(shape) - 1 - d]
        pads += [draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))]
    widths = [(0, 0)] * (len(shape) - k) + [(pads[2 * j], pads[2 * j + 1])
                                            for j in reversed(range(k))]
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    return Case(f"F.pad(x, {tuple(pads)}, mode={mode!r}), shape {shape}",
                lambda t: _functional().pad(t, tuple(pads), mode=mode), [x],
                np.pad(x, widths, mode=np_mode))


@st.composite
def take_add_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    from tinynet.ops.sequence import TakeAdd

    rows = draw(st.integers(1, max_side))
    index = draw(hnp.arrays(np.int64, draw(shapes(min_dims=1, max_dims=2, max_side=max_side)),
                            elements=st.integers(0, rows - 1)))
    width = draw(st.integers(1, 3))
    g = draw(values(index.shape + (width,)))
    expected = np.zeros((rows, width))
    np.add.at(expected, index, g)
    return Case(f"TakeAdd(g {g.shape}, index {index.tolist()}, size {rows})",
                lambda t: TakeAdd.apply(t, index=index, dim=0, size=rows), [g], expected)


@st.composite
def embedding_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    """The true derivative only: padding_idx and scale_grad_by_freq change the gradient on
    purpose (test_sequence_ops.py checks them against torch)."""
    rows = draw(st.integers(1, max_side))
    weight = draw(values((rows, draw(st.integers(1, 3)))))
    index = draw(hnp.arrays(np.int64, draw(shapes(max_dims=2, max_side=max_side)),
                            elements=st.integers(0, rows - 1)))
    return Case(f"F.embedding(index {index.tolist()}, weight {weight.shape})",
                lambda w: _functional().embedding(tn.tensor(index), w), [weight], weight[index])


@st.composite
def constant_pad_cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=max_side))
    x = draw(values(shape))
    k = draw(st.integers(1, len(shape)))
    pads = []
    for d in range(k):
        n = shape[len(shape) - 1 - d]
        lo = draw(st.integers(-(n - 1), 2))
        pads += [lo, draw(st.integers(-(n - 1 - max(-lo, 0)), 2))]
    value = draw(_floats(-2, 2))
    widths = [(0, 0)] * (len(shape) - k) + [(pads[2 * j], pads[2 * j + 1])
                                            for j in reversed(range(k))]
    expected = np.pad(x, [(max(a, 0), max(b, 0)) for a, b in widths], constant_values=value)
    expected = expected[tuple(slice(max(-a, 0), expected.shape[i] - max(-b, 0))
                              for i, (a, b) in enumerate(widths))]
    return Case(f"F.pad(x, {tuple(pads)}, value={value}), shape {shape}",
                lambda t: _functional().pad(t, tuple(pads), value=value), [x], expected)


CASES.update({
    "Triangle": triangle_cases,
    "Cumsum": cumsum_cases,
    "ReverseCumsum": reverse_cumsum_cases,
    "Repeat": repeat_cases,
    "Take": take_cases,
    "TakeAdd": take_add_cases,
    "EmbeddingLookup": embedding_cases,
    "ConstantPad": constant_pad_cases,
})


# ---- the formula table's activations (tinynet/kernels/formulas.py; issue 18) ---------------
# Reference values from plain numpy/math formulas written here, not from the table. Inputs stay
# away from the kinks (x = 0; hardtanh's bounds; softplus' threshold), where no finite
# difference gives the one-sided derivative PyTorch picks (tests/test_activations.py checks
# those points exactly).


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _away_from(x: np.ndarray, points: tuple[float, ...], gap: float = 0.05) -> np.ndarray:
    """x with every element within ``gap`` of one of ``points`` moved 2 gap past it."""
    for p in points:
        near = np.abs(x - p) < gap
        x = np.where(near, p + 2 * gap * np.sign(x - p + 1e-300), x)
    return x


def _table_activation(name: str, fn: Callable[..., Any], np_fn: Callable[..., Any],
                      params: dict[str, list[float]], kinks: Callable[..., tuple[float, ...]],
                      low: float = -3.0, high: float = 3.0) -> Callable[..., Any]:
    @st.composite
    def cases(draw: Draw, max_side: int = MAX_SIDE) -> Case:
        shape = draw(shapes(max_side=max_side))
        chosen = {k: draw(st.sampled_from(v)) for k, v in params.items()}
        x = _away_from(draw(values(shape, low, high)), kinks(**chosen))
        return Case(f"{name}(x, {chosen}), shape {shape}", lambda t: fn(t, **chosen), [x],
                    np_fn(x, **chosen))

    cases.__name__ = name
    return cases


def _np_softplus(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    return np.where(x * beta > threshold, x, np.logaddexp(0, x * beta) / beta)


def _np_gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


_F = tn.nn.functional
CASES.update({
    "LeakyReLU": _table_activation(
        "leaky_relu", _F.leaky_relu, lambda x, negative_slope: np.where(
            x > 0, x, negative_slope * x), {"negative_slope": [0.01, 0.2, -0.5]},
        lambda **_: (0.0,)),
    "ELU": _table_activation(
        "elu", _F.elu, lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x)),
        {"alpha": [1.0, 0.5, 2.0]}, lambda **_: (0.0,)),
    "Hardtanh": _table_activation(
        "hardtanh", _F.hardtanh, lambda x, min_val, max_val: np.clip(x, min_val, max_val),
        {"min_val": [-1.0, -2.0], "max_val": [1.0, 0.5]},
        lambda min_val, max_val: (min_val, max_val)),
    "Softplus": _table_activation(
        "softplus", _F.softplus, _np_softplus, {"beta": [1.0, 2.0, 0.5],
                                                "threshold": [20.0, 1.0]},
        lambda beta, threshold: (threshold / beta,), -6.0, 6.0),
    "SiLU": _table_activation("silu", _F.silu, lambda x: x * _sigmoid(x), {}, lambda: ()),
    "Mish": _table_activation("mish", _F.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), {},
                              lambda: ()),
    "GELU": _table_activation("gelu", _F.gelu, lambda x: x * 0.5 * (1 + _erf(x / math.sqrt(2))),
                              {}, lambda: (), -4.0, 4.0),
    "GELUTanh": _table_activation(
        "gelu_tanh", lambda t: _F.gelu(t, approximate="tanh"), _np_gelu_tanh, {}, lambda: (),
        -4.0, 4.0),
    "Erf": _table_activation("erf", tn.ops.erf, _erf, {}, lambda: ()),
})
