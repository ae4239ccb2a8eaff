"""tn.compile writes each segment in a canonical form and compiles each distinct text once.

An unrolled time loop makes one segment (or a few) per time step, the same code but for which
values it touches. ``codegen.canonical`` numbers the names locally and the arrays travel as
arguments or addresses, so those segments share one file and one numba function: the number
of functions numba compiles does not grow with the sequence length (issue 22). Counted from
the Runner (``segment_files``, ``segment_digests``) and the functions the driver module holds,
not timed.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from compile_support import close

import tinynet as tn
from tinynet import kernels, nn
from tinynet.compile import codegen

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


def test_canonical_numbers_names_locally_in_order_of_first_use() -> None:
    a = ("def segment(v7, v3, addresses4, numbers2):\n"
         "    v12 = carray(address(addresses4[0]), (2,), np.float32)\n"
         "    f7 = v7.reshape(-1)\n    s3 = v3[0]\n"
         "    t12 = _sigmoid_f32(f7[e] * s3) + np.float32(0.5)\n    rule1(v12, numbers2)\n")
    b = a.replace("v7", "v70").replace("f7", "f70").replace("v3", "v30").replace(
        "s3", "s30").replace("v12", "v5").replace("t12", "t5").replace("addresses4",
                                                                          "addresses9")
    text_a, names_a = codegen.canonical(a)
    text_b, names_b = codegen.canonical(b)
    assert text_a == text_b  # the same code, whatever the values are called
    assert names_a == {"v7": "v0", "v3": "v1", "v12": "v2", "numbers2": "numbers0",
                       "f7": "f0", "s3": "s0", "t12": "t0", "rule1": "rule0"}
    assert "def segment(v0, v1, addresses, numbers0):" in text_a
    # dtypes, library names and loop indices are not names to renumber
    assert "np.float32(0.5)" in text_a and "_sigmoid_f32(" in text_a
    c = a.replace("np.float32(0.5)", "np.float32(0.25)")  # a different constant: other code
    assert codegen.canonical(c)[0] != text_a
    d = a.replace("f7[e] * s3", "f7[e] * f7[e]")  # a different data flow: other code
    assert codegen.canonical(d)[0] != text_a


class Recurrent(nn.Module):
    """An LSTM over the sequence, then a linear read-out of every step (the LSTM example's
    model, smaller)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, 3, batch_first=True)
        self.head = nn.Linear(3, 1)

    def forward(self, x: tn.Tensor) -> tn.Tensor:
        out, _ = self.lstm(x)
        return self.head(out).squeeze(-1)


def _twins(steps: int, seed: int) -> tuple[Any, Any, Any, list[tuple[Any, Any]]]:
    tn.manual_seed(seed)
    eager = Recurrent().double()
    compiled = copy.deepcopy(eager)
    rng = np.random.default_rng(seed)
    data = [(tn.tensor(rng.standard_normal((2, steps, 2))),
             tn.tensor(rng.standard_normal((2, steps)))) for _ in range(4)]

    def step_of(model: Any) -> Any:
        optimizer = tn.optim.Adam(model.parameters(), lr=0.01)

        def step(x: Any, y: Any) -> Any:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            return loss
        return step

    return eager, compiled, (step_of(eager), tn.compile(step_of(compiled))), data


def test_unrolled_recurrent_step_equals_eager_and_compiles_distinct_segments_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 6
    # Every matmul through BLAS: then each time step's elementwise work is its own segment
    # (the LSTM example's shapes do this; these tiny ones would otherwise fuse into one loop).
    monkeypatch.setattr(kernels, "SMALL_MATMUL", 0)
    eager, compiled, (eager_step, compiled_step), data = _twins(steps, seed=steps)
    for x, y in data:
        want = eager_step(x, y)
        got = compiled_step(x, y)
        close(got.data, want.data, "loss")
        for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
            close(q.data, p.data, name)
            close(q.grad.data, p.grad.data, f"{name}.grad")
    assert compiled_step.replays >= 2
    runner = compiled_step.last.runner
    if not kernels.numba_enabled():  # replayed step by step: nothing generated to count
        assert runner is None
        return
    segments, distinct = len(runner.segment_digests), len(runner.segment_files)
    # the forward and the backward of each time step make segments, but the middle time
    # steps share theirs (test_distinct_segments_do_not_grow_with_the_sequence_length)
    assert segments >= 2 * steps and distinct <= segments - steps
    functions = {id(getattr(runner.module, f"segment{n}")) for n in range(segments)}
    assert len(functions) == distinct  # one numba function per distinct text
    for function in [getattr(runner.module, f"segment{n}") for n in range(segments)]:
        assert len(function.signatures) == 1  # each compiled once, for one set of types


def test_distinct_segments_do_not_grow_with_the_sequence_length(
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not kernels.numba_enabled():
        pytest.skip("counts numba's generated functions; with TINYNET_NUMBA=0 compile "
                    "replays step by step (compiled == eager is checked above)")
    monkeypatch.setattr(kernels, "SMALL_MATMUL", 0)
    counts = {}
    for steps in (4, 9):
        _, _, (_, compiled_step), data = _twins(steps, seed=0)
        for x, y in data[:2]:  # the first call makes optimizer state, the second is traced
            compiled_step(x, y)
        runner = compiled_step.last.runner
        counts[steps] = (len(runner.segment_digests), len(runner.segment_files))
    assert counts[9][0] > counts[4][0]  # more time steps, more segments
    assert counts[9][1] == counts[4][1]  # the same distinct ones


def test_a_segment_names_the_kernels_it_was_made_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba's disk cache checks a cached segment against the segment's own file alone, and a
    segment inlines the kernels it calls: its text carries a digest of the kernels' sources,
    so a changed kernel (a new tinynet) gives a new file, never the old machine code."""
    fingerprint = codegen.kernels_fingerprint()
    assert len(fingerprint) == 16 and fingerprint == codegen.kernels_fingerprint.__wrapped__()
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1))
    opt = tn.optim.SGD(model.parameters(), lr=0.1)

    def step(x: tn.Tensor, y: tn.Tensor) -> tn.Tensor:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = tn.randn(5, 3), tn.randn(5, 1)
    compiled_step = tn.compile(step, background=False)
    for _ in range(3):
        compiled_step(x, y)
    runner = compiled_step.last.runner
    if not kernels.numba_enabled():  # replayed step by step: nothing generated
        assert runner is None
        return
    texts = [text for _, text in runner.segment_files.values()]
    assert texts and all(f"# the kernels it calls, as of: {fingerprint}\n" in t for t in texts)
    # another kernel source: another text, so another file and another cache entry
    codegen.kernels_fingerprint.cache_clear()
    monkeypatch.setattr(codegen.Path, "read_bytes", lambda self: b"changed " + self.name.encode())
    try:
        assert codegen.kernels_fingerprint() != fingerprint
    finally:
        monkeypatch.undo()
        codegen.kernels_fingerprint.cache_clear()
    assert codegen.kernels_fingerprint() == fingerprint
