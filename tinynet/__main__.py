"""``python -m tinynet demo``: from the perceptron to deep networks, in the terminal.

    python -m tinynet demo                 # the story as text (about 10 s)
    python -m tinynet demo --plots DIR     # ... and PNG figures in DIR (needs matplotlib)

The story, one section each:
  1. the McCulloch-Pitts neuron (1943): fixed weights, a threshold, truth tables;
  2. Rosenblatt's perceptron (1958) learns AND, OR and NAND by its learning rule;
  3. ... and fails on XOR: no line separates XOR's classes, so the rule never settles;
  4. two layers of threshold units compute XOR = AND(NAND, OR), with hand-set weights;
  5. gradient descent cannot set those weights through a step (its derivative is 0), but
     it can with a surrogate derivative -- or with a smooth activation instead:
  6. a multi-layer perceptron with sigmoids learns XOR by backpropagation;
  7. a deep network (two hidden layers) learns XOR and the two-moons data set;
  8. convolution and pooling read digits; batch norm trains a deep net;
  9. sequences: an LSTM adds binary numbers, a tiny GPT starts learning addition as text.

The training functions here (``train_xor_mlp``, ``train_step_network``, ``train_deep_moons``)
are the recipes the tutorial documents and the tests measure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinynet as tn
from tinynet.perceptron import (
    PERCEPTRON_GATES,
    FitResult,
    Perceptron,
    format_truth_table,
    mcp_gate,
    truth_table,
    xor_network,
)

Say = Callable[[str], None]

# The documented budget for an MLP on XOR (docs/tutorial.md; measured in tests/test_story.py).
XOR_RECIPE: dict[str, Any] = {
    "hidden": 4,  # Linear(2, 4), Sigmoid(), Linear(4, 1), Sigmoid()
    "lr": 1.0,  # SGD, full batch (all four points every step)
    "momentum": 0.9,
    "steps": 500,  # at most; most seeds are done in about 100
    "target_loss": 0.05,  # "learned": all four points right and the mean BCE below this
}
PERCEPTRON_RECIPE: dict[str, Any] = {"lr": 0.1, "max_epochs": 100}
MOONS_RECIPE: dict[str, Any] = {
    "n_train": 200, "n_test": 1000, "noise": 0.15, "hidden": 16, "lr": 0.02, "steps": 300,
}


# ----------------------------------------------------------------------------- training


@dataclass
class Training:
    """A trained model, its loss after each step, and how it did."""

    model: Any
    losses: list[float] = field(default_factory=list)
    accuracy: float = 0.0
    steps: int = 0
    first_layer_change: float = float("nan")  # max |W_after - W_before| of the first Linear


def binary_accuracy(scores: Any, target: Any, threshold: float = 0.5) -> float:
    """Fraction of rows where (score >= threshold) equals the 0/1 target."""
    s = np.asarray(scores.data if isinstance(scores, tn.Tensor) else scores).reshape(-1)
    t = np.asarray(target.data if isinstance(target, tn.Tensor) else target).reshape(-1)
    return float(np.mean((s >= threshold) == (t > 0.5)))


def fit_full_batch(
    model: Any,
    X: tn.Tensor,
    target: tn.Tensor,
    loss_fn: Callable[[tn.Tensor, tn.Tensor], tn.Tensor],
    optimizer: Any,
    steps: int,
    done: Callable[[tn.Tensor, float], bool] | None = None,
    on_step: Callable[[int, float, tn.Tensor], None] | None = None,
) -> list[float]:
    """Gradient descent on the whole data set at once, ``steps`` times (or until ``done(output,
    loss)`` says so). Each step: forward, loss, backward, update. Returns the losses."""
    losses: list[float] = []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        output = model(X)
        loss = loss_fn(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1], output)
        if done is not None and done(output, losses[-1]):
            break
    return losses


def xor_tensors() -> tuple[tn.Tensor, tn.Tensor]:
    """XOR's four inputs (4, 2) and targets as a column (4, 1), float32."""
    X, y = tn.data.logic_gate("xor")
    return tn.tensor(X.astype(np.float32)), tn.tensor(y.reshape(4, 1).astype(np.float32))


def train_xor_mlp(
    seed: int,
    hidden: int = XOR_RECIPE["hidden"],
    lr: float = XOR_RECIPE["lr"],
    momentum: float = XOR_RECIPE["momentum"],
    steps: int = XOR_RECIPE["steps"],
    target_loss: float | None = None,
    on_step: Callable[[int, float, tn.Tensor], None] | None = None,
) -> Training:
    """The documented XOR recipe: Sequential(Linear(2, h), Sigmoid(), Linear(h, 1), Sigmoid()),
    binary cross-entropy, SGD with momentum, full batch. With ``target_loss`` it stops once all
    four points are right and the loss is below it; otherwise it runs all ``steps``."""
    nn, F = tn.nn, tn.nn.functional
    X, t = xor_tensors()
    tn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, hidden), nn.Sigmoid(), nn.Linear(hidden, 1), nn.Sigmoid())
    optimizer = tn.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def done(output: tn.Tensor, loss: float) -> bool:
        return target_loss is not None and loss < target_loss and binary_accuracy(output, t) == 1

    losses = fit_full_batch(model, X, t, F.binary_cross_entropy, optimizer, steps, done, on_step)
    with tn.no_grad():
        accuracy = binary_accuracy(model(X), t)
    return Training(model, losses, accuracy, len(losses))


def train_step_network(
    seed: int, surrogate: str | None, hidden: int = 4, lr: float = 1.0, steps: int = 300
) -> Training:
    """XOR with a hidden layer of step units, Linear(2, h), Step(surrogate), Linear(h, 1),
    Sigmoid(), trained like the MLP. With ``surrogate=None`` the step's true derivative (0)
    stops every gradient at the hidden layer: the first Linear never changes."""
    nn, F = tn.nn, tn.nn.functional
    X, t = xor_tensors()
    tn.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(2, hidden), nn.Step(surrogate=surrogate), nn.Linear(hidden, 1), nn.Sigmoid()
    )
    optimizer = tn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    before = model[0].weight.detach().numpy().copy()
    losses = fit_full_batch(model, X, t, F.binary_cross_entropy, optimizer, steps)
    with tn.no_grad():
        accuracy = binary_accuracy(model(X), t)
    change = float(np.abs(model[0].weight.detach().numpy() - before).max())
    return Training(model, losses, accuracy, len(losses), change)


def deep_network(hidden: int, activation: Callable[[], Any] | None = None) -> Any:
    """Two hidden layers: Linear(2, h), act, Linear(h, h), act, Linear(h, 1) -> a logit."""
    nn = tn.nn
    act = activation or nn.ReLU
    return nn.Sequential(
        nn.Linear(2, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, 1)
    )


def train_deep(
    X: Any, y: Any, seed: int, hidden: int, lr: float, steps: int,
    on_step: Callable[[int, float, tn.Tensor], None] | None = None,
) -> Training:
    """A deep network on (X (N, 2), y (N,) in {0, 1}): BCE on logits, Adam, full batch."""
    F = tn.nn.functional
    Xt = tn.tensor(np.asarray(X, dtype=np.float32))
    t = tn.tensor(np.asarray(y, dtype=np.float32).reshape(-1, 1))
    tn.manual_seed(seed)
    model = deep_network(hidden)
    optimizer = tn.optim.Adam(model.parameters(), lr=lr)
    losses = fit_full_batch(
        model, Xt, t, F.binary_cross_entropy_with_logits, optimizer, steps, on_step=on_step
    )
    with tn.no_grad():
        accuracy = binary_accuracy(model(Xt), t, threshold=0.0)  # logit 0 = probability 0.5
    return Training(model, losses, accuracy, len(losses))


def predict_proba(model: Any, logits: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A (M, 2) array -> (M,) P(class 1) function for a 2-input model (for plots)."""

    def f(points: np.ndarray) -> np.ndarray:
        with tn.no_grad():
            out = model(tn.tensor(np.asarray(points, dtype=np.float32)))
        if logits:
            out = out.sigmoid()
        return out.numpy().reshape(-1)

    return f


# ----------------------------------------------------------------------------- the story


def _header(say: Say, title: str) -> None:
    say("")
    say(title)
    say("=" * len(title))


def _progress(say: Say, steps: int, every: int) -> Callable[[int, float, tn.Tensor], None]:
    def report(step: int, loss: float, output: tn.Tensor) -> None:
        if step == 1 or step % every == 0 or step == steps:
            say(f"  step {step:4d}/{steps}   loss {loss:.4f}")

    return report


def section_mcp(say: Say) -> None:
    _header(say, "1. The McCulloch-Pitts neuron (1943)")
    say("Binary inputs, fixed weights, a threshold: it fires (1) when sum_i w_i x_i >= theta.")
    gates = {name: mcp_gate(name) for name in ("AND", "OR", "NAND")}
    for name, neuron in gates.items():
        say(f"  {name:4s} = MCPNeuron(weights={neuron.weights.astype(int).tolist()}, "
            f"threshold={neuron.threshold:g})")
    inputs, _ = truth_table(gates["AND"])
    say(_indent(format_truth_table(inputs, {n: g(inputs) for n, g in gates.items()})))
    say("Nothing here is learned: someone chose the weights and the threshold.")


def section_perceptron(say: Say, seed: int) -> dict[str, tuple[Perceptron, FitResult]]:
    _header(say, "2. Rosenblatt's perceptron (1958) learns AND, OR, NAND")
    lr, max_epochs = PERCEPTRON_RECIPE["lr"], PERCEPTRON_RECIPE["max_epochs"]
    say("Its answer is y = step(w.x + b): 1 if w.x + b >= 0, else 0. For each input x with")
    say("target t, in turn:  w <- w + lr (t - y) x,  b <- b + lr (t - y)  (no change when y = t).")
    say(f"Random starting weights (seed {seed}), lr = {lr}; an epoch is one pass over the four")
    say("inputs, and training stops after the first epoch without a mistake.")
    learned = {}
    for name in ("AND", "OR", "NAND", "XOR"):
        X, y = tn.data.logic_gate(name)
        p = Perceptron(2, lr=lr, seed=seed)
        result = p.fit(X, y, max_epochs=max_epochs)
        learned[name] = (p, result)
        if name == "XOR":
            continue
        say(f"\n  {name}: {result}")
        say(f"    w = [{p.weight[0]:+.3f}, {p.weight[1]:+.3f}], b = {p.bias:+.3f};"
            f"  the line w.x + b = 0: {_line_text(p)}")
        say(f"    mistakes per epoch: {' '.join(map(str, result.errors_per_epoch))}")
        distance, nearest = closest_point(p, X)
        say(f"    the input closest to the line: ({nearest[0]:g},{nearest[1]:g}), "
            f"at distance {distance:.3f}")
        say(_indent(format_truth_table(X, {"target": y, "learned": p.predict(X)}), 4))
    say("\n  The rule stops at the first line that gets all four right, however close it passes")
    say("  to an input: nothing in it pushes the line away from the points. (A support vector")
    say("  machine picks the line with the widest margin instead.)")
    return learned


def closest_point(p: Perceptron, X: Any) -> tuple[float, np.ndarray]:
    """The distance |w.x + b| / |w| from a perceptron's line to the nearest row of X, and
    that row."""
    X = np.asarray(X, dtype=np.float64)
    distances = np.abs(p.decision_function(X)) / np.linalg.norm(p.weight)
    i = int(np.argmin(distances))
    return float(distances[i]), X[i]


def section_xor_fails(say: Say, learned: dict[str, tuple[Perceptron, FitResult]]) -> None:
    _header(say, "3. ... and fails on XOR")
    X, y = tn.data.logic_gate("xor")
    p, result = learned["XOR"]
    wrong = int(np.sum(p.predict(X) != y))
    errors = result.errors_per_epoch
    say(f"  XOR: {result}.")
    say(f"    mistakes per epoch: {' '.join(map(str, errors[:12]))} ... "
        f"(never 0; min {errors.min()}, max {errors.max()})")
    say("  The table uses the weights fit() ended with, after the last epoch's corrections:")
    say(_indent(format_truth_table(X, {"target": y, "learned": p.predict(X)}), 4))
    say(f"  {wrong} of 4 wrong now. Mistakes are counted while an epoch runs, and each one moves")
    say("  the line at once, so an epoch's count and the final table need not agree:")
    say(f"  here {errors[-1]} corrections during the last epoch left {wrong} wrong answers.")
    say("  No line puts (0,1) and (1,0) on one side and (0,0) and (1,1) on the other, so the")
    say("  rule corrects one mistake by making another, forever (Minsky & Papert, 1969).")
    say("  fit() stops at max_epochs and reports converged=False.")


def section_two_layers(say: Say) -> None:
    _header(say, "4. Two layers of threshold units compute XOR")
    say("XOR(a, b) = AND(NAND(a, b), OR(a, b)): a hidden layer (NAND, OR), an output (AND).")
    for name in ("NAND", "OR", "AND"):
        (w0, w1), b = PERCEPTRON_GATES[name]
        say(f"  {name:4s}: w = [{w0:+g}, {w1:+g}], b = {b:+g}")
    net = xor_network()
    inputs, outputs = net.truth_table()
    hidden = net.hidden_activations(inputs)
    say(_indent(format_truth_table(inputs, {"XOR": outputs},
                                   extra={"NAND": hidden[:, 0], "OR": hidden[:, 1]})))
    say("The hidden layer maps the four inputs to (NAND, OR) = (1,0), (1,1), (1,1), (0,1):")
    say("XOR's two 1s both land on (1,1), and one line (AND) separates them from the 0s.")
    say("But these weights were set by hand. Can they be learned?")


def section_step(say: Say, seed: int) -> dict[str, Training]:
    _header(say, "5. Why a step network cannot learn by gradient descent")
    say("step'(z) = 0 wherever it exists, so backpropagation multiplies every gradient that")
    say("reaches a step unit by 0: the layers below it receive nothing and never change.")
    runs = {}
    for surrogate in (None, "sigmoid"):
        run = train_step_network(seed, surrogate)
        runs[str(surrogate)] = run
        say(f"  Linear(2, 4) -> Step(surrogate={surrogate!r}) -> Linear(4, 1) -> Sigmoid(), "
            f"{run.steps} SGD steps:")
        say(f"    first layer moved by {run.first_layer_change:.3g} (its largest weight change), "
            f"final loss {run.losses[-1]:.4f}, accuracy {run.accuracy:.0%}")
    if runs["None"].accuracy == 1:
        say("  (this seed's random first layer happened to separate XOR: only the last layer")
        say("  learned, as in Rosenblatt's machine, whose first layer was fixed and random)")
    say("A surrogate keeps the step in the forward pass but lets backward pretend it is a")
    say("sigmoid: tn.step(x, surrogate='sigmoid'), nn.Step(surrogate='straight_through').")
    say("The classic fix is simpler still: use the sigmoid itself.")
    return runs


def section_mlp(say: Say, seed: int) -> Training:
    _header(say, "6. A multi-layer perceptron learns XOR by backpropagation")
    r = XOR_RECIPE
    say(f"Sequential(Linear(2, {r['hidden']}), Sigmoid(), Linear({r['hidden']}, 1), Sigmoid()); "
        f"binary cross-entropy;")
    say(f"SGD(lr={r['lr']}, momentum={r['momentum']}), all four points per step, "
        f"{r['steps']} steps.")
    run = train_xor_mlp(seed, on_step=_progress(say, r["steps"], 100))
    X, t = xor_tensors()
    with tn.no_grad():
        p = run.model(X).numpy().reshape(-1)
    say("  p(1) is the network's output, its probability that the answer is 1; output is")
    say("  p(1) rounded at 0.5:")
    say(_indent(format_truth_table(X.numpy(), {"target": t.numpy().reshape(-1), "p(1)": p,
                                                "output": (p >= 0.5).astype(int)})))
    say(f"  final loss {run.losses[-1]:.4f}, accuracy {run.accuracy:.0%}")
    return run


def section_deep(say: Say, seed: int) -> dict[str, Any]:
    _header(say, "7. A deep network: two hidden layers")
    r = MOONS_RECIPE
    h = r["hidden"]
    say("Sequential(Linear(2, h), ReLU(), Linear(h, h), ReLU(), Linear(h, 1)), h units per")
    say("hidden layer. The last layer gives a logit z (sigmoid(z) = p(1), so z >= 0 means 1);")
    say("binary cross-entropy on the logits, Adam, all the training points at every step.")
    X, y = tn.data.logic_gate("xor")
    xor_run = train_deep(X, y, seed, hidden=8, lr=0.05, steps=200)
    say(f"  XOR, h = 8, Adam(lr=0.05), 200 steps: loss {xor_run.losses[-1]:.4f}, "
        f"accuracy {xor_run.accuracy:.0%}")
    X_train, y_train = tn.data.two_moons(r["n_train"], noise=r["noise"], seed=seed)
    X_test, y_test = tn.data.two_moons(r["n_test"], noise=r["noise"], seed=seed + 1)
    say(f"  two moons, h = {h}, Adam(lr={r['lr']}), {r['steps']} steps: {r['n_train']} training "
        f"points (noise {r['noise']})")
    run = train_deep(X_train, y_train, seed, h, r["lr"], r["steps"],
                     on_step=_progress(say, r["steps"], 100))
    with tn.no_grad():
        test_accuracy = binary_accuracy(
            run.model(tn.tensor(X_test.astype(np.float32))), y_test, threshold=0.0
        )
    say(f"  accuracy on the {r['n_train']} training points {run.accuracy:.1%}; accuracy on "
        f"{r['n_test']} new points {test_accuracy:.1%}")
    say("  (the new points come from the same two moons but were never used in training:")
    say("  they measure how well the network generalises)")
    return {"run": run, "xor": xor_run, "X": X_train, "y": y_train, "test_accuracy": test_accuracy,
            "X_test": X_test, "y_test": y_test}


def _line_text(p: Perceptron) -> str:
    """A 2-input perceptron's line as "x2 = slope x1 + intercept" (or "x1 = c" if vertical)."""
    line = p.decision_boundary()
    if line is None:
        return "none (w = 0)"
    if line.vertical:
        return f"x1 = {line.x_intercept:.4g}"
    sign = "-" if line.intercept < 0 else "+"
    return f"x2 = {line.slope:.4g} x1 {sign} {abs(line.intercept):.4g}"


def _indent(text: str, n: int = 2) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


# ------------------------------------------------------- chapter 8: convolution, batch norm


def _digit_images(seed: int) -> tuple[np.ndarray, ...] | None:
    """scikit-learn's 8x8 digits as standardised float32 (N, 1, 8, 8) images, 20% held out;
    None without scikit-learn. The file is read directly: importing sklearn.datasets (scipy
    and all) costs about 2 s, more than the chapter's training."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if not os.path.exists(path):
        return None
    table = np.loadtxt(path, delimiter=",")  # 1,797 rows: 64 pixels (0..16), then the label
    x, y = table[:, :64].reshape(-1, 1, 8, 8), table[:, 64].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:359], order[359:]
    x = ((x - x[train].mean()) / x[train].std()).astype(np.float32)
    return x[train], y[train], x[test], y[test]


def section_cnn(say: Say, seed: int) -> dict[str, Any] | None:
    """A small CNN on the digits (a few epochs; examples/08_cnn_digits.py trains it fully),
    then a deep sigmoid MLP with and without batch norm."""
    from tinynet import nn

    _header(say, "8. Convolution and pooling read digits; batch norm trains a deep net")
    data = _digit_images(seed)
    if data is None:
        say("  skipped: this chapter needs scikit-learn's digits (pip install scikit-learn)")
        return None
    x_train, y_train, x_test, y_test = data
    say("Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2),")
    say("           Conv2d(8, 16, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 10))")
    say("Each convolution is im2col (every 3x3 patch as a column) and one matrix product.")
    tn.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 10),
    )
    optimizer = tn.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    for epoch in range(4):
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), 32):
            batch = order[first:first + 32]
            optimizer.zero_grad()
            loss = loss_fn(model(tn.tensor(x_train[batch])), y_train[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with tn.no_grad():
            accuracy = float((model(tn.tensor(x_test)).data.argmax(1) == y_test).mean())
        model.train()
        say(f"  epoch {epoch + 1}: held-out accuracy {accuracy:.1%} ({len(y_test)} digits)")
    say("Eight sigmoid layers, plain SGD (lr 0.5), with and without BatchNorm1d:")
    curves = {}
    for use_bn in (False, True):
        tn.manual_seed(seed)
        layers: list[Any] = []
        for size in (64,) + (32,) * 7:
            layers += [nn.Linear(size, 32)] + ([nn.BatchNorm1d(32)] if use_bn else [])
            layers.append(nn.Sigmoid())
        mlp = nn.Sequential(*layers, nn.Linear(32, 10))
        sgd = tn.optim.SGD(mlp.parameters(), lr=0.5)
        flat = x_train.reshape(len(x_train), -1)
        losses = []
        for _ in range(60):
            batch = rng.choice(len(flat), 64, replace=False)
            sgd.zero_grad()
            loss = loss_fn(mlp(tn.tensor(flat[batch])), y_train[batch])
            loss.backward()
            sgd.step()
            losses.append(loss.item())
        name = "with batch norm" if use_bn else "without"
        curves[name] = losses
        say(f"  {name:15s} loss {np.mean(losses[:5]):.2f} -> {np.mean(losses[-5:]):.2f} "
            "in 60 steps")
    return {"model": model, "accuracy": accuracy, "curves": curves}


def section_sequences(say: Say, seed: int) -> dict[str, Any]:
    """Chapter 9, quick: an LSTM learns binary addition; a tiny GPT takes its first steps on
    addition as text (examples/09_gpt_addition.py trains it to >= 99%)."""
    from tinynet import datasets_text, story_sequences

    _header(say, "9. Sequences: an LSTM carries, attention looks back")
    say("LSTM(2 -> 16) reads the bits of a and b, least significant first, and writes the bits")
    say("of a + b: the carry must live in its state. Adam, 8-bit sums; test on 16-bit sums.")
    lstm = story_sequences.train_bit_adder(steps=150, seed=seed)
    say(f"  150 steps: loss {np.mean(lstm.losses[:10]):.3f} -> {np.mean(lstm.losses[-10:]):.3f};"
        f" exact 16-bit sums: {lstm.accuracy:.1%} of 1000")
    say("A GPT (2 blocks of causal self-attention + MLP, width 48) reads '347+589=' and")
    say("writes the sum digit by digit, least significant first: '347+589=6390' is 936.")
    gpt = story_sequences.train_gpt(steps=20, seed=seed, compiled=False, n_test=100)
    say(f"  20 steps: loss {np.mean(gpt.losses[:5]):.2f} -> {np.mean(gpt.losses[-5:]):.2f} "
        f"(ln 12 = {np.log(12):.2f} is a uniform guess); it has learned the format, not yet "
        "the sums:")
    sample = story_sequences.sample_text(gpt.model, datasets_text.addition_text(347, 589)[:8],
                                         4, generator=np.random.default_rng(seed))
    say(f"  sampled: {sample}   (examples/09_gpt_addition.py trains it to >= 99% in minutes)")
    return {"lstm": lstm, "gpt": gpt}


def write_sequence_figures(results: dict[str, Any], directory: str) -> list[str]:
    """Chapter 9's figures: the LSTM's training curve and gates, the GPT's attention."""
    from tinynet import plotting_seq

    return (plotting_seq.lstm_figures(results["lstm"], directory)
            + [plotting_seq.gpt_attention_figure(results["gpt"].model, directory)])


# ----------------------------------------------------------------------------- figures


FIGURES = (
    "step_vs_sigmoid.png",
    "perceptron_gates.png",
    "mlp_xor_regions.png",
    "loss_curves.png",
    "mlp_diagram.png",
    "deep_moons_regions.png",
)
FIGURES += ("lstm_training_curve.png", "lstm_gates.png", "gpt_attention.png")  # chapter 9


def write_figures(results: dict[str, Any], directory: str) -> list[str]:
    """Draw the story's figures into ``directory``; returns the paths written."""
    from tinynet import plotting

    plotting.use_agg()
    plt = plotting.pyplot()
    os.makedirs(directory, exist_ok=True)
    paths = []

    def out(name: str) -> str:
        return os.path.join(directory, name)

    fig = plotting.plot_step_vs_sigmoid()
    fig.suptitle("The perceptron's step and the sigmoid that replaced it", fontsize=11, y=1.02)
    paths.append(plotting.save(fig, out("step_vs_sigmoid.png")))

    fig, axes = plt.subplots(1, 4, figsize=(14, 4.6))
    for ax, name in zip(axes, ("AND", "OR", "NAND", "XOR"), strict=True):
        X, y = tn.data.logic_gate(name)
        p, result = results["perceptrons"][name]
        distance, _ = closest_point(p, X)
        if result.converged:
            plotting.plot_gate(X, y, p.decision_boundary(), ax=ax,
                               title=f"{name}\nlearned in {result.epochs} epochs",
                               line_label=f"its line; nearest input {distance:.2f} away")
        else:
            wrong = int(np.sum(p.predict(X) != y))
            plotting.plot_gate(X, y, p.decision_boundary(), ax=ax,
                               title=f"{name}\nnot learned in {result.epochs} epochs",
                               line_label=f"its line after {result.epochs} epochs: "
                                          f"{wrong} of 4 wrong",
                               no_line_note="no line separates the 0s from the 1s")
    fig.suptitle(f"Perceptrons on the logic gates (seed {results['seed']}, lr "
                 f"{PERCEPTRON_RECIPE['lr']}). The rule stops at the first line that gets all "
                 "four right,\neven one that passes close to an input (OR): nothing in it "
                 "pushes the line away from the points.", fontsize=11)
    paths.append(plotting.save(fig, out("perceptron_gates.png")))

    mlp = results["mlp"]
    X, y = tn.data.logic_gate("xor")
    ax = plotting.plot_decision_regions(
        predict_proba(mlp.model), X, y, margin=0.5,
        title=f"MLP 2-{XOR_RECIPE['hidden']}-1 on XOR: its output P(class 1)",
    )
    paths.append(plotting.save(ax.figure, out("mlp_xor_regions.png")))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plotting.plot_losses(
        {name: r.errors_per_epoch for name, (_, r) in results["perceptrons"].items()},
        ax=axes[0], title="perceptron: mistakes per epoch", xlabel="epoch", ylabel="mistakes",
        log=False, markers=True,
    )
    axes[0].set(xlim=(0.5, 25.5), yticks=[0, 1, 2, 3, 4])
    step = results["step"]
    plotting.plot_losses(
        {"MLP (sigmoid hidden layer)": mlp.losses,
         "step hidden layer, true derivative": step["None"].losses,
         "step hidden layer, sigmoid surrogate": step["sigmoid"].losses},
        ax=axes[1], title="XOR: binary cross-entropy",
    )
    deep = results["deep"]
    plotting.plot_losses(
        {"deep net, two moons": deep["run"].losses, "deep net, XOR": deep["xor"].losses},
        ax=axes[2], title="deep network (Adam): BCE on logits",
    )
    paths.append(plotting.save(fig, out("loss_curves.png")))

    model, h = mlp.model, XOR_RECIPE["hidden"]
    weights = [model[0].weight.detach().numpy(), model[2].weight.detach().numpy()]
    ax = plotting.plot_network(
        [2, h, 1], weights,
        labels=["inputs\n$x_1, x_2$", f"hidden layer\nLinear(2, {h}) + Sigmoid",
                f"output\nLinear({h}, 1) + Sigmoid"],
        title="The trained XOR MLP (red: weight > 0, blue: < 0; width: |weight|)",
    )
    paths.append(plotting.save(ax.figure, out("mlp_diagram.png")))

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    proba = predict_proba(deep["run"].model, logits=True)
    X_all = np.concatenate([deep["X"], deep["X_test"]])
    box = tuple(zip(X_all.min(axis=0) - 0.3, X_all.max(axis=0) + 0.3, strict=True))
    n_train, n_test = len(deep["X"]), len(deep["X_test"])
    plotting.plot_decision_regions(
        proba, deep["X"], deep["y"], ax=axes[0], box=box, colorbar=False,
        point_name="training point, class",
        title=f"training data: {n_train} points it learned from\n"
              f"training accuracy {deep['run'].accuracy:.1%}",
    )
    plotting.plot_decision_regions(
        proba, deep["X_test"], deep["y_test"], ax=axes[1], box=box, colorbar=list(axes),
        point_name="test point, class",
        title=f"test data: {n_test} new points, not trained on\n"
              f"test accuracy {deep['test_accuracy']:.1%}",
    )
    axes[1].set_ylabel("")
    fig.suptitle("A deep network (2-16-16-1, ReLU) on two moons: one model, its training data "
                 "and new data", fontsize=11, y=1.03)
    paths.append(plotting.save(fig, out("deep_moons_regions.png")))
    return paths


# ----------------------------------------------------------------------------- the command


def run_demo(seed: int = 0, plots: str | None = None, say: Say = print) -> dict[str, Any]:
    """Tell the whole story (see the module docstring); with ``plots``, write the figures."""
    start = time.perf_counter()
    if plots is not None and not _matplotlib_available():
        from tinynet.plotting import INSTALL_HINT

        say(f"--plots {plots}: {INSTALL_HINT}. Running the text demo without figures.")
        plots = None
    say("tinynet demo: from the perceptron to deep networks")
    results: dict[str, Any] = {"seed": seed}
    section_mcp(say)
    results["perceptrons"] = section_perceptron(say, seed)
    section_xor_fails(say, results["perceptrons"])
    section_two_layers(say)
    results["step"] = section_step(say, seed)
    results["mlp"] = section_mlp(say, seed)
    results["deep"] = section_deep(say, seed)
    results["cnn"] = section_cnn(say, seed)  # chapter 8: convolution, batch norm
    results["sequences"] = section_sequences(say, seed)  # chapter 9: LSTM, attention
    if plots is not None:
        paths = write_figures(results, plots)
        paths += write_sequence_figures(results["sequences"], plots)
        say("")
        say(f"Wrote {len(paths)} figures to {plots}: {', '.join(map(os.path.basename, paths))}")
    say("")
    say(f"Done in {time.perf_counter() - start:.1f} s.")
    return results


def _matplotlib_available() -> bool:
    from tinynet.plotting import matplotlib_available

    return matplotlib_available()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinynet",
        description="tinynet: a from-scratch tensor framework with reverse-mode autograd.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="from the perceptron to deep networks, in the terminal",
        description=(
            "The classic story, run live: McCulloch-Pitts neurons, perceptrons learning AND, "
            "OR and NAND and failing on XOR, a hand-built two-layer XOR, the step's zero "
            "derivative, an MLP learning XOR by backpropagation, and a deep network on two "
            "moons."
        ),
    )
    demo.add_argument(
        "--plots", metavar="DIR", default=None,
        help="also write PNG figures into DIR (needs matplotlib: pip install -e \".[plot]\"; "
             "without it the text demo still runs and a message says how to install it)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        run_demo(seed=args.seed, plots=args.plots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
