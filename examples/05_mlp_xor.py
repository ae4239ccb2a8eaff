"""1986: a multi-layer perceptron learns XOR by backpropagation.

Replace each step by a sigmoid, s(z) = 1 / (1 + e^-z): a smooth step whose derivative
s (1 - s) is never zero. Now every weight has a gradient, autograd computes all of them in one
backward pass, and gradient descent can train the hidden layer too.

The recipe (docs/tutorial.md; tests/test_story.py measures it over 20 seeds):

    Sequential(Linear(2, 4), Sigmoid(), Linear(4, 1), Sigmoid())
    binary cross-entropy, SGD(lr=1.0, momentum=0.9), all four points every step, 500 steps

Run: python examples/05_mlp_xor.py
"""

import numpy as np

import tinynet as tn
from tinynet import nn
from tinynet.nn import functional as F
from tinynet.perceptron import format_truth_table


def train(seed: int, steps: int = 500, verbose: bool = False) -> tuple[nn.Module, list[float]]:
    X, y = tn.data.logic_gate("xor")
    X = tn.tensor(X.astype(np.float32))                   # (4, 2)
    target = tn.tensor(y.reshape(4, 1).astype(np.float32))  # (4, 1): one column, as the output

    tn.manual_seed(seed)  # the initial weights come from tinynet's generator
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())
    optimizer = tn.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)

    losses = []
    for step in range(1, steps + 1):
        optimizer.zero_grad()                          # forget the last step's gradients
        p = model(X)                                   # forward: P(XOR = 1), (4, 1)
        loss = F.binary_cross_entropy(p, target)       # -mean(t log p + (1 - t) log(1 - p))
        loss.backward()                                # dloss/dw for every weight
        optimizer.step()                               # w <- w - lr * velocity
        losses.append(loss.item())
        if verbose and (step == 1 or step % 100 == 0):
            accuracy = np.mean((p.detach().numpy() >= 0.5) == (target.numpy() == 1))
            print(f"  step {step:3d}  loss {loss.item():.4f}  accuracy {accuracy:.0%}")
    return model, losses


def main() -> None:
    model, losses = train(seed=0, verbose=True)
    X, y = tn.data.logic_gate("xor")
    with tn.no_grad():
        p = model(tn.tensor(X.astype(np.float32))).numpy().reshape(-1)
    print(format_truth_table(X, {"target": y, "p(1)": p, "output": (p >= 0.5).astype(int)}))
    print(f"final loss {losses[-1]:.4f}")

    with tn.no_grad():
        hidden = model[1](model[0](tn.tensor(X.astype(np.float32)))).numpy()
    print("\nwhat the hidden layer learned (compare NAND/OR in example 04):")
    print(format_truth_table(X, {"XOR": y}, extra={f"h{i}": hidden[:, i].round(2)
                                                   for i in range(4)}))

    solved = 0
    for seed in range(20):
        model, _ = train(seed)
        with tn.no_grad():
            p = model(tn.tensor(X.astype(np.float32))).numpy().reshape(-1)
        solved += bool(np.all((p >= 0.5) == (y == 1)))
    print(f"\nXOR learned for {solved} of 20 seeds")


if __name__ == "__main__":
    main()
