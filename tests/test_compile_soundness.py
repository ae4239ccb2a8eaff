"""tn.compile is never silently wrong: one regression test per class of issue 19 that this
branch closes. Each runs two identical copies of a training step, one eager and one compiled,
changes the outside world between calls the way training scripts do, and requires the compiled
copy to equal the eager one on every call (float64, 1e-10 scaled by magnitude), or to raise
``CompileError`` at trace time naming what to do.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from compile_support import close

import tinynet as tn
from tinynet import nn, optim

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


class Twin:
    """An eager world and a deep copy of it whose step runs through tn.compile."""

    def __init__(self, make: Callable[[], dict[str, Any]],
                 step: Callable[[dict[str, Any], Any, Any], Any]) -> None:
        self.eager = make()
        self.other = copy.deepcopy(self.eager)
        self.step = step
        world = self.other

        def compiled_step(x: Any, y: Any) -> Any:
            return step(world, x, y)

        self.compiled = tn.compile(compiled_step)

    def both(self, change: Callable[[dict[str, Any]], None]) -> None:
        change(self.eager)
        change(self.other)

    def call(self, x: Any, y: Any, seed: int | None = None) -> None:
        """One step in both worlds (after the same ``tn.manual_seed(seed)``, if given)."""
        if seed is not None:
            tn.manual_seed(seed)
        want = self.step(self.eager, x, y)
        if seed is not None:
            tn.manual_seed(seed)
        got = self.compiled(x, y)
        close(got.detach().numpy(), want.detach().numpy(), "returned value")
        for (name, p), q in zip(self.eager["model"].state_dict().items(),
                                self.other["model"].state_dict().values(), strict=True):
            close(np.asarray(q), np.asarray(p), name)
        for p, q in zip(self.eager["model"].parameters(), self.other["model"].parameters(),
                        strict=True):
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                close(q.grad.numpy(), p.grad.numpy(), ".grad")


def mlp(dropout: float = 0.0, norm: bool = False) -> dict[str, Any]:
    tn.manual_seed(0)
    layers: list[Any] = [nn.Linear(3, 5)]
    if norm:
        layers.append(nn.LayerNorm(5))
    layers += [nn.Tanh(), nn.Linear(5, 2)]
    model = nn.Sequential(*layers).double()
    return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            "cfg": {"l2": 0.0}}


def data(seed: int, n: int = 4) -> tuple[tn.Tensor, tn.Tensor]:
    rng = np.random.default_rng(seed)
    return tn.tensor(rng.normal(size=(n, 3))), tn.tensor(rng.normal(size=(n, 2)))


def train_step(w: dict[str, Any], x: Any, y: Any) -> Any:
    w["opt"].zero_grad()
    loss = ((w["model"](x) - y) ** 2).mean()
    loss.backward()
    w["opt"].step()
    return loss


def eval_step(w: dict[str, Any], x: Any, y: Any) -> Any:
    return ((w["model"](x) - y) ** 2).mean()


# ---------------------------------------------------------------------------------------------
# Python values read during the trace are guarded
# ---------------------------------------------------------------------------------------------


def test_train_and_eval_switches_between_calls_are_guarded() -> None:
    """Traced in eval mode (Dropout is the identity), then switched to train(): the replay
    must not keep eval-mode Dropout. The train-mode call is a new trace whose dropout masks are
    drawn again at every replay, as eager mode draws them under the same seed; back in eval
    mode, the eval-mode program replays again."""
    def make() -> dict[str, Any]:
        w = mlp()
        w["model"] = nn.Sequential(w["model"][0], nn.Dropout(0.5), w["model"][1],
                                   w["model"][2])
        w["opt"] = optim.SGD(w["model"].parameters(), lr=0.1)
        return w

    twin = Twin(make, train_step)
    twin.both(lambda w: w["model"].eval())
    for i in range(3):
        twin.call(*data(i))
    traces = twin.compiled.traces
    twin.both(lambda w: w["model"].train())
    for i in range(3, 7):
        twin.call(*data(i), seed=i)  # a different mask at every call, the eager one
    assert twin.compiled.traces == traces + 1
    twin.both(lambda w: w["model"].eval())
    twin.call(*data(7))  # the eval-mode program again
    assert twin.compiled.traces == traces + 1


def test_a_changed_module_number_layernorm_eps_is_guarded() -> None:
    twin = Twin(lambda: mlp(norm=True), eval_step)
    for i, eps in enumerate([1e-5, 1e-5, 3.0, 3.0, 1e-5]):
        twin.both(lambda w, eps=eps: setattr(w["model"][1], "eps", eps))
        twin.call(*data(i))
    assert twin.compiled.traces == 2


def test_a_changed_dict_value_read_by_the_step_is_guarded() -> None:
    def step(w: dict[str, Any], x: Any, y: Any) -> Any:
        w["opt"].zero_grad()
        loss = ((w["model"](x) - y) ** 2).mean()
        for p in w["model"].parameters():
            loss = loss + w["cfg"]["l2"] * (p * p).sum()
        loss.backward()
        w["opt"].step()
        return loss

    twin = Twin(mlp, step)
    for i, l2 in enumerate([0.0, 0.0, 0.0, 0.1, 0.1, 0.3]):
        twin.both(lambda w, l2=l2: w["cfg"].__setitem__("l2", l2))
        twin.call(*data(i))


def test_a_replaced_parameter_or_buffer_object_is_guarded() -> None:
    twin = Twin(mlp, train_step)
    for i in range(6):
        if i == 3:
            def replace(w: dict[str, Any]) -> None:
                layer = w["model"][0]
                layer.bias = nn.Parameter(tn.zeros(5, dtype=tn.float64))
                w["opt"].param_groups[0]["params"][1] = layer.bias
            twin.both(replace)
        twin.call(*data(i))


def test_a_plain_tensor_attribute_of_a_module_is_read_at_every_call() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2).double()
            self.scale = tn.tensor([1.0, 2.0], dtype=tn.float64)  # not registered

        def forward(self, x: Any) -> Any:
            return self.fc(x) * self.scale

    def make() -> dict[str, Any]:
        tn.manual_seed(0)
        model = Scaled()
        return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1)}

    twin = Twin(make, train_step)
    for i in range(6):
        if i == 2:
            twin.both(lambda w: w["model"].scale.data.__setitem__(0, 5.0))  # in place
        if i == 4:
            twin.both(lambda w: setattr(w["model"], "scale", tn.tensor([3.0, -1.0],
                                                                        dtype=tn.float64)))
        twin.call(*data(i))


def test_the_same_tensor_passed_twice_is_not_replayed_for_two_different_ones() -> None:
    def f(a: Any, b: Any) -> Any:
        return a * 2 + b

    compiled = tn.compile(f)
    x = tn.tensor([1.0, 2.0])
    for _ in range(2):
        close(compiled(x, x).numpy(), [3.0, 6.0], "aliased")
    y = tn.tensor([10.0, 20.0])
    close(compiled(x, y).numpy(), [12.0, 24.0], "two tensors")
    close(compiled(y, x).numpy(), [21.0, 42.0], "two tensors, swapped")


@pytest.mark.parametrize("order", ["outside first", "fresh first"])
def test_an_argument_that_is_an_outside_tensor_is_not_replayed_for_another(order: str) -> None:
    """``step(holder.x)`` traces the argument and ``holder.x`` as one value; a later call with
    another tensor must not read it for ``holder.x`` (and a program traced on a fresh batch,
    two values, is not replayed with ``holder.x`` passed in without a new trace either)."""
    def make() -> dict[str, Any]:
        tn.manual_seed(0)
        model = nn.Linear(3, 3).double()
        return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1),
                "x": tn.tensor([[1.0, 2.0, 3.0]], dtype=tn.float64)}

    def step(world: dict[str, Any], x: Any, _: Any) -> Any:
        world["opt"].zero_grad()
        loss = (world["model"](x) * world["x"]).sum() + (world["model"].weight * 1.0).sum()
        loss.backward()
        world["opt"].step()
        return (x * 2.0).sum() + (world["x"] * 3.0).sum()

    twin = Twin(make, step)
    fresh = [tn.tensor([[5.0, -1.0, 0.5]], dtype=tn.float64) for _ in range(2)]
    outside = [lambda w: w["x"]] * 3
    batches = [lambda w, i=i: fresh[i % 2] for i in range(3)]
    calls = [*outside, *batches] if order == "outside first" else [*batches, *outside]
    for argument in calls:
        want = step(twin.eager, argument(twin.eager), None)
        got = twin.compiled(argument(twin.other), None)
        close(got.detach().numpy(), want.detach().numpy(), "the returned value")
        for p, q in zip(twin.eager["model"].parameters(), twin.other["model"].parameters(),
                        strict=True):
            close(q.detach().numpy(), p.detach().numpy(), "a parameter")


# ---------------------------------------------------------------------------------------------
# Python side effects inside the step are refused
# ---------------------------------------------------------------------------------------------


def test_a_scheduler_step_inside_the_compiled_step_is_refused() -> None:
    w = mlp()
    scheduler = optim.lr_scheduler.StepLR(w["opt"], step_size=1, gamma=0.5)

    def step(x: Any, y: Any) -> Any:
        loss = train_step(w, x, y)
        scheduler.step()
        return loss

    with pytest.raises(tn.CompileError, match="scheduler.step"):
        tn.compile(step)(*data(0))


def test_a_manual_lr_decay_inside_the_compiled_step_is_refused() -> None:
    w = mlp()
    opt = w["opt"]

    def step(x: Any, y: Any) -> Any:
        loss = train_step(w, x, y)
        opt.param_groups[0]["lr"] *= 0.9
        return loss

    with pytest.raises(tn.CompileError, match=r"param_groups\[0\] \('lr'"):
        tn.compile(step)(*data(0))


def test_an_append_to_an_outside_list_inside_the_compiled_step_is_refused() -> None:
    w = mlp()
    history: list[Any] = []

    def step(x: Any, y: Any) -> Any:
        loss = train_step(w, x, y)
        history.append(loss)
        return loss

    with pytest.raises(tn.CompileError, match="list"):
        tn.compile(step)(*data(0))


def test_the_scheduler_stepped_outside_is_read_at_every_replay() -> None:
    twin = Twin(mlp, train_step)
    schedulers = [optim.lr_scheduler.StepLR(w["opt"], step_size=2, gamma=0.5)
                  for w in (twin.eager, twin.other)]
    for i in range(7):
        twin.call(*data(i))
        for s in schedulers:
            s.step()
    assert twin.compiled.replays >= 4


# ---------------------------------------------------------------------------------------------
# In-place writes the recorder does not own are refused
# ---------------------------------------------------------------------------------------------


def test_an_in_place_edit_of_a_target_clone_inside_the_step_is_replayed() -> None:
    """(Once refused: in-place ops that name what they read are recorded, issue 18 part 3.)"""
    def step(x: Any, y: Any) -> Any:
        target = y.clone()
        with tn.no_grad():
            target.mul_(2.0)
        return ((x.sum(1) - target) ** 2).mean()

    compiled = tn.compile(step)
    rng = np.random.default_rng(0)
    for i in range(4):
        x, y = tn.tensor(rng.normal(size=(5, 3))), tn.tensor(rng.normal(size=5))
        close(compiled(x, y).numpy(), step(x, y).numpy(), f"call {i}")
    assert compiled.replays == 3


def test_an_in_place_edit_of_an_argument_inside_the_step_is_replayed() -> None:
    def step(x: Any) -> Any:
        y = x * 2
        x.add_(1.0)
        return y

    compiled = tn.compile(step)
    for i in range(4):
        mine, eager = tn.tensor([1.0, 2.0 + i]), tn.tensor([1.0, 2.0 + i])
        close(compiled(mine).numpy(), step(eager).numpy(), f"call {i}")
        close(mine.numpy(), eager.numpy(), f"argument, call {i}")
    assert compiled.replays == 3


# ---------------------------------------------------------------------------------------------
# Unusual layouts fall back, never numba's errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_parameters_with_unusual_layouts_fall_back(layout: str) -> None:
    twin = Twin(mlp, train_step)
    for i in range(5):
        if i == 2:
            def relayout(w: dict[str, Any]) -> None:
                p = w["model"][0].weight
                if layout == "fortran":
                    p.data = np.asfortranarray(p.data)
                else:
                    wide = np.zeros((p.shape[0], 2 * p.shape[1]))
                    wide[:, ::2] = p.data
                    p.data = wide[:, ::2]
            twin.both(relayout)
        twin.call(*data(i))


# ---------------------------------------------------------------------------------------------
# Optimizers: recorded or refused, never replaying a stale gradient
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, maximize=True),
    lambda ps: optim.SGD(ps, lr=0.1, maximize=True),
    lambda ps: optim.Adam(ps, lr=0.01, maximize=True),
], ids=["sgd-momentum", "sgd", "adam"])
def test_maximize_negates_the_gradient_of_every_call(make_opt: Any) -> None:
    def make() -> dict[str, Any]:
        w = mlp()
        w["opt"] = make_opt(w["model"].parameters())
        return w

    twin = Twin(make, train_step)
    for i in range(6):
        twin.call(*data(i))
    assert twin.compiled.replays >= 3


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.RMSprop(ps, lr=0.01),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, weight_decay=0.01,
                             maximize=True),
    lambda ps: optim.Adagrad(ps, lr=0.05, lr_decay=0.01, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True, maximize=True),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1),
    lambda ps: optim.Adadelta(ps),
    lambda ps: optim.Adadelta(ps, lr=0.5, rho=0.8, weight_decay=0.01, maximize=True),
], ids=["rmsprop", "rmsprop-centered-momentum", "adagrad", "amsgrad", "adamw",
        "adamw-amsgrad-maximize", "sgd-nesterov", "sgd-dampening", "adadelta",
        "adadelta-decay-maximize"])
def test_every_optimizer_option_compiles_and_reads_lr_at_every_replay(make_opt: Any) -> None:
    def make() -> dict[str, Any]:
        w = mlp()
        w["opt"] = make_opt(w["model"].parameters())
        return w

    twin = Twin(make, train_step)
    for i in range(7):
        if i == 4:
            twin.both(lambda w: w["opt"].param_groups[0].__setitem__(
                "lr", w["opt"].param_groups[0]["lr"] * 0.5))
        twin.call(*data(i))
        for a, b in zip(twin.eager["opt"].state.values(), twin.other["opt"].state.values(),
                             strict=True):
            for key, value in a.items():
                close(np.asarray(b[key].data if isinstance(b[key], tn.Tensor) else b[key]),
                      np.asarray(value.data if isinstance(value, tn.Tensor) else value),
                      f"state {key}")
    assert twin.compiled.replays >= 4


# ---------------------------------------------------------------------------------------------
# Tensors inside list, tuple and dict arguments are inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["auto", "interpret"])
def test_tensors_inside_a_reused_dict_or_list_argument_are_read_at_every_call(
        backend: str) -> None:
    def f(batch: dict[str, Any]) -> Any:
        return batch["x"] * 2 + batch["ys"][0] * batch["ys"][1]

    compiled = tn.compile(f, backend=backend)
    batch: dict[str, Any] = {"x": None, "ys": [None, None]}  # one object, new tensors each call
    rng = np.random.default_rng(0)
    for _ in range(5):
        batch["x"], batch["ys"][0], batch["ys"][1] = (tn.tensor(rng.normal(size=3))
                                                      for _ in range(3))
        want = f(batch).numpy()
        close(compiled(batch).numpy(), want, "dict argument")
    assert compiled.replays == 4


def test_a_tensor_that_requires_grad_inside_a_list_argument_is_refused() -> None:
    def f(pair: list[Any]) -> Any:
        return (pair[0] * pair[1]).sum()

    with pytest.raises(tn.CompileError, match="inside a list"):
        tn.compile(f)([tn.tensor([1.0], requires_grad=True), tn.tensor([2.0])])


# ---------------------------------------------------------------------------------------------
# Losses: nll_loss's weights are not mistaken for the target; ignore_index is replayed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target_dtype", [np.int64, np.int32])
def test_nll_loss_replays_new_targets_even_when_the_traced_ones_were_all_one(
        weighted: bool, target_dtype: Any) -> None:
    """The trace's targets are all 1, like nll_loss's implicit unit weights: a replay must
    still weigh every sample by 1 (or its class weight), not by its class index."""
    weight = tn.tensor([1.0, 2.0, 0.5]) if weighted else None

    def f(x: Any, t: Any) -> Any:
        return tn.nn.functional.nll_loss(tn.nn.functional.log_softmax(x, 1), t, weight=weight)

    compiled = tn.compile(f)
    x = tn.tensor(np.random.default_rng(0).normal(size=(5, 3)))
    for t in ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [2, 0, 1, 2, 2], [0, 0, 2, 1, 1]):
        target = tn.tensor(np.array(t, dtype=target_dtype))
        close(compiled(x, target).numpy(), f(x, target).numpy(), f"targets {t}")
    assert compiled.replays == 3


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_ignore_index_inside_the_class_range_is_recomputed_from_each_call_s_targets(
        loss: str) -> None:
    """(Once refused: the mask is now a recorded comparison, tests/test_compile_replay_more.py.)
    The trace's batch has no ignored target; later ones have some, or only ignored ones."""
    fn = getattr(tn.nn.functional, loss)

    def f(x: Any, t: Any) -> Any:
        return fn(tn.nn.functional.log_softmax(x, 1), t, ignore_index=0)

    compiled = tn.compile(f)
    x = tn.tensor(np.random.default_rng(0).normal(size=(3, 4)))
    for t in ([1, 2, 3], [1, 2, 3], [0, 2, 3], [0, 0, 1], [0, 0, 0]):
        target = tn.tensor(np.array(t))
        close(compiled(x, target).numpy(), f(x, target).numpy(), f"targets {t}")
    assert compiled.replays == 4


def test_multihead_attention_step_compiles_equal_to_eager() -> None:
    """MultiheadAttention slices its packed bias (views sharing the bias's version counter);
    the recorded optimizer update writing the bias is not an unrecorded in-place edit."""
    import tinynet.nn as nn

    results = []
    for compiled in (False, True):
        tn.manual_seed(0)
        model = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True,
                                           dtype=tn.float64)
        opt = tn.optim.Adam(model.parameters(), lr=0.01)

        def step(x: tn.Tensor, model: Any = model, opt: Any = opt) -> tn.Tensor:
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        run = tn.compile(step, backend="interpret") if compiled else step
        rng = np.random.default_rng(1)
        losses = [float(run(tn.tensor(rng.standard_normal((2, 3, 8))))) for _ in range(3)]
        results.append((losses, [p.data.copy() for p in model.parameters()]))
    (eager, eager_params), (comp, comp_params) = results
    np.testing.assert_allclose(comp, eager, rtol=1e-10, atol=1e-12)
    for a, b in zip(comp_params, eager_params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(b).max()))


step = None  # a global named like the optimizer's method: the bug below needs it at module level


def test_a_global_named_like_an_attribute_is_not_part_of_the_world() -> None:
    """``opt.step()`` puts "step" in the code's co_names; a module-level compiled function
    called ``step`` is not what the code reads, so it must not be guarded (its call counters
    change at every call: every call retraced, about 1000x slower than a replay)."""
    global step
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)

    def train(x: tn.Tensor) -> tn.Tensor:
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    step = tn.compile(train, backend="interpret")
    try:
        x = tn.ones(3, 2)
        for _ in range(6):
            step(x)
        assert step.traces <= 2 and step.replays >= 4, step
    finally:
        step = None


def test_a_result_kept_on_the_owner_does_not_retrace() -> None:
    """``self.loss = self.train_step(x, y)``, with a method that also reads ``self.loss``
    (``loss_value``): the kept tensor is replaced at every call, but the step never reads it,
    so it is not guarded (the benchmark's compiled MLP retraced at every call: ~1000x slower).
    Replacing a tensor the step does read still retraces."""

    class Trainer:
        def __init__(self) -> None:
            self.model = nn.Linear(2, 1)
            self.opt = optim.SGD(self.model.parameters(), lr=0.1)
            self.scale = tn.tensor(2.0)
            self.loss = None
            self.run = tn.compile(self.train_step, backend="interpret")

        def train_step(self, x: tn.Tensor) -> tn.Tensor:
            self.opt.zero_grad()
            loss = (self.model(x) * self.scale).pow(2).mean()
            loss.backward()
            self.opt.step()
            return loss

        def step(self, x: tn.Tensor) -> None:
            self.loss = self.run(x)

        def loss_value(self) -> float:
            return float(self.loss)

    trainer, twin = Trainer(), Trainer()
    twin.model.load_state_dict(trainer.model.state_dict())
    x = tn.ones(3, 2)
    for _ in range(6):
        trainer.step(x)
        twin.loss = twin.train_step(x)
        assert trainer.loss_value() == pytest.approx(twin.loss_value(), rel=1e-12)
    assert trainer.run.traces <= 2 and trainer.run.replays >= 4, trainer.run
    traces = trainer.run.traces
    trainer.scale = tn.tensor(3.0)  # read by the step: a new trace
    twin.scale = tn.tensor(3.0)
    trainer.step(x)
    twin.loss = twin.train_step(x)
    assert trainer.run.traces == traces + 1
    assert trainer.loss_value() == pytest.approx(twin.loss_value(), rel=1e-12)


class _Trainer:
    """A step that is a method of a user class: it reads ``scale`` through ``helper`` (a name
    chain), ``count`` through ``len(self)`` (a special method), ``shift`` through a method
    named by a string; ``report`` is never reached from the step and reads ``history``."""

    def __init__(self) -> None:
        tn.manual_seed(0)
        self.model = nn.Linear(2, 1).double()
        self.scale, self.count, self.history, self.shift = 2.0, 3, [0.0], 0.5

    def __len__(self) -> int:
        return self.count

    def helper(self) -> float:
        return self.scale

    def report(self) -> list:
        return self.history

    def offset(self) -> float:
        return self.shift

    def step(self, x: Any) -> Any:
        offset = getattr(self, "offset")  # noqa: B009 - the method named by a string
        return self.model(x).sum() * self.helper() + len(self) + offset()


def test_a_step_method_guards_what_its_methods_read_and_not_what_it_cannot_reach() -> None:
    trainer = _Trainer()
    compiled = tn.compile(trainer.step)
    x = tn.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=tn.float64)

    def check() -> None:
        close(compiled(x).detach().numpy(), trainer.step(x).detach().numpy(), "the step")

    for _ in range(3):
        check()
    traces = compiled.traces
    trainer.history = [1.0, 2.0]  # only report() reads it: not a reason to trace again
    for _ in range(2):
        check()
    assert compiled.traces == traces
    trainer.scale = 5.0  # read through helper(): guarded
    check()
    trainer.count = 7  # read through len(self): guarded
    check()
    trainer.shift = -4.0  # read through getattr(self, "offset")(): guarded
    check()
    assert compiled.traces == traces + 3


# ---- what the user's helpers and methods read: globals, their objects, their functions ----

class _Config:
    def __init__(self) -> None:
        self.scale = 2.0
        self.k = 3.0

    def factor(self) -> float:
        return self.k


_CONFIG = _Config()
_SHIFT = 0.5
_LOG: list[float] = []


def _activation(t: tn.Tensor) -> tn.Tensor:
    return t.tanh() * _SHIFT


def _helper(t: tn.Tensor) -> tn.Tensor:
    return _activation(t) * _CONFIG.scale + _CONFIG.factor()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3).double()
        self.settings = _Config()
        self.act = _activation  # a function of the user's, held by the module

    def forward(self, x: tn.Tensor) -> tn.Tensor:
        return self.act(self.lin(x)) * self.settings.scale + _SHIFT


def _compiled_and_check(step: Callable[[tn.Tensor], tn.Tensor]) -> tuple[Any, Any]:
    """``step`` compiled (replayed step by step) after three calls, and ``check()``: one call
    of each on the same input, equal."""
    compiled = tn.compile(step, backend="interpret")
    x = tn.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=tn.float64)

    def check() -> None:
        close(compiled(x).detach().numpy(), step(x).detach().numpy(), "the step")

    for _ in range(3):
        check()
    return compiled, check


def test_what_a_helper_function_reads_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper the step calls reads a global object's attribute, calls its method, and calls
    another helper that reads a global number: each change between calls is a new trace (a
    compiled step kept the traced numbers before)."""
    model = nn.Linear(2, 3).double()

    def step(x: tn.Tensor) -> tn.Tensor:
        return _helper(model(x)).sum()

    compiled, check = _compiled_and_check(step)
    traces = compiled.traces
    monkeypatch.setattr(_CONFIG, "scale", 5.0)  # an attribute the helper reads
    check()
    monkeypatch.setattr(_CONFIG, "k", -1.0)  # read by a method the helper calls
    check()
    monkeypatch.setattr(sys.modules[__name__], "_SHIFT", 4.0)  # read by a helper's helper
    check()
    check()
    assert compiled.traces == traces + 3, compiled


def test_what_a_module_s_methods_read_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module of the user's own: its ``forward`` reads a global, an object attribute
    (``self.settings.scale``) and calls a function it holds, which reads a global."""
    net = _Net()
    opt = optim.SGD(net.parameters(), lr=0.1)
    twin = copy.deepcopy(net)
    twin_opt = optim.SGD(twin.parameters(), lr=0.1)

    def make_step(model: nn.Module, optimizer: Any) -> Callable[[tn.Tensor], tn.Tensor]:
        def step(x: tn.Tensor) -> tn.Tensor:
            optimizer.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            optimizer.step()
            return loss
        return step

    eager, compiled = make_step(net, opt), tn.compile(make_step(twin, twin_opt))
    x = tn.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=tn.float64)

    def check() -> None:
        close(compiled(x).detach().numpy(), eager(x).detach().numpy(), "the loss")
        for p, q in zip(net.parameters(), twin.parameters(), strict=True):
            close(q.detach().numpy(), p.detach().numpy(), "a parameter")

    for _ in range(4):
        check()
    traces = compiled.traces
    for model in (net, twin):
        model.settings.scale = 0.25
    check()
    check()
    monkeypatch.setattr(sys.modules[__name__], "_SHIFT", -2.0)  # read by forward and _activation
    check()
    check()
    assert compiled.traces >= traces + 2, compiled


def test_an_append_inside_a_helper_is_refused() -> None:
    """A helper's side effect on a global list is the step's side effect: a replay would not
    repeat it, so the trace refuses it as it refuses the step's own."""
    def step(x: tn.Tensor) -> tn.Tensor:
        out = (x * 2).sum()
        _record(1.0)
        return out

    compiled = tn.compile(step, backend="interpret")
    try:
        with pytest.raises(tn.CompileError, match="outside list"):
            for _ in range(3):
                compiled(tn.ones(2))
    finally:
        _LOG.clear()


def _record(value: float) -> None:
    _LOG.append(value)


class _Scaled(nn.Module):
    SCALE = 2.0  # a class attribute forward reads through self

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1).double()

    def forward(self, x: tn.Tensor) -> tn.Tensor:
        return self.lin(x) * self.SCALE


class _Settings:
    factor = 3.0  # a class attribute the step reads through an instance


def test_a_class_attribute_read_through_self_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """``self.SCALE`` and ``settings.factor`` read class attributes: no instance check sees a
    change of the class, so each is guarded on its class (and an instance attribute that
    shadows it later is a change too)."""
    net, settings = _Scaled(), _Settings()

    def step(x: tn.Tensor) -> tn.Tensor:
        return (net(x) * settings.factor).sum()

    compiled, check = _compiled_and_check(step)
    traces = compiled.traces
    monkeypatch.setattr(_Scaled, "SCALE", -1.5)
    check()
    monkeypatch.setattr(_Settings, "factor", 0.25)
    check()
    settings.factor = 8.0  # the instance's own now
    check()
    net.SCALE = 4.0
    check()
    check()
    assert compiled.traces == traces + 4, compiled


def test_a_gradient_hook_registered_or_removed_between_calls_is_guarded() -> None:
    """The ops a parameter's hook runs are in the program its trace made: a hook registered
    after the trace, or one removed, is a new program (a compiled step ignored a new hook)."""
    lin, twin = nn.Linear(2, 1).double(), None
    twin = copy.deepcopy(lin)

    def make_step(model: nn.Module) -> Callable[[tn.Tensor], tn.Tensor]:
        def step(x: tn.Tensor) -> tn.Tensor:
            model.weight.grad = None
            model(x).sum().backward()
            return model.weight.grad.clone()
        return step

    eager, compiled = make_step(lin), tn.compile(make_step(twin), backend="interpret")
    x = tn.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=tn.float64)

    def check() -> None:
        close(compiled(x).numpy(), eager(x).numpy(), "the weight's gradient")

    for _ in range(3):
        check()
    handles = [m.weight.register_hook(lambda g: g * 10.0) for m in (lin, twin)]
    for _ in range(3):
        check()
    for handle in handles:
        handle.remove()
    for _ in range(3):
        check()
    assert compiled.traces == 3, compiled


def _linear_twins(make_step: Callable[[Any, Any], Any], weight_only: bool = False,
                  momentum: float = 0.0, backend: str = "auto") -> tuple[Any, Any, Any, Any]:
    """Two equal worlds, a float64 Linear(2, 1) and an SGD on its parameters (its weight alone
    with ``weight_only``): ((model, opt), (model, opt), the first's step run eagerly, the
    second's through tn.compile), each step ``make_step(model, opt)``."""
    def make() -> tuple[Any, Any]:
        tn.manual_seed(0)
        model = nn.Linear(2, 1).double()
        params = [model.weight] if weight_only else model.parameters()
        return model, optim.SGD(params, lr=0.1, momentum=momentum)

    first, second = make(), make()
    return first, second, make_step(*first), tn.compile(make_step(*second), backend=backend,
                                                        background=False)


_THREE_ROWS = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]]  # the batch those steps read


@pytest.mark.parametrize("backend", ["interpret", "auto"])
@pytest.mark.parametrize("reached", ["through the model", "through the optimizer only"])
def test_a_parameter_passed_as_an_argument_is_updated_as_in_eager_mode(reached: str,
                                                                       backend: str) -> None:
    """``step(model.weight, x)``: the optimizer updates the argument in place, as any
    parameter (this was refused as "writes in place into a tensor made in the function")."""
    def make_step(model: Any, opt: Any) -> Callable[[tn.Tensor, tn.Tensor], tn.Tensor]:
        def step(w: tn.Tensor, x: tn.Tensor) -> tn.Tensor:
            opt.zero_grad()
            loss = (x @ w.t()).pow(2).sum()
            if reached == "through the model":
                loss = loss + model(x).sum()
            loss.backward()
            opt.step()
            return loss
        return step

    (m1, _), (m2, _), eager, compiled = _linear_twins(
        make_step, weight_only=reached != "through the model", momentum=0.9, backend=backend)
    x = tn.tensor(_THREE_ROWS, dtype=tn.float64)
    for _ in range(5):
        close(compiled(m2.weight, x).detach().numpy(), eager(m1.weight, x).detach().numpy(),
              "the loss")
        close(m2.weight.detach().numpy(), m1.weight.detach().numpy(), "the weight")
        close(m2.weight.grad.numpy(), m1.weight.grad.numpy(), "its gradient")
    assert compiled.replays >= 2, compiled


def test_an_outside_tensor_passed_in_is_watched_between_calls() -> None:
    """``step(self.x)``: the fast check asks for that tensor and reads its array; a new
    array (``.data = ...``), a ``.grad`` set on it, or an in-place edit between calls are seen
    as in eager mode."""
    class Trainer:
        def __init__(self) -> None:
            tn.manual_seed(0)
            self.model = nn.Linear(2, 1).double()
            self.opt = optim.SGD(self.model.parameters(), lr=0.1)
            self.x = tn.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=tn.float64)

        def step(self, x: tn.Tensor) -> tn.Tensor:
            self.opt.zero_grad()
            loss = self.model(x).pow(2).sum()
            loss.backward()
            self.opt.step()
            return loss

    eager, other = Trainer(), Trainer()
    compiled = tn.compile(other.step, background=False)

    def check() -> None:
        close(compiled(other.x).detach().numpy(), eager.step(eager.x).detach().numpy(), "loss")
        close(other.model.weight.detach().numpy(), eager.model.weight.detach().numpy(), "w")

    for _ in range(3):
        check()
    for t in (eager, other):
        t.x.data = t.x.data * 2.0  # a new array
    check()
    check()
    for t in (eager, other):
        with tn.no_grad():
            t.x.mul_(-1.0)  # the same array, edited
    check()
    for t in (eager, other):
        t.x.grad = tn.ones(2, 2, dtype=tn.float64)
    check()
    check()


@pytest.mark.parametrize("backend", ["interpret", "auto"])
def test_reseeding_a_held_generator_draws_its_new_stream_without_a_new_trace(
        backend: str) -> None:
    """``g.manual_seed(epoch)`` between calls: a replay draws from ``g`` as it is then (the
    eager step's numbers), and the generator's seed is not a condition of the program (each
    reseed traced again before)."""
    g = tn.Generator().manual_seed(0)
    lin = nn.Linear(4, 1).double()

    def step(x: tn.Tensor) -> tn.Tensor:
        noise = tn.randn(3, 4, generator=g, dtype=tn.float64)
        return lin(x + noise).sum()

    compiled = tn.compile(step, backend=backend, background=False)
    x = tn.ones(3, 4, dtype=tn.float64)
    for epoch in range(4):
        g.manual_seed(epoch)
        got = [compiled(x).item() for _ in range(3)]
        g.manual_seed(epoch)
        want = [step(x).item() for _ in range(3)]
        close(got, want, f"epoch {epoch}")
    assert compiled.traces == 1, compiled


@pytest.mark.parametrize("kept", ["tensor", "array", "tensor, zero_grad outside"])
def test_a_kept_grad_keeps_its_numbers_as_in_eager_mode(kept: str) -> None:
    """Eager's backward leaves a new ``.grad`` at every step: one the user keeps (the tensor,
    or its array from ``.numpy()``) keeps its numbers. A replay writes each ``.grad`` into an
    array of its own; while the last one is kept, the next gets a new array (the replay used
    to overwrite the kept ones: every kept gradient showed the last step's numbers)."""
    def make_step(model: Any, opt: Any) -> Callable[[tn.Tensor], tn.Tensor]:
        def step(x: tn.Tensor) -> tn.Tensor:
            if kept != "tensor, zero_grad outside":
                opt.zero_grad()
            loss = model(x).pow(2).sum()
            loss.backward()
            opt.step()
            return loss
        return step

    (m1, o1), (m2, o2), eager, compiled = _linear_twins(make_step)
    x = tn.tensor(_THREE_ROWS, dtype=tn.float64)
    kept_eager, kept_compiled = [], []
    for n in range(8):
        if kept == "tensor, zero_grad outside":
            o1.zero_grad()
            o2.zero_grad()
        eager(x)
        compiled(x)
        if kept == "array":
            kept_eager.append(m1.weight.grad.numpy())
            kept_compiled.append(m2.weight.grad.numpy())
        elif n % 3 != 1:  # (some calls keep nothing)
            kept_eager.append(m1.weight.grad)
            kept_compiled.append(m2.weight.grad)
    for want, got in zip(kept_eager, kept_compiled, strict=True):
        close(np.asarray(got), np.asarray(want), "a kept gradient")
    assert compiled.replays >= 5, compiled
