"""The formula table (tinynet/kernels/formulas.py) is the one definition of every elementwise
op: the eager ops' Tensor-level ``backward`` rules (the learner's reading, written separately)
must agree with it, and so must the kernels generated from it and their numpy twins.

Inputs include NaN, +-inf, +-0, the kinks of each row (its parameters' bounds and thresholds)
and, for binary ops, ties; float32 and float64. "Agree" means the same NaN and inf positions,
and values within a few rounding units scaled by the magnitudes involved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from tinynet import kernels as K
from tinynet.kernels import formulas
from tinynet.kernels import reference as R
from tinynet.kernels.formulas import ROWS, TABLE

REPO = Path(__file__).resolve().parent.parent
ACTIVATION_ROWS = [r.name for r in ROWS if r.activation and r.name != "identity"]
ARITHMETIC_ROWS = [r.name for r in ROWS if not r.activation]
DTYPES = [np.float32, np.float64]
SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 20.0, -20.0, 1e-30, 100.0, -100.0]

# The tinynet call of each row, with parameters other than the defaults, so that the values
# PyTorch's arguments take reach every kernel and rule.
F = tn.nn.functional
ACTIVATION_CALLS: dict[str, tuple[Any, dict[str, float]]] = {
    "sigmoid": (tn.sigmoid, {}),
    "tanh": (tn.tanh, {}),
    "relu": (tn.relu, {}),
    "step": (tn.step, {}),
    "step_straight_through": (lambda x: tn.step(x, surrogate="straight_through"), {}),
    "step_sigmoid": (lambda x: tn.step(x, surrogate="sigmoid"), {}),
    "leaky_relu": (F.leaky_relu, {"negative_slope": 0.2}),
    "elu": (F.elu, {"alpha": 1.5}),
    "hardtanh": (F.hardtanh, {"min_val": -2.0, "max_val": 0.5}),
    "softplus": (F.softplus, {"beta": 2.0, "threshold": 3.0}),
    "silu": (F.silu, {}),
    "mish": (F.mish, {}),
    "gelu": (F.gelu, {}),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), {}),
    "hardsigmoid": (F.hardsigmoid, {}),
    "hardswish": (F.hardswish, {}),
    "selu": (F.selu, {}),
    "celu": (F.celu, {"alpha": 1.5}),
    "logsigmoid": (F.logsigmoid, {}),
    "threshold": (F.threshold, {"threshold": 0.5, "value": -2.0}),
}
ARITHMETIC_CALLS = {"add": tn.add, "sub": tn.sub, "mul": tn.mul, "div": tn.div,
                    "neg": lambda a: -a, "exp": tn.exp, "log": tn.log, "sqrt": tn.sqrt,
                    "erf": tn.ops.erf, "log10": tn.log10, "log2": tn.log2, "log1p": tn.log1p,
                    "expm1": tn.expm1, "rsqrt": tn.rsqrt, "sin": tn.sin, "cos": tn.cos,
                    "abs": tn.abs, "sign": tn.sign, "floor": tn.floor, "ceil": tn.ceil,
                    "trunc": tn.trunc, "frac": tn.frac, "pow": tn.pow, "maximum": tn.maximum,
                    "minimum": tn.minimum}


def kinks(name: str, params: dict[str, float]) -> list[float]:
    """The points where the row's derivative jumps (as PyTorch defines the one-sided value)."""
    if name == "hardtanh":
        return [params["min_val"], params["max_val"]]
    if name == "softplus":
        return [params["threshold"] / params["beta"]]
    if name in ("hardsigmoid", "hardswish"):
        return [-3.0, 3.0]
    if name == "step_straight_through":
        return [-1.0, 1.0]
    if name == "threshold":
        return [params["threshold"]]
    return [0.0]


def edge_values(name: str, params: dict[str, float]) -> list[float]:
    points = kinks(name, params)
    nudged = [p + d for p in points for d in (-1e-7, 1e-7)]
    return SPECIAL + points + nudged


@st.composite
def inputs(draw: Any, name: str, params: dict[str, float], dtype: Any) -> np.ndarray:
    """A 1-d array mixing ordinary draws with the row's edge values."""
    finite = draw(hnp.arrays(np.float64, st.integers(1, 12),
                             elements=st.floats(-8, 8, allow_nan=False)))
    edges = np.array(edge_values(name, params))
    picked = draw(st.lists(st.sampled_from(list(range(len(edges)))), max_size=6))
    return np.concatenate([finite, edges[picked], edges]).astype(dtype)


def assert_agree(actual: np.ndarray, expected: np.ndarray, dtype: Any, what: str,
                 scale: Any = None, ulps: float = 64) -> None:
    """Same NaN and inf positions; finite values within ``ulps`` rounding units of the larger
    of the two magnitudes (or of ``scale``, the sizes of the terms that were added)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore"):
        if callable(scale):
            scale = scale()
        _assert_agree(actual, expected, dtype, what, scale, ulps)


def _assert_agree(actual: np.ndarray, expected: np.ndarray, dtype: Any, what: str,
                  scale: Any, ulps: float) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what + " (NaN)")
    inf = np.isinf(expected)
    np.testing.assert_array_equal(actual[inf], expected[inf], err_msg=what + " (inf)")
    finite = np.isfinite(expected) & np.isfinite(actual)
    np.testing.assert_array_equal(np.isfinite(actual), np.isfinite(expected), err_msg=what)
    eps = np.finfo(dtype).eps
    size = np.maximum(np.abs(actual), np.abs(expected))
    if scale is not None:
        size = np.maximum(size, np.abs(np.asarray(scale, np.float64)))
    tolerance = ulps * eps * size + np.finfo(dtype).tiny * ulps
    bad = finite & (np.abs(actual - expected) > tolerance)
    assert not bad.any(), (f"{what}: {actual[bad][:5]} vs {expected[bad][:5]} "
                           f"at inputs index {np.flatnonzero(bad)[:5]}")


def table_forward(name: str, x: np.ndarray, params: dict[str, float]) -> np.ndarray:
    return formulas.numpy_function(TABLE[name], "forward")(x=x, **params)


def table_backward(name: str, g: np.ndarray, x: np.ndarray, y: np.ndarray,
                   params: dict[str, float]) -> np.ndarray:
    row = TABLE[name]
    saved = {"x": x, "y": y}
    return formulas.numpy_function(row, 0)(g=g, **{k: saved[k] for k in row.saves}, **params)


# ---- the table itself ---------------------------------------------------------------------


def test_every_expression_renders_for_every_backend() -> None:
    """Only the table's names and functions appear in it (render raises otherwise)."""
    for row in ROWS:
        for part in ("forward", *range(len(row.inputs))):
            assert formulas.loop_expression(row, part)
            formulas.numpy_function(row, part)
    assert "def gelu_backward(" in formulas.kernel_source()


def test_an_unknown_name_in_a_formula_is_refused() -> None:
    bad = formulas.Formula("bad", ("x",), "x * slope", ("g",), ())
    with pytest.raises(KeyError, match="slope"):
        formulas.loop_expression(bad, "forward")
    worse = formulas.Formula("worse", ("x",), "cosh(x)", ("g",), ())
    with pytest.raises(KeyError, match="cosh"):
        formulas.numpy_function(worse, "forward")


def test_every_table_op_is_an_op_and_every_activation_has_its_function() -> None:
    ops = {cls.op for cls in tn.autograd.Function.registry.values()}
    for row in ROWS:
        if row.name in ("identity", "step", "gelu_tanh"):
            continue  # linear's fused activations, and GELU(approximate='tanh')'s row
        assert row.name in ops, row.name
    assert set(ACTIVATION_CALLS) == set(ACTIVATION_ROWS)
    assert set(ARITHMETIC_CALLS) == set(ARITHMETIC_ROWS)


# ---- the Tensor-level rules (ops/) against the table -----------------------------------------


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf * 0 in Tensor rules
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATION_ROWS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_activation_rules_agree_with_the_table(name: str, dtype: Any, data: Any) -> None:
    fn, params = ACTIVATION_CALLS[name]
    x = data.draw(inputs(name, params, dtype), label="x")
    g = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-3, 3, width=32)), label="g")
    g[-3:] = [np.inf, np.nan, 0.0]  # infinite, NaN and zero gradients reach every rule
    t = tn.tensor(x, requires_grad=True)
    y = fn(t, **params)
    assert y.dtype == dtype
    # (gelu's 1 + erf and 1 + tanh cancel for x < 0: rounding errors of the size of |x|)
    scale = np.abs(x) if name.startswith("gelu") else None
    assert_agree(y.data, table_forward(name, x, params), dtype, f"{name} forward", scale)
    # the Tensor-level rule (create_graph runs `backward`, not the kernels' fast path)
    (grad,) = tn.autograd.grad(y, t, tn.tensor(g), create_graph=True)
    expected = table_backward(name, g, x, y.data, params)
    assert grad.dtype == dtype
    assert_agree(grad.data, expected, dtype, f"{name} Tensor-level backward",
                 scale=lambda: np.abs(g) * (1 + np.abs(x)))
    # and the engine's fast path (the generated kernels)
    t.grad = None
    fn(t, **params).backward(tn.tensor(g))
    assert_agree(t.grad.data, expected, dtype, f"{name} fast backward",
                 scale=lambda: np.abs(g) * (1 + np.abs(x)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ARITHMETIC_ROWS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_arithmetic_rules_agree_with_the_table(name: str, dtype: Any, data: Any) -> None:
    row = TABLE[name]
    a = data.draw(inputs(name, {}, dtype), label="a")
    arrays = [a]
    if len(row.inputs) == 2:
        b = data.draw(inputs(name, {}, dtype), label="b")[: a.size]
        b = np.resize(b, a.shape).astype(dtype)
        b[::3] = a[::3]  # ties
        arrays.append(b)
    g = data.draw(hnp.arrays(dtype, a.shape, elements=st.floats(-3, 3, width=32)), label="g")
    leaves = [tn.tensor(v, requires_grad=True) for v in arrays]
    with np.errstate(all="ignore"):
        y = ARITHMETIC_CALLS[name](*leaves)
        values = dict(zip(row.inputs, arrays, strict=True))
        assert_agree(y.data, formulas.numpy_function(row, "forward")(**values), dtype,
                     f"{name} forward")
        grads = tn.autograd.grad(y, leaves, tn.tensor(g), create_graph=True)
        for i, grad in enumerate(grads):
            saved = {**values, "y": y.data}
            expected = formulas.numpy_function(row, i)(
                g=g, **{k: saved[k] for k in row.saves})
            scale = np.abs(g) * sum(1 + np.abs(v) for v in arrays)
            assert_agree(grad.data, expected, dtype, f"{name} d/d{row.inputs[i]}", scale=scale)


# ---- tn.compile lowers every row (its loops are the row's expressions) -----------------------


def test_no_table_op_is_left_opaque() -> None:
    """An op of the table lowers by its row (Step's surrogates are rows of their own)."""
    from tinynet.compile import fuse

    table_ops = [cls for cls in tn.autograd.Function.registry.values() if cls.op in TABLE]
    assert {"step", "step_straight_through", "step_sigmoid"} <= {c.op for c in table_ops}
    for cls in table_ops:
        assert fuse.lowers(cls), cls.__name__


@pytest.mark.parametrize("name", ACTIVATION_ROWS + ARITHMETIC_ROWS)
def test_compiled_rows_run_lowered_and_match_eager(name: str) -> None:
    """A compiled step using the row (forward, backward, a weighted sum) equals the eager step
    at the row's kinks and non-finite values too, and its IR has no opaque kernel."""
    row = TABLE[name]
    fn, params = ACTIVATION_CALLS[name] if row.activation else (ARITHMETIC_CALLS[name], {})
    x = np.array(edge_values(name, params) + [0.3, -0.7, 2.5, -1.5], dtype=np.float64)
    arrays = [x] if len(row.inputs) == 1 else [x, np.roll(x, 3)]
    arrays[-1][::4] = x[::4]  # ties
    weights = tn.tensor(np.linspace(-1.5, 2.0, x.size))

    def step(*leaves: tn.Tensor) -> tn.Tensor:
        out = fn(*leaves, **params)
        total = (out * weights).sum()
        total.backward()
        return out

    compiled = tn.compile(step)
    for _ in range(3):
        eager_in = [tn.tensor(a, requires_grad=True) for a in arrays]
        comp_in = [tn.tensor(a, requires_grad=True) for a in arrays]
        with np.errstate(all="ignore"):
            expected, got = step(*eager_in), compiled(*comp_in)
        assert_agree(got.data, expected.data, np.float64, f"{name} compiled forward", ulps=4)
        for i, (a, b) in enumerate(zip(eager_in, comp_in, strict=True)):
            assert_agree(b.grad.data, a.grad.data, np.float64, f"{name} compiled d/d{i}",
                         scale=np.abs(weights.data) * (1 + sum(np.abs(v) for v in arrays)),
                         ulps=4)
    assert compiled.replays == 2
    if K.numba_enabled():
        text = compiled.last.explain(compiled.last.program)
        ir = text[text.index("== IR after"):text.index("== buffer plan")]
        assert "opaque" not in ir, ir


def test_linear_fused_activation_rules_are_the_activations_rules() -> None:
    """ops.linear(..., activation=) differentiates its activation with the same ``rule``."""
    x = tn.tensor(np.linspace(-2, 2, 6).reshape(2, 3), requires_grad=True)
    w = tn.tensor(np.linspace(-1, 1, 12).reshape(4, 3))
    for act in ("sigmoid", "tanh", "relu"):
        fused = tn.ops.linear(x, w, None, activation=act)
        (a,) = tn.autograd.grad(fused.sum(), x, create_graph=True)
        plain = getattr(tn, act)(x @ w.T)
        (b,) = tn.autograd.grad(plain.sum(), x, create_graph=True)
        np.testing.assert_allclose(a.data, b.data, rtol=1e-14, atol=1e-15)


# ---- the generated kernels against their twins ----------------------------------------------


@pytest.mark.skipif(not K.numba_enabled(), reason="the numba kernels are switched off")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATION_ROWS)
def test_generated_kernels_match_their_generated_twins(name: str, dtype: Any) -> None:
    _, params = ACTIVATION_CALLS[name]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 4, 200), edge_values(name, params)]).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    with K.dispatch_mode("compiled"):
        y = K.elementwise_forward(name, x, **params)
        saved = y if TABLE[name].saves == ("y",) else x
        back = K.elementwise_backward(name, g, saved, **params)
        z = np.ascontiguousarray(np.stack([x, -x]))
        fused = getattr(K._load(), f"bias_{name}_forward")  # (even where the twin is faster)
        bias = np.full(z.shape[1], 0.25, dtype=dtype)
        fused(z, bias, *K._params(name, params).values())
    with K.dispatch_mode("twin"):
        y_twin = K.elementwise_forward(name, x, **params)
        back_twin = K.elementwise_backward(name, g, saved, **params)
        z_twin = K.elementwise_forward(name, np.stack([x, -x]) + bias, **params)
    assert y.dtype == back.dtype == dtype
    scale = np.abs(x) if name.startswith("gelu") else None
    assert_agree(y, y_twin, dtype, f"{name} forward kernel", scale)
    assert_agree(back, back_twin, dtype, f"{name} backward kernel", scale=np.abs(g) * (
        1 + np.abs(x)))
    assert_agree(z, z_twin, dtype, f"bias_{name}_forward kernel",
                 np.abs(z_twin) + 1 if name.startswith("gelu") else None)


def test_twins_are_generated_from_the_table() -> None:
    for name in ACTIVATION_ROWS:
        assert getattr(R, f"{name}_forward").__doc__.startswith(
            f"y = {TABLE[name].forward}")
        assert TABLE[name].backward[0] in getattr(R, f"{name}_backward").__doc__


# ---- the generated module sits on disk, so numba's cache finds it -----------------------------


def _run(code: str, **env: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(not K.numba_enabled(), reason="the numba kernels are switched off")
def test_generated_kernels_load_from_numbas_disk_cache_in_a_new_process(tmp_path: Path) -> None:
    code = ("import numpy as np, tinynet.kernels as K\n"
            "K.elementwise_forward('gelu', np.linspace(-1, 1, 8))\n"
            "from tinynet.kernels import compiled\n"
            "print(compiled.gelu_forward.stats.cache_hits.__len__(), "
            "compiled.gelu_forward.stats.cache_misses.__len__())")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba"), "TINYNET_CACHE_DIR": str(tmp_path),
           "TINYNET_NUMBA": "1"}
    assert _run(code, **env) == "0 1"  # compiled, then written to the cache
    assert _run(code, **env) == "1 0"  # the next process loads it
    assert list((tmp_path / "kernels").glob("elementwise_*.py"))


# ---- docs/autograd.md shows the table beside the rules, as they are -------------------------


def test_docs_autograd_md_table_rows_are_the_formula_table() -> None:
    import re

    page = (REPO / "docs" / "autograd.md").read_text()
    section = page[page.index("# The formula table beside the rules"):]
    lines = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert len(lines) >= 10
    sources = "".join(p.read_text() for p in (REPO / "tinynet" / "ops").glob("*.py"))
    for line in lines:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        name, forward, gradients, rules = cells
        row = TABLE[name]

        def code(cell: str) -> list[str]:
            return [c.replace("\\|", "|") for c in re.findall(r"`([^`]*)`", cell)]

        assert code(forward) == [row.forward], name
        assert tuple(code(gradients)) == row.backward, name
        for rule in code(rules):
            assert rule in sources, f"docs/autograd.md shows {rule!r} for {name}: not in ops/"
