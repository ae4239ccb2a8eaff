"""Chapter 9 of the story: the synthetic data, the LSTM adder, the GPT's pieces, its figures,
the example scripts, the demo's section, and the steps under tn.compile (equal to eager)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinynet as tn
from tinynet import datasets_text, story_sequences

ROOT = Path(__file__).resolve().parent.parent


# ---- data -----------------------------------------------------------------------------------


def test_addition_text_writes_the_sum_least_significant_digit_first() -> None:
    assert datasets_text.addition_text(347, 589) == "347+589=6390"
    assert datasets_text.addition_text(5, 7) == "005+007=2100"
    assert datasets_text.decode_answer("6390") == 936


def test_addition_batch_matches_the_text_form() -> None:
    pairs = np.random.default_rng(0).integers(0, 1000, (50, 2))
    tokens = datasets_text.addition_batch(pairs)
    for (a, b), row in zip(pairs, tokens, strict=True):
        assert datasets_text.decode(row) == datasets_text.addition_text(int(a), int(b))


def test_training_pairs_never_include_held_out_problems() -> None:
    test_pairs, held_out = datasets_text.addition_split(n_test=5000, seed=1)
    assert len({tuple(p) for p in test_pairs.tolist()}) == 5000
    train = datasets_text.sample_training_pairs(20_000, held_out, np.random.default_rng(2))
    assert not held_out[train[:, 0], train[:, 1]].any()


def test_binary_addition_targets_are_the_sums_bits() -> None:
    x, y = datasets_text.binary_addition(100, 8, np.random.default_rng(0))
    weights = 2 ** np.arange(9)
    a, b, s = x[:, :, 0] @ weights, x[:, :, 1] @ weights, y @ weights
    np.testing.assert_array_equal(a + b, s)
    assert x.shape == (100, 9, 2) and x[:, -1].sum() == 0  # a last step for the carry


# ---- models ---------------------------------------------------------------------------------


def test_lstm_learns_binary_addition_and_generalises_to_longer_numbers() -> None:
    run = story_sequences.train_bit_adder(steps=200, seed=0)
    assert np.mean(run.losses[-10:]) < 0.1 < np.mean(run.losses[:10])
    assert run.accuracy >= 0.95  # 16-bit sums, trained on 8-bit ones


def test_lstm_gates_recomputed_match_the_layer_output() -> None:
    tn.manual_seed(0)
    lstm = tn.nn.LSTM(2, 5)
    x = tn.randn(7, 2)
    gates = story_sequences.lstm_gates_over_time(lstm, x)
    assert list(gates) == list(story_sequences.GATE_NAMES)
    h = gates["output gate o"] * np.tanh(gates["cell state c"])
    with tn.no_grad():
        np.testing.assert_allclose(h, lstm(x)[0].data, rtol=1e-5, atol=1e-6)


def test_gpt_step_lowers_the_loss_and_its_attention_is_causal() -> None:
    run = story_sequences.train_gpt(steps=15, seed=0, compiled=False, n_test=50)
    assert np.mean(run.losses[-3:]) < run.losses[0]
    assert run.losses[0] == pytest.approx(np.log(12), abs=0.3)  # a uniform guess at first
    weights = story_sequences.attention_map(run.model, "347+589=6390", layer=1, head=2)
    assert weights.shape == (11, 11)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(np.triu(weights, 1) == 0)  # nothing looks ahead
    text = story_sequences.sample_text(run.model, "123+456=", 4,
                                       generator=np.random.default_rng(0))
    assert text.startswith("123+456=") and len(text) == 12
    assert set(text[8:]) <= set(datasets_text.ALPHABET)


def test_exact_match_counts_a_perfect_writer_as_perfect(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = np.random.default_rng(0).integers(0, 1000, (30, 2))
    truth = datasets_text.addition_batch(pairs)[:, -4:]
    monkeypatch.setattr(story_sequences, "greedy_answers", lambda m, p, n: truth)
    model = story_sequences.GPT(12, 11, 8, 2, 1, 8)
    assert story_sequences.exact_match(model, pairs, 3) == 1.0
    monkeypatch.setattr(story_sequences, "greedy_answers", lambda m, p, n: truth[::-1])
    assert story_sequences.exact_match(model, pairs, 3) < 0.2


# ---- tn.compile ---------------------------------------------------------------------------


def _lstm_step(model, opt):  # noqa: ANN001, ANN202
    def step(x, y):  # noqa: ANN001, ANN202
        opt.zero_grad()
        loss = tn.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


@pytest.mark.parametrize("kind", ["lstm", "gpt"])
def test_sequence_training_steps_compiled_equal_eager(kind: str) -> None:
    """The unrolled LSTM and the GPT (attention, embedding backward) as compiled steps (the
    interpreting backend: no code generation in the test) give eager mode's losses and
    weights, step after step."""
    results = []
    for compiled in (False, True):
        tn.manual_seed(0)
        rng = np.random.default_rng(0)
        if kind == "lstm":
            model = story_sequences.BitAdder(6)
            opt = tn.optim.Adam(model.parameters(), lr=0.01)
            step = _lstm_step(model, opt)
            batches = [tuple(tn.tensor(a) for a in datasets_text.binary_addition(8, 5, rng))
                       for _ in range(4)]
        else:
            model = story_sequences.GPT(12, 11, 8, 2, 2, 16)
            opt = tn.optim.Adam(model.parameters(), lr=0.01)
            step = story_sequences.make_gpt_step(model, opt, 4)
            _, held = datasets_text.addition_split(10)
            batches = [(tn.tensor(datasets_text.addition_batch(
                datasets_text.sample_training_pairs(8, held, rng))),) for _ in range(4)]
        if compiled:
            step = tn.compile(step, backend="interpret")
        losses = [step(*batch).item() for batch in batches]
        results.append((losses, [p.data.copy() for p in model.parameters()]))
    (eager_losses, eager_params), (compiled_losses, compiled_params) = results
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-6)
    for a, b in zip(compiled_params, eager_params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    return float(np.abs(a - b).max(initial=0.0)) / scale


@pytest.mark.parametrize("kind", ["lstm", "gpt"])
def test_float64_compiled_steps_equal_eager_within_1e10(kind: str) -> None:
    """The examples' training steps (the LSTM adder with Adam; the GPT with AdamW, its dropout
    as the example uses it, 0) in float64 under tn.compile's generated code: after each of a
    few steps the loss and every parameter equal eager mode's within 1e-10 relative."""
    results = []
    for compiled in (False, True):
        tn.manual_seed(1)
        rng = np.random.default_rng(1)
        if kind == "lstm":
            model = story_sequences.BitAdder(5).double()
            opt = tn.optim.Adam(model.parameters(), lr=0.01)
            step = _lstm_step(model, opt)
            batches = [tuple(tn.tensor(a.astype(np.float64)) for a in
                             datasets_text.binary_addition(6, 4, rng)) for _ in range(4)]
        else:
            model = story_sequences.GPT(12, 11, 8, 2, 2, 16).double()
            opt = tn.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
            step = story_sequences.make_gpt_step(model, opt, 4)
            _, held = datasets_text.addition_split(10)
            batches = [(tn.tensor(datasets_text.addition_batch(
                datasets_text.sample_training_pairs(6, held, rng))),) for _ in range(4)]
        if compiled:
            step = tn.compile(step)
        record = []
        for batch in batches:
            loss = step(*batch)
            record.append((loss.item(), {k: p.data.copy()
                                         for k, p in model.named_parameters()}))
        if compiled:
            assert step.replays >= 2, step  # the later steps replayed generated code
        results.append(record)
    for (eager_loss, eager_params), (loss, params) in zip(*results, strict=True):
        assert abs(loss - eager_loss) <= 1e-10 * abs(eager_loss)
        for name, value in params.items():
            assert value.dtype == np.float64
            assert _relative_error(value, eager_params[name]) <= 1e-10, name


# ---- figures, examples, demo ----------------------------------------------------------------


def _png(path: str) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


def test_figures_draw_the_curve_the_attention_and_the_gates(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tinynet import plotting_seq

    lstm = story_sequences.train_bit_adder(steps=30, seed=0)
    gpt = story_sequences.train_gpt(steps=3, seed=0, compiled=False, n_test=20)
    paths = plotting_seq.lstm_figures(lstm, tmp_path) + plotting_seq.gpt_figures(gpt, tmp_path)
    assert sorted(os.path.basename(p) for p in paths) == sorted(
        ["lstm_training_curve.png", "lstm_gates.png", "gpt_training_curve.png",
         "gpt_attention.png"])
    for path in paths:
        _png(path)
    ax = plotting_seq.plot_training_curve(np.linspace(2, 1, 120), smooth=20)
    assert len(ax.lines) == 2 and len(ax.lines[1].get_xdata()) == 101
    with pytest.raises(ValueError, match="plot_attention"):
        plotting_seq.plot_attention(np.ones((3, 4)), list("abc"))
    axes = plotting_seq.plot_lstm_gates({"input gate i": np.zeros((5, 3)),
                                         "cell state c": np.ones((5, 3)) * 3})
    assert len(axes) == 2
    assert axes[1].images[0].get_clim() == (-3.0, 3.0)  # the cell state is signed


def _run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_lstm_example_runs_and_reports_its_accuracy() -> None:
    proc = _run_script("examples/09_lstm_binary_addition.py", "--steps", "40")
    assert proc.returncode == 0, proc.stderr
    assert "exact sums on 1000 held-out 16-bit additions" in proc.stdout
    assert "seed 0" in proc.stdout


def test_gpt_example_runs_prints_seed_time_accuracy_and_samples() -> None:
    proc = _run_script("examples/09_gpt_addition.py", "--steps", "5", "--seed", "3", "--eager")
    assert proc.returncode == 0, proc.stderr
    assert "seed 3" in proc.stdout and "held-out exact match" in proc.stdout
    assert "s of training" in proc.stdout
    assert proc.stdout.count("sampled:") == 5


def test_demo_section_nine_tells_both_parts() -> None:
    from tinynet.__main__ import section_sequences

    said: list[str] = []
    results = section_sequences(said.append, 0)
    text = "\n".join(said)
    assert "9. Sequences" in text and "LSTM" in text and "GPT" in text
    assert results["lstm"].accuracy >= 0.9
    assert "sampled: 347+589=" in text
