"""The workloads: what is timed, how correctness is checked first, and what is reported.

Each workload builds every available implementation from the same numpy data, checks that
they compute the same numbers, then hands their ``step`` methods to the interleaved timer.
An implementation that fails its check is dropped from that workload's timing and the run
ends with a non-zero exit status.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import (
    first_fast_step,
    numba_fused,
    numpy_conv,
    numpy_ref,
    peers,
    realistic,
    tinynet_compiled,
    tinynet_impl,
    torch_ref,
)
from .harness import Measurement, Progress, Settings, Skip, WorkloadResult, measure_steady

REPO_ROOT = Path(__file__).resolve().parent.parent
LR = 0.1
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
LOSS_RTOL = {F32: 1e-4, F64: 1e-9}
# Gradients: the largest difference relative to the largest entry of each gradient.
GRAD_RTOL = {F32: 1e-4, F64: 1e-9}
CONV_LR = 0.01


@dataclass
class Context:
    """What every workload needs: settings, progress, which libraries load, the ceilings."""

    settings: Settings
    progress: Progress
    torch_error: str | None
    tinynet_problems: dict[str, str | None]
    ceilings: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    peers: bool = True  # build the torch.compile and jax.jit columns (False: --no-peers)

    def fail(self, workload: str, impl: str, message: str) -> None:
        text = f"{workload}: {impl} FAILED: {message}"
        self.failures.append(text)
        self.progress.note(f"!!! {text}")


@dataclass(frozen=True)
class Workload:
    name: str
    run: Callable[[Context], WorkloadResult]
    uses_ceiling: bool = False
    in_quick: bool = True  # False: --quick leaves it out unless --only names it in full


def _dtype_tag(dtype: np.dtype) -> str:
    return {F32: "f32", F64: "f64"}[np.dtype(dtype)]


def _build(
    result: WorkloadResult,
    ctx: Context,
    factories: dict[str, Callable[[], Any]],
    tinynet_part: str,
) -> dict[str, Any]:
    """Construct each implementation and return them by name.

    torch, or tinynet when ``tinynet_part`` of it does not import, is skipped with the
    reason. A library that imports but cannot build the workload is a failure: the
    traceback is shown and the run will exit non-zero.
    """
    tinynet_problem = ctx.tinynet_problems[tinynet_part]
    unavailable = {
        "torch": ctx.torch_error,
        "tinynet": tinynet_problem,
        tinynet_compiled.NAME: tinynet_problem,
    }
    built: dict[str, Any] = {}
    for name, factory in factories.items():
        if unavailable.get(name):
            result.skipped[name] = f"{name} not importable: {unavailable[name]}"
            continue
        try:
            built[name] = factory()
        except Skip as exc:  # cannot run here (absent, or its compiler refuses): a note
            result.skipped[name] = str(exc)
        except Exception as exc:  # reported as a failure, the run goes on
            result.skipped[name] = f"FAILED to build: {type(exc).__name__}: {exc}"
            ctx.fail(result.name, name, f"could not build: {type(exc).__name__}: {exc}")
            ctx.progress.note(traceback.format_exc(limit=-4))
    return built


def _relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def _check(
    result: WorkloadResult, ctx: Context, impls: dict[str, Any], check: Callable[[str, Any], None]
) -> None:
    """Run ``check`` on each implementation (it returns at once for the reference); drop and
    report the ones that fail."""
    for name in list(impls):
        try:
            check(name, impls[name])
        except Skip as exc:  # its compiler refused the step on the first calls: a note
            result.skipped[name] = str(exc)
            del impls[name]
        except Exception as exc:  # a crash in the check is a failed check
            ctx.fail(result.name, name, f"{type(exc).__name__}: {exc}")
            result.skipped[name] = f"FAILED check: {type(exc).__name__}: {exc}"
            del impls[name]


def _time(result: WorkloadResult, ctx: Context, steps: dict[str, Callable[[], object]]) -> None:
    """Time ``steps`` interleaved (re-measuring a noisy workload) into ``result``."""
    samples, attempt_spreads = measure_steady(steps, ctx.settings, ctx.progress, result.name)
    result.measurements = {name: Measurement(t) for name, t in samples.items()}
    result.noisy_spread = ctx.settings.noisy_spread
    result.attempt_spreads = attempt_spreads


def _time_impls(result: WorkloadResult, ctx: Context, impls: dict[str, Any]) -> WorkloadResult:
    _time(result, ctx, {name: impl.step for name, impl in impls.items()})
    return result


# --------------------------------------------------------------------------- MLP training step


def _limit_factories(
    spec: numpy_ref.MLPSpec, params: numpy_ref.Params, x: np.ndarray, y: np.ndarray
) -> dict[str, Callable[[], Any]]:
    """The hand-fused numba step, for the workload it is written for (xor-f32)."""
    if numba_fused.supports(spec) is not None:
        return {}
    return {numba_fused.NAME: lambda: numba_fused.NumbaFusedMLP(spec, params, x, y, LR)}


# The MLP step's matrix products alone (numpy_ref.NumpyMatmuls): a yardstick column, "vs
# numpy-matmuls" = the share of that speed a step reaches (1x: nothing but its matmuls).
MATMULS = "numpy-matmuls"


def mlp_workload(
    name: str, sizes: tuple[int, ...], batch: int, loss: str, dtype: type[np.floating]
) -> Workload:
    spec = numpy_ref.MLPSpec(name, sizes, batch, loss, np.dtype(dtype))

    def run(ctx: Context) -> WorkloadResult:
        params = numpy_ref.init_linear_params(spec.sizes, spec.dtype, seed=0)
        x, y = numpy_ref.make_batch(spec)
        loss_name = "MSE" if loss == "mse" else "softmax-CE"
        result = WorkloadResult(
            name=name,
            title=(
                f"{name}: {'-'.join(map(str, sizes))} sigmoid, {loss_name}, batch {batch}, "
                f"{spec.dtype} (one SGD step)"
            ),
            unit="samples/s",
            work_per_step=batch,
            baselines=["numpy", "torch", MATMULS],
            flops_per_step=spec.flops_per_step,
            dtype=str(spec.dtype),
        )
        impls = _build(
            result,
            ctx,
            {
                "numpy": lambda: numpy_ref.NumpyMLP(spec, params, x, y, LR),
                MATMULS: lambda: numpy_ref.NumpyMatmuls(spec, params, x, y, LR),
                "torch": lambda: torch_ref.TorchMLP(spec, params, x, y, LR),
                "tinynet": lambda: tinynet_impl.TinynetMLP(spec, params, x, y, LR),
                **tinynet_compiled.mlp_factories(spec, params, x, y, LR),
                **peers.mlp_factories(ctx.peers, ctx.torch_error, spec, params, x, y, LR),
                **_limit_factories(spec, params, x, y),
            },
            "nn",
        )
        reference = impls["numpy"]
        reference.step()
        first = reference.loss_value()
        reference.step()
        second = reference.loss_value()
        for array in reference.arrays():
            assert array.dtype == spec.dtype, f"numpy reference array is {array.dtype}"
        rtol = LOSS_RTOL[spec.dtype]

        def check(impl_name: str, impl: Any) -> None:
            if impl is reference or impl_name == MATMULS:  # (the yardstick trains nothing)
                return
            for step_no, expected in ((1, first), (2, second)):
                impl.step()
                got = impl.loss_value()
                if not _relative_difference(got, expected) <= rtol:
                    raise AssertionError(
                        f"loss after step {step_no} is {got!r}, numpy says "
                        f"{expected!r} (rel tol {rtol:g})"
                    )
            if hasattr(impl, "check_dtypes"):
                impl.check_dtypes()

        _check(result, ctx, impls, check)
        return _time_impls(result, ctx, impls)

    return Workload(name, run, uses_ceiling=True)


# --------------------------------------------------------------------------- elementwise chain


def chain_workload(n: int, dtype: type[np.floating]) -> Workload:
    dt = np.dtype(dtype)
    name = f"chain-1e{round(np.log10(n))}-{_dtype_tag(dt)}"
    a, b = 0.5, 0.1

    def run(ctx: Context) -> WorkloadResult:
        x = np.random.default_rng(4).standard_normal(n).astype(dt)
        result = WorkloadResult(
            name=name,
            title=(
                f"{name}: y = tanh(sigmoid(x*a + b)), y.sum().backward(), {n:,} x {dt} "
                "(GB/s = bytes of x read + grad written)"
            ),
            unit="GB/s",
            work_per_step=2 * x.nbytes,
            baselines=["numpy", "torch"],
        )
        impls = _build(
            result,
            ctx,
            {
                "numpy": lambda: numpy_ref.NumpyChain(x, a, b),
                "torch": lambda: torch_ref.TorchChain(x, a, b),
                "tinynet": lambda: tinynet_impl.TinynetChain(x, a, b),
                **tinynet_compiled.chain_factories(x, a, b),
            },
            "tensor",
        )
        reference = impls["numpy"]
        reference.step()
        expected_loss = reference.loss_value()
        expected_grad = reference.grad_value().copy()
        assert expected_grad.dtype == dt
        rtol = LOSS_RTOL[dt]

        def check(impl_name: str, impl: Any) -> None:
            if impl is reference:
                return
            impl.step()
            got = impl.loss_value()
            if not _relative_difference(got, expected_loss) <= rtol:
                raise AssertionError(
                    f"loss is {got!r}, numpy says {expected_loss!r} (rel tol {rtol:g})"
                )
            grad = impl.grad_value()
            if grad.dtype != dt:
                raise AssertionError(f"x.grad is {grad.dtype}, expected {dt}")
            worst = float(np.max(np.abs(grad - expected_grad)))
            if worst > rtol * float(np.max(np.abs(expected_grad))):
                raise AssertionError(f"x.grad differs from numpy's by up to {worst:.3g}")
            if hasattr(impl, "check_dtypes"):
                impl.check_dtypes()

        _check(result, ctx, impls, check)
        return _time_impls(result, ctx, impls)

    return Workload(name, run)


# --------------------------------------------------------------------------- conv: LeNet step


def conv_workload(name: str, batch: int, side: int, dtype: type[np.floating]) -> Workload:
    """One SGD step of a LeNet-sized CNN (see ``numpy_conv``): numpy im2col, torch, tinynet.

    Checked before timing: after one step from the same weights on the same batch, every
    implementation's loss and all ten gradients agree with the numpy reference's; the loss
    after a second step agrees too; tinynet keeps every array in the workload's dtype.
    """
    spec = numpy_conv.LeNetSpec(name, batch, side, np.dtype(dtype))

    def run(ctx: Context) -> WorkloadResult:
        weights = numpy_conv.initial_weights(spec)
        x, y = numpy_conv.make_images(spec)
        c1, p1, c2, p2 = spec.sides
        result = WorkloadResult(
            name=name,
            title=(
                f"{name}: LeNet (conv5x5 1->6, relu, maxpool2, conv5x5 6->16, relu, maxpool2, "
                f"{spec.shapes['fc1'][1]}-120-84-10), batch {batch} x 1x{side}x{side}, "
                f"softmax-CE, {spec.dtype} (one SGD step)"
            ),
            unit="samples/s",
            work_per_step=batch,
            baselines=["numpy", "torch"],
            flops_per_step=spec.flops_per_step,
            dtype=str(spec.dtype),
        )
        impls = _build(
            result,
            ctx,
            {
                "numpy": lambda: numpy_conv.NumpyLeNet(spec, weights, x, y, CONV_LR),
                "torch": lambda: torch_ref.TorchLeNet(spec, weights, x, y, CONV_LR),
                "tinynet": lambda: tinynet_impl.TinynetLeNet(spec, weights, x, y, CONV_LR),
                **tinynet_compiled.lenet_factories(spec, weights, x, y, CONV_LR),
                **peers.lenet_factories(
                    ctx.peers, ctx.torch_error, spec, weights, x, y, CONV_LR
                ),
            },
            "conv",
        )
        reference = impls["numpy"]
        reference.step()
        first, first_grads = reference.loss_value(), reference.grads()
        first_grads = {k: v.copy() for k, v in first_grads.items()}
        reference.step()
        second = reference.loss_value()
        for array in reference.arrays():
            assert array.dtype == spec.dtype, f"numpy reference array is {array.dtype}"
        rtol, grad_rtol = LOSS_RTOL[spec.dtype], GRAD_RTOL[spec.dtype]

        def check(impl_name: str, impl: Any) -> None:
            if impl is reference:
                return
            impl.step()
            got = impl.loss_value()
            if not _relative_difference(got, first) <= rtol:
                raise AssertionError(
                    f"loss after step 1 is {got!r}, numpy says {first!r} (rel tol {rtol:g})"
                )
            for key, grad in impl.grads().items():
                expected = first_grads[key]
                if grad.dtype != spec.dtype:
                    raise AssertionError(f"{key} grad is {grad.dtype}, expected {spec.dtype}")
                worst = float(np.max(np.abs(grad - expected)))
                if not worst <= grad_rtol * float(np.max(np.abs(expected))):
                    raise AssertionError(
                        f"{key} grad differs from numpy's by up to {worst:.3g} "
                        f"(tol {grad_rtol:g} x its largest entry)"
                    )
            impl.step()
            got = impl.loss_value()
            if not _relative_difference(got, second) <= rtol:
                raise AssertionError(
                    f"loss after step 2 is {got!r}, numpy says {second!r} (rel tol {rtol:g})"
                )
            if hasattr(impl, "check_dtypes"):
                impl.check_dtypes()

        _check(result, ctx, impls, check)
        result.notes.append(
            f"feature maps {side}->{c1} (conv)->{p1} (pool)->{c2} (conv)->{p2} (pool); "
            "checked first: loss after steps 1 and 2 and every gradient against numpy"
        )
        return _time_impls(result, ctx, impls)

    return Workload(name, run, uses_ceiling=True)


# --------------------------------------------------------------------------- perceptron


PERCEPTRON_SAMPLES = 100_000
PERCEPTRON_EPOCHS = 3
PERCEPTRON_LR = 0.1
PERCEPTRON_SEED = 0


class _Fit:
    """A perceptron training run as a timed ``step``; keeps the last (weights, bias, epochs)."""

    def __init__(self, fit: Callable[[], tuple[Any, float, int]]) -> None:
        self.fit = fit
        self.outcome: tuple[list[float], float, int] | None = None

    def step(self) -> None:
        weights, bias, epochs = self.fit()
        self.outcome = ([float(v) for v in weights], float(bias), epochs)


def perceptron_workload() -> Workload:
    name = "perceptron"

    def run(ctx: Context) -> WorkloadResult:
        X, y = numpy_ref.make_perceptron_data(PERCEPTRON_SAMPLES)
        X_list, y_list = X.tolist(), y.tolist()
        lr, seed, epochs = PERCEPTRON_LR, PERCEPTRON_SEED, PERCEPTRON_EPOCHS
        # The references start from the weights tinynet's Perceptron draws for this seed.
        if ctx.tinynet_problems["perceptron"] is None:
            w0, b0 = tinynet_impl.perceptron_initial(2, lr, seed)
        else:
            w0, b0 = np.array([0.3, -0.2]), 0.1
        result = WorkloadResult(
            name=name,
            title=(
                f"{name}: Rosenblatt rule, {PERCEPTRON_SAMPLES:,} samples x 2 features, "
                f"up to {epochs} epochs (time per fit; samples/s counts every epoch)"
            ),
            unit="samples/s",
            work_per_step=0,
            baselines=["python", "numpy-loop"],
        )
        impls = _build(
            result,
            ctx,
            {
                "python": lambda: _Fit(
                    lambda: numpy_ref.perceptron_fit_python(
                        X_list, y_list, w0.tolist(), b0, lr, epochs
                    )
                ),
                "numpy-loop": lambda: _Fit(
                    lambda: numpy_ref.perceptron_fit_numpy(X, y, w0, b0, lr, epochs)
                ),
                "tinynet": lambda: _Fit(
                    lambda: tinynet_impl.perceptron_fit(X, y, lr, seed, epochs)
                ),
            },
            "perceptron",
        )
        reference = impls["python"]
        reference.step()
        expected_w, expected_b, epochs_run = reference.outcome

        def check(impl_name: str, impl: Any) -> None:
            impl.step()
            if impl.outcome != reference.outcome:
                got_w, got_b, got_epochs = impl.outcome
                raise AssertionError(
                    f"weights {got_w}, bias {got_b} after {got_epochs} epochs; pure Python "
                    f"gives {expected_w}, {expected_b} after {epochs_run}"
                )

        _check(result, ctx, impls, check)
        result.work_per_step = PERCEPTRON_SAMPLES * epochs_run
        result.notes.append(
            f"final weights {expected_w}, bias {expected_b} after {epochs_run} epoch(s), "
            f"identical (==) in {', '.join(impls)}"
        )
        return _time_impls(result, ctx, impls)

    return Workload(name, run)


# --------------------------------------------------------------------------- matmul ceiling


MATMUL_N = 2048


def measure_ceiling(ctx: Context, when: str) -> WorkloadResult:
    """numpy's BLAS on square n x n matmuls, float32 and float64 interleaved.

    Measured at the start and at the end of a run; ``ctx.ceilings`` keeps the better median
    of the two per dtype, so a burst of load during one of them does not inflate the
    "% ceiling" column.
    """
    n = MATMUL_N
    operands = {str(dt): numpy_ref.matmul_operands(n, dt) for dt in (F32, F64)}
    result = WorkloadResult(
        name=f"matmul-ceiling-{when}",
        title=f"matmul ceiling ({when} of run): numpy {n}x{n} @ {n}x{n}, 2n^3 FLOP per call",
        unit="GFLOP/s",
        work_per_step=2 * n**3,
        baselines=[],
    )

    def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> Callable[[], None]:
        return lambda: np.matmul(a, b, out=out)

    _time(result, ctx, {name: matmul(*ops) for name, ops in operands.items()})
    for name in result.measurements:
        ctx.ceilings[name] = max(ctx.ceilings.get(name, 0.0), result.throughput(name))
    return result


# --------------------------------------------------------------------------- start-up costs


_IMPORT_SCRIPT = """
import time
t = time.perf_counter()
import {module}
print(time.perf_counter() - t)
"""

_FIRST_STEP_SCRIPT = """
import json, time
t0 = time.perf_counter()
import tinynet
t1 = time.perf_counter()
import numpy as np
from benchmarks import numpy_ref, tinynet_impl
spec = numpy_ref.MLPSpec("mlp-small", (64, 128, 128, 10), 64, "cross_entropy", np.dtype("float32"))
x, y = numpy_ref.make_batch(spec)
params = numpy_ref.init_linear_params(spec.sizes, spec.dtype)
t2 = time.perf_counter()
model = tinynet_impl.TinynetMLP(spec, params, x, y)
t3 = time.perf_counter()
model.step()
t4 = time.perf_counter()
model.step()
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t3 - t2, "first_step_s": t4 - t3,
                  "second_step_s": t5 - t4}))
"""


# tn.compile of the XOR training step in a fresh interpreter: the call that traces the step
# and compiles it, with an empty program cache (cold) and then with the cache the cold run
# wrote (from disk). The eager first calls before it (numba's kernels loading) are not counted.
_COMPILE_SCRIPT = """
import json, time
import numpy as np
import tinynet as tn
import tinynet.nn.functional as F
from tinynet import kernels
kernels.warm_up()
tn.manual_seed(0)
model = tn.nn.Sequential(tn.nn.Linear(2, 4), tn.nn.Sigmoid(), tn.nn.Linear(4, 1))
opt = tn.optim.SGD(model.parameters(), lr=0.5)
x = tn.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = tn.tensor([[0.0], [1.0], [1.0], [0.0]])
def train_step(x, y):
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss
train_step(x, y)  # eager: loads what eager mode needs, so only compile work is timed below
step = tn.compile(train_step, background=False)  # the compile itself is timed
t0 = time.perf_counter()
while step.replays == 0:
    step(x, y)
t1 = time.perf_counter()
print(json.dumps({"compile_s": t1 - t0}))
"""

# The same step fused by hand into one @njit function (forward, MSE, backward, SGD: the
# numba-fused row's ``numba_fused.xor_step``): what compiling a step costs numba at the least,
# measured in the same run to calibrate.
_HAND_FUSED_SCRIPT = """
import json, time
import numpy as np
from benchmarks import numba_fused, numpy_ref
spec = numpy_ref.MLPSpec("xor-f32", (2, 4, 1), 4, "mse", np.dtype("float32"))
x, y = numpy_ref.make_batch(spec)
params = numpy_ref.init_linear_params(spec.sizes, spec.dtype)
t0 = time.perf_counter()
numba_fused.NumbaFusedMLP(spec, params, x, y).step()  # compiles both functions
print(json.dumps({"compile_s": time.perf_counter() - t0}))
"""


def measure_compile(ctx: Context) -> dict[str, Any]:
    """tn.compile's compile time for the XOR step: cold, from the disk cache, and a hand-fused
    numba step's compile time in the same run (each in a fresh interpreter)."""
    if not tinynet_compiled.available():
        return {"skipped": "tinynet has no compile"}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tinynet-compile-cache-") as cache:
        env = {**os.environ, "TINYNET_CACHE_DIR": cache}
        for key, script in (("cold_s", _COMPILE_SCRIPT), ("cache_s", _COMPILE_SCRIPT),
                            ("hand_fused_s", _HAND_FUSED_SCRIPT)):
            try:
                out[key] = json.loads(_run_python(script, env))["compile_s"]
            except RuntimeError as exc:
                ctx.fail("startup", "tinynet-compiled", f"compile-time subprocess failed: {exc}")
                out[key] = None
    return out


def format_compile(compiled: dict[str, Any]) -> list[str]:
    if "skipped" in compiled:
        return [f"tn.compile: skipped ({compiled['skipped']})"]

    def ms(key: str) -> str:
        value = compiled.get(key)
        return "FAILED" if value is None else f"{1e3 * value:.0f} ms"

    return ["tn.compile of the XOR step (the call that traces and compiles; fresh interpreters):",
            f"  cold {ms('cold_s')}, from the disk cache {ms('cache_s')}; a hand-fused numba "
            f"XOR step compiles in {ms('hand_fused_s')} here"]


def _run_python(script: str, env: dict[str, str] | None = None) -> str:
    """Run ``script`` in a fresh interpreter from the repository root; its last output line."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
    return done.stdout.strip().splitlines()[-1]


def measure_startup(ctx: Context) -> dict[str, Any]:
    """Fresh-interpreter costs: import time, and the first step with a cold/warm numba cache.

    Each import is timed in its own subprocess (median of a few). The first-step runs build
    the float32 small MLP and time its first two steps; the cold run points NUMBA_CACHE_DIR
    at a new empty directory, the warm run reuses it.
    """
    out: dict[str, Any] = {}
    problem = ctx.tinynet_problems["tensor"]
    if problem is not None:
        return {"skipped": f"tinynet not importable: {problem}"}
    repeats = 3 if ctx.settings.min_rounds <= 3 else 5
    bar = ctx.progress.bar("startup", 2 * repeats + 2)
    try:
        for module in ("numpy", "tinynet"):
            times = []
            for _ in range(repeats):
                times.append(float(_run_python(_IMPORT_SCRIPT.format(module=module))))
                bar.update(1)
            out[f"import_{module}_s"] = float(np.median(times))
        problem = ctx.tinynet_problems["nn"]
        if problem is not None:
            out["first_step_skipped"] = f"tinynet not importable: {problem}"
            return out
        out["first_step_workload"] = "mlp-small-f32"
        with tempfile.TemporaryDirectory(prefix="tinynet-numba-cache-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            for key in ("cold_numba_cache", "warm_numba_cache"):
                try:
                    out[key] = json.loads(_run_python(_FIRST_STEP_SCRIPT, env))
                except RuntimeError as exc:
                    ctx.fail("startup", "tinynet", f"first-step subprocess failed: {exc}")
                    out[key] = {"error": str(exc)}
                bar.update(1)
        out["compile"] = measure_compile(ctx)
        out["first_fast_step"] = measure_first_fast_step(ctx)
    finally:
        bar.close()
    return out


def format_startup(startup: dict[str, Any]) -> str:
    lines = ["== startup: fresh interpreters"]
    if "skipped" in startup:
        lines.append(f"tinynet: skipped ({startup['skipped']})")
        return "\n".join(lines)
    lines.append(
        f"import numpy    {1e3 * startup['import_numpy_s']:7.1f} ms  (median, fresh subprocesses)"
    )
    lines.append(
        f"import tinynet  {1e3 * startup['import_tinynet_s']:7.1f} ms  (includes numpy; default "
        "numba cache)"
    )
    if "first_step_skipped" in startup:
        lines.append(f"first step: skipped ({startup['first_step_skipped']})")
        return "\n".join(lines)
    lines.append("first tinynet steps of mlp-small-f32 (64-128-128-10, batch 64):")
    for label, key in (
        ("cold numba cache", "cold_numba_cache"),
        ("warm numba cache", "warm_numba_cache"),
    ):
        run = startup[key]
        if "error" in run:
            lines.append(f"  {label}: FAILED ({run['error']})")
            continue
        ms = {name: 1e3 * seconds for name, seconds in run.items()}
        lines.append(
            f"  {label}: import {ms['import_s']:.0f} ms, build {ms['build_s']:.1f} ms, "
            f"first step {ms['first_step_s']:.1f} ms, second step {ms['second_step_s']:.2f} ms"
        )
    if "compile" in startup:
        lines += format_compile(startup["compile"])
    fast = startup.get("first_fast_step")
    if fast is not None:
        if "skipped" in fast:
            lines.append(f"time to first fast step: skipped ({fast['skipped']})")
        else:
            lines += first_fast_step.format_lines(fast)
    return "\n".join(lines)


def measure_first_fast_step(ctx: Context) -> dict[str, Any]:
    """``first_fast_step.measure`` (cold and warm caches), failures reported as such."""
    if not tinynet_compiled.available():
        return {"skipped": "tinynet has no compile"}
    measured = first_fast_step.measure(_run_python)
    for key, run in measured.items():
        if "error" in run:
            ctx.fail("startup", "tinynet-compiled", f"first fast step ({key}): {run['error']}")
    return measured


# --------------------------------------------------------------------------- realistic steps

REALISTIC_CHECK_STEPS = 3


def realistic_workload(spec: realistic.Spec) -> Workload:
    """A step as a new user writes it (``realistic.py``): tinynet eager and compiled, torch
    eager and compiled; checked against torch (tinynet eager without torch) with dropout off,
    then run for a few steps in training mode before timing."""

    def run(ctx: Context) -> WorkloadResult:
        state = realistic.initial_state(spec)
        x, y = spec.data()
        if isinstance(spec, realistic.CNNSpec):
            what = (f"small CNN (conv3x3 1->8, relu, pool, conv3x3 8->16, relu, pool, "
                    f"dropout {spec.dropout}, 64-64-{spec.classes}), batch {spec.batch} x "
                    f"1x{spec.side}x{spec.side}, softmax-CE, Adam(lr={spec.lr:g})")
        else:
            what = (f"MLP {'-'.join(map(str, spec.sizes))} relu, {spec.micro_batches} "
                    f"micro-batches of {spec.micro_batch} accumulated, clip_grad_norm_("
                    f"{spec.max_norm:g}), AdamW(lr={spec.lr:g}, weight_decay="
                    f"{spec.weight_decay:g})")
        result = WorkloadResult(
            name=spec.name,
            title=f"{spec.name}: {what}, {spec.dtype} (one training step)",
            unit="samples/s",
            work_per_step=spec.batch,
            baselines=["tinynet", "torch"],
            dtype=str(spec.dtype),
        )
        factories: dict[str, Callable[[], Any]] = {
            "tinynet": lambda: realistic.TinynetStep(spec, state, x, y),
            "torch": lambda: realistic.TorchStep(spec, state, x, y),
        }
        if tinynet_compiled.available():
            factories[realistic.COMPILED] = lambda: realistic.TinynetCompiledStep(
                spec, state, x, y
            )
        if not ctx.peers:
            result.skipped[peers.TORCH_COMPILE] = "left out by --no-peers"
        elif ctx.torch_error:
            result.skipped[peers.TORCH_COMPILE] = f"torch not importable: {ctx.torch_error}"
        else:
            factories[peers.TORCH_COMPILE] = lambda: realistic.TorchCompiledStep(
                spec, state, x, y
            )
        impls = _build(result, ctx, factories, "realistic")
        reference_name = "torch" if "torch" in impls else "tinynet"
        if reference_name not in impls:
            return result
        reference = impls[reference_name]
        reference.train(False)
        expected = []
        # Twice the steps the others take with dropout off: the second half is what their
        # training-mode steps would give if dropout did nothing.
        for _ in range(2 * REALISTIC_CHECK_STEPS):
            reference.step()
            expected.append(reference.loss_value())
        expected, without_dropout = (
            expected[:REALISTIC_CHECK_STEPS], expected[REALISTIC_CHECK_STEPS:]
        )
        reference.train(True)
        rtol = LOSS_RTOL[spec.dtype]
        has_dropout = isinstance(spec, realistic.CNNSpec) and spec.dropout > 0

        def check(impl_name: str, impl: Any) -> None:
            if impl is not reference:
                impl.train(False)
                for step_no, want in enumerate(expected, 1):
                    impl.step()
                    got = impl.loss_value()
                    if not _relative_difference(got, want) <= rtol:
                        raise AssertionError(
                            f"with dropout off, loss after step {step_no} is {got!r}, "
                            f"{reference_name} says {want!r} (rel tol {rtol:g})"
                        )
                impl.train(True)
            training = []
            for _ in range(REALISTIC_CHECK_STEPS):
                impl.step()
                training.append(impl.loss_value())
                if not math.isfinite(training[-1]):
                    raise AssertionError(f"training-mode loss is {training[-1]}")
            # One step's loss can land near its dropout-off value by chance; three in a row
            # (weights moving apart after the first) cannot.
            if has_dropout and impl is not reference and all(
                _relative_difference(got, want) <= rtol
                for got, want in zip(training, without_dropout, strict=True)
            ):
                raise AssertionError(
                    f"after model.train() the losses are {training}, what the step gives with "
                    "dropout off: the step did not switch to training mode"
                )
            if hasattr(impl, "check_dtypes"):
                impl.check_dtypes()

        _check(result, ctx, impls, check)
        result.notes.append(
            f"no numpy reference; checked first: loss after {REALISTIC_CHECK_STEPS} steps with "
            f"dropout off against {reference_name}, then finite losses in training mode"
            + (", dropout in effect" if has_dropout else "")
        )
        return _time_impls(result, ctx, impls)

    return Workload(spec.name, run)


# --------------------------------------------------------------------------- registry


def all_workloads() -> list[Workload]:
    workloads = []
    for dtype in (np.float32, np.float64):
        tag = _dtype_tag(np.dtype(dtype))
        workloads += [
            mlp_workload(f"xor-{tag}", (2, 4, 1), 4, "mse", dtype),
            mlp_workload(f"mlp-small-{tag}", (64, 128, 128, 10), 64, "cross_entropy", dtype),
            mlp_workload(f"mlp-medium-{tag}", (784, 512, 512, 10), 256, "cross_entropy", dtype),
            mlp_workload(f"mlp-large-{tag}", (1024, 2048, 2048, 10), 1024, "cross_entropy", dtype),
        ]
    for dtype in (np.float32, np.float64):
        workloads += [chain_workload(10**6, dtype), chain_workload(10**7, dtype)]
    workloads.append(perceptron_workload())
    workloads.append(conv_workload("conv-lenet-f32", 64, 28, np.float32))
    # float64 convolution says little more than float32 and costs seconds: full runs only.
    workloads.append(replace(conv_workload("conv-lenet-f64", 64, 28, np.float64), in_quick=False))
    workloads.append(realistic_workload(realistic.CNNSpec()))
    workloads.append(realistic_workload(realistic.AccumSpec()))
    workloads += [sequence_workload("lstm", "lstm", 32), sequence_workload("gpt-tiny", "gpt", 64)]
    return workloads


# --------------------------------------------------------------------------- sequence models


def sequence_workload(name: str, kind: str, batch: int) -> Workload:
    """One SGD step of chapter 9's LSTM classifier or tiny GPT: tinynet eager, tinynet under
    tn.compile, PyTorch eager (the reference: there is no numpy version of these).

    Checked before timing: from the same weights and batch, tinynet's loss and every gradient
    after one step agree with torch's (float32), and the loss after a second step too. A step
    that tn.compile refuses leaves the compiled column out, with the reason in the notes.
    """
    from . import sequence_impl

    spec = sequence_impl.SeqSpec(name, kind, batch)

    def run(ctx: Context) -> WorkloadResult:
        from tinynet.errors import CompileError

        weights = sequence_impl.initial_weights(spec)
        x, y = sequence_impl.make_data(spec)
        shape = (f"LSTM({spec.features} -> {spec.hidden}) over {spec.steps} steps, "
                 f"Linear({spec.hidden} -> {spec.classes})" if kind == "lstm" else
                 f"GPT: {spec.layers} pre-norm causal blocks, width {spec.d_model}, "
                 f"{spec.heads} heads, ff {spec.ff}, {spec.context} tokens")
        result = WorkloadResult(
            name=name, title=f"{name}: {shape}, batch {batch}, cross-entropy, float32 "
                             "(one SGD step)",
            unit="samples/s", work_per_step=batch, baselines=["torch"], dtype="float32")
        impls = _build(result, ctx, {
            "torch": lambda: sequence_impl.TorchSeq(spec, weights, x, y),
            "tinynet": lambda: sequence_impl.TinynetSeq(spec, weights, x, y),
        }, "nn")
        if "torch" not in impls:
            return _time_impls(result, ctx, impls)
        try:  # compiling is part of building this column: trace, generate, replay once
            compiled = sequence_impl.TinynetSeq(spec, weights, x, y, compiled=True)
            for _ in range(3):
                compiled.step()
            compiled = sequence_impl.TinynetSeq(spec, weights, x, y, compiled=True)
            impls[tinynet_compiled.NAME] = compiled
        except CompileError as exc:
            result.skipped[tinynet_compiled.NAME] = f"tn.compile refused the step: {exc}"
        reference = impls["torch"]
        reference.step()
        first = reference.loss_value()
        first_grads = {k: v.copy() for k, v in reference.grads().items()}
        reference.step()
        second = reference.loss_value()
        rtol, grad_rtol = LOSS_RTOL[F32], 1e-3  # float32 sums over long chains (BPTT)

        def check(impl_name: str, impl: Any) -> None:
            if impl is reference:
                return
            impl.step()
            if not _relative_difference(impl.loss_value(), first) <= rtol:
                raise AssertionError(f"loss after step 1 is {impl.loss_value()!r}, torch says "
                                     f"{first!r}")
            for key, grad in impl.grads().items():
                worst = float(np.max(np.abs(grad - first_grads[key])))
                if grad.dtype != F32 or not worst <= grad_rtol * float(
                        np.max(np.abs(first_grads[key]))):
                    raise AssertionError(f"{key} grad ({grad.dtype}) differs from torch's by "
                                         f"up to {worst:.3g}")
            impl.step()
            if not _relative_difference(impl.loss_value(), second) <= rtol:
                raise AssertionError(f"loss after step 2 is {impl.loss_value()!r}, torch "
                                     f"says {second!r}")

        _check(result, ctx, impls, check)
        result.notes.append("checked first: loss after steps 1 and 2 and every gradient "
                            "against PyTorch's, from the same weights")
        return _time_impls(result, ctx, impls)

    return Workload(name, run)
