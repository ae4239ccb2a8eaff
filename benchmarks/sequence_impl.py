"""Sequence-model training steps (chapter 9): an LSTM classifier and a tiny GPT, in tinynet
(eager, and under tn.compile) and in PyTorch eager, from the same initial weights.

``lstm``: LSTM(16 -> 64) over 20 steps, batch 32, Linear(64 -> 8) on the last output,
cross-entropy, SGD. ``gpt-tiny``: the chapter's GPT (2 pre-norm causal blocks, width 48,
4 heads, feed-forward 192, vocabulary 12, 11 positions), batch 64, next-character
cross-entropy at every position, SGD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LR = 0.05


@dataclass(frozen=True)
class SeqSpec:
    name: str
    kind: str  # "lstm" or "gpt"
    batch: int
    steps: int = 20  # LSTM time steps
    features: int = 16
    hidden: int = 64
    classes: int = 8
    vocab: int = 12
    context: int = 11
    d_model: int = 48
    heads: int = 4
    layers: int = 2
    ff: int = 192


def make_data(spec: SeqSpec, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if spec.kind == "lstm":
        x = rng.standard_normal((spec.batch, spec.steps, spec.features)).astype(np.float32)
        y = rng.integers(0, spec.classes, spec.batch)
        return x, y
    tokens = rng.integers(0, spec.vocab, (spec.batch, spec.context + 1))
    return tokens[:, :-1], tokens[:, 1:]


def _tinynet_model(spec: SeqSpec, seed: int = 0) -> Any:
    import tinynet as tn
    from tinynet import nn, story_sequences

    tn.manual_seed(seed)
    if spec.kind == "gpt":
        return story_sequences.GPT(spec.vocab, spec.context, spec.d_model, spec.heads,
                                   spec.layers, spec.ff)

    class LSTMClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(spec.features, spec.hidden, batch_first=True)
            self.head = nn.Linear(spec.hidden, spec.classes)

        def forward(self, x: Any) -> Any:
            return self.head(self.lstm(x)[0][:, -1])

    return LSTMClassifier()


def initial_weights(spec: SeqSpec) -> dict[str, np.ndarray]:
    return {k: np.array(getattr(v, "data", v)) for k, v in
            _tinynet_model(spec).state_dict().items()}


class TinynetSeq:
    """tinynet eager (``compiled=False``) or the same step under ``tn.compile``."""

    def __init__(self, spec: SeqSpec, weights: dict[str, np.ndarray], x: np.ndarray,
                 y: np.ndarray, compiled: bool = False) -> None:
        import tinynet as tn

        self.model = _tinynet_model(spec)
        self.model.load_state_dict(weights)
        self.parameters = dict(self.model.named_parameters())
        opt = tn.optim.SGD(self.model.parameters(), lr=LR)
        model, F = self.model, tn.nn.functional
        vocab = spec.vocab

        def train_step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            out = model(x)
            if out.ndim == 3:
                out = out.reshape(-1, vocab)
            loss = F.cross_entropy(out, y.reshape(-1))
            loss.backward()
            opt.step()
            return loss

        self.train_step = tn.compile(train_step, background=False) if compiled else train_step
        self.x, self.y = tn.tensor(x), tn.tensor(y)
        self.loss: Any = None

    def step(self) -> None:
        self.loss = self.train_step(self.x, self.y)

    def loss_value(self) -> float:
        return float(self.loss.item())

    def grads(self) -> dict[str, np.ndarray]:
        return {k: p.grad.numpy() for k, p in self.parameters.items()}


class TorchSeq:
    """The same models in PyTorch (nn.LSTM; nn.TransformerEncoder with norm_first)."""

    def __init__(self, spec: SeqSpec, weights: dict[str, np.ndarray], x: np.ndarray,
                 y: np.ndarray) -> None:
        from .torch_ref import load_torch

        torch = load_torch()
        nn = torch.nn
        self.torch, self.spec = torch, spec
        if spec.kind == "lstm":
            class Model(nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.lstm = nn.LSTM(spec.features, spec.hidden, batch_first=True)
                    self.head = nn.Linear(spec.hidden, spec.classes)

                def forward(self, x: Any) -> Any:
                    return self.head(self.lstm(x)[0][:, -1])
        else:
            mask = nn.Transformer.generate_square_subsequent_mask(spec.context)

            class Model(nn.Module):  # type: ignore[no-redef]
                def __init__(self) -> None:
                    super().__init__()
                    self.token = nn.Embedding(spec.vocab, spec.d_model)
                    self.position = nn.Embedding(spec.context, spec.d_model)
                    block = nn.TransformerEncoderLayer(spec.d_model, spec.heads, spec.ff, 0.0,
                                                       batch_first=True, norm_first=True)
                    self.blocks = nn.TransformerEncoder(block, spec.layers,
                                                        enable_nested_tensor=False)
                    self.norm = nn.LayerNorm(spec.d_model)
                    self.head = nn.Linear(spec.d_model, spec.vocab)

                def forward(self, tokens: Any) -> Any:
                    steps = tokens.shape[1]
                    x = self.token(tokens) + self.position(torch.arange(steps))
                    x = self.blocks(x, mask=mask[:steps, :steps], is_causal=True)
                    return self.head(self.norm(x))

        self.model = Model()
        self.model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        self.parameters = dict(self.model.named_parameters())
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.loss: Any = None

    def step(self) -> None:
        self.opt.zero_grad()
        out = self.model(self.x)
        if out.ndim == 3:
            out = out.reshape(-1, self.spec.vocab)
        loss = self.torch.nn.functional.cross_entropy(out, self.y.reshape(-1))
        loss.backward()
        self.opt.step()
        self.loss = loss

    def loss_value(self) -> float:
        return float(self.loss.item())

    def grads(self) -> dict[str, np.ndarray]:
        return {k: p.grad.numpy() for k, p in self.parameters.items()}
