"""1969: the perceptron cannot learn XOR.

XOR is 1 for (0, 1) and (1, 0), 0 for (0, 0) and (1, 1). A perceptron answers 1 on one side of
a line and 0 on the other, and no line puts (0, 1) and (1, 0) on one side and the other two
points on the other. Add the four conditions a separating line would need:

    (0,0) -> 0:  b < 0            (1,1) -> 0:  w1 + w2 + b < 0
    (0,1) -> 1:  w2 + b >= 0      (1,0) -> 1:  w1 + b >= 0

The last two sum to w1 + w2 + 2b >= 0, the first two to w1 + w2 + 2b < 0: a contradiction.
So the learning rule never runs an epoch without a mistake; ``fit`` stops at ``max_epochs``
and says so (Minsky and Papert's book made this famous).

Run: python examples/03_perceptron_xor_fails.py
"""

import itertools

import numpy as np

import tinynet as tn
from tinynet.perceptron import Perceptron, format_truth_table


def main() -> None:
    X, y = tn.data.logic_gate("xor")
    p = Perceptron(2, lr=0.1, seed=0)
    result = p.fit(X, y, max_epochs=100)
    print(f"XOR: {result}")
    print(f"  mistakes per epoch: {result.errors_per_epoch[:20].tolist()} ...")
    print(format_truth_table(X, {"target": y, "learned": p.predict(X)}))

    # Watch the weights epoch by epoch: they wander, then go round in a loop. Once all four
    # points are misclassified, the four corrections cancel out over an epoch (-b, +w2+b,
    # +w1+b, -w1-w2-b) and every epoch ends where it started.
    p = Perceptron(2, lr=0.1, seed=0)
    print("\nweights after each epoch:")
    for epoch in range(1, 13):
        p.fit(X, y, max_epochs=1)
        print(f"  epoch {epoch:2d}: w = {np.round(p.weight, 3).tolist()}, b = {p.bias:+.3f}, "
              f"right on {int(np.sum(p.predict(X) == y))} of 4")

    # No seed helps.
    converged = [Perceptron(2, lr=0.1, seed=s).fit(X, y).converged for s in range(20)]
    print(f"\nconverged for {sum(converged)} of 20 seeds")

    # A brute-force check: the best any line on a grid of weights does is 3 of 4.
    grid = np.linspace(-2, 2, 41)
    best = max(
        int(np.sum(((X @ [w1, w2] + b) >= 0).astype(int) == y))
        for w1, w2, b in itertools.product(grid, grid, grid)
    )
    print(f"best of {len(grid) ** 3} lines on a grid: {best} of 4 points right")


if __name__ == "__main__":
    main()
