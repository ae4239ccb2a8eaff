"""The formula table's activations against PyTorch: GELU (both approximations), SiLU, Softplus,
LeakyReLU, ELU, Hardtanh, Mish, Hardsigmoid, Hardswish, SELU, CELU, LogSigmoid and Threshold
(with sigmoid, tanh and relu; and ReLU6, Softsign and Tanhshrink, made of rows), as functions
and modules,
with PyTorch's arguments, defaults and numbers: values in float32 and float64, first and
second derivatives, the edges (0, kinks, +-inf, NaN, large |x|), in-place forms, and a
compiled training step equal to the eager one. Central differences of every one of them are
checked in test_gradients.py and test_double_backward.py (strategies.CASES).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opdb import float64_where_float32_nan

import tinynet as tn
from tinynet.compile import fuse

torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = tn.nn.functional

# name -> (tinynet function, torch function, argument sets to try)
CASES: dict[str, tuple[Any, Any, list[dict[str, Any]]]] = {
    "sigmoid": (F.sigmoid, torch.sigmoid, [{}]),
    "tanh": (F.tanh, torch.tanh, [{}]),
    "relu": (F.relu, TF.relu, [{}]),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu,
                   [{}, {"negative_slope": 0.2}, {"negative_slope": -1.5}]),
    "elu": (F.elu, TF.elu, [{}, {"alpha": 0.5}, {"alpha": 2.0}]),
    "hardtanh": (F.hardtanh, TF.hardtanh, [{}, {"min_val": -2.0, "max_val": 0.5}]),
    "softplus": (F.softplus, TF.softplus,
                 [{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 5.0}]),
    "silu": (F.silu, TF.silu, [{}]),
    "mish": (F.mish, TF.mish, [{}]),
    "gelu": (F.gelu, TF.gelu, [{}, {"approximate": "tanh"}]),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid, [{}]),
    "hardswish": (F.hardswish, TF.hardswish, [{}]),
    "selu": (F.selu, TF.selu, [{}]),
    "celu": (F.celu, TF.celu, [{}, {"alpha": 0.5}, {"alpha": 2.0}]),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid, [{}]),
    "threshold": (F.threshold, TF.threshold, [{"threshold": 0.5, "value": -2.0},
                                              {"threshold": -1.0, "value": 3.0}]),
    "relu6": (F.relu6, TF.relu6, [{}]),
    "softsign": (F.softsign, TF.softsign, [{}]),
    "tanhshrink": (F.tanhshrink, TF.tanhshrink, [{}]),
}
PARAMETRIZED = [(name, args) for name, (_, _, sets) in CASES.items() for args in sets]
IDS = [f"{name}-{args}" for name, args in PARAMETRIZED]


def edges(args: dict[str, Any]) -> np.ndarray:
    """Ordinary values, 0 and -0, every kink, +-inf, NaN and large |x|."""
    kinks = [0.0, args.get("min_val", -1.0), args.get("max_val", 1.0), -1.0, 1.0]
    if "threshold" in args or "beta" in args:
        kinks.append(args.get("threshold", 20.0) / args.get("beta", 1.0))
    near = [k + d for k in kinks for d in (-1e-3, 1e-3)]
    big = [20.0, -20.0, 30.0, -30.0, 88.0, -88.0, 700.0, -700.0, 1e30, -1e30]
    return np.array([*np.linspace(-6, 6, 49), -0.0, *kinks, *near, *big,
                     np.inf, -np.inf, np.nan])


def close(actual: np.ndarray, expected: np.ndarray, dtype: Any, ulps: float = 64,
          scale: Any = None) -> None:
    """Equal NaN/inf positions; finite values within ``ulps`` rounding units of the magnitudes
    (or of ``scale``, the size of the terms added); never atol = 0 near zero."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(actual[np.isinf(expected)], expected[np.isinf(expected)])
    finite = np.isfinite(expected)
    a, e = actual[finite].astype(np.float64), expected[finite].astype(np.float64)
    size = np.maximum(np.abs(a), np.abs(e))
    if scale is not None:
        size = np.fmax(size, np.asarray(scale, np.float64)[finite])
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(a - e), ulps * eps * size + 16 * np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "args"), PARAMETRIZED, ids=IDS)
def test_values_and_gradients_match_pytorch_at_every_edge(name: str, args: dict, dtype: Any
                                                          ) -> None:
    ours, theirs, _ = CASES[name]
    x = edges(args).astype(dtype)
    g = np.linspace(-2, 2, x.size).astype(dtype)
    t = tn.tensor(x, requires_grad=True)
    y = ours(t, **args)
    y.backward(tn.tensor(g))
    tt = torch.tensor(x, requires_grad=True)
    ty = theirs(tt, **args)
    ty.backward(torch.tensor(g))
    wide = torch.tensor(x.astype(np.float64), requires_grad=True)  # (where float32 says NaN)
    wide_y = theirs(wide, **args)
    wide_y.backward(torch.tensor(g.astype(np.float64)))
    assert y.dtype == dtype and t.grad.dtype == dtype
    # gelu's 1 + erf(...) and 1 + tanh(...) cancel for negative x: errors the size of |x| ulps
    scale = np.abs(x) if name == "gelu" else None
    value = float64_where_float32_nan(torch, ty.detach(), wide_y.detach(), y.data)
    close(y.data, value.numpy(), dtype, scale=scale)
    expected = float64_where_float32_nan(torch, tt.grad, wide.grad, t.grad.data).numpy()
    if name == "hardsigmoid":  # PyTorch's backward multiplies by 1/6 rounded to float32, even
        expected = expected / np.float32(1 / 6) / dtype(6)  # in float64; tinynet divides by 6
    close(t.grad.data, expected, dtype, scale=np.abs(g) * (1 + np.abs(x)))


@pytest.mark.parametrize(("name", "args"), PARAMETRIZED, ids=IDS)
def test_second_derivatives_match_pytorch(name: str, args: dict) -> None:
    ours, theirs, _ = CASES[name]
    x = np.array([-5.0, -2.3, -0.7, -0.2, 0.3, 0.9, 1.7, 3.1, 6.0, 25.0, -25.0])
    x = x[[min(abs(v - k) for k in (0.0, args.get("min_val", -1.0), args.get("max_val", 1.0),
                                   args.get("threshold", 20.0) / args.get("beta", 1.0), 3.0,
                                   -3.0, 6.0))
           > 1e-3 for v in x]]
    t = tn.tensor(x, requires_grad=True)
    (g,) = tn.autograd.grad(ours(t, **args).sum(), t, create_graph=True)
    tt = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(theirs(tt, **args).sum(), tt, create_graph=True)
    scale = 1 + np.abs(x)
    if name == "hardsigmoid":  # (PyTorch's 1/6 in float32, as above)
        scale = 1 + np.abs(x) * 1e6
    close(g.data, tg.detach().numpy(), np.float64, ulps=256, scale=scale)
    if name in ("relu", "leaky_relu", "hardtanh", "hardsigmoid", "threshold", "relu6"):
        assert not g.requires_grad  # piecewise linear: a constant slope, no graph recorded
        if name != "hardsigmoid":  # (PyTorch has no derivative of hardsigmoid's backward)
            (th,) = torch.autograd.grad((tg * tg).sum(), tt)
            np.testing.assert_array_equal(th.numpy(), 0.0)
        return
    (th,) = torch.autograd.grad((tg * tg).sum(), tt)
    (h,) = tn.autograd.grad((g * g).sum(), t)
    close(h.data, th.numpy(), np.float64, ulps=256, scale=1 + np.abs(x))


def test_relu_at_nan_passes_the_gradient_as_pytorch() -> None:
    x = tn.tensor([np.nan, -1.0, 0.0, 2.0], requires_grad=True)
    x.relu().backward(tn.ones(4))
    tx = torch.tensor([np.nan, -1.0, 0.0, 2.0], requires_grad=True)
    tx.relu().backward(torch.ones(4))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())  # [1, 0, 0, 1]


# ---- modules ----------------------------------------------------------------------------------

MODULES = [
    ("ReLU", {}), ("ReLU", {"inplace": True}), ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.3, "inplace": True}), ("ELU", {}), ("ELU", {"alpha": 0.5}),
    ("Hardtanh", {}), ("Hardtanh", {"min_val": -3.0, "max_val": 2.0}), ("Softplus", {}),
    ("Softplus", {"beta": 2.0, "threshold": 10.0}), ("SiLU", {}), ("SiLU", {"inplace": True}),
    ("Mish", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"}),
    ("Hardsigmoid", {}), ("Hardswish", {"inplace": True}), ("SELU", {}),
    ("CELU", {"alpha": 0.5}), ("CELU", {"inplace": True}), ("LogSigmoid", {}),
    ("Threshold", {"threshold": 0.5, "value": -2.0}), ("ReLU6", {}), ("Softsign", {}),
    ("Tanhshrink", {}),
]


@pytest.mark.parametrize(("cls", "kwargs"), MODULES, ids=[f"{c}-{k}" for c, k in MODULES])
def test_modules_print_and_compute_as_pytorchs(cls: str, kwargs: dict) -> None:
    ours, theirs = getattr(tn.nn, cls)(**kwargs), getattr(torch.nn, cls)(**kwargs)
    assert repr(ours) == repr(theirs)
    x = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(ours(tn.tensor(x)).data,
                               theirs(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-15)


def test_module_and_function_defaults_are_pytorchs() -> None:
    import inspect

    documented = {  # C functions: their docstrings give the signature
        "softplus": ("softplus(input, beta=1, threshold=20)", "(input: 'Tensor', beta: 'float' "
                     "= 1.0, threshold: 'float' = 20.0)"),
        "gelu": ("gelu(input, approximate = 'none')", "(input: 'Tensor', approximate: 'str' = "
                 "'none')"),
        "logsigmoid": ("logsigmoid(input) -> Tensor", "(input: 'Tensor')"),
    }
    for name in ("leaky_relu", "elu", "hardtanh", "softplus", "silu", "mish", "gelu", "relu",
                 "hardsigmoid", "hardswish", "selu", "celu", "threshold", "relu6", "softsign",
                 "tanhshrink", "logsigmoid"):
        ours = inspect.signature(getattr(F, name)).parameters
        if name in documented:
            theirs_doc, ours_text = documented[name]
            assert getattr(TF, name).__doc__.strip().startswith(theirs_doc)
            assert str(inspect.signature(getattr(F, name))).startswith(ours_text)
            continue
        theirs = inspect.signature(getattr(TF, name)).parameters
        assert list(ours) == list(theirs), name
        for key in ours:
            if key != "input":
                assert ours[key].default == theirs[key].default, (name, key)


def test_bad_arguments_are_refused_with_the_op_named() -> None:
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(tn.ones(2), approximate="fast")
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(tn.ones(2), 1.0, -1.0)
    with pytest.raises(ValueError, match="Hardtanh: max_val"):
        tn.nn.Hardtanh(1.0, 1.0)
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a real number"):
        F.leaky_relu(tn.ones(2), "0.1")


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "hardtanh", "silu", "mish",
                                  "hardswish", "selu", "celu", "relu6"])
def test_inplace_writes_into_the_input_and_keeps_gradients_right(name: str) -> None:
    ours, theirs, _ = CASES[name]
    x = np.linspace(-3, 3, 13)
    # outside a graph: the same tensor comes back, holding the result
    t = tn.tensor(x.copy())
    out = ours(t, inplace=True)
    assert out is t
    np.testing.assert_allclose(t.data, theirs(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-15)
    # in a graph: recorded like `h += 1`, gradients as PyTorch's
    leaf = tn.tensor(x, requires_grad=True)
    h = leaf * 2
    assert ours(h, inplace=True) is h
    (h * h).sum().backward()
    tleaf = torch.tensor(x, requires_grad=True)
    th = tleaf * 2
    theirs(th, inplace=True)
    (th * th).sum().backward()
    np.testing.assert_allclose(h.data, th.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(leaf.grad.data, tleaf.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---- compiled == eager -------------------------------------------------------------------------

TRAINING = [("Sigmoid", {}), ("Tanh", {}), ("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.1}),
            ("ELU", {"alpha": 0.7}), ("Hardtanh", {"min_val": -0.5, "max_val": 0.5}),
            ("Softplus", {"beta": 2.0, "threshold": 1.0}), ("SiLU", {}), ("Mish", {}),
            ("GELU", {}), ("GELU", {"approximate": "tanh"})]


def _model(cls: str, kwargs: dict, dtype: Any) -> Any:
    tn.manual_seed(0)
    model = tn.nn.Sequential(tn.nn.Linear(3, 5), getattr(tn.nn, cls)(**kwargs),
                             tn.nn.Linear(5, 4), getattr(tn.nn, cls)(**kwargs),
                             tn.nn.Linear(4, 2))
    return model.to(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("cls", "kwargs"), TRAINING, ids=[f"{c}-{k}" for c, k in TRAINING])
def test_a_compiled_training_step_equals_the_eager_one(cls: str, kwargs: dict, dtype: Any
                                                       ) -> None:
    rng = np.random.default_rng(1)
    x = tn.tensor(rng.normal(size=(6, 3)).astype(dtype))
    y = tn.tensor(rng.normal(size=(6, 2)).astype(dtype))
    models = [_model(cls, kwargs, dtype) for _ in range(2)]
    opts = [tn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in models]

    def step_of(model: Any, opt: Any) -> Any:
        def step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return step

    eager, compiled = step_of(models[0], opts[0]), tn.compile(step_of(models[1], opts[1]))
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    for _ in range(4):
        expected, got = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(got.data, expected.data, rtol=rtol, atol=rtol)
        for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
            np.testing.assert_allclose(q.data, p.data, rtol=rtol, atol=rtol)
            np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=rtol, atol=rtol)
    assert compiled.replays == 2  # (traced again at the second call: .grad and momentum appear)
    if tn.kernels.numba_enabled():  # generated code: every activation is lowered, not opaque
        text = compiled.explain()
        ir = text[text.index("== IR after"):text.index("== buffer plan")]
        assert "opaque" not in ir, ir


def test_every_table_activation_lowers_under_compile() -> None:
    from tinynet.ops import activation as A

    for cls in (A.Sigmoid, A.Tanh, A.ReLU, A.LeakyReLU, A.ELU, A.Hardtanh, A.Softplus, A.SiLU,
                A.Mish, A.GELU, A.GELUTanh, A.Erf):
        assert fuse.lowers(cls) and cls.op in fuse.TABLE, cls.__name__
