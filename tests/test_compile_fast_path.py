"""tn.compile's fast path: a replay right after a checked one skips the full guard while the
world stamp (``tensor.WorldStamp``) says nothing it covers changed, and checks what no stamp
can see at every call.

Each mutation below is made between two calls, identically in an eager world and in a copy
whose step runs through ``tn.compile``; the compiled copy must equal the eager one after every
call (float64, 1e-10 scaled by magnitude). Mutations the stamp covers must move it; the ones it
cannot see (plain dicts, ``.grad``, optimizer groups and state, rebound names, arguments) must
be caught by the fast check itself. No timing is asserted: whether the fast path was taken is
read from how often the full guard ran.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from compile_support import close

import tinynet as tn
from tinynet import nn, optim
from tinynet.tensor import world_stamp

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


def make_world() -> dict[str, Any]:
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


def data(seed: int, n: int = 4) -> tuple[tn.Tensor, tn.Tensor]:
    rng = np.random.default_rng(seed)
    return tn.tensor(rng.normal(size=(n, 3))), tn.tensor(rng.normal(size=(n, 2)))


class Twin:
    """An eager world and a deep copy whose step is compiled; counts full guard checks."""

    def __init__(self, step: Callable[..., Any] = train_step) -> None:
        self.eager = make_world()
        self.other = copy.deepcopy(self.eager)
        self.step = step
        world = self.other

        def compiled_step(x: Any, y: Any) -> Any:
            return step(world, x, y)

        self.compiled = tn.compile(compiled_step)
        self.full_checks = 0

    def both(self, change: Callable[[dict[str, Any]], None]) -> None:
        change(self.eager)
        change(self.other)

    def call(self, seed: int) -> None:
        x, y = data(seed)
        want = self.step(self.eager, x, y)
        got = self.compiled(x, y)
        close(got.detach().numpy(), want.detach().numpy(), "returned loss")
        for p, q in zip(self.eager["model"].parameters(), self.other["model"].parameters(),
                        strict=True):
            close(q.detach().numpy(), p.detach().numpy(), "parameter")
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                close(q.grad.numpy(), p.grad.numpy(), ".grad")
        self._count_full_checks()

    def _count_full_checks(self) -> None:
        for entry in self.compiled.programs:
            check = entry.guard.check
            if not getattr(check, "counted", False):
                def counted(args: tuple, check: Any = check) -> bool:
                    self.full_checks += 1
                    return check(args)
                counted.counted = True  # type: ignore[attr-defined]
                entry.guard.check = counted

    def warm(self) -> None:
        """Trace (first call, second with .grad), then replay until the fast path is armed."""
        for seed in range(4):
            self.call(seed)


def test_replays_without_changes_take_the_fast_path_and_leave_the_stamp() -> None:
    """New batches made between calls (tn.tensor, requires_grad False) move nothing either."""
    twin = Twin()
    twin.warm()
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
    twin.warm()
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
    twin.warm()
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
    twin.warm()

    def reshape(w: dict[str, Any]) -> None:
        w["model"][0].weight.data.shape = (3, 5)  # the same memory, another shape
        w["model"][0].weight.data.shape = (5, 3)  # and back: a no-op the guard must allow
    twin.both(reshape)
    twin.call(5)
    compiled_weight = twin.other["model"][0].weight.data
    compiled_weight.shape = (15,)
    entry = twin.compiled.last
    assert not entry.fast_check(data(6))
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
