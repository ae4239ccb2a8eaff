"""Why gradient descent cannot train through a step, and the surrogate-gradient fix.

The step's derivative is 0 wherever it exists (and undefined at 0). Backpropagation multiplies
the gradient arriving at a unit by the unit's derivative, so every gradient that reaches a step
unit leaves it as 0: the layers before it never change, whatever the loss says.

A surrogate gradient keeps the step in the forward pass (units still output exactly 0 or 1)
but uses a stand-in derivative in the backward pass:

    tn.step(x, surrogate="straight_through")   # 1 where |x| <= 1, else 0
    tn.step(x, surrogate="sigmoid")            # s(x) (1 - s(x)), as if it were a sigmoid
    nn.Step(surrogate=...)                     # the same, as a layer

Run: python examples/07_step_vs_surrogate.py
"""

import numpy as np

import tinynet as tn
from tinynet import nn
from tinynet.nn import functional as F


def main() -> None:
    # One step unit, one gradient.
    z = tn.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    for surrogate in (None, "straight_through", "sigmoid"):
        z.grad = None
        y = tn.step(z, surrogate=surrogate)
        y.sum().backward()
        forward = y.detach().numpy().tolist()
        derivative = [round(float(g), 3) for g in z.grad.numpy()]
        print(f"step(z, surrogate={surrogate!r:18s}): forward {forward}, d/dz {derivative}")

    X, y = tn.data.logic_gate("xor")
    X = tn.tensor(X.astype(np.float32))
    target = tn.tensor(y.reshape(4, 1).astype(np.float32))
    print("\nXOR with a hidden layer of 4 step units, 300 steps of SGD (lr 1, momentum 0.9):")
    for surrogate in (None, "straight_through", "sigmoid"):
        solved, moved = 0, 0
        for seed in range(10):
            tn.manual_seed(seed)
            model = nn.Sequential(nn.Linear(2, 4), nn.Step(surrogate=surrogate),
                                  nn.Linear(4, 1), nn.Sigmoid())
            optimizer = tn.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
            before = model[0].weight.detach().numpy().copy()
            for _ in range(300):
                optimizer.zero_grad()
                loss = F.binary_cross_entropy(model(X), target)
                loss.backward()
                optimizer.step()
            moved += not np.array_equal(before, model[0].weight.detach().numpy())
            with tn.no_grad():
                solved += bool(np.all((model(X).numpy() >= 0.5) == (target.numpy() == 1)))
        print(f"  surrogate={surrogate!r:18s}: first layer changed in {moved:2d} of 10 runs, "
              f"XOR learned in {solved:2d} of 10")
    print("With the true derivative only the last layer learns, on top of random step features;")
    print("it succeeds only when those random features happen to make XOR separable.")


if __name__ == "__main__":
    main()
