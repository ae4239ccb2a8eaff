"""tn.compile's split loops: a large elementwise loop of a program that calls no BLAS runs in
two halves on two threads (codegen ``PARALLEL_MIN``, ``runtime.split``); the numbers are the
eager step's, bit for bit, whatever the thread count, from two threads at once and in a forked
child. Also ``tn.set_num_threads`` / ``tn.get_num_threads`` (torch's names)."""

import os
import threading

import numpy as np
import pytest

import tinynet as tn
from tinynet import kernels
from tinynet.compile import codegen

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


def _world(dtype: type, seed: int = 0) -> tuple[tn.Tensor, tn.Tensor]:
    rng = np.random.default_rng(seed)
    x = tn.tensor(rng.standard_normal(N).astype(dtype) * 3, requires_grad=True)
    w = tn.tensor(rng.standard_normal(N).astype(dtype), requires_grad=True)
    return x, w


def _eager(dtype: type, steps: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    x, w = _world(dtype)
    seen = []
    for _ in range(steps):
        x.grad = w.grad = None
        loss = _chain(x, w)
        seen.append((loss.data.copy(), x.grad.data.copy(), w.grad.data.copy()))
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [1, 2])
def test_a_large_loop_splits_and_equals_the_eager_step_bit_for_bit(dtype, count, threads):
    tn.set_num_threads(count)
    want = _eager(dtype, 4)
    x, w = _world(dtype)

    def step(x, w):
        x.grad = w.grad = None
        return _chain(x, w)

    compiled = tn.compile(step, background=False)
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

    def step(x, w):
        x.grad = w.grad = None
        return _chain(x, w)

    compiled = [tn.compile(step, background=False) for _ in worlds]
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

    def step(x, w):
        x.grad = w.grad = None
        return _chain(x, w)

    compiled = tn.compile(step, background=False)
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
