"""Figures for the perceptron-to-deep-networks story (matplotlib, the ``plot`` extra).

matplotlib is imported when a function here is first called, never by ``import tinynet``.
Every ``plot_*`` function draws on the ``ax`` it is given (or a new figure's) and returns it,
so the pieces combine into any layout. Scripts that only write files call ``use_agg()``
first, which selects matplotlib's file-only ``Agg`` backend (no window, no display needed).

Conventions: class 0 points are white, class 1 points black (both outlined); a model's
probability of class 1 is shaded from blue (0) to red (1), with its 0.5 contour drawn and a
colorbar; a perceptron's line is blue, and the side where it outputs 1 is shaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

INSTALL_HINT = (
    'matplotlib is needed for the figures: pip install -e ".[plot]"  (or: pip install matplotlib)'
)

__all__ = [
    "INSTALL_HINT",
    "matplotlib_available",
    "plot_decision_regions",
    "plot_gate",
    "plot_losses",
    "plot_network",
    "plot_step_vs_sigmoid",
    "pyplot",
    "save",
    "use_agg",
]


def matplotlib_available() -> bool:
    """Whether matplotlib imports (a missing or a broken install both give False)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def use_agg() -> None:
    """Select the non-interactive Agg backend (PNG files only). Raises ImportError with the
    install command when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    matplotlib.use("Agg")


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return plt


def _axes(ax: Any, figsize: tuple[float, float] = (4.5, 4.0)) -> Any:
    if ax is not None:
        return ax
    _, ax = pyplot().subplots(figsize=figsize)
    return ax


def save(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> str:
    """Write ``fig`` as a PNG (creating the folder), close it, and return the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path


def _scatter_classes(
    ax: Any, X: np.ndarray, y: np.ndarray, size: float = 90, name: str = "class"
) -> None:
    """Class 0 white, class 1 black, both with a black outline; legend labels "{name} 0/1"."""
    X, y = np.asarray(X), np.asarray(y).reshape(-1)
    for label, color in ((0, "white"), (1, "black")):
        pts = X[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, edgecolors="black", linewidths=1.2,
                   zorder=3, label=f"{name} {label}")


# ----------------------------------------------------------------------------- activations


def plot_step_vs_sigmoid(axes: Sequence[Any] | None = None) -> Any:
    """Left: step(z) and sigmoid(z). Right: their derivatives -- the step's is 0 everywhere
    (undefined at 0), so gradient descent gets no signal through it; the sigmoid's,
    s (1 - s), is positive everywhere. Returns the figure."""
    plt = pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    else:
        fig = axes[0].figure
    z = np.linspace(-6, 6, 601)
    s = 1 / (1 + np.exp(-z))
    left, right = axes
    neg, pos = z < 0, z >= 0
    left.plot(z[neg], np.zeros(neg.sum()), color="black", lw=2, label="step(z)")
    left.plot(z[pos], np.ones(pos.sum()), color="black", lw=2)
    left.plot([0], [1], "o", color="black", ms=5)  # step(0) = 1
    left.plot([0], [0], "o", mfc="white", mec="black", ms=5)
    left.plot(z, s, color="tab:red", lw=2, label="sigmoid(z) = 1 / (1 + e^-z)")
    left.set(title="activation", xlabel="z = w.x + b", ylim=(-0.1, 1.15))
    left.legend(loc="center left", fontsize=8)
    right.plot(z, np.zeros_like(z), color="black", lw=2, label="step'(z) = 0 (undefined at 0)")
    right.plot(z, s * (1 - s), color="tab:red", lw=2, label="sigmoid'(z) = s (1 - s)")
    right.set(title="derivative: the signal gradient descent gets", xlabel="z",
              ylim=(-0.03, 0.32))
    right.legend(loc="upper right", fontsize=8)
    for ax in axes:
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
    return fig


# ----------------------------------------------------------------------------- perceptrons


def plot_gate(
    X: Any,
    y: Any,
    boundary: Any = None,
    title: str = "",
    ax: Any = None,
    no_line_note: str | None = None,
    line_label: str | None = None,
) -> Any:
    """The four points of a 2-input gate (target 0 white, 1 black) and a perceptron's line.

    ``boundary`` is a ``tinynet.perceptron.DecisionBoundary`` (or None): its line
    w.x + b = 0 is drawn, and the half-plane w.x + b >= 0, where the perceptron outputs 1,
    is shaded. ``line_label`` names the line in the legend (default: its equation).
    ``no_line_note``, if given, is written in a box at the top of the plot (XOR: no line
    separates the classes).
    """
    ax = _axes(ax)
    xlim = ylim = (-0.5, 1.5)
    _scatter_classes(ax, np.asarray(X), np.asarray(y), name="target")
    if boundary is not None:
        (w0, w1), b = boundary.weight, boundary.bias
        gx, gy = np.meshgrid(np.linspace(*xlim, 401), np.linspace(*ylim, 401))
        fires = (w0 * gx + w1 * gy + b >= 0).astype(float)
        ax.contourf(gx, gy, fires, levels=[0.5, 1.5], colors=["tab:orange"], alpha=0.22)
        ax.fill([], [], color="tab:orange", alpha=0.22, label="outputs 1 ($w.x + b \\geq 0$)")
        segment = boundary.segment(xlim, ylim)
        if segment is not None:
            ax.plot(*segment, color="tab:blue", lw=2,
                    label=line_label or f"$w.x + b = 0$: {boundary}")
    if no_line_note:
        ax.text(0.5, 0.97, no_line_note, ha="center", va="top", fontsize=9,
                color="tab:red", transform=ax.transAxes,
                bbox=dict(facecolor="white", edgecolor="tab:red", alpha=0.9))
    ax.legend(loc="upper center", fontsize=8, bbox_to_anchor=(0.5, -0.14), frameon=False)
    ax.set(xlim=xlim, ylim=ylim, xticks=[0, 1], yticks=[0, 1], xlabel="$x_1$", ylabel="$x_2$",
           title=title, aspect="equal")
    return ax


# ----------------------------------------------------------------------------- networks


def plot_decision_regions(
    predict_proba: Callable[[np.ndarray], Any],
    X: Any,
    y: Any,
    ax: Any = None,
    title: str = "",
    resolution: int = 200,
    margin: float = 0.5,
    colorbar: bool | Sequence[Any] = True,
    point_name: str = "class",
    box: Any = None,
) -> Any:
    """Shade a 2-D model's P(class 1) over the plane and draw its 0.5 contour, with the data.

    ``predict_proba`` maps a grid (M, 2) float array to M probabilities (any shape that
    reshapes to (M,)); wrap a Tensor model as
    ``lambda g: model(tn.tensor(g)).detach().numpy()``. The plotted area is X's range plus
    ``margin`` on each side, or ``box`` ((x0, x1), (y0, y1)) if given (to draw two panels of
    one model on the same area). ``colorbar`` adds a bar for P(class 1) beside ``ax`` (True),
    or one bar shared by a list of axes (the figure's panels), or none (False). The legend
    labels the points "{point_name} 0" and "{point_name} 1" and the contour.
    """
    ax = _axes(ax)
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y).reshape(-1)
    if box is None:
        (x0, y0), (x1, y1) = X.min(axis=0) - margin, X.max(axis=0) + margin
    else:
        (x0, x1), (y0, y1) = box
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    p = np.asarray(predict_proba(grid), dtype=np.float64).reshape(gx.shape)
    shading = ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.45)
    ax.contour(gx, gy, p, levels=[0.5], colors="black", linewidths=1.5)
    ax.plot([], [], color="black", lw=1.5, label="P(class 1) = 0.5")  # the contour's legend
    size = 90 if len(X) <= 10 else (14 if len(X) <= 300 else 8)
    _scatter_classes(ax, X, y, size=size, name=point_name)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=title, xlabel="$x_1$", ylabel="$x_2$")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.85)
    if colorbar is not False:
        beside = ax if colorbar is True else list(colorbar)
        ax.figure.colorbar(shading, ax=beside, label="P(class 1), the model's output",
                           ticks=np.linspace(0, 1, 6))
    return ax


def plot_losses(
    curves: Mapping[str, Sequence[float]],
    ax: Any = None,
    title: str = "training loss",
    xlabel: str = "step",
    ylabel: str = "loss",
    log: bool = True,
    markers: bool = False,
) -> Any:
    """One line per named curve (e.g. loss per step). ``log`` uses a log scale on y;
    ``markers`` marks each point (for short curves such as mistakes per epoch)."""
    ax = _axes(ax, figsize=(5.5, 3.6))
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.8, label=name,
                marker="o" if markers else None, ms=3.5)
    if log:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_network(
    layer_sizes: Sequence[int],
    weights: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    ax: Any = None,
    title: str = "",
) -> Any:
    """A diagram of a fully connected network: one column of circles per layer, a line per
    weight (biases are not drawn). With ``weights`` (one (out, in) array per layer, as
    ``Linear.weight``) the line colour gives the sign (red +, blue -) and its width the size."""
    ax = _axes(ax, figsize=(7.0, 4.2))
    n_layers = len(layer_sizes)
    positions = []
    for i, size in enumerate(layer_sizes):
        ys = np.linspace(0.0, 1.0, size + 2)[1:-1]
        positions.append([(float(i), float(yv)) for yv in ys[::-1]])
    biggest = 1.0
    if weights:
        biggest = max(float(np.max(np.abs(np.asarray(w)))) for w in weights) or 1.0
    for k in range(n_layers - 1):
        W = None if weights is None else np.asarray(weights[k])
        for j, (xb, yb) in enumerate(positions[k + 1]):
            for i, (xa, ya) in enumerate(positions[k]):
                if W is None:
                    color, width = "0.55", 1.0
                else:
                    color = "tab:red" if W[j, i] >= 0 else "tab:blue"
                    width = 0.4 + 3.5 * abs(W[j, i]) / biggest
                ax.plot([xa, xb], [ya, yb], color=color, lw=width, alpha=0.8, zorder=1)
    for k, layer in enumerate(positions):
        face = "white" if k == 0 else ("black" if k == n_layers - 1 else "0.85")
        xs, ys = zip(*layer, strict=True)
        ax.scatter(xs, ys, s=380, c=face, edgecolors="black", linewidths=1.3, zorder=3)
        if labels is not None:
            ax.text(k, -0.04, labels[k], ha="center", va="top", fontsize=9)
    ax.set(xlim=(-0.4, n_layers - 0.6), ylim=(-0.25, 1.02), title=title)
    ax.axis("off")
    return ax
