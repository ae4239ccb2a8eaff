"""The issue-20 rows of python -m benchmarks: the numba-fused limit, the peer columns (skipped
with a note, refused, or wired through), the realistic steps against torch, and time to first
fast step. Workloads run with tiny settings; nothing is timed for its numbers."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import tinynet
from benchmarks import first_fast_step, harness, numba_fused, numpy_ref, peers, realistic, workloads
from benchmarks.harness import Settings, Skip

TINY = Settings(
    warmup_s=0.0, sample_s=0.0005, budget_s=0.01, min_rounds=4, max_rounds=4, settle_s=0.0,
    max_remeasure=0,
)
PROBLEMS = {"tensor": None, "nn": None, "perceptron": None, "conv": None, "realistic": None}


def context(torch_error: str | None = "left out of this test", peers_on: bool = True):
    return workloads.Context(TINY, harness.Progress(), torch_error, dict(PROBLEMS),
                             peers=peers_on)


def xor_spec(dtype=np.float32) -> numpy_ref.MLPSpec:
    return numpy_ref.MLPSpec("xor", (2, 4, 1), 4, "mse", np.dtype(dtype))


def run_workload(name: str, ctx: workloads.Context) -> harness.WorkloadResult:
    (workload,) = [w for w in workloads.all_workloads() if w.name == name]
    return workload.run(ctx)


# --------------------------------------------------------------------------- numba-fused


def test_the_hand_fused_step_follows_the_numpy_reference_for_many_steps() -> None:
    spec = xor_spec()
    params = numpy_ref.init_linear_params(spec.sizes, spec.dtype)
    x, y = numpy_ref.make_batch(spec)
    reference = numpy_ref.NumpyMLP(spec, params, x, y, 0.5)
    fused = numba_fused.NumbaFusedMLP(spec, params, x, y, 0.5)
    for _ in range(30):
        reference.step()
        fused.step()
        assert fused.loss_value() == pytest.approx(reference.loss_value(), rel=1e-5)
    for got, want in zip(fused.weights, [*reference.weights[:1], *reference.biases[:1],
                                         *reference.weights[1:], *reference.biases[1:]],
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    fused.check_dtypes()


def test_the_packed_layout_gives_the_plain_python_step_the_same_arrays() -> None:
    """packed_step cuts the same views numba does: run it in plain Python on a copy."""
    spec = xor_spec()
    params = numpy_ref.init_linear_params(spec.sizes, spec.dtype)
    x, y = numpy_ref.make_batch(spec)
    fused = numba_fused.NumbaFusedMLP(spec, params, x, y, 0.5)
    state = fused.state.copy()
    python_step = numba_fused.make_packed_step(numba_fused.xor_step)
    want = python_step(state, fused.dims)
    fused.step()
    assert fused.loss_value() == pytest.approx(float(want), rel=1e-6)
    np.testing.assert_allclose(fused.state, state, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(fused.views["x"], x)
    assert fused.views["lr"][0] == np.float32(0.5)


@pytest.mark.parametrize(
    "spec",
    [xor_spec(np.float64),
     numpy_ref.MLPSpec("small", (64, 128, 128, 10), 64, "cross_entropy", np.dtype(np.float32))],
)
def test_the_hand_fused_step_refuses_workloads_it_was_not_written_for(spec) -> None:
    assert numba_fused.supports(spec) is not None
    with pytest.raises(ValueError, match=numba_fused.NAME):
        numba_fused.NumbaFusedMLP(spec, [], np.zeros(1), np.zeros(1))


def test_xor_f32_has_the_limit_row_and_lists_absent_peers_with_a_reason(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax fails, as when not installed
    ctx = context()
    result = run_workload("xor-f32", ctx)
    assert ctx.failures == []
    assert numba_fused.NAME in result.measurements
    assert result.skipped[peers.TORCH_COMPILE] == "torch not importable: left out of this test"
    assert result.skipped[peers.JAX_JIT].startswith("jax not installed")
    xor64 = run_workload("xor-f64", context())
    assert numba_fused.NAME not in xor64.measurements | xor64.skipped


def test_no_peers_leaves_the_peer_columns_out_and_says_so() -> None:
    ctx = context(peers_on=False)
    result = run_workload("xor-f32", ctx)
    for name in peers.NAMES:
        assert result.skipped[name] == "left out by --no-peers"
        assert name not in result.measurements


# --------------------------------------------------------------------------- torch.compile


def test_a_torch_compile_that_fails_here_is_a_skip_with_its_error_not_a_failure(
    monkeypatch,
) -> None:
    torch = pytest.importorskip("torch")

    def failing_compile(fn, *args, **kwargs):
        def compiled(*a, **k):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore")

        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    monkeypatch.setitem(sys.modules, "jax", None)
    ctx = context(torch_error=None)
    result = run_workload("xor-f32", ctx)
    assert ctx.failures == []
    assert peers.TORCH_COMPILE not in result.measurements
    assert result.skipped[peers.TORCH_COMPILE] == (
        "torch.compile failed on this machine: RuntimeError: InvalidCxxCompiler: No working "
        "C++ compiler found"
    )
    assert "torch" in result.measurements


def test_a_torch_compile_column_is_checked_and_timed_when_it_compiles(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    wrapped = []
    monkeypatch.setattr(torch, "compile", lambda fn: wrapped.append(fn) or fn)  # eager stand-in
    monkeypatch.setitem(sys.modules, "jax", None)
    ctx = context(torch_error=None)
    result = run_workload("xor-f64", ctx)
    assert ctx.failures == []
    assert peers.TORCH_COMPILE in result.measurements and len(wrapped) == 1


def test_a_torch_compile_column_with_wrong_numbers_fails_its_check(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch, "compile", lambda fn: lambda *a: fn(*a) * 1.01)
    monkeypatch.setitem(sys.modules, "jax", None)
    ctx = context(torch_error=None)
    result = run_workload("xor-f64", ctx)
    assert peers.TORCH_COMPILE not in result.measurements
    assert [f for f in ctx.failures if peers.TORCH_COMPILE in f]


def test_a_jax_failure_while_compiling_is_a_skip() -> None:
    class Broken(peers._CompiledOnFirstCall):
        def step(self) -> None:
            self._guarded(self._fail, peers.JAX_JIT)

        def _fail(self) -> None:
            raise ValueError("XlaRuntimeError: no CPU backend")

    with pytest.raises(Skip, match="jax.jit failed on this machine: ValueError: XlaRuntime"):
        Broken().step()


# --------------------------------------------------------------------------- realistic steps


@pytest.mark.parametrize("spec", [realistic.CNNSpec(), realistic.AccumSpec()],
                         ids=lambda s: s.name)
def test_realistic_steps_give_torchs_losses_with_dropout_off(spec) -> None:
    pytest.importorskip("torch")
    state = realistic.initial_state(spec)
    x, y = spec.data()
    ours, theirs = realistic.TinynetStep(spec, state, x, y), realistic.TorchStep(spec, state, x, y)
    for impl in (ours, theirs):
        impl.train(False)
    for _ in range(4):
        ours.step()
        theirs.step()
        assert ours.loss_value() == pytest.approx(theirs.loss_value(), rel=1e-4)
    for (name, p), (_, q) in zip(ours.model.named_parameters(), theirs.model.named_parameters(),
                                 strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    ours.check_dtypes()


def test_the_accumulated_mlp_really_clips() -> None:
    """max_norm is below the gradient norm of the first step, so clip_grad_norm_ acts."""
    spec = realistic.AccumSpec()
    step = realistic.TinynetStep(spec, realistic.initial_state(spec), *spec.data())
    tn = step.lib
    step.opt.zero_grad()
    k = spec.micro_batches
    for xb, yb in zip(step.batch[:k], step.batch[k:], strict=True):
        (tn.nn.functional.cross_entropy(step.model(xb), yb) / k).backward()
    norm = float(tn.nn.utils.clip_grad_norm_(step.model.parameters(), float("inf")))
    assert norm > 2 * spec.max_norm


def test_the_cnn_step_uses_dropout_in_training_mode() -> None:
    spec = realistic.CNNSpec()
    step = realistic.TinynetStep(spec, realistic.initial_state(spec), *spec.data())
    x = step.batch[0]
    step.train(True)
    a, b = step.model(x).data, step.model(x).data
    assert not np.array_equal(a, b)
    step.train(False)
    np.testing.assert_array_equal(step.model(x).data, step.model(x).data)


@pytest.mark.parametrize("name", ["cnn-dropout-adam-f32", "mlp-adamw-accum-f32"])
def test_a_realistic_workload_checks_against_torch_and_records_a_compile_refusal(
    name,
) -> None:
    pytest.importorskip("torch")
    ctx = context(torch_error=None, peers_on=False)
    result = run_workload(name, ctx)
    compiled = realistic.COMPILED
    # tn.compile is another piece of work: its column may be measured, refused (skipped with
    # the CompileError) or caught computing other numbers (a failure naming it); nothing else
    # may fail.
    assert [f for f in ctx.failures if compiled not in f] == []
    assert {"tinynet", "torch"} <= set(result.measurements)
    assert result.baselines == ["tinynet", "torch"]
    if hasattr(tinynet, "compile") and compiled not in result.measurements:
        assert result.skipped[compiled].startswith(
            ("tn.compile refuses this step today: ", "FAILED check: ")
        )
    assert "against torch" in result.notes[-1]


def test_a_compile_error_becomes_the_compiled_columns_skip_reason(monkeypatch) -> None:
    def refusing(fn, **options):
        def call(*args):
            raise tinynet.CompileError("tn.compile(step): dropout is not supported yet")

        return call

    monkeypatch.setattr(tinynet, "compile", refusing, raising=False)
    ctx = context()  # no torch: tinynet eager is the reference
    result = run_workload("cnn-dropout-adam-f32", ctx)
    assert ctx.failures == []
    assert result.skipped[realistic.COMPILED] == (
        "tn.compile refuses this step today: tn.compile(step): dropout is not supported yet"
    )
    assert "against tinynet" in result.notes[-1]


def test_a_compiled_step_that_ignores_model_train_fails_the_check(monkeypatch) -> None:
    """A compiler that kept replaying the dropout-off program after model.train()."""
    real_train = realistic.TinynetStep.train

    def train(self, mode: bool) -> None:
        real_train(self, False if isinstance(self, realistic.TinynetCompiledStep) else mode)

    monkeypatch.setattr(realistic.TinynetStep, "train", train)
    monkeypatch.setattr(tinynet, "compile", lambda fn, **options: fn, raising=False)
    ctx = context()
    result = run_workload("cnn-dropout-adam-f32", ctx)
    assert "tinynet" in result.measurements
    assert realistic.COMPILED not in result.measurements
    assert [f for f in ctx.failures if "did not switch to training mode" in f]


def test_a_realistic_compiled_step_with_wrong_numbers_fails(monkeypatch) -> None:
    monkeypatch.setattr(tinynet, "compile", lambda fn, **options: lambda *a: fn(*a) * 1.5,
                        raising=False)
    ctx = context()
    result = run_workload("mlp-adamw-accum-f32", ctx)
    assert realistic.COMPILED not in result.measurements
    assert [f for f in ctx.failures if realistic.COMPILED in f]


# --------------------------------------------------------------------------- first fast step


def test_first_fast_step_summary_finds_the_first_numba_replay() -> None:
    calls = [[2.0, "eager"], [0.01, "eager"], [0.002, "replay-other"], [0.06, "replay-numba"],
             [1e-5, "replay-numba"]]
    got = first_fast_step.summarize(calls)
    assert got["first_call_s"] == 2.0
    assert got["first_numba_replay_call"] == 4
    assert got["first_numba_replay_s"] == 0.06
    assert got["time_to_first_fast_step_s"] == pytest.approx(2.072)
    assert got["slowest_call_s"] == 2.0 and got["calls_over_50ms"] == 2
    none = first_fast_step.summarize([[0.5, "eager"], [0.01, "replay-other"]])
    assert none["first_numba_replay_call"] is None and none["time_to_first_fast_step_s"] is None


def test_first_fast_step_runs_cold_then_warm_on_the_same_fresh_caches() -> None:
    envs = []

    def fake_run(script: str, env: dict) -> str:
        compile(script, "<first-fast-step>", "exec")  # the formatted script is valid Python
        envs.append({k: env[k] for k in ("NUMBA_CACHE_DIR", "TINYNET_CACHE_DIR")})
        if len(envs) == 2:
            raise RuntimeError("Segmentation fault")
        return json.dumps({"import_s": 0.1, "calls": [[1.5, "eager"], [0.001, "replay-numba"]]})

    measured = first_fast_step.measure(fake_run)
    assert envs[0] == envs[1] and "first-fast-step" in envs[0]["NUMBA_CACHE_DIR"]
    assert envs[0]["NUMBA_CACHE_DIR"] != envs[0]["TINYNET_CACHE_DIR"]
    assert measured["cold"]["first_numba_replay_call"] == 2
    assert measured["warm"] == {"error": "Segmentation fault"}
    text = "\n".join(first_fast_step.format_lines(measured))
    assert "cold (empty numba and tinynet caches): first call 1.5 s" in text
    assert "first numba replay at call 2, waiting 1 ms" in text
    assert "warm (the caches the cold run filled): FAILED (Segmentation fault)" in text


def test_the_startup_section_prints_the_first_fast_step() -> None:
    startup = {"import_numpy_s": 0.08, "import_tinynet_s": 0.14,
               "first_step_skipped": "not measured in this test"}
    assert "time to first fast step" not in workloads.format_startup(startup)
    startup = {"import_numpy_s": 0.08, "import_tinynet_s": 0.14, "first_step_workload": "m",
               "cold_numba_cache": {"error": "x"}, "warm_numba_cache": {"error": "x"},
               "first_fast_step": {"skipped": "tinynet has no compile"}}
    assert "time to first fast step: skipped (tinynet has no compile)" in (
        workloads.format_startup(startup))


@pytest.mark.parametrize("sizes, loss", [((784, 512, 512, 10), "cross_entropy"),
                                         ((2, 4, 1), "mse")])
def test_the_matmuls_yardstick_runs_exactly_the_numpy_step_s_products(
        monkeypatch: pytest.MonkeyPatch, sizes: tuple, loss: str) -> None:
    """numpy-matmuls (issue 20's "its matmuls alone") times the same products, on the same
    shapes and layouts, as the numpy step it is the yardstick of, and nothing else."""
    spec = numpy_ref.MLPSpec("m", sizes, 8, loss, np.dtype(np.float32))
    params = numpy_ref.init_linear_params(spec.sizes, spec.dtype)
    x, y = numpy_ref.make_batch(spec)
    seen: list[tuple] = []
    real = np.matmul

    def matmul(a, b, out=None):
        seen.append((a.shape, a.strides, b.shape, b.strides, out.shape))
        return real(a, b, out=out)

    steps = []
    for kind in (numpy_ref.NumpyMLP, numpy_ref.NumpyMatmuls):
        impl = kind(spec, params, x, y, 0.1)
        monkeypatch.setattr(numpy_ref.np, "matmul", matmul)
        impl.step()
        monkeypatch.undo()
        steps.append(list(seen))
        seen.clear()
    assert steps[0] == steps[1] and len(steps[0]) == 3 * (len(sizes) - 1) - 1
