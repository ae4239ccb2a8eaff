"""Train a small MLP on the 8x8 handwritten digits (scikit-learn's set) with tinynet.

    python examples/digits_mlp.py            # a few seconds; prints held-out accuracy

The data: 1,797 grayscale images of the digits 0-9, 8x8 pixels with values 0..16, the set
scikit-learn ships, read from tinynet's own copy (``tn.data.load_digits``; no download). We
hold out 20% of them, train a 64-64-10 ReLU network with cross-entropy and Adam on
minibatches of the rest, and report the accuracy on the held-out images (about 98%).

Everything is plain tinynet + numpy: ``tn.nn.Sequential``, ``tn.nn.CrossEntropyLoss``,
``tn.optim.Adam``, and numpy indexing for the minibatches.
"""

from __future__ import annotations

import time

import numpy as np

import tinynet as tn


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): float32 pixels standardised with the training
    images' per-pixel mean and standard deviation, int64 labels."""
    images, y = tn.data.load_digits()  # (1797, 8, 8) values 0..16, (1797,) int64 labels
    x = images.reshape(-1, 64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    # Zero mean, unit variance per pixel (statistics of the training images only; border
    # pixels that are always 0 keep a std of 1) puts every input on the same scale.
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    x = ((x - mean) / std).astype(np.float32)
    return x[train], y[train], x[test], y[test]


def accuracy(model: tn.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of images whose highest-scoring class is the label."""
    model.eval()
    with tn.no_grad():
        predicted = model(tn.tensor(x)).data.argmax(axis=1)
    model.train()
    return float((predicted == y).mean())


def train(
    epochs: int = 15, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
    verbose: bool = False,
) -> tuple[tn.nn.Module, float]:
    """Train the MLP; returns it and its held-out accuracy."""
    x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
    tn.manual_seed(seed)
    model = tn.nn.Sequential(
        tn.nn.Linear(64, 64),
        tn.nn.ReLU(),
        tn.nn.Linear(64, 10),  # scores (logits) for the 10 classes
    )
    loss_fn = tn.nn.CrossEntropyLoss()
    optimizer = tn.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(tn.tensor(x_train[batch])), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        if verbose and (epoch + 1) % 3 == 0:
            print(f"epoch {epoch + 1:3d}  train loss {total / len(order):.4f}  "
                  f"held-out accuracy {accuracy(model, x_test, y_test):.3f}")
    return model, accuracy(model, x_test, y_test)


def main() -> None:
    start = time.perf_counter()
    _, test_accuracy = train(verbose=True)
    print(f"held-out accuracy: {test_accuracy:.3f} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
