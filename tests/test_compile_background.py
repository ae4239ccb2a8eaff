"""tn.compile compiles in the background: no call waits for numba (issue 20).

A new program replays step by step (``interpret.py``) while the compiler thread
(``tinynet/compile/background.py``) loads its machine code from numba's disk cache, a child
process compiling what is not there; then the thread switches the program to the generated
code between two calls. Specified here: it is the default (``background=False`` and
``TINYNET_COMPILE_BACKGROUND=0`` turn it off); calls on both sides of the switch equal eager
mode (float64 to 1e-10, float32 to 1e-5, scaled by magnitude); no call compiles or loads numba
code in the calling thread; a warm disk cache needs no child; one program compiles at a time and
a program dropped before its turn is skipped; a failure leaves the program replaying step by
step with a warning; no child outlives its process. No timing is asserted (the benchmark
``python -m benchmarks.first_fast_step`` measures the waits).

The rest of the suite runs with the background off (``tests/conftest.py``), so each test here
switches it on.
"""

from __future__ import annotations

import copy
import gc
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compile_support import close_typed as close

import tinynet as tn
from tinynet import kernels, nn, optim
from tinynet.errors import CompileError

api = importlib.import_module("tinynet.compile.api")
background = importlib.import_module("tinynet.compile.background")
codegen = importlib.import_module("tinynet.compile.codegen")

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")

ROOT = Path(__file__).resolve().parent.parent


def needs_numba() -> None:
    if not kernels.numba_enabled():
        pytest.skip("numba is off (TINYNET_NUMBA=0): there is no generated code to compile")


def make_world(dtype: Any) -> dict[str, Any]:
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2))
    model = model.double() if dtype == np.float64 else model.float()
    return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1, momentum=0.9)}


def train_step(w: dict[str, Any], x: Any, y: Any) -> Any:
    w["opt"].zero_grad()
    loss = ((w["model"](x) - y) ** 2).mean()
    loss.backward()
    w["opt"].step()
    return loss


class Twin:
    """An eager world and a deep copy whose step runs through ``tn.compile``; ``call(n)`` runs
    both on batch ``n`` and compares the loss, every parameter, ``.grad`` and momentum."""

    def __init__(self, dtype: Any, **options: Any) -> None:
        self.dtype = dtype
        self.eager = make_world(dtype)
        self.other = copy.deepcopy(self.eager)
        world = self.other

        def step(x: Any, y: Any) -> Any:
            return train_step(world, x, y)

        self.compiled = tn.compile(step, **options)

    def call(self, n: int) -> None:
        rng = np.random.default_rng(n)
        x = tn.tensor(rng.normal(size=(4, 3)).astype(self.dtype))
        y = tn.tensor(rng.normal(size=(4, 2)).astype(self.dtype))
        want = train_step(self.eager, x, y)
        got = self.compiled(x, y)
        close(got.detach().numpy(), want.detach().numpy(), self.dtype, f"loss, call {n}")
        pairs = zip(self.eager["model"].parameters(), self.other["model"].parameters(),
                    strict=True)
        for p, q in pairs:
            close(q.detach().numpy(), p.detach().numpy(), self.dtype, f"parameter, call {n}")
            close(q.grad.numpy(), p.grad.numpy(), self.dtype, f".grad, call {n}")
            close(self.other["opt"].state[q]["momentum_buffer"].numpy(),
                  self.eager["opt"].state[p]["momentum_buffer"].numpy(), self.dtype,
                  f"momentum, call {n}")

    @property
    def entry(self) -> Any:
        return self.compiled.last


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The compiler thread starts on a program only once the test sets this event."""
    opened = threading.Event()
    original = api.Entry.compile

    def held(entry: Any) -> None:
        opened.wait(timeout=300)
        original(entry)

    monkeypatch.setattr(api.Entry, "compile", held)
    yield opened
    opened.set()


@pytest.fixture
def compiles_here(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Numba functions compiled or loaded in this (the calling) thread, from now on."""
    from numba.core.dispatcher import Dispatcher

    seen: list[Any] = []
    calling = threading.get_ident()
    original = Dispatcher.compile

    def compile(self: Any, sig: Any) -> Any:
        if threading.get_ident() == calling:
            seen.append(self.py_func.__qualname__)
        return original(self, sig)

    monkeypatch.setattr(Dispatcher, "compile", compile)
    return seen


# ---- the default and the options ----------------------------------------------------------


def test_compiling_in_the_background_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYNET_COMPILE_BACKGROUND", raising=False)
    assert api.background()
    assert not api.background(False) and api.background(True)
    for off in ("0", "false", "off", " 0 "):
        monkeypatch.setenv("TINYNET_COMPILE_BACKGROUND", off)
        assert not api.background()
        assert api.background(True)  # the argument wins over the variable
    monkeypatch.setenv("TINYNET_COMPILE_BACKGROUND", "1")
    assert api.background() and not api.background(False)


def test_background_false_compiles_at_the_first_replay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    needs_numba()
    monkeypatch.delenv("TINYNET_COMPILE_BACKGROUND", raising=False)
    twin = Twin(np.float64, background=False)
    for n in range(2):
        twin.call(n)
    entry = twin.entry
    assert entry.compiled is None and entry.run == entry._first_run
    twin.call(2)  # compiles (or loads) the segments here, then runs them
    assert entry.run == entry.runner.replay
    twin.call(3)


def test_background_must_be_a_bool_or_none() -> None:
    with pytest.raises(CompileError, match=r"background must be True, False or None.*'yes'"):
        tn.compile(lambda x: x, background="yes")


# ---- the switch ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_calls_on_both_sides_of_the_switch_equal_eager(
        dtype: Any, monkeypatch: pytest.MonkeyPatch, gate: threading.Event,
        compiles_here: list[Any]) -> None:
    """By default: calls replay step by step while the compiler thread has not finished (here
    held back), then the generated code; every call equals eager mode, and no replay compiles
    or loads numba code in the calling thread."""
    needs_numba()
    monkeypatch.delenv("TINYNET_COMPILE_BACKGROUND", raising=False)
    twin = Twin(dtype)
    twin.call(0)  # makes the momentum buffers: runs eagerly, not kept for replays
    twin.call(1)  # traced: the program is queued for the compiler thread
    entry = twin.entry
    assert entry.runner is not None and entry.compiled is not None
    compiles_here.clear()  # (eager kernels met for the first time compile in the traced calls)
    for n in range(2, 5):
        twin.call(n)
        assert entry.run != entry.runner.replay and not entry.compiled.is_set()
    gate.set()
    assert twin.compiled.wait() is twin.compiled
    assert entry.compile_error is None and entry.run == entry.runner.replay
    replays = twin.compiled.replays
    for n in range(5, 9):
        twin.call(n)
    assert twin.compiled.replays == replays + 4 and twin.entry is entry
    assert compiles_here == []


def test_the_switch_may_come_during_a_call(monkeypatch: pytest.MonkeyPatch,
                                           compiles_here: list[Any]) -> None:
    """Unheld: the compiler thread switches whenever it is done, while calls run in this
    thread; each call runs wholly one way or the other and equals eager mode."""
    needs_numba()
    monkeypatch.delenv("TINYNET_COMPILE_BACKGROUND", raising=False)
    twin = Twin(np.float64)
    twin.call(0)
    twin.call(1)
    compiles_here.clear()
    entry = twin.entry
    n = 2
    while not entry.compiled.is_set() and n < 5000:
        twin.call(n)
        n += 1
    twin.compiled.wait()
    for m in range(n, n + 3):
        twin.call(m)
    assert entry.run == entry.runner.replay
    assert compiles_here == []


def test_the_machine_code_is_loaded_in_the_compiler_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading from numba's disk cache (``Runner.load``) happens in the compiler thread, never
    in the thread that calls the compiled function."""
    needs_numba()
    monkeypatch.delenv("TINYNET_COMPILE_BACKGROUND", raising=False)
    threads: list[int] = []
    original = codegen.Runner.load

    def load(runner: Any) -> list[int]:
        threads.append(threading.get_ident())
        return original(runner)

    monkeypatch.setattr(codegen.Runner, "load", load)
    twin = Twin(np.float64)
    for n in range(3):
        twin.call(n)
    twin.compiled.wait()
    twin.call(3)
    assert threads and threading.get_ident() not in threads
    assert twin.entry.run == twin.entry.runner.replay


# ---- the compiler thread ------------------------------------------------------------------


class Fake:
    """Stands for an ``api.Entry`` in the compiler thread's queue."""

    def __init__(self, log: list[str], name: str, hold: threading.Event | None = None) -> None:
        self.log, self.name, self.hold = log, name, hold
        self.done = threading.Event()

    def compile(self) -> None:
        self.log.append(f"start {self.name}")
        if self.hold is not None:
            self.hold.wait(timeout=60)
        self.log.append(f"end {self.name}")
        self.done.set()


def test_one_program_compiles_at_a_time_and_a_dropped_one_is_skipped() -> None:
    log: list[str] = []
    hold = threading.Event()
    first = Fake(log, "first", hold)
    background.submit(first)
    dropped = Fake(log, "dropped")
    background.submit(dropped)
    last = Fake(log, "last")
    background.submit(last)
    for _ in range(200):  # the thread takes the first
        if log:
            break
        time.sleep(0.01)
    del dropped  # its program went away before its turn (the queue holds it weakly)
    gc.collect()
    hold.set()
    assert last.done.wait(timeout=60)
    assert log == ["start first", "end first", "start last", "end last"]


def test_a_failed_compile_keeps_replaying_step_by_step_with_a_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    needs_numba()
    monkeypatch.delenv("TINYNET_COMPILE_BACKGROUND", raising=False)

    def fails(runner: Any, *args: Any) -> None:
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(codegen.Runner, "load", lambda runner: [0])
    monkeypatch.setattr(codegen.Runner, "fill_cache", fails)
    monkeypatch.setattr(codegen.Runner, "compile_here", fails)
    twin = Twin(np.float64)
    with pytest.warns(RuntimeWarning, match=r"tn.compile\(.*step\): the generated code did not "
                      r"compile \(RuntimeError: no compiler today\); this program keeps "
                      r"replaying step by step"):
        for n in range(2):
            twin.call(n)
        twin.compiled.wait()
    entry = twin.entry
    assert isinstance(entry.compile_error, RuntimeError)
    for n in range(2, 5):
        twin.call(n)
    assert entry.run != entry.runner.replay


# ---- across processes: the disk cache, and children that die with their parent -----------

SCRIPT = """
import os, sys, importlib
import numpy as np
import tinynet as tn
codegen = importlib.import_module("tinynet.compile.codegen")
children = []
fill_cache = codegen.Runner.fill_cache
def counted(runner, *args):
    children.append(args)
    return fill_cache(runner, *args)
codegen.Runner.fill_cache = counted
tn.manual_seed(0)
model = tn.nn.Sequential(tn.nn.Linear(3, 4), tn.nn.Sigmoid(), tn.nn.Linear(4, 2)).double()
opt = tn.optim.SGD(model.parameters(), lr=0.1)
x = tn.tensor(np.linspace(-1, 1, 12).reshape(4, 3))
y = tn.tensor(np.linspace(0, 1, 8).reshape(4, 2))

@tn.compile
def step(x, y):
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    return loss

step(x, y)
step(x, y)
"""

WAIT = SCRIPT + """
step.wait()
entry = step.last
assert entry.compile_error is None, entry.compile_error
step(x, y)
print("children", len(children), "switched", entry.run == entry.runner.replay)
"""

LEAVE = SCRIPT + """
import time
for _ in range(3000):  # until the child runs
    if codegen._children:
        break
    time.sleep(0.01)
print(next(iter(codegen._children)).pid, flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), __import__("signal").SIGKILL)
"""


def run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    env.pop("TINYNET_COMPILE_BACKGROUND", None)  # the default
    return subprocess.run([sys.executable, "-c", script, *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def caches(root: Path) -> dict[str, str]:
    """A fresh tn.compile cache (the segments' machine code is cached beside their files, or
    under NUMBA_CACHE_DIR by their paths); tinynet's kernels keep theirs."""
    return {**os.environ, "TINYNET_CACHE_DIR": str(root / "tinynet")}


def test_a_warm_disk_cache_needs_no_child(tmp_path: Path) -> None:
    """The first process compiles the segments in a child; the next one finds them in numba's
    disk cache and loads them in its compiler thread, starting no child."""
    needs_numba()
    env = caches(tmp_path)
    cold = run(WAIT, env)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["children", "1", "switched", "True"]
    warm = run(WAIT, env)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.split() == ["children", "0", "switched", "True"]


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_child_outlives_its_process(tmp_path: Path, how: str) -> None:
    """A process that ends (normally: ``atexit``; or killed: the child sees its stdin close)
    while a child compiles for it takes the child with it."""
    needs_numba()
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads process states from /proc (Linux)")
    done = run(LEAVE, caches(tmp_path), how)
    expected = -signal.SIGKILL if how == "kill" else 0
    assert done.returncode == expected, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
