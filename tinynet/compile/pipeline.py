"""The pipeline: what ``tn.compile`` does the first time it sees a kind of call, in one function.

    trace -> lower -> fuse -> plan -> generate -> guard

Each stage is one call into its module (read them in this order); ``api.py`` runs this when no
kept program's guard passes, and replays the result on later calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinynet import kernels as kernel_dispatch
from tinynet.compile import codegen
from tinynet.compile.fuse import Lowering
from tinynet.compile.guard import Guard
from tinynet.compile.ir import Program
from tinynet.compile.plan import Plan
from tinynet.compile.trace import Tracer, World, tracing


@dataclass
class Compiled:
    """What the pipeline made of one call."""

    returned: Any  # what the call returned (it ran eagerly, under the tracer)
    program: Program  # the trace
    replayable: bool  # False if the call created optimizer state (a first step: run eagerly)
    runner: Any  # the generated code (codegen.Runner), or None: interpret the program
    guard: Guard  # what a later call must match to replay it


def compile_call(fn: Any, args: tuple, world: World, name: str, codes: Any,
                 backend: str = "auto") -> Compiled:
    """Run ``fn(*args)`` once under the tracer and turn what it did into replayable code."""
    guard = Guard(args, world)  # the world as the call finds it, before fn changes anything
    tracer = Tracer(name, codes, args, world)
    with tracing(tracer):  # 1. trace: run fn eagerly, recording ops, backward rules, updates
        returned = fn(*args)
    program = tracer.finish(returned)
    replayable = not tracer.fresh_state
    runner = None
    if replayable and backend == "auto" and kernel_dispatch.numba_enabled():
        lowering = Lowering(program)
        lowering.lower()  # 2. lower: each step to kernels (a formula-table row, or opaque)
        fused = lowering.fuse()  # 3. fuse: elementwise runs become one loop
        plan = Plan(fused, lowering.values, lowering.pinned())  # 4. plan: buffers, reused
        runner = codegen.generate(program, lowering, fused, plan)  # 5. generate: numba source
    left = runner.left_grads() if runner is not None else {}  # the .grad tensors replays leave
    guard.finish(tracer.unused_tensors(), left)  # 6. guard: what a replay checks, now known
    return Compiled(returned, program, replayable, runner, guard)
