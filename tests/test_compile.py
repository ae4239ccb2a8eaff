"""tn.compile: a compiled step leaves the world exactly as the eager step does.

Each test builds two identical models (same seed), trains one eagerly and one through
``tn.compile``, and compares losses, parameters, gradients, optimizer state and version
counters after every step. Generated code is cached under a per-session directory.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import kernels
from tinynet.autograd import Function
from tinynet.compile import fuse

TOL = {np.float32: 1e-5, np.float64: 1e-10}


# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def numba_only(what: str) -> None:
    """Skip the rest of a test when numba is off (TINYNET_NUMBA=0, or no numba): what follows
    asserts on numba's generated code, which then does not exist. Call it after the test's
    numerical assertions, which hold with the numpy twins too."""
    if not kernels.numba_enabled():
        pytest.skip(f"{what}: asserts on numba's generated code; with TINYNET_NUMBA=0 compile "
                    "replays step by step (its numbers were checked above)")


def make_model(sizes: list[int], act: str, dtype: Any, seed: int,
               final: str | None = None) -> tn.nn.Module:
    tn.manual_seed(seed)
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(tn.nn.Linear(a, b))
        last = i == len(sizes) - 2
        kind = final if last else act
        if kind == "sigmoid":
            layers.append(tn.nn.Sigmoid())
        elif kind == "tanh":
            layers.append(tn.nn.Tanh())
        elif kind == "relu":
            layers.append(tn.nn.ReLU())
        elif kind == "step":
            layers.append(tn.nn.Step(surrogate="sigmoid"))
    model = tn.nn.Sequential(*layers)
    return model.double() if dtype == np.float64 else model.float()


def make_optimizer(kind: str, params: Any, options: dict[str, Any]) -> Any:
    if kind == "sgd":
        return tn.optim.SGD(params, **options)
    return tn.optim.Adam(params, **options)


def loss_fn(loss: str) -> Callable[[Any, Any], Any]:
    return {"mse": F.mse_loss, "cross_entropy": F.cross_entropy,
            "bce": F.binary_cross_entropy}[loss]


def data(sizes: list[int], loss: str, batch: int, dtype: Any, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = tn.tensor(rng.standard_normal((batch, sizes[0])).astype(dtype))
    if loss == "cross_entropy":
        y = tn.tensor(rng.integers(0, sizes[-1], batch))
    elif loss == "bce":
        y = tn.tensor(rng.uniform(0, 1, (batch, sizes[-1])).astype(dtype))
    else:
        y = tn.tensor(rng.standard_normal((batch, sizes[-1])).astype(dtype))
    return x, y


def training_pair(sizes: list[int], act: str, loss: str, dtype: Any, opt_kind: str,
                  options: dict[str, Any], seed: int = 0) -> tuple[Any, ...]:
    final = "sigmoid" if loss == "bce" else None
    models = [make_model(sizes, act, dtype, seed, final) for _ in range(2)]
    opts = [make_optimizer(opt_kind, m.parameters(), options) for m in models]
    criterion = loss_fn(loss)

    def eager_step(x: Any, y: Any) -> Any:
        opts[0].zero_grad()
        out = criterion(models[0](x), y)
        out.backward()
        opts[0].step()
        return out

    def step(x: Any, y: Any) -> Any:
        opts[1].zero_grad()
        out = criterion(models[1](x), y)
        out.backward()
        opts[1].step()
        return out

    return models, opts, eager_step, tn.compile(step)


def assert_same_world(models: list[Any], opts: list[Any], rtol: float) -> None:
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=rtol, atol=rtol)
        assert q.data.dtype == p.data.dtype
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=rtol, atol=rtol)
            assert q.grad.data.dtype == p.grad.data.dtype
        assert p._version.value == q._version.value
        s, t = opts[0].state.get(p, {}), opts[1].state.get(q, {})
        assert s.keys() == t.keys()
        for key in s:
            if isinstance(s[key], tn.Tensor):
                np.testing.assert_allclose(t[key].data, s[key].data, rtol=rtol, atol=rtol)
            else:
                assert s[key] == t[key]


def run_pair(sizes: list[int], act: str, loss: str, dtype: Any, opt_kind: str,
             options: dict[str, Any], steps: int = 50, batches: list[int] | None = None,
             lr_schedule: bool = False) -> Any:
    models, opts, eager_step, step = training_pair(sizes, act, loss, dtype, opt_kind, options)
    rtol = TOL[dtype]
    batches = batches or [8]
    for i in range(steps):
        x, y = data(sizes, loss, batches[i % len(batches)], dtype, seed=i)
        if lr_schedule:
            for o in opts:
                o.param_groups[0]["lr"] = 0.05 / (1 + i)
        a, b = eager_step(x, y), step(x, y)
        np.testing.assert_allclose(b.data, a.data, rtol=rtol, atol=rtol)
        assert b.data.dtype == a.data.dtype
        assert_same_world(models, opts, rtol)
    assert step.replays > 0
    return step


# ---------------------------------------------------------------------------------------------
# eager and compiled agree
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_xor_mlp_with_momentum_matches_eager_over_50_steps(dtype: Any) -> None:
    step = run_pair([2, 4, 1], "sigmoid", "mse", dtype, "sgd", {"lr": 0.5, "momentum": 0.9})
    assert step.traces == 2  # first step (makes momentum buffers), then the steady state


def test_benchmark_small_mlp_matches_eager() -> None:
    run_pair([64, 128, 128, 10], "sigmoid", "cross_entropy", np.float32, "sgd", {"lr": 0.1},
             steps=12, batches=[64])


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    widths=st.lists(st.integers(1, 64), min_size=2, max_size=5),
    act=st.sampled_from(["sigmoid", "tanh", "relu", "step"]),
    loss=st.sampled_from(["mse", "cross_entropy", "bce"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    optimizer=st.sampled_from([
        ("sgd", {"lr": 0.05}),
        ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3}),
        ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
        ("adam", {"lr": 1e-2}),
        ("adam", {"lr": 1e-2, "weight_decay": 1e-2, "betas": (0.8, 0.99)}),
    ]),
)
def test_hypothesis_mlps_match_eager(widths: list[int], act: str, loss: str, dtype: Any,
                                     optimizer: tuple[str, dict]) -> None:
    if loss == "cross_entropy" and widths[-1] < 2:
        widths = [*widths[:-1], 2]
    run_pair(widths, act, loss, dtype, optimizer[0], optimizer[1], steps=50,
             lr_schedule=True, batches=[7, 7, 3])


def test_changing_lr_between_steps_is_read_at_every_replay() -> None:
    run_pair([3, 5, 2], "tanh", "mse", np.float64, "adam", {"lr": 1e-2}, steps=20,
             lr_schedule=True)


def test_smaller_last_batch_gets_its_own_program() -> None:
    step = run_pair([4, 6, 3], "relu", "cross_entropy", np.float64, "sgd",
                    {"lr": 0.1, "momentum": 0.5}, steps=20, batches=[16, 16, 16, 5])
    assert step.traces == 3  # the first step, full batches, the last small batch
    assert len(step.programs) == 3


def test_interpreter_backend_matches_eager() -> None:
    models, opts, eager_step, _ = training_pair([3, 4, 2], "sigmoid", "mse", np.float64,
                                                "sgd", {"lr": 0.1})
    step = tn.compile(_, backend="interpret")
    for i in range(6):
        x, y = data([3, 4, 2], "mse", 5, np.float64, i)
        np.testing.assert_allclose(step(x, y).data, eager_step(x, y).data, rtol=1e-12)
        assert_same_world(models, opts, 1e-12)
    assert step.replays == 4


def test_numba_off_runs_the_same_program_through_numpy() -> None:
    with kernels.dispatch_mode("twin"):
        assert not kernels.numba_enabled()
        step = run_pair([3, 4, 2], "tanh", "mse", np.float64, "sgd", {"lr": 0.1}, steps=6)
        assert "interpret.py" in step.last.explain(step.last.program)


def test_inference_compile_of_a_model() -> None:
    model = make_model([5, 7, 3], "relu", np.float32, 1)
    predict = tn.compile(model)
    for i in range(4):
        x, _ = data([5, 7, 3], "mse", 6, np.float32, i)
        with tn.no_grad():
            np.testing.assert_allclose(predict(x).data, model(x).data, rtol=1e-5, atol=1e-6)
        out = predict(x)  # grad mode on: another program, same numbers
        np.testing.assert_allclose(out.data, model(x).data, rtol=1e-5, atol=1e-6)
    assert predict.replays >= 4


def test_returned_tensors_are_fresh_objects() -> None:
    _, _, _, step = training_pair([2, 3, 1], "sigmoid", "mse", np.float64, "sgd", {"lr": 0.1})
    x, y = data([2, 3, 1], "mse", 4, np.float64, 0)
    losses = [step(x, y) for _ in range(5)]
    values = [float(loss.data) for loss in losses]
    assert len({id(loss) for loss in losses}) == 5
    assert len({id(loss.data) for loss in losses}) == 5
    assert [float(loss.data) for loss in losses] == values  # nothing overwritten later


def test_gradients_of_arguments_land_in_their_grad() -> None:
    def f(x: Any, w: Any) -> Any:
        loss = ((x * w).sigmoid() * 3.0).sum()
        loss.backward()
        return loss

    compiled = tn.compile(f)
    for i in range(3):
        rng = np.random.default_rng(i)
        x, w = rng.standard_normal((3, 4)), rng.standard_normal(4)
        xs = [tn.tensor(x, requires_grad=True) for _ in range(2)]
        ws = [tn.tensor(w, requires_grad=True) for _ in range(2)]
        f(xs[0], ws[0])
        compiled(xs[1], ws[1])
        np.testing.assert_allclose(xs[1].grad.data, xs[0].grad.data, rtol=1e-12)
        np.testing.assert_allclose(ws[1].grad.data, ws[0].grad.data, rtol=1e-12)
    assert compiled.replays == 2


# ---------------------------------------------------------------------------------------------
# every op has a compile path
# ---------------------------------------------------------------------------------------------


def test_every_registered_op_has_a_compile_path() -> None:
    """Fused ops are the formula table's rows and those listed in fuse.LOWERED
    (``fuse.lowers``); every other op runs as an opaque step, which needs its forward and
    backward as the engine calls them. A new op must be placed (and so be thought about)."""
    for name, cls in Function.registry.items():
        assert fuse.lowers(cls) or name in fuse.OPAQUE or name in fuse.UNSUPPORTED, (
            f"{name}: no compile path")
        assert callable(cls.forward) and callable(cls.backward)


def test_random_ops_agree_eager_and_compiled() -> None:
    """Every op case of the gradient tests (tests/strategies.py), as a compiled function:
    forward values and gradients agree with eager mode, and the third call replays."""
    import strategies
    from hypothesis import find

    unknown: list[str] = []  # cases refused for a numpy array of unknown origin
    for name, strategy in sorted(strategies.CASES.items()):
        case = find(strategy(), lambda _: True, settings=settings(database=None))

        def f(*xs: Any, case: Any = case) -> Any:
            out = case.fn(*xs)
            weights = tn.linspace(0.5, 1.5, max(out.data.size, 1),
                                  dtype=out.dtype).reshape(out.shape)
            total = (out * weights).sum()
            total.backward()
            return out

        if name in fuse.UNSUPPORTED:  # refused while tracing, never replayed
            with pytest.raises(tn.CompileError):
                tn.compile(f)(*[tn.tensor(a.copy(), requires_grad=True) for a in case.inputs])
            continue
        # Ops that lower run generated code; the others run as opaque steps, whose replay is
        # interpret.py's (generated code calls the same functions for them), which saves a
        # numba compile per op.
        lowered = name in Function.registry and fuse.lowers(Function.registry[name])
        compiled = tn.compile(f, backend="auto" if lowered else "interpret")
        try:
            compiled(*[tn.tensor(a.copy(), requires_grad=True) for a in case.inputs])
        except tn.CompileError as e:  # a numpy array held by the case's closure (a target,
            assert "cannot trace to its source" in str(e), (name, e)  # an index): refused
            unknown.append(name)
            continue
        compiled = tn.compile(f, backend="auto" if lowered else "interpret")
        for _ in range(3):
            eager_in = [tn.tensor(a.copy(), requires_grad=True) for a in case.inputs]
            comp_in = [tn.tensor(a.copy(), requires_grad=True) for a in case.inputs]
            expected = f(*eager_in)
            got = compiled(*comp_in)
            np.testing.assert_allclose(got.data, expected.data, rtol=1e-10,
                                       err_msg=f"{name}: {case.description}")
            for a, b in zip(eager_in, comp_in, strict=True):
                assert (a.grad is None) == (b.grad is None), name
                if a.grad is not None:
                    np.testing.assert_allclose(b.grad.data, a.grad.data, rtol=1e-10,
                                               atol=1e-12, err_msg=name)
        assert compiled.replays == 2, name
    assert len(unknown) < len(strategies.CASES) // 4, unknown


# ---------------------------------------------------------------------------------------------
# guards: every miss retraces, nothing replays on a mismatch
# ---------------------------------------------------------------------------------------------


def _warm(sizes: list[int] = [3, 4, 2]) -> tuple[Any, ...]:  # noqa: B006 - read only
    models, opts, eager_step, step = training_pair(sizes, "sigmoid", "mse", np.float64, "sgd",
                                                   {"lr": 0.1, "momentum": 0.9})
    x, y = data(sizes, "mse", 5, np.float64, 0)
    for _ in range(3):
        eager_step(x, y)
        step(x, y)
    assert step.traces == 2 and step.replays == 1
    return models, opts, eager_step, step, x, y


def _check_retrace(step: Any, eager_step: Any, models: Any, opts: Any, x: Any, y: Any) -> None:
    traces = step.traces
    np.testing.assert_allclose(step(x, y).data, eager_step(x, y).data, rtol=1e-12)
    assert step.traces == traces + 1
    assert_same_world(models, opts, 1e-12)


@pytest.mark.parametrize("change", ["shape", "dtype", "requires_grad", "layout"])
def test_input_guard_miss_retraces(change: str) -> None:
    models, opts, eager_step, step, x, y = _warm()
    if change == "shape":
        x, y = data([3, 4, 2], "mse", 9, np.float64, 1)
    elif change == "dtype":  # a float32 target for a float64 model: converted, another program
        y = tn.tensor(y.data.astype(np.float32))
    elif change == "requires_grad":
        x = tn.tensor(x.data, requires_grad=True)
    else:
        x = tn.tensor(np.asfortranarray(x.data))
    _check_retrace(step, eager_step, models, opts, x, y)


def test_grad_mode_guard_miss_retraces() -> None:
    model = make_model([3, 2], "tanh", np.float64, 0)
    predict = tn.compile(model)
    x, _ = data([3, 2], "mse", 4, np.float64, 0)
    predict(x)
    with tn.no_grad():
        predict(x)
    assert predict.traces == 2


def test_parameter_identity_guard_miss_retraces() -> None:
    models, opts, eager_step, step, x, y = _warm()
    for m in models:
        first = next(iter(m.parameters()))
        first.data = first.data.copy()  # same values, a new array: programs hold the old one
    _check_retrace(step, eager_step, models, opts, x, y)


def test_optimizer_state_guard_miss_retraces() -> None:
    models, opts, eager_step, step, x, y = _warm()
    for o in opts:
        o.state.clear()
    traces = step.traces
    np.testing.assert_allclose(step(x, y).data, eager_step(x, y).data, rtol=1e-12)
    assert step.traces == traces + 1
    assert_same_world(models, opts, 1e-12)


def test_loading_optimizer_state_retraces() -> None:
    models, opts, eager_step, step, x, y = _warm()
    for o in opts:
        o.load_state_dict(o.state_dict())  # same values, new state arrays
    _check_retrace(step, eager_step, models, opts, x, y)


def test_debug_env_prints_each_compile(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("TINYNET_COMPILE_DEBUG", "1")
    _, _, _, step = training_pair([2, 3, 1], "sigmoid", "mse", np.float64, "sgd", {"lr": 0.1})
    x, y = data([2, 3, 1], "mse", 4, np.float64, 0)
    step(x, y)
    step(x, y)
    assert capsys.readouterr().out.count("== tn.compile(") == 2


def test_lr_and_momentum_are_read_at_every_replay_but_a_changed_rule_form_retraces() -> None:
    """The numbers an optimizer's update takes (lr, momentum...) are read from the parameter
    group at every replay, so a scheduler changing them costs no trace; what picks the rule's
    statements (a switch such as nesterov, weight decay turned on) is guarded."""
    models, opts, eager_step, step, x, y = _warm()
    for change in ({"lr": 0.01}, {"momentum": 0.5}, {"dampening": 0.25}):
        for o in opts:
            o.param_groups[0].update(change)
        traces = step.traces
        np.testing.assert_allclose(step(x, y).data, eager_step(x, y).data, rtol=1e-12)
        assert step.traces == traces, change
        assert_same_world(models, opts, 1e-12)
    for change in ({"weight_decay": 0.1}, {"dampening": 0.0, "nesterov": True}):
        for o in opts:
            o.param_groups[0].update(change)
        _check_retrace(step, eager_step, models, opts, x, y)


def test_numba_guard_miss_retraces() -> None:
    models, opts, eager_step, step, x, y = _warm()
    if not kernels.numba_enabled():  # no numba mode to leave: the same program, same numbers
        np.testing.assert_allclose(step(x, y).data, eager_step(x, y).data, rtol=1e-12)
        assert_same_world(models, opts, 1e-12)
        numba_only("the guard on numba's dispatch mode")
    with kernels.dispatch_mode("twin"):
        _check_retrace(step, eager_step, models, opts, x, y)


def test_rebinding_a_global_retraces() -> None:
    global _MODEL  # noqa: PLW0603
    _MODEL = make_model([2, 2], "sigmoid", np.float64, 0)

    def predict(x: Any) -> Any:
        return _MODEL(x)

    compiled = tn.compile(predict)
    x = tn.tensor(np.ones((1, 2)))
    compiled(x)
    compiled(x)
    _MODEL = make_model([2, 2], "sigmoid", np.float64, 5)
    np.testing.assert_allclose(compiled(x).data, _MODEL(x).data, rtol=1e-12)
    assert compiled.traces == 2


# ---------------------------------------------------------------------------------------------
# replay allocates nothing that stays
# ---------------------------------------------------------------------------------------------


def test_replay_memory_is_flat() -> None:
    _, _, _, step = training_pair([2, 4, 1], "sigmoid", "mse", np.float32, "sgd",
                                  {"lr": 0.5, "momentum": 0.9})
    x, y = data([2, 4, 1], "mse", 4, np.float32, 0)
    for _ in range(50):
        step(x, y)
    gc.collect()
    # Python's and numpy's free lists and caches fill during the first thousands of steps
    # (replayed step by step, TINYNET_NUMBA=0, for about 15,000: 29 KB, then flat), so the
    # memory is measured window after window until one grows by less than 4 KB: a leak of a
    # byte a step grows every window and fails
    growths: list[int] = []
    tracemalloc.start()
    try:
        for _ in range(500):
            step(x, y)
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        while len(growths) < 6 and (not growths or growths[-1] >= 4096):
            for _ in range(5_000):
                step(x, y)
            gc.collect()
            now, _ = tracemalloc.get_traced_memory()
            growths.append(now - before)
            before = now
    finally:
        tracemalloc.stop()
    assert growths[-1] < 4096, growths


# ---------------------------------------------------------------------------------------------
# what cannot be traced
# ---------------------------------------------------------------------------------------------


def _reads(kind: str) -> Callable[[Any], Any]:
    def item(x: Any) -> Any:
        return x * x.sum().item()

    def branch(x: Any) -> Any:
        if x.sum() > 0:
            return x * 2
        return x

    def printing(x: Any) -> Any:
        print(x)
        return x * 2

    def numpy(x: Any) -> Any:
        return x * float(x.detach().numpy().sum())

    return {"item": item, "branch": branch, "print": printing, "numpy": numpy}[kind]


@pytest.mark.parametrize("kind", ["item", "branch", "print", "numpy"])
def test_reading_values_while_tracing_raises_compile_error(kind: str) -> None:
    fn = _reads(kind)
    compiled = tn.compile(fn)
    with pytest.raises(tn.CompileError, match=rf"tn.compile\({fn.__qualname__}\).*"
                                              r"test_compile.py:\d+"):
        compiled(tn.tensor(np.ones(3)))
    assert isinstance(tn.CompileError("x"), RuntimeError)
    assert str(tn.tensor([1.0, 2.0]))  # printing works again after the trace


def test_in_place_edit_of_an_outside_tensor_is_a_recorded_op_replayed_at_every_call() -> None:
    """(Once refused: in-place ops that name what they read are recorded, issue 18 part 3.)"""
    w = tn.tensor(np.ones(3))

    def f(x: Any) -> Any:
        w.add_(1.0)
        return x * w

    compiled = tn.compile(f)
    for i in range(4):
        np.testing.assert_array_equal(compiled(tn.tensor(np.ones(3))).data, np.full(3, 2.0 + i))
    np.testing.assert_array_equal(w.data, np.full(3, 5.0))
    assert compiled.replays == 3


def test_double_backward_raises_compile_error() -> None:
    def f(x: Any) -> Any:
        (g,) = tn.autograd.grad((x * x).sum(), [x], create_graph=True)
        return g

    with pytest.raises(tn.CompileError, match="create_graph"):
        tn.compile(f)(tn.tensor(np.ones(3), requires_grad=True))


def test_explain_shows_trace_ir_plan_source_and_cache_path(capsys: Any) -> None:
    _, _, _, step = training_pair([2, 4, 1], "sigmoid", "mse", np.float32, "sgd", {"lr": 0.5})
    x, y = data([2, 4, 1], "mse", 4, np.float32, 0)
    for _ in range(3):
        step(x, y)
    text = step.explain()
    for part in ("== tn.compile(", "steps ("):
        assert part in text, part
    assert capsys.readouterr().out.strip() == text.strip()
    numba_only("the IR, buffer plan and source of the generated program")
    for part in ("== IR after lowering and fusion",
                 "act_back", "== buffer plan", "@njit(cache=True", "def make_replay"):
        assert part in text, part
    assert step.last.runner.path.exists()


def test_docs_compile_md_quotes_current_output(capsys: Any) -> None:
    """docs/compile.md quotes explain() for its XOR example; this keeps the quotes current."""
    import pathlib

    tn.manual_seed(0)
    model = tn.nn.Sequential(tn.nn.Linear(2, 4), tn.nn.Sigmoid(), tn.nn.Linear(4, 1),
                             tn.nn.Sigmoid())
    opt = tn.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    x = tn.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = tn.tensor([[0.0], [1.0], [1.0], [0.0]])

    def train_step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = tn.compile(train_step)
    for _ in range(3):
        compiled(x, y)
    text = compiled.explain().replace("compile(test_docs_compile_md_quotes_current_output."
                                      "<locals>.train_step)", "compile(train_step)")
    capsys.readouterr()
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "compile.md").read_text()
    generated = (("== IR after", "== buffer plan"), ("== buffer plan", "== generated"),
                 ("@njit(cache=True", "def make_replay"), ("def check(args):", "    a = args[1]"))
    for part, (start, end) in enumerate((("== tn.compile(train_step): trace", "== guard"),
                                         *generated)):
        if part == 1:
            numba_only("docs/compile.md's quotes of the generated program")
        a = text.index(start)
        quoted = text[a:text.index(end, a)].rstrip()
        assert quoted in doc, f"docs/compile.md is out of date from {start!r}"


def test_random_numbers_outside_recorded_draws_raise_compile_error() -> None:
    # tn.rand/randn/dropout and nn.init are recorded draws (tests/test_compile_replay.py,
    # tests/test_compile_replay_more.py); a sampler's shuffle is not: a replay would reuse the
    # traced numbers, so refused.
    def f(x: Any) -> Any:
        order = list(tn.utils.data.RandomSampler(range(3)))
        return (x * len(order)).sum()

    with pytest.raises(tn.CompileError, match="random numbers"):
        tn.compile(f)(tn.ones(3, dtype=tn.float64))
    model = tn.nn.Sequential(tn.nn.Linear(3, 4), tn.nn.Dropout(0.5), tn.nn.Linear(4, 1))
    compiled = tn.compile(model)
    x = tn.ones(2, 3)
    for seed in range(3):  # train-mode dropout: the eager masks, drawn anew at every replay
        tn.manual_seed(seed)
        want = model(x).data
        tn.manual_seed(seed)
        np.testing.assert_array_equal(compiled(x).data, want)


@pytest.mark.parametrize("kind", ["where", "max_dim", "argmax", "sort", "topk", "mask"])
def test_values_computed_from_the_data_are_recomputed_at_every_replay(kind: str) -> None:
    # Masks, the indices of max(dim)/argmax and orders are ops: each replay recomputes them
    # from its own input (issue 18: replay what depends on the data).
    bodies = {
        "where": lambda x: tn.where(x > 0, x, 0.0).sum(),
        "max_dim": lambda x: tn.max(x, 1)[0].sum() + tn.max(x, 1)[1].sum(),
        "argmax": lambda x: x.gather(1, x.argmax(1, keepdim=True)).sum() + x.argmin(),
        "sort": lambda x: tn.sort(x, 1)[0][:, 0].sum() + tn.sort(x, 1)[1].sum(),
        "topk": lambda x: tn.topk(x, 1, 1)[0].sum() * tn.topk(x, 1, 1)[1].sum(),
        "mask": lambda x: (x * ((x > 0) & ~(x > 2))).sum() + (x == 3.0).sum(),
    }
    compiled = tn.compile(bodies[kind])
    for values in ([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [0.5, 3.0]], [[5.0, 4.0], [0, 9]],
                   [[0.0, 1.0], [2.0, -3.0]]):
        x = tn.tensor(np.array(values))
        np.testing.assert_array_equal(compiled(x).data, bodies[kind](x).data)
    assert compiled.replays == 3


def test_indexing_with_a_mask_raises_compile_error() -> None:
    # x[mask]'s size depends on the values: refused, never silently stale
    with pytest.raises(tn.CompileError, match=r"x\[mask\].*tn.where"):
        tn.compile(lambda x: x[x > 0].sum())(tn.tensor(np.array([[1.0, -2.0], [3.0, 0.5]])))


def test_ops_that_keep_their_masks_inside_replay_with_new_inputs() -> None:
    def f(x: Any) -> Any:
        return (x.relu() + x.clamp(min=0.5) + tn.amax(x, 1).sum()).sum()

    compiled = tn.compile(f)
    for values in ([[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [-3.0, 4.0]], [[5.0, 5.0], [0, -1]]):
        x = tn.tensor(np.array(values, dtype=np.float64))
        np.testing.assert_allclose(compiled(x).data, f(x).data, rtol=1e-12)


def test_in_place_through_a_view_raises_compile_error() -> None:
    def f(x: Any) -> Any:
        h = x * 2
        v = h[:2]
        v += 1  # an edit through a view: the owner's graph is rewritten at run time
        return h.sum()

    with pytest.raises(tn.CompileError, match="in place through a view"):
        tn.compile(f)(tn.tensor(np.ones(3), requires_grad=True))


# ---------------------------------------------------------------------------------------------
# elementwise runs fused into one loop
# ---------------------------------------------------------------------------------------------


def _chain(x: Any) -> Any:
    x.grad = None
    loss = (x * 0.5 + 0.1).sigmoid().tanh().sum()
    loss.backward()
    return loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_chain_is_one_loop_and_matches_eager(dtype: Any) -> None:
    """The chain benchmark's step: forward and backward are one loop (the sum moves after it),
    and every replay gives eager mode's loss and gradient; NaN and +-inf propagate alike."""
    values = np.random.default_rng(0).standard_normal(5000).astype(dtype) * 6
    values[:4] = [np.nan, np.inf, -np.inf, 0.0]
    eager_x = tn.tensor(values.copy(), requires_grad=True)
    comp_x = tn.tensor(values.copy(), requires_grad=True)
    compiled = tn.compile(_chain)
    for _ in range(4):
        expected, got = _chain(eager_x), compiled(comp_x)
        np.testing.assert_allclose(got.data, expected.data, rtol=TOL[dtype])
        np.testing.assert_allclose(comp_x.grad.data, eager_x.grad.data, rtol=TOL[dtype],
                                   atol=1e-30)
    assert compiled.replays == 2
    numba_only("the fused loop's kernel kinds")
    kinds = [k.kind for k in compiled.last.runner.kernels]
    assert kinds == ["loop", "sum"], kinds


def _layouts() -> dict[str, tuple[Callable[..., Any], list[Any]]]:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    return {
        "transposed": (lambda x: (x.T * 2).sigmoid(), [a]),
        "transposed float32": (lambda x: (x.T * 2 - 1).tanh(), [a.astype(np.float32)]),
        "strided rows": (lambda x: (x[::2] * 3).tanh(), [a]),
        "strided columns": (lambda x: (x[:, ::2] - 1).relu(), [a]),
        "empty": (lambda x: (x * 2).sigmoid(), [np.zeros((0, 3))]),
        "0-d": (lambda x: (-x * 2).sigmoid(), [np.array(0.3)]),
        "size-1 operand": (lambda x, y: x * y + y - x, [a, rng.standard_normal((1, 1))]),
        "NaN times": (lambda x: (x * np.nan).relu() + x, [a]),
        "same tensor twice": (lambda x: x * x - x, [a]),
    }


@pytest.mark.parametrize("name", sorted(_layouts()))
def test_fused_elementwise_ops_on_any_layout_match_eager(name: str) -> None:
    """Transposed and strided operands (made by opaque steps), empty and 0-d values and
    size-1 operands go through the fused loops like any other and agree with eager mode."""
    fn, arrays = _layouts()[name]

    def step(*xs: Any) -> Any:
        for x in xs:
            x.grad = None
        loss = (fn(*xs) * 1.5).sum()
        loss.backward()
        return loss

    eager_in = [tn.tensor(a.copy(), requires_grad=True) for a in arrays]
    comp_in = [tn.tensor(a.copy(), requires_grad=True) for a in arrays]
    compiled = tn.compile(step)
    # float32: eager mode takes np.tanh for a non-contiguous operand, the loop tinynet's own
    # tanh (both within 2 ulp); 1 - t^2 then loses digits where |t| is near 1, so gradients
    # are compared relative to their largest element
    rtol = TOL[arrays[0].dtype.type]
    for _ in range(3):
        expected, got = step(*eager_in), compiled(*comp_in)
        np.testing.assert_allclose(got.data, expected.data, rtol=rtol)
        for e, c in zip(eager_in, comp_in, strict=True):
            scale = float(np.nanmax(np.abs(e.grad.data), initial=0.0))
            np.testing.assert_allclose(c.grad.data, e.grad.data, rtol=rtol, atol=rtol * scale)
    assert compiled.replays == 1
    numba_only("the fused loop's kernel kinds")
    assert any(k.kind == "loop" for k in compiled.last.runner.kernels)


def test_literal_and_object_arguments_and_new_group_keys_are_guarded() -> None:
    """A number argument is part of the program (by value), any other object by identity, and
    a parameter group that gains a key no longer fits the guard written for it."""
    x = tn.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)

    def scaled(t: Any, factor: Any, note: Any) -> Any:
        return t * factor

    compiled = tn.compile(scaled)
    marker_a, marker_b = object(), object()
    for factor, note, traces in ((2.0, marker_a, 1), (2.0, marker_a, 1), (3.0, marker_a, 2),
                                 (3, marker_a, 3), (3.0, marker_b, 4), (2.0, marker_a, 4)):
        np.testing.assert_array_equal(compiled(x, factor, note).data, x.data * factor)
        assert compiled.traces == traces, (factor, note)
    models, opts, eager_step, step, xs, ys = _warm()
    opts[1].param_groups[0]["extra"] = 1.0
    opts[0].param_groups[0]["extra"] = 1.0
    _check_retrace(step, eager_step, models, opts, xs, ys)


# ---------------------------------------------------------------------------------------------
# the random-program generator, eager against compiled
# ---------------------------------------------------------------------------------------------


def _as_literal(key: str, value: Any) -> Any:
    """A random program's numpy parameter as a user would write it from numbers: index and
    condition arrays as lists, constant operands and weights as tensors made from lists."""
    if isinstance(value, tuple):
        return tuple(_as_literal(key, v) for v in value)
    if isinstance(value, np.ndarray) and key in ("index", "condition"):
        return value.tolist()
    if isinstance(value, np.ndarray) and key in ("const", "weight", "pos_weight"):
        return tn.tensor(value.tolist(), dtype=value.dtype)
    return value


@pytest.mark.parametrize("wild", [False, True], ids=["seeded", "wild"])
def test_generated_programs_agree_eager_and_compiled(wild: bool) -> None:
    """Programs from tests/test_random_programs.py's generator (every op, broadcasting,
    views, reductions; wild ones at ties, kinks, NaN, infinities and size-0 dims), each run
    as one compiled function taking the inputs as arguments and returning the loss and every
    input's gradient: the replays agree with eager mode. A program compile refuses (a mask
    or an index computed from the data) must say so with CompileError."""
    if wild:
        pytest.importorskip("torch", reason="wild programs are generated by running PyTorch "
                                            "(tests/torch_reference.py)")
    import dataclasses

    import test_random_programs as R
    from reference_evaluator import Program

    replayed = fused = refused = 0
    for seed in range(50):
        chooser = R.WildChooser(seed) if wild else R.SeededChooser(seed)
        program = R.generate(chooser)
        if program.refusals:  # programs built to raise: tests/test_random_programs.py's job
            continue
        inputs = [i for i, s in enumerate(program.steps) if s.op == "input"]

        def run(*arrays: Any, program: Any = program, inputs: list[int] = inputs) -> Any:
            # the program's numpy constants as tinynet makes them from numbers inside the
            # call: constants tn.compile can prove (a numpy array it did not see made, or a
            # tn.tensor(array) copy, is refused as of unknown origin)
            program = Program([dataclasses.replace(
                s, params={k: _as_literal(k, v) for k, v in s.params.items()},
                form=s.form.replace(" array", " list").replace(" tensor", " list")
                if "target" in s.params else s.form) for s in program.steps],
                {k: _as_literal("const", np.asarray(w)) for k, w in
                 program.loss_weights.items()}, program.refusals)
            values = R.run_tinynet(program, dict(zip(inputs, arrays, strict=True)))
            loss = R.tinynet_loss(program, values)
            loss.backward()
            return [loss] + [values[i].grad for i in inputs]

        def arrays(program: Any = program, inputs: list[int] = inputs) -> list[np.ndarray]:
            return [program.steps[i].params["array"].copy() for i in inputs]

        # generated code for the first programs (a numba compile each: seconds), the
        # step-by-step replay for the rest (the same trace, guards and bindings)
        compiled = tn.compile(run, backend="auto" if seed < 12 else "interpret")
        try:
            with np.errstate(all="ignore"):
                for _ in range(3):
                    expected, got = run(*arrays()), compiled(*arrays())
                    for e, g in zip(expected, got, strict=True):
                        assert (e is None) == (g is None), seed
                        if e is not None:
                            np.testing.assert_allclose(g.data, e.data, rtol=1e-9, atol=1e-12,
                                                       err_msg=f"seed {seed}")
        except tn.CompileError:
            refused += 1
            continue
        replayed += compiled.replays > 0
        runner = compiled.last.runner if compiled.last else None
        fused += runner is not None and any(k.kind != "opaque" for k in runner.kernels)
    assert replayed >= 20, (replayed, fused, refused)
    numba_only("counting the programs fused into generated loops")
    assert fused >= 5, (replayed, fused, refused)


# ---------------------------------------------------------------------------------------------
# the pipeline is one function whose body is the stage calls (issue 18, part 5)
# ---------------------------------------------------------------------------------------------


def test_the_pipeline_driver_calls_the_stages_in_order() -> None:
    """pipeline.compile_call reads as the pipeline: trace, lower, fuse, plan, generate, guard."""
    import ast
    import inspect

    from tinynet.compile import pipeline

    tree = ast.parse(inspect.getsource(pipeline.compile_call))
    calls = [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    calls.sort(key=lambda text: next(n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
                                     and ast.unparse(n.func) == text))
    stages = ["tracing", "lowering.lower", "lowering.fuse", "Plan", "codegen.generate",
              "guard.finish"]
    assert [c for c in calls if c in stages] == stages, calls


def test_the_pipeline_driver_makes_a_program_that_replays() -> None:
    """compile_call runs the step eagerly once and returns its trace, the generated code
    (with numba) and a guard that passes for a call of the same kind."""
    from tinynet.compile import pipeline
    from tinynet.compile.trace import World, function_codes

    w = tn.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)

    def step(x: tn.Tensor) -> tn.Tensor:
        loss = tn.log1p(F.linear(x, w).sigmoid()).sum()
        loss.backward()
        return loss

    x = tn.tensor(np.linspace(0, 1, 12).reshape(4, 3))
    with tn.no_grad():
        expected = tn.log1p(F.linear(x, w).sigmoid()).sum()
    made = pipeline.compile_call(step, (x,), World(step), "step", function_codes(step))
    assert made.replayable and made.program.steps
    np.testing.assert_allclose(made.returned.data, expected.data, rtol=1e-15)
    assert w.grad is not None
    w.grad = None  # as the traced call found it
    assert made.guard.check((tn.tensor(np.zeros((4, 3))),))
    assert not made.guard.check((tn.tensor(np.zeros((5, 3))),))  # another shape: a new trace
    if kernels.numba_enabled():
        assert "opaque" not in made.runner.describe().split("== buffer plan")[0]
    else:
        assert made.runner is None  # interpreted


def test_docs_compile_md_quotes_the_pipeline_verbatim() -> None:
    """docs/compile.md's ```python blocks that open with a ``# tinynet/...`` path quote that
    file verbatim (the pipeline driver among them)."""
    import pathlib
    import re

    repo = pathlib.Path(__file__).resolve().parent.parent
    doc = (repo / "docs" / "compile.md").read_text()
    quotes = [block.partition("\n") for block in re.findall(r"```python\n(.*?)```", doc, re.S)]
    quotes = [(first[2:], body) for first, _, body in quotes
              if re.fullmatch(r"# tinynet/[\w/]+\.py", first)]
    assert any(path == "tinynet/compile/pipeline.py" for path, _ in quotes)
    for path, body in quotes:
        assert body in (repo / path).read_text(), f"docs/compile.md quotes {path}: out of date"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_activation_gradients_take_eager_s_sigmoid_and_tanh(dtype: str) -> None:
    """An activation after a linear layer whose derivative calls sigmoid or tanh (the formula
    table's rows: silu, mish, gelu_tanh, softplus, logsigmoid, the step's sigmoid surrogate)
    gets its gradient in the compiled step's act_back loop by the same vectorisable rules as
    eager's backward kernel: the input's gradient (through a 1x1 layer of weight 1, the
    derivative itself) agrees bit for bit in each dtype, over kinks, large and tiny inputs."""
    numba_only("the compiled loops")
    from tinynet.kernels.formulas import ROWS

    modules = {"silu": tn.nn.SiLU(), "mish": tn.nn.Mish(),
               "gelu_tanh": tn.nn.GELU(approximate="tanh"), "softplus": tn.nn.Softplus(),
               "logsigmoid": tn.nn.LogSigmoid(), "step_sigmoid": tn.nn.Step("sigmoid")}
    derived = {row.name for row in ROWS if row.activation
               and ("sigmoid(" in row.backward[0] or "tanh(" in row.backward[0])}
    assert derived == set(modules)  # every such row of the table is tried here
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.standard_normal(200) * 4, [0.0, -0.0, 1e-30, -1e-30, 30.0,
                                                            -30.0, 90.0, -90.0]])
    for name, act in modules.items():
        layer = tn.nn.Linear(1, 1).to(getattr(tn, dtype))
        with tn.no_grad():
            layer.weight.fill_(1.0)
            layer.bias.fill_(0.0)
        model = tn.nn.Sequential(layer, act)
        x = tn.tensor(values.astype(dtype)[:, None], requires_grad=True)

        def step(x: Any, model: Any = model) -> Any:
            loss = (model(x) * 3).sum()
            loss.backward()
            return loss

        grads = []
        for run in (step, tn.compile(step)):
            for _ in range(3):  # (compiled: traced, then replayed)
                x.grad = None
                model.zero_grad()
                run(x)
            grads.append(x.grad.data.copy())
        assert grads[0].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(grads[1], grads[0], err_msg=name)
