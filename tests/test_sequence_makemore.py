"""A makemore-style PyTorch script (characters -> Embedding -> GRU -> Linear, cross-entropy,
AdamW, sampling names with multinomial) runs on tinynet with only its import lines changed,
and learns: the same script is run under torch too (when installed), to show it is PyTorch
code, not code written for tinynet."""

from __future__ import annotations

import numpy as np
import pytest

SCRIPT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(42)
words = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
         "abigail", "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila",
         "aria", "scarlett", "penelope", "layla", "chloe", "victoria", "madison", "eleanor"]
chars = sorted(set("".join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
block_size = 4

X, Y = [], []
for w in words:
    context = [0] * block_size
    for ch in w + ".":
        ix = stoi[ch]
        X.append(context)
        Y.append(ix)
        context = context[1:] + [ix]
X = torch.tensor(X)
Y = torch.tensor(Y)


class CharGRU(nn.Module):
    def __init__(self, vocab_size, n_embd=12, n_hidden=48):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, n_embd)
        self.gru = nn.GRU(n_embd, n_hidden, batch_first=True)
        self.head = nn.Linear(n_hidden, vocab_size)

    def forward(self, idx):
        out, h = self.gru(self.emb(idx))
        return self.head(out[:, -1, :])


model = CharGRU(len(itos))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
losses = []
for step in range(150):
    ix = torch.randint(0, X.shape[0], (32,))
    logits = model(X[ix])
    loss = F.cross_entropy(logits, Y[ix])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

model.eval()
with torch.no_grad():
    full_loss = F.cross_entropy(model(X), Y).item()
    samples = []
    for _ in range(5):
        context = [0] * block_size
        out = []
        while len(out) < 20:
            logits = model(torch.tensor([context]))
            probs = F.softmax(logits, dim=1)
            ix = torch.multinomial(probs, num_samples=1, replacement=True).item()
            context = context[1:] + [ix]
            if ix == 0:
                break
            out.append(itos[ix])
        samples.append("".join(out))
'''

IMPORTS = {"import torch\n": "import tinynet as torch\n",
           "import torch.nn as nn\n": "import tinynet.nn as nn\n",
           "import torch.nn.functional as F\n": "import tinynet.nn.functional as F\n"}


def _run(source: str) -> dict:
    scope: dict = {"__name__": "makemore"}
    exec(compile(source, "makemore.py", "exec"), scope)  # noqa: S102 - our own fixed script
    return scope


def _ported() -> str:
    source = SCRIPT
    for old, new in IMPORTS.items():
        assert old in source
        source = source.replace(old, new)
    changed = [a for a, b in zip(SCRIPT.splitlines(), source.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 3, changed  # only the three import lines differ
    return source


def test_makemore_script_ports_by_changing_the_imports_and_learns() -> None:
    scope = _run(_ported())
    losses = scope["losses"]
    uniform = np.log(len(scope["itos"]))
    assert abs(losses[0] - uniform) < 0.3  # starts near a uniform guess over the characters
    assert np.mean(losses[-20:]) < 0.7 * uniform, (losses[0], np.mean(losses[-20:]))
    assert scope["full_loss"] < 0.7 * uniform
    alphabet = set(scope["chars"])
    assert len(scope["samples"]) == 5
    assert all(set(s) <= alphabet for s in scope["samples"])


def test_makemore_samples_are_reproducible_under_manual_seed() -> None:
    first, second = _run(_ported()), _run(_ported())
    assert first["samples"] == second["samples"]
    np.testing.assert_array_equal(first["losses"], second["losses"])


def test_the_same_script_is_pytorch_code() -> None:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead on a shared machine
    try:
        scope = _run(SCRIPT)
    finally:
        torch.set_num_threads(threads)
    assert np.mean(scope["losses"][-20:]) < 0.7 * np.log(len(scope["itos"]))
