"""Synthetic sequence tasks for chapter 9: text additions for a character-level GPT and binary
additions for an LSTM. Everything is generated here, from a seed; nothing is downloaded.

Addition as text: ``"347+589=6390"`` means 347 + 589 = 936, with the answer written
**least-significant digit first** and padded to ``digits + 1`` digits (0936 reversed). A
model writing left to right then produces each digit after the digits it depends on (the
carry comes from the right), which is how people add on paper; with the answer in the usual
order a model must guess the carries ahead. ``decode_answer`` turns it back.
"""

from __future__ import annotations

import numpy as np

ALPHABET = "0123456789+="
STOI = {c: i for i, c in enumerate(ALPHABET)}


def encode(text: str) -> np.ndarray:
    """Characters -> int64 token ids (``ALPHABET.index``)."""
    return np.array([STOI[c] for c in text], dtype=np.int64)


def decode(tokens: np.ndarray) -> str:
    return "".join(ALPHABET[int(t)] for t in np.asarray(tokens).reshape(-1))


def addition_text(a: int, b: int, digits: int = 3) -> str:
    """``"aaa+bbb=ssss"``: operands zero-padded to ``digits``, the sum reversed, ``digits + 1``
    long."""
    return f"{a:0{digits}d}+{b:0{digits}d}=" + f"{a + b:0{digits + 1}d}"[::-1]


def decode_answer(answer: str) -> int:
    """The sum written by the model (least-significant digit first) as a number."""
    return int(answer[::-1])


def addition_split(n_test: int = 2000, digits: int = 3, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Held-out problems: ``n_test`` distinct (a, b) pairs, and a boolean table
    ``held_out[a, b]`` (shape (10**digits, 10**digits)) that training batches avoid."""
    rng = np.random.default_rng(seed)
    size = 10**digits
    flat = rng.choice(size * size, n_test, replace=False)
    held_out = np.zeros((size, size), dtype=bool)
    held_out.reshape(-1)[flat] = True
    return np.stack([flat // size, flat % size], axis=1), held_out


def addition_batch(pairs: np.ndarray, digits: int = 3) -> np.ndarray:
    """(N, 3 * digits + 3) int64 tokens of the problems ``pairs`` (N, 2), vectorised."""
    a, b = pairs[:, 0], pairs[:, 1]
    s = a + b
    columns = [(a // 10**k) % 10 for k in reversed(range(digits))] + [np.full_like(a, 10)]
    columns += [(b // 10**k) % 10 for k in reversed(range(digits))] + [np.full_like(a, 11)]
    columns += [(s // 10**k) % 10 for k in range(digits + 1)]  # least-significant first
    return np.stack(columns, axis=1).astype(np.int64)


def sample_training_pairs(n: int, held_out: np.ndarray, rng: np.random.Generator
                          ) -> np.ndarray:
    """``n`` random (a, b) pairs that are not held out (redrawn until none is)."""
    size = held_out.shape[0]
    pairs = rng.integers(0, size, (n, 2))
    bad = held_out[pairs[:, 0], pairs[:, 1]]
    while bad.any():
        pairs[bad] = rng.integers(0, size, (int(bad.sum()), 2))
        bad = held_out[pairs[:, 0], pairs[:, 1]]
    return pairs


def binary_addition(n: int, bits: int = 8, rng: np.random.Generator | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Binary addition bit by bit, least-significant bit first: inputs (n, bits + 1, 2) float32
    (bit t of a and of b; a final 0 0 step for the last carry) and targets (n, bits + 1)
    float32, bit t of a + b. An LSTM reads one column per step and must carry in its state."""
    rng = rng or np.random.default_rng(0)
    a = rng.integers(0, 2**bits, n)
    b = rng.integers(0, 2**bits, n)
    positions = np.arange(bits + 1)
    x = np.stack([(a[:, None] >> positions) & 1, (b[:, None] >> positions) & 1], axis=2)
    y = ((a + b)[:, None] >> positions) & 1
    return x.astype(np.float32), y.astype(np.float32)
