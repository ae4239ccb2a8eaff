"""Convolutional networks: a small CNN reads the 8x8 handwritten digits (scikit-learn's set).

A fully connected layer gives every pixel its own weight; a convolution slides one small
filter (here 3x3) over the whole image, so a stroke detector learned in one corner works in
every corner, with 9 weights instead of 64 per unit. Two rounds of convolution -> ReLU ->
max pooling (which keeps the strongest response in each 2x2 block and halves the image)
turn the 1x8x8 image into 32 maps of 2x2, and one linear layer reads the class from those
128 numbers:

    (N, 1, 8, 8) -conv 3x3, 16-> (N, 16, 8, 8) -relu, pool-> (N, 16, 4, 4)
                 -conv 3x3, 32-> (N, 32, 4, 4) -relu, pool-> (N, 32, 2, 2) -linear-> (N, 10)

It reaches about 99% on the 359 held-out images in 30 epochs (the MLP of digits_mlp.py:
about 97-98%). Each convolution runs as im2col + one matrix product (tinynet/ops/conv.py).

A second experiment shows why batch normalization made deep networks trainable: an MLP with
eight sigmoid layers barely moves under plain SGD (its gradients shrink by up to 4x per
layer), while the same network with ``BatchNorm1d`` before each sigmoid trains at once.

Run: python examples/08_cnn_digits.py [--figures DIR] [--epochs N]
(figures: the learned first-layer filters, one digit's feature maps, the batch-norm loss
curves; about 15-25 s on 2 cores.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tinynet as tn
from tinynet import nn


def load_digit_images(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): float32 images (N, 1, 8, 8) standardised with the
    training images' mean and standard deviation, int64 labels."""
    images, y = tn.data.load_digits()  # tinynet's copy of scikit-learn's set
    x = images.reshape(-1, 1, 8, 8)  # values 0..16
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    # One mean and std for all pixels (not per pixel): a convolution applies the same filter
    # everywhere, so every pixel should be on the same scale.
    mean, std = x[train].mean(), x[train].std()
    x = ((x - mean) / std).astype(np.float32)
    return x[train], y[train], x[test], y[test]


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    )


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with tn.no_grad():
        predicted = model(tn.tensor(x)).data.argmax(axis=1)
    model.train()
    return float((predicted == y).mean())


def train_cnn(epochs: int = 30, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
              verbose: bool = False) -> tuple[nn.Sequential, float, float, float]:
    """Adam with a cosine learning-rate decay; returns (model, held-out accuracy, wall-clock
    seconds, CPU seconds of this process) for the training loop."""
    x_train, y_train, x_test, y_test = load_digit_images()
    tn.manual_seed(seed)
    model = small_cnn()
    optimizer = tn.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        # cosine decay: big steps first, small ones to settle at the end
        optimizer.param_groups[0]["lr"] = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(tn.tensor(x_train[batch])), y_train[batch])
            loss.backward()
            optimizer.step()
        if verbose and (epoch + 1) % 5 == 0:
            print(f"epoch {epoch + 1:3d}  last batch loss {loss.item():.4f}  held-out accuracy "
                  f"{accuracy(model, x_test, y_test):.2%}")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return model, accuracy(model, x_test, y_test), seconds, cpu


def deep_sigmoid_mlp(depth: int = 8, width: int = 64, batch_norm: bool = False
                     ) -> nn.Sequential:
    layers: list[nn.Module] = []
    size = 64
    for _ in range(depth):
        layers.append(nn.Linear(size, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.Sigmoid())
        size = width
    layers.append(nn.Linear(size, 10))
    return nn.Sequential(*layers)


def batch_norm_comparison(steps: int = 200, batch_size: int = 64, lr: float = 0.5,
                          seed: int = 0) -> dict[str, list[float]]:
    """Training loss per step of the deep sigmoid MLP, with and without batch norm (same
    initial weights, same minibatches, plain SGD)."""
    x_train, y_train, _, _ = load_digit_images()
    x_train = x_train.reshape(len(x_train), -1)
    curves = {}
    for name, use_bn in (("8 sigmoid layers", False), ("8 sigmoid layers + BatchNorm1d", True)):
        tn.manual_seed(seed)
        model = deep_sigmoid_mlp(batch_norm=use_bn)
        optimizer = tn.optim.SGD(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(steps):
            batch = rng.choice(len(x_train), batch_size, replace=False)
            optimizer.zero_grad()
            loss = loss_fn(model(tn.tensor(x_train[batch])), y_train[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves[name] = losses
    return curves


def save_figures(model: nn.Sequential, curves: dict[str, list[float]], folder: str) -> list[str]:
    """The 16 learned 3x3 filters of the first layer, one test digit's 16 feature maps after
    conv + ReLU, and the batch-norm loss curves."""
    from tinynet import plotting

    plotting.use_agg()
    plt = plotting.pyplot()
    paths = []
    filters = model[0].weight.data[:, 0]  # (16, 3, 3)
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
    for ax, f in zip(axes.flat, filters, strict=True):
        ax.imshow(f, cmap="RdBu_r", vmin=-np.abs(filters).max(), vmax=np.abs(filters).max())
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("first-layer filters (3x3), red +, blue -")
    paths.append(plotting.save(fig, f"{folder}/cnn_filters.png"))

    _, _, x_test, y_test = load_digit_images()
    digit = x_test[:1]
    with tn.no_grad():
        maps = model[1](model[0](tn.tensor(digit))).data[0]  # (16, 8, 8) after conv + ReLU
    fig, axes = plt.subplots(2, 9, figsize=(9, 2.4))
    axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
    axes[0, 0].set_title(f"digit {y_test[0]}", fontsize=8)
    axes[1, 0].axis("off")
    for ax, m in zip(list(axes[0, 1:]) + list(axes[1, 1:]), maps, strict=True):
        ax.imshow(m, cmap="magma")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("one digit and its 16 feature maps after conv1 + ReLU")
    paths.append(plotting.save(fig, f"{folder}/cnn_feature_maps.png"))

    ax = plotting.plot_losses(curves, title="deep sigmoid MLP on digits, plain SGD",
                              log=False)
    paths.append(plotting.save(ax.figure, f"{folder}/batchnorm_loss_curves.png"))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--figures", metavar="DIR", help="write the PNG figures into DIR")
    args = parser.parse_args()
    model, acc, seconds, cpu = train_cnn(args.epochs, verbose=True)
    print(f"small CNN: held-out accuracy {acc:.2%} after {args.epochs} epochs "
          f"({seconds:.1f} s of training, {cpu:.1f} s of CPU time)")
    curves = batch_norm_comparison()
    for name, losses in curves.items():
        print(f"{name}: loss {np.mean(losses[:10]):.3f} (first 10 steps) -> "
              f"{np.mean(losses[-10:]):.3f} (last 10)")
    if args.figures:
        for path in save_figures(model, curves, args.figures):
            print("wrote", path)


if __name__ == "__main__":
    main()
