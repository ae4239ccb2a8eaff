"""Threads: two models trained at once, in two threads, end bit for bit where they end when
trained one after the other; grad mode (``no_grad``) is per thread; and the first kernel calls
of a fresh process, made from two threads at once, pick the same kernels as one thread would.

Each thread gets its own model, optimizer, data and generator: what is shared is tinynet
itself (the engine's grad-mode switch, the op registry, the kernels and their lazy loading).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import tinynet as tn
from tinynet import nn, optim

REPO = Path(__file__).resolve().parents[1]


def train(seed: int, steps: int = 60, barrier: threading.Barrier | None = None,
          check: Callable[[], None] | None = None) -> list[np.ndarray]:
    """A small MLP trained on its own data; returns its parameters. Everything random comes
    from generators made from ``seed``, never from the global one shared by threads."""
    rng = np.random.default_rng(seed)
    x = tn.tensor(rng.standard_normal((64, 8)).astype(np.float32))
    y = rng.integers(0, 3, 64)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Sigmoid(),
                          nn.Linear(16, 3))
    for p in model.parameters():
        nn.init.uniform_(p, -0.5, 0.5, generator=rng)
    optimizer = optim.Adam(model.parameters(), lr=1e-2) if seed % 2 else optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        if barrier is not None and step % 10 == 0:
            barrier.wait(timeout=60)  # keep the two threads' steps interleaved
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + 0.1 * (model(x) ** 2).mean()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters()), "no gradient in this thread"
        optimizer.step()
        if check is not None:
            check()
    return [p.data.copy() for p in model.parameters()]


def run_in_threads(*jobs: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def runner(i: int, job: Callable[[], Any]) -> None:
        try:
            results[i] = job()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=runner, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]
    return results


def assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_two_models_trained_in_two_threads_end_as_when_trained_one_at_a_time() -> None:
    alone = [train(1), train(2)]
    barrier = threading.Barrier(2)
    together = run_in_threads(lambda: train(1, barrier=barrier),
                              lambda: train(2, barrier=barrier))
    for a, b in zip(alone, together, strict=True):
        assert_same(a, b)


def test_no_grad_in_one_thread_while_the_other_trains() -> None:
    """Thread A evaluates inside ``no_grad`` the whole time, checking at every step that it
    records nothing; thread B trains meanwhile and must see grad mode on (its gradients
    exist), and end where it ends alone."""
    alone = train(3)
    in_no_grad = threading.Event()
    done = threading.Event()
    evaluations = []

    def evaluate() -> int:
        rng = np.random.default_rng(9)
        model = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 2))
        x = tn.tensor(rng.standard_normal((32, 8)).astype(np.float32))
        with tn.no_grad():
            in_no_grad.set()
            while not done.is_set():
                out = model(x)
                assert not tn.is_grad_enabled() and out.grad_fn is None
                assert not out.requires_grad
                evaluations.append(float(out.data.sum()))
        assert tn.is_grad_enabled()  # restored in this thread
        return len(evaluations)

    def trainer() -> list[np.ndarray]:
        in_no_grad.wait(timeout=60)

        def grad_mode_is_on() -> None:
            assert tn.is_grad_enabled(), "the other thread's no_grad leaked into this one"

        try:
            return train(3, check=grad_mode_is_on)
        finally:
            done.set()

    count, trained = run_in_threads(evaluate, trainer)
    assert count > 0 and len(set(evaluations)) == 1  # the same model, the same answer
    assert_same(alone, trained)


def test_grad_mode_switches_are_per_thread() -> None:
    """set_grad_enabled(False) as a plain call, enable_grad inside no_grad, and
    detect_anomaly in one thread do not change another thread's modes."""
    seen: dict[str, Any] = {}
    switched = threading.Event()
    observed = threading.Event()

    def switcher() -> None:
        tn.set_grad_enabled(False)
        with tn.autograd.detect_anomaly():
            switched.set()
            observed.wait(timeout=60)
            seen["switcher"] = (tn.is_grad_enabled(), tn.autograd.is_anomaly_enabled())

    def observer() -> None:
        switched.wait(timeout=60)
        x = tn.ones(2, requires_grad=True)
        seen["observer"] = (tn.is_grad_enabled(), tn.autograd.is_anomaly_enabled(),
                            (x * 2).grad_fn is not None)
        observed.set()

    run_in_threads(switcher, observer)
    assert seen["switcher"] == (False, True)
    assert seen["observer"] == (True, False, True)
    assert tn.is_grad_enabled()


_FRESH_PROCESS = """
import sys, threading
import numpy as np
sys.path.insert(0, {tests!r})
import test_threads as T
barrier = threading.Barrier(2)
# The very first kernel calls of this process come from two threads at once, while numba loads.
together = T.run_in_threads(lambda: T.train(11, 30, barrier), lambda: T.train(12, 30, barrier))
alone = [T.train(11, 30), T.train(12, 30)]
for a, b in zip(together, alone):
    T.assert_same(a, b)
import tinynet.kernels as K
print("same", K.numba_enabled())
"""


def test_first_kernel_calls_from_two_threads_in_a_fresh_process_agree_with_one_thread() -> None:
    """The kernels load numba lazily, at the first call that wants it. When two threads make
    that call at once, both must get the kernels one thread would have got (a thread that saw
    "loading in progress" as "no numba" would run the numpy twins for a while: different
    rounding, different final weights)."""
    code = _FRESH_PROCESS.format(tests=str(Path(__file__).parent))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**os.environ}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "same", result.stdout
