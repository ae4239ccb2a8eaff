"""Time to first fast step: how long each of the first calls of a compiled training step waits.

In a fresh interpreter a training step is wrapped by ``tn.compile`` and called until a call
replays through numba-generated code, then a few more times. Every call's wall time is kept
with what it did: ``eager`` (ran the function, tracing or not), ``replay-numba`` (ran the
generated numba program) or ``replay-other`` (replayed another way: the step-by-step
interpreter while numba compiles in the background).

The steps (``WORKLOADS``): ``xor``, the XOR step of ``docs/compile.md`` (2-4-1, batch 4);
``mlp-small``, 64-128-128-10 sigmoid, batch 64, float32, cross-entropy; ``lstm``, the LSTM step
of ``benchmarks/sequence_impl.py`` (LSTM(16 -> 64) over 20 steps, batch 32). Each runs twice:
``cold`` with empty ``NUMBA_CACHE_DIR`` and ``TINYNET_CACHE_DIR`` (tinynet's kernels and the
step's program both compile), ``warm`` with the caches the cold run filled. The mode is
tn.compile's default (compiling in the background) unless ``foreground=True``
(``TINYNET_COMPILE_BACKGROUND=0``: the first replay compiles and waits). Issue 20's goal: no
call waits longer than 50 ms for numba, cold or warm. (tinynet's eager kernels still compile
on their first use, inside the first, traced calls: that wait is the kernels', not the
compiled program's; ``traced_s`` shows it apart.)

    python -m benchmarks.first_fast_step [--workloads xor mlp-small lstm] [--foreground]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .harness import format_seconds

# Calls stop MORE_CALLS after the first numba replay, or at MAX_CALLS / MAX_SECONDS.
MAX_CALLS = 100_000  # (while numba compiles in the background, calls replay step by step)
MORE_CALLS = 5
MAX_SECONDS = 600.0
SLOW_CALL_S = 0.050

SETUP = {
    "xor": """
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
""",
    "mlp-small": """
import numpy as np
tn.manual_seed(0)
model = tn.nn.Sequential(tn.nn.Linear(64, 128), tn.nn.Sigmoid(), tn.nn.Linear(128, 128),
                         tn.nn.Sigmoid(), tn.nn.Linear(128, 10))
opt = tn.optim.SGD(model.parameters(), lr=0.1)
rng = np.random.default_rng(0)
x = tn.tensor(rng.standard_normal((64, 64)).astype(np.float32))
y = tn.tensor(rng.integers(0, 10, 64))

@tn.compile
def train_step(x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss
""",
    "lstm": """
from benchmarks import sequence_impl
spec = sequence_impl.SeqSpec("lstm", "lstm", 32)
data = sequence_impl.make_data(spec)
impl = sequence_impl.TinynetSeq(spec, sequence_impl.initial_weights(spec), *data, compiled=True)
train_step, x, y = impl.train_step, impl.x, impl.y
""",
}
WORKLOADS = tuple(SETUP)

SCRIPT = """
import json, time
t0 = time.perf_counter()
import tinynet as tn
import tinynet.nn.functional as F
import_s = time.perf_counter() - t0
{setup}

def state():
    entry = getattr(train_step, "last", None)
    return train_step.replays, entry, getattr(entry, "run", None)

# What a call did: a replay through the generated numba code if the entry was set to run it
# before the call (or to compile it first, without background compilation) and after it; a
# switch during the call counts as step by step.
def kind(before):
    replays, entry, run = before
    if train_step.replays == replays:
        return "eager"
    now = getattr(train_step, "last", None)
    runner = getattr(now, "runner", None)
    replay = getattr(runner, "replay", None)
    first = getattr(entry, "_first_run", None)
    numba_path = (runner is not None and now is entry and run in (replay, first)
                  and now.run == replay)
    return "replay-numba" if numba_path else "replay-other"

calls, after_fast, start = [], None, time.perf_counter()
while len(calls) < {max_calls} and time.perf_counter() - start < {max_seconds}:
    before = state()
    t = time.perf_counter()
    train_step(x, y)
    calls.append([time.perf_counter() - t, kind(before)])
    if after_fast is None and calls[-1][1] == "replay-numba":
        after_fast = len(calls)
    if after_fast is not None and len(calls) >= after_fast + {more_calls}:
        break
eager = []  # the same step run eagerly (not compiled), for comparison
for _ in range(3):
    t = time.perf_counter()
    train_step.fn(x, y)
    eager.append(time.perf_counter() - t)
print(json.dumps({{"import_s": import_s, "calls": calls, "eager_s": sorted(eager)[1]}}))
"""


def script(workload: str = "xor") -> str:
    return SCRIPT.format(setup=SETUP[workload], max_calls=MAX_CALLS, max_seconds=MAX_SECONDS,
                         more_calls=MORE_CALLS)


def summarize(calls: list[list[Any]]) -> dict[str, Any]:
    """From ``[[seconds, kind], ...]``: the first call's wait, the traced (eager) calls' total,
    the first numba replay's wait and index, the time from the first call's start to the
    first numba replay's end, the slowest replay (a call that did not trace: what must stay
    under ``SLOW_CALL_S``), the median step-by-step and numba replays, and how many calls
    waited longer than ``SLOW_CALL_S``."""
    seconds = [float(s) for s, _ in calls]
    fast = next((i for i, (_, k) in enumerate(calls) if k == "replay-numba"), None)
    replays = [float(s) for s, k in calls if k != "eager"]
    other = [float(s) for s, k in calls if k == "replay-other"]
    numba = [float(s) for s, k in calls if k == "replay-numba"]
    return {
        "calls": [{"s": float(s), "kind": k} for s, k in calls],
        "first_call_s": seconds[0] if seconds else None,
        "traced_s": sum(float(s) for s, k in calls if k == "eager"),
        "first_numba_replay_call": None if fast is None else fast + 1,
        "first_numba_replay_s": None if fast is None else seconds[fast],
        "time_to_first_fast_step_s": None if fast is None else sum(seconds[: fast + 1]),
        "slowest_call_s": max(seconds) if seconds else None,
        "slowest_replay_s": max(replays) if replays else None,
        "median_step_by_step_s": statistics.median(other) if other else None,
        "median_numba_s": statistics.median(numba) if numba else None,
        "calls_over_50ms": sum(s > SLOW_CALL_S for s in seconds),
        "replays_over_50ms": sum(s > SLOW_CALL_S for s in replays),
    }


def measure(run_python: Callable[[str, dict[str, str]], str], workload: str = "xor",
            foreground: bool = False) -> dict[str, Any]:
    """``{"cold": ..., "warm": ...}`` (``summarize``'s dicts plus ``import_s``), each
    ``{"error": text}`` when its subprocess failed. ``run_python(script, env)`` returns the
    script's last output line."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tinynet-first-fast-step-") as root:
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": os.path.join(root, "numba"),
            "TINYNET_CACHE_DIR": os.path.join(root, "tinynet"),
        }
        env.pop("TINYNET_COMPILE_BACKGROUND", None)  # tn.compile's default: in the background
        if foreground:
            env["TINYNET_COMPILE_BACKGROUND"] = "0"
        for key in ("cold", "warm"):
            try:
                raw = json.loads(run_python(script(workload), env))
            except (RuntimeError, ValueError) as exc:
                out[key] = {"error": str(exc)}
                continue
            out[key] = {"import_s": raw["import_s"], "eager_s": raw.get("eager_s"),
                        **summarize(raw["calls"])}
    return out


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else format_seconds(seconds)


def format_lines(measured: dict[str, Any], workload: str = "xor",
                 foreground: bool = False) -> list[str]:
    mode = "TINYNET_COMPILE_BACKGROUND=0" if foreground else "compiling in the background"
    lines = [f"time to first fast step, compiled {workload} step (fresh interpreters, {mode}; "
             "per call):"]
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
            f"  {label}: first call {_ms(run['first_call_s'])} (traced calls "
            f"{_ms(run['traced_s'])}); {reached}; slowest replay "
            f"{_ms(run['slowest_replay_s'])}, {run['replays_over_50ms']} replay(s) over "
            f"{1e3 * SLOW_CALL_S:.0f} ms; median replay step by step "
            f"{_ms(run['median_step_by_step_s'])}, numba {_ms(run['median_numba_s'])}, "
            f"eager (not compiled) {_ms(run.get('eager_s'))}"
        )
        shown = ", ".join(f"{_ms(c['s'])} {c['kind']}" for c in run["calls"][:8])
        more = " ..." if len(run["calls"]) > 8 else ""
        lines.append(f"    calls: {shown}{more}")
    return lines


def _run_here(script_text: str, env: dict[str, str]) -> str:
    """Run ``script_text`` in a fresh interpreter from the repository root (``benchmarks``
    importable); its last output line."""
    root = Path(__file__).resolve().parent.parent
    env = {**env, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [env.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", script_text], cwd=root, env=env,
                          capture_output=True, text=True, timeout=2 * MAX_SECONDS)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
    return done.stdout.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--foreground", action="store_true",
                        help="TINYNET_COMPILE_BACKGROUND=0: the first replay compiles and waits")
    parser.add_argument("--json", help="also write the measurements to this file")
    options = parser.parse_args(argv)
    results = {}
    for workload in options.workloads:
        results[workload] = measure(_run_here, workload, options.foreground)
        print("\n".join(format_lines(results[workload], workload, options.foreground)),
              flush=True)
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
