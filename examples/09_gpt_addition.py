"""A tiny GPT learns to add: a character-level transformer trained on "347+589=6390".

The language is generated in tinynet/datasets_text.py: two 3-digit numbers, their sum written
least-significant digit first (936 -> "6390"), so the model writes each digit after the ones
it depends on, as we add on paper. The model (tinynet/story_sequences.py) is GPT-shaped:

    tokens (N, 11) -> token + position embeddings (N, 11, 48)
        -> 2 x [x + attention(LayerNorm(x)), causal, 4 heads;  x + MLP(LayerNorm(x))]
        -> LayerNorm -> Linear -> next-character logits (N, 11, 12)

trained with cross-entropy on the 4 answer characters, AdamW, fresh random problems every
step; 2,000 problems are held out and never trained on. At the end it writes the held-out
answers greedily (argmax, one character at a time) and counts exact matches, then samples a
few continuations with tn.multinomial.

The training step (forward, loss, backward, AdamW update) runs under ``tn.compile``: traced
once, then replayed as generated code (the first run also compiles that code with numba, a
minute or two; later runs load it from the cache). ``--eager`` trains without it.

Run: python examples/09_gpt_addition.py [--steps N] [--seed S] [--eager] [--figures DIR]
(1500 steps; a few minutes on 2 idle cores; figures: the training curve and one head's
attention map on one problem.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinynet import datasets_text, story_sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=story_sequences.GPT_RECIPE["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eager", action="store_true",
                        help="train eagerly instead of under tn.compile")
    parser.add_argument("--figures", metavar="DIR", help="write the PNG figures into DIR")
    args = parser.parse_args()
    how = "eagerly" if args.eager else "under tn.compile"
    print(f"seed {args.seed}, {args.steps} steps {how}, recipe {story_sequences.GPT_RECIPE}")
    start = time.perf_counter()
    run = story_sequences.train_gpt(args.steps, seed=args.seed, compiled=not args.eager,
                                    log_every=250)
    if run.note:
        print(run.note)
    print(f"held-out exact match: {run.accuracy:.2%} of {story_sequences.GPT_RECIPE['n_test']} "
          f"sums never seen in training (seed {args.seed}; {run.seconds:.0f} s of training, "
          f"{time.perf_counter() - start:.0f} s in all)")
    rng = np.random.default_rng(args.seed + 7)
    run.model.eval()
    for a, b in rng.integers(0, 1000, (5, 2)):
        prompt = datasets_text.addition_text(int(a), int(b))[:8]
        text = story_sequences.sample_text(run.model, prompt, 4, generator=rng)
        if not text[8:].isdigit():
            print(f"  sampled: {text}   (not a number: {a} + {b} = {a + b})")
            continue
        written = datasets_text.decode_answer(text[8:])
        print(f"  sampled: {text}   i.e. {a} + {b} = {written}"
              f"{'' if written == a + b else f'  (wrong: {a + b})'}")
    if args.figures:
        from tinynet import plotting_seq

        for path in plotting_seq.gpt_figures(run, args.figures):
            print("wrote", path)


if __name__ == "__main__":
    main()
