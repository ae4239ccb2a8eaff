"""Deep networks: two hidden layers on XOR, two moons and spirals.

A network with more layers composes more bends. Two hidden layers of ReLU units and a linear
output (a logit; the loss applies the sigmoid itself, stably) learn data no line separates,
and the decision boundary on new points shows they learned the shape, not the points.

Run: python examples/06_deep_network_moons.py [--plot FILE.png]
"""

import argparse

import numpy as np

import tinynet as tn
from tinynet import nn
from tinynet.nn import functional as F


def deep_network(hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(2, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def train(X, y, hidden: int, lr: float, steps: int, seed: int = 0) -> nn.Sequential:
    X = tn.tensor(X.astype(np.float32))
    target = tn.tensor(y.reshape(-1, 1).astype(np.float32))
    tn.manual_seed(seed)
    model = deep_network(hidden)
    optimizer = tn.optim.Adam(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(X), target)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"  step {step:4d}  loss {loss.item():.4f}")
    return model


def accuracy(model: nn.Module, X, y) -> float:
    with tn.no_grad():
        logits = model(tn.tensor(X.astype(np.float32))).numpy().reshape(-1)
    return float(np.mean((logits >= 0) == (y == 1)))  # logit 0 <=> probability 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="FILE", help="save the moons decision regions (PNG)")
    args = parser.parse_args()

    print("XOR, width 8:")
    X, y = tn.data.logic_gate("xor")
    model = train(X, y, hidden=8, lr=0.05, steps=200)
    print(f"  accuracy {accuracy(model, X, y):.0%}")

    print("two moons, 200 training points, width 16:")
    X, y = tn.data.two_moons(200, noise=0.15, seed=0)
    X_new, y_new = tn.data.two_moons(1000, noise=0.15, seed=1)
    moons = train(X, y, hidden=16, lr=0.02, steps=300)
    print(f"  training accuracy {accuracy(moons, X, y):.1%}, "
          f"on 1000 new points {accuracy(moons, X_new, y_new):.1%}")

    print("two spirals (one turn), 400 points, width 32:")
    X, y = tn.data.spirals(400, noise=0.03, classes=2, turns=1.0, seed=0)
    model = train(X, y, hidden=32, lr=0.02, steps=600)
    print(f"  training accuracy {accuracy(model, X, y):.1%}")

    if args.plot:
        from tinynet import plotting

        plotting.use_agg()
        X, y = tn.data.two_moons(200, noise=0.15, seed=0)

        def proba(grid):
            with tn.no_grad():
                return moons(tn.tensor(grid.astype(np.float32))).sigmoid().numpy()

        ax = plotting.plot_decision_regions(proba, X, y, title="deep network on two moons")
        print(f"wrote {plotting.save(ax.figure, args.plot)}")


if __name__ == "__main__":
    main()
