"""tn.compile's split loops: a large elementwise loop of a program that calls no BLAS runs in
two halves on two threads (codegen ``PARALLEL_MIN``, ``runtime.split``); the numbers are the
eager step's, bit for bit, whatever the thread count, from two threads at once and in a forked
child. Also ``tn.set_num_threads`` / ``tn.get_num_threads`` (torch's names)."""

import os
import threading
from typing import Any

import numpy as np
import pytest
from compile_support import close_typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet as tn
from tinynet import kernels
from tinynet.compile import codegen

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")

N = codegen.PARALLEL_MIN + 77  # large enough to split; odd: the halves differ in length


@pytest.fixture
def threads():
    """Restore tinynet's thread setting after the test."""
    saved = kernels._threads
    yield
    kernels._threads = saved


def _chain(x: tn.Tensor, w: tn.Tensor) -> tn.Tensor:
    """tanh(sigmoid(x * w + 0.25)) * x summed, and its backward: one fused loop, then a sum
    (of terms of both signs, so the order of the additions shows in the last bits)."""
    loss = (tn.tanh(tn.sigmoid(x * w + 0.25)) * x).sum()
    loss.backward()
    return loss


def _step(x: tn.Tensor, w: tn.Tensor) -> tn.Tensor:
    """The step compiled: ``_chain`` from fresh gradients."""
    x.grad = w.grad = None
    return _chain(x, w)


def _world(dtype: type, seed: int = 0) -> tuple[tn.Tensor, tn.Tensor]:
    rng = np.random.default_rng(seed)
    x = tn.tensor(rng.standard_normal(N).astype(dtype) * 3, requires_grad=True)
    w = tn.tensor(rng.standard_normal(N).astype(dtype), requires_grad=True)
    return x, w


def _eager(dtype: type, steps: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    x, w = _world(dtype)
    seen = []
    for _ in range(steps):
        loss = _step(x, w)
        seen.append((loss.data.copy(), x.grad.data.copy(), w.grad.data.copy()))
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [1, 2])
def test_a_large_loop_splits_and_equals_the_eager_step_bit_for_bit(dtype, count, threads):
    tn.set_num_threads(count)
    want = _eager(dtype, 4)
    x, w = _world(dtype)

    compiled = tn.compile(_step, background=False)
    for n, (loss, gx, gw) in enumerate(want):
        got = compiled(x, w)
        np.testing.assert_array_equal(got.data, loss, err_msg=f"loss, call {n}")
        np.testing.assert_array_equal(x.grad.data, gx, err_msg=f"x.grad, call {n}")
        np.testing.assert_array_equal(w.grad.data, gw, err_msg=f"w.grad, call {n}")
        assert got.dtype == tn.float32 if dtype == np.float32 else tn.float64
    assert compiled.replays == 2  # (traced without .grad, then with: two traces)
    if kernels.numba_enabled():  # (TINYNET_NUMBA=0: interpreted, no generated code)
        assert "split(_segment" in compiled.explain(), "the loop was not split"


def test_a_step_that_calls_blas_keeps_its_large_loops_whole():
    """Right after an OpenBLAS call its threads spin on the other core: a loop of such a
    program stays on one thread (codegen ``Source.no_blas``)."""
    rng = np.random.default_rng(1)
    layer = tn.nn.Linear(64, 4096).double()
    x = tn.tensor(rng.standard_normal((64, 64)))

    def step(x):
        layer.zero_grad()
        loss = tn.tanh(tn.sigmoid(layer(x)) * 2.0).sum()
        loss.backward()
        return loss

    compiled = tn.compile(step, background=False)
    for _ in range(2):
        compiled(x)
    text = compiled.explain()
    assert "split(" not in text
    if kernels.numba_enabled():  # (TINYNET_NUMBA=0: interpreted, no generated code)
        assert "np.matmul" in text


def test_split_loops_from_two_threads_at_once_each_get_their_own_numbers(threads):
    """Two threads replaying at once: one splits, the other finds the helper busy and runs its
    loop whole; each call's numbers are its own."""
    tn.set_num_threads(2)
    worlds = [_world(np.float64, seed) for seed in (3, 4)]
    wants = []
    for seed in (3, 4):
        x, w = _world(np.float64, seed)
        wants.append(_chain(x, w).item())

    compiled = [tn.compile(_step, background=False) for _ in worlds]
    for c, (x, w) in zip(compiled, worlds, strict=True):
        c(x, w)
        c(x, w)  # (traced, then compiled: the next calls replay)
    got: dict[int, list[float]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for _ in range(6):
                got[k].append(compiled[k](*worlds[k]).item())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    runners = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert not errors, errors
    for k in (0, 1):
        assert got[k] == [wants[k]] * 6


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_loops_with_a_helper_of_its_own(threads):
    tn.set_num_threads(2)
    x, w = _world(np.float64)
    want = _eager(np.float64, 1)[0][0]

    compiled = tn.compile(_step, background=False)
    for _ in range(3):
        compiled(x, w)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's helper thread is not here
        code = 1
        try:
            os.close(read)
            got = compiled(x, w).data
            code = 0 if np.array_equal(got, want) else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert answer == b"\x00" and os.waitstatus_to_exitcode(status) == 0, (answer, status)


def test_set_num_threads_and_get_num_threads_as_torch(threads):
    assert tn.get_num_threads() >= 1
    tn.set_num_threads(1)
    assert tn.get_num_threads() == 1
    tn.set_num_threads(np.int64(3))
    assert tn.get_num_threads() == 3 and type(tn.get_num_threads()) is int
    for bad, message in ((0, "positive integer"), (-2, "positive integer"),
                         (1.5, "expects an int, but got float"),
                         (True, "expects an int, but got bool"),
                         ("2", "expects an int, but got str")):
        with pytest.raises(RuntimeError, match=message):
            tn.set_num_threads(bad)
    assert tn.get_num_threads() == 3


def test_the_thread_functions_are_torchs():
    torch = pytest.importorskip("torch")
    for name in ("set_num_threads", "get_num_threads"):
        assert callable(getattr(torch, name)) and callable(getattr(tn, name))
    with pytest.raises(RuntimeError):
        torch.set_num_threads(0)
    with pytest.raises(RuntimeError):
        tn.set_num_threads(0)


UNARY = {"tanh": tn.tanh, "sigmoid": tn.sigmoid, "exp": lambda t: (t * 0.1).exp(),
         "relu": tn.relu, "square": lambda t: t * t}
BINARY = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b}


@st.composite
def chains(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...], list[tuple[str, str]]]:
    """A shape of 1-3 dims (up to 300 elements: sums above numpy's 128-number block split),
    a broadcast operand's shape, and 1-4 elementwise ops, each unary or with the operand."""
    shape = tuple(draw(st.lists(st.integers(1, 10), min_size=1, max_size=3)))
    drop = draw(st.integers(0, len(shape) - 1))
    other = tuple(1 if draw(st.booleans()) else n for n in shape[drop:])
    ops = draw(st.lists(st.one_of(st.tuples(st.just("unary"), st.sampled_from(sorted(UNARY))),
                                  st.tuples(st.just("binary"), st.sampled_from(sorted(BINARY)))),
                        min_size=1, max_size=4))
    return shape, other, ops


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=chains(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_drawn_chains_split_at_any_size_equal_the_unsplit_program_bit_for_bit(case, dtype,
                                                                              seed) -> None:
    """With ``PARALLEL_MIN`` at 1 every loop and every sum of one long run splits, whatever its
    size (halves that are empty, a few elements, not a multiple of the vector width), through
    the background compiler's child: the numbers equal the unsplit program's bit for bit, and
    eager mode's to the dtype's tolerance."""
    shape, other, ops = case
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape).astype(dtype)
    b0 = rng.standard_normal(other).astype(dtype)

    def step(x: Any, b: Any) -> Any:
        y = x
        for kind, name in ops:
            y = UNARY[name](y) if kind == "unary" else BINARY[name](y, b)
        loss = (y * x).sum() + (b * b).sum()  # (b has a gradient even if no op read it)
        loss.backward()
        return loss

    def run(split: bool) -> list[tuple[np.ndarray, ...]]:
        with pytest.MonkeyPatch.context() as mp:
            if split:
                mp.setattr(codegen, "PARALLEL_MIN", 1)
                mp.setattr(kernels, "_threads", 2)
            compiled = tn.compile(step, background=split)
            seen = []
            for _ in range(4):
                x = tn.tensor(x0.copy(), requires_grad=True)
                b = tn.tensor(b0.copy(), requires_grad=True)
                loss = compiled(x, b)
                seen.append((loss.data, x.grad.data, b.grad.data))
                compiled.wait()
            text = compiled.explain() if kernels.numba_enabled() else ""
        return seen, text

    x, b = tn.tensor(x0.copy(), requires_grad=True), tn.tensor(b0.copy(), requires_grad=True)
    want = (step(x, b).data, x.grad.data, b.grad.data)
    plain, _ = run(split=False)
    split, text = run(split=True)
    for call, (p, s) in enumerate(zip(plain, split, strict=True)):
        for what, got, whole, eager in zip(("loss", "x.grad", "b.grad"), s, p, want,
                                           strict=True):
            np.testing.assert_array_equal(got, whole, err_msg=f"{what}, call {call}: split")
            close_typed(got, eager, dtype, f"{what}, call {call}: against eager")
    if kernels.numba_enabled():
        assert "split(_segment" in text


def test_a_wait_interrupted_by_ctrl_c_leaves_no_stale_answer_for_the_next_split(threads):
    """KeyboardInterrupt while the caller waits for the helper: that helper's answer would
    arrive late and be read by the next split as its own, which would then return while the
    old job is still writing. The next split starts a new helper instead."""
    from tinynet.compile import runtime

    tn.set_num_threads(2)
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow(part: int) -> None:  # part 1 (the helper's) waits to be released
        if part == 1:
            started.set()
            release.wait(5)
            order.append("old job done")

    class Interrupting:  # the caller's wait: interrupted once, as by Ctrl-C
        def __init__(self, queue: Any) -> None:
            self.queue = queue

        def get(self) -> Any:
            started.wait(5)
            raise KeyboardInterrupt

        def put(self, answer: Any) -> None:  # (the old helper still answers, late)
            self.queue.put(answer)

    runtime.split(lambda part: None, ())  # (a helper exists)
    old = runtime._helper
    old.done, real_done = Interrupting(old.done), old.done
    with pytest.raises(KeyboardInterrupt):
        runtime.split(slow, ())
    assert runtime._helper is None
    seen: list[int] = []
    runtime.split(lambda part: seen.append(part), ())  # a new helper: its own answers
    assert sorted(seen) == [0, 1, 2] and runtime._helper is not old
    release.set()
    assert real_done.get(timeout=5) is None and order == ["old job done"]
