"""1958: Rosenblatt's perceptron learns AND, OR, NAND and NOR.

The perceptron computes y_hat = step(w . x + b) and learns from its mistakes, one sample at a
time:

    w <- w + lr (y - y_hat) x        b <- b + lr (y - y_hat)

When y_hat is right, y - y_hat = 0 and nothing changes. When it said 0 but should have said 1,
w moves towards x (so w . x grows); when it said 1 but should have said 0, w moves away.
If a line separates the classes, the rule finds one after finitely many mistakes.

This script trains ``tinynet.perceptron.Perceptron`` on four gates, then reruns the rule as a
plain Python loop from the same starting weights to show that this is all there is to it.

Run: python examples/02_perceptron_gates.py
"""

import numpy as np

import tinynet as tn
from tinynet.perceptron import Perceptron, format_truth_table


def perceptron_rule(X, y, w, b, lr, max_epochs):
    """The whole learning algorithm, written out."""
    w = list(w)
    for epoch in range(1, max_epochs + 1):
        mistakes = 0
        for x, target in zip(X.tolist(), y.tolist(), strict=True):
            y_hat = 1 if sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b >= 0 else 0
            if y_hat != target:
                w = [wi + lr * (target - y_hat) * xi for wi, xi in zip(w, x, strict=True)]
                b += lr * (target - y_hat)
                mistakes += 1
        if mistakes == 0:
            return w, b, epoch
    return w, b, None


def main() -> None:
    for gate in ("and", "or", "nand", "nor"):
        X, y = tn.data.logic_gate(gate)
        p = Perceptron(2, lr=0.1, seed=0)
        w0, b0 = p.weight.copy(), p.bias
        result = p.fit(X, y, max_epochs=100)
        print(f"{gate.upper()}: {result}")
        print(f"  start w = {np.round(w0, 3).tolist()}, b = {b0:.3f}")
        print(f"  end   w = {np.round(p.weight, 3).tolist()}, b = {p.bias:.3f}")
        print(f"  boundary: {p.decision_boundary()}")
        print(f"  mistakes per epoch: {result.errors_per_epoch.tolist()}")
        print(format_truth_table(X, {"target": y, "learned": p.predict(X)}))

        w, b, epochs = perceptron_rule(X, y, w0, b0, lr=0.1, max_epochs=100)
        same = np.array_equal(w, p.weight) and b == p.bias and epochs == result.epochs
        print(f"  the hand-written loop gives the same weights: {same}\n")

    # Seeds change the starting weights, not the outcome: every run converges.
    X, y = tn.data.logic_gate("and")
    epochs = [Perceptron(2, lr=0.1, seed=s).fit(X, y).epochs for s in range(20)]
    print(f"AND over 20 seeds: converged every time, in {min(epochs)} to {max(epochs)} epochs")


if __name__ == "__main__":
    main()
