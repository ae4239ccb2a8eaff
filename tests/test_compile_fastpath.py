"""tn.compile's per-call fast path and what it may skip, each shown to fall back when the world
changes.

A call right after a checked one runs ``Guard.fast_call``: the fast check's conditions and the
replay in one generated function, which returns ``MISS`` (the full guard runs) when one fails.
Besides the conditions, the fast path skips work:

- an SGD/RMSprop... update whose group the fast check compares in full does not read its
  numbers (lr, momentum...) at every call: the driver's ``refresh`` reads them once when the
  full check passes (``Guard.vouches_for``); a changed number fails the fast check first;
- the names an object's methods could read but it does not have are checked absent by one set
  operation (``isdisjoint``), not one line per name;
- the returned tensor is built in the driver, field by field, as ``Tensor._make`` does.

Sequences of world changes are drawn by hypothesis and made identically to an eager world and
to a copy whose step runs compiled; after every call the two must agree (float64, 1e-10 scaled
by magnitude), and calls with no change in between must take the fast path.
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
from tinynet.tensor import Tensor

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


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
    """An eager Trainer and a deep copy whose step is compiled; counts full guard checks."""

    def __init__(self, opt: str = "sgd") -> None:
        self.eager = Trainer(opt)
        self.other = copy.deepcopy(self.eager)
        self.compiled = tn.compile(self.other.step)
        self.full_checks = 0
        self.seed = 0

    def both(self, change: Any) -> None:
        change(self.eager)
        change(self.other)

    def call(self, n: int = 4) -> None:
        self.seed += 1
        x, y = batch(self.seed, n)
        want = self.eager.step(x, y)
        got = self.compiled(x, y)
        close(got.detach().numpy(), want.detach().numpy(), "returned loss")
        for p, q in zip(self.eager.model.parameters(), self.other.model.parameters(),
                        strict=True):
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
            self.call(n)
        checks, traces = self.full_checks, self.compiled.traces
        for _ in range(2):
            self.call(n)
        assert (self.full_checks, self.compiled.traces) == (checks, traces), \
            "calls with no change in between did not take the fast path"


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
    twin = Twin()
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
    twin = Twin("adam")
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
    twin = Twin()
    twin.settle()
    entry = twin.compiled.last
    x, y = batch(100)
    assert entry.fast_call((x, y)) is not MISS  # (a replay: keep the eager twin in step)
    twin.eager.step(x, y)
    if entry.runner is not None:  # numba on: the generated driver, with its numbers fixed
        assert entry.runner.vouched == (True,)
    twin.both(set_lr(0.05))
    assert entry.fast_call(batch(101)) is MISS  # the group differs from the checked copy
    checks = twin.full_checks
    twin.call()
    assert twin.full_checks == checks + 1  # the full check ran, and refreshed the numbers
    twin.settle()


def test_a_group_that_is_not_plain_is_not_vouched_for_and_read_at_every_call() -> None:
    twin = Twin()
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
    twin = Twin()
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
    twin = Twin()
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
