"""Soak: train the digits MLP (examples/digits_mlp.py's model, the 8x8 digits) for a while and
watch memory and speed.

The run is cut into ``WINDOWS`` equal windows of this thread's CPU time. Not wall time: a
stall of several seconds on a loaded machine, when the process is not scheduled at all, would
leave a wall-clock window with no step in it and say nothing about tinynet. Not the process's
CPU time either: other threads of the test process (OpenBLAS's workers spin while they wait for
work, and keep spinning when the training thread is descheduled) add to it, and a CI run saw
two windows of 2 s of process CPU with no step in them. Those covering
the first ``WARMUP_SECONDS`` of CPU time are warm-up (numba's kernels load, numpy's
allocator and Python's caches fill) and are not judged. Over the others:

- **memory is flat**: Python-level memory (tracemalloc: every tensor, graph node, array and
  optimizer state) ends within ``TRACED_GROWTH`` bytes of where it was after warm-up and does
  not trend upwards; the process's resident size (RSS, from /proc/self/statm) ends within
  ``RSS_GROWTH`` bytes of its post-warm-up level;
- **throughput is steady**: the median step time over the last windows is within
  ``SLOWDOWN`` of the first judged window's (CPU time of this thread, medians, and the better
  of the last two windows: a burst of load from other processes on a shared 2-core machine
  inflates even CPU time for a while, a real slowdown stays). Each window's step time is
  divided by the time of a fixed numpy workload of about the same size timed in the same
  window (``calibration``): on this VM the same steps took 1.1 ms of CPU in some windows and
  1.9 ms in others as the host's speed changed, and a CI run failed on that. Divided, the
  machine's speed cancels and a slowdown of tinynet's own remains;
- **it still learns**: the loss goes down and the held-out accuracy ends above 90%.

Every few seconds the loop also saves and reloads a checkpoint (tn.save / tn.load /
load_state_dict) and evaluates under no_grad, so those paths soak too.

CI runs ``TINYNET_SOAK_SECONDS`` = 20 (seconds of CPU time; more of wall time on a busy
machine); the nightly run sets it to 600.
"""

from __future__ import annotations

import collections
import gc
import importlib.util
import math
import os
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

import tinynet as tn

SOAK_SECONDS = float(os.environ.get("TINYNET_SOAK_SECONDS", "20"))
WINDOWS = 10
WARMUP_SECONDS = 4.0  # whole windows covering this much are warm-up (at least one)
TRACED_GROWTH = 1 << 20  # 1 MiB of Python-level memory
RSS_GROWTH = 24 << 20  # 24 MiB of resident memory (allocator arenas may settle late)
SLOWDOWN = 1.5
CHECKPOINT_EVERY = 5.0  # seconds
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_mlp.py"
CALIBRATE_EVERY = 10  # steps


_CAL_X = np.random.default_rng(1).standard_normal((32, 64))
_CAL_W = np.random.default_rng(2).standard_normal((64, 64))


def calibration() -> float:
    """CPU seconds (of this thread) of a fixed numpy workload shaped like one step (about a
    hundred small array calls on 32x64 and 64x64 arrays): the machine's speed right now,
    tinynet not involved."""
    cpu0 = time.thread_time()
    x = _CAL_X
    for _ in range(12):
        h = np.maximum(x @ _CAL_W, 0.0)
        g = (h - h.mean(axis=0)) * 0.5
        x = np.tanh(g @ _CAL_W.T) + x * 0.5
        x = x / (1.0 + np.abs(x).sum(axis=1, keepdims=True))
    return time.thread_time() - cpu0


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("digits_mlp", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resident_bytes() -> int | None:
    """The process's current resident set size, or None where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def test_training_soak_holds_memory_flat_and_throughput_steady(tmp_path: Path) -> None:
    example = _example()
    x_train, y_train, x_test, y_test = example.load_digits_split()
    tn.manual_seed(0)
    model = tn.nn.Sequential(tn.nn.Linear(64, 64), tn.nn.ReLU(), tn.nn.Linear(64, 10))
    loss_fn = tn.nn.CrossEntropyLoss()
    optimizer = tn.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    checkpoint = tmp_path / "checkpoint.npz"

    windows: list[dict[str, Any]] = []
    window_seconds = SOAK_SECONDS / WINDOWS
    # Bounded records, so the test itself does not grow: the first and the latest 50 losses.
    first_losses: list[float] = []
    last_losses: collections.deque[float] = collections.deque(maxlen=50)
    steps = 0
    tracemalloc.start(1)
    try:
        start = last_checkpoint = time.thread_time()
        for w in range(WINDOWS):
            step_times: list[float] = []
            machine_times: list[float] = []
            window_end = start + (w + 1) * window_seconds
            while time.thread_time() < window_end:
                batch = rng.integers(0, len(x_train), 32)
                cpu0 = time.thread_time()
                optimizer.zero_grad()
                loss = loss_fn(model(tn.tensor(x_train[batch])), y_train[batch])
                loss.backward()
                optimizer.step()
                step_times.append(time.thread_time() - cpu0)
                steps += 1
                if steps % CALIBRATE_EVERY == 0:
                    machine_times.append(calibration())
                (first_losses if len(first_losses) < 50 else last_losses).append(loss.item())
                if cpu0 - last_checkpoint > CHECKPOINT_EVERY:
                    last_checkpoint = cpu0
                    tn.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()},
                            checkpoint)
                    state = tn.load(checkpoint)
                    model.load_state_dict(state["model"])
                    optimizer.load_state_dict(state["optimizer"])
                    with tn.no_grad():
                        model(tn.tensor(x_test))
            # The collection is the test's own measuring, not a step: its time, which grows
            # with the whole test process's heap (gigabytes late in a full run, seconds of CPU),
            # moves the later windows instead of eating into them.
            collecting = time.thread_time()
            gc.collect()
            start += time.thread_time() - collecting
            windows.append({
                "steps": len(step_times),
                # a warm-up window may see no step at all (numba compiling its kernels)
                "median_step": statistics.median(step_times) if step_times else math.inf,
                "machine": statistics.median(machine_times) if machine_times else math.nan,
                "traced": tracemalloc.get_traced_memory()[0],
                "rss": resident_bytes(),
            })
    finally:
        tracemalloc.stop()

    report = "\n".join(
        f"window {i}: {w['steps']} steps, median {w['median_step'] * 1e6:.0f} us CPU "
        f"(calibration {w['machine'] * 1e6:.0f} us), traced {w['traced'] / 1024:.0f} KiB, "
        f"rss {(w['rss'] or 0) / 2**20:.1f} MiB"
        for i, w in enumerate(windows))
    print(f"\nsoak of {SOAK_SECONDS:.0f} s, {steps} steps\n{report}")
    judged = windows[math.ceil(WARMUP_SECONDS / window_seconds):]
    assert all(w["steps"] > 10 for w in judged), report

    traced = [w["traced"] for w in judged]
    assert traced[-1] - traced[0] <= TRACED_GROWTH, report
    assert max(traced) - traced[0] <= 2 * TRACED_GROWTH, report
    slope = np.polyfit(np.arange(len(traced)), traced, 1)[0]  # bytes per window
    assert slope * len(traced) <= TRACED_GROWTH, f"traced memory trends up\n{report}"
    if judged[0]["rss"] is not None:
        assert judged[-1]["rss"] - judged[0]["rss"] <= RSS_GROWTH, report

    # A slowdown must last: the better of the last two windows against the first judged one,
    # each as a multiple of the machine's speed in its window.
    relative = [w["median_step"] / w["machine"] for w in judged]
    assert relative[0] > 0, report
    assert min(relative[-2:]) <= SLOWDOWN * relative[0], report

    assert np.mean(last_losses) < np.mean(first_losses) / 2, "the soak stopped learning"
    assert example.accuracy(model, x_test, y_test) > 0.9
