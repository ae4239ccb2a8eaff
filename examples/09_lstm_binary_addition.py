"""Recurrent networks: an LSTM learns to add binary numbers, one bit per time step.

At step t the LSTM reads bit t of a and bit t of b (least significant first) and writes bit t
of a + b. The answer at step t depends on a carry from all earlier steps, so the network has
to keep it in its state: no window of fixed size would do. One step of the LSTM, as written in
tinynet/nn/rnn.py (gates i, f, g, o in PyTorch's order):

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of chunks of (W_ih x_t + b_ih + W_hh h + b_hh)
    c = f * c + i * g          # forget some of the memory, write some new
    h = o * tanh(c)            # what the step shows the layer above

Trained on random 8-bit additions, it is tested on 16-bit ones (twice as long as any it saw):
if it learned the carry rule rather than the lengths, it still gets them all right.

Run: python examples/09_lstm_binary_addition.py [--steps N] [--seed S] [--figures DIR]
(about 20-40 s on 2 cores; figures: the training curve and the gates while adding.)
"""

from __future__ import annotations

import argparse

import numpy as np

import tinynet as tn
from tinynet import datasets_text, story_sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", metavar="DIR", help="write the PNG figures into DIR")
    args = parser.parse_args()
    run = story_sequences.train_bit_adder(args.steps, seed=args.seed)
    print(f"LSTM(2 -> 16) + Linear(16 -> 1): loss {np.mean(run.losses[:20]):.3f} (first 20 "
          f"steps) -> {np.mean(run.losses[-20:]):.4f} (last 20), {run.seconds:.1f} s, seed "
          f"{args.seed}")
    print(f"exact sums on 1000 held-out 16-bit additions (trained on 8-bit): {run.accuracy:.1%}")
    x, y = datasets_text.binary_addition(1, 16, np.random.default_rng(args.seed + 2))
    bits = (run.model(tn.tensor(x)).data > 0).astype(int)[0]
    number = lambda column: int("".join(str(int(v)) for v in column[::-1]), 2)  # noqa: E731
    a, b = number(x[0, :, 0]), number(x[0, :, 1])
    print(f"e.g. {a} + {b}: the LSTM writes {number(bits)} (true {a + b})")
    if args.figures:
        from tinynet import plotting_seq

        for path in plotting_seq.lstm_figures(run, args.figures):
            print("wrote", path)


if __name__ == "__main__":
    main()
