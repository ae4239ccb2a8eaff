"""The McCulloch-Pitts neuron, Rosenblatt's perceptron, and logic gates built from them."""

from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn
from tinynet import kernels
from tinynet.perceptron import (
    DecisionBoundary,
    MCPNeuron,
    Perceptron,
    format_truth_table,
    mcp_gate,
    perceptron_gate,
    perceptron_rule,
    truth_table,
    xor_network,
)

# The four inputs in counting order and each gate's answers: written out, not computed.
X4 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
GATES = {
    "AND": np.array([0, 0, 0, 1]),
    "OR": np.array([0, 1, 1, 1]),
    "NAND": np.array([1, 1, 1, 0]),
    "XOR": np.array([0, 1, 1, 0]),
}
SEEDS = range(20)


def pure_python_perceptron(X, y, w, b, lr, max_epochs):
    """The perceptron rule written from the textbook, independently of tinynet."""
    w = [float(v) for v in w]
    b = float(b)
    errors = []
    for _ in range(max_epochs):
        mistakes = 0
        for x_i, t in zip(X.tolist(), [int(v) for v in y], strict=True):
            s = 0.0
            for w_j, x_j in zip(w, x_i, strict=True):
                s += w_j * x_j
            s += b
            y_hat = 1 if s >= 0 else 0
            if y_hat != t:
                w = [w_j + lr * (t - y_hat) * x_j for w_j, x_j in zip(w, x_i, strict=True)]
                b += lr * (t - y_hat)
                mistakes += 1
        errors.append(mistakes)
        if mistakes == 0:
            break
    return np.array(w), b, errors


# ----------------------------------------------------------------------------- learning


@pytest.mark.parametrize("gate", ["AND", "OR", "NAND"])
def test_perceptron_converges_on_linearly_separable_gates_for_every_seed(gate):
    for seed in SEEDS:
        p = Perceptron(2, lr=0.1, seed=seed)
        result = p.fit(X4, GATES[gate], max_epochs=100)
        assert result.converged, f"{gate}, seed {seed}: {result}"
        assert result.errors_per_epoch[-1] == 0
        assert np.all(result.errors_per_epoch[:-1] > 0)  # stops at the first clean epoch
        np.testing.assert_array_equal(p.predict(X4), GATES[gate])
        assert (p.converged_, p.epochs_) == (True, result.epochs)


def test_perceptron_never_converges_on_xor_and_stops_at_max_epochs():
    for seed in SEEDS:
        p = Perceptron(2, lr=0.1, seed=seed)
        result = p.fit(X4, GATES["XOR"], max_epochs=50)
        assert not result.converged
        assert result.epochs == 50 and p.epochs_ == 50 and p.converged_ is False
        assert result.errors_per_epoch.shape == (50,)
        assert np.all(result.errors_per_epoch > 0)  # a mistake in every single epoch
        assert np.sum(p.predict(X4) != GATES["XOR"]) >= 1
        assert "did not converge" in str(result)


@pytest.mark.parametrize("gate", ["AND", "NAND", "XOR"])
@pytest.mark.parametrize("lr", [0.1, 1.0, 0.37])
def test_fit_gives_the_same_weights_as_a_pure_python_perceptron_rule(gate, lr):
    for seed in range(5):
        p = Perceptron(2, lr=lr, seed=seed)
        w0, b0 = p.weight.copy(), p.bias
        result = p.fit(X4, GATES[gate], max_epochs=30)
        w, b, errors = pure_python_perceptron(X4, GATES[gate], w0, b0, lr, 30)
        np.testing.assert_array_equal(p.weight, w)  # bit for bit: same order of operations
        assert p.bias == b
        np.testing.assert_array_equal(result.errors_per_epoch, errors)


def test_fit_gives_the_same_weights_as_pure_python_on_real_valued_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3 > 0).astype(int)
    p = Perceptron(3, lr=0.05, seed=1)
    w0, b0 = p.weight.copy(), p.bias
    result = p.fit(X, y, max_epochs=200)
    w, b, errors = pure_python_perceptron(X, y, w0, b0, 0.05, 200)
    np.testing.assert_array_equal(p.weight, w)
    assert p.bias == b
    np.testing.assert_array_equal(result.errors_per_epoch, errors)


@pytest.mark.parametrize("n_samples", [4, 600])
def test_numba_kernel_and_the_readable_rule_agree_bit_for_bit(n_samples):
    if not kernels.numba_enabled():
        pytest.skip("numba kernels are disabled")
    rng = np.random.default_rng(n_samples)
    X = X4 if n_samples == 4 else rng.normal(size=(n_samples, 2))
    y = GATES["NAND"] if n_samples == 4 else (X @ np.array([1.0, -2.0]) + 0.1 > 0).astype(int)
    y = y.astype(np.int64)
    w_fast, w_rule = np.array([0.2, -0.1]), np.array([0.2, -0.1])
    with kernels.dispatch_mode("compiled"):  # the numba kernel, whatever the size
        fast = kernels.perceptron_fit(X, y, w_fast, 0.05, 0.1, 100)
    rule = perceptron_rule(X, y, w_rule, 0.05, 0.1, 100)
    assert fast[1] > 1  # several epochs: there was something to learn
    np.testing.assert_array_equal(w_fast, w_rule)
    assert fast[:3] == rule[:3]
    np.testing.assert_array_equal(fast[3], rule[3])


def test_small_inputs_run_the_readable_rule_and_large_ones_the_kernel(monkeypatch):
    calls = []

    def spy(*args):
        calls.append(np.shape(args[0]))
        return perceptron_rule(*args)

    # (the rule tinynet.perceptron exports is the kernels' twin: one text, kernels/reference.py)
    monkeypatch.setattr("tinynet.kernels.reference.perceptron_fit", spy)
    Perceptron(2, seed=0).fit(X4, GATES["AND"])
    assert calls == [(4, 2)]  # the logic gates: the plain-Python rule
    rng = np.random.default_rng(0)
    X = rng.normal(size=(kernels._PERCEPTRON_MIN_SIZE, 2))
    Perceptron(2, seed=0).fit(X, (X[:, 0] > 0).astype(int))
    expected = [(4, 2)] if kernels.numba_enabled() else [(4, 2), X.shape]
    assert calls == expected


def test_perceptron_learns_separable_real_valued_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    margin = X @ np.array([2.0, -1.0]) + 0.2
    keep = np.abs(margin) > 0.1  # a margin makes convergence quick (Novikoff's bound)
    X, y = X[keep], (margin[keep] > 0).astype(int)
    p = Perceptron(2, lr=0.1, seed=0)
    assert p.fit(X, y, max_epochs=1000).converged
    np.testing.assert_array_equal(p.predict(X), y)


def test_fit_starts_from_the_current_weights():
    p = perceptron_gate("AND")
    result = p.fit(X4, GATES["AND"])
    assert result.converged and result.epochs == 1
    np.testing.assert_array_equal(p.weight, [1.0, 1.0])
    assert p.bias == -1.5


def test_seed_makes_initial_weights_reproducible_and_global_seed_is_used():
    np.testing.assert_array_equal(Perceptron(3, seed=7).weight, Perceptron(3, seed=7).weight)
    assert not np.array_equal(Perceptron(3, seed=7).weight, Perceptron(3, seed=8).weight)
    tn.manual_seed(5)
    a = Perceptron(3)
    tn.manual_seed(5)
    b = Perceptron(3)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.bias == b.bias
    assert np.all(np.abs(a.weight) <= 0.5)


# ----------------------------------------------------------------------------- inputs


def test_fit_and_predict_accept_tensors_lists_and_column_targets():
    X = tn.tensor(X4, requires_grad=True)
    y = tn.tensor(GATES["OR"].reshape(4, 1).astype(np.float32))
    p = Perceptron(2, seed=0)
    assert p.fit(X, y).converged
    np.testing.assert_array_equal(p.predict(X), GATES["OR"])
    np.testing.assert_array_equal(p.predict(X4.tolist()), GATES["OR"])
    np.testing.assert_array_equal(p.predict(np.array([[0, 1], [0, 0]], dtype=np.int32)), [1, 0])


def test_predict_returns_int_for_one_sample_and_int64_array_for_a_batch():
    p = perceptron_gate("AND")
    assert p.predict([1, 1]) == 1 and isinstance(p.predict([1, 1]), int)
    out = p.predict(X4)
    assert out.dtype == np.int64 and out.shape == (4,)
    assert p(X4).tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(p.decision_function(X4), [-1.5, -0.5, -0.5, 0.5])
    assert p.decision_function([1, 1]) == 0.5


def test_step_fires_at_exactly_zero():
    p = Perceptron.from_weights([1.0, 1.0], -1.0)  # w.x + b = 0 at (0, 1) and (1, 0)
    assert p.predict([0, 1]) == 1 and p.predict([0, 0]) == 0


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (np.zeros((4, 3)), np.zeros(4), tn.ShapeError, r"shape \(N, 2\)"),
        (np.zeros(4), np.zeros(4), tn.ShapeError, r"shape \(N, 2\)"),
        (np.zeros((4, 2, 1)), np.zeros(4), tn.ShapeError, "inputs"),
        (X4, np.zeros(3), tn.ShapeError, r"targets must have shape \(4,\)"),
        (X4, np.zeros((4, 2)), tn.ShapeError, "targets"),
        (X4, np.array([0, 1, 2, 1]), ValueError, r"must be 0 or 1, found \[2\]"),
        (X4, np.array([-1, 1, 1, -1]), ValueError, r"\(y \+ 1\) // 2"),
        (X4, np.array([0, 0.5, 1, 1]), ValueError, "0 or 1"),
        (np.array([[0, np.nan], [0, 1], [1, 0], [1, 1]]), np.zeros(4), ValueError, "NaN"),
        (np.array([["a", "b"]] * 4), np.zeros(4), tn.DTypeError, "numbers"),
        (np.zeros((0, 2)), np.zeros(0), ValueError, "at least one sample"),
    ],
)
def test_fit_rejects_bad_inputs_with_clear_errors(X, y, error, match):
    with pytest.raises(error, match=match):
        Perceptron(2, seed=0).fit(X, y)


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="n_inputs must be at least 1"):
        Perceptron(0)
    with pytest.raises(TypeError, match="n_inputs must be an int"):
        Perceptron(2.0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        Perceptron(2, lr=0.0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        Perceptron(2, lr=float("nan"))
    assert Perceptron(2, lr=np.float32(0.5)).lr == 0.5
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        Perceptron(2, seed=0).fit(X4, GATES["AND"], max_epochs=0)
    with pytest.raises(TypeError, match="max_epochs must be an int"):
        Perceptron(2, seed=0).fit(X4, GATES["AND"], max_epochs=10.5)


def test_failed_validation_leaves_the_weights_untouched():
    p = Perceptron(2, seed=0)
    w, b = p.weight.copy(), p.bias
    with pytest.raises(ValueError):
        p.fit(X4, [0, 1, 2, 0])
    np.testing.assert_array_equal(p.weight, w)
    assert p.bias == b and p.converged_ is None


# ----------------------------------------------------------------------------- the boundary


def test_decision_boundary_is_the_line_where_w_x_plus_b_is_zero():
    p = Perceptron.from_weights([2.0, 4.0], -1.0)
    line = p.decision_boundary()
    assert line.slope == -0.5 and line.intercept == 0.25 and not line.vertical
    xs = np.linspace(-3, 3, 7)
    points = np.stack([xs, line.y_at(xs)], axis=1)
    np.testing.assert_allclose(p.decision_function(points), 0.0, atol=1e-12)
    assert str(line) == "y = -0.5 x + 0.25"


def test_vertical_decision_boundary_has_no_slope_but_an_x_intercept():
    line = Perceptron.from_weights([2.0, 0.0], -1.0).decision_boundary()
    assert line.vertical and line.slope is None and line.intercept is None
    assert line.x_intercept == 0.5
    assert str(line) == "x = 0.5"
    with pytest.raises(ValueError, match="vertical"):
        line.y_at(0.0)
    xs, ys = line.segment((-1, 2), (-1, 2))
    np.testing.assert_array_equal(xs, [0.5, 0.5])
    np.testing.assert_array_equal(ys, [-1, 2])


def test_horizontal_decision_boundary_has_slope_zero():
    line = Perceptron.from_weights([0.0, -1.0], 0.5).decision_boundary()
    assert line.slope == 0.0 and line.intercept == 0.5 and line.x_intercept is None


def test_zero_weights_have_no_decision_boundary():
    p = Perceptron.from_weights([0.0, 0.0], 0.3)
    assert p.decision_boundary() is None
    np.testing.assert_array_equal(p.predict(X4), [1, 1, 1, 1])


def test_decision_boundary_needs_two_inputs():
    with pytest.raises(tn.ShapeError, match="2 inputs"):
        Perceptron(3, seed=0).decision_boundary()


def test_segment_clips_the_line_to_the_box_or_returns_none():
    line = DecisionBoundary((1.0, 1.0), -1.0)  # y = 1 - x
    xs, ys = line.segment((0.0, 2.0), (0.0, 2.0))
    np.testing.assert_allclose(xs, [0.0, 1.0])
    np.testing.assert_allclose(ys, [1.0, 0.0])
    assert line.segment((5.0, 6.0), (5.0, 6.0)) is None


@pytest.mark.parametrize("gate", ["AND", "OR", "NAND"])
def test_learned_line_separates_the_gate_points(gate):
    p = Perceptron(2, lr=0.1, seed=4)
    p.fit(X4, GATES[gate])
    line = p.decision_boundary()
    # Points above the line (y > slope x + intercept) are class 1 exactly when w1 > 0.
    above = X4[:, 1] > line.y_at(X4[:, 0])
    expected = above if p.weight[1] > 0 else ~above
    np.testing.assert_array_equal(expected.astype(int), GATES[gate])


# ----------------------------------------------------------------------------- gates


def test_mcp_neuron_fires_when_the_weighted_sum_reaches_the_threshold():
    n = MCPNeuron([1, 1, -1], threshold=1)
    assert n([1, 0, 0]) == 1  # sum 1 == threshold: fires (>=)
    assert n([1, 0, 1]) == 0  # inhibited
    assert n([1, 1, 1]) == 1
    inputs, outputs = n.truth_table()
    assert inputs.shape == (8, 3) and outputs.shape == (8,)
    np.testing.assert_array_equal(outputs, (inputs @ [1, 1, -1] >= 1).astype(int))


def test_mcp_neuron_rejects_non_binary_inputs_and_bad_weights():
    with pytest.raises(ValueError, match="binary"):
        mcp_gate("AND")([0.5, 1])
    with pytest.raises(tn.ShapeError, match=r"\(N, 2\)"):
        mcp_gate("AND")([1, 1, 1])
    with pytest.raises(tn.ShapeError, match="non-empty"):
        MCPNeuron([], 1)
    with pytest.raises(ValueError, match="finite"):
        MCPNeuron([1], float("inf"))


@pytest.mark.parametrize("gate", ["AND", "OR", "NAND"])
@pytest.mark.parametrize("make", [mcp_gate, perceptron_gate])
def test_hand_built_gates_match_their_truth_tables(gate, make):
    inputs, outputs = make(gate).truth_table()
    np.testing.assert_array_equal(inputs, X4)
    np.testing.assert_array_equal(outputs, GATES[gate])


@pytest.mark.parametrize("make", [mcp_gate, perceptron_gate])
def test_not_gate_and_gate_names_are_case_insensitive(make):
    np.testing.assert_array_equal(make("not").truth_table()[1], [1, 0])
    with pytest.raises(ValueError, match="unknown gate 'XNOR'"):
        make("XNOR")


@pytest.mark.parametrize("kind", ["perceptron", "mcp"])
def test_xor_is_and_of_nand_and_or_in_two_layers(kind):
    net = xor_network(kind)
    inputs, outputs = net.truth_table()
    np.testing.assert_array_equal(outputs, GATES["XOR"])
    hidden = net.hidden_activations(inputs)
    np.testing.assert_array_equal(hidden[:, 0], GATES["NAND"])
    np.testing.assert_array_equal(hidden[:, 1], GATES["OR"])
    assert net([1, 0]) == 1 and net([1, 1]) == 0
    with pytest.raises(ValueError, match="kind"):
        xor_network("sigmoid")


def test_truth_table_formats_as_aligned_text():
    inputs, outputs = truth_table(perceptron_gate("AND"))
    text = format_truth_table(inputs, outputs, names=["x1", "x2"], output_name="AND")
    assert text.splitlines() == [
        "x1  x2 | AND",
        " 0   0 |   0",
        " 0   1 |   0",
        " 1   0 |   0",
        " 1   1 |   1",
    ]
    net = xor_network()
    h = net.hidden_activations(inputs)
    text = format_truth_table(inputs, net(inputs), extra={"NAND": h[:, 0], "OR": h[:, 1]})
    assert text.splitlines()[0] == "a  b | NAND  OR | out"
    assert text.splitlines()[4] == "1  1 |    0   1 |   0"
