"""Time to first fast step: how long each of the first calls of a compiled XOR step waits.

In a fresh interpreter, the XOR training step of ``docs/compile.md`` is wrapped by
``tn.compile`` and called until a call replays through numba-generated code, then a few more
times. Every call's wall time is kept with what it did: ``eager`` (ran the function, tracing or
not), ``replay-numba`` (ran the generated numba program) or ``replay-other`` (replayed another
way, e.g. the step-by-step interpreter while numba compiles elsewhere).

Background compilation is on (``TINYNET_COMPILE_BACKGROUND=1``: a child process fills numba's
disk cache while the calls replay step by step). Run twice: ``cold`` with empty
``NUMBA_CACHE_DIR`` and ``TINYNET_CACHE_DIR`` (tinynet's kernels and the step's program both
compile), ``warm`` with the caches the cold run filled. Issue 20's goal: no call waits longer
than 50 ms for numba, cold or warm. (tinynet's eager kernels still compile on their first use,
inside the first, traced calls: that wait is the kernels', not the compiled program's.)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

from .harness import format_seconds

# Calls stop MORE_CALLS after the first numba replay, or at MAX_CALLS / MAX_SECONDS.
MAX_CALLS = 100_000  # (while numba compiles in the background, calls replay step by step)
MORE_CALLS = 3
MAX_SECONDS = 300.0
SLOW_CALL_S = 0.050

SCRIPT = """
import json, time
t0 = time.perf_counter()
import tinynet as tn
import tinynet.nn.functional as F
import_s = time.perf_counter() - t0

tn.manual_seed(0)
model = tn.nn.Sequential(tn.nn.Linear(2, 4), tn.nn.Sigmoid(), tn.nn.Linear(4, 1), tn.nn.Sigmoid())
opt = tn.optim.SGD(model.parameters(), lr=0.5)
x = tn.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = tn.tensor([[0.0], [1.0], [1.0], [0.0]])

@tn.compile
def train_step(x, y):
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss

def kind(before):
    if train_step.replays == before:
        return "eager"
    entry = getattr(train_step, "last", None)
    runner = getattr(entry, "runner", None)
    numba_path = runner is not None and getattr(entry, "run", None) == getattr(
        runner, "replay", None)
    return "replay-numba" if numba_path else "replay-other"

calls, after_fast, start = [], None, time.perf_counter()
while len(calls) < {max_calls} and time.perf_counter() - start < {max_seconds}:
    before = train_step.replays
    t = time.perf_counter()
    train_step(x, y)
    calls.append([time.perf_counter() - t, kind(before)])
    if after_fast is None and calls[-1][1] == "replay-numba":
        after_fast = len(calls)
    if after_fast is not None and len(calls) >= after_fast + {more_calls}:
        break
print(json.dumps({{"import_s": import_s, "calls": calls}}))
"""


def script() -> str:
    return SCRIPT.format(max_calls=MAX_CALLS, max_seconds=MAX_SECONDS, more_calls=MORE_CALLS)


def summarize(calls: list[list[Any]]) -> dict[str, Any]:
    """From ``[[seconds, kind], ...]``: the first call's wait, the first numba replay's wait
    and index, the time from the first call's start to the first numba replay's end, the
    slowest call and how many calls waited longer than ``SLOW_CALL_S``."""
    seconds = [float(s) for s, _ in calls]
    fast = next((i for i, (_, k) in enumerate(calls) if k == "replay-numba"), None)
    return {
        "calls": [{"s": float(s), "kind": k} for s, k in calls],
        "first_call_s": seconds[0] if seconds else None,
        "first_numba_replay_call": None if fast is None else fast + 1,
        "first_numba_replay_s": None if fast is None else seconds[fast],
        "time_to_first_fast_step_s": None if fast is None else sum(seconds[: fast + 1]),
        "slowest_call_s": max(seconds) if seconds else None,
        "calls_over_50ms": sum(s > SLOW_CALL_S for s in seconds),
    }


def measure(run_python: Callable[[str, dict[str, str]], str]) -> dict[str, Any]:
    """``{"cold": ..., "warm": ...}`` (``summarize``'s dicts plus ``import_s``), each
    ``{"error": text}`` when its subprocess failed. ``run_python(script, env)`` returns the
    script's last output line."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tinynet-first-fast-step-") as root:
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": os.path.join(root, "numba"),
            "TINYNET_CACHE_DIR": os.path.join(root, "tinynet"),
            # the step's segments compile in a child process while calls replay step by step
            "TINYNET_COMPILE_BACKGROUND": "1",
        }
        for key in ("cold", "warm"):
            try:
                raw = json.loads(run_python(script(), env))
            except (RuntimeError, ValueError) as exc:
                out[key] = {"error": str(exc)}
                continue
            out[key] = {"import_s": raw["import_s"], **summarize(raw["calls"])}
    return out


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else format_seconds(seconds)


def format_lines(measured: dict[str, Any]) -> list[str]:
    lines = ["time to first fast step, compiled XOR step (fresh interpreters, "
             "TINYNET_COMPILE_BACKGROUND=1; per call):"]
    for key, label in (("cold", "cold (empty numba and tinynet caches)"),
                       ("warm", "warm (the caches the cold run filled)")):
        run = measured.get(key)
        if run is None:
            continue
        if "error" in run:
            lines.append(f"  {label}: FAILED ({run['error']})")
            continue
        fast = run["first_numba_replay_call"]
        reached = (
            f"first numba replay at call {fast}, waiting {_ms(run['first_numba_replay_s'])}; "
            f"{_ms(run['time_to_first_fast_step_s'])} from the first call to the end of it"
            if fast is not None
            else f"no numba replay in {len(run['calls'])} calls"
        )
        lines.append(
            f"  {label}: first call {_ms(run['first_call_s'])}; {reached}; slowest call "
            f"{_ms(run['slowest_call_s'])}, {run['calls_over_50ms']} call(s) over "
            f"{1e3 * SLOW_CALL_S:.0f} ms"
        )
        shown = ", ".join(f"{_ms(c['s'])} {c['kind']}" for c in run["calls"][:8])
        more = " ..." if len(run["calls"]) > 8 else ""
        lines.append(f"    calls: {shown}{more}")
    return lines
