"""Chapter 9's figures: a training curve, one attention head's weights on one example, and an
LSTM's gates over time. Same conventions as ``plotting.py``: each ``plot_*`` draws on the
``ax`` (or axes) it is given, or a new figure's, and returns it; matplotlib is imported on
first use only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinynet.plotting import _axes, plot_losses, pyplot, save, use_agg

__all__ = ["gpt_attention_figure", "gpt_figures", "lstm_figures", "plot_attention",
           "plot_lstm_gates", "plot_training_curve"]


def plot_training_curve(losses: Sequence[float], ax: Any = None, smooth: int = 50,
                        title: str = "training loss") -> Any:
    """The loss per step (faint) and its running mean over ``smooth`` steps, log scale."""
    values = np.asarray(losses, dtype=np.float64)
    curves = {"loss per step": values}
    if len(values) >= smooth > 1:
        kernel = np.ones(smooth) / smooth
        curves[f"mean of {smooth} steps"] = np.convolve(values, kernel, mode="valid")
    ax = plot_losses(curves, ax=ax, title=title)
    ax.lines[0].set_alpha(0.35)
    if len(ax.lines) > 1:  # the running mean starts at step ``smooth``
        ax.lines[1].set_xdata(np.arange(smooth, len(values) + 1))
    return ax


def plot_attention(weights: np.ndarray, labels: Sequence[str], ax: Any = None,
                   title: str = "attention weights") -> Any:
    """A (T, T) attention matrix: row i is what position i (a query, on the y axis) takes
    from each earlier position (keys, on the x axis); each row sums to 1."""
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1] != len(labels):
        raise ValueError(f"plot_attention: weights must be (T, T) with T = len(labels) "
                         f"({len(labels)}), got {weights.shape}")
    ax = _axes(ax, figsize=(4.6, 4.2))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(title=title, xlabel="key (attended to)", ylabel="query (predicting the next char)")
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax


def plot_lstm_gates(gates: Mapping[str, np.ndarray], axes: Sequence[Any] | None = None,
                    xlabels: Sequence[str] | None = None, title: str = "LSTM gates") -> Any:
    """One heat map per gate (and the cell state): time across, hidden units down."""
    names = list(gates)
    if axes is None:
        fig, axes = pyplot().subplots(len(names), 1, figsize=(6.0, 1.4 * len(names)),
                                      sharex=True)
    axes = list(np.atleast_1d(axes))
    for ax, name in zip(axes, names, strict=True):
        values = np.asarray(gates[name]).T  # (hidden, steps)
        # gates are sigmoids in (0, 1); the candidate g (tanh) and the cell state are signed
        signed = name.startswith(("candidate", "cell"))
        high = max(1.0, float(np.abs(values).max())) if signed else 1.0
        image = ax.imshow(values, aspect="auto", cmap="RdBu_r" if signed else "magma",
                          vmin=-high if signed else 0.0, vmax=high)
        ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        ax.set_yticks([])
        ax.figure.colorbar(image, ax=ax, fraction=0.03)
    if xlabels is not None:
        axes[-1].set_xticks(range(len(xlabels)), xlabels, fontsize=7)
    axes[-1].set_xlabel("time step")
    axes[0].set_title(title)
    return axes


def gpt_figures(run: Any, folder: str | os.PathLike[str]) -> list[str]:
    """The GPT's training curve and its attention figure (``gpt_attention_figure``)."""
    use_agg()
    path = save(plot_training_curve(run.losses, title="tiny GPT on addition: loss").figure,
                f"{os.fspath(folder)}/gpt_training_curve.png")
    return [path, gpt_attention_figure(run.model, folder)]


def gpt_attention_figure(model: Any, folder: str | os.PathLike[str]) -> str:
    """Head 0 of the first and of the last layer on one sum, side by side."""
    from tinynet import datasets_text, story_sequences

    use_agg()
    text = datasets_text.addition_text(347, 589)
    labels = list(text[:-1])
    layers = len(model.blocks.layers)
    fig, axes = pyplot().subplots(1, 2, figsize=(10.5, 4.2))
    for ax, layer in zip(axes, (0, layers - 1), strict=True):
        weights = story_sequences.attention_map(model, text, layer=layer, head=0)
        plot_attention(weights, labels, ax=ax, title=f"layer {layer}, head 0 on {text}")
    fig.tight_layout()
    return save(fig, f"{os.fspath(folder)}/gpt_attention.png")


def lstm_figures(run: Any, folder: str | os.PathLike[str], a: int = 0b10110111,
                 b: int = 0b01101101, bits: int = 8) -> list[str]:
    """The LSTM adder's training curve and its gates while it adds ``a + b``."""
    from tinynet import story_sequences
    from tinynet.tensor import Tensor

    use_agg()
    paths = [save(plot_training_curve(run.losses, smooth=20,
                                      title="LSTM adding binary numbers: loss").figure,
                  f"{os.fspath(folder)}/lstm_training_curve.png")]
    positions = np.arange(bits + 1)
    x = np.stack([(a >> positions) & 1, (b >> positions) & 1], axis=1).astype(np.float32)
    gates = story_sequences.lstm_gates_over_time(run.model.lstm, Tensor(x))
    labels = [f"{p}{q}" for p, q in x.astype(int)]
    axes = plot_lstm_gates(gates, xlabels=labels,
                           title=f"LSTM gates adding {a} + {b} (bits of a,b per step, "
                                 "least significant first)")
    paths.append(save(axes[0].figure, f"{os.fspath(folder)}/lstm_gates.png"))
    return paths
