"""Scripts written for PyTorch run with tinynet by changing the import (issue 21).

Each script below is written once, against a module called ``torch``; the test runs it with
tinynet in that place (and, where the randomness allows, with torch too, comparing numbers).
They use the first lines real scripts start with: device selection through ``torch.cuda`` /
``torch.accelerator`` / ``torch.backends.mps``, ``model.to(device)``, ``device=`` on creation,
``torch.Generator``, ``torch.randint(low, high, size, generator=g)``, a DataLoader with
workers, state dicts saved and cloned.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

import tinynet as tn


def as_torch(lib: Any) -> Any:
    """The names a script imports: ``import torch; import torch.nn as nn; ...``."""
    return types.SimpleNamespace(torch=lib, nn=lib.nn, F=lib.nn.functional, optim=lib.optim,
                                 lr_scheduler=lib.optim.lr_scheduler, data=lib.utils.data)


def mnist_example(lib: Any, initial_state: dict | None, tmp_path: Any) -> dict:
    """pytorch/examples' mnist/main.py, shortened (8x8 inputs, two epochs, no dropout)."""
    m = as_torch(lib)
    torch, nn, F, optim = m.torch, m.nn, m.F, m.optim

    class Net(nn.Module):
        def __init__(self) -> None:
            super(Net, self).__init__()  # noqa: UP008 - as the example writes it
            self.conv1 = nn.Conv2d(1, 4, 3, 1)
            self.fc1 = nn.Linear(4 * 3 * 3, 16)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x: Any) -> Any:
            x = F.relu(self.conv1(x))
            x = F.max_pool2d(x, 2)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            return F.log_softmax(self.fc2(x), dim=1)

    use_accel = torch.accelerator.is_available()
    torch.manual_seed(1)
    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")
    use_cuda = torch.cuda.is_available() and not torch.backends.mps.is_available()
    train_kwargs: dict[str, Any] = {"batch_size": 16}
    if use_accel or use_cuda:
        train_kwargs.update({"pin_memory": True, "shuffle": True})
    train_kwargs["num_workers"] = 2  # a loader with workers, as nearly every example has

    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, size=64)
    dataset = m.data.TensorDataset(torch.tensor(images), torch.tensor(labels))
    train_loader = m.data.DataLoader(dataset, **train_kwargs)

    model = Net().to(device)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    scheduler = m.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    losses = []
    for _epoch in range(2):
        model.train()
        for data, target in train_loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for data, target in train_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                test_loss += F.nll_loss(output, target, reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
        losses.append((test_loss / len(train_loader.dataset), correct))
    torch.save(model.state_dict(), tmp_path / "mnist_cnn.pt")
    reloaded = Net().to(device)
    reloaded.load_state_dict(torch.load(tmp_path / "mnist_cnn.pt"))
    return {"losses": losses, "state": model.state_dict(), "reloaded": reloaded.state_dict()}


def test_the_mnist_example_runs_unchanged_and_gives_torchs_numbers(tmp_path: Any) -> None:
    ours = mnist_example(tn, None, tmp_path)
    for key, value in ours["state"].items():
        assert np.array_equal(value.numpy(), ours["reloaded"][key].numpy()), key
    assert ours["losses"] == mnist_example(tn, None, tmp_path)["losses"]  # seeded: repeatable
    torch = pytest.importorskip("torch")
    # both libraries from the same initial weights: tinynet's, converted in one call
    fresh = {k: v.clone() for k, v in _fresh_net_state(tn).items()}
    ours = mnist_example(tn, fresh, tmp_path)
    theirs = mnist_example(torch, {k: torch.from_numpy(v.numpy()) for k, v in fresh.items()},
                           tmp_path)
    for (loss, correct), (t_loss, t_correct) in zip(ours["losses"], theirs["losses"],
                                                    strict=True):
        assert loss == pytest.approx(t_loss, rel=1e-4) and correct == t_correct


def _fresh_net_state(lib: Any) -> dict:
    """Initial weights for mnist_example's Net (its layers, under the same names)."""
    nn = lib.nn
    net = nn.Module()
    net.conv1 = nn.Conv2d(1, 4, 3, 1)
    net.fc1 = nn.Linear(4 * 3 * 3, 16)
    net.fc2 = nn.Linear(16, 10)
    return net.state_dict()


def makemore_mlp(lib: Any, steps: int) -> list[float]:
    """The MLP of Karpathy's makemore part 2/3 notebook, on generated 3-character contexts."""
    torch, F = lib, lib.nn.functional
    g = torch.Generator().manual_seed(2147483647)
    X = torch.randint(0, 27, (500, 3), generator=g)
    Y = X[:, 2]  # a learnable rule instead of names.txt
    n_embd, n_hidden, block_size, vocab_size = 10, 64, 3, 27
    C = torch.randn((vocab_size, n_embd), generator=g)
    W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5 / 3) / (
        (n_embd * block_size) ** 0.5)
    b1 = torch.randn(n_hidden, generator=g) * 0.01
    W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.01
    b2 = torch.randn(vocab_size, generator=g) * 0
    parameters = [C, W1, b1, W2, b2]
    assert sum(p.numel() for p in parameters) > 0
    for p in parameters:
        p.requires_grad = True
    lossi = []
    for i in range(steps):
        ix = torch.randint(0, X.shape[0], (32,), generator=g)
        Xb, Yb = X[ix], Y[ix]
        emb = C[Xb]
        embcat = emb.view(emb.shape[0], -1)
        h = torch.tanh(embcat @ W1 + b1)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Yb)
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < steps // 2 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        lossi.append(loss.log10().item() if hasattr(loss, "log10") else float(loss.item()))
    with torch.no_grad():
        emb = C[X]
        h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
        return [lossi[0], F.cross_entropy(h @ W2 + b2, Y).item()]


def test_the_makemore_mlp_runs_unchanged_with_a_generator_and_learns() -> None:
    first, final = makemore_mlp(tn, 300)
    assert final < 0.8 * np.log(27)  # below the loss of guessing uniformly
    assert makemore_mlp(tn, 20) == makemore_mlp(tn, 20)  # the Generator makes it repeatable
