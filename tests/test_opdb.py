"""Every entry of the op database (opdb.py), checked the same way:

- forward values and dtypes against PyTorch, for every sample and dtype the entry lists;
- gradients against central differences in float64 (smooth samples), and against PyTorch for
  every sample (PyTorch's rules at kinks, ties and infinities are tinynet's);
- second derivatives against central differences of the gradient (gradgradcheck) and against
  PyTorch's double backward, in float64;
- every op in tinynet's registry and namespace has an entry.

PyTorch is optional: without it the central-difference checks still run. Samples are drawn
from generators seeded by the entry's name and the dtype, so every run checks the same inputs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from opdb import (
    F32,
    F64,
    NOT_OPS,
    OPS,
    PENDING_ENTRIES,
    STAND_IN_GRADIENTS,
    OpInfo,
    Sample,
    build,
    covered_names,
    differentiable,
    float64_where_float32_nan,
    functions_reached_by_entries,
    outputs,
    tinynet_tensor,
)

import tinynet as tn
from tinynet.autograd.engine import Function

BASE_TOLERANCE = {F32: 1e-6, F64: 1e-13}  # per unit of an entry's rtol, relative to the scale
GRAD_FACTOR = 10  # a gradient is a few more operations than the value


def draw(entry: OpInfo, dtype: np.dtype) -> list[Sample]:
    rng = np.random.default_rng([21, zlib.crc32(entry.name.encode()), dtype.num])
    return entry.samples(rng, dtype)


def assert_close(actual: np.ndarray, expected: np.ndarray, tol: float, what: str) -> None:
    """Equal NaN and infinity positions; elsewhere |actual - expected| <= tol * scale, with
    scale the largest finite magnitude of the expected values (1 if none): the tolerance grows
    with the numbers compared and is never zero."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "biu" and actual.dtype.kind in "biu":
        assert np.array_equal(actual, expected), f"{what}: {actual} != {expected}"
        return
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(e)), f"{what}: NaN at different places\n{a}\n{e}"
    infinite = np.isinf(e)
    assert np.array_equal(a[infinite], e[infinite]) and np.array_equal(np.isinf(a), infinite), (
        f"{what}: infinities differ\n{a}\n{e}")
    finite = np.isfinite(e)
    scale = float(np.abs(e[finite]).max()) if finite.any() else 1.0
    scale = scale or 1.0
    err = np.abs(a[finite] - e[finite])
    assert err.size == 0 or err.max() <= tol * scale, (
        f"{what}: max error {err.max():.3g} > {tol * scale:.3g}\nactual   {a}\nexpected {e}")


def numpy_dtype(torch: Any, dtype: Any) -> np.dtype:
    return np.dtype(str(dtype).replace("torch.", "").replace("bool", "bool_"))


def assert_same(torch: Any, ours: Any, theirs: Any, tol: float, what: str) -> None:
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, tn.Tensor), f"{what}: got {type(ours).__name__}, not a Tensor"
        expected = theirs.numpy(force=True)
        assert ours.dtype == expected.dtype, f"{what}: dtype {ours.dtype} != {expected.dtype}"
        assert_close(ours.data, expected, tol, what)
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{what}: {ours!r} != {theirs!r}"


def torch_tensor(torch: Any) -> Callable[[np.ndarray], Any]:
    return lambda array: torch.from_numpy(array.copy())


def each_case(entry: OpInfo, dtypes: Sequence[np.dtype]) -> Any:
    for dtype in dtypes:
        for i, sample in enumerate(draw(entry, dtype)):
            yield dtype, sample, f"{entry.name} {dtype} sample {i} {sample.note}".strip()


def names(entry: OpInfo) -> str:
    return entry.name


WITH_GRAD = [e for e in OPS if e.grad]
WITH_GRADGRAD = [e for e in OPS if e.grad and e.gradgrad]
WITH_TORCH_GRAD = [e for e in OPS if e.grad and e.torch_grad and e.ref is not None]


# ---- forward ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [e for e in OPS if e.ref is not None], ids=names)
def test_forward_values_and_dtypes_match_torch(entry: OpInfo) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tn.manual_seed(0)
    checked = 0
    for dtype, sample, what in each_case(entry, entry.dtypes):
        args, kwargs, _ = build(sample, tinynet_tensor, False)
        t_args, t_kwargs, _ = build(sample, torch_tensor(torch), False)
        with np.errstate(all="ignore"):
            ours = outputs(entry.op(*args, **kwargs))
        theirs = outputs(entry.ref(torch, *t_args, **t_kwargs))
        if np.dtype(dtype) == F32:
            theirs = _nan_only_in_float32(torch, entry, sample, theirs, ours)
        assert len(ours) == len(theirs), f"{what}: {len(ours)} outputs, PyTorch {len(theirs)}"
        tol = BASE_TOLERANCE.get(dtype, BASE_TOLERANCE[F32]) * entry.rtol
        for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(torch, a, b, tol, f"{what}, output {k}")
        checked += 1
    assert checked


def _nan_only_in_float32(torch: Any, entry: OpInfo, sample: Sample, theirs: Sequence[Any],
                         ours: Sequence[Any]) -> list[Any]:
    """PyTorch's float32 outputs, with a NaN its float64 answer on the same inputs
    contradicts replaced by that answer (``opdb.float64_where_float32_nan``)."""
    if not any(isinstance(t, torch.Tensor) and t.dtype == torch.float32 and bool(t.isnan().any())
               for t in theirs):
        return list(theirs)
    wide_args, wide_kwargs, _ = build(sample, lambda a: torch.from_numpy(
        a.astype(np.float64) if a.dtype == F32 else a.copy()), False)
    try:
        wider = outputs(entry.ref(torch, *wide_args, **wide_kwargs))
    except (RuntimeError, TypeError):  # an op that takes float32 only
        return list(theirs)
    if len(wider) != len(theirs) or len(ours) != len(theirs):
        return list(theirs)
    return [float64_where_float32_nan(torch, t, w, o)
            for t, w, o in zip(theirs, wider, ours, strict=True)]


@pytest.mark.parametrize("entry", [e for e in OPS if not e.grad], ids=names)
def test_ops_without_gradient_record_no_graph(entry: OpInfo) -> None:
    """An op the database says has no gradient must not pretend to have one."""
    for _, sample, what in each_case(entry, entry.dtypes[:1]):
        args, kwargs, _ = build(sample, tinynet_tensor, True)
        for out in outputs(entry.op(*args, **kwargs)):
            assert not (isinstance(out, tn.Tensor) and out.requires_grad), what


# ---- first derivatives ----------------------------------------------------------------------


def _call_with(entry: OpInfo, sample: Sample) -> Callable[..., tuple[tn.Tensor, ...]]:
    """The op as a function of its differentiable inputs alone (what gradcheck perturbs)."""

    def fn(*leaves: tn.Tensor) -> tuple[tn.Tensor, ...]:
        args, kwargs, _ = build(sample, tinynet_tensor, True, given=leaves)
        return tuple(o for o in outputs(entry.op(*args, **kwargs))
                     if isinstance(o, tn.Tensor) and o.dtype.kind == "f")

    return fn


@pytest.mark.parametrize("entry", WITH_GRAD, ids=names)
def test_gradient_matches_central_differences(entry: OpInfo) -> None:
    checked = 0
    for _, sample, what in each_case(entry, (F64,)):
        if not sample.smooth:
            continue
        _, _, leaves = build(sample, tinynet_tensor, True)
        if not leaves or not any(x.data.size for x in leaves):
            continue
        fn = _call_with(entry, sample)
        assert differentiable(list(fn(*leaves))), f"{what}: the output does not require grad"
        assert tn.gradcheck(fn, leaves, atol=entry.grad_atol, rtol=entry.grad_rtol), what
        checked += 1
    assert checked, f"{entry.name}: no smooth sample with a differentiable input"


def _tinynet_grads(entry: OpInfo, sample: Sample, rng: np.random.Generator,
                   create_graph: bool = False) -> tuple[list[Any], list[np.ndarray], list[Any]]:
    """The leaves, the upstream gradients drawn for the differentiable outputs, and the
    leaves' gradients."""
    args, kwargs, leaves = build(sample, tinynet_tensor, True)
    with np.errstate(all="ignore"):
        outs = differentiable(outputs(entry.op(*args, **kwargs)))
        seeds = [rng.standard_normal(o.shape) for o in outs]
        grads = tn.autograd.grad(outs, leaves, [tn.tensor(s.astype(o.dtype)) for s, o in
                                                zip(seeds, outs, strict=True)],
                                 create_graph=create_graph, allow_unused=True) if outs else []
    return leaves, seeds, list(grads)


def _torch_grads(torch: Any, entry: OpInfo, sample: Sample, seeds: list[np.ndarray],
                 create_graph: bool = False) -> tuple[list[Any], list[Any]]:
    args, kwargs, leaves = build(sample, torch_tensor(torch), True)
    outs = [o for o in outputs(entry.ref(torch, *args, **kwargs))
            if isinstance(o, torch.Tensor) and o.requires_grad]
    assert len(outs) == len(seeds), (f"{entry.name}: {len(seeds)} differentiable outputs, "
                                     f"PyTorch {len(outs)}")
    grads = torch.autograd.grad(outs, leaves, [torch.from_numpy(s.astype(
        numpy_dtype(torch, o.dtype))) for s, o in zip(seeds, outs, strict=True)],
        create_graph=create_graph, allow_unused=True) if outs else []
    return leaves, list(grads)


@pytest.mark.parametrize("entry", WITH_TORCH_GRAD, ids=names)
def test_gradient_matches_torch(entry: OpInfo) -> None:
    """Every sample, kinks, ties and infinities included, in each float dtype."""
    torch = pytest.importorskip("torch")
    checked = 0
    for dtype, sample, what in each_case(entry, [d for d in entry.dtypes if d.kind == "f"]):
        leaves, seeds, ours = _tinynet_grads(entry, sample, np.random.default_rng(
            zlib.crc32(what.encode())))
        if not leaves:
            continue
        _, theirs = _torch_grads(torch, entry, sample, seeds)
        tol = BASE_TOLERANCE[dtype] * entry.rtol * GRAD_FACTOR
        for k, (a, b, x) in enumerate(zip(ours, theirs, leaves, strict=True)):
            expected = np.zeros(x.shape, x.dtype) if b is None else b.numpy(force=True)
            actual = np.zeros(x.shape, x.dtype) if a is None else a.data
            assert actual.dtype == expected.dtype, f"{what}: grad {k} dtype {actual.dtype}"
            assert_close(actual, expected, tol, f"{what}, gradient of input {k}")
        checked += 1
    assert checked


# ---- second derivatives ------------------------------------------------------------------------


@pytest.mark.parametrize("entry", WITH_GRADGRAD, ids=names)
def test_second_derivative_matches_central_differences(entry: OpInfo) -> None:
    checked = 0
    for _, sample, what in each_case(entry, (F64,)):
        if not sample.smooth:
            continue
        _, _, leaves = build(sample, tinynet_tensor, True)
        if not leaves or not any(x.data.size for x in leaves):
            continue
        assert tn.gradgradcheck(_call_with(entry, sample), leaves, atol=entry.grad_atol,
                                rtol=entry.grad_rtol), what
        checked += 1
    assert checked


def _double_backward(grads: list[Any], leaves: list[Any], weights: list[np.ndarray],
                     make: Callable[[np.ndarray], Any], grad_fn: Callable[..., Any]) -> list[Any]:
    """d/dx sum_i <grad_i(x), w_i>: the gradient of the gradient along fixed directions."""
    terms = [(g * make(w)).sum() for g, w in zip(grads, weights, strict=True)
             if g is not None and g.requires_grad]
    if not terms:
        return [None] * len(leaves)
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return list(grad_fn(total, leaves, allow_unused=True))


@pytest.mark.parametrize("entry", [e for e in WITH_GRADGRAD if e.torch_grad and e.ref],
                         ids=names)
def test_second_derivative_matches_torch(entry: OpInfo) -> None:
    torch = pytest.importorskip("torch")
    checked = 0
    for _, sample, what in each_case(entry, (F64,)):
        if not sample.smooth:
            continue
        rng = np.random.default_rng(zlib.crc32(what.encode()))
        leaves, seeds, grads = _tinynet_grads(entry, sample, rng, create_graph=True)
        if not leaves:
            continue
        weights = [rng.standard_normal(x.shape) for x in leaves]
        ours = _double_backward(grads, leaves, weights, tn.tensor, tn.autograd.grad)
        t_leaves, t_grads = _torch_grads(torch, entry, sample, seeds, create_graph=True)
        theirs = _double_backward(t_grads, t_leaves, weights, torch.from_numpy,
                                  torch.autograd.grad)
        tol = BASE_TOLERANCE[F64] * entry.rtol * GRAD_FACTOR ** 2
        for k, (a, b, x) in enumerate(zip(ours, theirs, leaves, strict=True)):
            expected = np.zeros(x.shape) if b is None else b.numpy(force=True)
            actual = np.zeros(x.shape) if a is None else a.data
            assert_close(actual, expected, tol, f"{what}, second derivative, input {k}")
        checked += 1
    assert checked


# ---- every op has an entry ----------------------------------------------------------------------


def _plain(name: str) -> str:
    return name.lower().replace("_", "")


def pending(name: str) -> bool:
    """Whether a registry class or public name belongs to an op in PENDING_ENTRIES."""
    return any(_plain(name) == _plain(p) or _plain(name).startswith(_plain(p))
               for p in PENDING_ENTRIES)


def test_every_registered_op_has_an_entry() -> None:
    registry = {name for name, cls in Function.registry.items()
                if cls.__module__.startswith("tinynet.")}
    reached = functions_reached_by_entries() | STAND_IN_GRADIENTS
    missing = sorted(name for name in registry - reached if not pending(name))
    waiting = sorted(name for name in registry - reached if pending(name))
    print(f"registry ops without an entry: {missing}; pending (other branches): {waiting}")
    assert not missing, (
        f"Functions no opdb entry reaches: {missing}. Add an entry to tests/opdb.py whose op "
        "runs them")


def test_every_public_op_has_an_entry() -> None:
    named = covered_names()
    public = {n for n in tn.__all__ if n not in NOT_OPS and callable(getattr(tn, n))}
    missing = sorted(n for n in public - named if not pending(n))
    waiting = sorted(n for n in public - named if pending(n))
    print(f"public ops without an entry: {missing}; pending (other branches): {waiting}")
    assert not missing, (
        f"public tinynet functions without an opdb entry: {missing}. Add an entry to "
        "tests/opdb.py (or, if the name is not an op, to NOT_OPS there)")


def test_pending_entries_are_ops_without_an_entry() -> None:
    """Once an op in PENDING_ENTRIES has an entry, its name must leave the list."""
    named = {_plain(e.name) for e in OPS}
    assert not [p for p in PENDING_ENTRIES if _plain(p) in named]
    assert len(set(PENDING_ENTRIES)) == len(PENDING_ENTRIES)


def test_entry_names_are_unique_and_samples_are_deterministic() -> None:
    assert len({e.name for e in OPS}) == len(OPS)
    for entry in OPS[:10]:
        first = draw(entry, F64)
        again = draw(entry, F64)
        for a, b in zip(first, again, strict=True):
            for x, y in zip(a.args, b.args, strict=True):
                if isinstance(x, np.ndarray):
                    assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f")


def test_the_tolerance_check_fails_on_a_wrong_value() -> None:
    expected = np.array([1.0, -2.0, np.inf, np.nan])
    assert_close(expected + 1e-14, expected, 1e-13, "close")
    with pytest.raises(AssertionError):
        assert_close(expected + np.array([1e-3, 0, 0, 0]), expected, 1e-6, "far")
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0, -2.0, -np.inf, np.nan]), expected, 1e-6, "sign of inf")
