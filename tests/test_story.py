"""The story's claims, measured: perceptrons on the data module's gates, the step's zero
derivative and its surrogate, the MLP's XOR success rate within the documented budget, and
deep networks on XOR and two moons."""

from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn
from tinynet.__main__ import (
    MOONS_RECIPE,
    XOR_RECIPE,
    binary_accuracy,
    train_deep,
    train_step_network,
    train_xor_mlp,
    xor_tensors,
)
from tinynet.perceptron import Perceptron


@pytest.mark.parametrize("gate", ["and", "or", "nand", "nor"])
def test_perceptron_learns_every_separable_gate_of_the_data_module(gate):
    X, y = tn.data.logic_gate(gate)
    for seed in range(20):
        p = Perceptron(2, lr=0.1, seed=seed)
        assert p.fit(X, y, max_epochs=100).converged, (gate, seed)
        np.testing.assert_array_equal(p.predict(X), y)


def test_perceptron_never_learns_xor_of_the_data_module():
    X, y = tn.data.logic_gate("xor")
    for seed in range(20):
        assert not Perceptron(2, lr=0.1, seed=seed).fit(X, y, max_epochs=100).converged


# ----------------------------------------------------------------------------- MLP on XOR


def test_mlp_learns_xor_for_at_least_19_of_20_seeds_within_the_documented_budget():
    assert XOR_RECIPE == {"hidden": 4, "lr": 1.0, "momentum": 0.9, "steps": 500,
                          "target_loss": 0.05}  # the numbers docs/tutorial.md states
    learned = []
    for seed in range(20):
        # Stops as soon as all four points are right and the BCE is below 0.05.
        run = train_xor_mlp(seed, target_loss=XOR_RECIPE["target_loss"])
        assert run.steps <= XOR_RECIPE["steps"]
        if run.accuracy == 1.0 and run.losses[-1] < XOR_RECIPE["target_loss"]:
            learned.append(seed)
    assert len(learned) >= 19, f"learned XOR for seeds {learned}"


@pytest.mark.parametrize("seed", [0, 1])
def test_mlp_run_for_the_whole_budget_stays_right_on_xor(seed):
    run = train_xor_mlp(seed)  # no early stop: all 500 steps, as the demo does
    assert run.steps == 500
    assert run.accuracy == 1.0 and run.losses[-1] < 0.01
    X, t = xor_tensors()
    with tn.no_grad():
        p = run.model(X).numpy().reshape(-1)
    assert np.all(np.abs(p - t.numpy().reshape(-1)) < 0.1)


def test_mlp_recipe_models_are_the_documented_layers():
    run = train_xor_mlp(0, steps=1)
    names = [type(m).__name__ for m in run.model]
    assert names == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    assert run.model[0].weight.shape == (4, 2) and run.model[2].weight.shape == (1, 4)


# ----------------------------------------------------------------------------- step units


def test_step_with_its_true_derivative_passes_no_gradient_to_the_layer_before():
    tn.manual_seed(0)
    nn = tn.nn
    model = nn.Sequential(nn.Linear(2, 4), nn.Step(), nn.Linear(4, 1), nn.Sigmoid())
    X, t = xor_tensors()
    tn.nn.functional.binary_cross_entropy(model(X), t).backward()
    np.testing.assert_array_equal(model[0].weight.grad.numpy(), 0.0)
    np.testing.assert_array_equal(model[0].bias.grad.numpy(), 0.0)
    assert np.abs(model[2].weight.grad.numpy()).max() > 0  # the layer after it does learn


@pytest.mark.parametrize("seed", range(3))
def test_step_network_with_true_derivative_never_moves_its_first_layer(seed):
    run = train_step_network(seed, surrogate=None, steps=50)
    assert run.first_layer_change == 0.0


def test_step_network_learns_xor_with_the_sigmoid_surrogate():
    runs = [train_step_network(seed, surrogate="sigmoid") for seed in range(10)]
    assert all(run.first_layer_change > 0 for run in runs)
    assert sum(run.accuracy == 1.0 for run in runs) >= 9
    # The forward pass is still a step: the hidden units output exactly 0 or 1.
    X, _ = xor_tensors()
    with tn.no_grad():
        hidden = runs[0].model[1](runs[0].model[0](X)).numpy()
    assert set(np.unique(hidden)) <= {0.0, 1.0}


# ----------------------------------------------------------------------------- deep networks


def test_deep_network_learns_xor():
    X, y = tn.data.logic_gate("xor")
    for seed in range(3):
        run = train_deep(X, y, seed, hidden=8, lr=0.05, steps=200)
        assert run.accuracy == 1.0 and run.losses[-1] < 0.01, seed


@pytest.mark.parametrize("seed", [0, 1])
def test_deep_network_learns_two_moons_and_generalises(seed):
    r = MOONS_RECIPE
    X, y = tn.data.two_moons(r["n_train"], noise=r["noise"], seed=seed)
    X_test, y_test = tn.data.two_moons(r["n_test"], noise=r["noise"], seed=seed + 1)
    run = train_deep(X, y, seed, r["hidden"], r["lr"], r["steps"])
    assert len(run.model) == 5  # Linear, ReLU, Linear, ReLU, Linear: two hidden layers
    assert run.accuracy >= 0.99
    with tn.no_grad():
        logits = run.model(tn.tensor(X_test.astype(np.float32)))
    assert binary_accuracy(logits, y_test, threshold=0.0) >= 0.95
    # A single linear layer (a perceptron's line) cannot do as well on moons.
    tn.manual_seed(seed)
    line = tn.nn.Linear(2, 1)
    opt = tn.optim.Adam(line.parameters(), lr=r["lr"])
    Xt, t = tn.tensor(X.astype(np.float32)), tn.tensor(y.reshape(-1, 1).astype(np.float32))
    for _ in range(r["steps"]):
        opt.zero_grad()
        tn.nn.functional.binary_cross_entropy_with_logits(line(Xt), t).backward()
        opt.step()
    with tn.no_grad():
        assert binary_accuracy(line(Xt), t, threshold=0.0) < 0.95


# ----------------------------------------------------------------------------- examples

EXAMPLES = {
    "01_mcculloch_pitts.py": "a  b | NAND  OR | XOR",
    "02_perceptron_gates.py": "the hand-written loop gives the same weights: True",
    "03_perceptron_xor_fails.py": "converged for 0 of 20 seeds",
    "04_two_layer_xor.py": "a perceptron on the hidden features (NAND, OR): converged",
    "05_mlp_xor.py": "XOR learned for 20 of 20 seeds",
    "06_deep_network_moons.py": "on 1000 new points",
    "07_step_vs_surrogate.py": "first layer changed in  0 of 10 runs",
}


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_script_runs_and_tells_its_part(script):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(repo / "examples" / script)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert EXAMPLES[script] in proc.stdout
