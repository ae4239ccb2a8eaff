"""The op database: one entry per op, in the spirit of PyTorch's OpInfo
(``torch/testing/_internal/common_methods_invocations.py``). ``test_opdb.py`` runs every entry.

An entry says how to call the op in tinynet (``op``) and in PyTorch (``ref``, which receives
the ``torch`` module first so this file never imports it), which dtypes it takes, whether it
has a gradient and a second derivative, and draws its sample inputs: broadcast shapes, 0-d and
empty tensors, ties, kinks (where the derivative jumps), values outside the domain and
non-finite values. Samples are drawn from a seeded generator, so every run checks the same
inputs. A sample marked ``smooth`` is away from every kink, so central differences apply there;
the others are compared with PyTorch only (its rules at kinks, ties and infinities are the
ones tinynet follows).

Adding an op means adding its entry here; ``test_opdb.py`` fails for an op in tinynet's
registry or namespace without one (except ``PENDING_ENTRIES``, ops being written on other
branches at the time of writing).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinynet as tn
import tinynet.nn.functional as F
from tinynet.autograd.engine import topological_order

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
I64, I32, BOOL = np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.bool_)
FLOATS = (F32, F64)
NUMBERS = (F32, F64, I64)
ALL = (F32, F64, I64, BOOL)
NONFINITE = (np.nan, np.inf, -np.inf)

# Ops being added on other branches while this database was written (issue 21): the lead adds
# their entries after merging, then removes the names here. Matched against registry class
# names and public function names with case and underscores ignored.
PENDING_ENTRIES: tuple[str, ...] = ()


@dataclass
class Sample:
    """One call: ``args`` (numpy arrays become tensors; float ones are differentiated unless
    their position is in ``const``; lists of arrays become lists of tensors) and ``kwargs``
    (arrays become tensors, never differentiated). ``smooth``: no kink, tie or non-finite
    value, so central differences apply."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    smooth: bool = True
    const: tuple[int, ...] = ()
    note: str = ""


@dataclass
class OpInfo:
    """An op, how to call it in both libraries, and what to check."""

    name: str
    op: Callable[..., Any]
    ref: Callable[..., Any] | None  # ref(torch, *args, **kwargs); None: PyTorch has no twin
    samples: Callable[[np.random.Generator, np.dtype], list[Sample]]
    dtypes: tuple[np.dtype, ...] = FLOATS
    grad: bool = True  # a gradient, checked against central differences (and PyTorch)
    gradgrad: bool = True  # a second derivative, likewise
    torch_grad: bool = True  # PyTorch has the same gradient (False: it has none, or differs)
    rtol: float = 1.0  # the op's conditioning: multiplies the dtype's base tolerance
    grad_atol: float = 1e-7  # central differences in float64 (eps 1e-6: error ~1e-10)
    grad_rtol: float = 1e-6
    domain: str = "all reals"
    aliases: tuple[str, ...] = ()  # public names checked by this entry too
    covers: tuple[str, ...] = ()  # registry Functions reached only in ways the walk misses


def float64_where_float32_nan(torch: Any, narrow: Any, wide: Any, ours: Any) -> Any:
    """PyTorch's float32 answer ``narrow``, except where it is NaN, PyTorch's float64 answer
    ``wide`` on the same inputs is not, and ``ours`` (tinynet's float32 answer) is not NaN
    either: there ``wide``, in float32. PyTorch's vectorised float32 kernels differ by CPU: on
    an AVX-512 CPU torch 2.13's ``gelu`` gives NaN at +-inf (float64 and the AVX2 kernel: inf
    and 0), so a float32 comparison would fail on some machines only. A NaN of float32 itself
    (gelu-tanh's x**3 overflowing at 1e30) stays expected when ours is NaN there too; every
    other value is PyTorch's float32."""
    ours = np.asarray(getattr(ours, "data", ours))
    if not (isinstance(narrow, torch.Tensor) and narrow.dtype == torch.float32
            and isinstance(wide, torch.Tensor) and wide.shape == narrow.shape
            and ours.shape == tuple(narrow.shape) and ours.dtype.kind == "f"):
        return narrow
    replace = narrow.isnan() & ~wide.isnan() & ~torch.from_numpy(np.isnan(ours))
    return torch.where(replace, wide.to(torch.float32), narrow)


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
           lo: float = -2.0, hi: float = 2.0, kinks: tuple[float, ...] = (),
           margin: float = 0.05) -> np.ndarray:
    """Uniform values in [lo, hi] of ``dtype``, at least ``margin`` from every kink (so a
    finite difference of step 1e-6 never crosses one); integers and bools drawn alike."""
    if dtype == BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind in "iu":
        return np.asarray(rng.integers(math.ceil(lo), math.floor(hi) + 1, size=shape), dtype)
    x = rng.uniform(lo, hi, size=shape)
    for k in kinks:
        near = np.abs(x - k) < margin
        x = np.where(near, k + np.where(x >= k, margin, -margin) * 2, x)
    return np.asarray(x, dtype)


def with_kinks(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
               lo: float, hi: float, kinks: tuple[float, ...], nonfinite: bool) -> np.ndarray:
    """Values that hit the kinks exactly, repeat (ties) and, for floats, are non-finite."""
    x = values(rng, shape, dtype, lo, hi)
    flat = x.reshape(-1)
    special = list(kinks) + [flat[0]] * 2  # ties: the first value twice more
    if nonfinite and dtype.kind == "f":
        special += list(NONFINITE)
    for i, v in enumerate(special[: flat.size]):
        flat[(i * 7 + 1) % flat.size] = v
    return x


# ---- sample generators by shape of op ---------------------------------------------------------

UNARY_SHAPES = [(5,), (2, 3), (), (1, 3, 2)]
BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((), (3,)),
                 ((3, 1), ())]


def unary_samples(lo: float = -2.0, hi: float = 2.0, kinks: tuple[float, ...] = (),
                  nonfinite: bool = True, **kwargs: Any) -> Callable[..., list[Sample]]:
    def draw(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        out = [Sample((values(rng, s, dtype, lo, hi, kinks),), dict(kwargs)) for s in
               UNARY_SHAPES]
        out.append(Sample((values(rng, (2, 0), dtype, lo, hi),), dict(kwargs), note="empty"))
        out.append(Sample((with_kinks(rng, (4, 3), dtype, lo, hi, kinks, nonfinite),),
                          dict(kwargs), smooth=False, note="kinks, ties, non-finite"))
        return out

    return draw


def binary_samples(lo: float = -2.0, hi: float = 2.0, kinks: tuple[float, ...] = (),
                   lo_b: float | None = None, hi_b: float | None = None,
                   nonfinite: bool = True, scalar: float | None = 1.5,
                   kinks_b: tuple[float, ...] | None = None) -> Callable[..., list[Sample]]:
    lo_b = lo if lo_b is None else lo_b
    hi_b = hi if hi_b is None else hi_b
    kinks_b = kinks if kinks_b is None else kinks_b

    def draw(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        out = [Sample((values(rng, a, dtype, lo, hi, kinks), values(rng, b, dtype, lo_b, hi_b,
                                                                      kinks_b)))
               for a, b in BINARY_SHAPES]
        out.append(Sample((values(rng, (0, 3), dtype, lo, hi), values(rng, (1, 3), dtype, lo_b,
                                                                       hi_b)), note="empty"))
        a = with_kinks(rng, (3, 4), dtype, lo, hi, kinks, nonfinite)
        b = with_kinks(rng, (3, 4), dtype, lo_b, hi_b, kinks_b, nonfinite)
        b[0] = np.where((a[0] >= lo_b) & (a[0] <= hi_b), a[0], b[0])  # ties, in b's domain
        out.append(Sample((a, b), smooth=False, note="kinks, ties, non-finite"))
        if scalar is not None:
            out.append(Sample((values(rng, (2, 3), dtype, lo, hi, kinks), scalar),
                              note="python number"))
        return out

    return draw


def reduction_samples(lo: float = -2.0, hi: float = 2.0,
                      dims: tuple[Any, ...] = (None, 0, -1, (0, 1)), keepdim: bool = True,
                      ties: bool = True, zero_d: bool = True,
                      **extra: Any) -> Callable[..., list[Sample]]:
    def draw(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        out = []
        for i, d in enumerate(dims):
            kw = dict(extra)
            if d is not None:
                kw["dim"] = d
                if keepdim:
                    kw["keepdim"] = bool(i % 2)
            out.append(Sample((values(rng, (3, 4), dtype, lo, hi),), kw))
        first = next((d for d in dims if isinstance(d, int)), None)
        if zero_d:
            kw = dict(extra) if None in dims else dict(extra, dim=0)
            out.append(Sample((values(rng, (), dtype, lo, hi),), kw, note="0-d"))
        if ties:  # over everything (when the op allows it) and over the first dim given
            for d in ((None, first) if None in dims else (first,)):
                x = values(rng, (3, 4), dtype, lo, hi)
                x[:, 1] = x[:, 2]
                x[0, :] = x[0, 0]
                kw = dict(extra) if d is None else dict(extra, dim=d)
                out.append(Sample((x,), kw, smooth=False, note="ties"))
        return out

    return draw


def samples_of(*builders: Callable[[np.random.Generator, np.dtype], Sample]
               ) -> Callable[..., list[Sample]]:
    """A generator from a few hand-written sample builders."""
    return lambda rng, dtype: [b(rng, dtype) for b in builders]


def index(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.int64)


def _t(name: str) -> Callable[..., Any]:
    """``torch.<name>``, looked up when called."""
    return lambda torch, *a, **k: getattr(torch, name)(*a, **k)


def _tn(name: str) -> Callable[..., Any]:
    return getattr(tn, name)


def same(name: str, **fields: Any) -> dict[str, Any]:
    """op and ref by the same name in both libraries."""
    return dict(name=name, op=_tn(name), ref=_t(name), **fields)


# ---- the database ------------------------------------------------------------------------------

OPS: list[OpInfo] = []


def add(**fields: Any) -> None:
    OPS.append(OpInfo(**fields))


# Elementwise, one input. (kinks: where the derivative jumps; smooth samples stay away.)
add(**same("neg", samples=unary_samples(), dtypes=NUMBERS))
add(**same("abs", samples=unary_samples(kinks=(0.0,)), dtypes=NUMBERS))
add(**same("exp", samples=unary_samples(), dtypes=NUMBERS))
add(**same("log", samples=unary_samples(0.1, 4.0), domain="x > 0 (nan below, -inf at 0)",
           dtypes=NUMBERS))
add(**same("sqrt", samples=unary_samples(0.1, 4.0), domain="x >= 0", dtypes=NUMBERS))
add(**same("log10", samples=unary_samples(0.1, 4.0), domain="x > 0 (nan below, -inf at 0)",
           dtypes=NUMBERS))
add(**same("log2", samples=unary_samples(0.1, 4.0), domain="x > 0 (nan below, -inf at 0)",
           dtypes=NUMBERS))
add(**same("sin", samples=unary_samples(), dtypes=NUMBERS))
add(**same("cos", samples=unary_samples(), dtypes=NUMBERS))
add(**same("sigmoid", samples=unary_samples(-5, 5), dtypes=NUMBERS))
add(**same("tanh", samples=unary_samples(-3, 3), dtypes=NUMBERS))
# relu and step give float32 for an int64 input where PyTorch's relu keeps int64: floats only.
add(**same("relu", samples=unary_samples(kinks=(0.0,))))
add(name="step", op=tn.step,
    ref=lambda torch, x: torch.heaviside(x, torch.ones((), dtype=x.dtype)),
    samples=unary_samples(kinks=(0.0,)), torch_grad=False,
    domain="all reals; derivative 0 (PyTorch's heaviside has none)")
add(**same("sign", samples=unary_samples(kinks=(0.0,)), dtypes=ALL))
add(**same("floor", samples=unary_samples(kinks=(-2.0, -1.0, 0.0, 1.0, 2.0)), dtypes=NUMBERS))
add(**same("ceil", samples=unary_samples(kinks=(-2.0, -1.0, 0.0, 1.0, 2.0)), dtypes=NUMBERS))
add(**same("trunc", samples=unary_samples(kinks=(-2.0, -1.0, 0.0, 1.0, 2.0)), dtypes=NUMBERS,
           aliases=("fix",)))
add(**same("frac", samples=unary_samples(kinks=(-2.0, -1.0, 0.0, 1.0, 2.0))))
add(**same("round", samples=unary_samples(kinks=(-1.5, -0.5, 0.5, 1.5)), dtypes=NUMBERS))
add(name="round_decimals", op=lambda x: tn.round(x, decimals=1),
    ref=lambda torch, x: torch.round(x, decimals=1),
    samples=lambda rng, dtype: [  # kinks every 0.1 (at ...5): stay 0.02 away from them
        Sample((np.asarray(np.round(rng.uniform(-2, 2, s), 1) + rng.uniform(-0.03, 0.03, s),
                           dtype),)) for s in UNARY_SHAPES] + [
        Sample((np.array([0.05, 0.15, -0.25, 1.0, np.nan, np.inf], dtype),), smooth=False)],
    rtol=4.0)
add(**same("rsqrt", samples=unary_samples(0.2, 4.0), domain="x > 0", dtypes=NUMBERS))
add(**same("log1p", samples=unary_samples(-0.8, 3.0), domain="x > -1", dtypes=NUMBERS))
add(**same("expm1", samples=unary_samples(), dtypes=NUMBERS))
add(**same("erf", samples=unary_samples(), dtypes=NUMBERS))
add(**same("nan_to_num", samples=unary_samples(), dtypes=NUMBERS))
add(name="nan_to_num_values", op=lambda x: tn.nan_to_num(x, nan=1.0, posinf=9.0, neginf=-9.0),
    ref=lambda torch, x: torch.nan_to_num(x, nan=1.0, posinf=9.0, neginf=-9.0),
    samples=unary_samples())
add(**same("isnan", samples=unary_samples(), dtypes=NUMBERS, grad=False, gradgrad=False))
add(**same("isinf", samples=unary_samples(), dtypes=NUMBERS, grad=False, gradgrad=False))
add(**same("isfinite", samples=unary_samples(), dtypes=NUMBERS, grad=False, gradgrad=False))
add(**same("clamp", samples=unary_samples(kinks=(-0.5, 1.0), min=-0.5, max=1.0),
           aliases=("clip",), dtypes=NUMBERS))
add(**same("clamp_min", samples=unary_samples(kinks=(0.25,), min=0.25)))
add(**same("clamp_max", samples=unary_samples(kinks=(0.25,), max=0.25)))
add(name="to", op=lambda x: x.to(tn.float64), ref=lambda torch, x: x.to(torch.float64),
    samples=unary_samples(), dtypes=NUMBERS, domain="Cast: dtype conversion")
add(name="clone", op=lambda x: x.clone(), ref=lambda torch, x: x.clone(),
    samples=unary_samples(), dtypes=ALL)


# Elementwise, two inputs (broadcast shapes, ties, a Python number on the right).
add(**same("add", samples=binary_samples(), dtypes=NUMBERS))
add(**same("sub", samples=binary_samples(), dtypes=NUMBERS))
add(**same("mul", samples=binary_samples(), dtypes=ALL))
add(**same("div", samples=binary_samples(lo_b=0.5, hi_b=3.0), dtypes=NUMBERS,
           aliases=("true_divide",), domain="b != 0"))
add(**same("pow", samples=binary_samples(0.2, 2.0, lo_b=-2.0, hi_b=2.0), rtol=4.0,
           domain="a > 0 for real powers"))
add(**same("maximum", samples=binary_samples(scalar=None), dtypes=NUMBERS))
add(**same("minimum", samples=binary_samples(scalar=None), dtypes=NUMBERS))
def _remainder_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    """a = b (k + f) with f in [0.1, 0.9]: a / b stays away from the integers, where the
    remainder jumps; then integer ratios (kinks) and integer dtypes as drawn."""
    out = []
    for sa, sb in BINARY_SHAPES[:3]:
        b = values(rng, sb, dtype, 0.5, 3.0)
        ratio = rng.integers(-2, 3, sa) + rng.uniform(0.1, 0.9, sa)
        a = np.asarray(b * ratio if dtype.kind == "f" else values(rng, sa, dtype), dtype)
        out.append(Sample((a, b), smooth=dtype.kind == "f"))
    b = values(rng, (4,), dtype, 0.5, 3.0)
    out.append(Sample((np.asarray(b * np.array([-2, -1, 0, 3]), dtype), b), smooth=False,
                      note="integer ratios"))
    out.append(Sample((values(rng, (2, 3), dtype), 1.5), smooth=False, note="python number"))
    return out


add(**same("remainder", samples=_remainder_samples, dtypes=NUMBERS,
           domain="b != 0; kinks where a/b is an integer", rtol=4.0))
add(name="floor_divide", op=tn.floor_divide, ref=_t("floor_divide"),
    samples=binary_samples(lo_b=0.5, hi_b=3.0, nonfinite=False), dtypes=NUMBERS, grad=False,
    gradgrad=False)
add(name="div_rounding", op=lambda a, b: tn.divide(a, b, rounding_mode="trunc"),
    ref=lambda torch, a, b: torch.div(a, b, rounding_mode="trunc"),
    samples=binary_samples(lo_b=0.5, hi_b=3.0, nonfinite=False), dtypes=NUMBERS, grad=False,
    gradgrad=False, aliases=("divide",))
add(name="operator_floordiv", op=lambda a, b: a // b, ref=lambda torch, a, b: a // b,
    samples=binary_samples(lo_b=0.5, hi_b=3.0, nonfinite=False), dtypes=NUMBERS, grad=False,
    gradgrad=False)
add(name="operator_mod", op=lambda a, b: a % b, ref=lambda torch, a, b: a % b,
    samples=binary_samples(lo_b=0.5, hi_b=3.0, kinks=(0.0,), kinks_b=(), nonfinite=False),
    dtypes=NUMBERS, domain="b != 0")
add(name="method_add_alpha", op=lambda a, b: a.add(b, alpha=2),
    ref=lambda torch, a, b: a.add(b, alpha=2), samples=binary_samples(scalar=None),
    dtypes=NUMBERS)
add(name="method_sub_alpha", op=lambda a, b: a.sub(b, alpha=0.5),
    ref=lambda torch, a, b: a.sub(b, alpha=0.5), samples=binary_samples(scalar=None))
add(name="where", op=lambda c, a, b: tn.where(c, a, b),
    ref=lambda torch, c, a, b: torch.where(c, a, b),
    samples=lambda rng, dtype: [
        Sample((values(rng, (2, 3), BOOL), values(rng, (2, 3), dtype),
                values(rng, (3,), dtype))),
        Sample((values(rng, (3, 1), BOOL), values(rng, (), dtype), values(rng, (1, 4), dtype))),
        Sample((values(rng, (0, 2), BOOL), values(rng, (0, 2), dtype), values(rng, (2,), dtype)),
               note="empty")],
    dtypes=NUMBERS)
add(name="masked_fill", op=lambda x, m: tn.masked_fill(x, m, -1.5),
    ref=lambda torch, x, m: torch.masked_fill(x, m, -1.5),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), values(rng, s, BOOL)))
                                for s in ((3, 4), (4,), (3, 1))])
add(name="isclose", op=tn.isclose, ref=_t("isclose"), samples=binary_samples(scalar=None),
    dtypes=NUMBERS, grad=False, gradgrad=False)
add(name="allclose", op=lambda a, b: tn.allclose(a, a + b * 1e-9), ref=lambda torch, a, b:
    torch.allclose(a, a + b * 1e-9), samples=binary_samples(scalar=None, nonfinite=False),
    grad=False, gradgrad=False)
add(name="equal", op=lambda a, b: (tn.equal(a, b), tn.equal(a, a.clone())),
    ref=lambda torch, a, b: (torch.equal(a, b), torch.equal(a, a.clone())),
    samples=binary_samples(scalar=None, nonfinite=False), dtypes=ALL, grad=False,
    gradgrad=False)
for _name, _fn in (("lt", "lt"), ("le", "le"), ("gt", "gt"), ("ge", "ge"), ("eq", "eq"),
                   ("ne", "ne")):
    add(name=f"method_{_name}", op=lambda a, b, f=_fn: getattr(a, f)(b),
        ref=lambda torch, a, b, f=_fn: getattr(a, f)(b), samples=binary_samples(),
        dtypes=NUMBERS, grad=False, gradgrad=False)
# Masks combined (issue 21's ports): & | ^ on bool/int tensors, logical_* on any dtype.
for _name, _symbol in (("bitwise_and", "__and__"), ("bitwise_or", "__or__"),
                       ("bitwise_xor", "__xor__")):
    add(**same(_name, samples=binary_samples(scalar=None), dtypes=(I64, BOOL), grad=False,
               gradgrad=False))
    add(name=f"method{_symbol}", op=lambda a, b, f=_symbol: getattr(a, f)(b),
        ref=lambda torch, a, b, f=_symbol: getattr(a, f)(b), samples=binary_samples(scalar=None),
        dtypes=(I64, BOOL), grad=False, gradgrad=False)
for _name in ("logical_and", "logical_or", "logical_xor"):
    add(**same(_name, samples=binary_samples(scalar=None), dtypes=ALL, grad=False,
               gradgrad=False))
add(**same("logical_not", samples=unary_samples(), dtypes=ALL, grad=False, gradgrad=False))
add(name="method_logical_not", op=lambda a: a.logical_not(), ref=lambda torch, a:
    a.logical_not(), samples=unary_samples(), dtypes=ALL, grad=False, gradgrad=False)
# The other tensor only lends its dtype (no gradient to it). A float32 target is left to
# tests/test_ports_scripts.py: central differences through float32 rounding are not exact.
for _target in (F64, I64):
    add(name=f"method_type_as_{_target.name}",
        op=lambda a, d=_target: a.type_as(tn.zeros(1, dtype=d)),
        ref=lambda torch, a, d=_target: a.type_as(torch.zeros(1, dtype=getattr(torch, d.name))),
        samples=unary_samples(), dtypes=ALL, grad=_target == F64, gradgrad=_target == F64)


# Reductions.
add(**same("sum", samples=reduction_samples(), dtypes=ALL))
add(**same("mean", samples=reduction_samples()))
add(**same("prod", samples=reduction_samples(dims=(None, 0, -1)), dtypes=ALL))
add(name="prod_zeros", op=lambda x, **k: tn.prod(x, **k), ref=lambda torch, x, **k:
    torch.prod(x, **k), samples=lambda rng, dtype: [
        Sample((np.array([[0.0, 1.5, -2.0], [0.5, 0.0, 0.0]], dtype),), {"dim": d})
        for d in (0, 1)] + [Sample((np.array([[0.0, 1.5], [-2.0, 0.7]], dtype),))],
    rtol=4.0, domain="zeros in the input: the gradient without dividing by them")
add(**same("amax", samples=reduction_samples(dims=(0, -1, (0, 1))), dtypes=NUMBERS))
add(**same("amin", samples=reduction_samples(dims=(0, -1, (0, 1))), dtypes=NUMBERS))
add(name="max", op=tn.max, ref=_t("max"), samples=reduction_samples(dims=(None, 0, 1)),
    dtypes=NUMBERS, domain="max(x) splits ties evenly; max(x, dim) picks the first index")
add(name="min", op=tn.min, ref=_t("min"), samples=reduction_samples(dims=(None, 0, 1)),
    dtypes=NUMBERS)
add(name="max_binary", op=lambda a, b: tn.max(a, b), ref=lambda torch, a, b: torch.max(a, b),
    samples=binary_samples(scalar=None, nonfinite=False))
add(**same("argmax", samples=reduction_samples(dims=(None, 0, 1)), dtypes=NUMBERS,
           grad=False, gradgrad=False))
add(**same("argmin", samples=reduction_samples(dims=(None, 0, 1)), dtypes=NUMBERS,
           grad=False, gradgrad=False))
add(**same("all", samples=reduction_samples(dims=(None, 0, 1)), dtypes=ALL, grad=False,
           gradgrad=False))
add(**same("any", samples=reduction_samples(dims=(None, 0, 1)), dtypes=ALL, grad=False,
           gradgrad=False))
# var/std of one element (n - correction = 0) are NaN; their gradients differ from PyTorch's
# there (tinynet: 0 for std, PyTorch NaN), so no 0-d sample until that is settled.
add(**same("var", samples=reduction_samples(ties=False, zero_d=False), rtol=8.0))
add(**same("std", samples=reduction_samples(ties=False, zero_d=False), rtol=8.0))
add(name="var_mean", op=tn.var_mean, ref=_t("var_mean"),
    samples=reduction_samples(dims=(None, 1, (0, 1)), ties=False, zero_d=False), rtol=8.0)
add(name="std_mean", op=tn.std_mean, ref=_t("std_mean"),
    samples=reduction_samples(dims=(None, 1, (0, 1)), ties=False, zero_d=False), rtol=8.0)
add(**same("norm", samples=reduction_samples(dims=(None, 0, 1), ties=False), rtol=4.0))
add(name="norm_p", op=lambda x, **k: tn.norm(x, p=3, **k), ref=lambda torch, x, **k:
    torch.norm(x, p=3, **k), samples=reduction_samples(0.2, 2.0, dims=(None, 1), ties=False),
    rtol=8.0)
add(**same("logsumexp", samples=reduction_samples(dims=(0, 1, (0, 1))), rtol=4.0))


# Softmax and friends.
add(name="softmax", op=lambda x, dim: tn.softmax(x, dim), ref=lambda torch, x, dim:
    torch.softmax(x, dim), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype, -3, 3),), {"dim": d}) for d in (0, 1, -1)],
    rtol=4.0)
add(name="log_softmax", op=lambda x, dim: tn.log_softmax(x, dim), ref=lambda torch, x, dim:
    torch.log_softmax(x, dim), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype, -3, 3),), {"dim": d}) for d in (0, 1, -1)],
    rtol=4.0)


# Shapes and views.
add(name="reshape", op=lambda x: tn.reshape(x, (3, -1)), ref=lambda torch, x:
    torch.reshape(x, (3, -1)), samples=lambda rng, dtype: [
        Sample((values(rng, s, dtype),)) for s in ((2, 6), (12,), (3, 2, 2))], dtypes=ALL)
add(name="flatten", op=lambda x: tn.flatten(x, 1), ref=lambda torch, x: torch.flatten(x, 1),
    samples=lambda rng, dtype: [Sample((values(rng, s, dtype),)) for s in
                                ((2, 3, 2), (2, 0, 3), (3, 1))], dtypes=ALL)
add(name="unflatten", op=lambda x: tn.unflatten(x, 1, (2, -1)),
    ref=lambda torch, x: torch.unflatten(x, 1, (2, -1)),
    samples=lambda rng, dtype: [Sample((values(rng, s, dtype),)) for s in ((3, 4), (1, 6, 2))],
    dtypes=ALL)
add(name="permute", op=lambda x: tn.permute(x, (2, 0, 1)),
    ref=lambda torch, x: torch.permute(x, (2, 0, 1)),
    samples=lambda rng, dtype: [Sample((values(rng, (2, 3, 4), dtype),))], dtypes=ALL)
add(name="transpose", op=lambda x: tn.transpose(x, 0, -1),
    ref=lambda torch, x: torch.transpose(x, 0, -1),
    samples=lambda rng, dtype: [Sample((values(rng, s, dtype),)) for s in ((2, 3), (2, 3, 4))],
    dtypes=ALL, aliases=("swapaxes",))
add(name="squeeze", op=lambda x, **k: tn.squeeze(x, **k),
    ref=lambda torch, x, **k: torch.squeeze(x, **k),
    samples=lambda rng, dtype: [Sample((values(rng, (2, 1, 3, 1), dtype),), k)
                                for k in ({}, {"dim": 1}, {"dim": 0})], dtypes=ALL)
add(name="unsqueeze", op=lambda x, dim: tn.unsqueeze(x, dim),
    ref=lambda torch, x, dim: torch.unsqueeze(x, dim),
    samples=lambda rng, dtype: [Sample((values(rng, (2, 3), dtype),), {"dim": d})
                                for d in (0, -1, 1)], dtypes=ALL)
add(name="broadcast_to", op=lambda x: tn.broadcast_to(x, (2, 3, 4)),
    ref=lambda torch, x: torch.broadcast_to(x, (2, 3, 4)),
    samples=lambda rng, dtype: [Sample((values(rng, s, dtype),)) for s in ((3, 1), (4,), ())],
    dtypes=ALL)
add(name="expand", op=lambda x: tn.expand(x, 2, -1, 4), ref=lambda torch, x: x.expand(2, -1, 4),
    samples=lambda rng, dtype: [Sample((values(rng, s, dtype),)) for s in ((3, 1), (1, 3, 4))],
    dtypes=ALL)
add(name="cat", op=lambda xs, dim: tn.cat(xs, dim), ref=lambda torch, xs, dim:
    torch.cat(xs, dim), samples=lambda rng, dtype: [
        Sample(([values(rng, (2, 3), dtype), values(rng, (1, 3), dtype)],), {"dim": 0}),
        Sample(([values(rng, (2, 3), dtype), values(rng, (2, 0), dtype),
                 values(rng, (2, 2), dtype)],), {"dim": 1})],
    dtypes=ALL, aliases=("concatenate",))
add(name="stack", op=lambda xs, dim: tn.stack(xs, dim), ref=lambda torch, xs, dim:
    torch.stack(xs, dim), samples=lambda rng, dtype: [
        Sample(([values(rng, (2, 3), dtype), values(rng, (2, 3), dtype)],), {"dim": d})
        for d in (0, -1)], dtypes=ALL)
add(name="split", op=lambda x, s, dim: tn.split(x, s, dim), ref=lambda torch, x, s, dim:
    torch.split(x, s, dim), samples=lambda rng, dtype: [
        Sample((values(rng, (5, 3), dtype), 2), {"dim": 0}),
        Sample((values(rng, (5, 3), dtype), [1, 2]), {"dim": 1})], dtypes=ALL)
add(name="chunk", op=lambda x, n, dim: tn.chunk(x, n, dim), ref=lambda torch, x, n, dim:
    torch.chunk(x, n, dim), samples=lambda rng, dtype: [
        Sample((values(rng, (5, 3), dtype), 3), {"dim": 0}),
        Sample((values(rng, (5, 3), dtype), 2), {"dim": 1})], dtypes=ALL)
add(name="unbind", op=lambda x, dim: tn.unbind(x, dim), ref=lambda torch, x, dim:
    torch.unbind(x, dim), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 2), dtype),), {"dim": d}) for d in (0, 1)], dtypes=ALL)
add(name="getitem", op=lambda x: (x[1:, ::2], x[[0, 2, 0]], x[x.detach() > 0], x[..., 1]),
    ref=lambda torch, x: (x[1:, ::2], x[[0, 2, 0]], x[x.detach() > 0], x[..., 1]),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype, kinks=(0.0,)),))],
    domain="basic, integer-array (repeats add up) and mask indexing")
add(**same("flip", samples=lambda rng, dtype: [
    Sample((values(rng, (2, 3, 2), dtype),), {"dims": d}) for d in ((0,), (1, 2), (-1,))],
    dtypes=ALL))
add(name="fliplr", op=tn.fliplr, ref=_t("fliplr"),
    samples=lambda rng, dtype: [Sample((values(rng, (2, 3), dtype),))], aliases=("flipud",))
add(**same("roll", samples=lambda rng, dtype: [
    Sample((values(rng, (3, 4), dtype), 1)),
    Sample((values(rng, (3, 4), dtype), -2), {"dims": 1}),
    Sample((values(rng, (3, 4), dtype), (1, 5)), {"dims": (0, 1)})], dtypes=ALL))
add(**same("outer", samples=lambda rng, dtype: [
    Sample((values(rng, (3,), dtype), values(rng, (4,), dtype))),
    Sample((values(rng, (0,), dtype), values(rng, (2,), dtype)), note="empty")],
    dtypes=NUMBERS, aliases=("ger",)))


# Indexing along a dim.
def _gather_sample(rng: np.random.Generator, dtype: np.dtype) -> Sample:
    return Sample((values(rng, (3, 4), dtype), 1, index(rng.integers(0, 4, (3, 5)))))


add(name="gather", op=tn.gather, ref=_t("gather"), samples=lambda rng, dtype: [
    _gather_sample(rng, dtype),
    Sample((values(rng, (3, 4), dtype), 0, index([[0, 2, 2, 1], [2, 2, 0, 0]]))),
    Sample((values(rng, (3, 4), dtype), 1, index(np.zeros((2, 0), int))), note="empty")],
    dtypes=NUMBERS, domain="repeated indices add up in the gradient")
add(name="take_along_dim", op=tn.take_along_dim, ref=_t("take_along_dim"),
    samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype), index(rng.integers(0, 4, (3, 2)))), {"dim": 1}),
        Sample((values(rng, (3, 4), dtype), index([[0], [3], [1]])), {"dim": 1}),
        Sample((values(rng, (3, 4), dtype), index([[2], [0]])), {"dim": 0}),
        Sample((values(rng, (3, 4), dtype), index([5, 0, 11, 5]))),
    ], dtypes=NUMBERS, domain="index broadcast against input outside dim")
add(name="index_select", op=tn.index_select, ref=_t("index_select"),
    samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype), 1, index([3, 0, 3]))),
        Sample((values(rng, (3, 4), dtype), 0, index([2]))),
        Sample((values(rng, (3, 4), dtype), 0, index([], )), note="empty")], dtypes=ALL)
add(name="index_add", op=lambda x, d, i, s, **k: tn.index_add(x, d, i, s, **k),
    ref=lambda torch, x, d, i, s, **k: torch.index_add(x, d, i, s, **k),
    samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype), 1, index([3, 0, 3]), values(rng, (3, 3), dtype))),
        Sample((values(rng, (3, 4), dtype), 0, index([2, 2]), values(rng, (2, 4), dtype)),
               {"alpha": 2})], dtypes=NUMBERS)
add(name="scatter", op=lambda x, d, i, s: tn.scatter(x, d, i, s),
    ref=lambda torch, x, d, i, s: torch.scatter(x, d, i, s),
    samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype), 1, index([[2, 0], [1, 3], [0, 1]]),
                values(rng, (3, 2), dtype))),
        Sample((values(rng, (3, 4), dtype), 0, index([[2, 0, 1, 1]]),
                values(rng, (1, 4), dtype)))],
    dtypes=NUMBERS, domain="indices distinct along dim (PyTorch leaves repeats unspecified)")
add(name="scatter_value", op=lambda x, d, i: tn.scatter(x, d, i, value=2.5),
    ref=lambda torch, x, d, i: torch.scatter(x, d, i, value=2.5),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), 1, index([[2], [1], [0]])))])
add(name="scatter_add", op=tn.scatter_add, ref=_t("scatter_add"),
    samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype), 1, index([[2, 2, 0], [1, 3, 3], [0, 1, 0]]),
                values(rng, (3, 3), dtype))),
        Sample((values(rng, (3, 4), dtype), 0, index([[2, 0, 2, 2], [1, 1, 2, 0]]),
                values(rng, (2, 4), dtype)))], dtypes=NUMBERS,
    domain="repeated indices add up")
add(name="masked_select", op=tn.masked_select, ref=_t("masked_select"),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), values(rng, s, BOOL)))
                                for s in ((3, 4), (4,), (3, 1))], dtypes=ALL)
add(name="sort", op=lambda x, **k: tn.sort(x, **k), ref=lambda torch, x, **k:
    torch.sort(x, stable=True, **k), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype),), {"dim": d, "descending": desc})
        for d, desc in ((-1, False), (0, True))] + [
        Sample((with_kinks(rng, (3, 4), dtype, -2, 2, (), False),), {"descending": True},
               smooth=False, note="ties")], dtypes=NUMBERS)
add(name="argsort", op=lambda x, **k: tn.argsort(x, **k), ref=lambda torch, x, **k:
    torch.argsort(x, stable=True, **k), samples=lambda rng, dtype: [
        Sample((with_kinks(rng, (3, 4), dtype, -2, 2, (), dtype.kind == "f"),),
               {"dim": d, "descending": desc}) for d, desc in ((-1, False), (0, True))],
    dtypes=NUMBERS, grad=False, gradgrad=False)
add(name="topk", op=lambda x, k, **kw: tn.topk(x, k, **kw), ref=lambda torch, x, k, **kw:
    torch.topk(x, k, **kw), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 5), dtype), 2)),
        Sample((values(rng, (3, 5), dtype), 3), {"dim": 0, "largest": False})],
    dtypes=NUMBERS)


# Queries about values (no gradient).
add(name="nonzero", op=lambda x: (tn.nonzero(x), tn.nonzero(x, as_tuple=True)),
    ref=lambda torch, x: (torch.nonzero(x), torch.nonzero(x, as_tuple=True)),
    samples=lambda rng, dtype: [Sample((values(rng, s, dtype, -1, 1),)) for s in
                                ((3, 4), (5,), (), (2, 0))], dtypes=ALL, grad=False,
    gradgrad=False, aliases=("argwhere",))
add(name="unique", op=lambda x, **k: tn.unique(x, **k), ref=lambda torch, x, **k:
    torch.unique(x, **k), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype, -2, 2).round(),), k) for k in (
            {}, {"return_inverse": True}, {"return_counts": True, "return_inverse": True},
            {"dim": 0, "return_counts": True})], dtypes=NUMBERS, grad=False, gradgrad=False)
add(name="bincount", op=lambda x, **k: tn.bincount(x, **k), ref=lambda torch, x, **k:
    torch.bincount(x, **k), samples=lambda rng, dtype: [
        Sample((index(rng.integers(0, 5, 8)),), {}),
        Sample((index(rng.integers(0, 3, 8)),), {"minlength": 6}),
        Sample((index(rng.integers(0, 3, 6)),), {"weights": values(rng, (6,), dtype)}),
        Sample((index([]),), {}, note="empty")],
    grad=False, gradgrad=False, domain="non-negative integers")


# Products along a dim.
add(name="cumprod", op=lambda x, dim: tn.cumprod(x, dim), ref=lambda torch, x, dim:
    torch.cumprod(x, dim), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype),), {"dim": 1}),
        Sample((values(rng, (3, 4), dtype),), {"dim": 0}),
        Sample((np.array([[0.0, 1.5, -2.0, 0.5], [0.5, 0.0, 0.0, 2.0]], dtype),), {"dim": 1},
               note="zeros"),
        Sample((values(rng, (), dtype),), {"dim": 0})], dtypes=NUMBERS, rtol=4.0)


# Linear algebra.
add(name="matmul", op=tn.matmul, ref=_t("matmul"), samples=lambda rng, dtype: [
    Sample((values(rng, a, dtype), values(rng, b, dtype))) for a, b in (
        ((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 2, 3), (3, 2)), ((3,), (3,)),
        ((2, 0), (0, 3)))], dtypes=NUMBERS, rtol=4.0)
add(name="mm", op=tn.mm, ref=_t("mm"), samples=lambda rng, dtype: [
    Sample((values(rng, (2, 3), dtype), values(rng, (3, 4), dtype)))], rtol=4.0)
add(name="einsum", op=lambda eq, *xs: tn.einsum(eq, *xs), ref=lambda torch, eq, *xs:
    torch.einsum(eq, *xs), samples=lambda rng, dtype: [
        Sample(("ij,jk->ik", values(rng, (2, 3), dtype), values(rng, (3, 4), dtype))),
        Sample(("bij->bji", values(rng, (2, 3, 2), dtype))),
        Sample(("i,j->ij", values(rng, (2,), dtype), values(rng, (3,), dtype)))], rtol=4.0)


# In place, in a graph: h = x * 1 then an edit through a view (CopySlices).
def _edit_view(x: Any) -> Any:
    h = x * 1.0
    view = h[1:]
    view += x[:-1] * 2
    return h


add(name="iadd_view", op=_edit_view, ref=lambda torch, x: _edit_view(x),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 2), dtype),))],
    domain="x[...] += ... in a graph")


# In-place methods and new_* (outside any graph: values and dtypes against PyTorch).
def _inplace(method: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
    def call(x: Any, *more: Any) -> Any:
        y = x.detach().clone()
        getattr(y, method)(*args, *more, **kwargs)
        return y

    return lambda x, *more: call(x, *more)


add(name="scatter_", op=lambda x, i: _inplace("scatter_", 1)(x, i, 7.0),
    ref=lambda torch, x, i: _inplace("scatter_", 1)(x, i, 7.0),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), index([[1], [3], [0]])))],
    dtypes=NUMBERS, grad=False, gradgrad=False)
add(name="scatter_add_", op=lambda x, i, s: _inplace("scatter_add_", 0)(x, i, s),
    ref=lambda torch, x, i, s: _inplace("scatter_add_", 0)(x, i, s),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), index([[1, 1, 0, 2]]),
                                        values(rng, (1, 4), dtype)))],
    dtypes=NUMBERS, grad=False, gradgrad=False)
add(name="index_add_", op=lambda x, i, s: _inplace("index_add_", 0)(x, i, s),
    ref=lambda torch, x, i, s: _inplace("index_add_", 0)(x, i, s),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), index([2, 2]),
                                        values(rng, (2, 4), dtype)))],
    dtypes=NUMBERS, grad=False, gradgrad=False)
add(name="masked_fill_", op=lambda x, m: _inplace("masked_fill_")(x, m, 0.5),
    ref=lambda torch, x, m: _inplace("masked_fill_")(x, m, 0.5),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), values(rng, (4,), BOOL)))],
    dtypes=FLOATS, grad=False, gradgrad=False)
add(name="new_tensors", op=lambda x: (x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2,), 3),
                                      x.new_tensor([1, 2]), x.new_empty(0, 2)),
    ref=lambda torch, x: (x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2,), 3),
                          x.new_tensor([1, 2]), x.new_empty(0, 2)),
    samples=lambda rng, dtype: [Sample((values(rng, (2,), dtype),))], dtypes=ALL, grad=False,
    gradgrad=False)


# Random sampling: PyTorch draws other numbers, so these check their statistics (against the
# same statistics in PyTorch's draws, with a wide tolerance) rather than values.
def _moments(sample: Any) -> Any:
    return sample.mean(), sample.std()


RANDOM = dict(dtypes=(F32,), grad=False, gradgrad=False, rtol=5e4,  # 5% of the scale
              domain="statistics of 100,000 draws (about 1% standard error)")
add(name="normal", op=lambda m: _moments(tn.normal(m, 0.5 + 0 * m)),
    ref=lambda torch, m: _moments(torch.normal(m, 0.5 + 0 * m)),
    samples=lambda rng, dtype: [Sample((np.full((200, 500), 1.5, dtype),), const=(0,))],
    **RANDOM)
add(name="bernoulli", op=lambda p: tn.bernoulli(p).mean(),
    ref=lambda torch, p: torch.bernoulli(p).mean(),
    samples=lambda rng, dtype: [Sample((np.full((200, 500), 0.3, dtype),), const=(0,))],
    **RANDOM)
add(name="normal_", op=lambda x: _moments(_inplace("normal_", 1.0, 2.0)(x)),
    ref=lambda torch, x: _moments(_inplace("normal_", 1.0, 2.0)(x)),
    samples=lambda rng, dtype: [Sample((np.zeros((200, 500), dtype),))], **RANDOM)
add(name="uniform_", op=lambda x: _moments(_inplace("uniform_", -1.0, 3.0)(x)),
    ref=lambda torch, x: _moments(_inplace("uniform_", -1.0, 3.0)(x)),
    samples=lambda rng, dtype: [Sample((np.zeros((200, 500), dtype),))], **RANDOM)


# nn.functional.
def _image(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...] = (2, 2, 5, 5)
           ) -> np.ndarray:
    return values(rng, shape, dtype)


add(name="linear", op=F.linear, ref=lambda torch, *a: torch.nn.functional.linear(*a),
    samples=lambda rng, dtype: [
        Sample((values(rng, (4, 3), dtype), values(rng, (2, 3), dtype), values(rng, (2,), dtype))),
        Sample((values(rng, (2, 4, 3), dtype), values(rng, (2, 3), dtype)))], rtol=4.0)
add(name="conv2d", op=lambda x, w, b, **k: F.conv2d(x, w, b, **k),
    ref=lambda torch, x, w, b, **k: torch.nn.functional.conv2d(x, w, b, **k),
    samples=lambda rng, dtype: [
        Sample((_image(rng, dtype), values(rng, (3, 2, 3, 3), dtype), values(rng, (3,), dtype))),
        Sample((_image(rng, dtype), values(rng, (2, 1, 2, 2), dtype), values(rng, (2,), dtype)),
               {"stride": 2, "padding": 1, "groups": 2})], rtol=8.0)
add(name="conv1d", op=lambda x, w, b, **k: F.conv1d(x, w, b, **k),
    ref=lambda torch, x, w, b, **k: torch.nn.functional.conv1d(x, w, b, **k),
    samples=lambda rng, dtype: [
        Sample((values(rng, (2, 2, 7), dtype), values(rng, (3, 2, 3), dtype),
                values(rng, (3,), dtype))),
        Sample((values(rng, (2, 4, 6), dtype), values(rng, (2, 2, 2), dtype),
                values(rng, (2,), dtype)), {"stride": 2, "padding": 1, "groups": 2}),
        Sample((values(rng, (2, 5), dtype), values(rng, (1, 2, 2), dtype),
                values(rng, (1,), dtype)), {"padding": "same", "dilation": 2}, note="unbatched")],
    rtol=8.0)
add(name="interpolate", op=lambda x, **k: F.interpolate(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.interpolate(x, **k),
    samples=lambda rng, dtype: [
        Sample((_image(rng, dtype, (1, 2, 3, 4)),), k) for k in (
            {"size": (5, 7)}, {"scale_factor": 2}, {"size": (2, 3)},
            {"size": (5, 7), "mode": "bilinear", "align_corners": False},
            {"size": (5, 7), "mode": "bilinear", "align_corners": True},
            {"scale_factor": (1.5, 0.5), "mode": "bilinear", "align_corners": False},
            {"size": 2, "mode": "bilinear", "align_corners": True})] + [
        Sample((values(rng, (2, 2, 4), dtype),), {"size": 7, "mode": "linear",
                                                  "align_corners": False}),
        Sample((values(rng, (2, 2, 4), dtype),), {"scale_factor": 3, "mode": "nearest"})],
    rtol=8.0, domain="modes nearest, linear, bilinear (align_corners both ways)")
add(name="max_pool2d", op=lambda x, **k: F.max_pool2d(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.max_pool2d(x, **k),
    samples=lambda rng, dtype: [Sample((_image(rng, dtype),), {"kernel_size": 2}),
                                Sample((_image(rng, dtype),), {"kernel_size": 3, "stride": 1,
                                                               "padding": 1})])
add(name="avg_pool2d", op=lambda x, **k: F.avg_pool2d(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.avg_pool2d(x, **k),
    samples=lambda rng, dtype: [Sample((_image(rng, dtype),), {"kernel_size": 2}),
                                Sample((_image(rng, dtype),), {"kernel_size": 3, "stride": 2,
                                                               "padding": 1})])
add(name="adaptive_avg_pool2d", op=lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    ref=lambda torch, x: torch.nn.functional.adaptive_avg_pool2d(x, (2, 3)),
    samples=lambda rng, dtype: [Sample((_image(rng, dtype),))])
add(name="unfold", op=lambda x: F.unfold(x, 2, padding=1),
    ref=lambda torch, x: torch.nn.functional.unfold(x, 2, padding=1),
    samples=lambda rng, dtype: [Sample((_image(rng, dtype, (1, 2, 3, 3)),))])
add(name="fold", op=lambda x: F.fold(x, (3, 3), 2), ref=lambda torch, x:
    torch.nn.functional.fold(x, (3, 3), 2),
    samples=lambda rng, dtype: [Sample((values(rng, (1, 8, 4), dtype),))])
add(name="batch_norm", op=lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    ref=lambda torch, x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b,
                                                              training=True),
    samples=lambda rng, dtype: [Sample((values(rng, (4, 3), dtype), values(rng, (3,), dtype),
                                        values(rng, (3,), dtype))),
                                Sample((values(rng, (2, 3, 2, 2), dtype),
                                        values(rng, (3,), dtype), values(rng, (3,), dtype)))],
    rtol=16.0)
add(name="layer_norm", op=lambda x, w, b: F.layer_norm(x, (3,), w, b),
    ref=lambda torch, x, w, b: torch.nn.functional.layer_norm(x, (3,), w, b),
    samples=lambda rng, dtype: [Sample((values(rng, (4, 3), dtype), values(rng, (3,), dtype),
                                        values(rng, (3,), dtype)))], rtol=16.0)
add(name="group_norm", op=lambda x, w, b, g: F.group_norm(x, g, w, b),
    ref=lambda torch, x, w, b, g: torch.nn.functional.group_norm(x, g, w, b),
    samples=lambda rng, dtype: [
        Sample((values(rng, (2, 4, 3), dtype), values(rng, (4,), dtype),
                values(rng, (4,), dtype), 2)),
        Sample((values(rng, (2, 6, 2, 2), dtype), values(rng, (6,), dtype),
                values(rng, (6,), dtype), 3)),
        Sample((values(rng, (3, 2), dtype), values(rng, (2,), dtype), values(rng, (2,), dtype),
                1))], rtol=16.0)
add(name="rms_norm", op=lambda x, w, **k: F.rms_norm(x, (3,), w, **k),
    ref=lambda torch, x, w, **k: torch.nn.functional.rms_norm(x, (3,), w, **k),
    samples=lambda rng, dtype: [
        Sample((values(rng, (4, 3), dtype), values(rng, (3,), dtype))),
        Sample((values(rng, (2, 2, 3), dtype), values(rng, (3,), dtype)), {"eps": 1e-3})],
    rtol=16.0)
add(name="mse_loss", op=F.mse_loss, ref=lambda torch, *a, **k:
    torch.nn.functional.mse_loss(*a, **k), samples=lambda rng, dtype: [
        Sample((values(rng, (3, 4), dtype), values(rng, (3, 4), dtype)), {"reduction": r})
        for r in ("mean", "sum", "none")], rtol=4.0)
add(name="cross_entropy", op=lambda x, t, **k: F.cross_entropy(x, t, **k),
    ref=lambda torch, x, t, **k: torch.nn.functional.cross_entropy(x, t, **k),
    samples=lambda rng, dtype: [
        Sample((values(rng, (4, 3), dtype, -3, 3), index([0, 2, 1, 2])), {"reduction": r})
        for r in ("mean", "sum", "none")], rtol=8.0)
add(name="cross_entropy_label_smoothing",
    op=lambda x, t, **k: F.cross_entropy(x, t, label_smoothing=0.2, **k),
    ref=lambda torch, x, t, **k: torch.nn.functional.cross_entropy(x, t, label_smoothing=0.2,
                                                                   **k),
    samples=lambda rng, dtype: [
        Sample((values(rng, (4, 3), dtype, -3, 3), index([0, 2, 1, 2])), {"reduction": r})
        for r in ("mean", "sum", "none")] + [
        Sample((values(rng, (4, 3), dtype, -3, 3), index([0, -100, 1, 2])),
               {"weight": values(rng, (3,), dtype, 0.5, 2.0)}, note="weight, ignore_index"),
        Sample((values(rng, (2, 3, 2), dtype, -3, 3), index([[0, 2], [1, 1]])),
               {"reduction": "mean"}, note="(N, C, d)")], rtol=8.0)
add(name="cross_entropy_probabilities", op=lambda x, p, **k: F.cross_entropy(x, p, **k),
    ref=lambda torch, x, p, **k: torch.nn.functional.cross_entropy(x, p, **k),
    samples=lambda rng, dtype: [
        Sample((values(rng, (4, 3), dtype, -3, 3), values(rng, (4, 3), dtype, 0, 1)),
               {"reduction": r}) for r in ("mean", "sum", "none")] + [
        Sample((values(rng, (2, 3, 2), dtype, -3, 3), values(rng, (2, 3, 2), dtype, 0, 1)),
               {"weight": values(rng, (3,), dtype, 0.5, 2.0), "label_smoothing": 0.1},
               note="(N, C, d), weight, smoothing")], rtol=8.0,
    domain="target: probabilities of input's shape (differentiable too)")
add(name="nll_loss", op=lambda x, t: F.nll_loss(x, t),
    ref=lambda torch, x, t: torch.nn.functional.nll_loss(x, t),
    samples=lambda rng, dtype: [Sample((values(rng, (4, 3), dtype), index([0, 2, 1, 2])))])
add(name="binary_cross_entropy", op=lambda x, t: F.binary_cross_entropy(x, t),
    ref=lambda torch, x, t: torch.nn.functional.binary_cross_entropy(x, t),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype, 0.05, 0.95),
                                        values(rng, (3, 4), dtype, 0.0, 1.0)), const=(1,))],
    rtol=8.0, domain="input in (0, 1)")
add(name="binary_cross_entropy_with_logits",
    op=lambda x, t: F.binary_cross_entropy_with_logits(x, t),
    ref=lambda torch, x, t: torch.nn.functional.binary_cross_entropy_with_logits(x, t),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype, -4, 4),
                                        values(rng, (3, 4), dtype, 0.0, 1.0)))], rtol=8.0)



# Activations from the formula table (tinynet/kernels/formulas.py), called as nn.functional.
def _nnf(name: str) -> Callable[..., Any]:
    """``torch.nn.functional.<name>``, looked up when called."""
    return lambda torch, *a, **k: getattr(torch.nn.functional, name)(*a, **k)


def functional(name: str, **fields: Any) -> dict[str, Any]:
    """op and ref: ``F.<name>`` in both libraries."""
    return dict(name=name, op=getattr(F, name), ref=_nnf(name), **fields)


add(**functional("gelu", samples=unary_samples(-4, 4), rtol=4.0))
add(name="gelu_tanh", op=lambda x: F.gelu(x, approximate="tanh"),
    ref=lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh"),
    samples=unary_samples(-4, 4), rtol=4.0)
add(**functional("silu", samples=unary_samples(-5, 5), rtol=4.0))
add(**functional("mish", samples=unary_samples(-5, 5), rtol=4.0))
add(**functional("softplus", samples=unary_samples(-30, 30, kinks=(20.0,)), rtol=4.0,
                 domain="x itself where beta x > threshold (a jump of ~1e-9 at 20)"))
add(name="softplus_beta_threshold", op=lambda x: F.softplus(x, beta=2.0, threshold=1.0),
    ref=lambda torch, x: torch.nn.functional.softplus(x, beta=2.0, threshold=1.0),
    samples=unary_samples(kinks=(0.5,)), rtol=4.0,
    domain="beta x > threshold switches to x at x = 0.5 (a jump: kink)")
add(**functional("leaky_relu", samples=unary_samples(kinks=(0.0,))))
add(name="leaky_relu_slope", op=lambda x, **k: F.leaky_relu(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.leaky_relu(x, **k),
    samples=lambda rng, dtype: [
        *unary_samples(kinks=(0.0,), negative_slope=0.2)(rng, dtype),
        *unary_samples(kinks=(0.0,), negative_slope=-1.5)(rng, dtype)])
add(**functional("elu", samples=unary_samples(-4, 3, kinks=(0.0,)),
                 domain="all reals; second derivative jumps at 0"))
add(name="elu_alpha", op=lambda x, **k: F.elu(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.elu(x, **k),
    samples=lambda rng, dtype: [
        *unary_samples(-4, 3, kinks=(0.0,), alpha=0.5)(rng, dtype),
        *unary_samples(-4, 3, kinks=(0.0,), alpha=2.0)(rng, dtype)])
# No NaN input for hardtanh: PyTorch's own gradient there depends on where the NaN sits (0 in
# its vectorised chunks, the incoming gradient in the scalar tail: a (12,) float64 tensor with
# NaN first gives 0, a (5,) one gives 1); tinynet passes the gradient, as the scalar path.
def _hardtanh_samples(lo: float, hi: float, **kwargs: Any) -> Callable[..., list[Sample]]:
    def draw(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        return unary_samples(kinks=(lo, hi), nonfinite=False, **kwargs)(rng, dtype) + [
            Sample((np.array([np.inf, -np.inf, lo, hi, 0.5 * (lo + hi)], dtype),), kwargs,
                   smooth=False, note="bounds, infinities")]

    return draw


add(**functional("hardtanh", samples=_hardtanh_samples(-1.0, 1.0),
                 domain="derivative 1 strictly inside (min_val, max_val), else 0"))
add(name="hardtanh_bounds", op=lambda x, **k: F.hardtanh(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.hardtanh(x, **k),
    samples=lambda rng, dtype: [
        *_hardtanh_samples(-0.5, 1.5, min_val=-0.5, max_val=1.5)(rng, dtype),
        *_hardtanh_samples(0.25, 0.25, min_val=0.25, max_val=0.25)(rng, dtype)],
    domain="min_val = max_val too (a constant, gradient 0)")


# More of the table's activations (issue 18). PyTorch's vectorised chunks and its scalar tail
# disagree at NaN for these too (as for hardtanh above): their samples have infinities, no NaN.
def _without_nan(lo: float, hi: float, kinks: tuple[float, ...],
                 **kwargs: Any) -> Callable[..., list[Sample]]:
    def draw(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        return unary_samples(lo, hi, kinks=kinks, nonfinite=False, **kwargs)(rng, dtype) + [
            Sample((np.array([np.inf, -np.inf, *kinks, 0.5], dtype),), kwargs, smooth=False,
                   note="kinks, infinities")]

    return draw


add(**functional("hardsigmoid", samples=_without_nan(-4, 4, (-3.0, 3.0)), torch_grad=False,
                 domain="derivative 1/6 strictly inside (-3, 3), else 0 (PyTorch's backward "
                        "multiplies by 1/6 rounded to float32, even in float64: compared in "
                        "test_activations.py with that rounding undone)"))
add(**functional("hardswish", samples=_without_nan(-4, 4, (-3.0, 3.0))))
add(**functional("selu", samples=_without_nan(-4, 3, (0.0,)), rtol=4.0))
add(**functional("celu", samples=_without_nan(-4, 3, (0.0,)), rtol=4.0))
add(name="celu_alpha", op=lambda x, **k: F.celu(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.celu(x, **k),
    samples=_without_nan(-4, 3, (0.0,), alpha=0.5), rtol=4.0)
add(**functional("logsigmoid", samples=unary_samples(-30, 30), rtol=4.0))
add(name="threshold", op=lambda x, **k: F.threshold(x, **k),
    ref=lambda torch, x, **k: torch.nn.functional.threshold(x, **k),
    samples=_without_nan(-2, 2, (0.5,), threshold=0.5, value=-2.0))
add(**functional("relu6", samples=_without_nan(-2, 8, (0.0, 6.0))))
add(**functional("softsign", samples=unary_samples(-5, 5, kinks=(0.0,)), rtol=4.0))
add(**functional("tanhshrink", samples=unary_samples(-3, 3), rtol=4.0))


# Sequence ops (causal masks, running sums, tiling, padding, lookups, sampling).
def _triangle_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    shapes = (((3, 4), 0), ((4, 3), 1), ((2, 3, 3), -1), ((3, 4), 5), ((3, 4), -4),
              ((2, 2, 1, 3), 2), ((2, 0, 3), 0), ((0, 2), 1))
    return [Sample((values(rng, s, dtype),), {"diagonal": d}) for s, d in shapes] + [
        Sample((with_kinks(rng, (4, 4), dtype, -2, 2, (), True),), {"diagonal": -1},
               smooth=False, note="ties, non-finite")]


add(**same("tril", samples=_triangle_samples, dtypes=ALL,
           domain="diagonal above and below the main one, past the edges, batches"))
add(**same("triu", samples=_triangle_samples, dtypes=ALL,
           domain="diagonal above and below the main one, past the edges, batches"))
add(**same("diag", samples=lambda rng, dtype: [
    Sample((values(rng, s, dtype),), {"diagonal": k}) for s, k in (
        ((4,), 0), ((3,), 2), ((3,), -1), ((3, 4), 0), ((3, 4), 1), ((4, 3), -2), ((3, 4), 5),
        ((2, 2), -3), ((0,), 1))], dtypes=ALL,
    domain="vector -> matrix and matrix -> vector; diagonals above, below and past the edge"))
add(**same("diagonal", samples=lambda rng, dtype: [
    Sample((values(rng, (3, 4), dtype),)),
    Sample((values(rng, (2, 3, 4), dtype),), {"offset": 1, "dim1": 1, "dim2": 2}),
    Sample((values(rng, (2, 3, 4), dtype),), {"offset": -1, "dim1": 2, "dim2": 0}),
    Sample((values(rng, (3, 2), dtype),), {"offset": 4})], dtypes=ALL,
    domain="any plane, either order of dims, offsets past the edge"))
add(**same("diag_embed", samples=lambda rng, dtype: [
    Sample((values(rng, (2, 3), dtype),)),
    Sample((values(rng, (2, 3), dtype),), {"offset": -1, "dim1": 0, "dim2": 2}),
    Sample((values(rng, (3,), dtype),), {"offset": 2, "dim1": 1, "dim2": 0})], dtypes=ALL,
    domain="batches, new dims anywhere and in either order, offsets above and below"))
add(**same("bmm", samples=lambda rng, dtype: [
    Sample((values(rng, a, dtype), values(rng, b, dtype))) for a, b in (
        ((2, 3, 4), (2, 4, 5)), ((1, 2, 3), (1, 3, 1)), ((2, 0, 3), (2, 3, 4)),
        ((0, 2, 3), (0, 3, 2)), ((2, 3, 0), (2, 0, 2)))], dtypes=NUMBERS, rtol=4.0,
    domain="(b, n, m) @ (b, m, p), no broadcasting; empty n, b and m"))


def _cumsum_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((values(rng, (3, 4), dtype),), {"dim": d}) for d in (0, 1, -1)] + [
        Sample((values(rng, (2, 3, 2), dtype),), {"dim": 1}),
        Sample((values(rng, (), dtype),), {"dim": 0}, note="0-d"),
        Sample((values(rng, (2, 0), dtype),), {"dim": 1}, note="empty"),
        Sample((values(rng, (0, 3), dtype),), {"dim": 1}, note="empty"),
        Sample((with_kinks(rng, (4, 3), dtype, -2, 2, (), True),), {"dim": 0}, smooth=False,
               note="ties, non-finite")]


add(**same("cumsum", samples=_cumsum_samples, dtypes=ALL, rtol=4.0,
           domain="integer and bool inputs sum in int64"))
add(name="cumsum_dtype", op=lambda x, dim: tn.cumsum(x, dim, dtype=tn.float64),
    ref=lambda torch, x, dim: torch.cumsum(x, dim, dtype=torch.float64),
    samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype),), {"dim": d})
                                for d in (0, 1)], dtypes=NUMBERS,
    domain="dtype= casts the input first")
add(name="repeat", op=lambda x, *sizes: x.repeat(*sizes),
    ref=lambda torch, x, *sizes: x.repeat(*sizes), samples=lambda rng, dtype: [
        Sample((values(rng, (2, 3), dtype), 2, 1)),
        Sample((values(rng, (2, 3), dtype), 3, 2)),
        Sample((values(rng, (3,), dtype), 2, 2), note="more sizes than dims"),
        Sample((values(rng, (2, 1, 3), dtype), 1, 3, 1, 2)),
        Sample((values(rng, (), dtype), 3), note="0-d"),
        Sample((values(rng, (2, 3), dtype), 0, 2), note="zero copies"),
        Sample((values(rng, (0, 2), dtype), 2, 1), note="empty")], dtypes=ALL,
    domain="Tensor.repeat (np.tile): the gradient adds the copies up")


def _pad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    cases = [
        ((2, 3), (1, 2), {}),
        ((2, 3, 4), (1, 0, 2, 1), {"value": 1.5}),
        ((2, 5), (-1, 2), {}),  # a negative pad crops
        ((2, 3), (0, 0, 1, 1), {"mode": "constant"}),
        ((0, 3), (1, 1), {"value": -2.0}),
        ((2, 0), (1, 1), {}),
        ((2, 5), (2, 1), {"mode": "reflect"}),
        ((1, 2, 3, 4), (1, 2, 2, 1), {"mode": "reflect"}),
        ((2, 3, 4), (2, 1), {"mode": "replicate"}),
        ((1, 2, 3, 3), (1, 1, 2, 0), {"mode": "replicate"}),
        ((1, 2, 4), (1, 3), {"mode": "circular"}),
        ((1, 1, 3, 4), (2, 1, 1, 0), {"mode": "circular"}),
    ]
    out = [Sample((values(rng, s, dtype), p), k) for s, p, k in cases]
    for mode in ("constant", "reflect", "replicate", "circular"):
        out.append(Sample((with_kinks(rng, (1, 3, 4), dtype, -2, 2, (), True), (2, 1)),
                          {"mode": mode}, smooth=False, note=f"{mode}, ties, non-finite"))
    return out


add(name="pad", op=lambda x, p, **k: F.pad(x, p, **k),
    ref=lambda torch, x, p, **k: torch.nn.functional.pad(x, p, **k), samples=_pad_samples,
    domain="modes constant (value; negative pads crop), reflect, replicate, circular")
add(name="embedding", op=lambda i, w, **k: F.embedding(i, w, **k),
    ref=lambda torch, i, w, **k: torch.nn.functional.embedding(i, w, **k),
    samples=lambda rng, dtype: [
        Sample((index(rng.integers(0, 5, (2, 3))), values(rng, (5, 4), dtype))),
        Sample((index([[1, 1, 3], [1, 0, 1]]), values(rng, (5, 4), dtype)),
               note="repeated indices add up"),
        # padding_idx and scale_grad_by_freq change the gradient on purpose (it is no longer
        # the derivative): compared with PyTorch only
        Sample((index([[1, 1, 3], [1, 0, 4]]), values(rng, (5, 4), dtype)), {"padding_idx": 1},
               smooth=False, note="padding_idx"),
        Sample((index([4, 2, 4, 0]), values(rng, (5, 3), dtype)), {"padding_idx": -1},
               smooth=False, note="padding_idx"),
        Sample((index([[1, 1, 3], [1, 0, 1]]), values(rng, (5, 4), dtype)),
               {"scale_grad_by_freq": True}, smooth=False, note="scale_grad_by_freq"),
        Sample((index(2), values(rng, (5, 4), dtype)), note="0-d index"),
        Sample((index(np.zeros((2, 0), int)), values(rng, (5, 4), dtype)), note="empty"),
        Sample((index([0, 2, 2]), with_kinks(rng, (3, 4), dtype, -2, 2, (), True)),
               smooth=False, note="non-finite rows"),
        # max_norm renormalises the looked-up rows in place, outside the graph (as PyTorch):
        # a forward check only, the weight held constant
        Sample((index([[0, 2], [2, 3]]), values(rng, (4, 3), dtype, -3, 3)),
               {"max_norm": 1.0}, const=(1,), note="max_norm"),
    ], domain="integer indices into the rows of weight")
add(name="one_hot", op=lambda i, **k: F.one_hot(i, **k),
    ref=lambda torch, i, **k: torch.nn.functional.one_hot(i, **k),
    samples=lambda rng, dtype: [
        Sample((index(rng.integers(0, 4, 6)),)),
        Sample((index([[0, 3], [3, 1]]),), {"num_classes": 6}),
        Sample((index(2),), {"num_classes": 3}, note="0-d"),
        Sample((index([]),), {"num_classes": 4}, note="empty"),
        Sample((index(np.zeros((2, 0), int)),), {"num_classes": 3}, note="empty")],
    dtypes=(I64,), grad=False, gradgrad=False, domain="non-negative integer classes")


def _frequencies(lib: Any, draws: Any, categories: int) -> Any:
    """How often each category was drawn: per category, the mean over the first dim."""
    return lib.stack([(draws == c).float().mean(0) for c in range(categories)])


def _multinomial_statistics(lib: Any, p: Any, num_samples: int, replacement: bool) -> Any:
    """The category frequencies of the draws (rows of p alike), the draws' shape and int64
    dtype, and whether each row's draws are distinct (always, without replacement)."""
    draws = lib.multinomial(p, num_samples, replacement)
    rows = draws.reshape(-1, num_samples)
    distinct = None
    if not replacement:
        pairs = (rows[:, :, None] != rows[:, None, :]).sum((1, 2))
        distinct = bool((pairs == num_samples * (num_samples - 1)).all())
    per_draw = rows if p.ndim == 2 else draws.reshape(-1, 1)  # 1-d: draws of one distribution
    return (_frequencies(lib, per_draw, p.shape[-1]), tuple(draws.shape),
            bool(draws.dtype == lib.int64), distinct)


def _same_weights(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Unnormalised weights with a zero (never drawn), every row alike."""
    return np.broadcast_to(np.array([1.0, 0.0, 4.0, 3.0, 2.0], dtype), shape).copy()


add(name="multinomial",
    op=lambda p, n, replacement: _multinomial_statistics(tn, p, n, replacement),
    ref=lambda torch, p, n, replacement: _multinomial_statistics(torch, p, n, replacement),
    samples=lambda rng, dtype: [
        Sample((_same_weights((5,), dtype), 100_000, True), const=(0,), note="1-d"),
        Sample((_same_weights((40_000, 5), dtype), 3, True), const=(0,)),
        Sample((_same_weights((40_000, 5), dtype), 2, False), const=(0,),
               note="without replacement"),
        Sample((_same_weights((40_000, 5), dtype), 4, False), const=(0,),
               note="without replacement, every non-zero category")],
    **RANDOM)
add(name="multinomial_generator", op=lambda p: tn.equal(
        tn.multinomial(p, 6, True, generator=3), tn.multinomial(p, 6, True, generator=3)),
    ref=lambda torch, p: torch.equal(
        torch.multinomial(p, 6, True, generator=torch.Generator().manual_seed(3)),
        torch.multinomial(p, 6, True, generator=torch.Generator().manual_seed(3))),
    samples=lambda rng, dtype: [Sample((values(rng, (5, 4), dtype, 0.1, 1.0),), const=(0,))],
    grad=False, gradgrad=False, domain="a seeded generator repeats its draws")


# ---- running an entry (shared by test_opdb.py and the registry checks of other tests) ----------


def build(sample: Sample, make: Callable[[np.ndarray], Any], differentiate: bool,
          given: Sequence[Any] | None = None) -> tuple[list[Any], dict[str, Any], list[Any]]:
    """The sample's arguments as one library's tensors, and the leaves that require grad (or,
    with ``given``, those tensors in the leaves' places)."""
    leaves: list[Any] = []

    def convert(value: Any, constant: bool) -> Any:
        if isinstance(value, list):
            return [convert(v, constant) for v in value]
        if not isinstance(value, np.ndarray):
            return value
        if differentiate and value.dtype.kind == "f" and not constant:
            if given is not None:
                leaves.append(given[len(leaves)])
                return leaves[-1]
            leaves.append(make(value).requires_grad_(True))
            return leaves[-1]
        return make(value)

    args = [convert(a, i in sample.const) for i, a in enumerate(sample.args)]
    kwargs = {k: make(v) if isinstance(v, np.ndarray) else v for k, v in sample.kwargs.items()}
    return args, kwargs, leaves


def outputs(result: Any) -> list[Any]:
    """A result flattened: tuples (values, indices), lists of pieces, Python numbers."""
    if isinstance(result, tuple | list):
        return [y for r in result for y in outputs(r)]
    return [result]


def tinynet_tensor(array: np.ndarray) -> tn.Tensor:
    return tn.tensor(array.copy())


def differentiable(outs: list[Any]) -> list[tn.Tensor]:
    return [o for o in outs if isinstance(o, tn.Tensor) and o.requires_grad]


def functions_reached(entry: OpInfo) -> set[str]:
    """The Functions in the graphs of an entry's samples: forward, and the backward graph
    made with create_graph (where gradients of gradients run)."""
    reached: set[str] = set(entry.covers)
    with np.errstate(all="ignore"):
        for sample in entry.samples(np.random.default_rng(0), entry.dtypes[0]):
            reached |= _walk(entry, sample)
    return reached


def _walk(entry: OpInfo, sample: Sample) -> set[str]:
    args, kwargs, leaves = build(sample, tinynet_tensor, entry.grad)
    outs = differentiable(outputs(entry.op(*args, **kwargs)))
    reached = {type(node).__name__ for node in topological_order(outs)}
    if outs and leaves:
        seeds = [tn.ones_like(o).requires_grad_(True) for o in outs]  # backward is recorded
        grads = tn.autograd.grad(outs, leaves, seeds, create_graph=True, allow_unused=True)
        roots = [g for g in grads if g is not None and g.requires_grad]
        reached |= {type(node).__name__ for node in topological_order(roots)}
    return reached


@functools.cache
def functions_reached_by_entries() -> frozenset[str]:
    """Every registry Function some entry reaches: the ops this database checks."""
    reached: set[str] = set()
    for entry in OPS:
        reached |= functions_reached(entry)
    return frozenset(reached)


# Public names in tinynet's namespace that are not ops (creation, dtypes, modes, errors...).
NOT_OPS = {
    "AnomalyError", "CompileError", "DTypeError", "DTypeMismatchError", "FileFormatError",
    "GradcheckError", "GraphError", "IndexShapeError", "ShapeError", "Tensor", "TinynetError",
    "ValueRangeError", "arange", "as_tensor", "autograd", "bool_", "compile", "device",
    "double", "empty", "empty_like", "enable_grad", "eye", "float", "float16", "float32",
    "float64", "from_numpy", "full", "full_like", "Generator", "get_default_dtype",
    "get_num_threads", "gradcheck",
    "initial_seed",
    "gradgradcheck", "half", "inference_mode", "int8", "int16", "int32", "int64",
    "is_floating_point", "is_grad_enabled", "is_tensor", "linspace", "long", "manual_seed",
    "no_grad", "numel", "ones", "ones_like", "ops", "rand", "rand_like", "randint", "randn",
    "randn_like", "randperm", "seed", "set_default_dtype", "set_grad_enabled",
    "set_num_threads", "tensor",
    "uint8", "zeros", "zeros_like",
}


def covered_names() -> set[str]:
    """The public names the database checks (entries and their aliases), e.g. for a census of
    which tinynet functions have an entry."""
    return {e.name for e in OPS} | {a for e in OPS for a in e.aliases}


# Step's training surrogates (tn.step(x, surrogate=...)): the step's forward (its entry above)
# with a stand-in gradient that no finite difference gives. tests/test_formulas.py checks them
# against their formula-table rows; test_gradients.py and test_double_backward.py against their
# formulas.
STAND_IN_GRADIENTS = frozenset({"StepStraightThrough", "StepSigmoid"})


def ops_without_entry() -> list[str]:
    """tinynet's registered ops and public op functions that no entry checks (the census page,
    docs/pytorch-coverage.md, lists them; test_opdb.py fails on them)."""
    from tinynet.autograd import Function

    public = {n for n in tn.__all__ if n not in NOT_OPS and callable(getattr(tn, n))}
    return sorted((set(Function.registry) - functions_reached_by_entries() - STAND_IN_GRADIENTS)
                  | (public - covered_names()))


# addcmul, addcdiv, lerp (optimizers' and EMAs' fused updates), out of place and in place.
TERNARY_SHAPES = [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)), ((), (3,), (2, 1)),
                  ((0, 3), (1, 3), (3,))]


def ternary_samples(lo_c: float = -2.0, hi_c: float = 2.0, third: str = "tensor",
                    **kwargs: Any) -> Callable[..., list[Sample]]:
    """(input, tensor1, tensor2) over broadcast shapes; ``third`` = "number" draws a Python
    number for the last argument instead (lerp's scalar weight), on both sides of 0.5."""
    def draw(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        out = []
        for a, b, c in TERNARY_SHAPES:
            last = values(rng, c, dtype, lo_c, hi_c)
            out.append(Sample((values(rng, a, dtype), values(rng, b, dtype), last),
                              dict(kwargs), note="empty" if 0 in a else ""))
        if third == "number":
            out = [Sample((s.args[0], s.args[1]), dict(kwargs, weight=w), note=s.note)
                   for s in out for w in (0.25, 0.75, 1.0, -0.6)]
        a, b = (with_kinks(rng, (3, 4), dtype, -2.0, 2.0, (), True) for _ in range(2))
        c = values(rng, (3, 4), dtype, lo_c, hi_c)
        out.append(Sample((a, b, c) if third == "tensor" else (a, b), dict(kwargs) if
                          third == "tensor" else dict(kwargs, weight=0.5), smooth=False,
                          note="non-finite"))
        return out

    return draw


for _value in (1, 0.5):
    add(name=f"addcmul_value{_value}", op=functools.partial(tn.addcmul, value=_value),
        ref=lambda torch, *a, _v=_value: torch.addcmul(*a, value=_v),
        samples=ternary_samples(), aliases=("addcmul",))
    add(name=f"addcdiv_value{_value}", op=functools.partial(tn.addcdiv, value=_value),
        ref=lambda torch, *a, _v=_value: torch.addcdiv(*a, value=_v),
        samples=ternary_samples(lo_c=0.5, hi_c=2.0), domain="tensor2 != 0",
        aliases=("addcdiv",))
add(**same("lerp", samples=ternary_samples(lo_c=-1.0, hi_c=2.0)),
    domain="weight a tensor: |weight| < 0.5 and >= 0.5 take PyTorch's two formulas")
add(name="lerp_number", op=tn.lerp, ref=_t("lerp"),
    samples=ternary_samples(third="number"))
for _name, _kw in (("addcmul_", {"value": -0.5}), ("addcdiv_", {"value": 2.0}), ("lerp_", {})):
    add(name=_name, op=lambda x, a, b, _n=_name, _k=_kw: _inplace(_n, **_k)(x, a, b),
        ref=lambda torch, x, a, b, _n=_name, _k=_kw: _inplace(_n, **_k)(x, a, b),
        samples=lambda rng, dtype: [Sample((values(rng, (3, 4), dtype), values(rng, (3, 4),
                                            dtype), values(rng, (4,), dtype, 0.5, 2.0)))],
        grad=False, gradgrad=False)
