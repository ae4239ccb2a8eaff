"""Chapter 9's models and training recipes: an LSTM that adds binary numbers bit by bit, and a
small character-level GPT that learns 3-digit addition written as text. Used by
``examples/09_lstm_binary_addition.py``, ``examples/09_gpt_addition.py``, the demo and the
tests.

The GPT is the decoder-only transformer: token and position embeddings, then blocks of causal
self-attention and a feed-forward network (``nn.TransformerEncoderLayer`` with a causal mask
and ``norm_first=True``, as GPT-2 orders them), a final LayerNorm and a linear head that
scores the next character.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinynet as tn
from tinynet import datasets_text, nn
from tinynet.nn.transformer import generate_square_subsequent_mask

# ---------------------------------------------------------------------------------------------
# The LSTM adder
# ---------------------------------------------------------------------------------------------


class BitAdder(nn.Module):
    """LSTM(2 -> hidden) reading (bit of a, bit of b) per step, Linear(hidden -> 1) writing the
    logit of the sum's bit at that step."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: tn.Tensor) -> tn.Tensor:
        out, _ = self.lstm(x)
        return self.head(out).squeeze(-1)


@dataclass
class Run:
    """A trained model, its loss per step, held-out exact-match accuracy, and the time."""

    model: Any
    losses: list[float] = field(default_factory=list)
    accuracy: float = 0.0
    seconds: float = 0.0
    steps: int = 0
    note: str = ""


def train_bit_adder(steps: int = 600, hidden: int = 16, bits: int = 8, batch: int = 64,
                    lr: float = 0.01, seed: int = 0) -> Run:
    """Adam on fresh random additions every step; accuracy: all bits of a sum right, on 1000
    held-out additions of ``2 * bits`` (longer than any trained on: the LSTM learned the rule,
    not the lengths)."""
    tn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = BitAdder(hidden)
    optimizer = tn.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        x, y = datasets_text.binary_addition(batch, bits, rng)
        optimizer.zero_grad()
        loss = loss_fn(model(tn.tensor(x)), tn.tensor(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    x, y = datasets_text.binary_addition(1000, 2 * bits, np.random.default_rng(seed + 1))
    with tn.no_grad():
        predicted = model(tn.tensor(x)).data > 0
    accuracy = float((predicted == (y > 0.5)).all(axis=1).mean())
    return Run(model, losses, accuracy, seconds, steps)


GATE_NAMES = ("input gate i", "forget gate f", "candidate g", "output gate o", "cell state c")


def lstm_gates_over_time(lstm: nn.LSTM, x: tn.Tensor) -> dict[str, np.ndarray]:
    """The first layer's gates (i, f, g, o) and cell state at each step of one sequence x
    (steps, features): arrays (steps, hidden), recomputed with the layer's own step rule."""
    from tinynet.nn.rnn import lstm_gates

    with tn.no_grad():
        h = tn.zeros(1, lstm.hidden_size)
        c = tn.zeros(1, lstm.hidden_size)
        x_proj = tn.nn.functional.linear(x.unsqueeze(1), lstm.weight_ih_l0, lstm.bias_ih_l0)
        record: dict[str, list[np.ndarray]] = {k: [] for k in GATE_NAMES}
        for t in range(x.shape[0]):
            i, f, g, o = lstm_gates(x_proj[t], h, lstm.weight_hh_l0, lstm.bias_hh_l0)
            c = f * c + i * g
            h = o * c.tanh()
            for key, value in zip(record, (i, f, g, o, c), strict=True):
                record[key].append(value.data[0])
    return {k: np.stack(v) for k, v in record.items()}


# ---------------------------------------------------------------------------------------------
# The GPT
# ---------------------------------------------------------------------------------------------

GPT_RECIPE: dict[str, Any] = {
    "digits": 3, "d_model": 48, "heads": 4, "layers": 2, "ff": 192, "batch": 128,
    "steps": 1500, "lr": 3e-3, "warmup": 300, "n_test": 2000, "weight_decay": 0.01,
}


class GPT(nn.Module):
    """Token + position embeddings -> ``layers`` pre-norm causal transformer blocks -> LayerNorm
    -> Linear head (next-character logits). Input (N, T) int64, output (N, T, vocab)."""

    def __init__(self, vocab: int, context: int, d_model: int = 64, heads: int = 4,
                 layers: int = 2, ff: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(context, d_model)
        block = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        # small embeddings, as GPT-2 (std 0.02): N(0, 1) ones would swamp the residual stream
        for table in (self.token, self.position):
            nn.init.normal_(table.weight, std=0.02)
        self.register_buffer("causal", generate_square_subsequent_mask(context),
                             persistent=False)

    def forward(self, tokens: tn.Tensor) -> tn.Tensor:
        steps = tokens.shape[1]
        x = self.token(tokens) + self.position(tn.arange(steps))
        mask = self.causal[:steps, :steps]
        return self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))


def answer_loss(model: GPT, tokens: tn.Tensor, answer_length: int) -> tn.Tensor:
    """Cross-entropy of the answer's characters only, each predicted from everything before
    it (the prompt is given, not learned)."""
    logits = model(tokens[:, :-1])[:, -answer_length:]
    targets = tokens[:, -answer_length:]
    vocab = logits.shape[-1]
    return nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))


def greedy_answers(model: GPT, prompts: np.ndarray, answer_length: int,
                   batch: int = 1000) -> np.ndarray:
    """Write each answer one character at a time, always the most likely one (argmax)."""
    out = []
    with tn.no_grad():
        for first in range(0, len(prompts), batch):
            seq = prompts[first:first + batch]
            for _ in range(answer_length):
                logits = model(tn.tensor(seq)).data[:, -1]
                seq = np.concatenate([seq, logits.argmax(axis=1)[:, None]], axis=1)
            out.append(seq[:, -answer_length:])
    return np.concatenate(out)


def exact_match(model: GPT, pairs: np.ndarray, digits: int) -> float:
    tokens = datasets_text.addition_batch(pairs, digits)
    answer = digits + 1
    was_training = model.training
    model.eval()
    written = greedy_answers(model, tokens[:, :-answer], answer)
    model.train(was_training)
    return float((written == tokens[:, -answer:]).all(axis=1).mean())


def sample_text(model: GPT, prompt: str, answer_length: int, temperature: float = 1.0,
                generator: Any = None) -> str:
    """Continue ``prompt`` by sampling each character from the model's softmax
    (``tn.multinomial``)."""
    seq = datasets_text.encode(prompt)[None]
    with tn.no_grad():
        for _ in range(answer_length):
            logits = model(tn.tensor(seq))[:, -1] / temperature
            nxt = tn.multinomial(logits.softmax(-1), 1, generator=generator)
            seq = np.concatenate([seq, nxt.data], axis=1)
    return datasets_text.decode(seq[0])


def make_gpt_step(model: GPT, optimizer: Any, answer_length: int) -> Any:
    """One training step (forward, loss, backward, update) as a function of the batch."""

    def step(tokens: tn.Tensor) -> tn.Tensor:
        optimizer.zero_grad()
        loss = answer_loss(model, tokens, answer_length)
        loss.backward()
        optimizer.step()
        return loss

    return step


def train_gpt(steps: int | None = None, seed: int = 0, compiled: bool = True,
              log_every: int = 0, say: Any = print, **overrides: Any) -> Run:
    """The chapter's recipe (``GPT_RECIPE``): AdamW with linear warm-up then cosine decay, fresh
    random training problems every step (never a held-out one), exact match on the held-out
    problems at the end. ``compiled``: train under ``tn.compile`` (falls back to eager, with
    the reason in ``Run.note``, if the step cannot be compiled)."""
    recipe = {**GPT_RECIPE, **overrides}
    steps = recipe["steps"] if steps is None else steps
    digits = recipe["digits"]
    answer = digits + 1
    test_pairs, held_out = datasets_text.addition_split(recipe["n_test"], digits, seed)
    tn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    context = 3 * digits + 2
    model = GPT(len(datasets_text.ALPHABET), context, recipe["d_model"], recipe["heads"],
                recipe["layers"], recipe["ff"])
    optimizer = tn.optim.AdamW(model.parameters(), lr=recipe["lr"],
                               weight_decay=recipe["weight_decay"])
    step = make_gpt_step(model, optimizer, answer)
    note = ""
    if compiled:
        step = tn.compile(step)
    losses: list[float] = []
    start = time.perf_counter()
    for i in range(steps):
        warm = min(1.0, (i + 1) / recipe["warmup"])
        optimizer.param_groups[0]["lr"] = recipe["lr"] * warm * 0.5 * (
            1 + np.cos(np.pi * i / steps))
        tokens = tn.tensor(datasets_text.addition_batch(
            datasets_text.sample_training_pairs(recipe["batch"], held_out, rng), digits))
        try:
            loss = step(tokens)
        except tn.CompileError as e:  # report it, and train eagerly instead
            note = f"tn.compile refused the step, trained eagerly: {e}"
            step = make_gpt_step(model, optimizer, answer)
            loss = step(tokens)
        losses.append(loss.item())
        if log_every and (i + 1) % log_every == 0:
            say(f"step {i + 1:5d}  loss {np.mean(losses[-log_every:]):.4f}  exact match on "
                f"200 held-out sums {exact_match(model, test_pairs[:200], digits):.1%}  "
                f"({time.perf_counter() - start:.0f} s)")
    seconds = time.perf_counter() - start
    accuracy = exact_match(model, test_pairs, digits)
    return Run(model, losses, accuracy, seconds, steps, note)


def attention_map(model: GPT, text: str, layer: int = 0, head: int = 0) -> np.ndarray:
    """One head's attention weights (T, T) on ``text`` (the prompt and answer but the last
    character), recomputed from the block's own self-attention with need_weights."""
    tokens = tn.tensor(datasets_text.encode(text)[None, :-1])
    steps = tokens.shape[1]
    with tn.no_grad():
        x = model.token(tokens) + model.position(tn.arange(steps))
        mask = model.causal[:steps, :steps]
        for i, block in enumerate(model.blocks.layers):
            if i == layer:
                h = block.norm1(x)
                _, weights = block.self_attn(h, h, h, attn_mask=mask, need_weights=True,
                                             average_attn_weights=False)
                return weights.data[0, head]
            x = block(x, src_mask=mask, is_causal=True)
    raise IndexError(f"attention_map: layer {layer} of {len(model.blocks.layers)}")
