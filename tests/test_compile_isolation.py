"""tn.compile sits on top of tinynet and never breaks it.

- The tracer watches the engine through its one thread-local observer hook and refuses value
  reads through a thread-local check: nothing of tinynet is patched, so another thread's ops,
  reads and traces are never affected, and the ``Tensor`` class is the same object-for-object
  before and after any trace, failed or not.
- Any exception during a trace or a replay leaves tinynet as before: the next eager op works.
- ``tn.compile(model)(x).sum().backward()`` works on the traced call (eager results, with a
  graph) and raises a clear ``CompileError`` on a replayed one, leaving the process healthy.
- Nothing below ``tinynet/compile`` imports it, even inside functions, and ``compile/`` has no
  import circle.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.autograd import engine
from tinynet.tensor import Tensor, value_reads

PACKAGE = Path(tn.__file__).parent


# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


def _healthy() -> None:
    """tinynet works eagerly in this thread, with nothing of a tracer left behind."""
    assert engine.observers.active == ()
    assert value_reads.refuse is None
    x = tn.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])
    assert y.item() == 14.0 and repr(x).startswith("tensor(")


def _tensor_class() -> dict[str, Any]:
    return dict(vars(Tensor))


# ---------------------------------------------------------------------------------------------
# Failing traces and replays leave tinynet as before
# ---------------------------------------------------------------------------------------------


def _reads_item(x: Tensor) -> Tensor:
    return x * x.sum().item()


def _raises_inside(x: Tensor) -> Tensor:
    y = x * 2
    raise RuntimeError("the user's own bug")
    return y  # pragma: no cover


def _branches(x: Tensor) -> Tensor:
    return x * 2 if x.sum() > 0 else x


@pytest.mark.parametrize("fn, error", [(_reads_item, tn.CompileError),
                                       (_raises_inside, RuntimeError),
                                       (_branches, tn.CompileError)])
def test_a_failing_trace_leaves_tinynet_and_the_tensor_class_as_before(fn: Any,
                                                                        error: type) -> None:
    before = _tensor_class()
    compiled = tn.compile(fn)
    with pytest.raises(error):
        compiled(tn.tensor([1.0, 2.0]))
    assert _tensor_class() == before
    _healthy()


def test_the_value_read_refusal_names_the_users_line() -> None:
    with pytest.raises(tn.CompileError, match=r"test_compile_isolation.py:\d+ .item\(\) reads"):
        tn.compile(_reads_item)(tn.tensor([1.0, 2.0]))


def test_a_failing_replay_leaves_tinynet_as_before() -> None:
    """A replay that raises (a target out of range for cross_entropy) leaves nothing on."""

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return tn.nn.functional.cross_entropy(logits, target)

    compiled = tn.compile(loss)
    logits = tn.tensor(np.random.default_rng(0).normal(size=(4, 3)))
    good = tn.tensor(np.array([0, 1, 2, 1]))
    for _ in range(3):  # traced, then replayed
        np.testing.assert_allclose(compiled(logits, good).numpy(), loss(logits, good).numpy(),
                                   rtol=1e-12)
    with pytest.raises(IndexError):
        compiled(logits, tn.tensor(np.array([0, 1, 7, 1])))
    _healthy()
    np.testing.assert_allclose(compiled(logits, good).numpy(), loss(logits, good).numpy(),
                               rtol=1e-12)


def test_backward_through_a_compiled_models_result_works_once_then_raises_compile_error() -> None:
    tn.manual_seed(0)
    model = tn.nn.Sequential(tn.nn.Linear(3, 4), tn.nn.Tanh(), tn.nn.Linear(4, 1)).double()
    twin = tn.nn.Sequential(tn.nn.Linear(3, 4), tn.nn.Tanh(), tn.nn.Linear(4, 1)).double()
    twin.load_state_dict(model.state_dict())
    compiled = tn.compile(model)
    x = tn.tensor(np.random.default_rng(1).normal(size=(5, 3)))
    compiled(x).sum().backward()  # the traced call ran eagerly: a real graph
    twin(x).sum().backward()
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-14)
    compiled(x)  # traced again: the parameters have a .grad now (a guard miss)
    out = compiled(x)  # replayed: values without a graph
    assert compiled.replays == 1
    np.testing.assert_allclose(out.detach().numpy(), twin(x).detach().numpy(), rtol=1e-12)
    assert out.requires_grad  # as in eager mode
    with pytest.raises(tn.CompileError, match=r"backward\(\) through the result of a compiled"):
        out.sum().backward()
    _healthy()
    with tn.no_grad():  # under no_grad the result is a plain tensor, as in eager mode
        assert not compiled(x).requires_grad


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------

# The traced functions synchronise through a helper. tn.compile follows the helper's globals
# (the ``_SYNC`` list is part of the step's world), but not into the barrier's or events'
# insides, which the waits change: a library object's own state is the library's (trace.py's
# ``_method_names``).
_SYNC: list[Any] = []


def _wait() -> None:
    if isinstance(_SYNC[0], threading.Barrier):
        _SYNC[0].wait()
    else:
        _SYNC[0].set()
        _SYNC[1].wait(30)


def test_two_threads_tracing_and_replaying_different_functions_each_get_eager_results() -> None:
    """Both threads trace at the same moment (a barrier inside the traced functions: only the
    traced call runs them), then replay on new inputs; one thread's tracer never sees the
    other's ops."""
    _SYNC[:] = [threading.Barrier(2, timeout=30)]

    def scale(x: Tensor) -> Tensor:
        _wait()
        return (x * 3.0).sum(dim=0) * x.sum(dim=0)

    def offset(x: Tensor) -> Tensor:
        _wait()
        return (x - 1.0) * (x + 2.0)

    expected = {"scale": lambda a: (a * 3.0).sum(axis=0) * a.sum(axis=0),
                "offset": lambda a: (a - 1.0) * (a + 2.0)}
    results: dict[str, Any] = {}

    def run(name: str, fn: Any, seed: int) -> None:
        try:
            compiled = tn.compile(fn)
            rng = np.random.default_rng(seed)
            pairs = []
            for _ in range(6):
                a = rng.normal(size=(3, 2))
                pairs.append((compiled(tn.tensor(a)).numpy(), expected[name](a)))
            results[name] = (pairs, compiled.traces, compiled.replays)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            results[name] = e

    threads = [threading.Thread(target=run, args=("scale", scale, 0)),
               threading.Thread(target=run, args=("offset", offset, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for name in ("scale", "offset"):
        assert not isinstance(results[name], BaseException), results[name]
        pairs, traces, replays = results[name]
        assert (traces, replays) == (1, 5)
        for got, want in pairs:
            np.testing.assert_allclose(got, want, rtol=1e-12)
    _healthy()


def test_a_value_read_in_another_thread_while_one_traces_is_not_refused() -> None:
    started, finish = threading.Event(), threading.Event()
    _SYNC[:] = [started, finish]

    def slow(x: Tensor) -> Tensor:
        _wait()
        return x * 2

    compiled = tn.compile(slow)
    worker = threading.Thread(target=compiled, args=(tn.tensor([1.0]),))
    worker.start()
    try:
        assert started.wait(30)
        assert tn.tensor([10.0, 20.0]).sum().item() == 30.0  # not refused, not recorded
        assert str(tn.tensor([1.5]))
    finally:
        finish.set()
        worker.join(30)
    _healthy()


# ---------------------------------------------------------------------------------------------
# The house: nothing below compile/ imports it
# ---------------------------------------------------------------------------------------------


def _all_imports(path: Path) -> set[str]:
    """Every tinynet module ``path`` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("tinynet")}


def test_nothing_below_compile_imports_it() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("compile/") or rel == "__init__.py":
            continue
        if any(m == "tinynet.compile" or m.startswith("tinynet.compile.")
               for m in _all_imports(path)):
            offenders.append(rel)
    assert offenders == []


def test_compile_has_no_import_circle_counting_imports_inside_functions() -> None:
    graph: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / "compile").glob("*.py")):
        name = "tinynet.compile." + path.stem if path.stem != "__init__" else "tinynet.compile"
        graph[name] = {m for m in _all_imports(path) if m.startswith("tinynet.compile.")
                       and m != name and m.count(".") == 2}
    # depth-first search for a cycle
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [nxt]
            if not state.get(nxt):
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if not state.get(start):
            cycle = visit(start, [start])
            assert cycle is None, " -> ".join(cycle)
