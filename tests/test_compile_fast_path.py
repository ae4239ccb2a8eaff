"""tn.compile's per-call fast path: what it checks, what it may skip, and that it falls back
whenever the world changes.

A replay right after a checked one runs ``Guard.fast_call``: the fast check's conditions and
the replay in one generated function, which returns ``MISS`` (the full guard runs) when one
fails. It skips the full guard while the world stamp (``tensor.WorldStamp``) says nothing it
covers changed, and checks what no stamp can see at every call (plain dicts, ``.grad``,
optimizer groups and state, rebound names, arguments). Besides the conditions it skips work:

- an SGD/RMSprop... update whose group the fast check compares in full does not read its
  numbers (lr, momentum...) at every call: the driver's ``refresh`` reads them once when the
  full check passes (``Guard.vouches_for``); a changed number fails the fast check first;
- the names an object's methods could read but it does not have are checked absent by one set
  operation (``isdisjoint``), not one line per name;
- the returned tensor is built in the driver, field by field, as ``Tensor._make`` does.

Each change below is made between two calls, identically in an eager world and in a deep copy
whose step runs through ``tn.compile`` (``Twin``; some drawn by hypothesis); the compiled copy
must equal the eager one after every call (float64, 1e-10 scaled by magnitude), and calls with
no change in between must take the fast path. Changes the stamp covers must move it. No timing
is asserted: whether the fast path was taken is read from how often the full guard ran.
"""

from __future__ import annotations

import copy
import types
from typing import Any

import numpy as np
import pytest
from compile_support import close
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
from tinynet import nn, optim
from tinynet.compile.guard import MISS
from tinynet.tensor import Tensor, world_stamp

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


# ------------------------------------------------------------------------------ two worlds


def make_world() -> dict[str, Any]:
    """A world of plain containers, read by ``train_step`` (compiled through a closure)."""
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            "cfg": {"l2": 0.0}}


def train_step(w: dict[str, Any], x: Any, y: Any) -> Any:
    w["opt"].zero_grad()
    loss = ((w["model"](x) - y) ** 2).mean()
    for p in w["model"].parameters():
        loss = loss + w["cfg"]["l2"] * (p * p).sum()
    loss.backward()
    w["opt"].step()
    return loss


class Trainer:
    """A step written as a method that reads its model, optimizer and loss through ``self``
    (the benchmarks' form): ``self`` is an object the guard checks attribute by attribute."""

    def __init__(self, opt: str = "sgd") -> None:
        tn.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(3, 5), nn.Sigmoid(), nn.Linear(5, 2)).double()
        params = self.model.parameters()
        self.opt = (optim.SGD(params, lr=0.1, momentum=0.9) if opt == "sgd" else
                    optim.Adam(params, lr=0.01))
        self.scale = 1.0

    def loss_fn(self, out: Any, y: Any) -> Any:
        return ((out - y) ** 2).mean() * self.scale

    def step(self, x: Any, y: Any) -> Any:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


def other_loss(self: Trainer, out: Any, y: Any) -> Any:
    return (out - y).abs().mean()


def batch(seed: int, n: int = 4) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(seed)
    return tn.tensor(rng.normal(size=(n, 3))), tn.tensor(rng.normal(size=(n, 2)))


class Twin:
    """An eager world and a deep copy whose step is compiled; counts full guard checks.
    ``world``: a ``Trainer`` (its bound ``step`` is compiled) or, by default, ``make_world()``'s
    dict (``train_step`` on it, compiled through a closure)."""

    def __init__(self, world: Any = None) -> None:
        self.eager = make_world() if world is None else world
        self.other = copy.deepcopy(self.eager)
        if isinstance(self.other, Trainer):
            self.compiled = tn.compile(self.other.step)
        else:
            other = self.other

            def compiled_step(x: Any, y: Any) -> Any:
                return train_step(other, x, y)

            self.compiled = tn.compile(compiled_step)
        self.full_checks = 0
        self.seed = 0

    def both(self, change: Any) -> None:
        change(self.eager)
        change(self.other)

    def eager_step(self, x: Any, y: Any) -> Any:
        world = self.eager
        return world.step(x, y) if isinstance(world, Trainer) else train_step(world, x, y)

    def parameters(self, world: Any) -> list[Any]:
        return list((world.model if isinstance(world, Trainer) else world["model"]).parameters())

    def call(self, seed: int | None = None, n: int = 4) -> None:
        """One step in both worlds, on batch ``seed`` (by default the next of a count);
        the loss, parameters and .grad compared."""
        if seed is None:
            self.seed += 1
            seed = 1000 + self.seed
        x, y = batch(seed, n)
        want = self.eager_step(x, y)
        got = self.compiled(x, y)
        close(got.detach().numpy(), want.detach().numpy(), "returned loss")
        for p, q in zip(self.parameters(self.eager), self.parameters(self.other), strict=True):
            close(q.detach().numpy(), p.detach().numpy(), "parameter")
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                close(q.grad.numpy(), p.grad.numpy(), ".grad")
        for entry in self.compiled.programs:  # count the full checks from here on
            check = entry.guard.check
            if not getattr(check, "counted", False):
                def counted(args: tuple, check: Any = check) -> bool:
                    self.full_checks += 1
                    return check(args)
                counted.counted = True  # type: ignore[attr-defined]
                entry.guard.check = counted

    def settle(self, n: int = 4) -> None:
        """Calls with nothing changed: after at most three (the first step, run eagerly; a
        trace; a full check), every call takes the fast path."""
        for _ in range(3):
            self.call(n=n)
        checks, traces = self.full_checks, self.compiled.traces
        for _ in range(2):
            self.call(n=n)
        assert (self.full_checks, self.compiled.traces) == (checks, traces), \
            "calls with no change in between did not take the fast path"


# -------------------------------------------------------------------------- the world stamp


def test_replays_without_changes_take_the_fast_path_and_leave_the_stamp() -> None:
    """New batches made between calls (tn.tensor, requires_grad False) move nothing either."""
    twin = Twin()
    twin.settle()
    before, stamp = twin.full_checks, world_stamp.value
    for seed in range(4, 10):
        twin.call(seed)  # (makes its batch with tn.tensor, and runs the eager twin)
    assert twin.full_checks == before  # no full guard: the fast check vouched for each call
    assert world_stamp.value == stamp  # a replay changes nothing the stamp covers
    assert twin.compiled.traces == 2


STAMPED = {
    "data replaced": lambda w: setattr(w["model"][0].weight, "data",
                                       w["model"][0].weight.data * 0.5),
    "requires_grad switched": lambda w: w["model"][2].bias.requires_grad_(False),
    "module attribute set": lambda w: setattr(w["model"][1], "note", 3),
    "module attribute deleted": lambda w: (setattr(w["model"][1], "note", 3),
                                           delattr(w["model"][1], "note")),
    "eval()": lambda w: w["model"].eval(),
    "buffer registered": lambda w: w["model"][0].register_buffer("extra", tn.zeros(1)),
    "parameter replaced": lambda w: (
        setattr(w["model"][0], "bias", nn.Parameter(tn.zeros(5, dtype=tn.float64))),
        w["opt"].param_groups[0]["params"].__setitem__(1, w["model"][0].bias)),
    "detach_": lambda w: w["model"][2].bias.detach_(),
}


@pytest.mark.parametrize("change", list(STAMPED))
def test_a_change_the_stamp_covers_moves_it_and_is_guarded(change: str) -> None:
    twin = Twin()
    twin.settle()
    stamp = world_stamp.value
    twin.both(STAMPED[change])
    assert world_stamp.value > stamp, change
    checks = twin.full_checks
    for seed in range(4, 8):
        twin.call(seed)
    assert twin.full_checks > checks  # the stamp moved: the full guard ran again


UNSTAMPED = {
    "dict value read by the step": lambda w: w["cfg"].__setitem__("l2", 0.25),
    "momentum": lambda w: w["opt"].param_groups[0].__setitem__("momentum", 0.5),
    "new group key": lambda w: w["opt"].param_groups[0].__setitem__("extra", 1.0),
    ".grad set to None": lambda w: setattr(next(w["model"].parameters()), "grad", None),
    "zero_grad": lambda w: w["opt"].zero_grad(),
    "momentum buffer replaced": lambda w: w["opt"].state[next(w["model"].parameters())]
    .__setitem__("momentum_buffer", tn.Tensor._make(np.zeros((5, 3)))),
    "optimizer state loaded": lambda w: w["opt"].load_state_dict(
        copy.deepcopy(w["opt"].state_dict())),
    "group replaced by an equal dict": lambda w: w["opt"].param_groups.__setitem__(
        0, dict(w["opt"].param_groups[0])),
}


@pytest.mark.parametrize("change", list(UNSTAMPED))
def test_a_change_no_stamp_sees_is_caught_by_the_fast_check(change: str) -> None:
    twin = Twin()
    twin.settle()
    stamp = world_stamp.value
    twin.both(UNSTAMPED[change])
    if change != "optimizer state loaded":  # (loading may use setters: it may move it)
        assert world_stamp.value == stamp, change
    for seed in range(4, 8):
        twin.call(seed)


def test_a_rebound_global_is_caught_by_the_fast_check() -> None:
    namespace: dict[str, Any] = {"scale": tn.tensor(2.0, dtype=tn.float64)}
    exec("def f(x):\n    return (x * scale).sum()\n", namespace)
    compiled = tn.compile(namespace["f"])
    x = tn.tensor(np.arange(3.0))
    for _ in range(4):
        close(compiled(x).numpy(), 6.0, "traced scale")
    namespace["scale"] = tn.tensor(-1.0, dtype=tn.float64)
    close(compiled(x).numpy(), -3.0, "rebound scale")


def test_a_rebound_closure_variable_is_caught_by_the_fast_check() -> None:
    scale = tn.tensor(2.0, dtype=tn.float64)

    def f(x: Any) -> Any:
        return (x * scale).sum()

    compiled = tn.compile(f)
    x = tn.tensor(np.arange(3.0))
    for _ in range(4):
        close(compiled(x).numpy(), 6.0, "traced scale")
    scale = tn.tensor(-1.0, dtype=tn.float64)  # noqa: F841 - read by f through its cell
    close(compiled(x).numpy(), -3.0, "rebound scale")


@pytest.mark.parametrize("change", ["shape", "dtype", "layout", "requires_grad", "aliased"])
def test_a_changed_argument_is_caught_by_the_fast_check(change: str) -> None:
    def f(a: Any, b: Any) -> Any:
        return (a * 2 + b).sum(0)

    compiled = tn.compile(f)
    a, b = tn.tensor(np.arange(6.0).reshape(2, 3)), tn.tensor(np.ones((2, 3)))
    for _ in range(4):
        close(compiled(a, b).numpy(), f(a, b).numpy(), "traced")
    if change == "shape":
        a, b = tn.tensor(np.arange(9.0).reshape(3, 3)), tn.tensor(np.ones((3, 3)))
    elif change == "dtype":
        a = a.float()
    elif change == "layout":
        a = tn.tensor(np.arange(6.0).reshape(3, 2)).t()
    elif change == "requires_grad":
        a = tn.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    else:
        b = a
    got = compiled(a, b)
    close(got.detach().numpy(), f(a, b).detach().numpy(), change)
    assert got.dtype == f(a, b).dtype


def test_an_in_place_reshape_of_a_parameter_array_is_caught_by_the_fast_check() -> None:
    twin = Twin()
    twin.settle()

    def reshape(w: dict[str, Any]) -> None:
        w["model"][0].weight.data.shape = (3, 5)  # the same memory, another shape
        w["model"][0].weight.data.shape = (5, 3)  # and back: a no-op the guard must allow
    twin.both(reshape)
    twin.call(5)
    compiled_weight = twin.other["model"][0].weight.data
    compiled_weight.shape = (15,)
    entry = twin.compiled.last
    assert not entry.fast_check(batch(6))
    compiled_weight.shape = (5, 3)


def test_background_compilation_replays_step_by_step_until_numba_is_ready(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """TINYNET_COMPILE_BACKGROUND=1: a child process fills numba's disk cache while the calls
    replay through the interpreter; after ``wait()`` the next call runs the generated code.
    Every call equals eager mode."""
    from tinynet import kernels

    if not kernels.numba_enabled():
        pytest.skip("numba is off (TINYNET_NUMBA=0): there is no generated code to wait for")
    monkeypatch.setenv("TINYNET_COMPILE_BACKGROUND", "1")
    twin = Twin()
    twin.call(0)
    twin.call(1)  # the second trace: the program is built, its segments compile elsewhere
    entry = twin.compiled.last
    assert entry.runner is not None and entry.compiled is not None
    twin.call(2)
    if not entry.compiled.is_set():  # (the child may already be done on a quiet machine)
        assert entry.run != entry.runner.replay
    assert twin.compiled.wait() is twin.compiled
    assert entry.compile_error is None
    twin.call(3)
    twin.call(4)
    assert entry.run == entry.runner.replay  # the generated code, called directly


def test_background_compilation_after_the_cache_folder_changed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The same program compiled again after TINYNET_CACHE_DIR moved: this process already
    holds the generated module (loaded from the first folder), so the child compiles that file,
    not a path in the new folder where nothing was written."""
    from tinynet import kernels

    if not kernels.numba_enabled():
        pytest.skip("numba is off (TINYNET_NUMBA=0): there is no generated code to compile")
    monkeypatch.setenv("TINYNET_COMPILE_BACKGROUND", "1")
    for folder in ("first", "second"):
        monkeypatch.setenv("TINYNET_CACHE_DIR", str(tmp_path / folder))
        twin = Twin()
        for n in range(3):
            twin.call(n)
        twin.compiled.wait()
        entry = twin.compiled.last
        assert entry.compile_error is None, folder
        twin.call(3)
        assert entry.run == entry.runner.replay


def test_background_compilation_leaves_adam_step_counts_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Preparing the child's argument types must not call an update's ``read`` (which advances
    Adam's step count): the compiled world's step counts and parameters stay eager's."""
    from tinynet import kernels

    if not kernels.numba_enabled():
        pytest.skip("numba is off (TINYNET_NUMBA=0): there is no generated code to compile")
    monkeypatch.setenv("TINYNET_COMPILE_BACKGROUND", "1")
    twin = Twin()
    for w in (twin.eager, twin.other):
        w["opt"] = optim.Adam(w["model"].parameters(), lr=0.01)
    for n in range(2):
        twin.call(n)
    twin.compiled.wait()
    for n in range(2, 5):
        twin.call(n)
    for p, q in zip(twin.eager["model"].parameters(), twin.other["model"].parameters(),
                    strict=True):
        assert twin.other["opt"].state[q]["step"] == twin.eager["opt"].state[p]["step"] == 5


# ----------------------------------------------- drawn changes, the method form, its savings


def set_lr(value: Any) -> Any:
    return lambda t: t.opt.param_groups[0].__setitem__("lr", value)


def set_group(key: str, value: Any) -> Any:
    return lambda t: t.opt.param_groups[0].__setitem__(key, value)


def schedule(t: Trainer) -> None:
    for group in t.opt.param_groups:  # what StepLR(gamma=0.5) does at its step
        group["lr"] = group["lr"] * 0.5


def shadow_loss(t: Trainer) -> None:
    t.loss_fn = types.MethodType(other_loss, t)  # an instance attribute hides the method


def unshadow_loss(t: Trainer) -> None:
    t.__dict__.pop("loss_fn", None)


def grad_to_none(k: int) -> Any:
    return lambda t: setattr(list(t.model.parameters())[k], "grad", None)


def switch_requires_grad(k: int) -> Any:
    def change(t: Trainer) -> None:
        p = list(t.model.parameters())[k]
        p.requires_grad_(not p.requires_grad)
    return change


def scale_weights_in_place(t: Trainer) -> None:
    with tn.no_grad():
        for p in t.model.parameters():
            p.mul_(0.9)


def replace_data(t: Trainer) -> None:
    p = list(t.model.parameters())[0]
    p.data = p.data * 0.5


# (name, change or a function of a drawn value giving one)
CHANGES: dict[str, Any] = {
    "lr": lambda v: set_lr(v),
    "lr as an int": lambda v: set_lr(int(v * 2) + 1),
    "lr as np.float32": lambda v: set_lr(np.float32(v)),  # not a plain group: read each call
    "momentum": lambda v: set_group("momentum", v),
    "dampening": lambda v: set_group("dampening", v / 2),
    "weight_decay": lambda v: set_group("weight_decay", v / 10),
    "scheduler step": lambda v: schedule,
    "new group key": lambda v: set_group("extra", v),
    "group replaced by an equal dict": lambda v: (
        lambda t: t.opt.param_groups.__setitem__(0, dict(t.opt.param_groups[0]))),
    "zero_grad(set_to_none=False)": lambda v: (lambda t: t.opt.zero_grad(set_to_none=False)),
    "zero_grad()": lambda v: (lambda t: t.opt.zero_grad()),
    ".grad = None": lambda v: grad_to_none(int(v * 4) % 4),
    "requires_grad switched": lambda v: switch_requires_grad(int(v * 4) % 4),
    "in-place write under no_grad": lambda v: scale_weights_in_place,
    ".data replaced": lambda v: replace_data,
    "eval()": lambda v: (lambda t: t.model.eval()),
    "train()": lambda v: (lambda t: t.model.train()),
    # (a number the trace bakes in: two values, so few programs to compile)
    "attribute read by the step": lambda v: (
        lambda t: setattr(t, "scale", 0.5 if v < 0.5 else 1.0)),
    "method shadowed by an attribute": lambda v: shadow_loss,
    "shadowing attribute removed": lambda v: unshadow_loss,
}

change_lists = st.lists(st.tuples(st.sampled_from(sorted(CHANGES)),
                                  st.floats(0.01, 0.9, allow_nan=False), st.booleans()),
                        min_size=1, max_size=5)


@settings(max_examples=12)
@given(changes=change_lists)
def test_drawn_world_changes_between_calls_fall_back_and_agree_with_eager(
        changes: list[tuple[str, float, bool]]) -> None:
    """Every change is made between two calls to both worlds; the compiled one must equal
    eager after every call, and settle back onto the fast path once nothing changes."""
    twin = Twin(Trainer())
    twin.settle()
    for name, value, other_batch in changes:
        twin.both(CHANGES[name](value))
        twin.call(n=6 if other_batch else 4)
        twin.call(n=6 if other_batch else 4)
    twin.settle()


@settings(max_examples=6)
@given(lrs=st.lists(st.floats(1e-4, 0.5, allow_nan=False), min_size=1, max_size=4))
def test_adam_step_counts_are_read_at_every_call(lrs: list[float]) -> None:
    """Adam's update reads step counts that advance at every step: never fixed at a full check
    (``Guard.vouches_for`` says no), so every replay reads them, and lr changes are seen."""
    twin = Twin(Trainer("adam"))
    twin.settle()
    entry = twin.compiled.last
    if entry.runner is not None:
        assert not any(entry.runner.vouched)
    for lr in lrs:
        twin.both(set_lr(lr))
        twin.call()
        twin.call()
    twin.settle()
    p, q = next(twin.eager.model.parameters()), next(twin.other.model.parameters())
    assert twin.other.opt.state[q]["step"] == twin.eager.opt.state[p]["step"]


def test_sgd_numbers_are_read_once_per_full_check_and_a_change_fails_the_fast_check() -> None:
    twin = Twin(Trainer())
    twin.settle()
    entry = twin.compiled.last
    x, y = batch(100)
    assert entry.fast_call((x, y)) is not MISS  # (a replay: keep the eager twin in step)
    twin.eager_step(x, y)
    if entry.runner is not None:  # numba on: the generated driver, with its numbers fixed
        assert entry.runner.vouched == (True,)
    twin.both(set_lr(0.05))
    assert entry.fast_call(batch(101)) is MISS  # the group differs from the checked copy
    checks = twin.full_checks
    twin.call()
    assert twin.full_checks == checks + 1  # the full check ran, and refreshed the numbers
    twin.settle()


def test_a_group_that_is_not_plain_is_not_vouched_for_and_read_at_every_call() -> None:
    twin = Twin(Trainer())
    twin.both(set_lr(np.float32(0.1)))  # a numpy number: not compared as one dict
    twin.settle()
    entry = twin.compiled.last
    if entry.runner is not None:
        assert entry.runner.vouched == (False,)
    for lr in (0.05, 0.2):
        twin.both(set_lr(np.float32(lr)))
        twin.call()
    twin.settle()


def test_a_method_shadowed_by_an_instance_attribute_misses_the_fast_path() -> None:
    """``self.loss_fn`` is a method; an instance attribute of that name hides it. The fast
    check finds it absent with one ``isdisjoint`` (every name the methods read, not held)."""
    twin = Twin(Trainer())
    twin.settle()
    entry = twin.compiled.last
    assert "isdisjoint" in entry.guard.fast_source
    twin.both(shadow_loss)
    assert entry.fast_call(batch(100)) is MISS
    twin.call()
    twin.settle()
    twin.both(unshadow_loss)
    twin.call()
    twin.settle()


def test_the_returned_tensor_is_fresh_and_made_as_tensor_make_makes_it() -> None:
    twin = Twin(Trainer())
    twin.settle()
    x, y = batch(7)
    first = twin.compiled(x, y)
    second = twin.compiled(x, y)
    assert first is not second and first._data is not second._data
    assert first._version is not second._version
    model = Tensor._make(np.zeros(()))
    for name in Tensor.__slots__:
        if name == "__weakref__":
            continue
        got, want = getattr(second, name), getattr(model, name)
        assert type(got) is type(want), name
    assert second._version.value == 0 and not second._version.has_views
    assert not second.requires_grad and second.grad is None and second.grad_fn is None
    first.data[...] = 123.0  # the caller's tensor is theirs: the next call leaves it alone
    third = twin.compiled(x, y)
    assert float(first.data) == 123.0 and float(third.data) != 123.0
